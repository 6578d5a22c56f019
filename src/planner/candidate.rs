//! A candidate placement with its memory and speed, and the memory check: what the
//! search ([`super::search`]) ranks and the advice ([`super::advice`]) reasons about.
//! Both use this module; it uses neither.

use super::memory::{ContextShape, GpuUse, MemoryEstimate, Placement};
use super::reserve::GpuReserve;
use super::speed::Prediction;
use super::{KvType, Objective};
use crate::hardware::{AllocationPool, Backend, MemoryPools};

/// llama.cpp's default physical batch, also the seed's best sweep point (batch 512).
pub(super) const DEFAULT_UBATCH: u32 = 512;
/// Quality cost charged to quantised KV caches when ranking candidates: they are
/// chosen only when they buy more than this in predicted speed. A policy choice, not a
/// measurement: llama.cpp's default is f16, and quantised KV costs some accuracy that
/// no source here quantifies.
const KV_Q8_PENALTY: f64 = 0.05;
const KV_Q4_PENALTY: f64 = 0.12;
/// Cost charged to a physical batch below the default when ranking: prompt speed
/// suffers (the seed's sweep found batch 512 best), so a smaller one is chosen only
/// when it buys more than this.
const SMALL_UBATCH_PENALTY: f64 = 0.02;

/// A budget a candidate broke.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Violation {
    /// `have` is the budget less `reserve`, the GPU memory kept free.
    Gpu {
        need: u64,
        have: u64,
        reserve: u64,
    },
    Host {
        need: u64,
        have: u64,
    },
    Shared {
        need: u64,
        have: u64,
    },
}

impl Violation {
    /// The broken budget in words, for the plan's reasons.
    pub(super) fn describe(&self, pools: &MemoryPools) -> String {
        let gb = |b: u64| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64);
        match self {
            Violation::Gpu {
                need,
                have,
                reserve,
            } => {
                let kept = if *reserve % (1 << 30) == 0 {
                    format!("{} GiB", *reserve >> 30)
                } else {
                    format!("{:.2} GiB", *reserve as f64 / (1u64 << 30) as f64)
                };
                let cap = match pools.rules.total_cap_bytes {
                    Some(c) if c == pools.gpu_budget_bytes => format!(
                        " (the backend's total allocation cap of {} less {kept} headroom; {})",
                        gb(c),
                        pools.rules.source
                    ),
                    _ => format!(" (less {kept} headroom)"),
                };
                format!("GPU memory: needs {}, budget {}{cap}", gb(*need), gb(*have))
            }
            Violation::Host { need, have } => {
                format!("host RAM: needs {}, budget {}", gb(*need), gb(*have))
            }
            Violation::Shared { need, have } => format!(
                "unified memory (GPU + host share the same RAM): needs {}, budget {}",
                gb(*need),
                gb(*have)
            ),
        }
    }
}

/// Checks a memory estimate against the pools, keeping `reserve` bytes of the GPU
/// budget free (see [`GpuReserve`]).
pub(super) fn check(
    mem: &MemoryEstimate,
    pools: &MemoryPools,
    reserve: u64,
) -> Result<(), Violation> {
    let gpu = mem.gpu.total();
    let host = mem.host.total();
    let gpu_limit = pools.gpu_budget_bytes.saturating_sub(reserve);
    if gpu > 0 && gpu > gpu_limit {
        return Err(Violation::Gpu {
            need: gpu,
            have: gpu_limit,
            reserve,
        });
    }
    if host > pools.host_budget_bytes {
        return Err(Violation::Host {
            need: host,
            have: pools.host_budget_bytes,
        });
    }
    // ROCm 7.2's SVM limit: the GPU buffers and their host copy must be resident
    // together (ROCM_72_TEST.md, via the rules table).
    let resident_copy = if pools.rules.resident_limit {
        mem.gpu.weights
    } else {
        0
    };
    let combined = gpu.saturating_add(host).saturating_add(resident_copy);
    let limit = match pools.rules.pool {
        // GPU memory taken from system RAM: both sides come out of the host budget.
        AllocationPool::SystemRam | AllocationPool::Gtt => Some(pools.host_budget_bytes),
        AllocationPool::GttAndVram => pools.shared_physical_bytes,
        _ => pools.shared_physical_bytes.filter(|_| resident_copy > 0),
    };
    match limit {
        Some(have) if combined > have => Err(Violation::Shared {
            need: combined,
            have,
        }),
        _ => Ok(()),
    }
}

/// One feasible configuration.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    pub backend: Backend,
    pub placement: Placement,
    pub ctx: ContextShape,
    pub mem: MemoryEstimate,
    pub prediction: Prediction,
    pub use_mmap: bool,
    pub gpu_use: GpuUse,
    pub pools: MemoryPools,
    /// How GPU memory is kept free below the budget.
    pub reserve: GpuReserve,
}

impl Candidate {
    /// Predicted tokens per second for `objective`.
    pub(super) fn speed(&self, objective: Objective) -> f64 {
        match objective {
            Objective::Generate => self.prediction.tg_tok_s,
            Objective::Prompt => self.prediction.pp_tok_s,
        }
    }

    /// [`Self::speed`] less the ranking costs of a quantised KV cache and of a small
    /// physical batch: what the search compares candidates by.
    pub(super) fn score(&self, objective: Objective) -> f64 {
        let kv_penalty = |t: KvType| match t {
            KvType::F16 => 0.0,
            KvType::Q8_0 => KV_Q8_PENALTY,
            KvType::Q4_0 => KV_Q4_PENALTY,
        };
        let penalty = kv_penalty(self.ctx.type_k).max(kv_penalty(self.ctx.type_v));
        let batch_penalty = if self.ctx.n_ubatch < DEFAULT_UBATCH {
            SMALL_UBATCH_PENALTY
        } else {
            0.0
        };
        self.speed(objective) * (1.0 - penalty) * (1.0 - batch_penalty)
    }
}
