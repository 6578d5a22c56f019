//! Detection against fake procfs/sysfs trees. Expected values are written out by
//! hand (e.g. 30146560 pages = 115 GiB = 123480309760 bytes), not recomputed.

use std::fs;
use std::path::Path;

use tempfile::TempDir;

use super::*;
use crate::hardware::{AllocationPool, Backend, BackendRefused};

/// A fake machine root.
struct Fake {
    dir: TempDir,
}

type TestResult = Result<(), Box<dyn std::error::Error>>;

impl Fake {
    fn new() -> Result<Self, std::io::Error> {
        Ok(Fake {
            dir: tempfile::tempdir()?,
        })
    }

    fn file(&self, rel: &str, text: &str) -> Result<&Self, std::io::Error> {
        let path = self.dir.path().join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(path, text)?;
        Ok(self)
    }

    /// MemTotal and MemAvailable in kB, as the kernel writes them.
    fn meminfo(&self, total_kb: u64, available_kb: u64) -> Result<&Self, std::io::Error> {
        self.file(
            "proc/meminfo",
            &format!(
                "MemTotal:       {total_kb} kB\nMemFree:        1234 kB\nMemAvailable:   {available_kb} kB\nBuffers:  0 kB\n"
            ),
        )
    }

    /// An SMT CPU: `cores` cores, two threads each, one socket.
    fn cpuinfo(&self, name: &str, cores: u32) -> Result<&Self, std::io::Error> {
        let mut text = String::new();
        for t in 0..cores * 2 {
            text += &format!(
                "processor\t: {t}\nvendor_id\t: AuthenticAMD\nmodel name\t: {name}\nphysical id\t: 0\nsiblings\t: {}\ncore id\t\t: {}\ncpu cores\t: {cores}\n\n",
                cores * 2,
                t % cores
            );
        }
        self.file("proc/cpuinfo", &text)
    }

    fn card(&self, card: &str, files: &[(&str, &str)]) -> Result<&Self, std::io::Error> {
        for (name, text) in files {
            self.file(&format!("sys/class/drm/{card}/device/{name}"), text)?;
        }
        Ok(self)
    }

    fn detect(&self) -> Result<Hardware, DetectError> {
        detect(&DetectConfig {
            sys_root: self.dir.path().to_path_buf(),
        })
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }
}

/// A Strix Halo box: 128 GiB with `carveout` bytes reserved by the BIOS; MemTotal is
/// what is left minus ~300 MiB of firmware reservations.
fn strix_halo(carveout: u64, gtt_total: u64, memtotal_kb: u64) -> Result<Fake, std::io::Error> {
    let fake = Fake::new()?;
    fake.meminfo(memtotal_kb, memtotal_kb - 4_000_000)?
        .cpuinfo("AMD RYZEN AI MAX+ 395 w/ Radeon 8060S", 16)?
        .file("proc/sys/kernel/osrelease", "6.18.4-arch1-1\n")?
        .file("opt/rocm/.info/version", "7.2.0-43\n")?
        .card(
            "card1",
            &[
                ("vendor", "0x1002\n"),
                ("device", "0x1586\n"),
                ("mem_info_vram_total", &format!("{carveout}\n")),
                ("mem_info_vis_vram_total", &format!("{carveout}\n")),
                ("mem_info_vram_used", "100000000\n"),
                ("mem_info_gtt_total", &format!("{gtt_total}\n")),
            ],
        )?
        // A connector and a render node must not count as GPUs.
        .file("sys/class/drm/card1-DP-1/status", "disconnected\n")?
        .file("sys/class/drm/renderD128/dev", "226:128\n")?;
    Ok(fake)
}

const MIB: u64 = 1_048_576;
const GIB: u64 = 1_073_741_824;
/// 127.5 GiB minus 300 MiB, in kB.
const MEMTOTAL_512M_KB: u64 = 133_386_240;

