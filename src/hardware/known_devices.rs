//! GPUs we recognise by PCI id, and the bandwidth figures we use.
//!
//! Bandwidths marked "measured" come from lhl/strix-halo-testing; "vendor spec" figures
//! are nominal datasheet numbers; "assumption" figures are ours, deliberately low, for
//! hardware no source describes. A profile (`--hw-profile`) overrides all of them.

use super::device::GpuVendor;

/// One recognised GPU model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownGpu {
    /// PCI vendor id.
    pub vendor_id: u16,
    /// PCI device id.
    pub device_id: u16,
    /// Marketing name.
    pub name: &'static str,
    /// Shares system RAM.
    pub integrated: bool,
    /// LLVM target when a source names it.
    pub gfx_target: Option<&'static str>,
    /// Dedicated VRAM, for discrete cards whose driver exposes no size in sysfs.
    pub vram_bytes: Option<u64>,
    /// Read bandwidth, when known.
    pub bandwidth_bytes_per_s: Option<u64>,
}

/// PCI device id of the Radeon 8060S, the Strix Halo iGPU.
pub const STRIX_HALO_DEVICE_ID: u16 = 0x1586;

/// Strix Halo GPU read bandwidth: 212-221 GB/s measured (rocm_bandwidth_test,
/// memtest_vulkan) of 256 GB/s theoretical; we take the low end
/// (lhl/strix-halo-testing hardware-test/README.md, measured).
pub const STRIX_HALO_GPU_BANDWIDTH: u64 = 212_000_000_000;

/// Strix Halo CPU-side bandwidth: ~100-118 GB/s measured (likwid stream, Intel MLC);
/// we take the middle (lhl/strix-halo-testing hardware-test/README.md, measured).
pub const STRIX_HALO_CPU_BANDWIDTH: u64 = 110_000_000_000;

/// CPU bandwidth for a machine we do not recognise. Assumption (no source): a
/// dual-channel DDR5 desktop, rounded down so plans err on the slow side.
pub const UNKNOWN_CPU_BANDWIDTH: u64 = 50_000_000_000;

/// GPU bandwidth for a discrete card we do not recognise. Assumption (no source):
/// a mid-range card, rounded down so plans err on the slow side.
pub const UNKNOWN_DISCRETE_GPU_BANDWIDTH: u64 = 200_000_000_000;

/// The recognised GPUs. Device ids from pci.ids (pci-ids.ucw.cz).
pub const KNOWN_GPUS: &[KnownGpu] = &[
    // Strix Halo: Radeon 8060S, RDNA 3.5, gfx1151 (`docs/facts.md`, 'The machine').
    KnownGpu {
        vendor_id: GpuVendor::AMD_PCI_ID,
        device_id: STRIX_HALO_DEVICE_ID,
        name: "AMD Radeon 8060S (Strix Halo)",
        integrated: true,
        gfx_target: Some("gfx1151"),
        vram_bytes: None,
        bandwidth_bytes_per_s: Some(STRIX_HALO_GPU_BANDWIDTH),
    },
    // Other AMD APUs (pci.ids): recognised as integrated so the carveout is read as
    // such, with no target and no bandwidth: no source here measured them.
    amd_apu(0x150e, "AMD Radeon 880M/890M (Strix Point)"),
    amd_apu(0x15bf, "AMD Radeon 780M (Phoenix)"),
    amd_apu(0x15c8, "AMD Radeon 740M (Phoenix2)"),
    amd_apu(0x164e, "AMD Radeon Graphics (Raphael)"),
    amd_apu(0x1681, "AMD Radeon 680M (Rembrandt)"),
    amd_apu(0x1638, "AMD Radeon Vega (Cezanne)"),
    amd_apu(0x1636, "AMD Radeon Vega (Renoir)"),
    amd_apu(0x163f, "AMD Custom GPU 0405 (Van Gogh)"),
    // NVIDIA cards: VRAM and bandwidth from the vendor spec sheets (nominal).
    nvidia(
        0x2684,
        "NVIDIA GeForce RTX 4090",
        24 << 30,
        1_008_000_000_000,
    ),
    nvidia(0x2204, "NVIDIA GeForce RTX 3090", 24 << 30, 936_000_000_000),
    nvidia(
        0x2330,
        "NVIDIA H100 SXM5 80GB",
        80_000_000_000,
        3_350_000_000_000,
    ),
    nvidia(
        0x2331,
        "NVIDIA H100 PCIe 80GB",
        80_000_000_000,
        2_000_000_000_000,
    ),
];

/// An AMD APU entry without measurements.
const fn amd_apu(device_id: u16, name: &'static str) -> KnownGpu {
    KnownGpu {
        vendor_id: GpuVendor::AMD_PCI_ID,
        device_id,
        name,
        integrated: true,
        gfx_target: None,
        vram_bytes: None,
        bandwidth_bytes_per_s: None,
    }
}

/// An NVIDIA discrete card with vendor-spec VRAM and bandwidth.
const fn nvidia(device_id: u16, name: &'static str, vram: u64, bandwidth: u64) -> KnownGpu {
    KnownGpu {
        vendor_id: GpuVendor::NVIDIA_PCI_ID,
        device_id,
        name,
        integrated: false,
        gfx_target: None,
        vram_bytes: Some(vram),
        bandwidth_bytes_per_s: Some(bandwidth),
    }
}

/// The entry for a PCI vendor/device pair.
pub fn lookup(vendor_id: u16, device_id: u16) -> Option<&'static KnownGpu> {
    KNOWN_GPUS
        .iter()
        .find(|g| g.vendor_id == vendor_id && g.device_id == device_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strix_halo_is_gfx1151_integrated() {
        let g = lookup(0x1002, 0x1586);
        assert_eq!(g.and_then(|g| g.gfx_target), Some("gfx1151"));
        assert_eq!(g.map(|g| g.integrated), Some(true));
        assert!(lookup(0x10de, 0x1586).is_none());
    }

    #[test]
    fn ids_are_unique() {
        for (i, a) in KNOWN_GPUS.iter().enumerate() {
            for b in &KNOWN_GPUS[i + 1..] {
                assert!(
                    (a.vendor_id, a.device_id) != (b.vendor_id, b.device_id),
                    "{}",
                    b.name
                );
            }
        }
    }
}
