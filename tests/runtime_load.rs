//! `plan_and_load` on runnable synthetic models (written into a temporary folder with
//! real random weights): every plan field reaches llama.cpp (read back through llama.cpp's
//! own getters and its log of the tensor overrides it applied), planned against allocated memory,
//! and the step-down path when an attempt fails.
//!
//! The failing attempts use the loader's documented test hook (`LoadOptions::fault`): on
//! a CPU-only machine no allocation can be made to fail safely (Linux overcommit lets a
//! huge malloc succeed and then kills the process on first touch), so the hook makes
//! llama.cpp itself refuse the attempt: the model load is aborted through its
//! load-progress callback, or the context is asked for more sequences than llama.cpp
//! allows. Both return NULL from llama.cpp exactly as a failed allocation does.

use crate::support;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Once;
use strix_run::hardware::Hardware;
use strix_run::model::synth::{synth, SynthRequest};
use strix_run::planner::{KvType, Pinned, Request};
use strix_run::runtime::load::{
    plan_and_load, plan_summary, Fault, LoadError, LoadOptions, Loaded, Stage,
};
use strix_run::runtime::model::n_cpu_moe_patterns;

thread_local! {
    /// llama.cpp's log (routed to `tracing` by the runtime), captured at debug level, of
    /// the loads on this thread: the other tests of the binary load models at the same
    /// time, and llama.cpp logs a load on the thread that loads.
    static LOG: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Not during the thread's exit, when its log is gone.
        let _ = LOG.try_with(|log| log.borrow_mut().extend_from_slice(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_log() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
    });
}

/// This thread's log captured since the last call.
fn take_log() -> String {
    let bytes = LOG.with(|log| std::mem::take(&mut *log.borrow_mut()));
    String::from_utf8_lossy(&bytes).into_owned()
}

fn hardware() -> Hardware {
    capture_log();
    support::detected_hardware()
}

fn write(preset: &str, dir: &Path) -> PathBuf {
    let req = SynthRequest::new(preset, dir.join(format!("{preset}.gguf")));
    synth(&req).expect("synth").files.remove(0)
}

fn options(request: Request) -> LoadOptions {
    let mut opts = LoadOptions::new(request, hardware());
    opts.progress = false;
    opts
}

/// Planned against allocated on the host: weights (counted once) and context equal.
fn check_memory(label: &str, loaded: &Loaded) {
    support::print_memory(label, loaded);
    let cmp = loaded.memory_comparison();
    let host = cmp.iter().find(|c| c.side == "host").expect("host");
    let tensors = loaded.tensor_buffer_types().expect("tensors");
    // Allocated: exactly without mmap; with mmap llama.cpp maps the file from the first
    // to the last tensor, so the GGUF's alignment padding between tensors (at most 32
    // bytes each, `general.alignment`) is mapped too.
    if loaded.plan.use_mmap {
        assert!(
            host.actual_weights >= host.planned_weights
                && host.actual_weights - host.planned_weights <= 32 * tensors.len() as u64,
            "{label}: weights {} allocated, {} planned",
            host.actual_weights,
            host.planned_weights
        );
    } else {
        assert_eq!(
            host.actual_weights, host.planned_weights,
            "{label}: weights"
        );
    }
    assert_eq!(
        host.actual_context, host.planned_context,
        "{label}: context"
    );
    assert!(host.actual_compute > 0, "{label}: compute");
    // The weights tensor by tensor add up to the plan's exactly.
    let bytes: u64 = tensors.iter().map(|t| t.bytes).sum();
    assert_eq!(bytes, loaded.plan.memory.breakdown.host.weights, "{label}");
}

