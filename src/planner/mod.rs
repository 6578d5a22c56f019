//! The allocation planner: given a model and a machine, choose n_gpu_layers, MoE
//! expert placement, threads, batch sizes, context, KV-cache type, flash attention,
//! load mode and backend by predicted speed, within every memory budget, and explain
//! the choice.
//!
//! The machine's knowledge (pools, caps, broken combinations) comes from
//! [`crate::hardware`]'s rules table; the memory model is in [`memory`], the speed
//! model and its fitted constants in [`speed`], and this machine's corrections to them
//! (measured by `strix-run bench`) in [`calibration`].

mod advice;
pub mod calibration;
mod candidate;
pub mod emit;
pub mod memory;
pub mod reserve;
mod search;
pub mod serving;
pub mod speed;

use crate::gguf::GgmlType;
use crate::hardware::{Backend, Hardware};
use crate::model::ModelMeta;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

pub use memory::{ContextShape, DeviceBytes, GpuUse, MemoryEstimate, Placement};
pub use reserve::GpuReserve;
pub use speed::{Prediction, SpeedConstants};

/// What to optimise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Generated tokens per second (chat, writing).
    #[default]
    Generate,
    /// Prompt tokens per second (classification and routing agents that read long
    /// prompts and write little).
    Prompt,
}

/// KV-cache element types the planner considers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KvType {
    /// f16 (llama.cpp's default)
    F16,
    /// q8_0 (half the memory; needs flash attention for V)
    Q8_0,
    /// q4_0 (a quarter; needs flash attention for V)
    Q4_0,
}

impl KvType {
    /// The ggml type.
    pub fn ggml(self) -> GgmlType {
        match self {
            KvType::F16 => GgmlType::F16,
            KvType::Q8_0 => GgmlType::Q8_0,
            KvType::Q4_0 => GgmlType::Q4_0,
        }
    }

    /// The name llama.cpp's `-ctk/-ctv` take.
    pub fn name(self) -> &'static str {
        match self {
            KvType::F16 => "f16",
            KvType::Q8_0 => "q8_0",
            KvType::Q4_0 => "q4_0",
        }
    }
}

impl fmt::Display for KvType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KvType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f16" => Ok(KvType::F16),
            "q8_0" | "q8" => Ok(KvType::Q8_0),
            "q4_0" | "q4" => Ok(KvType::Q4_0),
            other => Err(format!("unknown KV cache type '{other}' (f16, q8_0, q4_0)")),
        }
    }
}

/// Values the user fixed. Each is honoured or the plan fails with a reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pinned {
    /// Backend.
    pub backend: Option<Backend>,
    /// n_gpu_layers (counting the output layer).
    pub n_gpu_layers: Option<u32>,
    /// --n-cpu-moe.
    pub n_cpu_moe: Option<u32>,
    /// Generation threads.
    pub threads: Option<u32>,
    /// Prompt threads.
    pub threads_batch: Option<u32>,
    /// Logical batch.
    pub n_batch: Option<u32>,
    /// Physical batch.
    pub n_ubatch: Option<u32>,
    /// K cache type.
    pub type_k: Option<KvType>,
    /// V cache type.
    pub type_v: Option<KvType>,
    /// Flash attention.
    pub flash_attn: Option<bool>,
    /// mmap the model file.
    pub use_mmap: Option<bool>,
}

/// What the user asks for.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Request {
    /// What to optimise.
    pub objective: Objective,
    /// Context length wanted (at least this much); default 4096 or the model's
    /// training context when smaller (the seed's production config used 2048-4096).
    pub n_ctx: Option<u32>,
    /// Parallel sequences (default 1).
    pub n_seq: Option<u32>,
    /// Pinned values.
    pub pinned: Pinned,
    /// RAM kept back for the OS and display (default: the hardware model's).
    pub os_reserve_bytes: Option<u64>,
    /// GPU memory to keep free below the GPU budget, whatever the placement (default:
    /// the backend's [`GpuReserve`]).
    pub gpu_reserve_bytes: Option<u64>,
    /// Speed constants to use (default [`SpeedConstants::SEED_FIT`]).
    #[serde(skip)]
    pub speed: Option<(SpeedConstants, bool)>,
}

/// The memory side of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryReport {
    /// Bytes on the GPU.
    pub gpu_bytes: u64,
    /// Bytes on the host.
    pub host_bytes: u64,
    /// What the backend may use on the GPU.
    pub gpu_budget_bytes: u64,
    /// What the host side may use.
    pub host_budget_bytes: u64,
    /// On unified memory: what GPU and host together may use.
    pub shared_budget_bytes: Option<u64>,
    /// GPU memory kept free below the GPU budget at this placement, for what the
    /// backend's runtime takes outside llama.cpp's buffers ([`GpuReserve`]).
    pub gpu_reserve_bytes: u64,
    /// By device and kind.
    pub breakdown: MemoryEstimate,
}

