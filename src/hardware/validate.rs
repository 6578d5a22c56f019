//! Refusing machine descriptions no machine can have (from profiles and overrides).

use super::error::HardwareError;
use super::size::format_size;
use super::Hardware;

/// Shorthand for an [`HardwareError::Invalid`].
pub(crate) fn invalid(
    field: &'static str,
    value: String,
    problem: String,
    fix: &'static str,
) -> HardwareError {
    HardwareError::Invalid {
        field,
        value,
        problem,
        fix,
    }
}

impl Hardware {
    /// Checks that the description is physically possible.
    pub fn validate(&self) -> Result<(), HardwareError> {
        let cpu = &self.cpu;
        if cpu.physical_cores == 0 {
            return Err(invalid(
                "cores",
                "0".into(),
                "a CPU has at least one core".into(),
                "pass --cores N",
            ));
        }
        if cpu.logical_threads < cpu.physical_cores {
            return Err(invalid(
                "cpu-threads",
                cpu.logical_threads.to_string(),
                format!(
                    "fewer threads than the {} physical cores",
                    cpu.physical_cores
                ),
                "pass --cpu-threads at least equal to --cores",
            ));
        }
        if self.ram_total_bytes == 0 {
            return Err(invalid(
                "ram",
                "0".into(),
                "a machine has some RAM".into(),
                "pass --ram, e.g. --ram 128GiB",
            ));
        }
        if self.ram_available_bytes > self.ram_total_bytes {
            return Err(invalid(
                "ram_available_bytes",
                format_size(self.ram_available_bytes),
                format!(
                    "more than the {} installed",
                    format_size(self.ram_total_bytes)
                ),
                "fix the profile",
            ));
        }
        if let Some(carveout) = self.carveout_bytes {
            if carveout >= self.ram_total_bytes {
                return Err(invalid(
                    "carveout",
                    format_size(carveout),
                    format!(
                        "the carveout is taken from the {} of RAM and must leave some",
                        format_size(self.ram_total_bytes)
                    ),
                    "pass a smaller --carveout or a larger --ram",
                ));
            }
        }
        for gpu in self.gpus.iter().filter(|g| g.integrated) {
            if gpu.vram_bytes >= self.ram_total_bytes {
                return Err(invalid(
                    "gpu-mem",
                    format_size(gpu.vram_bytes),
                    format!(
                        "the iGPU `{}` cannot have more memory than the {} of RAM",
                        gpu.name,
                        format_size(self.ram_total_bytes)
                    ),
                    "pass a smaller --gpu-mem / --carveout",
                ));
            }
        }
        if self.cpu_bandwidth_bytes_per_s == 0
            || self.gpus.iter().any(|g| g.bandwidth_bytes_per_s == 0)
        {
            return Err(invalid(
                "bandwidth_bytes_per_s",
                "0".into(),
                "memory bandwidth must be positive (the planner divides by it)".into(),
                "fix the profile",
            ));
        }
        Ok(())
    }

    /// Checks a GTT size against the RAM it is carved from.
    pub(crate) fn check_gtt(&self, field: &'static str, gtt: u64) -> Result<(), HardwareError> {
        if gtt > self.ram_total_bytes {
            return Err(invalid(
                field,
                format_size(gtt),
                format!(
                    "the GTT is system RAM and this machine has {}",
                    format_size(self.ram_total_bytes)
                ),
                "pass a smaller --gtt / --ttm-pages-limit (e.g. RAM minus 8 GiB)",
            ));
        }
        Ok(())
    }
}
