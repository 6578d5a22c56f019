//! Memory pools for the seed's configurations. Sizes are written out by hand.

use super::*;
use crate::hardware::{
    BackendRuntime, GpuDevice, HardwareError, HardwareOverrides, RuntimeVersion,
};

const GIB: u64 = 1_073_741_824;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn windows_strix(carveout: u64) -> Result<Hardware, HardwareError> {
    HardwareOverrides {
        carveout: Some(carveout),
        ..HardwareOverrides::default()
    }
    .apply(Hardware::preset("strix-halo-128-win")?)
}

#[test]
fn windows_hip_sdk_never_exceeds_the_total_cap() -> TestResult {
    for carveout in [512 << 20, 2 * GIB, 16 * GIB, 32 * GIB, 64 * GIB, 96 * GIB] {
        let pools = windows_strix(carveout)?.memory_pools(Backend::Hip)?;
        assert_eq!(pools.rules.pool, AllocationPool::SystemRam);
        // 65.6 GB (llama.cpp's MiB logs / 1024, so GiB) ran out of memory on the seed's box.
        assert!(
            pools.gpu_budget_bytes < 65_600 * GIB / 1000,
            "carveout {carveout}"
        );
    }
    // At a 2 GB carveout 126 GiB of RAM is free, so the cap is what binds: the
    // 59.3 GB buffer of 33 layers of 397B fits and so does the 62.0 GB one.
    let pools = windows_strix(2 * GIB)?.memory_pools(Backend::Hip)?;
    assert!(pools.gpu_budget_bytes >= 62 * GIB);
    Ok(())
}

#[test]
fn windows_hip_sdk_with_96g_carveout_cannot_hold_a_56_gb_buffer() -> TestResult {
    let hw = windows_strix(96 * GIB)?;
    let pools = hw.memory_pools(Backend::Hip)?;
    // Only 32 GiB of system RAM remain (seed article, measured crash).
    assert!(pools.gpu_budget_bytes < 56_000_000_000);
    assert!(pools.gpu_budget_bytes <= 32 * GIB);
    assert_eq!(pools.host_budget_bytes, 28 * GIB);
    Ok(())
}

#[test]
fn windows_ollama_rocm6_gets_the_carveout() -> TestResult {
    let mut hw = windows_strix(96 * GIB)?;
    hw.backends = vec![BackendRuntime {
        flavor: RuntimeFlavor::Ollama,
        ..BackendRuntime::versioned(Backend::Hip, RuntimeVersion::new(6, 1))
    }];
    let pools = hw.memory_pools(Backend::Hip)?;
    assert_eq!(pools.gpu_budget_bytes, 103_079_215_104);
    // 66 of 95 layers of 235B Q2_K = 56.5 GB fit (seed, measured).
    assert!(pools.gpu_budget_bytes > 56_500_000_000);
    let mut small = windows_strix(2 * GIB)?;
    small.backends = hw.backends.clone();
    assert_eq!(
        small.memory_pools(Backend::Hip)?.gpu_budget_bytes,
        2_147_483_648
    );
    Ok(())
}

#[test]
fn windows_vulkan_is_refused_with_advice() -> TestResult {
    let refused = windows_strix(16 * GIB)?.memory_pools(Backend::Vulkan).err();
    let Some(refused) = refused else {
        return Err("Windows Vulkan on Strix Halo must be refused".into());
    };
    assert_eq!(refused.backend, Backend::Vulkan);
    assert!(refused.advice.contains("HIP SDK"));
    assert!(refused.to_string().contains("vulkan"));
    Ok(())
}

#[test]
fn linux_vulkan_default_gtt_plus_carveout() -> TestResult {
    let hw = Hardware::preset("strix-halo-128")?;
    let pools = hw.memory_pools(Backend::Vulkan)?;
    // (128 GiB - 0.5 GiB) / 2 + 0.5 GiB = 64.25 GiB.
    assert_eq!(pools.gpu_budget_bytes, 68_987_912_192);
    assert_eq!(pools.shared_physical_bytes, Some(124 * GIB));
    assert_eq!(pools.host_budget_bytes, 132_607_115_264);
    Ok(())
}

#[test]
fn linux_vulkan_with_the_seed_ttm_setting_holds_397b() -> TestResult {
    let hw = HardwareOverrides {
        ttm_pages_limit: Some(30_146_560),
        ..HardwareOverrides::default()
    }
    .apply(Hardware::preset("strix-halo-128")?)?;
    let pools = hw.memory_pools(Backend::Vulkan)?;
    // 115 GiB + 512 MiB.
    assert_eq!(pools.gpu_budget_bytes, 124_017_180_672);
    // All 61 layers of 397B (109 GB) ran on the GPU (seed repo README, measured).
    assert!(pools.gpu_budget_bytes > 109_000_000_000);
    Ok(())
}

#[test]
fn gtt_larger_than_ram_is_clamped_to_the_shared_total() -> TestResult {
    let mut hw = Hardware::preset("strix-halo-128")?;
    hw.gtt_bytes = Some(200 * GIB);
    let pools = hw.memory_pools(Backend::Vulkan)?;
    assert_eq!(pools.gpu_budget_bytes, 124 * GIB);
    let rocm = hw.memory_pools(Backend::Hip)?;
    assert_eq!(rocm.gpu_budget_bytes, 123 * GIB + 512 * 1_048_576);
    Ok(())
}

