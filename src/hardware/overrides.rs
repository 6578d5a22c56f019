//! Command-line overrides of the machine description, and [`resolve`]: preset, profile
//! or detection, then the overrides.

use std::path::PathBuf;

use super::backend::{Backend, BackendRuntime, RuntimeFlavor, RuntimeVersion};
use super::detect::{detect, DetectConfig};
use super::error::HardwareError;
use super::platform::{KernelVersion, Os};
use super::size::format_size;
use super::ttm::TTM_PAGE_BYTES;
use super::validate::invalid;
use super::Hardware;

/// What the user says about the machine, each field overriding detection (or the
/// preset / profile). The command line's flags fill it (`src/cli/args.rs`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HardwareOverrides {
    /// Describe a named machine instead of this one (strix-halo-128,
    /// strix-halo-128-win, strix-halo-64, rtx-4090, rtx-3090, h100-80).
    pub preset: Option<String>,
    /// Describe the machine saved in this JSON profile instead of this one.
    pub hw_profile: Option<PathBuf>,
    /// Operating system: linux, windows, macos, other.
    pub os: Option<Os>,
    /// The backends you have, comma separated: cpu, vulkan, hip (rocm), cuda. Replaces
    /// the detected list.
    pub backends: Option<Vec<Backend>>,
    /// ROCm / HIP SDK / CUDA version (MAJOR.MINOR, e.g. 7.2) of the HIP and CUDA backends.
    pub runtime: Option<RuntimeVersion>,
    /// Who built the HIP runtime: llama-cpp (HIP SDK / ROCm) or ollama (bundled ROCm).
    pub hip_flavor: Option<RuntimeFlavor>,
    /// BIOS UMA frame buffer (carveout) of the iGPU, e.g. 512MiB, 2GiB, 96GiB.
    pub carveout: Option<u64>,
    /// Physical RAM installed, carveout included, e.g. 128GiB.
    pub ram: Option<u64>,
    /// Linux `ttm.pages_limit` in 4 KiB pages (30146560 = 115 GiB); sets the GTT.
    pub ttm_pages_limit: Option<u64>,
    /// Linux GTT size, e.g. 115GiB (wins over --ttm-pages-limit for the GTT).
    pub gtt: Option<u64>,
    /// Memory of the main GPU: dedicated VRAM, or the carveout of an iGPU.
    pub gpu_mem: Option<u64>,
    /// Physical CPU cores.
    pub cores: Option<u32>,
    /// Hardware threads of the CPU (SMT included). Not the threads the planner uses.
    pub cpu_threads: Option<u32>,
    /// Kernel version, e.g. 6.18.4.
    pub kernel: Option<KernelVersion>,
}

/// Describes the machine: the preset, else the profile, else detection; then the
/// overrides.
pub fn resolve(
    overrides: &HardwareOverrides,
    config: &DetectConfig,
) -> Result<Hardware, HardwareError> {
    let base = match (&overrides.preset, &overrides.hw_profile) {
        (Some(preset), Some(profile)) => {
            return Err(HardwareError::ConflictingSources {
                preset: preset.clone(),
                profile: profile.clone(),
            })
        }
        (Some(preset), None) => Hardware::preset(preset)?,
        (None, Some(profile)) => Hardware::load_profile(profile)?,
        (None, None) => detect(config)?,
    };
    overrides.apply(base)
}

impl HardwareOverrides {
    /// Applies the overrides to `hw` (ignoring `preset` and `hw_profile`, which
    /// [`resolve`] uses) and validates the result.
    ///
    /// Changing the carveout of a machine keeps its installed RAM unless `ram` is
    /// also given; when the carveout was unknown (Windows detection), the RAM seen was
    /// the system RAM, so the new carveout is added to it.
    pub fn apply(&self, hw: Hardware) -> Result<Hardware, HardwareError> {
        let mut hw = hw;
        let mut touched: Vec<&'static str> = Vec::new();
        if let Some(os) = self.os {
            hw.os = os;
            touched.push("os");
        }
        if let Some(kernel) = self.kernel {
            hw.kernel = Some(kernel);
            touched.push("kernel");
        }
        if let Some(ram) = self.ram {
            hw.ram_total_bytes = ram;
            touched.push("ram");
        }
        if let Some(carveout) = self.carveout_to_set(&hw)? {
            set_carveout(&mut hw, carveout, self.ram.is_none())?;
            touched.push(if self.carveout.is_some() {
                "carveout"
            } else {
                "gpu-mem"
            });
        } else if let Some(mem) = self.gpu_mem {
            set_discrete_memory(&mut hw, mem)?;
            touched.push("gpu-mem");
        }
        let layout_changed =
            self.ram.is_some() || self.carveout.is_some() || self.gpu_mem.is_some();
        if layout_changed && hw.ttm_pages_limit.is_none() {
            // The GTT was the kernel default (half the system RAM), which moves with
            // the RAM and carveout: recompute it rather than keep a stale size.
            hw.gtt_bytes = None;
        }
        if let Some(pages) = self.ttm_pages_limit {
            let bytes = pages.checked_mul(TTM_PAGE_BYTES).ok_or_else(|| {
                invalid(
                    "ttm-pages-limit",
                    pages.to_string(),
                    "more than 16 EiB of pages".into(),
                    "pass a page count (GiB x 262144), e.g. 30146560 for 115 GiB",
                )
            })?;
            hw.check_gtt("ttm-pages-limit", bytes)?;
            hw.ttm_pages_limit = Some(pages);
            hw.gtt_bytes = Some(bytes);
            touched.push("ttm-pages-limit");
        }
        if let Some(gtt) = self.gtt {
            hw.check_gtt("gtt", gtt)?;
            hw.gtt_bytes = Some(gtt);
            touched.push("gtt");
        }
        if let Some(cores) = self.cores {
            hw.cpu.physical_cores = cores;
            touched.push("cores");
        }
        if let Some(threads) = self.cpu_threads {
            hw.cpu.logical_threads = threads;
            touched.push("cpu-threads");
        }
        self.apply_backends(&mut hw, &mut touched)?;
        // Available RAM cannot exceed what the (possibly new) carveout leaves.
        hw.ram_available_bytes = hw.ram_available_bytes.min(hw.system_ram_bytes());
        hw.overridden.extend(touched.iter().map(|s| s.to_string()));
        hw.validate()?;
        Ok(hw)
    }

