//! Named machines (`--hw NAME`), to plan for a box you are not sitting at.
//!
//! Strix Halo figures come from `docs/facts.md` ('The machine' and 'Bandwidth':
//! lhl/strix-halo-testing measurements; 'Memory pools' and 'Backends': seed repo
//! configurations).
//! Discrete cards use vendor spec sheets (nominal). The host side of the discrete
//! presets (RAM, cores, CPU bandwidth) is an assumed typical pairing: override it with
//! --ram / --cores / --cpu-threads.

use super::backend::{Backend, BackendRuntime, RuntimeVersion};
use super::device::{CpuInfo, GpuDevice, GpuVendor};
use super::error::HardwareError;
use super::known_devices::{
    STRIX_HALO_CPU_BANDWIDTH, STRIX_HALO_GPU_BANDWIDTH, UNKNOWN_CPU_BANDWIDTH,
};
use super::platform::Os;
use super::size::{GIB, MIB};
use super::{Hardware, HardwareSource};

/// The preset names, in the order `--help` lists them.
pub const PRESET_NAMES: &[&str] = &[
    "strix-halo-128",
    "strix-halo-128-win",
    "strix-halo-64",
    "rtx-4090",
    "rtx-3090",
    "h100-80",
];

impl Hardware {
    /// The named preset; an unknown name is an error listing the known ones.
    pub fn preset(name: &str) -> Result<Hardware, HardwareError> {
        let key = name.trim().to_ascii_lowercase();
        let hw = match key.as_str() {
            // Ryzen AI Max+ 395, 128 GB, Linux, 512 MiB carveout, default GTT.
            "strix-halo-128" => strix_halo(Os::Linux, 128 * GIB, 512 * MIB),
            // The seed's Windows box at the carveout where llama.cpp HIP SDK works
            // (2 GB; the 96 GB default starves hipMalloc: seed article, measured).
            "strix-halo-128-win" => strix_halo(Os::Windows, 128 * GIB, 2 * GIB),
            // The 64 GB model: same APU and bus (`docs/facts.md`, 'The machine').
            "strix-halo-64" => strix_halo(Os::Linux, 64 * GIB, 512 * MIB),
            // GeForce RTX 4090: 24 GB GDDR6X, 1008 GB/s (vendor spec).
            "rtx-4090" => discrete(
                desktop_host(),
                "NVIDIA GeForce RTX 4090",
                24 * GIB,
                1_008_000_000_000,
            ),
            // GeForce RTX 3090: 24 GB GDDR6X, 936 GB/s (vendor spec).
            "rtx-3090" => discrete(
                desktop_host(),
                "NVIDIA GeForce RTX 3090",
                24 * GIB,
                936_000_000_000,
            ),
            // H100 SXM5 80GB: 80 GB HBM3, 3.35 TB/s (vendor spec).
            "h100-80" => discrete(
                server_host(),
                "NVIDIA H100 SXM5 80GB",
                80_000_000_000,
                3_350_000_000_000,
            ),
            _ => {
                return Err(HardwareError::UnknownPreset {
                    name: name.to_string(),
                    known: PRESET_NAMES.join(", "),
                })
            }
        };
        Ok(Hardware {
            source: HardwareSource::Preset(key),
            ..hw
        })
    }
}

/// A Strix Halo box: 16 Zen 5 cores / 32 threads, Radeon 8060S (gfx1151), unified
/// LPDDR5X (`docs/facts.md`, 'The machine').
fn strix_halo(os: Os, ram: u64, carveout: u64) -> Hardware {
    let backends = match os {
        // kyuz0/amd-strix-halo-toolboxes ship Vulkan RADV and ROCm 7.2 builds.
        Os::Linux => vec![
            BackendRuntime::new(Backend::Cpu),
            BackendRuntime::new(Backend::Vulkan),
            BackendRuntime::versioned(Backend::Hip, RuntimeVersion::new(7, 2)),
        ],
        // The seed compiled llama.cpp with the HIP SDK 7.1 (README "Phase 3").
        _ => vec![
            BackendRuntime::new(Backend::Cpu),
            BackendRuntime::new(Backend::Vulkan),
            BackendRuntime::versioned(Backend::Hip, RuntimeVersion::new(7, 1)),
        ],
    };
    Hardware {
        os,
        kernel: None,
        cpu: CpuInfo {
            name: Some("AMD Ryzen AI Max+ 395".to_string()),
            physical_cores: 16,
            logical_threads: 32,
        },
        ram_total_bytes: ram,
        ram_available_bytes: ram - carveout,
        unified_memory: true,
        carveout_bytes: Some(carveout),
        gtt_bytes: None,
        ttm_pages_limit: None,
        gpus: vec![GpuDevice {
            name: "AMD Radeon 8060S (Strix Halo)".to_string(),
            vendor: GpuVendor::Amd,
            integrated: true,
            gfx_target: Some("gfx1151".to_string()),
            vram_bytes: carveout,
            free_bytes: None,
            bandwidth_bytes_per_s: STRIX_HALO_GPU_BANDWIDTH,
        }],
        backends,
        cpu_bandwidth_bytes_per_s: STRIX_HALO_CPU_BANDWIDTH,
        source: HardwareSource::Detected,
        overridden: Vec::new(),
        notes: Vec::new(),
    }
}

