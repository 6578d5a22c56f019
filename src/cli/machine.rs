//! The machine a command plans for: a preset or profile when given, else detection
//! (plus, with the llama.cpp runtime, the devices llama.cpp itself sees), then the
//! what-if overrides.

use anyhow::Context;
use strix_run::hardware::{resolve, DetectConfig, Hardware, HardwareOverrides, HardwareSource};
use strix_run::planner::calibration::{self, CalibrationFile, SpeedSource};
use strix_run::planner::SpeedConstants;

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

/// The speed constants to plan `hw` with: this machine's calibration (see
/// [`calibration`]) unless `ignore`, else the defaults; and a line saying which. An
/// unreadable calibration file is reported on stderr and ignored.
pub fn speed(hw: &Hardware, ignore: bool) -> ((SpeedConstants, bool), SpeedSource) {
    let default = calibration::speed_for(&CalibrationFile::default(), hw);
    if ignore {
        return default;
    }
    let file = calibration::default_path()
        .and_then(|path| CalibrationFile::load(&path).map(|f| (f, path)));
    match file {
        Ok((file, path)) => {
            let (speed, mut source) = calibration::speed_for(&file, hw);
            source.path = Some(path);
            (speed, source)
        }
        Err(e) => {
            eprintln!("warning: speed calibration ignored: {e}");
            default
        }
    }
}
