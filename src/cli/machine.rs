//! The machine a command plans for: a preset or profile when given, else detection
//! (plus, with the llama.cpp runtime, the devices llama.cpp itself sees), then the
//! what-if overrides.

use anyhow::Context;
use strix_run::hardware::{resolve, DetectConfig, Hardware, HardwareOverrides, HardwareSource};

/// Resolves the hardware for a command.
pub fn machine(flags: &HardwareOverrides) -> anyhow::Result<Hardware> {
    #[allow(unused_mut)]
    let mut hw = resolve(flags, &DetectConfig::default()).context("describing the hardware")?;
    #[cfg(feature = "runtime")]
    if hw.source == HardwareSource::Detected && flags.backends.is_none() {
        let devices = strix_run::runtime::devices::llama_devices();
        strix_run::runtime::devices::merge_into(&mut hw, &devices);
    }
    #[cfg(not(feature = "runtime"))]
    let _ = HardwareSource::Detected;
    Ok(hw)
}
