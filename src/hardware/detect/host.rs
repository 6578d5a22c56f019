//! The running machine through sysinfo: CPU counts everywhere, RAM on Windows and
//! macOS where there is no procfs.

use sysinfo::{CpuRefreshKind, System};

/// What sysinfo reports about the running machine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct HostSnapshot {
    /// Total RAM the OS manages, bytes (the carveout excluded).
    pub total_memory: u64,
    /// Available RAM, bytes.
    pub available_memory: u64,
    /// Physical cores, when sysinfo knows.
    pub physical_cores: Option<u32>,
    /// Logical CPUs.
    pub logical_threads: u32,
    /// CPU brand string.
    pub cpu_brand: Option<String>,
    /// Kernel version string.
    pub kernel: Option<String>,
}

/// Reads the running machine.
pub(crate) fn snapshot() -> HostSnapshot {
    let mut sys = System::new();
    sys.refresh_memory();
    sys.refresh_cpu_list(CpuRefreshKind::nothing());
    let cpus = sys.cpus();
    let brand = cpus
        .first()
        .map(|c| c.brand().trim().to_string())
        .filter(|b| !b.is_empty());
    HostSnapshot {
        total_memory: sys.total_memory(),
        available_memory: sys.available_memory(),
        physical_cores: System::physical_core_count().and_then(|n| u32::try_from(n).ok()),
        logical_threads: u32::try_from(cpus.len()).unwrap_or(u32::MAX),
        cpu_brand: brand,
        kernel: System::kernel_version(),
    }
}