/// Assumed host of a gaming card: 64 GiB, 16 cores / 32 threads, dual-channel DDR5.
fn desktop_host() -> Hardware {
    host(64 * GIB, 16, 32, UNKNOWN_CPU_BANDWIDTH)
}

/// Assumed host of an H100: 256 GiB, 32 cores / 64 threads. 200 GB/s CPU bandwidth
/// is an assumption for a multi-channel server, well under its nominal peak.
fn server_host() -> Hardware {
    host(256 * GIB, 32, 64, 200_000_000_000)
}

/// A Linux host without a GPU.
fn host(ram: u64, cores: u32, threads: u32, bandwidth: u64) -> Hardware {
    Hardware {
        os: Os::Linux,
        kernel: None,
        cpu: CpuInfo {
            name: None,
            physical_cores: cores,
            logical_threads: threads,
        },
        ram_total_bytes: ram,
        ram_available_bytes: ram,
        unified_memory: false,
        carveout_bytes: None,
        gtt_bytes: None,
        ttm_pages_limit: None,
        gpus: Vec::new(),
        backends: vec![BackendRuntime::new(Backend::Cpu)],
        cpu_bandwidth_bytes_per_s: bandwidth,
        source: HardwareSource::Detected,
        overridden: Vec::new(),
        notes: vec!["host RAM, cores and CPU bandwidth are an assumed typical pairing".to_string()],
    }
}

/// `host` with one discrete NVIDIA card and the CUDA and Vulkan backends.
fn discrete(host: Hardware, name: &str, vram: u64, bandwidth: u64) -> Hardware {
    let mut hw = host;
    hw.gpus.push(GpuDevice {
        name: name.to_string(),
        vendor: GpuVendor::Nvidia,
        integrated: false,
        gfx_target: None,
        vram_bytes: vram,
        free_bytes: None,
        bandwidth_bytes_per_s: bandwidth,
    });
    hw.backends.push(BackendRuntime::new(Backend::Cuda));
    hw.backends.push(BackendRuntime::new(Backend::Vulkan));
    hw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_preset_exists_and_is_valid() {
        for name in PRESET_NAMES {
            let hw = Hardware::preset(name);
            assert!(hw.is_ok(), "{name}: {:?}", hw.err());
            if let Ok(hw) = hw {
                assert!(hw.validate().is_ok(), "{name}");
                assert_eq!(hw.source, HardwareSource::Preset(name.to_string()));
            }
        }
    }

    #[test]
    fn unknown_preset_lists_the_known_ones() {
        let err = Hardware::preset("strix-halo-256")
            .err()
            .map(|e| e.to_string());
        let msg = err.unwrap_or_default();
        assert!(msg.contains("strix-halo-256"), "{msg}");
        assert!(
            msg.contains("strix-halo-128-win") && msg.contains("h100-80"),
            "{msg}"
        );
    }

    #[test]
    fn strix_halo_128_matches_the_facts_sheet() -> Result<(), HardwareError> {
        let hw = Hardware::preset("Strix-Halo-128")?;
        assert_eq!(hw.os, Os::Linux);
        assert_eq!((hw.cpu.physical_cores, hw.cpu.logical_threads), (16, 32));
        assert_eq!(hw.ram_total_bytes, 137_438_953_472);
        assert_eq!(hw.carveout_bytes, Some(536_870_912));
        assert_eq!(hw.gpus[0].gfx_target.as_deref(), Some("gfx1151"));
        // Measured: GPU 212-221 GB/s, CPU 100-118 GB/s (lhl/strix-halo-testing).
        let gpu_bw = hw.gpus[0].bandwidth_bytes_per_s;
        assert!((212_000_000_000..=221_000_000_000).contains(&gpu_bw));
        assert!((100_000_000_000..=118_000_000_000).contains(&hw.cpu_bandwidth_bytes_per_s));
        // Default GTT: half of what the 512 MiB carveout leaves.
        assert_eq!(
            hw.effective_gtt_bytes(),
            (137_438_953_472 - 536_870_912) / 2
        );
        Ok(())
    }

    #[test]
    fn discrete_presets_use_vendor_numbers() -> Result<(), HardwareError> {
        let hw = Hardware::preset("rtx-4090")?;
        assert_eq!(hw.gpus[0].vram_bytes, 25_769_803_776);
        assert_eq!(hw.gpus[0].bandwidth_bytes_per_s, 1_008_000_000_000);
        assert!(!hw.unified_memory);
        let hw = Hardware::preset("h100-80")?;
        assert_eq!(hw.gpus[0].bandwidth_bytes_per_s, 3_350_000_000_000);
        assert_eq!(
            Hardware::preset("rtx-3090")?.gpus[0].bandwidth_bytes_per_s,
            936_000_000_000
        );
        Ok(())
    }
}
