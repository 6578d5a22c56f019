//! Loading exactly what the planner planned: [`plan_and_load`] reads the model's header,
//! plans, and loads the model and a context with every field of the [`Plan`] applied,
//! stepping down to a smaller plan when llama.cpp cannot load or allocate.
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
use super::{llama_backend, BACKENDS};
use crate::gguf::GgufError;
use crate::hardware::{Backend, Hardware};
use crate::model::ModelMeta;
use crate::planner::{Plan, PlanError, Planner, Request};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use llama_cpp_sys_2 as sys;
use serde::Serialize;
use std::ffi::{c_void, CStr, CString};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::time::Instant;

/// llama.cpp's `LLAMA_MAX_SEQ` (src/llama-cparams.h): more sequences are refused.
const LLAMA_MAX_SEQ: u32 = 256;

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
    /// What the user asks the planner for (pins are honoured).
    pub request: Request,
    /// The machine to plan for.
    pub hardware: Hardware,
    /// Attempts before giving up (at least 1; default 4).
    pub max_attempts: u32,
    /// Show a progress bar while the weights load (only when stderr is a terminal).
    pub progress: bool,
    /// Test hook: make the first attempts fail on purpose (default [`Fault::None`]).
    pub fault: Fault,
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
        /// The reader's error.
        source: GgufError,
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
        plan.n_ctx,
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

/// The context parameters a [`Loaded`] context was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ContextSettings {
    /// Context size requested.
    pub n_ctx: u32,
    /// Logical batch.
    pub n_batch: u32,
    /// Physical batch.
    pub n_ubatch: u32,
    /// Sequences.
    pub n_seq_max: u32,
    /// Generation threads.
    pub n_threads: i32,
    /// Prompt threads.
    pub n_threads_batch: i32,
    /// `llama_flash_attn_type`: 0 off, 1 on.
    pub flash_attn: i32,
    /// ggml type id of the K cache.
    pub type_k: i32,
    /// ggml type id of the V cache.
    pub type_v: i32,
    /// KV cache and attention on the GPU.
    pub offload_kqv: bool,
    /// Full-size sliding-window cache (always off).
    pub swa_full: bool,
    /// One KV buffer for all sequences (always off).
    pub kv_unified: bool,
}

impl ContextSettings {
    /// What `plan` asks of the context.
    pub fn from_plan(plan: &Plan) -> Self {
        ContextSettings {
            n_ctx: plan.n_ctx,
            n_batch: plan.n_batch,
            n_ubatch: plan.n_ubatch,
            n_seq_max: plan.n_seq.max(1),
            n_threads: i32::try_from(plan.n_threads.max(1)).unwrap_or(i32::MAX),
            n_threads_batch: i32::try_from(plan.n_threads_batch.max(1)).unwrap_or(i32::MAX),
            flash_attn: i32::from(plan.flash_attn),
            type_k: plan.type_k.ggml().id() as i32,
            type_v: plan.type_v.ggml().id() as i32,
            offload_kqv: plan.backend.is_gpu(),
            swa_full: false,
            kv_unified: false,
        }
    }

    fn llama(&self) -> sys::llama_context_params {
        // SAFETY: returns a struct by value.
        let mut c = unsafe { sys::llama_context_default_params() };
        c.n_ctx = self.n_ctx;
        c.n_batch = self.n_batch;
        c.n_ubatch = self.n_ubatch;
        c.n_seq_max = self.n_seq_max;
        c.n_threads = self.n_threads;
        c.n_threads_batch = self.n_threads_batch;
        c.flash_attn_type = self.flash_attn as sys::llama_flash_attn_type;
        c.type_k = self.type_k as sys::ggml_type;
        c.type_v = self.type_v as sys::ggml_type;
        c.offload_kqv = self.offload_kqv;
        c.swa_full = self.swa_full;
        c.kv_unified = self.kv_unified;
        c.no_perf = false;
        c
    }
}

/// What decides the model load (a model is reused across attempts when this is equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ModelKey {
    backend: Backend,
    n_gpu_layers: u32,
    n_cpu_moe: u32,
    use_mmap: bool,
}

impl ModelKey {
    fn of(plan: &Plan) -> Self {
        ModelKey {
            backend: plan.backend,
            n_gpu_layers: plan.n_gpu_layers,
            n_cpu_moe: plan.n_cpu_moe,
            use_mmap: plan.use_mmap,
        }
    }
}

