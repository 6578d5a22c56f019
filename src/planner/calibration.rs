//! Speed calibration: what `strix-run bench` measured on this machine, and the
//! corrections to [`SpeedConstants`] fitted from it.
//!
//! # The file
//!
//! JSON at `$XDG_CONFIG_HOME/strix-run/calibration.json` (when `XDG_CONFIG_HOME` is
//! unset: `$HOME/.config/strix-run/calibration.json`). It holds one entry per machine,
//! keyed by [`machine_key`] (CPU model, cores, RAM, GPUs, OS); each entry keeps the
//! last [`MAX_RUNS`] bench runs (measured against predicted speed) and the corrections
//! fitted to them. Deleting the file restores the default constants.
//!
//! # The correction
//!
//! Deliberately simple, so that it can be explained in one sentence: per backend, a
//! generation scale and a prompt scale, each the geometric mean of measured / predicted
//! over that backend's runs, where "predicted" is always the prediction of the default
//! constants ([`SpeedConstants::SEED_FIT`]), so corrections never compound.
//!
//! [`MachineCalibration::constants`] applies the scales to the constants of the side
//! the backend computes on:
//!
//! - CPU backend: `cpu_efficiency` and `cpu_iq_efficiency` × generation scale,
//!   `cpu_pp_flops_per_core` × prompt scale. A CPU-only prediction is exactly
//!   proportional to these, so a CPU-only plan's predicted tg and pp move by exactly
//!   the scales.
//! - GPU backends (Vulkan, HIP, CUDA): `gpu_dense_efficiency` and
//!   `gpu_expert_efficiency` × generation scale, the block overheads
//!   (`gpu_block_overhead_s`, `cuda_block_overhead_s`) and hand-over costs
//!   (`split_overhead_s`, `pcie_split_overhead_s`) ÷ generation scale (every GPU-side
//!   time term shrinks by the scale), the backend's prompt FLOP/s × prompt scale.
//!   The CPU side of a split plan keeps the CPU correction (when there is one).
//!
//! Scaling every term of a side uniformly changes the predicted speeds, not the
//! ranking of placements within that side; the planner's choices between CPU and GPU
//! (and between splits) do move with the relative scales.

use super::speed::SpeedConstants;
use crate::hardware::{Backend, Hardware, HardwareSource};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Runs kept per machine (the oldest are dropped first).
pub const MAX_RUNS: usize = 100;

/// The file format version written by this build.
pub const FORMAT_VERSION: u32 = 1;

/// Why the calibration file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    /// Neither `XDG_CONFIG_HOME` nor `HOME` is set.
    #[error("no configuration directory: set XDG_CONFIG_HOME or HOME")]
    NoConfigDir,
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a calibration file this build understands.
    #[error("{path} is not a valid calibration file ({source}); delete it to start over")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The file was written by a newer strix-run.
    #[error("{path} has format version {found}; this strix-run reads version {FORMAT_VERSION}")]
    Version {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
}

/// Where the calibration file lives: `$XDG_CONFIG_HOME/strix-run/calibration.json`, or
/// `$HOME/.config/strix-run/calibration.json` (empty variables count as unset, as the
/// XDG spec says).
pub fn default_path() -> Result<PathBuf, CalibrationError> {
    let non_empty = |v: &str| std::env::var_os(v).filter(|s| !s.is_empty());
    let config = match non_empty("XDG_CONFIG_HOME") {
        Some(x) => PathBuf::from(x),
        None => {
            PathBuf::from(non_empty("HOME").ok_or(CalibrationError::NoConfigDir)?).join(".config")
        }
    };
    Ok(config.join("strix-run").join("calibration.json"))
}

/// What identifies a machine for calibration: CPU model, cores/threads, RAM (whole
/// GiB), GPUs and OS, e.g.
/// `cpu=AMD Ryzen AI Max+ 395; cores=16/32; ram=128GiB; gpus=Radeon 8060S; os=linux`.
pub fn machine_key(hw: &Hardware) -> String {
    let gpus: Vec<&str> = hw.gpus.iter().map(|g| g.name.as_str()).collect();
    format!(
        "cpu={}; cores={}/{}; ram={}GiB; gpus={}; os={}",
        hw.cpu.name.as_deref().unwrap_or("unknown"),
        hw.cpu.physical_cores,
        hw.cpu.logical_threads,
        (hw.ram_total_bytes as f64 / f64::from(1u32 << 30)).round(),
        if gpus.is_empty() {
            "none".to_string()
        } else {
            gpus.join(", ")
        },
        hw.os
    )
}