#[test]
fn strix_halo_512m_carveout_default_gtt() -> TestResult {
    // Kernel default GTT = half of MemTotal: 133386240 kB * 1024 / 2.
    let default_gtt = 68_293_754_880;
    let fake = strix_halo(512 * MIB, default_gtt, MEMTOTAL_512M_KB)?;
    fake.file("sys/module/ttm/parameters/pages_limit", "16673280\n")?
        .file(
            "proc/cmdline",
            "BOOT_IMAGE=/vmlinuz root=/dev/nvme0n1p2 rw quiet\n",
        )?;
    let hw = fake.detect()?;
    assert_eq!(hw.os, Os::Linux);
    assert_eq!(hw.kernel, Some(KernelVersion::new(6, 18, 4)));
    assert_eq!((hw.cpu.physical_cores, hw.cpu.logical_threads), (16, 32));
    assert_eq!(
        hw.cpu.name.as_deref(),
        Some("AMD RYZEN AI MAX+ 395 w/ Radeon 8060S")
    );
    assert_eq!(hw.carveout_bytes, Some(536_870_912));
    // MemTotal (136587509760) + carveout.
    assert_eq!(hw.ram_total_bytes, 137_124_380_672);
    assert_eq!(hw.ram_available_bytes, 132_491_509_760);
    assert_eq!(
        hw.ttm_pages_limit, None,
        "the default limit is not a user setting"
    );
    assert_eq!(hw.gtt_bytes, Some(default_gtt));
    assert!(hw.unified_memory);
    let gpu = &hw.gpus[0];
    assert_eq!(gpu.gfx_target.as_deref(), Some("gfx1151"));
    assert!(gpu.integrated);
    assert_eq!(gpu.vendor, GpuVendor::Amd);
    assert_eq!(gpu.free_bytes, Some(436_870_912));
    assert_eq!(hw.gpus.len(), 1);
    assert_eq!(hw.cpu_bandwidth_bytes_per_s, 110_000_000_000);
    let hip = hw.runtime(Backend::Hip).and_then(|r| r.version);
    assert_eq!(hip, Some(RuntimeVersion::new(7, 2)));
    assert!(hw.runtime(Backend::Vulkan).is_some());
    assert!(hw.runtime(Backend::Cuda).is_none());
    Ok(())
}

#[test]
fn strix_halo_with_ttm_pages_limit_on_the_cmdline() -> TestResult {
    let fake = strix_halo(512 * MIB, 123_480_309_760, MEMTOTAL_512M_KB)?;
    fake.file("sys/module/ttm/parameters/pages_limit", "30146560\n")?
        .file(
            "proc/cmdline",
            "root=/dev/sda1 ttm.pages_limit=30146560 quiet\n",
        )?;
    let hw = fake.detect()?;
    assert_eq!(hw.ttm_pages_limit, Some(30_146_560));
    assert_eq!(hw.gtt_bytes, Some(115 * GIB));
    // The seed's Linux Vulkan setup: 115 GiB GTT + 512 MiB carveout = 115.5 GiB.
    let pools = hw.memory_pools(Backend::Vulkan)?;
    assert_eq!(pools.rules.pool, AllocationPool::GttAndVram);
    assert_eq!(pools.gpu_budget_bytes, 124_017_180_672);
    Ok(())
}

#[test]
fn strix_halo_96g_carveout() -> TestResult {
    // 32 GiB left to the OS, minus 300 MiB; GTT default half of that.
    let memtotal_kb = 33_247_232;
    let fake = strix_halo(96 * GIB, 17_022_582_784, memtotal_kb)?;
    let hw = fake.detect()?;
    assert_eq!(hw.carveout_bytes, Some(103_079_215_104));
    assert_eq!(hw.ram_total_bytes, 137_124_380_672);
    assert_eq!(hw.system_ram_bytes(), 34_045_165_568);
    assert_eq!(hw.gtt_bytes, Some(17_022_582_784));
    Ok(())
}

#[test]
fn strix_halo_16g_carveout_ttm_from_modprobe_conf() -> TestResult {
    let memtotal_kb = 116_609_024; // 111.5 GiB minus 300 MiB
    let fake = strix_halo(16 * GIB, 100 * GIB, memtotal_kb)?;
    fake.file(
        "etc/modprobe.d/ttm.conf",
        "# amd-ttm\noptions ttm pages_limit=26214400\n",
    )?
    .file("etc/modprobe.d/blacklist.conf", "blacklist nouveau\n")?
    .file("sys/module/ttm/parameters/pages_limit", "26214400\n")?;
    let hw = fake.detect()?;
    assert_eq!(hw.ttm_pages_limit, Some(26_214_400));
    assert_eq!(hw.carveout_bytes, Some(17_179_869_184));
    assert_eq!(hw.gtt_bytes, Some(107_374_182_400));
    Ok(())
}

