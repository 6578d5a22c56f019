//! THE backend rules table: where each (OS, backend, runtime, kernel, GPU) combination
//! allocates GPU memory, how much it can get, and whether it works at all.
//!
//! How to read it: [`RULES`] is a list of rows; the first row whose `when` matches wins.
//! Every row cites its source; `docs/facts.md` lists each fact with its public source
//! ('Backends' for the rows, 'Memory pools' for the pools and caps). Evidence:
//! "measured" = someone ran it and published numbers, "claim" = stated without
//! numbers, "assumed" = ours, for combinations no source covers. Add a row above the
//! defaults at the bottom when a new measurement appears, and its fact to
//! `docs/facts.md`.
//!
//! The sizes in this file are decimal (GB = 10^9) because the sources write GB.

use serde::Serialize;

use super::backend::{Backend, RuntimeFlavor, RuntimeVersion};
use super::device::GpuVendor;
use super::platform::{KernelVersion, Os};

/// Where a backend's GPU buffers come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AllocationPool {
    /// Only the BIOS carveout (UMA Frame Buffer Size).
    Carveout,
    /// System RAM (what the carveout leaves), pinned by hipMalloc.
    SystemRam,
    /// The Linux GTT (system RAM the GPU may map), sized by `ttm.pages_limit`.
    Gtt,
    /// GTT plus the carveout: ggml-vulkan counts every memory heap of an iGPU
    /// (`docs/facts.md`, 'Which backend allocates from which pool').
    GttAndVram,
    /// A discrete GPU's own VRAM.
    DedicatedVram,
    /// Nothing on a GPU: host RAM only.
    HostRam,
}

/// Whether a backend works at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum BackendStatus {
    /// It works within the pool and cap given.
    Usable,
    /// It fails whatever the plan; use something else.
    Broken {
        /// What goes wrong.
        reason: &'static str,
        /// What to use instead.
        advice: &'static str,
    },
}

/// Whether to load the model with mmap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MmapRule {
    /// mmap is fine.
    Allowed,
    /// Load without mmap (`--no-mmap`) when the model is larger than this many bytes.
    AvoidAbove(u64),
}

impl MmapRule {
    /// Whether mmap is advisable for a model of `model_bytes`.
    pub fn allows(self, model_bytes: u64) -> bool {
        match self {
            MmapRule::Allowed => true,
            MmapRule::AvoidAbove(limit) => model_bytes <= limit,
        }
    }
}

/// How much trust a row deserves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Evidence {
    /// Someone ran it and published numbers.
    Measured,
    /// Stated by a vendor or maintainer without numbers.
    Claim,
    /// No source covers it: a conservative guess.
    Assumed,
}

/// What the table says about one combination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackendRules {
    /// Where GPU buffers come from.
    pub pool: AllocationPool,
    /// A hard ceiling on all GPU buffers together, whatever the pool holds.
    pub total_cap_bytes: Option<u64>,
    /// Works, or broken with advice.
    pub status: BackendStatus,
    /// ROCm 7.2 SVM: the GPU buffer and its host copy / page cache must be resident
    /// together, so on unified memory they count twice against RAM.
    pub resident_limit: bool,
    /// Whether mmap loading is advisable.
    pub mmap: MmapRule,
    /// How much to trust this row.
    pub evidence: Evidence,
    /// Facts worth showing the user.
    pub notes: Vec<&'static str>,
    /// Where the row comes from.
    pub source: &'static str,
}

/// What a rule is looked up by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulesKey {
    /// The OS.
    pub os: Os,
    /// The backend.
    pub backend: Backend,
    /// Who built the runtime.
    pub flavor: RuntimeFlavor,
    /// ROCm / HIP SDK / CUDA version, when known.
    pub runtime: Option<RuntimeVersion>,
    /// The kernel, when known (Linux).
    pub kernel: Option<KernelVersion>,
    /// The GPU's vendor (`None` without a GPU).
    pub gpu_vendor: Option<GpuVendor>,
    /// The GPU's LLVM target, e.g. "gfx1151".
    pub gfx_target: Option<String>,
    /// The GPU shares system RAM (an iGPU).
    pub unified: bool,
}

