//! The devices llama.cpp itself sees (`ggml_backend_dev_*`), and their free memory,
//! merged into the detected [`Hardware`]: what sysfs cannot tell (a GPU's free
//! memory, which backends this build can actually run) comes from here.

use super::llama_backend;
use crate::hardware::{Backend, BackendRuntime, GpuDevice, GpuVendor, Hardware};
use llama_cpp_sys_2 as sys;
use serde::Serialize;
use std::ffi::CStr;

/// What kind of device llama.cpp reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// The CPU backend.
    Cpu,
    /// A discrete GPU.
    Gpu,
    /// An integrated GPU sharing system memory.
    Igpu,
    /// An accelerator (BLAS and the like).
    Accel,
}

/// One llama.cpp device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LlamaDevice {
    /// ggml's name, e.g. `CPU`, `Vulkan0`, `ROCm0`, `CUDA0`.
    pub name: String,
    /// The driver's description, e.g. `AMD Radeon 8060S Graphics (RADV GFX1151)`.
    pub description: String,
    /// Kind of device.
    pub kind: DeviceKind,
    /// Free memory as the backend reports it.
    pub free_bytes: u64,
    /// Total memory as the backend reports it.
    pub total_bytes: u64,
}

impl LlamaDevice {
    /// The strix-run backend this device runs under, from ggml's device name.
    pub fn backend(&self) -> Backend {
        let n = self.name.to_ascii_lowercase();
        if n.starts_with("vulkan") {
            Backend::Vulkan
        } else if n.starts_with("rocm") || n.starts_with("hip") {
            Backend::Hip
        } else if n.starts_with("cuda") {
            Backend::Cuda
        } else {
            Backend::Cpu
        }
    }
}

fn text(p: *const std::os::raw::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: ggml returns NUL-terminated strings that live as long as the device.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Every device of the llama.cpp compiled into this build.
pub fn llama_devices() -> Vec<LlamaDevice> {
    llama_backend();
    // SAFETY: ggml's device registry is initialised by the backend above; the device
    // handles are static for the process.
    unsafe {
        (0..sys::ggml_backend_dev_count())
            .map(|i| {
                let dev = sys::ggml_backend_dev_get(i);
                let (mut free, mut total) = (0usize, 0usize);
                sys::ggml_backend_dev_memory(dev, &mut free, &mut total);
                let kind = match sys::ggml_backend_dev_type(dev) {
                    sys::GGML_BACKEND_DEVICE_TYPE_CPU => DeviceKind::Cpu,
                    sys::GGML_BACKEND_DEVICE_TYPE_GPU => DeviceKind::Gpu,
                    sys::GGML_BACKEND_DEVICE_TYPE_IGPU => DeviceKind::Igpu,
                    _ => DeviceKind::Accel,
                };
                LlamaDevice {
                    name: text(sys::ggml_backend_dev_name(dev)),
                    description: text(sys::ggml_backend_dev_description(dev)),
                    kind,
                    free_bytes: free as u64,
                    total_bytes: total as u64,
                }
            })
            .collect()
    }
}

/// Adds what llama.cpp sees to a detected machine: the backends this build can run,
/// and for each GPU device its free memory (matched to a sysfs GPU by vendor name in
/// the description, else added as a new device).
pub fn merge_into(hw: &mut Hardware, devices: &[LlamaDevice]) {
    for d in devices {
        let backend = d.backend();
        if !hw.backends.iter().any(|r| r.backend == backend) {
            hw.backends.push(BackendRuntime::new(backend));
        }
        if d.kind == DeviceKind::Cpu || d.kind == DeviceKind::Accel {
            continue;
        }
        let desc = d.description.to_ascii_lowercase();
        let vendor = if desc.contains("nvidia") || backend == Backend::Cuda {
            GpuVendor::Nvidia
        } else if desc.contains("amd") || desc.contains("radeon") || backend == Backend::Hip {
            GpuVendor::Amd
        } else if desc.contains("intel") {
            GpuVendor::Intel
        } else {
            GpuVendor::Other
        };
        match hw.gpus.iter_mut().find(|g| g.vendor == vendor) {
            Some(g) => g.free_bytes = Some(d.free_bytes),
            None => hw.gpus.push(GpuDevice {
                name: d.description.clone(),
                vendor,
                integrated: d.kind == DeviceKind::Igpu,
                gfx_target: None,
                vram_bytes: d.total_bytes,
                free_bytes: Some(d.free_bytes),
                // Unknown to llama.cpp: a conservative figure the user can override
                // with --hw-profile.
                bandwidth_bytes_per_s: 200_000_000_000,
            }),
        }
        hw.notes.push(format!(
            "llama.cpp sees {} ({}): {:.1} GiB free of {:.1} GiB",
            d.name,
            d.description,
            d.free_bytes as f64 / (1u64 << 30) as f64,
            d.total_bytes as f64 / (1u64 << 30) as f64
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(name: &str, description: &str, kind: DeviceKind, free: u64) -> LlamaDevice {
        LlamaDevice {
            name: name.into(),
            description: description.into(),
            kind,
            free_bytes: free,
            total_bytes: free * 2,
        }
    }

    #[test]
    fn vulkan_igpu_updates_the_detected_strix_gpu() {
        let mut hw = Hardware::preset("strix-halo-128").expect("preset");
        hw.backends.clear();
        let free = 60 << 30;
        merge_into(
            &mut hw,
            &[
                device("CPU", "AMD Ryzen AI Max+ 395", DeviceKind::Cpu, 1 << 30),
                device(
                    "Vulkan0",
                    "AMD Radeon 8060S Graphics (RADV GFX1151)",
                    DeviceKind::Igpu,
                    free,
                ),
            ],
        );
        assert_eq!(hw.gpus.len(), 1, "matched, not added");
        assert_eq!(hw.gpus[0].free_bytes, Some(free));
        let backends: Vec<Backend> = hw.backends.iter().map(|r| r.backend).collect();
        assert_eq!(backends, vec![Backend::Cpu, Backend::Vulkan]);
    }

    #[test]
    fn unknown_gpu_is_added() {
        let mut hw = Hardware::preset("strix-halo-128").expect("preset");
        merge_into(
            &mut hw,
            &[device(
                "CUDA0",
                "NVIDIA H100 80GB HBM3",
                DeviceKind::Gpu,
                79 << 30,
            )],
        );
        let nv = hw
            .gpus
            .iter()
            .find(|g| g.vendor == GpuVendor::Nvidia)
            .expect("added");
        assert!(!nv.integrated);
        assert_eq!(nv.vram_bytes, 158 << 30);
        assert!(hw.backends.iter().any(|r| r.backend == Backend::Cuda));
    }

    #[test]
    fn this_build_sees_the_cpu_with_the_machines_memory() {
        let devices = llama_devices();
        let cpu = devices
            .iter()
            .find(|d| d.kind == DeviceKind::Cpu)
            .expect("a CPU device");
        let meminfo = std::fs::read_to_string("/proc/meminfo").expect("linux");
        let kib: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("MemTotal");
        let total = kib * 1024;
        let diff = (cpu.total_bytes as f64 - total as f64).abs() / total as f64;
        assert!(
            diff < 0.05,
            "llama.cpp says {} bytes, /proc/meminfo {}",
            cpu.total_bytes,
            total
        );
    }
}