#[test]
fn a_pages_limit_set_at_runtime_counts_as_explicit() -> TestResult {
    // No cmdline or modprobe setting, but the live value is far from the default.
    let fake = strix_halo(512 * MIB, 115 * GIB, MEMTOTAL_512M_KB)?;
    fake.file("sys/module/ttm/parameters/pages_limit", "30146560\n")?;
    assert_eq!(fake.detect()?.ttm_pages_limit, Some(30_146_560));
    Ok(())
}

#[test]
fn without_gtt_file_the_cmdline_decides() -> TestResult {
    let fake = Fake::new()?;
    fake.meminfo(MEMTOTAL_512M_KB, 100_000_000)?
        .cpuinfo("AMD RYZEN AI MAX+ 395", 16)?
        .card(
            "card0",
            &[
                ("vendor", "0x1002"),
                ("device", "0x1586"),
                ("mem_info_vram_total", "536870912"),
            ],
        )?
        .file("proc/cmdline", "amdgpu.gttsize=117760\n")?;
    let hw = fake.detect()?;
    // 117760 MiB, the seed article's setting.
    assert_eq!(hw.gtt_bytes, Some(123_480_309_760));
    assert!(hw.notes.iter().any(|n| n.contains("deprecated")));
    Ok(())
}

#[test]
fn nvidia_discrete_and_a_bmc_adapter() -> TestResult {
    let fake = Fake::new()?;
    fake.meminfo(65_536_000, 60_000_000)?
        .cpuinfo("AMD Ryzen 9 7950X 16-Core Processor", 16)?
        .card("card0", &[("vendor", "0x1a03\n"), ("device", "0x2000\n")])?
        .card("card1", &[("vendor", "0x10de\n"), ("device", "0x2684\n")])?;
    let hw = fake.detect()?;
    assert_eq!(hw.gpus.len(), 1, "the ASPEED BMC is not a compute GPU");
    let gpu = &hw.gpus[0];
    assert_eq!(gpu.vendor, GpuVendor::Nvidia);
    assert!(!gpu.integrated);
    assert_eq!(gpu.vram_bytes, 25_769_803_776);
    assert_eq!(gpu.bandwidth_bytes_per_s, 1_008_000_000_000);
    assert!(!hw.unified_memory);
    assert_eq!(hw.carveout_bytes, None);
    assert_eq!(hw.ram_total_bytes, 67_108_864_000);
    assert!(hw.runtime(Backend::Cuda).is_some());
    assert!(hw.runtime(Backend::Hip).is_none());
    let pools = hw.memory_pools(Backend::Cuda)?;
    assert_eq!(pools.gpu_budget_bytes, 25_769_803_776);
    assert_eq!(pools.shared_physical_bytes, None);
    Ok(())
}

#[test]
fn unknown_amd_card_is_assumed_discrete_with_a_note() -> TestResult {
    let fake = Fake::new()?;
    fake.meminfo(65_536_000, 60_000_000)?
        .cpuinfo("x", 8)?
        .card(
            "card0",
            &[
                ("vendor", "0x1002"),
                ("device", "0x744c"),
                ("mem_info_vram_total", "25753026560"),
            ],
        )?;
    let hw = fake.detect()?;
    assert!(!hw.gpus[0].integrated);
    assert_eq!(hw.gpus[0].vram_bytes, 25_753_026_560);
    assert_eq!(hw.carveout_bytes, None);
    assert!(hw.notes.iter().any(|n| n.contains("0x744c")));
    Ok(())
}

#[test]
fn machine_without_gpu() -> TestResult {
    let fake = Fake::new()?;
    fake.meminfo(16_384_000, 8_000_000)?
        .cpuinfo("Intel Xeon", 4)?;
    let hw = fake.detect()?;
    assert!(hw.gpus.is_empty());
    assert!(!hw.unified_memory);
    assert_eq!(hw.kernel, None);
    assert_eq!(hw.backends, vec![BackendRuntime::new(Backend::Cpu)]);
    assert_eq!(hw.cpu_bandwidth_bytes_per_s, 50_000_000_000);
    let refused: Result<_, BackendRefused> = hw.memory_pools(Backend::Vulkan);
    assert!(refused.is_err());
    let cpu = hw.memory_pools(Backend::Cpu)?;
    assert_eq!(cpu.gpu_budget_bytes, 0);
    // 16384000 kB - 4 GiB reserve.
    assert_eq!(cpu.host_budget_bytes, 12_482_248_704);
    Ok(())
}