/// The rules for one combination: the first matching row of [`RULES`].
pub fn rules_for(key: &RulesKey) -> BackendRules {
    let then = RULES
        .iter()
        .find(|rule| rule.when.matches(key))
        .map(|rule| &rule.then)
        .unwrap_or(&FALLBACK);
    BackendRules {
        pool: then.pool,
        total_cap_bytes: then.cap,
        status: then.status,
        resident_limit: then.resident_limit,
        mmap: then.mmap,
        evidence: then.evidence,
        notes: then.notes.to_vec(),
        source: then.source,
    }
}

// ---------------------------------------------------------------------------------
// Constants the rows use.
// ---------------------------------------------------------------------------------

/// Windows HIP SDK 7.1 total hipMalloc ceiling. Measured: 59.3 GB ok, 62.0 GB ok,
/// 65.6 GB OOM (seed repo state.md), and it is a TOTAL across all hipMalloc calls:
/// splitting into several buffers does not help (seed repo README "Phase 3"); both in
/// `docs/facts.md`, 'Windows HIP SDK total cap'. The cap is the last measured
/// success, 62.0: the true ceiling lies between 62.0 and 65.6.
///
/// Unit: the seed's sizes are llama.cpp's buffer logs (printed in MiB) divided by
/// 1024, i.e. GiB. The check: its "80 GB" Qwen3-235B-A22B Q2_K is the 85.7 GB =
/// 79.8 GiB file, and its "107 GiB (115 GB)" 397B likewise. So the cap is 62.0 GiB.
/// The planner counts KV cache and compute buffers against it too, while the seed's
/// figures are the model buffer alone, which leaves a margin below the measured value.
pub const WINDOWS_HIP_SDK_TOTAL_CAP: u64 = 62 * 1024 * 1024 * 1024;

/// Above ~64 GB, mmap loading on ROCm is very slow because HIP pins every pageable
/// page (llama.cpp issue #15018, measured; `docs/facts.md`, 'Loading: mmap and --fit').
pub const ROCM_MMAP_SLOW_ABOVE: u64 = 64_000_000_000;

/// The ROCm release that first runs on gfx1151: 6.4 segfaults (seed repo, measured),
/// 7.2 runs (seed repo ROCM_72_TEST.md, measured); `docs/facts.md`, 'Which backend
/// allocates from which pool'.
pub const ROCM_FIRST_WORKING_GFX1151: RuntimeVersion = RuntimeVersion::new(7, 2);

/// Kernel 6.18.4 fixes the KFD memory limits on RDNA 3.5 APUs (AMD rocm-docs rdna3-5
/// page, claim). The page names queue creation and memory availability checks, not
/// ROCm 7.2's SVM error: that the fixes lift it is our reading (`docs/facts.md`,
/// 'Backends').
pub const KFD_LIMITS_FIXED_KERNEL: KernelVersion = KernelVersion::new(6, 18, 4);

/// The Strix Halo iGPU's LLVM target (`docs/facts.md`, 'The machine').
pub const STRIX_HALO_TARGET: &str = "gfx1151";

const HIP_CORRUPTION_NOTE: &str = "llama.cpp #25992: the HIP `integrated=true` host-buffer path \
     gave corrupted output on gfx1151; check outputs after upgrading llama.cpp";

// ---------------------------------------------------------------------------------
// The table.
// ---------------------------------------------------------------------------------

use AllocationPool::*;
use Pick::{Any, Is};

