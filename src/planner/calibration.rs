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
//!
//! # Plausibility
//!
//! A correction only repairs constants that are somewhat off; a factor of 100 means the
//! measurement (or the model file, or a hand edit) is wrong, and applying it would
//! predict absurd speeds (a scale of 0 predicts 0.0 tok/s). So:
//!
//! - a generation scale must lie in [`TG_SCALE_RANGE`] (1/50 to 20) and a prompt scale
//!   in [`PP_SCALE_RANGE`] (1/50 to 50). Generation is memory-bound and predicted from
//!   the machine's own measured bandwidth: the default constants reproduce their data
//!   within 9%, and on machines they were not fitted to they were off by 0.59x to 0.8x
//!   (an H200 with CUDA, `measurements/results/2026-11-26-nvidia-h200*.json`), so 20x
//!   above is far beyond any real error. Below, the range reaches 1/50: a CPU that other
//!   work shares still measures a real (slow) speed, and Gemma 3 270M on a 2-core VM
//!   that two compilers kept busy measured x0.09 of the prediction. Prompt speed uses one FLOP/s constant for every
//!   GPU of a backend, fitted to Strix Halo's iGPU (7-8.6 TFLOP/s effective); a
//!   datacenter GPU reaches roughly 20x that (an H100 processes an 8B model's prompt at
//!   some 10,000 tok/s, ~170 TFLOP/s), hence the wider range. A file
//!   holding a scale outside its range (or one that is not a finite positive number) is
//!   refused by [`CalibrationFile::load`], naming the machine, the backend and the value.
//! - a bench run is only recorded when [`CalibrationRun::check`] finds it plausible:
//!   speeds that are finite and not negative, something measured, each measured /
//!   predicted ratio inside the scale range of its side, and samples that scatter by at
//!   most [`MAX_SPREAD`] (relative standard deviation, judged from at least
//!   [`MIN_SPREAD_SAMPLES`] repetitions). [`CalibrationFile::record`]
//!   applies the same check (without the spread, which the run does not carry) and
//!   returns the runs it refused; runs already in a file that fail it are left out of
//!   the fit.

use super::speed::SpeedConstants;
use crate::hardware::{Backend, Hardware, HardwareSource};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Runs kept per machine (the oldest are dropped first).
pub const MAX_RUNS: usize = 100;

/// The file format version written by this build.
pub const FORMAT_VERSION: u32 = 1;

/// The plausible generation scales: measured / predicted generation speed between
/// 1/50 and 20 (see the module docs, "Plausibility").
pub const TG_SCALE_RANGE: (f64, f64) = (0.02, 20.0);

/// The plausible prompt scales: measured / predicted prompt speed between 1/50 and 50
/// (see the module docs, "Plausibility").
pub const PP_SCALE_RANGE: (f64, f64) = (0.02, 50.0);

/// The most a run's samples may scatter, as relative standard deviation (sample standard
/// deviation / mean), for the run to be recorded. A calibrated prediction claims ±10%
/// (half of [`SpeedConstants::spread`]); samples that scatter by more than 25% measured
/// something besides the model (another program's load, throttling, a first repetition
/// that still loaded weights), and their mean cannot back that claim.
pub const MAX_SPREAD: f64 = 0.25;