    /// The carveout implied by --carveout or, on an iGPU, --gpu-mem.
    fn carveout_to_set(&self, hw: &Hardware) -> Result<Option<u64>, HardwareError> {
        let igpu = main_gpu(hw).is_some_and(|i| hw.gpus[i].integrated);
        match (self.carveout, self.gpu_mem) {
            (Some(c), Some(g)) if igpu && c != g => Err(invalid(
                "gpu-mem",
                format_size(g),
                format!(
                    "on an iGPU the GPU memory is the carveout, and --carveout says {}",
                    format_size(c)
                ),
                "pass only --carveout",
            )),
            (Some(c), _) => Ok(Some(c)),
            (None, Some(g)) if igpu => Ok(Some(g)),
            _ => Ok(None),
        }
    }

    /// Replaces the backend list and sets runtime versions and the HIP flavor.
    fn apply_backends(
        &self,
        hw: &mut Hardware,
        touched: &mut Vec<&'static str>,
    ) -> Result<(), HardwareError> {
        if let Some(list) = &self.backends {
            let mut backends: Vec<BackendRuntime> = Vec::new();
            for &backend in list {
                if !backends.iter().any(|b| b.backend == backend) {
                    let old = hw.runtime(backend).copied();
                    backends.push(old.unwrap_or(BackendRuntime::new(backend)));
                }
            }
            hw.backends = backends;
            touched.push("backend");
        }
        if let Some(version) = self.runtime {
            let mut any = false;
            for rt in hw.backends.iter_mut() {
                if matches!(rt.backend, Backend::Hip | Backend::Cuda) {
                    rt.version = Some(version);
                    any = true;
                }
            }
            if !any {
                return Err(invalid(
                    "runtime",
                    version.to_string(),
                    "no HIP or CUDA backend to give it to".into(),
                    "add --backend hip (or cuda)",
                ));
            }
            touched.push("runtime");
        }
        if let Some(flavor) = self.hip_flavor {
            let Some(rt) = hw.backends.iter_mut().find(|r| r.backend == Backend::Hip) else {
                return Err(invalid(
                    "hip-flavor",
                    flavor.to_string(),
                    "no HIP backend to give it to".into(),
                    "add --backend hip",
                ));
            };
            rt.flavor = flavor;
            touched.push("hip-flavor");
        }
        Ok(())
    }
}

/// Sets the iGPU carveout (and the iGPU's memory, which is the same thing).
fn set_carveout(hw: &mut Hardware, carveout: u64, keep_ram: bool) -> Result<(), HardwareError> {
    let Some(igpu) = hw.gpus.iter_mut().find(|g| g.integrated) else {
        return Err(invalid(
            "carveout",
            format_size(carveout),
            "this machine has no integrated GPU to reserve memory for".into(),
            "use --hw strix-halo-128 / strix-halo-128-win, or --gpu-mem for a discrete GPU",
        ));
    };
    igpu.vram_bytes = carveout;
    igpu.free_bytes = None;
    if keep_ram && hw.carveout_bytes.is_none() {
        hw.ram_total_bytes = hw.ram_total_bytes.saturating_add(carveout);
    }
    hw.carveout_bytes = Some(carveout);
    Ok(())
}

/// The index of the main GPU: the first discrete one, else the first.
fn main_gpu(hw: &Hardware) -> Option<usize> {
    hw.gpus
        .iter()
        .position(|g| !g.integrated)
        .or(if hw.gpus.is_empty() { None } else { Some(0) })
}

/// Sets the dedicated VRAM of the main GPU.
fn set_discrete_memory(hw: &mut Hardware, mem: u64) -> Result<(), HardwareError> {
    let Some(gpu) = main_gpu(hw).and_then(|i| hw.gpus.get_mut(i)) else {
        return Err(invalid(
            "gpu-mem",
            format_size(mem),
            "no GPU was detected to give it to".into(),
            "use --hw PRESET or --hw-profile FILE to describe the GPU",
        ));
    };
    gpu.vram_bytes = mem;
    gpu.free_bytes = None;
    Ok(())
}