/// The `--n-cpu-moe` override patterns for `n` blocks, as llama.cpp's `common/arg.cpp`
/// writes them.
pub fn n_cpu_moe_patterns(n: u32) -> Vec<String> {
    (0..n)
        .map(|i| format!("blk\\.{i}\\.ffn_(up|down|gate|gate_up)_(ch|)exps"))
        .collect()
}

/// Load-progress state handed to llama.cpp's callback.
struct Progress {
    bar: ProgressBar,
    abort: bool,
}

unsafe extern "C" fn progress_callback(progress: f32, user_data: *mut c_void) -> bool {
    if user_data.is_null() {
        return true;
    }
    // SAFETY: `user_data` is the `Progress` boxed in the model's `Owned`, alive for the
    // model's lifetime; llama.cpp calls this only from the loading thread.
    let state = unsafe { &mut *user_data.cast::<Progress>() };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if state.abort {
            return false;
        }
        state
            .bar
            .set_position((progress.clamp(0.0, 1.0) * 1000.0) as u64);
        true
    }))
    .unwrap_or(false)
}

/// Memory llama.cpp keeps pointers into while the model exists: the override patterns
/// and list, the device list, the progress state.
struct Owned {
    _patterns: Vec<CString>,
    overrides: Vec<sys::llama_model_tensor_buft_override>,
    devices: Vec<sys::ggml_backend_dev_t>,
    progress: Box<Progress>,
}

/// A loaded llama.cpp model (`llama_model`), freed on drop.
pub struct Model {
    ptr: NonNull<sys::llama_model>,
    _owned: Box<Owned>,
    overrides: Vec<String>,
}

// SAFETY: a loaded llama_model is read-only; llama.cpp allows using it from any thread
// (llama-cpp-2's LlamaModel is Send + Sync too).
unsafe impl Send for Model {}
// SAFETY: as above.
unsafe impl Sync for Model {}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: the pointer came from llama_model_load_from_file and is freed once;
        // contexts borrowing it are dropped first (Loaded's field order).
        unsafe { sys::llama_model_free(self.ptr.as_ptr()) };
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("desc", &self.desc())
            .field("overrides", &self.overrides)
            .finish()
    }
}

impl Model {
    /// The raw `llama_model *` (valid while `self` lives).
    pub fn as_ptr(&self) -> *mut sys::llama_model {
        self.ptr.as_ptr()
    }

