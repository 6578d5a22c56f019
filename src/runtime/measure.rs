//! Measuring a loaded plan the way llama.cpp's `llama-bench` does, so the numbers
//! compare (llama.cpp's `tools/llama-bench/llama-bench.cpp`, `test_prompt` /
//! `test_gen` and its main loop):
//!
//! - prompt test (`ppN`): one warm-up run of the whole test, then per repetition:
//!   clear the KV memory (`llama_memory_clear(.., false)`), start the clock, decode
//!   `N` random tokens (the first is BOS when the vocabulary adds one) in chunks of
//!   `n_batch`, `llama_synchronize`, stop the clock;
//! - generation test (`tgN`): one warm-up token, then per repetition: clear the
//!   memory, start the clock, decode `N` single tokens one at a time (BOS first when
//!   the vocabulary adds one, then random tokens), synchronizing after each, stop;
//! - threads: `llama_set_n_threads(ctx, t, t)` and a ggml threadpool of `t` threads
//!   attached (`llama_attach_threadpool`, default parameters as llama-bench's) for each
//!   test, `t` being the plan's prompt threads for a prompt test and its generation
//!   threads for a generation test;
//! - tokens per second per repetition, then their mean and sample standard deviation
//!   ([`crate::measure::stats`]).
//!
//! [`bench_points`] runs a list of planned points, loading each plan exactly (no
//! stepping down for sweep points) and reusing the loaded model when only context
//! parameters change ([`Loaded::reconfigure`]).

use super::load::{load as load_plan, plan_summary, LoadError, LoadOptions, Loaded};
use super::session::INTERRUPT;
use crate::hardware::Hardware;
use crate::measure::report::{
    DeviceMemory, PointConfig, PointResult, PointStatus, Predicted, TestKind, TestRecord,
};
use crate::measure::{PlannedPoint, Samples};
use crate::model::ModelMeta;
use crate::planner::{Plan, Request};
use llama_cpp_sys_2 as sys;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasureOptions {
    /// Prompt tokens (0: no prompt test).
    pub n_prompt: u32,
    /// Generated tokens (0: no generation test).
    pub n_gen: u32,
    /// Timed repetitions (at least 1).
    pub repetitions: u32,
    /// Run the warm-up first (llama-bench does unless `--no-warmup`).
    pub warmup: bool,
}

impl Default for MeasureOptions {
    /// llama-bench's defaults: pp512, tg128, 5 repetitions, a warm-up.
    fn default() -> Self {
        MeasureOptions {
            n_prompt: 512,
            n_gen: 128,
            repetitions: 5,
            warmup: true,
        }
    }
}

/// Why a measurement failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The test does not fit the context.
    #[error("{test} needs {tokens} tokens of context; the context holds {n_ctx}")]
    ContextTooSmall {
        /// `ppN` or `tgN`.
        test: String,
        /// Tokens needed.
        tokens: u32,
        /// Context size.
        n_ctx: u32,
    },
    /// `llama_decode` failed.
    #[error("llama_decode failed with {code} during {test}{}", if *code == 2 { " (interrupted)" } else { "" })]
    Decode {
        /// The test.
        test: String,
        /// llama.cpp's return code.
        code: i32,
    },
    /// Loading failed.
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// The samples of the tests run.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The prompt test.
    pub pp: Option<Samples>,
    /// The generation test.
    pub tg: Option<Samples>,
}

/// `std::rand`-like source of token ids (a fixed-seed xorshift: runs are repeatable).
struct Tokens {
    state: u64,
    n_vocab: i32,
}

impl Tokens {
    fn next(&mut self) -> i32 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        (x % self.n_vocab.max(1) as u64) as i32
    }
}

/// A ggml CPU threadpool attached to a context for one test, as llama-bench attaches
/// one (`ggml_threadpool_params_default(n_threads)`: llama-bench's default priority,
/// polling level 50, no CPU mask); detached and freed on drop.
struct ThreadPool {
    ctx: *mut sys::llama_context,
    pool: std::ptr::NonNull<sys::ggml_threadpool>,
}

