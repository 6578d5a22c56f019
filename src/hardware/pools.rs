//! How much GPU and host memory a backend can use on this machine: the rules table
//! ([`super::rules`]) applied to the machine's carveout, GTT and RAM.

use serde::Serialize;

use super::backend::{Backend, RuntimeFlavor};
use super::device::{GpuDevice, GpuVendor};
use super::platform::Os;
use super::rules::{rules_for, AllocationPool, BackendRules, BackendStatus, RulesKey};
use super::size::GIB;
use super::ttm::TTM_PAGE_BYTES;
use super::Hardware;

/// RAM kept back for the OS, the desktop and the display. Not from a source: a planner
/// knob. 4 GiB covers a desktop session with a browser open; the seed shows that
/// leaving too little hurts (62.0 GB of hipMalloc at a 2 GB carveout ran 4.5 tok/s
/// against 6.1 at 59.3 GB, seed article "The Windows Ceiling", measured).
pub const DEFAULT_OS_RESERVE: u64 = 4 * GIB;

/// Settings for [`Hardware::memory_pools_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// RAM kept back for the OS and display, subtracted from host memory (and from the
    /// shared total on unified memory).
    pub os_reserve_bytes: u64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            os_reserve_bytes: DEFAULT_OS_RESERVE,
        }
    }
}

/// The memory a backend may use. All budgets are already net of the OS reserve.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemoryPools {
    /// The most the backend can place on the GPU (after the rule's total cap).
    pub gpu_budget_bytes: u64,
    /// The most the CPU side (weights not offloaded, buffers) may use.
    pub host_budget_bytes: u64,
    /// On unified memory GPU and host come from the same RAM: the planner must also
    /// keep gpu + host (+ the host copy when `rules.resident_limit`) within this.
    /// `None` on a discrete GPU or without a GPU.
    pub shared_physical_bytes: Option<u64>,
    /// The OS reserve that was subtracted.
    pub os_reserve_bytes: u64,
    /// The rules that produced these numbers.
    pub rules: BackendRules,
}

/// A backend that cannot run on this machine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the {backend} backend cannot be used here: {reason}; {advice}")]
pub struct BackendRefused {
    /// The backend refused.
    pub backend: Backend,
    /// Why.
    pub reason: String,
    /// What to do instead.
    pub advice: String,
}

impl Hardware {
    /// The memory `backend` may use, with the default OS reserve.
    pub fn memory_pools(&self, backend: Backend) -> Result<MemoryPools, BackendRefused> {
        self.memory_pools_with(backend, &PoolConfig::default())
    }

    /// The memory `backend` may use, with explicit settings.
    pub fn memory_pools_with(
        &self,
        backend: Backend,
        config: &PoolConfig,
    ) -> Result<MemoryPools, BackendRefused> {
        let gpu = if backend.is_gpu() {
            Some(self.gpu_for(backend).ok_or_else(|| {
                BackendRefused {
                    backend,
                    reason: format!("no {} GPU was found", needed_vendor(backend)),
                    advice: "use the CPU backend, or describe the GPU with --hw PRESET, \
                         --hw-profile FILE or --gpu-mem"
                        .to_string(),
                }
            })?)
        } else {
            None
        };
        let rules = rules_for(&self.rules_key(backend, gpu));
        if let BackendStatus::Broken { reason, advice } = rules.status {
            return Err(BackendRefused {
                backend,
                reason: reason.to_string(),
                advice: advice.to_string(),
            });
        }
        let reserve = config.os_reserve_bytes;
        let host_budget = self.system_ram_bytes().saturating_sub(reserve);
        let unified = gpu.is_some_and(|g| g.integrated);
        let shared = unified.then(|| self.ram_total_bytes.saturating_sub(reserve));
        let vram = gpu.map_or(0, |g| g.vram_bytes);
        let gpu_budget = match rules.pool {
            AllocationPool::HostRam => 0,
            AllocationPool::Carveout => vram,
            AllocationPool::SystemRam => host_budget,
            // GTT pages are system RAM: never more than the host side has.
            AllocationPool::Gtt => self.effective_gtt_bytes().min(host_budget),
            AllocationPool::GttAndVram => {
                let summed = self
                    .effective_gtt_bytes()
                    .min(host_budget)
                    .saturating_add(vram);
                summed.min(shared.unwrap_or(summed))
            }
            AllocationPool::DedicatedVram => gpu
                .and_then(|g| g.free_bytes)
                .map_or(vram, |free| free.min(vram)),
        };
        let gpu_budget = rules
            .total_cap_bytes
            .map_or(gpu_budget, |cap| gpu_budget.min(cap));
        Ok(MemoryPools {
            gpu_budget_bytes: gpu_budget,
            host_budget_bytes: host_budget,
            shared_physical_bytes: shared,
            os_reserve_bytes: reserve,
            rules,
        })
    }

    /// The GTT size in effect: the measured size, else `ttm.pages_limit` pages of
    /// 4 KiB, else the kernel default of half the system RAM (`docs/facts.md`, 'GTT and
    /// ttm.pages_limit').
    pub fn effective_gtt_bytes(&self) -> u64 {
        self.gtt_bytes
            .or_else(|| {
                self.ttm_pages_limit
                    .map(|pages| pages.saturating_mul(TTM_PAGE_BYTES))
            })
            .unwrap_or_else(|| self.system_ram_bytes() / 2)
    }

    /// The GPU `backend` would run on: the first of a matching vendor, discrete
    /// preferred. Vulkan takes any vendor: detection drops unknown PCI vendors, so a GPU
    /// of vendor `Other` comes from llama.cpp's own device list (e.g. Mesa's lavapipe, a
    /// Vulkan device on the CPU), which runs Vulkan by definition.
    pub fn gpu_for(&self, backend: Backend) -> Option<&GpuDevice> {
        let fits = |g: &&GpuDevice| match backend {
            Backend::Cpu => false,
            Backend::Vulkan => true,
            Backend::Hip => g.vendor == GpuVendor::Amd,
            Backend::Cuda => g.vendor == GpuVendor::Nvidia,
        };
        let mut candidates = self.gpus.iter().filter(fits);
        let first = candidates.clone().next();
        candidates.find(|g| !g.integrated).or(first)
    }

    /// The key the rules table is looked up by for `backend` on `gpu`.
    fn rules_key(&self, backend: Backend, gpu: Option<&GpuDevice>) -> RulesKey {
        let runtime = self.runtime(backend);
        RulesKey {
            os: self.os,
            backend,
            flavor: runtime.map_or(RuntimeFlavor::LlamaCpp, |r| r.flavor),
            runtime: runtime.and_then(|r| r.version),
            kernel: if self.os == Os::Linux {
                self.kernel
            } else {
                None
            },
            gpu_vendor: gpu.map(|g| g.vendor),
            gfx_target: gpu.and_then(|g| g.gfx_target.clone()),
            unified: gpu.is_some_and(|g| g.integrated),
        }
    }
}

/// The vendor a backend needs, for messages.
fn needed_vendor(backend: Backend) -> &'static str {
    match backend {
        Backend::Hip => "AMD",
        Backend::Cuda => "NVIDIA",
        Backend::Vulkan | Backend::Cpu => "Vulkan-capable",
    }
}

#[cfg(test)]
#[path = "pools_tests.rs"]
mod tests;
