//! Loading exactly what the planner planned: [`load`] takes the model's header (read
//! once, by whoever found the model) and a [`Plan`], and loads the model and a context
//! with every field of the plan applied, stepping down to a smaller plan when llama.cpp
//! cannot load or allocate. [`plan_and_load`] is the one-call convenience: read the
//! header, plan, load.
//!
//! What each plan field becomes in llama.cpp (`llama_model_params` /
//! `llama_context_params`):
//!
//! | plan | llama.cpp |
//! |---|---|
//! | `backend` | `devices`: the backend's GPUs (none for `cpu`); the backend must be compiled in ([`super::BACKENDS`]) |
//! | `n_gpu_layers` | `n_gpu_layers` |
//! | `n_cpu_moe` | one CPU tensor buffer-type override per block `i < n_cpu_moe`, pattern `blk\.{i}\.ffn_(up\|down\|gate\|gate_up)_(ch\|)exps` (llama.cpp's `common/arg.cpp`, `llm_add_n_cpu_ffn_overrides`) |
//! | `use_mmap` | `load_mode` MMAP or NONE |
//! | `n_threads`, `n_threads_batch` | `n_threads`, `n_threads_batch` |
//! | `n_batch`, `n_ubatch`, `n_ctx`, `n_seq` | `n_batch`, `n_ubatch`, `n_ctx`, `n_seq_max` |
//! | `flash_attn` | `flash_attn_type` ENABLED or DISABLED |
//! | `type_k`, `type_v` | `type_k`, `type_v` |
//! | (backend is a GPU) | `offload_kqv` |
//!
//! Like llama.cpp's command line (and the planner's memory model), `swa_full` and
//! `kv_unified` are off.
//!
//! # Stepping down
//!
//! When the model or the context fails to load (llama.cpp returns NULL: out of memory,
//! a refused allocation), the next attempt re-plans with one of, in this order:
//! fewer layers on the GPU (`pinned.n_gpu_layers` = previous − max(1, offloadable/8);
//! not when the user pinned it), half the physical batch (smaller compute buffers; not
//! below 64, not when pinned), half the context (not below 512, not when the request
//! named a context). Each failure is logged with `tracing::warn!` and returned in
//! [`Loaded::attempts`]; after [`LoadOptions::max_attempts`] (or when nothing smaller
//! is left) [`LoadError::AllAttemptsFailed`] lists every attempt. A model that loaded is
//! kept for the next attempt when only the context changes; everything else is freed
//! before the next attempt.
//!
//! Loading is not meant to run while an [`super::oracle`] call is in flight on another
//! thread: the oracle swaps llama.cpp's global logger for the duration of its call.

use super::actual::{actual_memory, tensor_buffer_types, ActualError, ActualMemory, TensorBuffer};
use super::context::{create_context, Context, ContextSettings};
use super::model::{load_model, Model, ModelKey, WeightLayout};
use super::{llama_backend, BACKENDS};
use crate::gguf::GgufError;
use crate::hardware::{Backend, Hardware};
use crate::model::ModelMeta;
use crate::planner::{Plan, PlanError, Planner, Request};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use llama_cpp_sys_2 as sys;
use serde::Serialize;
use std::ffi::CString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Deliberate failures for testing the step-down path (see [`LoadOptions::fault`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum Fault {
    /// No fault (the default).
    #[default]
    None,
    /// The first `attempts` model loads are aborted through llama.cpp's load-progress
    /// callback (`llama_model_load_from_file` then returns NULL, as on a failed
    /// allocation).
    ModelLoad {
        /// How many attempts fail.
        attempts: u32,
    },
    /// The first `attempts` contexts are requested with `n_seq_max` above llama.cpp's
    /// `LLAMA_MAX_SEQ`, which `llama_init_from_model` refuses (returns NULL, as when it
    /// cannot allocate the KV cache or compute buffers) before allocating anything.
    Context {
        /// How many attempts fail.
        attempts: u32,
    },
}

/// How to load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// What the user asked the planner for: [`plan_and_load`] plans it; [`load`] plans
    /// the smaller plans of a step-down from it (its pins are honoured).
    pub request: Request,
    /// The machine to plan for.
    pub hardware: Hardware,
    /// Attempts before giving up (at least 1; default 4).
    pub max_attempts: u32,
    /// Show a progress bar while the weights load (only when stderr is a terminal).
    pub progress: bool,
    /// Test hook: make the first attempts fail on purpose (default [`Fault::None`]).
    pub fault: Fault,
    /// How llama.cpp lays out the weights (CPU repacking).
    pub weights: WeightLayout,
}

impl LoadOptions {
    /// Options with 4 attempts, a progress bar on a terminal, no fault.
    pub fn new(request: Request, hardware: Hardware) -> Self {
        LoadOptions {
            request,
            hardware,
            max_attempts: 4,
            progress: true,
            fault: Fault::None,
            weights: WeightLayout::default(),
        }
    }
}

/// Which step of an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Planning (a step-down found no plan).
    Plan,
    /// `llama_model_load_from_file`.
    Model,
    /// `llama_init_from_model`.
    Context,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Plan => "plan",
            Stage::Model => "model load",
            Stage::Context => "context creation",
        })
    }
}