impl ThreadPool {
    fn attach(ctx: *mut sys::llama_context, threads: i32) -> Option<ThreadPool> {
        // SAFETY: plain struct by value; ggml copies the parameters.
        let pool = unsafe {
            let mut params = sys::ggml_threadpool_params_default(threads.max(1));
            sys::ggml_threadpool_new(&mut params)
        };
        let pool = std::ptr::NonNull::new(pool)?;
        // SAFETY: live context and pool; the pool outlives the attachment (Drop).
        unsafe { sys::llama_attach_threadpool(ctx, pool.as_ptr(), std::ptr::null_mut()) };
        Some(ThreadPool { ctx, pool })
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        // SAFETY: detached before it is freed; the context is still alive (the pool
        // lives only inside `measure`).
        unsafe {
            sys::llama_detach_threadpool(self.ctx);
            sys::ggml_threadpool_free(self.pool.as_ptr());
        }
    }
}

struct Bench {
    ctx: *mut sys::llama_context,
    bos: Option<i32>,
    tokens: Tokens,
}

/// The loop a test times: llama-bench's `test_prompt` or `test_gen`.
#[derive(Clone, Copy)]
enum TestLoop {
    /// Decode the tokens in chunks of `n_batch`.
    Prompt { n_batch: u32 },
    /// Decode the tokens one at a time.
    Generate,
}

impl Bench {
    fn decode(&mut self, batch: &mut [i32], test: &str) -> Result<(), BenchError> {
        let n = i32::try_from(batch.len()).unwrap_or(i32::MAX);
        // SAFETY: the batch points into `batch`, alive for the call; live context.
        let rc =
            unsafe { sys::llama_decode(self.ctx, sys::llama_batch_get_one(batch.as_mut_ptr(), n)) };
        if rc != 0 {
            return Err(BenchError::Decode {
                test: test.to_string(),
                code: rc,
            });
        }
        Ok(())
    }

    fn clear(&self) {
        // SAFETY: live context; its memory handle lives as long as it.
        unsafe { sys::llama_memory_clear(sys::llama_get_memory(self.ctx), false) };
    }

    fn set_threads(&self, threads: i32) {
        // SAFETY: live context.
        unsafe { sys::llama_set_n_threads(self.ctx, threads, threads) };
    }

    fn run(&mut self, test: TestLoop, tokens: u32, name: &str) -> Result<(), BenchError> {
        match test {
            TestLoop::Prompt { n_batch } => self.prompt(tokens, n_batch, name),
            TestLoop::Generate => self.generate(tokens, name),
        }
    }

    /// One llama-bench test of `tokens` tokens on `threads` threads (a threadpool
    /// attached for the test): one warm-up when asked (llama-bench's: the whole prompt,
    /// or one generated token), then the timed repetitions, each on emptied memory.
    fn measure_test(
        &mut self,
        test: TestLoop,
        tokens: u32,
        n_ctx: u32,
        threads: i32,
        opts: &MeasureOptions,
    ) -> Result<Samples, BenchError> {
        let name = match test {
            TestLoop::Prompt { .. } => format!("pp{tokens}"),
            TestLoop::Generate => format!("tg{tokens}"),
        };
        if tokens > n_ctx {
            return Err(BenchError::ContextTooSmall {
                test: name,
                tokens,
                n_ctx,
            });
        }
        self.set_threads(threads);
        let _pool = ThreadPool::attach(self.ctx, threads);
        self.clear();
        if opts.warmup {
            let warm = match test {
                TestLoop::Prompt { .. } => tokens,
                TestLoop::Generate => 1,
            };
            self.run(test, warm, &name)?;
        }
        let reps = opts.repetitions.max(1);
        let mut times = Vec::with_capacity(reps as usize);
        for _ in 0..reps {
            self.clear();
            let t = Instant::now();
            self.run(test, tokens, &name)?;
            times.push(t.elapsed().as_secs_f64());
        }
        Ok(Samples::from_times(tokens, &times))
    }

    /// llama-bench's `test_prompt`.
    fn prompt(&mut self, n_prompt: u32, n_batch: u32, test: &str) -> Result<(), BenchError> {
        let n_batch = n_batch.max(1);
        let mut buf: Vec<i32> = Vec::with_capacity(n_batch as usize);
        let mut done = 0u32;
        while done < n_prompt {
            let n = (n_prompt - done).min(n_batch);
            buf.clear();
            for i in 0..n {
                let t = match (done == 0 && i == 0, self.bos) {
                    (true, Some(bos)) => bos,
                    _ => self.tokens.next(),
                };
                buf.push(t);
            }
            self.decode(&mut buf, test)?;
            done += n;
        }
        // SAFETY: live context.
        unsafe { sys::llama_synchronize(self.ctx) };
        Ok(())
    }