/// Whether `hw` is this machine as detected (no preset, profile or what-if override):
/// only then are measurements recorded and corrections applied.
pub fn is_this_machine(hw: &Hardware) -> bool {
    hw.source == HardwareSource::Detected && hw.overridden.is_empty()
}

/// One bench measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRun {
    /// When (seconds since the Unix epoch).
    pub unix_time: u64,
    /// The model's name.
    pub model: String,
    /// The backend measured.
    pub backend: Backend,
    /// The plan measured (one line).
    pub plan: String,
    /// Generation speed predicted by the default constants, tok/s.
    pub predicted_tg: f64,
    /// Prompt speed predicted by the default constants, tok/s.
    pub predicted_pp: f64,
    /// Generation speed measured, tok/s (0: not measured).
    pub measured_tg: f64,
    /// Prompt speed measured, tok/s (0: not measured).
    pub measured_pp: f64,
}

/// The fitted correction of one backend.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    /// Measured / predicted generation speed (geometric mean over the runs); 1 = none.
    pub tg_scale: f64,
    /// Measured / predicted prompt speed (geometric mean over the runs); 1 = none.
    pub pp_scale: f64,
    /// Runs it was fitted to.
    pub runs: usize,
}

/// Everything recorded for one machine.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MachineCalibration {
    /// The runs, oldest first.
    pub runs: Vec<CalibrationRun>,
    /// Corrections per backend (`cpu`, `vulkan`, ...), refitted on every record.
    pub corrections: BTreeMap<String, Correction>,
}

/// Geometric mean of `measured / predicted` over pairs where both are positive.
fn geometric_ratio(pairs: impl Iterator<Item = (f64, f64)>) -> Option<f64> {
    let logs: Vec<f64> = pairs
        .filter(|&(m, p)| m > 0.0 && p > 0.0 && m.is_finite() && p.is_finite())
        .map(|(m, p)| (m / p).ln())
        .collect();
    (!logs.is_empty()).then(|| (logs.iter().sum::<f64>() / logs.len() as f64).exp())
}

impl MachineCalibration {
    /// Refits every backend's correction from the runs.
    pub fn refit(&mut self) {
        self.corrections.clear();
        let mut backends: Vec<Backend> = self.runs.iter().map(|r| r.backend).collect();
        backends.sort_by_key(|b| b.to_string());
        backends.dedup();
        for b in backends {
            let of = || self.runs.iter().filter(move |r| r.backend == b);
            let tg = geometric_ratio(of().map(|r| (r.measured_tg, r.predicted_tg)));
            let pp = geometric_ratio(of().map(|r| (r.measured_pp, r.predicted_pp)));
            if tg.is_none() && pp.is_none() {
                continue;
            }
            self.corrections.insert(
                b.to_string(),
                Correction {
                    tg_scale: tg.unwrap_or(1.0),
                    pp_scale: pp.unwrap_or(1.0),
                    runs: of().count(),
                },
            );
        }
    }

    /// The correction of `backend`, if measured.
    pub fn correction(&self, backend: Backend) -> Option<&Correction> {
        self.corrections.get(&backend.to_string())
    }

    /// `base` with this machine's corrections applied (see the module docs).
    pub fn constants(&self, base: &SpeedConstants) -> SpeedConstants {
        let mut c = *base;
        if let Some(k) = self.correction(Backend::Cpu) {
            c.cpu_efficiency *= k.tg_scale;
            c.cpu_iq_efficiency *= k.tg_scale;
            c.cpu_pp_flops_per_core *= k.pp_scale;
        }
        // One set of GPU constants: the GPU backends' corrections are applied in
        // this order, a later one (HIP, then CUDA) over Vulkan's for the shared terms.
        for gpu in [Backend::Vulkan, Backend::Hip, Backend::Cuda] {
            if let Some(k) = self.correction(gpu) {
                let s = k.tg_scale;
                c.gpu_dense_efficiency = base.gpu_dense_efficiency * s;
                c.gpu_expert_efficiency = base.gpu_expert_efficiency * s;
                c.gpu_block_overhead_s = base.gpu_block_overhead_s / s;
                c.cuda_block_overhead_s = base.cuda_block_overhead_s / s;
                c.split_overhead_s = base.split_overhead_s / s;
                c.pcie_split_overhead_s = base.pcie_split_overhead_s / s;
                match gpu {
                    Backend::Vulkan => c.gpu_pp_flops_vulkan *= k.pp_scale,
                    _ => c.gpu_pp_flops_hip = base.gpu_pp_flops_hip * k.pp_scale,
                }
            }
        }
        c
    }

