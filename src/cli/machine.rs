//! The machine a command plans for: a preset or profile when given, else detection
//! (plus, with the llama.cpp runtime, the devices llama.cpp itself sees), then the
//! what-if overrides.

use anyhow::Context;
use strix_run::hardware::{resolve, DetectConfig, Hardware, HardwareOverrides};
use strix_run::planner::calibration::{self, CalibrationFile, SpeedSource};
use strix_run::planner::SpeedConstants;

/// Resolves the hardware for a command. On a detected machine llama.cpp's own devices
/// are merged in before the what-if flags apply, so `--gpu-mem` and friends also work
/// on a GPU only llama.cpp sees (e.g. Mesa's lavapipe, whose PCI vendor detection does
/// not know). `--backend` replaces the backend list, so no merge then.
pub fn machine(flags: &HardwareOverrides) -> anyhow::Result<Hardware> {
    #[cfg(feature = "runtime")]
    if flags.preset.is_none() && flags.hw_profile.is_none() && flags.backends.is_none() {
        let mut hw = strix_run::hardware::detect(&DetectConfig::default())
            .context("describing the hardware")?;
        let devices = strix_run::runtime::devices::llama_devices();
        strix_run::runtime::devices::merge_into(&mut hw, &devices);
        return flags
            .apply(hw)
            .context("applying the hardware flags to this machine");
    }
    resolve(flags, &DetectConfig::default()).context("describing the hardware")
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
