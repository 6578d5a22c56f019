//! What the machine offers: CPU, RAM, GPUs, the Strix Halo memory split (BIOS
//! carveout, Linux GTT), which backends the user has, and the rules saying where each
//! backend can allocate.
//!
//! A [`Hardware`] comes from detection ([`detect()`]), a preset ([`Hardware::preset`])
//! or a JSON profile ([`Hardware::load_profile`]), then command-line overrides
//! ([`HardwareOverrides`]); [`resolve`] does all of that. The planner then asks
//! [`Hardware::memory_pools`] how much GPU and host memory a backend can use.
//!
//! The facts encoded here are listed, with their public sources, in `docs/facts.md`
//! ('The machine', 'Bandwidth', 'Memory pools', 'Backends'); [`rules`] holds the
//! per-backend table.

mod backend;
mod detect;
mod device;
mod error;
mod known_devices;
mod overrides;
mod platform;
mod pools;
mod presets;
mod profile;
pub mod rules;
pub mod size;
mod ttm;
mod validate;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use backend::{
    Backend, BackendParseError, BackendRuntime, RuntimeFlavor, RuntimeFlavorParseError,
    RuntimeVersion, RuntimeVersionParseError,
};
pub use detect::{detect, DetectConfig};
pub use device::{CpuInfo, GpuDevice, GpuVendor};
pub use error::{DetectError, HardwareError, ProfileError};
pub use known_devices::{KnownGpu, KNOWN_GPUS};
pub use overrides::{resolve, HardwareOverrides};
pub use platform::{KernelParseError, KernelVersion, Os, OsParseError};
pub use pools::{BackendRefused, MemoryPools, PoolConfig, DEFAULT_OS_RESERVE};
pub use presets::PRESET_NAMES;
pub use rules::{
    rules_for, AllocationPool, BackendRules, BackendStatus, Evidence, MmapRule, RulesKey,
};
pub use size::{format_size, parse_size, SizeError};
pub use ttm::{TtmAdvice, TTM_PAGE_BYTES};

/// Where a [`Hardware`] description came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum HardwareSource {
    /// Read from this machine.
    #[default]
    Detected,
    /// A named preset (`--hw NAME`).
    Preset(String),
    /// A JSON profile (`--hw-profile FILE`).
    Profile(PathBuf),
}

/// Everything the planner needs to know about a machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardware {
    /// The operating system.
    pub os: Os,
    /// The kernel version (Linux), when known.
    #[serde(default)]
    pub kernel: Option<KernelVersion>,
    /// The CPU.
    pub cpu: CpuInfo,
    /// Physical RAM installed, carveout included (what the box is sold as: "128 GB").
    /// Detection reads MemTotal (which excludes the carveout and firmware
    /// reservations) and adds the carveout, so it lands slightly below the label.
    pub ram_total_bytes: u64,
    /// RAM the OS reports available now (MemAvailable).
    pub ram_available_bytes: u64,
    /// The GPU the planner would use by default is an iGPU sharing system RAM.
    pub unified_memory: bool,
    /// The BIOS UMA frame buffer (`mem_info_vram_total` on an AMD iGPU); `None` when
    /// unknown or when there is no iGPU.
    #[serde(default)]
    pub carveout_bytes: Option<u64>,
    /// The Linux GTT size (`mem_info_gtt_total`); `None` = the kernel default, half the
    /// system RAM (`docs/facts.md`, 'GTT and ttm.pages_limit').
    #[serde(default)]
    pub gtt_bytes: Option<u64>,
    /// An explicitly configured `ttm.pages_limit` in 4 KiB pages; `None` = default.
    #[serde(default)]
    pub ttm_pages_limit: Option<u64>,
    /// The GPUs, in DRM card order ([`Hardware::gpu_for`] picks one per backend).
    #[serde(default)]
    pub gpus: Vec<GpuDevice>,
    /// The backends the user has, with their runtimes.
    #[serde(default)]
    pub backends: Vec<BackendRuntime>,
    /// Memory bandwidth the CPU reads at, bytes per second.
    pub cpu_bandwidth_bytes_per_s: u64,
    /// Where this description came from.
    #[serde(default)]
    pub source: HardwareSource,
    /// The fields command-line overrides changed (flag names without dashes).
    #[serde(default)]
    pub overridden: Vec<String>,
    /// What detection guessed or could not find, for the user to check.
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Hardware {
    /// RAM left to the OS once the carveout is taken: what hipMalloc on Windows and
    /// the CPU backend allocate from (seed article, "BIOS Discovery", measured;
    /// `docs/facts.md`, 'Carveout').
    pub fn system_ram_bytes(&self) -> u64 {
        self.ram_total_bytes
            .saturating_sub(self.carveout_bytes.unwrap_or(0))
    }

    /// The runtime the user has for `backend`, if listed.
    pub fn runtime(&self, backend: Backend) -> Option<&BackendRuntime> {
        self.backends.iter().find(|r| r.backend == backend)
    }
}