    /// Time of the latest run (seconds since the Unix epoch).
    pub fn last_run(&self) -> Option<u64> {
        self.runs.iter().map(|r| r.unix_time).max()
    }
}

/// The whole calibration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationFile {
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// Per machine, keyed by [`machine_key`].
    pub machines: BTreeMap<String, MachineCalibration>,
}

impl Default for CalibrationFile {
    fn default() -> Self {
        CalibrationFile {
            version: FORMAT_VERSION,
            machines: BTreeMap::new(),
        }
    }
}

impl CalibrationFile {
    /// Reads `path`; a missing file is an empty calibration.
    pub fn load(path: &Path) -> Result<Self, CalibrationError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(CalibrationError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let file: CalibrationFile =
            serde_json::from_str(&text).map_err(|source| CalibrationError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        if file.version > FORMAT_VERSION {
            return Err(CalibrationError::Version {
                path: path.to_path_buf(),
                found: file.version,
            });
        }
        Ok(file)
    }

    /// Writes `path` (creating its directory), through a temporary file and a rename.
    pub fn save(&self, path: &Path) -> Result<(), CalibrationError> {
        let io = |source| CalibrationError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text + "\n").map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// The calibration of the machine with `key`.
    pub fn machine(&self, key: &str) -> Option<&MachineCalibration> {
        self.machines.get(key)
    }

    /// Adds runs for the machine with `key`, keeps the last [`MAX_RUNS`] and refits.
    pub fn record(&mut self, key: &str, runs: impl IntoIterator<Item = CalibrationRun>) {
        let m = self.machines.entry(key.to_string()).or_default();
        m.runs.extend(runs);
        if m.runs.len() > MAX_RUNS {
            let drop = m.runs.len() - MAX_RUNS;
            m.runs.drain(..drop);
        }
        m.refit();
    }
}

/// What the planner's speed constants are, for the user.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpeedSource {
    /// Whether this machine's corrections are applied.
    pub calibrated: bool,
    /// Runs behind them.
    pub runs: usize,
    /// Date of the latest run (`YYYY-MM-DD`, UTC).
    pub date: Option<String>,
    /// The file (when one was looked for).
    pub path: Option<PathBuf>,
}

impl std::fmt::Display for SpeedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.calibrated {
            write!(
                f,
                "speed: calibrated on this machine ({} run{}, {})",
                self.runs,
                if self.runs == 1 { "" } else { "s" },
                self.date.as_deref().unwrap_or("undated")
            )
        } else {
            f.write_str("speed: default constants (run `strix-run bench` to calibrate)")
        }
    }
}

/// The speed constants for `hw`: this machine's calibration from `file` when there is
/// one (and `hw` is this machine as detected), else the defaults. The pair is what
/// [`super::Request::speed`] takes.
pub fn speed_for(file: &CalibrationFile, hw: &Hardware) -> ((SpeedConstants, bool), SpeedSource) {
    let default = (
        (SpeedConstants::SEED_FIT, false),
        SpeedSource {
            calibrated: false,
            runs: 0,
            date: None,
            path: None,
        },
    );
    if !is_this_machine(hw) {
        return default;
    }
    match file.machine(&machine_key(hw)) {
        Some(m) if !m.corrections.is_empty() => (
            (m.constants(&SpeedConstants::SEED_FIT), true),
            SpeedSource {
                calibrated: true,
                runs: m.runs.len(),
                date: m.last_run().map(date),
                path: None,
            },
        ),
        _ => default,
    }
}