/// One failed attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// 1-based.
    pub number: u32,
    /// The plan tried ([`plan_summary`]).
    pub plan: String,
    /// What failed.
    pub stage: Stage,
    /// Why.
    pub error: String,
    /// Seconds the attempt took.
    pub seconds: f64,
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "attempt {} [{}]: {} failed: {}",
            self.number, self.plan, self.stage, self.error
        )
    }
}

fn list_attempts(attempts: &[Attempt]) -> String {
    attempts
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why [`plan_and_load`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The model file does not exist.
    #[error("model {path} not found")]
    ModelNotFound {
        /// The path.
        path: PathBuf,
    },
    /// The path cannot be passed to llama.cpp.
    #[error("model path {path} cannot be passed to llama.cpp (not UTF-8 or contains NUL)")]
    BadPath {
        /// The path.
        path: PathBuf,
    },
    /// The GGUF header could not be read.
    #[error("reading {path}: {source}")]
    ReadModel {
        /// The path.
        path: PathBuf,
        /// The reader's error (boxed: it is large, and rare).
        source: Box<GgufError>,
    },
    /// The planner found no plan.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The plan's backend is not compiled into this build.
    #[error(
        "the plan uses the {backend} backend, which this build does not include (it has: \
         {compiled}); pin the backend (--backend cpu) or build strix-run with the \
         `{backend}` feature"
    )]
    BackendNotCompiled {
        /// The plan's backend.
        backend: Backend,
        /// [`super::BACKENDS`].
        compiled: String,
    },
    /// Every attempt failed.
    #[error("could not load the model; {n} attempt(s) failed: {list}", n = attempts.len(), list = list_attempts(attempts))]
    AllAttemptsFailed {
        /// What was tried, in order.
        attempts: Vec<Attempt>,
    },
    /// [`Loaded::reconfigure`] could not switch to the plan.
    #[error("could not switch the loaded model to the new plan: {0}")]
    Reconfigure(String),
    /// Reading back what llama.cpp allocated failed.
    #[error("reading llama.cpp's memory breakdown: {0}")]
    Actual(#[from] ActualError),
}

/// One line describing a plan: backend, layers, experts, context, batches, KV types,
/// flash attention, threads, load mode.
pub fn plan_summary(plan: &Plan) -> String {
    format!(
        "{} ngl {}/{} n_cpu_moe {} ctx {} seq {} batch {}/{} kv {}/{} fa {} threads {}/{} {}",
        plan.backend,
        plan.n_gpu_layers,
        plan.n_layer_offloadable,
        plan.n_cpu_moe,
        plan.ctx_label(),
        plan.n_seq,
        plan.n_batch,
        plan.n_ubatch,
        plan.type_k,
        plan.type_v,
        if plan.flash_attn { "on" } else { "off" },
        plan.n_threads,
        plan.n_threads_batch,
        if plan.use_mmap { "mmap" } else { "no-mmap" },
    )
}

/// Planned against allocated bytes for one side (GPU or host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryComparison {
    /// `gpu` or `host`.
    pub side: &'static str,
    /// llama.cpp's devices summed on this side.
    pub devices: Vec<String>,
    /// Planned weights.
    pub planned_weights: u64,
    /// Allocated weights (llama.cpp's `model`): see [`MemoryComparison::actual_weights`].
    pub actual_model: u64,
    /// Weights in CPU repacking buffers (`CPU_REPACK`), part of `actual_model`.
    pub actual_repacked: u64,
    /// The weights counted once: with mmap, llama.cpp maps the file from its first to
    /// its last tensor, so the original bytes of repacked tensors are in the mapped
    /// buffer as well as in the repacking buffer (`actual_model` counts both); this is
    /// `actual_model` less the repacked bytes then (without mmap, `actual_model`).
    pub actual_weights: u64,
    /// Planned KV cache + recurrent state.
    pub planned_context: u64,
    /// Allocated KV cache + recurrent state.
    pub actual_context: u64,
    /// Planned compute buffers.
    pub planned_compute: u64,
    /// Allocated compute buffers.
    pub actual_compute: u64,
    /// Planned output (logits) buffer; llama.cpp does not report it.
    pub planned_output: u64,
}

