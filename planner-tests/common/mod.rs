//! Shared set-up for the planner tests: sparse synthetic models with the real shapes
//! of the seed's ladder (a few MB of headers each, written once per test binary),
//! and hardware descriptions of the seed's machine.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use strix_run::hardware::{Backend, BackendRuntime, Hardware, Os, RuntimeFlavor, RuntimeVersion};
use strix_run::model::synth::{synth, SynthRequest};
use strix_run::model::ModelMeta;
use strix_run::planner::SpeedConstants;

/// 2^30.
pub const GIB: u64 = 1 << 30;

fn models_dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
}

/// The sparse synthetic model of a preset (default quant and shard count).
pub fn model(preset: &str) -> ModelMeta {
    static CACHE: OnceLock<Mutex<Vec<(String, ModelMeta)>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut guard = cache.lock().expect("cache lock");
    if let Some((_, m)) = guard.iter().find(|(p, _)| p == preset) {
        return m.clone();
    }
    let out: PathBuf = models_dir().path().join(format!("{preset}.gguf"));
    let mut req = SynthRequest::new(preset, &out);
    req.sparse = true;
    let summary = synth(&req).expect("synth writes the preset");
    let meta = ModelMeta::open(&summary.files[0]).expect("our reader opens it");
    guard.push((preset.to_string(), meta.clone()));
    meta
}

/// The seed's machine: Strix Halo, 128 GB, 16 cores / 32 threads, with a carveout.
pub fn strix(os: Os, carveout: u64) -> Hardware {
    let preset = if os == Os::Windows {
        "strix-halo-128-win"
    } else {
        "strix-halo-128"
    };
    let mut hw = Hardware::preset(preset).expect("preset exists");
    hw.carveout_bytes = Some(carveout);
    hw.ram_available_bytes = hw.ram_total_bytes - carveout;
    if let Some(g) = hw.gpus.iter_mut().find(|g| g.integrated) {
        g.vram_bytes = carveout;
    }
    hw
}

/// A runtime the user has: backend, version (major, minor), who built it.
pub type Runtime = (Backend, Option<(u32, u32)>, RuntimeFlavor);

/// Replaces the runtimes the user has.
pub fn with_backends(mut hw: Hardware, backends: &[Runtime]) -> Hardware {
    hw.backends = backends
        .iter()
        .map(|&(backend, v, flavor)| BackendRuntime {
            backend,
            version: v.map(|(major, minor)| RuntimeVersion { major, minor }),
            flavor,
        })
        .collect();
    hw
}

/// A speed constant to fit: its name, where it lives, and its lower and upper bound.
pub type Fitted = (&'static str, fn(&mut SpeedConstants) -> &mut f64, f64, f64);

/// Fits `fields` of `start` by coordinate descent in log space on `loss`: each field
/// starts at the geometric middle of its bounds (independent of the committed values),
/// steps of ×e^±step, halving the step until 1e-4.
pub fn fit_constants(
    start: SpeedConstants,
    fields: &[Fitted],
    first_step: f64,
    loss: impl Fn(&SpeedConstants) -> f64,
) -> SpeedConstants {
    let mut c = start;
    for (_, f, lo, hi) in fields {
        *f(&mut c) = (lo * hi).sqrt();
    }
    let mut best = loss(&c);
    let mut step = first_step;
    while step > 1e-4 {
        let mut improved = false;
        for (_, f, lo, hi) in fields {
            for dir in [1.0, -1.0] {
                let mut trial = c;
                let v = f(&mut trial);
                *v = (*v * (dir * step).exp()).clamp(lo.max(1e-9), *hi);
                let l = loss(&trial);
                if l < best {
                    best = l;
                    c = trial;
                    improved = true;
                }
            }
        }
        if !improved {
            step /= 2.0;
        }
    }
    c
}