    /// llama.cpp's short description (`llama_model_desc`), e.g. `gemma3 270M Q4_K - Medium`.
    pub fn desc(&self) -> String {
        let mut buf = vec![0u8; 256];
        // SAFETY: buffer valid for its length; llama.cpp NUL-terminates.
        let n = unsafe { sys::llama_model_desc(self.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        buf.truncate(usize::try_from(n).unwrap_or(0).min(255));
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Parameters (`llama_model_n_params`).
    pub fn n_params(&self) -> u64 {
        // SAFETY: live model.
        unsafe { sys::llama_model_n_params(self.as_ptr()) }
    }

    /// Bytes of all weights (`llama_model_size`).
    pub fn size(&self) -> u64 {
        // SAFETY: live model.
        unsafe { sys::llama_model_size(self.as_ptr()) }
    }

    /// The model's own chat template (`tokenizer.chat_template`), if it has one.
    pub fn chat_template(&self) -> Option<String> {
        // SAFETY: live model; the returned string lives as long as the model.
        let p = unsafe { sys::llama_model_chat_template(self.as_ptr(), std::ptr::null()) };
        (!p.is_null()).then(|| {
            // SAFETY: NUL-terminated string owned by the model.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        })
    }

    /// The tensor buffer-type override patterns the model was loaded with.
    pub fn overrides(&self) -> &[String] {
        &self.overrides
    }

    /// The buffer type of every weight tensor.
    pub fn tensor_buffer_types(&self) -> Result<Vec<TensorBuffer>, ActualError> {
        tensor_buffer_types(self)
    }

    pub(crate) fn vocab(&self) -> *const sys::llama_vocab {
        // SAFETY: live model; the vocab lives as long as the model.
        unsafe { sys::llama_model_get_vocab(self.as_ptr()) }
    }
}

/// A llama.cpp context (`llama_context`), freed on drop. Only reachable through
/// [`Loaded`], which keeps its model alive longer.
pub struct Context {
    ptr: NonNull<sys::llama_context>,
    settings: ContextSettings,
}

// SAFETY: a llama_context may move between threads; it is not shared (no Sync).
unsafe impl Send for Context {}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: from llama_init_from_model, freed once, before its model.
        unsafe { sys::llama_free(self.ptr.as_ptr()) };
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Context {
    /// The raw `llama_context *` (valid while `self` lives).
    pub fn as_ptr(&self) -> *mut sys::llama_context {
        self.ptr.as_ptr()
    }

    /// What it was created with.
    pub fn settings(&self) -> &ContextSettings {
        &self.settings
    }

    /// Context size llama.cpp uses (`llama_n_ctx`; padded to 256).
    pub fn n_ctx(&self) -> u32 {
        // SAFETY: live context.
        unsafe { sys::llama_n_ctx(self.as_ptr()) }
    }

    /// Logical batch (`llama_n_batch`).
    pub fn n_batch(&self) -> u32 {
        // SAFETY: live context.
        unsafe { sys::llama_n_batch(self.as_ptr()) }
    }

    /// Physical batch (`llama_n_ubatch`).
    pub fn n_ubatch(&self) -> u32 {
        // SAFETY: live context.
        unsafe { sys::llama_n_ubatch(self.as_ptr()) }
    }

    /// Sequences (`llama_n_seq_max`).
    pub fn n_seq_max(&self) -> u32 {
        // SAFETY: live context.
        unsafe { sys::llama_n_seq_max(self.as_ptr()) }
    }

    /// Generation threads (`llama_n_threads`).
    pub fn n_threads(&self) -> i32 {
        // SAFETY: live context.
        unsafe { sys::llama_n_threads(self.as_ptr()) }
    }

    /// Prompt threads (`llama_n_threads_batch`).
    pub fn n_threads_batch(&self) -> i32 {
        // SAFETY: live context.
        unsafe { sys::llama_n_threads_batch(self.as_ptr()) }
    }
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
            overrides: self.model.overrides.clone(),
            attempts: self.attempts.clone(),
            load_seconds: self.load_seconds,
            actual: self.actual.clone(),
            memory: self.memory_comparison(),
        }
    }
}

/// The GPUs of `backend` among llama.cpp's devices (none for the CPU backend).
fn backend_devices(backend: Backend) -> Vec<sys::ggml_backend_dev_t> {
    if !backend.is_gpu() {
        return Vec::new();
    }
    let mut out = Vec::new();
    // SAFETY: ggml's device registry is initialised (llama_backend) and static.
    unsafe {
        for i in 0..sys::ggml_backend_dev_count() {
            let dev = sys::ggml_backend_dev_get(i);
            let kind = sys::ggml_backend_dev_type(dev);
            if kind != sys::GGML_BACKEND_DEVICE_TYPE_GPU
                && kind != sys::GGML_BACKEND_DEVICE_TYPE_IGPU
            {
                continue;
            }
            let name_ptr = sys::ggml_backend_dev_name(dev);
            if name_ptr.is_null() {
                continue;
            }
            let name = CStr::from_ptr(name_ptr)
                .to_string_lossy()
                .to_ascii_lowercase();
            let of = if name.starts_with("vulkan") {
                Some(Backend::Vulkan)
            } else if name.starts_with("rocm") || name.starts_with("hip") {
                Some(Backend::Hip)
            } else if name.starts_with("cuda") {
                Some(Backend::Cuda)
            } else {
                None
            };
            if of == Some(backend) {
                out.push(dev);
            }
        }
    }
    out
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

fn load_model(path: &CStr, plan: &Plan, bar: ProgressBar, abort: bool) -> Result<Model, String> {
    let patterns: Vec<CString> = n_cpu_moe_patterns(plan.n_cpu_moe)
        .into_iter()
        .map(|p| CString::new(p).expect("patterns have no NUL"))
        .collect();
    let mut owned = Box::new(Owned {
        overrides: Vec::new(),
        devices: backend_devices(plan.backend),
        progress: Box::new(Progress { bar, abort }),
        _patterns: Vec::new(),
    });
    // SAFETY: the CPU buffer type is a static of ggml.
    let cpu_buft = unsafe { sys::ggml_backend_cpu_buffer_type() };
    owned.overrides = patterns
        .iter()
        .map(|p| sys::llama_model_tensor_buft_override {
            pattern: p.as_ptr(),
            buft: cpu_buft,
        })
        .collect();
    owned.overrides.push(sys::llama_model_tensor_buft_override {
        pattern: std::ptr::null(),
        buft: std::ptr::null_mut(),
    });
    owned._patterns = patterns;
    // NULL-terminated; an empty list (just the NULL) means "no GPU", a NULL pointer
    // would mean "every device".
    owned.devices.push(std::ptr::null_mut());

    // SAFETY: returns a struct by value.
    let mut mp = unsafe { sys::llama_model_default_params() };
    mp.n_gpu_layers = i32::try_from(plan.n_gpu_layers).unwrap_or(i32::MAX);
    mp.load_mode = if plan.use_mmap {
        sys::LLAMA_LOAD_MODE_MMAP
    } else {
        sys::LLAMA_LOAD_MODE_NONE
    };
    mp.devices = owned.devices.as_mut_ptr();
    mp.tensor_buft_overrides = if plan.n_cpu_moe > 0 {
        owned.overrides.as_ptr()
    } else {
        std::ptr::null()
    };
    mp.progress_callback = Some(progress_callback);
    mp.progress_callback_user_data = std::ptr::from_mut(&mut *owned.progress).cast();

    // SAFETY: every pointer in `mp` points into `owned`, which the Model keeps (boxed,
    // never mutated again) as long as the llama_model exists.
    let raw = unsafe { sys::llama_model_load_from_file(path.as_ptr(), mp) };
    owned.progress.bar.finish_and_clear();
    match NonNull::new(raw) {
        Some(ptr) => Ok(Model {
            ptr,
            overrides: owned
                ._patterns
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            _owned: owned,
        }),
        None if abort => Err(
            "aborted through the load-progress callback (Fault::ModelLoad test hook)".to_owned(),
        ),
        None => Err(
            "llama.cpp could not load the model (allocation failed or the file is not loadable; \
             llama.cpp's log says why: RUST_LOG=llama-cpp-2=info)"
                .to_owned(),
        ),
    }
}

fn create_context(
    model: &Model,
    settings: ContextSettings,
    fault: bool,
) -> Result<Context, String> {
    let mut params = settings.llama();
    if fault {
        params.n_seq_max = LLAMA_MAX_SEQ + 1;
    }
    // SAFETY: `model` is a live llama_model; params is a plain struct.
    let raw = unsafe { sys::llama_init_from_model(model.as_ptr(), params) };
    match NonNull::new(raw) {
        Some(ptr) => {
            // SAFETY: live context; the callback only reads a static flag.
            unsafe {
                sys::llama_set_abort_callback(
                    ptr.as_ptr(),
                    Some(super::session::abort_requested),
                    std::ptr::null_mut(),
                )
            };
            Ok(Context { ptr, settings })
        }
        None if fault => Err(format!(
            "llama.cpp refused the context (n_seq_max {} > LLAMA_MAX_SEQ: Fault::Context test hook)",
            LLAMA_MAX_SEQ + 1
        )),
        None => Err(
            "llama.cpp could not create the context (KV cache or compute buffers could not be \
             allocated; llama.cpp's log says why: RUST_LOG=llama-cpp-2=info)"
                .to_owned(),
        ),
    }
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

/// Reads `model`'s header, plans it on `opts.hardware` for `opts.request`, and loads the
/// model and a context with every plan field applied (see the module docs), stepping
/// down to smaller plans when llama.cpp fails to load or allocate.
pub fn plan_and_load(model: &Path, opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let started = Instant::now();
    if !model.exists() {
        return Err(LoadError::ModelNotFound {
            path: model.to_path_buf(),
        });
    }
    let c_path = model
        .to_str()
        .and_then(|s| CString::new(s).ok())
        .ok_or_else(|| LoadError::BadPath {
            path: model.to_path_buf(),
        })?;
    let meta = ModelMeta::open(model).map_err(|source| LoadError::ReadModel {
        path: model.to_path_buf(),
        source,
    })?;
    let mut request = opts.request.clone();
    let mut plan = Planner::plan(&meta, &opts.hardware, &request)?;
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
