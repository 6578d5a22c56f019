//! Reading the machine.
//!
//! Linux is read from procfs and sysfs under an injectable root (tests pass a fake
//! tree): `/proc/meminfo`, `/proc/cpuinfo`, `/proc/cmdline`, `/proc/sys/kernel/osrelease`,
//! `/sys/class/drm/card*/device/*`, `/sys/module/ttm/parameters/pages_limit`,
//! `/etc/modprobe.d/*.conf` and `/opt/rocm/.info/version`. On the real root the CPU
//! counts come from sysinfo. Windows and macOS use sysinfo alone and cannot see the
//! carveout (say it with --carveout or a preset).

mod drm;
mod files;
mod host;
mod procfs;

use std::path::{Path, PathBuf};

use super::backend::{Backend, BackendRuntime, RuntimeVersion};
use super::device::{CpuInfo, GpuDevice, GpuVendor};
use super::error::DetectError;
use super::known_devices::{
    lookup, STRIX_HALO_CPU_BANDWIDTH, STRIX_HALO_GPU_BANDWIDTH, UNKNOWN_CPU_BANDWIDTH,
    UNKNOWN_DISCRETE_GPU_BANDWIDTH,
};
use super::platform::{KernelVersion, Os};
use super::size::{format_size, MIB};
use super::ttm::TTM_PAGE_BYTES;
use super::{Hardware, HardwareSource};
use drm::RawCard;
use files::Root;
use host::HostSnapshot;

/// How to detect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetectConfig {
    /// The filesystem root procfs and sysfs are read under. "/" reads this machine
    /// (with sysinfo for CPU counts, and sysinfo alone off Linux); anything else is
    /// read as a Linux tree, e.g. a copy of another machine's files.
    pub sys_root: PathBuf,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            sys_root: PathBuf::from("/"),
        }
    }
}

/// A ttm.pages_limit within this fraction of the kernel default (half of MemTotal)
/// is taken to be the default, not a user setting.
const TTM_DEFAULT_TOLERANCE_PERCENT: u64 = 2;

/// Reads the machine described by `config`.
pub fn detect(config: &DetectConfig) -> Result<Hardware, DetectError> {
    let real_root = config.sys_root == Path::new("/");
    if real_root && !cfg!(target_os = "linux") {
        return Ok(from_snapshot(&host::snapshot(), Os::host()));
    }
    let host = real_root.then(host::snapshot);
    from_procfs(&config.sys_root, host.as_ref())
}