/// The rows, first match wins. The facts behind the Strix Halo rows, with their public
/// sources: `docs/facts.md`, 'Which backend allocates from which pool'.
pub const RULES: &[Rule] = &[
    // -- CPU -----------------------------------------------------------------------
    Rule {
        when: When {
            backend: Is(Backend::Cpu),
            ..ANYTHING
        },
        then: Then {
            pool: HostRam,
            evidence: Evidence::Measured,
            notes: &[
                "Never use more threads than physical cores: 24 threads on the 16-core \
                 Strix Halo ran 2.8 tok/s against 9.7 at 12 (seed article, measured)",
            ],
            source: "seed repo thebeedubya/autoresearch: CPU-only 397B at 9.15 tok/s (measured)",
            ..USABLE
        },
    },
    // -- Windows, Strix Halo / AMD UMA ---------------------------------------------
    Rule {
        when: When {
            os: Is(Os::Windows),
            backend: Is(Backend::Vulkan),
            gpu: Gpu::Vendor(GpuVendor::Amd),
            memory: Memory::Unified,
            ..ANYTHING
        },
        then: Then {
            pool: Carveout,
            status: BackendStatus::Broken {
                reason: "the AMD Windows Vulkan driver reports free memory on the iGPU but cannot \
                         allocate even 510 MB at a 16 GB or 2 GB carveout",
                advice: "on Windows use llama.cpp built with the HIP SDK and a small (2 GB) \
                         carveout, or run Linux, where Vulkan (Mesa RADV) works",
            },
            evidence: Evidence::Measured,
            notes: &["The seed article saw 572 MB fail at a 2 GB carveout"],
            source: "seed repo thebeedubya/autoresearch (measured); seed article (measured)",
            ..USABLE
        },
    },
    Rule {
        when: When {
            os: Is(Os::Windows),
            backend: Is(Backend::Hip),
            flavor: Is(RuntimeFlavor::Ollama),
            gpu: Gpu::Vendor(GpuVendor::Amd),
            memory: Memory::Unified,
            ..ANYTHING
        },
        then: Then {
            pool: Carveout,
            evidence: Evidence::Measured,
            notes: &[
                "Ollama's bundled ROCm 6 allocates only from the BIOS carveout: 96 GB carveout \
                 put 66/95 layers of 235B Q2_K on the GPU (10.4 tok/s), 16 GB ~19/95 (7.09), \
                 2 GB none (CPU only, 2.0)",
                "Raise the BIOS UMA Frame Buffer Size to give it more GPU memory; this starves \
                 HIP SDK builds, which allocate from what the carveout leaves",
            ],
            source: "seed repo thebeedubya/autoresearch state.md (measured)",
            ..USABLE
        },
    },
    Rule {
        when: When {
            os: Is(Os::Windows),
            backend: Is(Backend::Hip),
            flavor: Is(RuntimeFlavor::LlamaCpp),
            gpu: Gpu::Target(STRIX_HALO_TARGET),
            memory: Memory::Unified,
            ..ANYTHING
        },
        then: Then {
            pool: SystemRam,
            cap: Some(WINDOWS_HIP_SDK_TOTAL_CAP),
            mmap: MmapRule::AvoidAbove(ROCM_MMAP_SLOW_ABOVE),
            evidence: Evidence::Measured,
            notes: &[
                "hipMalloc pins system RAM (what the carveout leaves), with a ~60 GB TOTAL cap \
                 across all buffers: 59.3 GB ok, 62.0 GB ok, 65.6 GB OOM; splitting buffers \
                 does not help",
                "Keep the carveout small: at 96 GB only 32 GB of system RAM remains and a 56 GB \
                 buffer crashes",
                "62.0 GB at a 2 GB carveout ran at 4.5 tok/s against 6.1 at 59.3 GB (memory \
                 pressure); leave headroom",
                "Measured with HIP SDK 7.1; other versions are assumed to behave the same",
                "GGML_CUDA_ENABLE_UNIFIED_MEMORY (hipMallocManaged) fails with \
                 hipErrorOutOfMemory on RDNA 3.5 APUs under Windows",
                HIP_CORRUPTION_NOTE,
            ],
            source: "seed repo thebeedubya/autoresearch README \"Phase 3\" (measured)",
            ..USABLE
        },
    },
    // -- Linux, Vulkan on AMD UMA ----------------------------------------------------
    Rule {
        when: When {
            os: Is(Os::Linux),
            backend: Is(Backend::Vulkan),
            gpu: Gpu::Target(STRIX_HALO_TARGET),
            memory: Memory::Unified,
            ..ANYTHING
        },
        then: Then {
            pool: GttAndVram,
            evidence: Evidence::Measured,
            notes: &[
                "Mesa RADV exposes the GTT and the carveout as heaps and ggml sums them on an \
                 iGPU: 397B IQ2_XXS ran all 61/61 layers at 17-19 tok/s with \
                 ttm.pages_limit=30146560 (115 GiB)",
                "Raise the GTT with ttm.pages_limit (4 KiB pages), e.g. `amd-ttm --set 115`; \
                 amdgpu.gttsize is deprecated since ~6.17",
                "Vulkan buffers are split into ~1 GiB suballocation blocks; AMDVLK limits one \
                 buffer to 2 GiB",
            ],
            source: "seed repo thebeedubya/autoresearch README (measured)",
            ..USABLE
        },
    },
    Rule {
        when: When {
            os: Is(Os::Linux),
            backend: Is(Backend::Vulkan),
            gpu: Gpu::Vendor(GpuVendor::Amd),
            memory: Memory::Unified,
            ..ANYTHING
        },
        then: Then {
            pool: GttAndVram,
            evidence: Evidence::Assumed,
            notes: &[
                "Unverified for this AMD iGPU: assumed to behave like Strix Halo (same \
                      RADV driver, ggml sums the heaps)",
            ],
            source: "extrapolated from the Strix Halo row (seed repo README, measured on gfx1151)",
            ..USABLE
        },
    },
    // -- Linux, HIP (ROCm) on Strix Halo ---------------------------------------------
    Rule {
        when: When {
            os: Is(Os::Linux),
            backend: Is(Backend::Hip),
            runtime: Version::Below(ROCM_FIRST_WORKING_GFX1151),
            gpu: Gpu::Target(STRIX_HALO_TARGET),
            memory: Memory::Unified,
            ..ANYTHING
        },
        then: Then {
            pool: Gtt,
            status: BackendStatus::Broken {
                reason: "ROCm before 7.2 segfaults in libamdhip64 at any layer count on gfx1151 \
                         (measured with 6.4; 7.0 and 7.1 are untested and refused to be safe)",
                advice: "use Vulkan or ROCm >= 7.2",
            },
            evidence: Evidence::Measured,
            source: "seed repo thebeedubya/autoresearch (measured, ROCm 6.4)",
            ..USABLE
        },
    },
    Rule {
        when: When {
            os: Is(Os::Linux),
            backend: Is(Backend::Hip),
            runtime: Version::AtLeast(ROCM_FIRST_WORKING_GFX1151),
            kernel: Kernel::AtLeast(KFD_LIMITS_FIXED_KERNEL),
            gpu: Gpu::Target(STRIX_HALO_TARGET),
            memory: Memory::Unified,
            ..ANYTHING
        },
        then: Then {
            pool: Gtt,
            mmap: MmapRule::AvoidAbove(ROCM_MMAP_SLOW_ABOVE),
            evidence: Evidence::Claim,
            notes: &[
                "Kernel >= 6.18.4 is said to fix the KFD limits behind \"SVM mapping failed, \
                 exceeds resident system memory limit\"; not measured by the sources",
                "With a small carveout the driver backs VRAM allocations with GTT and HIP \
                 reports total memory = GTT size",
                "ROCm prompt processing is faster than Vulkan, Vulkan generation is faster \
                 (kyuz0/amd-strix-halo-toolboxes, measured)",
                HIP_CORRUPTION_NOTE,
            ],
            source: "AMD rocm-docs rdna3-5 page (claim); seed repo ROCM_72_TEST.md (measured \
                     on older kernels)",
            ..USABLE
        },
    },
    Rule {
        when: When {
            os: Is(Os::Linux),
            backend: Is(Backend::Hip),
            runtime: Version::AtLeast(ROCM_FIRST_WORKING_GFX1151),
            gpu: Gpu::Target(STRIX_HALO_TARGET),
            memory: Memory::Unified,
            ..ANYTHING
        },
        then: Then {
            pool: Gtt,
            resident_limit: true,
            mmap: MmapRule::AvoidAbove(ROCM_MMAP_SLOW_ABOVE),
            evidence: Evidence::Measured,
            notes: &[
                "ROCm 7.2 maps GTT through SVM: 10 layers / 16.8 GB ran (7.65 tok/s); larger \
                 failed with \"SVM mapping failed, exceeds resident system memory limit\" \
                 because the GPU buffer and its host copy / page cache must be resident together",
                "Kernel >= 6.18.4 is said to fix this (AMD rocm-docs rdna3-5 page, claim)",
                HIP_CORRUPTION_NOTE,
            ],
            source: "seed repo thebeedubya/autoresearch ROCM_72_TEST.md (measured)",
            ..USABLE
        },
    },
    Rule {
        when: When {
            os: Is(Os::Linux),
            backend: Is(Backend::Hip),
            runtime: Version::Unknown,
            gpu: Gpu::Target(STRIX_HALO_TARGET),
            memory: Memory::Unified,
            ..ANYTHING
        },
        then: Then {
            pool: Gtt,
            resident_limit: true,
            mmap: MmapRule::AvoidAbove(ROCM_MMAP_SLOW_ABOVE),
            evidence: Evidence::Assumed,
            notes: &[
                "ROCm version unknown: assuming >= 7.2. ROCm 6.4 segfaults on gfx1151; check \
                 /opt/rocm/.info/version or pass --runtime",
                HIP_CORRUPTION_NOTE,
            ],
            source: "seed repo thebeedubya/autoresearch ROCM_72_TEST.md (measured with 7.2)",
            ..USABLE
        },
    },
    // -- Discrete NVIDIA ---------------------------------------------------------------
    Rule {
        when: When {
            backend: Is(Backend::Cuda),
            gpu: Gpu::Vendor(GpuVendor::Nvidia),
            memory: Memory::Discrete,
            ..ANYTHING
        },
        then: Then {
            pool: DedicatedVram,
            evidence: Evidence::Claim,
            source: "CUDA programming guide: cudaMalloc allocates device memory (no \
                     measurement in the sources)",
            ..USABLE
        },
    },
    // -- Defaults: nothing above matched ----------------------------------------------
    Rule {
        when: When {
            memory: Memory::Discrete,
            ..ANYTHING
        },
        then: Then {
            pool: DedicatedVram,
            evidence: Evidence::Assumed,
            notes: &["Unverified combination: assuming the GPU's own VRAM only"],
            source: "assumed (no source covers this combination)",
            ..USABLE
        },
    },
    Rule {
        when: ANYTHING,
        then: FALLBACK,
    },
];