/// Something the planner considered and did not choose.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejected {
    /// What it was.
    pub option: String,
    /// Why not.
    pub reason: String,
}

/// The planner's decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Backend.
    pub backend: Backend,
    /// n_gpu_layers (counting the output layer).
    pub n_gpu_layers: u32,
    /// What llama.cpp counts as offloadable (blocks + output).
    pub n_layer_offloadable: u32,
    /// --n-cpu-moe.
    pub n_cpu_moe: u32,
    /// Generation threads.
    pub n_threads: u32,
    /// Prompt threads.
    pub n_threads_batch: u32,
    /// Logical batch.
    pub n_batch: u32,
    /// Physical batch.
    pub n_ubatch: u32,
    /// Context length llama.cpp will make: the request padded as llama.cpp pads it
    /// ([`memory::effective_n_ctx`]), and what the memory figures budget.
    pub n_ctx: u32,
    /// Context length asked for (`--ctx`, or the default); differs from `n_ctx` when
    /// llama.cpp's padding changes it.
    pub n_ctx_requested: u32,
    /// Parallel sequences.
    pub n_seq: u32,
    /// Flash attention.
    pub flash_attn: bool,
    /// K cache type.
    pub type_k: KvType,
    /// V cache type.
    pub type_v: KvType,
    /// mmap the model file (otherwise read it into allocated buffers).
    pub use_mmap: bool,
    /// Memory use against the budgets.
    pub memory: MemoryReport,
    /// Predicted speeds.
    pub predicted: Prediction,
    /// What stopped the planner from putting more on the GPU (or "none").
    pub binding_constraint: String,
    /// Alternatives considered and why they lost.
    pub rejected: Vec<Rejected>,
    /// Things to be careful about.
    pub warnings: Vec<String>,
    /// What would make it faster (BIOS, kernel parameters, backends).
    pub advice: Vec<String>,
}

impl Request {
    /// The request that pins every value of `plan`, with `base`'s objective, reserves
    /// and speed constants: planning it gives `plan`'s configuration again, predicted
    /// with `base`'s constants (how a measured point is compared with the default
    /// speed model when calibrating).
    pub fn pinning(plan: &Plan, base: &Request) -> Request {
        Request {
            objective: base.objective,
            n_ctx: Some(plan.n_ctx),
            n_seq: Some(plan.n_seq),
            pinned: Pinned {
                backend: Some(plan.backend),
                n_gpu_layers: Some(plan.n_gpu_layers),
                n_cpu_moe: Some(plan.n_cpu_moe),
                threads: Some(plan.n_threads),
                threads_batch: Some(plan.n_threads_batch),
                n_batch: Some(plan.n_batch),
                n_ubatch: Some(plan.n_ubatch),
                type_k: Some(plan.type_k),
                type_v: Some(plan.type_v),
                flash_attn: Some(plan.flash_attn),
                use_mmap: Some(plan.use_mmap),
            },
            os_reserve_bytes: base.os_reserve_bytes,
            gpu_reserve_bytes: base.gpu_reserve_bytes,
            speed: base.speed,
        }
    }
}

impl Plan {
    /// The context for people: `4096`, or `256 (asked 1)` when llama.cpp's padding
    /// changed the request.
    pub fn ctx_label(&self) -> String {
        if self.n_ctx == self.n_ctx_requested {
            self.n_ctx.to_string()
        } else {
            format!("{} (asked {})", self.n_ctx, self.n_ctx_requested)
        }
    }
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The pinned backend cannot run here.
    #[error("the {backend} backend cannot be used: {reason}. {advice}")]
    BackendRefused {
        /// the backend
        backend: Backend,
        /// why
        reason: String,
        /// what to do
        advice: String,
    },
    /// A pinned value is impossible on its face.
    #[error("--{flag} {value} is impossible: {reason}")]
    InvalidPin {
        /// the flag
        flag: &'static str,
        /// the value
        value: String,
        /// why
        reason: String,
    },
    /// Nothing fits, even with everything on the CPU.
    #[error("{model} does not fit on this machine: {reason}. {advice}")]
    DoesNotFit {
        /// the model
        model: String,
        /// the closest miss
        reason: String,
        /// what to do
        advice: String,
    },
}

/// The planner. Holds nothing but makes the API read well:
/// `Planner::plan(&model, &hardware, &request)`.
pub struct Planner;

impl Planner {
    /// Plans `model` on `hardware` for `request`.
    pub fn plan(
        model: &ModelMeta,
        hardware: &Hardware,
        request: &Request,
    ) -> Result<Plan, PlanError> {
        search::plan(model, hardware, request)
    }
}