    /// llama-bench's `test_gen`.
    fn generate(&mut self, n_gen: u32, test: &str) -> Result<(), BenchError> {
        let mut token = match self.bos {
            Some(bos) => bos,
            None => self.tokens.next(),
        };
        for _ in 0..n_gen {
            let mut one = [token];
            self.decode(&mut one, test)?;
            // SAFETY: live context.
            unsafe { sys::llama_synchronize(self.ctx) };
            token = self.tokens.next();
        }
        Ok(())
    }
}

/// Measures `loaded` (see the module docs). A set [`INTERRUPT`] stops it with
/// [`BenchError::Decode`] code 2.
pub fn measure(loaded: &mut Loaded, opts: &MeasureOptions) -> Result<Measured, BenchError> {
    let threads = loaded.context().settings().n_threads;
    let threads_batch = loaded.context().settings().n_threads_batch;
    let (model, context) = loaded.parts_mut();
    let n_ctx = context.n_ctx();
    let n_batch = context.n_batch();
    let vocab = model.vocab();
    // SAFETY: live vocab.
    let (n_vocab, add_bos, bos) = unsafe {
        (
            sys::llama_vocab_n_tokens(vocab),
            sys::llama_vocab_get_add_bos(vocab),
            sys::llama_vocab_bos(vocab),
        )
    };
    let mut b = Bench {
        ctx: context.as_ptr(),
        bos: (add_bos && bos >= 0).then_some(bos),
        tokens: Tokens {
            state: 0x2545_f491_4f6c_dd1d,
            n_vocab,
        },
    };
    let mut out = Measured { pp: None, tg: None };
    if opts.n_prompt > 0 {
        let test = TestLoop::Prompt { n_batch };
        out.pp = Some(b.measure_test(test, opts.n_prompt, n_ctx, threads_batch, opts)?);
    }
    if opts.n_gen > 0 {
        out.tg = Some(b.measure_test(TestLoop::Generate, opts.n_gen, n_ctx, threads, opts)?);
    }
    // Leave the context as the plan set it.
    // SAFETY: live context.
    unsafe { sys::llama_set_n_threads(b.ctx, threads, threads_batch) };
    Ok(out)
}

/// How [`bench_points`] loads.
#[derive(Debug, Clone)]
pub struct PointsOptions {
    /// The machine planned for.
    pub hardware: Hardware,
    /// The request the points were planned from (objective, reserve, speed constants).
    pub request: Request,
    /// What to measure.
    pub measure: MeasureOptions,
    /// Load attempts per point: 1 measures exactly the point (sweeps); more lets a
    /// plan that fails to load step down as `run` does.
    pub max_attempts: u32,
}

fn memory(loaded: &Loaded) -> Vec<DeviceMemory> {
    loaded
        .memory_comparison()
        .into_iter()
        .map(|c| DeviceMemory {
            side: c.side.to_string(),
            devices: c.devices,
            planned_bytes: c.planned_weights
                + c.planned_context
                + c.planned_compute
                + c.planned_output,
            actual_bytes: c.actual_weights + c.actual_context + c.actual_compute,
            actual_weights: c.actual_weights,
            actual_context: c.actual_context,
            actual_compute: c.actual_compute,
        })
        .collect()
}

fn skipped(p: &PlannedPoint, status: PointStatus, plan: Option<&Plan>) -> PointResult {
    PointResult {
        label: p.label.clone(),
        grid: p.grid.clone(),
        is_plan: p.is_plan,
        status,
        config: plan.map(PointConfig::of),
        plan: plan.map(plan_summary),
        predicted: plan.map(predicted),
        tests: Vec::new(),
        load_seconds: None,
        reloaded: false,
        memory: Vec::new(),
        cost_per_mtok: None,
    }
}

fn predicted(plan: &Plan) -> Predicted {
    Predicted {
        tg_tok_s: plan.predicted.tg_tok_s,
        pp_tok_s: plan.predicted.pp_tok_s,
        calibrated: plan.predicted.calibrated,
    }
}