/// `YYYY-MM-DD` (UTC) of a Unix time.
pub fn date(unix: u64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let z = (unix / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(backend: Backend, predicted: (f64, f64), measured: (f64, f64)) -> CalibrationRun {
        CalibrationRun {
            unix_time: 1_700_000_000,
            model: "m".into(),
            backend,
            plan: "p".into(),
            predicted_tg: predicted.0,
            predicted_pp: predicted.1,
            measured_tg: measured.0,
            measured_pp: measured.1,
        }
    }

    #[test]
    fn scales_are_geometric_means_of_measured_over_predicted() {
        let mut f = CalibrationFile::default();
        // tg ratios 2 and 8 -> geometric mean 4; pp ratios 0.5 and 0.5 -> 0.5.
        f.record(
            "k",
            [
                run(Backend::Cpu, (10.0, 100.0), (20.0, 50.0)),
                run(Backend::Cpu, (10.0, 100.0), (80.0, 50.0)),
            ],
        );
        let c = f.machine("k").unwrap().correction(Backend::Cpu).unwrap();
        assert!((c.tg_scale - 4.0).abs() < 1e-12, "{c:?}");
        assert!((c.pp_scale - 0.5).abs() < 1e-12, "{c:?}");
        assert_eq!(c.runs, 2);
        assert!(f
            .machine("k")
            .unwrap()
            .correction(Backend::Vulkan)
            .is_none());
    }

    #[test]
    fn unmeasured_sides_do_not_count() {
        let mut f = CalibrationFile::default();
        f.record("k", [run(Backend::Cpu, (10.0, 100.0), (30.0, 0.0))]);
        let c = f.machine("k").unwrap().correction(Backend::Cpu).unwrap();
        assert!((c.tg_scale - 3.0).abs() < 1e-12);
        assert_eq!(c.pp_scale, 1.0);
    }

    #[test]
    fn cpu_correction_scales_the_cpu_constants_only() {
        let mut f = CalibrationFile::default();
        f.record("k", [run(Backend::Cpu, (10.0, 100.0), (5.0, 300.0))]);
        let base = SpeedConstants::SEED_FIT;
        let c = f.machine("k").unwrap().constants(&base);
        assert!((c.cpu_efficiency - base.cpu_efficiency * 0.5).abs() < 1e-12);
        assert!((c.cpu_iq_efficiency - base.cpu_iq_efficiency * 0.5).abs() < 1e-12);
        assert!((c.cpu_pp_flops_per_core - base.cpu_pp_flops_per_core * 3.0).abs() < 1.0);
        assert_eq!(c.gpu_dense_efficiency, base.gpu_dense_efficiency);
        assert_eq!(c.gpu_pp_flops_vulkan, base.gpu_pp_flops_vulkan);
    }

    #[test]
    fn gpu_correction_shrinks_every_gpu_time_term() {
        let mut f = CalibrationFile::default();
        f.record("k", [run(Backend::Vulkan, (10.0, 100.0), (20.0, 100.0))]);
        let base = SpeedConstants::SEED_FIT;
        let c = f.machine("k").unwrap().constants(&base);
        assert!((c.gpu_dense_efficiency - base.gpu_dense_efficiency * 2.0).abs() < 1e-12);
        assert!((c.gpu_block_overhead_s - base.gpu_block_overhead_s / 2.0).abs() < 1e-15);
        assert_eq!(c.cpu_efficiency, base.cpu_efficiency);
    }

    #[test]
    fn old_runs_are_dropped() {
        let mut f = CalibrationFile::default();
        for i in 0..(MAX_RUNS + 5) {
            f.record("k", [run(Backend::Cpu, (10.0, 1.0), (i as f64 + 1.0, 1.0))]);
        }
        let m = f.machine("k").unwrap();
        assert_eq!(m.runs.len(), MAX_RUNS);
        assert_eq!(m.runs[0].measured_tg, 6.0);
    }

    #[test]
    fn round_trips_through_a_file_and_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/calibration.json");
        assert_eq!(
            CalibrationFile::load(&path).unwrap(),
            CalibrationFile::default()
        );
        let mut f = CalibrationFile::default();
        f.record("k", [run(Backend::Cpu, (10.0, 100.0), (12.0, 90.0))]);
        f.save(&path).unwrap();
        assert_eq!(CalibrationFile::load(&path).unwrap(), f);
        std::fs::write(&path, "{not json").unwrap();
        let err = CalibrationFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("not a valid calibration file"), "{err}");
        std::fs::write(&path, r#"{"version": 99, "machines": {}}"#).unwrap();
        assert!(matches!(
            CalibrationFile::load(&path),
            Err(CalibrationError::Version { found: 99, .. })
        ));
    }

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        // 2024-02-29 00:00:00 UTC = 1709164800 (a leap day).
        assert_eq!(date(1_709_164_800), "2024-02-29");
        assert_eq!(date(1_709_164_800 + 86_399), "2024-02-29");
    }

    #[test]
    fn speed_source_lines() {
        let s = SpeedSource {
            calibrated: true,
            runs: 3,
            date: Some("2026-01-02".into()),
            path: None,
        };
        assert_eq!(
            s.to_string(),
            "speed: calibrated on this machine (3 runs, 2026-01-02)"
        );
        let d = SpeedSource {
            calibrated: false,
            runs: 0,
            date: None,
            path: None,
        };
        assert_eq!(
            d.to_string(),
            "speed: default constants (run `strix-run bench` to calibrate)"
        );
    }
}