/// A model and context loaded as planned.
///
/// Fields are dropped in order: the context before the model it uses.
pub struct Loaded {
    context: Context,
    model: Model,
    /// The plan that loaded.
    pub plan: Plan,
    /// The model's header summary.
    pub meta: ModelMeta,
    /// The attempts that failed before this one (empty when the first plan loaded).
    pub attempts: Vec<Attempt>,
    /// Wall time of [`plan_and_load`], failed attempts included.
    pub load_seconds: f64,
    /// What llama.cpp allocated, right after loading.
    pub actual: ActualMemory,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("model", &self.model)
            .field("context", &self.context)
            .field("plan", &plan_summary(&self.plan))
            .field("attempts", &self.attempts)
            .field("load_seconds", &self.load_seconds)
            .field("actual", &self.actual)
            .finish()
    }
}

/// The serialisable part of a [`Loaded`].
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// The plan that loaded.
    pub plan: Plan,
    /// The context parameters used.
    pub context: ContextSettings,
    /// Tensor buffer-type overrides used.
    pub overrides: Vec<String>,
    /// Failed attempts before it.
    pub attempts: Vec<Attempt>,
    /// Wall time of the load.
    pub load_seconds: f64,
    /// What llama.cpp allocated.
    pub actual: ActualMemory,
    /// Planned against allocated.
    pub memory: Vec<MemoryComparison>,
}

impl Loaded {
    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The context, mutably (decoding changes it).
    pub fn context_mut(&mut self) -> &mut Context {
        &mut self.context
    }

    /// Both; the context mutably.
    pub(crate) fn parts_mut(&mut self) -> (&Model, &mut Context) {
        (&self.model, &mut self.context)
    }

    /// Planned against allocated bytes: the GPU side (when the plan or llama.cpp used
    /// a GPU; all GPUs summed, as the planner models one) and the host side.
    pub fn memory_comparison(&self) -> Vec<MemoryComparison> {
        let planned = &self.plan.memory.breakdown;
        let mut out = Vec::new();
        let gpus = self.actual.gpus();
        if self.plan.backend.is_gpu() || !gpus.is_empty() {
            out.push(MemoryComparison {
                side: "gpu",
                devices: gpus.iter().map(|d| d.name.clone()).collect(),
                planned_weights: planned.gpu.weights,
                actual_model: gpus.iter().map(|d| d.model).sum(),
                actual_repacked: 0,
                actual_weights: gpus.iter().map(|d| d.model).sum(),
                planned_context: planned.gpu.context(),
                actual_context: gpus.iter().map(|d| d.context).sum(),
                planned_compute: planned.gpu.compute,
                actual_compute: gpus.iter().map(|d| d.compute).sum(),
                planned_output: planned.gpu.output,
            });
        }
        let host = self.actual.host();
        let buffers = &self.actual.buffers;
        let repacked: u64 = buffers
            .iter()
            .filter(|b| !b.is_host && b.is_cpu_device)
            .map(|b| b.model)
            .sum();
        let mapped = buffers
            .iter()
            .any(|b| b.is_host && b.buft.ends_with("_Mapped") && b.model > 0);
        out.push(MemoryComparison {
            side: "host",
            devices: vec![host.name.clone()],
            planned_weights: planned.host.weights,
            actual_model: host.model,
            actual_repacked: repacked,
            actual_weights: if mapped {
                host.model.saturating_sub(repacked)
            } else {
                host.model
            },
            planned_context: planned.host.context(),
            actual_context: host.context,
            planned_compute: planned.host.compute,
            actual_compute: host.compute,
            planned_output: planned.host.output,
        });
        out
    }

    /// The buffer type of every weight tensor.
    pub fn tensor_buffer_types(&self) -> Result<Vec<TensorBuffer>, ActualError> {
        tensor_buffer_types(&self.model)
    }

    /// Refreshes [`Loaded::actual`] (compute buffers can grow after the first decode).
    pub fn refresh_actual(&mut self) -> Result<&ActualMemory, ActualError> {
        self.actual = actual_memory(&self.context)?;
        Ok(&self.actual)
    }