/// Why the calibration file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    /// Neither `XDG_CONFIG_HOME` nor `HOME` is set.
    #[error("no configuration directory: set XDG_CONFIG_HOME or HOME")]
    NoConfigDir,
    /// Reading or writing the file failed, or the path is no regular file (a FIFO, a
    /// directory).
    #[error(
        "{0} (this is the speed calibration file: fix or remove what is at that path, or \
         plan with --no-calibration)"
    )]
    File(#[from] crate::files::FileError),
    /// Creating the file's directory or serializing the calibration failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A correction in the file is outside its plausible range.
    #[error(
        "{path}: the {side} scale of the {backend} correction for machine '{machine}' is \
         {value}, outside the plausible range {} to {} (a correction that large means a \
         measurement was wrong, not the speed model). Delete that machine's entry from \
         the file (or delete the file), then run `strix-run bench` again to calibrate; \
         until then `--no-calibration` plans with the default constants",
        .range.0,
        .range.1
    )]
    ImplausibleScale {
        /// The file.
        path: PathBuf,
        /// The machine key ([`machine_key`]).
        machine: String,
        /// The backend (`cpu`, `vulkan`, ...).
        backend: String,
        /// `generation` or `prompt`.
        side: &'static str,
        /// The scale found.
        value: f64,
        /// The plausible range ([`TG_SCALE_RANGE`] or [`PP_SCALE_RANGE`]).
        range: (f64, f64),
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

/// Whether `value` is a finite number inside `range` (both ends included).
fn in_range(value: f64, range: (f64, f64)) -> bool {
    value.is_finite() && value >= range.0 && value <= range.1
}

/// The fewest samples whose scatter is judged: the standard deviation of two samples is
/// too rough an estimate to refuse a run on (two calm samples 20 % apart already read as
/// 28 %); with fewer, only the ratio counts.
pub const MIN_SPREAD_SAMPLES: usize = 3;

/// Sample standard deviation / mean of `samples`: how much repetitions of one test
/// scattered. `None` for fewer than [`MIN_SPREAD_SAMPLES`] samples, or when the mean is
/// not a positive finite number (the mean itself is then refused by
/// [`CalibrationRun::check`]).
pub fn relative_spread(samples: &[f64]) -> Option<f64> {
    if samples.len() < MIN_SPREAD_SAMPLES {
        return None;
    }
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    if !mean.is_finite() || mean <= 0.0 {
        return None;
    }
    let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let rsd = var.sqrt() / mean;
    rsd.is_finite().then_some(rsd)
}

/// How much the samples behind a run scattered, per side, as relative standard
/// deviation ([`relative_spread`]); `None` where unknown (fewer than [`MIN_SPREAD_SAMPLES`] repetitions).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Spread {
    /// Of the generation samples.
    pub tg: Option<f64>,
    /// Of the prompt samples.
    pub pp: Option<f64>,
}

impl Spread {
    /// Nothing known about the scatter.
    pub const UNKNOWN: Spread = Spread { tg: None, pp: None };

    /// The spread of a run's generation and prompt samples (tokens per second of each
    /// repetition; an empty slice for a side not measured).
    pub fn of_samples(tg: &[f64], pp: &[f64]) -> Spread {
        Spread {
            tg: relative_spread(tg),
            pp: relative_spread(pp),
        }
    }
}

/// Why a bench run is not recorded (see the module docs, "Plausibility").
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImplausibleRun {
    /// A speed that is negative, infinite or not a number.
    #[error("the {what} speed is {value} tok/s, which is no speed (it must be a finite number, 0 when not measured)")]
    NotASpeed {
        /// Which one (`measured generation`, `predicted prompt`, ...).
        what: &'static str,
        /// The value.
        value: f64,
    },
    /// Neither generation nor prompt speed was measured.
    #[error("nothing was measured (the generation and prompt speeds are both 0)")]
    NothingMeasured,
    /// Measured / predicted outside the plausible range of that side.
    #[error(
        "the measured {side} speed, {measured:.3} tok/s, is x{ratio:.3} the predicted \
         {predicted:.3} tok/s, outside the plausible x{} to x{}: the measurement went wrong \
         (or the model is not what its file says), and recording it would break the speed \
         model instead of correcting it",
        .range.0,
        .range.1
    )]
    Ratio {
        /// `generation` or `prompt`.
        side: &'static str,
        /// Measured tokens per second.
        measured: f64,
        /// Predicted tokens per second (default constants).
        predicted: f64,
        /// Measured / predicted.
        ratio: f64,
        /// The plausible range ([`TG_SCALE_RANGE`] or [`PP_SCALE_RANGE`]).
        range: (f64, f64),
    },
    /// The samples scattered too much for their mean to mean anything.
    #[error(
        "the {side} samples scatter by {:.0}% (relative standard deviation), more than \
         {:.0}%: something besides the model used the machine while it was measured; \
         close other programs and run `strix-run bench` again (more repetitions, -r, \
         average out the rest)",
        .spread * 100.0,
        MAX_SPREAD * 100.0
    )]
    Spread {
        /// `generation` or `prompt`.
        side: &'static str,
        /// The relative standard deviation.
        spread: f64,
    },
}