/// The most conservative row: on unified memory only the carveout is sure to be
/// device memory.
const FALLBACK: Then = Then {
    pool: Carveout,
    evidence: Evidence::Assumed,
    notes: &["Unverified combination: assuming only the carveout is GPU memory"],
    source: "assumed (no source covers this combination)",
    ..USABLE
};

// ---------------------------------------------------------------------------------
// The machinery the rows are written in.
// ---------------------------------------------------------------------------------

/// One row of the table.
#[derive(Debug)]
pub struct Rule {
    /// When it applies.
    pub when: When,
    /// What it says.
    pub then: Then,
}

/// A field that matches anything or one value.
#[derive(Clone, Copy, Debug)]
pub enum Pick<T> {
    /// Any value.
    Any,
    /// Exactly this value.
    Is(T),
}

impl<T: PartialEq> Pick<T> {
    fn matches(&self, value: &T) -> bool {
        match self {
            Pick::Any => true,
            Pick::Is(wanted) => wanted == value,
        }
    }
}

/// Which runtime versions a row covers.
#[derive(Clone, Copy, Debug)]
pub enum Version {
    /// Any version, known or not.
    Any,
    /// Known and lower than this.
    Below(RuntimeVersion),
    /// Known and at least this.
    AtLeast(RuntimeVersion),
    /// Not known.
    Unknown,
}