    /// Whether `plan` can run on this loaded model (same backend, n_gpu_layers,
    /// n_cpu_moe and load mode), so that [`Loaded::reconfigure`] needs only a new
    /// context, or nothing.
    pub fn same_model(&self, plan: &Plan) -> bool {
        ModelKey::of(&self.plan) == ModelKey::of(plan)
    }

    /// Switches to `plan`, which must satisfy [`Loaded::same_model`]: the model is kept;
    /// when only the thread counts differ the context is kept too (with
    /// `llama_set_n_threads`), otherwise the context is freed and a new one is created
    /// with the plan's parameters. Returns the loaded model and whether a new context
    /// was made. On failure everything is freed (load again with [`plan_and_load`]).
    pub fn reconfigure(self, plan: Plan) -> Result<(Loaded, bool), LoadError> {
        if !self.same_model(&plan) {
            return Err(LoadError::Reconfigure(format!(
                "the plan needs another model load ({} instead of {})",
                plan_summary(&plan),
                plan_summary(&self.plan)
            )));
        }
        let started = Instant::now();
        let wanted = ContextSettings::from_plan(&plan);
        let mut current = self.context.settings;
        current.n_threads = wanted.n_threads;
        current.n_threads_batch = wanted.n_threads_batch;
        let Loaded {
            context,
            model,
            meta,
            attempts,
            ..
        } = self;
        let (context, new_context) = if current == wanted {
            let mut context = context;
            // SAFETY: live context.
            unsafe {
                sys::llama_set_n_threads(context.as_ptr(), wanted.n_threads, wanted.n_threads_batch)
            };
            context.settings = wanted;
            (context, false)
        } else {
            // The old context goes first: its KV cache and compute buffers are freed
            // before the new ones are allocated.
            drop(context);
            let context = create_context(&model, wanted, false).map_err(LoadError::Reconfigure)?;
            (context, true)
        };
        let actual = actual_memory(&context)?;
        Ok((
            Loaded {
                context,
                model,
                plan,
                meta,
                attempts,
                load_seconds: started.elapsed().as_secs_f64(),
                actual,
            },
            new_context,
        ))
    }

    /// The serialisable report.
    pub fn report(&self) -> LoadReport {
        LoadReport {
            plan: self.plan.clone(),
            context: self.context.settings,
            overrides: self.model.overrides().to_vec(),
            attempts: self.attempts.clone(),
            load_seconds: self.load_seconds,
            actual: self.actual.clone(),
            memory: self.memory_comparison(),
        }
    }
}

fn backend_compiled(backend: Backend) -> bool {
    let name = backend.to_string();
    BACKENDS.split(',').any(|b| b.trim() == name)
}

fn progress_bar(show: bool, label: &str) -> ProgressBar {
    if !show || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {percent:>3}% {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_owned());
    bar
}

/// The next smaller request after `plan` failed, and what changed; `None` when nothing
/// is left to shrink. Pins and an explicit context are honoured.
fn smaller_request(user: &Request, current: &Request, plan: &Plan) -> Option<(Request, String)> {
    let mut next = current.clone();
    next.pinned.backend = Some(plan.backend);
    if plan.n_gpu_layers > 0 && user.pinned.n_gpu_layers.is_none() {
        let step = (plan.n_layer_offloadable / 8).max(1);
        let ngl = plan.n_gpu_layers.saturating_sub(step);
        next.pinned.n_gpu_layers = Some(ngl);
        return Some((next, format!("n_gpu_layers {} -> {ngl}", plan.n_gpu_layers)));
    }
    if plan.n_ubatch > 64 && user.pinned.n_ubatch.is_none() {
        let ub = plan.n_ubatch / 2;
        next.pinned.n_ubatch = Some(ub);
        return Some((next, format!("n_ubatch {} -> {ub}", plan.n_ubatch)));
    }
    if plan.n_ctx > 512 && user.n_ctx.is_none() {
        let ctx = (plan.n_ctx / 2).max(512);
        next.n_ctx = Some(ctx);
        return Some((next, format!("n_ctx {} -> {ctx}", plan.n_ctx)));
    }
    None
}