#[test]
fn linux_rocm_6_4_is_refused() -> TestResult {
    let hw = HardwareOverrides {
        runtime: Some(RuntimeVersion::new(6, 4)),
        ..HardwareOverrides::default()
    }
    .apply(Hardware::preset("strix-halo-128")?)?;
    let refused = hw.memory_pools(Backend::Hip).err();
    assert_eq!(
        refused.map(|r| r.advice),
        Some("use Vulkan or ROCm >= 7.2".to_string())
    );
    Ok(())
}

#[test]
fn linux_rocm_7_2_gets_the_gtt_with_resident_limit() -> TestResult {
    let hw = Hardware::preset("strix-halo-128")?;
    let pools = hw.memory_pools(Backend::Hip)?;
    assert_eq!(pools.rules.pool, AllocationPool::Gtt);
    assert!(pools.rules.resident_limit);
    // Default GTT: (128 GiB - 0.5 GiB) / 2.
    assert_eq!(pools.gpu_budget_bytes, 68_451_041_280);
    Ok(())
}

#[test]
fn cpu_backend_uses_host_ram_only() -> TestResult {
    let pools = Hardware::preset("strix-halo-128")?.memory_pools(Backend::Cpu)?;
    assert_eq!(pools.gpu_budget_bytes, 0);
    assert_eq!(pools.host_budget_bytes, 132_607_115_264);
    assert_eq!(pools.rules.pool, AllocationPool::HostRam);
    Ok(())
}

#[test]
fn cuda_on_a_discrete_card() -> TestResult {
    let pools = Hardware::preset("rtx-4090")?.memory_pools(Backend::Cuda)?;
    assert_eq!(pools.gpu_budget_bytes, 24 * GIB);
    assert_eq!(pools.host_budget_bytes, 60 * GIB);
    assert_eq!(pools.shared_physical_bytes, None);
    assert!(Hardware::preset("strix-halo-128")?
        .memory_pools(Backend::Cuda)
        .is_err());
    Ok(())
}

#[test]
fn free_vram_limits_a_discrete_card() -> TestResult {
    let mut hw = Hardware::preset("rtx-3090")?;
    hw.gpus[0].free_bytes = Some(20 * GIB);
    assert_eq!(hw.memory_pools(Backend::Cuda)?.gpu_budget_bytes, 20 * GIB);
    Ok(())
}

#[test]
fn the_os_reserve_is_a_knob() -> TestResult {
    let hw = Hardware::preset("strix-halo-128")?;
    let pools = hw.memory_pools_with(
        Backend::Cpu,
        &PoolConfig {
            os_reserve_bytes: 0,
        },
    )?;
    assert_eq!(pools.host_budget_bytes, 127 * GIB + 512 * 1_048_576);
    assert_eq!(pools.os_reserve_bytes, 0);
    let huge = hw.memory_pools_with(
        Backend::Cpu,
        &PoolConfig {
            os_reserve_bytes: u64::MAX,
        },
    )?;
    assert_eq!(huge.host_budget_bytes, 0);
    Ok(())
}

#[test]
fn vulkan_prefers_a_discrete_card_over_an_igpu() -> TestResult {
    let mut hw = Hardware::preset("strix-halo-128")?;
    hw.gpus.push(GpuDevice {
        name: "dGPU".into(),
        vendor: GpuVendor::Nvidia,
        integrated: false,
        gfx_target: None,
        vram_bytes: 8 * GIB,
        free_bytes: None,
        bandwidth_bytes_per_s: 1,
    });
    assert_eq!(
        hw.gpu_for(Backend::Vulkan).map(|g| g.name.as_str()),
        Some("dGPU")
    );
    assert_eq!(hw.gpu_for(Backend::Hip).map(|g| g.integrated), Some(true));
    assert_eq!(hw.memory_pools(Backend::Vulkan)?.gpu_budget_bytes, 8 * GIB);
    Ok(())
}

#[test]
fn vulkan_runs_on_a_device_of_an_unknown_vendor() -> TestResult {
    // What llama.cpp lists for Mesa's lavapipe (merged in by runtime::devices).
    let mut hw = Hardware::preset("strix-halo-128")?;
    hw.gpus = vec![GpuDevice {
        name: "llvmpipe (LLVM 15.0.6, 256 bits)".into(),
        vendor: GpuVendor::Other,
        integrated: false,
        gfx_target: None,
        vram_bytes: 4 * GIB,
        free_bytes: None,
        bandwidth_bytes_per_s: 1,
    }];
    assert_eq!(
        hw.gpu_for(Backend::Vulkan).map(|g| g.vendor),
        Some(GpuVendor::Other)
    );
    assert!(hw.gpu_for(Backend::Hip).is_none());
    assert!(hw.gpu_for(Backend::Cuda).is_none());
    assert_eq!(hw.memory_pools(Backend::Vulkan)?.gpu_budget_bytes, 4 * GIB);
    Ok(())
}