/// Which kernels a row covers.
#[derive(Clone, Copy, Debug)]
pub enum Kernel {
    /// Any kernel, known or not.
    Any,
    /// Known and at least this.
    AtLeast(KernelVersion),
}

/// Which GPUs a row covers.
#[derive(Clone, Copy, Debug)]
pub enum Gpu {
    /// Any GPU, or none.
    Any,
    /// A GPU of this vendor.
    Vendor(GpuVendor),
    /// A GPU with this LLVM target.
    Target(&'static str),
}

/// Unified or discrete memory.
#[derive(Clone, Copy, Debug)]
pub enum Memory {
    /// Either.
    Any,
    /// An iGPU sharing system RAM.
    Unified,
    /// A discrete GPU with its own VRAM.
    Discrete,
}

/// The conditions of a row.
#[derive(Clone, Copy, Debug)]
pub struct When {
    /// The OS.
    pub os: Pick<Os>,
    /// The backend.
    pub backend: Pick<Backend>,
    /// Who built the runtime.
    pub flavor: Pick<RuntimeFlavor>,
    /// Runtime versions.
    pub runtime: Version,
    /// Kernels.
    pub kernel: Kernel,
    /// GPUs.
    pub gpu: Gpu,
    /// Unified or discrete.
    pub memory: Memory,
}

/// A row that matches everything; rows override what they care about.
const ANYTHING: When = When {
    os: Any,
    backend: Any,
    flavor: Any,
    runtime: Version::Any,
    kernel: Kernel::Any,
    gpu: Gpu::Any,
    memory: Memory::Any,
};

impl When {
    fn matches(&self, key: &RulesKey) -> bool {
        let runtime = match (self.runtime, key.runtime) {
            (Version::Any, _) => true,
            (Version::Below(v), Some(k)) => k < v,
            (Version::AtLeast(v), Some(k)) => k >= v,
            (Version::Unknown, None) => true,
            _ => false,
        };
        let kernel = match (self.kernel, key.kernel) {
            (Kernel::Any, _) => true,
            (Kernel::AtLeast(v), Some(k)) => k >= v,
            (Kernel::AtLeast(_), None) => false,
        };
        let gpu = match self.gpu {
            Gpu::Any => true,
            Gpu::Vendor(v) => key.gpu_vendor == Some(v),
            Gpu::Target(t) => key.gfx_target.as_deref() == Some(t),
        };
        let memory = match self.memory {
            Memory::Any => true,
            Memory::Unified => key.unified,
            Memory::Discrete => !key.unified,
        };
        self.os.matches(&key.os)
            && self.backend.matches(&key.backend)
            && self.flavor.matches(&key.flavor)
            && runtime
            && kernel
            && gpu
            && memory
    }
}

/// What a row says (see [`BackendRules`] for the meaning of each field).
#[derive(Clone, Copy, Debug)]
pub struct Then {
    /// Where GPU buffers come from.
    pub pool: AllocationPool,
    /// Total ceiling on GPU buffers.
    pub cap: Option<u64>,
    /// Works or broken.
    pub status: BackendStatus,
    /// GPU buffer and host copy must be resident together.
    pub resident_limit: bool,
    /// mmap advice.
    pub mmap: MmapRule,
    /// How much to trust the row.
    pub evidence: Evidence,
    /// Facts to show.
    pub notes: &'static [&'static str],
    /// Where the row comes from.
    pub source: &'static str,
}

/// Defaults rows start from: usable, no cap, no resident limit, mmap allowed.
const USABLE: Then = Then {
    pool: Carveout,
    cap: None,
    status: BackendStatus::Usable,
    resident_limit: false,
    mmap: MmapRule::Allowed,
    evidence: Evidence::Assumed,
    notes: &[],
    source: "",
};

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