#[test]
fn cpuinfo_without_core_ids_counts_threads() -> TestResult {
    let fake = Fake::new()?;
    fake.meminfo(8_000_000, 4_000_000)?.file(
        "proc/cpuinfo",
        "processor : 0\nBogoMIPS : 50\n\nprocessor : 1\nBogoMIPS : 50\n\n",
    )?;
    let hw = fake.detect()?;
    assert_eq!((hw.cpu.physical_cores, hw.cpu.logical_threads), (2, 2));
    assert!(hw.notes.iter().any(|n| n.contains("core ids")));
    Ok(())
}

#[test]
fn missing_essentials_name_the_file() -> TestResult {
    let fake = Fake::new()?;
    let err = fake.detect().err();
    assert!(
        matches!(&err, Some(DetectError::Missing { path, .. }) if path.ends_with("proc/meminfo")),
        "{err:?}"
    );
    fake.meminfo(8_000_000, 4_000_000)?;
    let err = fake
        .detect()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("cpuinfo") && err.contains("--hw"), "{err}");
    Ok(())
}

fn garbage_path(result: Result<Hardware, DetectError>) -> Option<std::path::PathBuf> {
    match result {
        Err(DetectError::Garbage { path, .. }) => Some(path),
        _ => None,
    }
}

#[test]
fn garbage_files_are_typed_errors_naming_the_file() -> TestResult {
    let cases: [(&str, &str); 6] = [
        ("proc/meminfo", "MemTotal: many kB\n"),
        ("proc/sys/kernel/osrelease", "not-a-kernel\n"),
        ("proc/cmdline", "ttm.pages_limit=115GiB\n"),
        ("sys/module/ttm/parameters/pages_limit", "lots\n"),
        ("sys/class/drm/card1/device/mem_info_vram_total", "512M\n"),
        ("sys/class/drm/card1/device/vendor", "AMD\n"),
    ];
    for (rel, text) in cases {
        let fake = strix_halo(512 * MIB, 64 * GIB, MEMTOTAL_512M_KB)?;
        fake.file(rel, text)?;
        assert_eq!(
            garbage_path(fake.detect()).as_deref(),
            Some(fake.path(rel).as_path()),
            "{rel}"
        );
    }
    Ok(())
}

#[test]
fn cards_without_vendor_are_skipped() -> TestResult {
    let fake = Fake::new()?;
    fake.meminfo(8_000_000, 4_000_000)?
        .cpuinfo("x", 2)?
        .file("sys/class/drm/card0/device/uevent", "DRIVER=simpledrm\n")?;
    let hw = fake.detect()?;
    assert!(hw.gpus.is_empty());
    assert!(hw.notes.iter().any(|n| n.contains("card0")));
    Ok(())
}

#[test]
fn windows_snapshot_of_a_strix_halo() {
    let snap = HostSnapshot {
        total_memory: 134_900_000_000,
        available_memory: 120_000_000_000,
        physical_cores: Some(16),
        logical_threads: 32,
        cpu_brand: Some("AMD RYZEN AI MAX+ 395 w/ Radeon 8060S".to_string()),
        kernel: None,
    };
    let hw = from_snapshot(&snap, Os::Windows);
    assert_eq!(hw.os, Os::Windows);
    assert_eq!(hw.carveout_bytes, None);
    assert_eq!(hw.gpus[0].gfx_target.as_deref(), Some("gfx1151"));
    assert!(hw.unified_memory);
    assert!(hw.notes.iter().any(|n| n.contains("--carveout")));
    assert!(hw.validate().is_ok());
}

#[test]
fn windows_snapshot_of_another_machine_has_no_gpu() {
    let snap = HostSnapshot {
        total_memory: 32_000_000_000,
        available_memory: 40_000_000_000,
        physical_cores: None,
        logical_threads: 8,
        cpu_brand: None,
        kernel: None,
    };
    let hw = from_snapshot(&snap, Os::Windows);
    assert!(hw.gpus.is_empty());
    assert_eq!(hw.ram_available_bytes, 32_000_000_000);
    assert_eq!((hw.cpu.physical_cores, hw.cpu.logical_threads), (8, 8));
}

#[test]
fn the_real_machine_can_be_detected() {
    // Whatever this machine is, detection must not panic and must validate.
    if Path::new("/proc/meminfo").exists() {
        let hw = detect(&DetectConfig::default());
        assert!(hw.is_ok(), "{:?}", hw.err());
        if let Ok(hw) = hw {
            assert!(hw.validate().is_ok(), "{hw:?}");
            assert!(hw.cpu.physical_cores >= 1);
        }
    }
}