#[test]
fn every_plan_field_reaches_llama_cpp() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (preset, n_cpu_moe, use_mmap) in [("micro-moe", 2, false), ("micro-hybrid", 3, true)] {
        let path = write(preset, dir.path());
        let hw = hardware();
        take_log();
        let request = Request {
            n_ctx: Some(1536),
            n_seq: Some(2),
            pinned: Pinned {
                n_cpu_moe: Some(n_cpu_moe),
                threads: Some(1),
                threads_batch: Some(2),
                n_batch: Some(512),
                n_ubatch: Some(128),
                type_k: Some(KvType::Q8_0),
                type_v: Some(KvType::Q8_0),
                flash_attn: Some(true),
                use_mmap: Some(use_mmap),
                ..Pinned::default()
            },
            ..Request::default()
        };
        let mut opts = LoadOptions::new(request, hw);
        opts.progress = false;
        let loaded = plan_and_load(&path, &opts).expect("loads");
        let plan = &loaded.plan;
        eprintln!("{preset}: {}", plan_summary(plan));
        assert!(loaded.attempts.is_empty());
        assert_eq!(plan.n_cpu_moe, n_cpu_moe);
        assert_eq!(plan.use_mmap, use_mmap);

        // What llama.cpp's context reports.
        let ctx = loaded.context();
        assert_eq!(ctx.n_ctx(), 1536);
        assert_eq!(ctx.n_batch(), 512);
        assert_eq!(ctx.n_ubatch(), 128);
        assert_eq!(ctx.n_seq_max(), 2);
        assert_eq!(ctx.n_threads(), 1);
        assert_eq!(ctx.n_threads_batch(), 2);

        // The --n-cpu-moe overrides: llama.cpp's patterns, and llama.cpp's own word that it
        // overrode exactly the expert tensors of the first blocks. (On a CPU-only build
        // the buffer does not change: llama.cpp resolves an override to the CPU buffer
        // type through the CPU's buffer list, repacking included, so every weight ends
        // up in the same buffers either way; with a GPU backend they leave the GPU.)
        assert_eq!(loaded.model().overrides(), n_cpu_moe_patterns(n_cpu_moe));
        let log = take_log();
        let mut overridden: Vec<String> = log
            .lines()
            .filter(|l| l.contains("buffer type overridden to"))
            .filter_map(|l| {
                let rest = &l[l.find("tensor ")? + 7..];
                Some(rest.split_whitespace().next()?.to_owned())
            })
            .collect();
        overridden.sort();
        eprintln!("{preset}: llama.cpp overrode {overridden:?}");
        let mut expected: Vec<String> = (0..n_cpu_moe)
            .flat_map(|b| {
                ["ffn_down_exps", "ffn_gate_exps", "ffn_up_exps"]
                    .map(|t| format!("blk.{b}.{t}.weight"))
            })
            .collect();
        expected.sort();
        assert_eq!(overridden, expected, "{preset}");
        // The weights are all on the host side either way.
        let tensors = loaded.tensor_buffer_types().expect("tensors");
        assert!(
            tensors.iter().all(|t| t.buft.starts_with("CPU")),
            "{tensors:?}"
        );
        check_memory(preset, &loaded);
    }

    // Without --n-cpu-moe, llama.cpp overrides nothing.
    let path = dir.path().join("micro-moe.gguf");
    let request = Request {
        n_ctx: Some(512),
        pinned: Pinned {
            n_cpu_moe: Some(0),
            threads: Some(1),
            use_mmap: Some(false),
            ..Pinned::default()
        },
        ..Request::default()
    };
    take_log();
    let loaded = plan_and_load(&path, &options(request)).expect("loads");
    assert!(loaded.model().overrides().is_empty());
    assert!(!take_log().contains("buffer type overridden"));
    check_memory("micro-moe n_cpu_moe 0", &loaded);
}

#[test]
fn a_failed_attempt_steps_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write("micro-moe", dir.path());
    let request = Request {
        n_ctx: Some(1024),
        pinned: Pinned {
            threads: Some(1),
            ..Pinned::default()
        },
        ..Request::default()
    };

    for (fault, stage) in [
        (Fault::Context { attempts: 1 }, Stage::Context),
        (Fault::ModelLoad { attempts: 1 }, Stage::Model),
    ] {
        // The first attempt fails; the second, with a smaller plan, loads.
        let mut opts = options(request.clone());
        opts.fault = fault;
        let loaded = plan_and_load(&path, &opts).expect("the second attempt loads");
        eprintln!("{fault:?}: failed {:?}", loaded.attempts);
        assert_eq!(loaded.attempts.len(), 1);
        let first = &loaded.attempts[0];
        assert_eq!(first.number, 1);
        assert_eq!(first.stage, stage);
        assert!(first.plan.contains("batch 2048/512"), "{}", first.plan);
        // The step down: half the physical batch (no GPU layers to give back).
        assert_eq!(loaded.plan.n_ubatch, 256);
        assert_eq!(loaded.context().n_ubatch(), 256);
        assert_eq!(loaded.plan.n_ctx, 1024, "an explicit context is kept");

        // With one attempt allowed, the failure is reported with what was tried.
        opts.max_attempts = 1;
        match plan_and_load(&path, &opts) {
            Err(LoadError::AllAttemptsFailed { attempts }) => {
                assert_eq!(attempts.len(), 1);
                assert_eq!(attempts[0].number, 1);
                assert_eq!(attempts[0].stage, stage);
                let message = LoadError::AllAttemptsFailed {
                    attempts: attempts.clone(),
                }
                .to_string();
                eprintln!("{message}");
                assert!(message.contains("attempt 1"), "{message}");
                assert!(message.contains(&attempts[0].plan), "{message}");
            }
            other => panic!("expected AllAttemptsFailed, got {other:?}"),
        }
    }

    // Failing every attempt walks down the ladder and gives up after max_attempts.
    let mut opts = options(request);
    opts.fault = Fault::Context { attempts: 99 };
    opts.max_attempts = 3;
    match plan_and_load(&path, &opts) {
        Err(LoadError::AllAttemptsFailed { attempts }) => {
            let plans: Vec<&str> = attempts.iter().map(|a| a.plan.as_str()).collect();
            eprintln!("{plans:#?}");
            assert_eq!(attempts.len(), 3);
            assert!(plans[0].contains("batch 2048/512"));
            assert!(plans[1].contains("batch 2048/256"));
            assert!(plans[2].contains("batch 2048/128"));
        }
        other => panic!("expected AllAttemptsFailed, got {other:?}"),
    }
}

#[test]
fn a_backend_not_compiled_in_is_refused() {
    if strix_run::runtime::BACKENDS.contains("vulkan") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write("micro-moe", dir.path());
    let request = Request {
        pinned: Pinned {
            backend: Some(strix_run::hardware::Backend::Vulkan),
            ..Pinned::default()
        },
        ..Request::default()
    };
    let hw = strix_run::hardware::Hardware::preset("strix-halo-128").expect("preset");
    let mut opts = LoadOptions::new(request, hw);
    opts.progress = false;
    let err = plan_and_load(&path, &opts).expect_err("no vulkan in this build");
    eprintln!("{err}");
    assert!(matches!(err, LoadError::BackendNotCompiled { .. }), "{err}");
    assert!(err.to_string().contains("vulkan"));
}