/// Linux detection from procfs/sysfs under `root`; CPU counts from `host` when given.
fn from_procfs(root_dir: &Path, host: Option<&HostSnapshot>) -> Result<Hardware, DetectError> {
    let mut root = Root::new(root_dir);
    let mut notes = Vec::new();

    let meminfo_path = root.path("proc/meminfo");
    let meminfo = procfs::parse_meminfo(
        &root.essential(&meminfo_path, "it gives the amount of RAM")?,
        &meminfo_path,
    )?;
    let cpu = read_cpu(&mut root, host, &mut notes)?;
    let kernel_path = root.path("proc/sys/kernel/osrelease");
    let kernel = match root.optional(&kernel_path) {
        Some(text) => Some(text.parse::<KernelVersion>().map_err(|_| {
            procfs::garbage(
                &kernel_path,
                "a kernel release such as 6.18.4-arch1-1",
                &text,
            )
        })?),
        None => None,
    };
    let cmdline_path = root.path("proc/cmdline");
    let cmdline = match root.optional(&cmdline_path) {
        Some(text) => procfs::parse_cmdline(&text, &cmdline_path)?,
        None => procfs::CmdlineMemory::default(),
    };
    let modprobe_pages = read_modprobe_ttm(&mut root)?;
    let sysfs_pages_path = root.path("sys/module/ttm/parameters/pages_limit");
    let sysfs_pages = match root.optional(&sysfs_pages_path) {
        Some(text) => Some(procfs::parse_u64(&text, &sysfs_pages_path)?).filter(|&p| p > 0),
        None => None,
    };
    let cards = drm::read_cards(&mut root, &mut notes)?;
    let rocm = read_rocm_version(&mut root, &mut notes);

    let gpus: Vec<(GpuDevice, &RawCard)> = cards
        .iter()
        .filter_map(|card| gpu_from_card(card, &mut notes).map(|g| (g, card)))
        .collect();
    let igpu = gpus
        .iter()
        .find(|(g, _)| g.integrated && g.vendor == GpuVendor::Amd);
    let carveout = igpu.and_then(|(_, c)| c.vram_total);
    let gtt_card = igpu.or_else(|| gpus.iter().find(|(g, _)| g.vendor == GpuVendor::Amd));
    let strix_halo = igpu.is_some_and(|(g, _)| g.gfx_target.as_deref() == Some("gfx1151"));

    let explicit = cmdline.ttm_pages_limit.or(modprobe_pages);
    let default_pages = meminfo.total / TTM_PAGE_BYTES / 2;
    let ttm_pages_limit = match explicit {
        Some(configured) => {
            if sysfs_pages.is_some_and(|live| live != configured) {
                notes.push(format!(
                    "ttm.pages_limit is configured as {configured} but the running kernel uses {}",
                    sysfs_pages.unwrap_or(configured)
                ));
            }
            Some(sysfs_pages.unwrap_or(configured))
        }
        None => sysfs_pages.filter(|&live| {
            live.abs_diff(default_pages) > default_pages / 100 * TTM_DEFAULT_TOLERANCE_PERCENT
        }),
    };
    let gttsize = cmdline.amdgpu_gttsize_mib.filter(|&mib| mib > 0);
    if cmdline.amdgpu_gttsize_mib.is_some() {
        // amdgpu.gttsize is deprecated since ~6.17 and logs a warning (`docs/facts.md`,
        // 'GTT and ttm.pages_limit').
        notes.push(
            "amdgpu.gttsize is deprecated since kernel ~6.17; use ttm.pages_limit".to_string(),
        );
    }
    let gtt_bytes = gtt_card
        .and_then(|(_, c)| c.gtt_total)
        .or_else(|| ttm_pages_limit.map(|p| p.saturating_mul(TTM_PAGE_BYTES)))
        .or_else(|| {
            gttsize
                .and_then(|mib| u64::try_from(mib).ok())
                .map(|mib| mib.saturating_mul(MIB))
        });

    let backends = backends_for(&gpus.iter().map(|(g, _)| g).collect::<Vec<_>>(), rocm);
    let gpus: Vec<GpuDevice> = gpus.into_iter().map(|(g, _)| g).collect();
    let unified = main_is_integrated(&gpus);
    notes.extend(root.unreadable.iter().map(|u| format!("unreadable: {u}")));
    if let Some(c) = carveout {
        notes.push(format!(
            "carveout (mem_info_vram_total): {}",
            format_size(c)
        ));
    }
    Ok(Hardware {
        os: Os::Linux,
        kernel,
        cpu,
        ram_total_bytes: meminfo.total.saturating_add(carveout.unwrap_or(0)),
        ram_available_bytes: meminfo.available,
        unified_memory: unified,
        carveout_bytes: carveout,
        gtt_bytes,
        ttm_pages_limit,
        gpus,
        backends,
        cpu_bandwidth_bytes_per_s: if strix_halo {
            STRIX_HALO_CPU_BANDWIDTH
        } else {
            UNKNOWN_CPU_BANDWIDTH
        },
        source: HardwareSource::Detected,
        overridden: Vec::new(),
        notes,
    })
}

/// The CPU: sysinfo on the real root, `/proc/cpuinfo` under a fake one.
fn read_cpu(
    root: &mut Root,
    host: Option<&HostSnapshot>,
    notes: &mut Vec<String>,
) -> Result<CpuInfo, DetectError> {
    if let Some(h) = host.filter(|h| h.logical_threads > 0) {
        return Ok(cpu_from_snapshot(h, notes));
    }
    let path = root.path("proc/cpuinfo");
    let counts = procfs::parse_cpuinfo(
        &root.essential(&path, "it gives the CPU core count")?,
        &path,
    )?;
    let physical = counts.physical_cores.unwrap_or_else(|| {
        notes.push("cpuinfo has no core ids: assuming one thread per core".to_string());
        counts.logical_threads
    });
    Ok(CpuInfo {
        name: counts.name,
        physical_cores: physical,
        logical_threads: counts.logical_threads,
    })
}