/// Reads `model`'s header, plans it on `opts.hardware` for `opts.request`, and
/// [`load`]s the plan: the one call for a caller that has not read the header.
pub fn plan_and_load(model: &Path, opts: &LoadOptions) -> Result<Loaded, LoadError> {
    if !model.exists() {
        return Err(LoadError::ModelNotFound {
            path: model.to_path_buf(),
        });
    }
    let meta = ModelMeta::open(model).map_err(|source| LoadError::ReadModel {
        path: model.to_path_buf(),
        source: Box::new(source),
    })?;
    let plan = Planner::plan(&meta, &opts.hardware, &opts.request)?;
    load(meta, plan, opts)
}

/// Loads the model `meta` describes (its [`ModelMeta::path`]) and a context with every
/// field of `plan` applied (see the module docs), stepping down to smaller plans of
/// `opts.request` when llama.cpp fails to load or allocate. The header is not read
/// again: the step-down re-plans from `meta`.
pub fn load(meta: ModelMeta, plan: Plan, opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let started = Instant::now();
    let model = meta.path.clone();
    let model = model.as_path();
    let c_path = model
        .to_str()
        .and_then(|s| CString::new(s).ok())
        .ok_or_else(|| LoadError::BadPath {
            path: model.to_path_buf(),
        })?;
    let mut plan = plan;
    let mut request = opts.request.clone();
    if !backend_compiled(plan.backend) {
        return Err(LoadError::BackendNotCompiled {
            backend: plan.backend,
            compiled: BACKENDS.to_owned(),
        });
    }
    llama_backend();

    let name = meta.name.clone().unwrap_or_else(|| {
        model
            .file_name()
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned())
    });
    let max_attempts = opts.max_attempts.max(1);
    let mut failed: Vec<Attempt> = Vec::new();
    let mut kept: Option<(ModelKey, Model)> = None;
    for number in 1..=max_attempts {
        let t = Instant::now();
        let summary = plan_summary(&plan);
        tracing::info!(attempt = number, plan = %summary, "loading {name}");
        let key = ModelKey::of(&plan);
        let (fault_model, fault_context) = match opts.fault {
            Fault::None => (false, false),
            Fault::ModelLoad { attempts } => (number <= attempts, false),
            Fault::Context { attempts } => (false, number <= attempts),
        };
        let loaded_model = match kept.take() {
            Some((k, m)) if k == key && !fault_model => Ok(m),
            other => {
                drop(other);
                let label = if number == 1 {
                    format!("loading {name}")
                } else {
                    format!("loading {name} (attempt {number})")
                };
                load_model(
                    &c_path,
                    &plan,
                    opts.weights,
                    progress_bar(opts.progress, &label),
                    fault_model,
                )
            }
        };
        let failure = match loaded_model {
            Err(error) => (Stage::Model, error),
            Ok(m) => match create_context(&m, ContextSettings::from_plan(&plan), fault_context) {
                Ok(context) => {
                    let actual = actual_memory(&context)?;
                    let loaded = Loaded {
                        context,
                        model: m,
                        plan,
                        meta,
                        attempts: failed,
                        load_seconds: started.elapsed().as_secs_f64(),
                        actual,
                    };
                    tracing::info!(
                        seconds = loaded.load_seconds,
                        attempts = loaded.attempts.len() + 1,
                        "loaded {name}"
                    );
                    return Ok(loaded);
                }
                Err(error) => {
                    kept = Some((key, m));
                    (Stage::Context, error)
                }
            },
        };
        let attempt = Attempt {
            number,
            plan: summary,
            stage: failure.0,
            error: failure.1,
            seconds: t.elapsed().as_secs_f64(),
        };
        if number == max_attempts {
            tracing::warn!("{attempt}; no attempts left (max_attempts {max_attempts})");
            failed.push(attempt);
            break;
        }
        match smaller_request(&opts.request, &request, &plan) {
            None => {
                tracing::warn!("{attempt}; no smaller plan to try");
                failed.push(attempt);
                break;
            }
            Some((next, change)) => match Planner::plan(&meta, &opts.hardware, &next) {
                Ok(p) => {
                    tracing::warn!("{attempt}; retrying with a smaller plan ({change})");
                    failed.push(attempt);
                    request = next;
                    plan = p;
                }
                Err(e) => {
                    tracing::warn!("{attempt}; the smaller plan ({change}) failed: {e}");
                    failed.push(attempt);
                    failed.push(Attempt {
                        number: number + 1,
                        plan: change,
                        stage: Stage::Plan,
                        error: e.to_string(),
                        seconds: 0.0,
                    });
                    break;
                }
            },
        }
    }
    drop(kept);
    Err(LoadError::AllAttemptsFailed { attempts: failed })
}
