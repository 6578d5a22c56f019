//! The CPU and GPUs of a machine.

use serde::{Deserialize, Serialize};

/// The CPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuInfo {
    /// Marketing name, e.g. "AMD RYZEN AI MAX+ 395 w/ Radeon 8060S".
    #[serde(default)]
    pub name: Option<String>,
    /// Physical cores. Threads beyond this are catastrophic on Strix Halo: 24 threads
    /// on a 16-core part ran 2.8 tok/s against 9.7 at 12 (seed article, measured).
    pub physical_cores: u32,
    /// Hardware threads (SMT siblings included).
    pub logical_threads: u32,
}

/// Who made a GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuVendor {
    /// AMD (PCI vendor 0x1002).
    Amd,
    /// NVIDIA (PCI vendor 0x10de).
    Nvidia,
    /// Intel (PCI vendor 0x8086).
    Intel,
    /// Anything else.
    Other,
}

impl GpuVendor {
    /// AMD's PCI vendor id (pci.ids).
    pub const AMD_PCI_ID: u16 = 0x1002;
    /// NVIDIA's PCI vendor id (pci.ids).
    pub const NVIDIA_PCI_ID: u16 = 0x10de;
    /// Intel's PCI vendor id (pci.ids).
    pub const INTEL_PCI_ID: u16 = 0x8086;

    /// The vendor for a PCI vendor id.
    pub fn from_pci(vendor_id: u16) -> GpuVendor {
        match vendor_id {
            Self::AMD_PCI_ID => GpuVendor::Amd,
            Self::NVIDIA_PCI_ID => GpuVendor::Nvidia,
            Self::INTEL_PCI_ID => GpuVendor::Intel,
            _ => GpuVendor::Other,
        }
    }
}

/// One GPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuDevice {
    /// Human-readable name.
    pub name: String,
    /// Who made it.
    pub vendor: GpuVendor,
    /// An iGPU that shares system RAM (Strix Halo's Radeon 8060S).
    pub integrated: bool,
    /// LLVM target, e.g. "gfx1151" for the Radeon 8060S; `None` when unknown.
    #[serde(default)]
    pub gfx_target: Option<String>,
    /// Dedicated VRAM; on an iGPU the BIOS carveout (UMA Frame Buffer Size).
    pub vram_bytes: u64,
    /// VRAM free right now, when the driver says.
    #[serde(default)]
    pub free_bytes: Option<u64>,
    /// Memory bandwidth the GPU reads at, bytes per second.
    pub bandwidth_bytes_per_s: u64,
}