/// The CPU as sysinfo sees it.
fn cpu_from_snapshot(h: &HostSnapshot, notes: &mut Vec<String>) -> CpuInfo {
    let threads = h.logical_threads.max(1);
    let physical = h.physical_cores.unwrap_or_else(|| {
        notes.push("physical core count unknown: assuming one thread per core".to_string());
        threads
    });
    CpuInfo {
        name: h.cpu_brand.clone(),
        physical_cores: physical.clamp(1, threads),
        logical_threads: threads,
    }
}

/// `options ttm pages_limit=` from `/etc/modprobe.d/*.conf` (amd-ttm writes ttm.conf).
fn read_modprobe_ttm(root: &mut Root) -> Result<Option<u64>, DetectError> {
    let dir = root.path("etc/modprobe.d");
    let mut found = None;
    for (name, path) in root.list(&dir) {
        if !name.ends_with(".conf") {
            continue;
        }
        if let Some(text) = root.optional(&path) {
            found = procfs::parse_modprobe_ttm(&text, &path)?.or(found);
        }
    }
    Ok(found)
}

/// The ROCm version from `/opt/rocm/.info/version`, when installed.
fn read_rocm_version(root: &mut Root, notes: &mut Vec<String>) -> Option<RuntimeVersion> {
    let path = root.path("opt/rocm/.info/version");
    let text = root.optional(&path)?;
    let version = RuntimeVersion::from_release(&text);
    if version.is_none() {
        notes.push(format!(
            "{}: unrecognised ROCm version `{}`",
            path.display(),
            text.trim()
        ));
    }
    version
}

/// A GPU from a DRM card; `None` (with a note) for vendors llama.cpp cannot use
/// (BMC display adapters, virtual GPUs).
fn gpu_from_card(card: &RawCard, notes: &mut Vec<String>) -> Option<GpuDevice> {
    let vendor = GpuVendor::from_pci(card.vendor_id);
    if vendor == GpuVendor::Other {
        notes.push(format!(
            "{}: PCI vendor {:#06x} ignored (not a compute GPU)",
            card.name, card.vendor_id
        ));
        return None;
    }
    let device_id = card.device_id.unwrap_or(0);
    let known = lookup(card.vendor_id, device_id);
    let integrated = match (known, vendor) {
        (Some(k), _) => k.integrated,
        (None, GpuVendor::Intel) => {
            notes.push(format!(
                "{}: Intel GPU {device_id:#06x} assumed integrated",
                card.name
            ));
            true
        }
        (None, GpuVendor::Amd) => {
            notes.push(format!(
                "{}: unknown AMD GPU {device_id:#06x} assumed discrete; use --hw-profile if it is an APU",
                card.name
            ));
            false
        }
        (None, _) => false,
    };
    let vram = card.vram_total.or(known.and_then(|k| k.vram_bytes));
    if vram.is_none() && !integrated {
        notes.push(format!(
            "{}: VRAM size unknown, assumed 0; pass --gpu-mem",
            card.name
        ));
    }
    let bandwidth = known
        .and_then(|k| k.bandwidth_bytes_per_s)
        .unwrap_or_else(|| {
            let assumed = if integrated {
                UNKNOWN_CPU_BANDWIDTH
            } else {
                UNKNOWN_DISCRETE_GPU_BANDWIDTH
            };
            notes.push(format!(
                "{}: bandwidth unknown, assumed {} GB/s; correct it in a --hw-profile",
                card.name,
                assumed / 1_000_000_000
            ));
            assumed
        });
    if let (Some(vis), Some(total)) = (card.vis_vram_total, card.vram_total) {
        if vis < total {
            notes.push(format!(
                "{}: only {} of {} VRAM is CPU-visible",
                card.name,
                format_size(vis),
                format_size(total)
            ));
        }
    }
    let vram_bytes = vram.unwrap_or(0);
    Some(GpuDevice {
        name: known.map_or_else(
            || format!("{vendor:?} GPU {device_id:#06x}"),
            |k| k.name.to_string(),
        ),
        vendor,
        integrated,
        gfx_target: known.and_then(|k| k.gfx_target).map(str::to_string),
        vram_bytes,
        free_bytes: card.vram_used.map(|used| vram_bytes.saturating_sub(used)),
        bandwidth_bytes_per_s: bandwidth,
    })
}