impl CalibrationRun {
    /// Whether this run is plausible enough to record: speeds finite and not negative,
    /// something measured, samples that scatter by at most [`MAX_SPREAD`] (where
    /// `spread` knows it), and measured / predicted inside [`TG_SCALE_RANGE`] and
    /// [`PP_SCALE_RANGE`] for each side measured and predicted.
    pub fn check(&self, spread: Spread) -> Result<(), ImplausibleRun> {
        for (what, value) in [
            ("measured generation", self.measured_tg),
            ("measured prompt", self.measured_pp),
            ("predicted generation", self.predicted_tg),
            ("predicted prompt", self.predicted_pp),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(ImplausibleRun::NotASpeed { what, value });
            }
        }
        if self.measured_tg == 0.0 && self.measured_pp == 0.0 {
            return Err(ImplausibleRun::NothingMeasured);
        }
        let sides = [
            (
                "generation",
                self.measured_tg,
                self.predicted_tg,
                TG_SCALE_RANGE,
                spread.tg,
            ),
            (
                "prompt",
                self.measured_pp,
                self.predicted_pp,
                PP_SCALE_RANGE,
                spread.pp,
            ),
        ];
        for (side, measured, _, _, spread) in sides {
            if let Some(spread) = spread.filter(|&s| measured > 0.0 && s > MAX_SPREAD) {
                return Err(ImplausibleRun::Spread { side, spread });
            }
        }
        for (side, measured, predicted, range, _) in sides {
            if measured > 0.0 && predicted > 0.0 && !in_range(measured / predicted, range) {
                return Err(ImplausibleRun::Ratio {
                    side,
                    measured,
                    predicted,
                    ratio: measured / predicted,
                    range,
                });
            }
        }
        Ok(())
    }
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
    /// Refits every backend's correction from the runs, leaving out runs that
    /// [`CalibrationRun::check`] refuses (recorded before it existed).
    pub fn refit(&mut self) {
        self.corrections.clear();
        let plausible: Vec<&CalibrationRun> = self
            .runs
            .iter()
            .filter(|r| r.check(Spread::UNKNOWN).is_ok())
            .collect();
        let mut backends: Vec<Backend> = plausible.iter().map(|r| r.backend).collect();
        backends.sort_by_key(|b| b.to_string());
        backends.dedup();
        for b in backends {
            let of = || plausible.iter().filter(move |r| r.backend == b);
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
    /// Reads `path`; a missing file is an empty calibration. Only a regular file is
    /// read (a FIFO there is refused at once instead of blocking), and a file whose
    /// corrections lie outside [`TG_SCALE_RANGE`] / [`PP_SCALE_RANGE`] is refused with
    /// [`CalibrationError::ImplausibleScale`].
    pub fn load(path: &Path) -> Result<Self, CalibrationError> {
        let Some(text) = crate::files::read_text_if_exists(path)? else {
            return Ok(Self::default());
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
        file.check_scales(path)?;
        Ok(file)
    }

    /// Refuses a correction outside its plausible range (`path` names the file).
    fn check_scales(&self, path: &Path) -> Result<(), CalibrationError> {
        for (machine, m) in &self.machines {
            for (backend, c) in &m.corrections {
                for (side, value, range) in [
                    ("generation", c.tg_scale, TG_SCALE_RANGE),
                    ("prompt", c.pp_scale, PP_SCALE_RANGE),
                ] {
                    if !in_range(value, range) {
                        return Err(CalibrationError::ImplausibleScale {
                            path: path.to_path_buf(),
                            machine: machine.clone(),
                            backend: backend.clone(),
                            side,
                            value,
                            range,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes `path` (creating its directory) atomically: through a temporary file
    /// beside it that replaces it only once complete.
    pub fn save(&self, path: &Path) -> Result<(), CalibrationError> {
        let io = |source| CalibrationError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        crate::files::write_atomically(path, crate::files::Existing::Replace, |f| {
            use std::io::Write;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")
        })?;
        Ok(())
    }

    /// The calibration of the machine with `key`.
    pub fn machine(&self, key: &str) -> Option<&MachineCalibration> {
        self.machines.get(key)
    }

    /// Adds the plausible runs for the machine with `key` ([`CalibrationRun::check`],
    /// without a spread: check the spread first with the samples), keeps the last
    /// [`MAX_RUNS`] and refits. Returns the runs it refused, each with the reason.
    pub fn record(
        &mut self,
        key: &str,
        runs: impl IntoIterator<Item = CalibrationRun>,
    ) -> Vec<(CalibrationRun, ImplausibleRun)> {
        let mut refused = Vec::new();
        let mut accepted = Vec::new();
        for run in runs {
            match run.check(Spread::UNKNOWN) {
                Ok(()) => accepted.push(run),
                Err(why) => refused.push((run, why)),
            }
        }
        if accepted.is_empty() {
            return refused;
        }
        let m = self.machines.entry(key.to_string()).or_default();
        m.runs.extend(accepted);
        if m.runs.len() > MAX_RUNS {
            let drop = m.runs.len() - MAX_RUNS;
            m.runs.drain(..drop);
        }
        m.refit();
        refused
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

    /// A file holding one correction for machine `k`, backend `cpu`.
    fn file_with_scales(tg: f64, pp: f64) -> String {
        format!(
            r#"{{"version": 1, "machines": {{"k": {{"runs": [], "corrections":
               {{"cpu": {{"tg_scale": {tg:e}, "pp_scale": {pp:e}, "runs": 1}}}}}}}}}}"#
        )
    }

    #[test]
    fn implausible_scales_are_refused_on_load_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calibration.json");
        for (tg, pp, side) in [
            (-5.0, 1.0, "generation"),
            (0.0, 1.0, "generation"),
            (1e-9, 1.0, "generation"),
            (1e9, 1.0, "generation"),
            (1.0, 0.009, "prompt"),
            (1.0, 1e3, "prompt"),
        ] {
            std::fs::write(&path, file_with_scales(tg, pp)).unwrap();
            let err = CalibrationFile::load(&path).unwrap_err();
            assert!(
                matches!(err, CalibrationError::ImplausibleScale { side: s, .. } if s == side),
                "{tg} {pp}: {err:?}"
            );
            let msg = err.to_string();
            for part in [
                path.to_str().unwrap(),
                "machine 'k'",
                "cpu correction",
                "outside the plausible range",
                "strix-run bench",
                "Delete",
            ] {
                assert!(msg.contains(part), "{part:?} missing from: {msg}");
            }
        }
        // the ends of the ranges are plausible
        for (tg, pp) in [
            (TG_SCALE_RANGE.0, PP_SCALE_RANGE.0),
            (TG_SCALE_RANGE.1, PP_SCALE_RANGE.1),
        ] {
            std::fs::write(&path, file_with_scales(tg, pp)).unwrap();
            CalibrationFile::load(&path).unwrap();
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_at_the_path_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calibration.json");
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        // On the old code this read blocks for ever: run it on a thread with a deadline.
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        std::thread::spawn(move || {
            let _ = tx.send(CalibrationFile::load(&p).map_err(|e| e.to_string()));
        });
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("loading a FIFO returns instead of blocking");
        let msg = result.unwrap_err();
        assert!(msg.contains("FIFO"), "{msg}");
        assert!(msg.contains("calibration file"), "{msg}");
    }

    #[test]
    fn save_replaces_the_file_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calibration.json");
        let mut f = CalibrationFile::default();
        f.record("k", [run(Backend::Cpu, (10.0, 100.0), (12.0, 90.0))]);
        f.save(&path).unwrap();
        f.record("k", [run(Backend::Cpu, (10.0, 100.0), (8.0, 110.0))]);
        f.save(&path).unwrap();
        assert_eq!(CalibrationFile::load(&path).unwrap(), f);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["calibration.json"]);
    }

    #[test]
    fn implausible_runs_are_not_recorded_and_say_why() {
        let mut f = CalibrationFile::default();
        // a noisy one-repetition bench: prompt x0.009 of the prediction
        let noisy = run(Backend::Cpu, (10.0, 1000.0), (11.0, 9.0));
        let refused = f.record("k", [noisy.clone()]);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0, noisy);
        let why = refused[0].1.to_string();
        assert!(why.contains("prompt"), "{why}");
        assert!(why.contains("x0.009"), "{why}");
        assert!(why.contains("x0.02 to x50"), "{why}");
        assert!(f.machine("k").is_none(), "nothing recorded: {f:?}");

        // a plausible run beside it is recorded, alone
        let good = run(Backend::Cpu, (10.0, 1000.0), (11.0, 900.0));
        let refused = f.record("k", [noisy, good.clone()]);
        assert_eq!(refused.len(), 1);
        let m = f.machine("k").unwrap();
        assert_eq!(m.runs, [good]);
        let c = m.correction(Backend::Cpu).unwrap();
        assert!((c.pp_scale - 0.9).abs() < 1e-12, "{c:?}");

        for (bad, what) in [
            (
                run(Backend::Cpu, (10.0, 100.0), (0.0, 0.0)),
                "nothing was measured",
            ),
            (run(Backend::Cpu, (10.0, 100.0), (-5.0, 90.0)), "no speed"),
            (
                run(Backend::Cpu, (10.0, 100.0), (f64::NAN, 90.0)),
                "no speed",
            ),
            (
                run(Backend::Cpu, (10.0, 100.0), (300.0, 90.0)),
                "generation",
            ),
        ] {
            let why = bad.check(Spread::UNKNOWN).unwrap_err().to_string();
            assert!(why.contains(what), "{what:?}: {why}");
        }
    }

    #[test]
    fn scattered_samples_are_not_recorded() {
        let r = run(Backend::Cpu, (10.0, 100.0), (10.0, 100.0));
        let calm = Spread::of_samples(&[10.0, 10.2, 9.8], &[100.0, 101.0, 99.0]);
        assert!(
            calm.tg.unwrap() < 0.03 && calm.pp.unwrap() < 0.02,
            "{calm:?}"
        );
        r.check(calm).unwrap();
        // one or two samples: the spread is unknown, so only the ratio counts
        assert_eq!(Spread::of_samples(&[10.0], &[]), Spread::UNKNOWN);
        assert_eq!(Spread::of_samples(&[10.0, 20.0], &[]), Spread::UNKNOWN);
        r.check(Spread::UNKNOWN).unwrap();
        let noisy = Spread::of_samples(&[10.0, 10.0, 10.0], &[150.0, 20.0, 130.0]);
        let why = r.check(noisy).unwrap_err();
        assert!(
            matches!(why, ImplausibleRun::Spread { side: "prompt", .. }),
            "{why:?}"
        );
        assert!(why.to_string().contains("more than 25%"), "{why}");
        // a side that was not measured has no spread to judge
        let tg_only = run(Backend::Cpu, (10.0, 100.0), (10.0, 0.0));
        tg_only.check(noisy).unwrap();
    }

    #[test]
    fn runs_recorded_before_the_check_are_left_out_of_the_fit() {
        let mut m = MachineCalibration {
            runs: vec![
                run(Backend::Cpu, (10.0, 1000.0), (20.0, 9.0)),
                run(Backend::Cpu, (10.0, 1000.0), (20.0, 500.0)),
            ],
            corrections: BTreeMap::new(),
        };
        m.refit();
        let c = m.correction(Backend::Cpu).unwrap();
        assert_eq!(c.runs, 1);
        assert!((c.pp_scale - 0.5).abs() < 1e-12, "{c:?}");
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