/// Loads (or reconfigures `current` for) `plan`; returns the loaded model, the
/// seconds it took and whether the model was (re)loaded.
fn load_for(
    meta: &ModelMeta,
    plan: &Plan,
    current: Option<Loaded>,
    opts: &PointsOptions,
) -> Result<(Loaded, f64, bool), BenchError> {
    let started = Instant::now();
    if let Some(l) = current {
        if l.same_model(plan) {
            // A failed reconfigure frees everything; a full load follows.
            match l.reconfigure(plan.clone()) {
                Ok((l, _)) => return Ok((l, started.elapsed().as_secs_f64(), false)),
                Err(e) => tracing::warn!("{e}; loading the model again"),
            }
        }
    }
    let mut load = LoadOptions::new(opts.request.clone(), opts.hardware.clone());
    load.progress = false;
    load.max_attempts = opts.max_attempts.max(1);
    let l = load_plan(meta.clone(), plan.clone(), &load)?;
    Ok((l, started.elapsed().as_secs_f64(), true))
}

/// Measures every point of `points` on the model `meta` describes, in order, calling
/// `on_point` after each (with its index and result). Points without a plan are
/// skipped with the planner's reason; a point that fails to load or run is reported
/// as failed and the next one goes on. Once [`INTERRUPT`] is set (Ctrl-C) the decode
/// in progress stops and the remaining points are skipped; the caller clears it
/// before starting.
pub fn bench_points(
    meta: &ModelMeta,
    points: &[PlannedPoint],
    opts: &PointsOptions,
    on_point: &mut dyn FnMut(usize, &PointResult),
) -> Vec<PointResult> {
    let mut current: Option<Loaded> = None;
    let mut out = Vec::with_capacity(points.len());
    for (i, p) in points.iter().enumerate() {
        let result = match &p.plan {
            _ if INTERRUPT.load(Ordering::Relaxed) => {
                skipped(p, PointStatus::Skipped("interrupted (Ctrl-C)".into()), None)
            }
            Err(reason) => skipped(p, PointStatus::Skipped(reason.clone()), None),
            Ok(plan) => match load_for(meta, plan, current.take(), opts) {
                Err(e) => skipped(p, PointStatus::Failed(e.to_string()), Some(plan)),
                Ok((mut loaded, seconds, reloaded)) => {
                    let measured = measure(&mut loaded, &opts.measure);
                    let _ = loaded.refresh_actual();
                    // The plan that loaded (a stepped-down one when attempts > 1).
                    let used = loaded.plan.clone();
                    let config = PointConfig::of(&used);
                    let r = match measured {
                        // Ctrl-C stopped the decode: not a failure of the point.
                        Err(_) if INTERRUPT.load(Ordering::Relaxed) => skipped(
                            p,
                            PointStatus::Skipped("interrupted (Ctrl-C) while measuring".into()),
                            Some(&used),
                        ),
                        Err(e) => skipped(p, PointStatus::Failed(e.to_string()), Some(&used)),
                        Ok(m) => {
                            let mut tests = Vec::new();
                            if let Some(s) = m.pp {
                                tests.push(TestRecord::new(
                                    TestKind::Pp,
                                    opts.measure.n_prompt,
                                    &config,
                                    s,
                                    used.predicted.pp_tok_s,
                                ));
                            }
                            if let Some(s) = m.tg {
                                tests.push(TestRecord::new(
                                    TestKind::Tg,
                                    opts.measure.n_gen,
                                    &config,
                                    s,
                                    used.predicted.tg_tok_s,
                                ));
                            }
                            PointResult {
                                label: p.label.clone(),
                                grid: p.grid.clone(),
                                is_plan: p.is_plan,
                                status: PointStatus::Measured,
                                config: Some(config),
                                plan: Some(plan_summary(&used)),
                                predicted: Some(predicted(&used)),
                                tests,
                                load_seconds: Some(seconds),
                                reloaded,
                                memory: memory(&loaded),
                                cost_per_mtok: None,
                            }
                        }
                    };
                    current = Some(loaded);
                    r
                }
            },
        };
        on_point(i, &result);
        out.push(result);
    }
    out
}