/// Whether the GPU the planner uses by default (the first discrete one, else the
/// first) shares system RAM.
fn main_is_integrated(gpus: &[GpuDevice]) -> bool {
    !gpus.is_empty() && gpus.iter().all(|g| g.integrated)
}

/// The backends plausible on this machine: CPU always, Vulkan with any GPU, HIP with
/// an AMD GPU (version from /opt/rocm), CUDA with an NVIDIA GPU. Which ones the
/// llama.cpp build really has is the runtime's business; `--backend` corrects this.
fn backends_for(gpus: &[&GpuDevice], rocm: Option<RuntimeVersion>) -> Vec<BackendRuntime> {
    let has = |v: GpuVendor| gpus.iter().any(|g| g.vendor == v);
    let mut out = vec![BackendRuntime::new(Backend::Cpu)];
    if !gpus.is_empty() {
        out.push(BackendRuntime::new(Backend::Vulkan));
    }
    if has(GpuVendor::Amd) {
        out.push(BackendRuntime {
            version: rocm,
            ..BackendRuntime::new(Backend::Hip)
        });
    }
    if has(GpuVendor::Nvidia) {
        out.push(BackendRuntime::new(Backend::Cuda));
    }
    out
}

/// Detection through sysinfo alone (Windows, macOS). No GPU memory is visible; a
/// Ryzen AI Max CPU implies the Strix Halo iGPU with an unknown carveout.
fn from_snapshot(h: &HostSnapshot, os: Os) -> Hardware {
    let mut notes = Vec::new();
    let cpu = cpu_from_snapshot(h, &mut notes);
    let strix_halo = h
        .cpu_brand
        .as_deref()
        .is_some_and(|b| b.to_ascii_lowercase().contains("ryzen ai max"));
    let mut gpus = Vec::new();
    let mut backends = vec![BackendRuntime::new(Backend::Cpu)];
    if strix_halo {
        notes.push(format!(
            "{os} detection cannot read the BIOS carveout: RAM shown is system RAM only; \
             pass --carveout (e.g. 2GiB or 96GiB) or use --hw strix-halo-128-win"
        ));
        gpus.push(GpuDevice {
            name: "AMD Radeon 8060S (Strix Halo)".to_string(),
            vendor: GpuVendor::Amd,
            integrated: true,
            gfx_target: Some("gfx1151".to_string()),
            vram_bytes: 0,
            free_bytes: None,
            bandwidth_bytes_per_s: STRIX_HALO_GPU_BANDWIDTH,
        });
        backends.push(BackendRuntime::new(Backend::Vulkan));
        backends.push(BackendRuntime::new(Backend::Hip));
    } else {
        notes.push(format!(
            "{os} detection does not see GPUs; describe them with --hw or --hw-profile"
        ));
    }
    Hardware {
        os,
        kernel: None,
        cpu,
        ram_total_bytes: h.total_memory.max(1),
        ram_available_bytes: h.available_memory.min(h.total_memory),
        unified_memory: strix_halo,
        carveout_bytes: None,
        gtt_bytes: None,
        ttm_pages_limit: None,
        gpus,
        backends,
        cpu_bandwidth_bytes_per_s: if strix_halo {
            STRIX_HALO_CPU_BANDWIDTH
        } else {
            UNKNOWN_CPU_BANDWIDTH
        },
        source: HardwareSource::Detected,
        overridden: Vec::new(),
        notes,
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
