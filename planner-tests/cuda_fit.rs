//! The speed model's CUDA constants against a real GPU's sweep.
//!
//! `bench/results/2026-11-26-nvidia-h200.json` holds a `bench/gpu-plan-check` run on
//! an NVIDIA H200 (CUDA 13.0): the synthetic tiny-moe at F16 under every placement
//! (-ngl 0-19 with no expert offload, -ncmoe 1-18 with every layer on the GPU) at the
//! machine's 16 cores and -ub 512, and the machine as measured there (the hardware
//! profile the run planned with). Each placement is replayed here through the
//! planner with its configuration pinned; the test re-fits the CUDA block overhead and
//! the PCIe hand-over cost from scratch (with the CPU efficiency of that machine as a
//! free nuisance parameter, since the global one belongs to the seed's fit) and checks
//! that the committed `SpeedConstants::SEED_FIT` values are that fit.

mod common;

use common::{fit_constants, Fitted};

use serde_json::Value;
use strix_run::hardware::{Backend, Hardware};
use strix_run::model::synth::{synth, SynthRequest};
use strix_run::model::ModelMeta;
use strix_run::planner::{Pinned, Planner, Request, SpeedConstants};

const RESULTS: &str = "bench/results/2026-11-26-nvidia-h200.json";

struct Point {
    ngl: u32,
    ncmoe: u32,
    threads: u32,
    ubatch: u32,
    measured_tg: f64,
}

struct Sweep {
    hw: Hardware,
    model: ModelMeta,
    n_ctx: u32,
    /// The budgets the run planned for, bytes.
    budgets: Vec<u64>,
    points: Vec<Point>,
}

fn load() -> Sweep {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(RESULTS);
    let text = std::fs::read_to_string(&path).expect("the committed GPU results");
    let doc: Value = serde_json::from_str(&text).expect("valid JSON");
    let hw: Hardware =
        serde_json::from_value(doc["hardware_profile"].clone()).expect("a hardware profile");
    let cores = u64::from(hw.cpu.physical_cores);
    let model_doc = &doc["model"];
    let dir = tempfile::tempdir().expect("temp dir");
    let mut req = SynthRequest::new(
        model_doc["preset"].as_str().expect("preset"),
        dir.path().join("m.gguf"),
    );
    req.quant = model_doc["quant"].as_str().map(str::to_string);
    req.sparse = true;
    let summary = synth(&req).expect("synth writes the model");
    let model = ModelMeta::open(&summary.files[0]).expect("our reader opens it");
    assert_eq!(
        model.file_bytes,
        model_doc["bytes"].as_u64().expect("bytes"),
        "the synthetic model is not the one that was measured"
    );
    let n_ctx = (doc["pp"].as_u64().expect("pp") + doc["tg"].as_u64().expect("tg")) as u32;
    let num = |v: &Value| v.as_u64().expect("an integer") as u32;
    let points = doc["sweep"]
        .as_array()
        .expect("sweep")
        .iter()
        .filter(|r| r["tg"].is_object())
        .filter(|r| r["config"]["t"].as_u64() == Some(cores) && r["config"]["ub"] == 512)
        .map(|r| Point {
            ngl: num(&r["config"]["ngl"]),
            ncmoe: num(&r["config"]["ncmoe"]),
            threads: num(&r["config"]["t"]),
            ubatch: num(&r["config"]["ub"]),
            measured_tg: r["tg"]["avg_ts"].as_f64().expect("tg"),
        })
        .collect();
    let budgets = doc["plans"]
        .as_array()
        .expect("plans")
        .iter()
        .map(|p| p["budget_bytes"].as_u64().expect("budget"))
        .collect();
    Sweep {
        hw,
        model,
        n_ctx,
        budgets,
        points,
    }
}

/// A point's configuration, pinned for the planner.
fn pinned(p: &Point) -> Pinned {
    Pinned {
        backend: Some(Backend::Cuda),
        n_gpu_layers: Some(p.ngl),
        n_cpu_moe: Some(p.ncmoe),
        threads: Some(p.threads),
        n_ubatch: Some(p.ubatch),
        ..Pinned::default()
    }
}

fn predict(s: &Sweep, c: &SpeedConstants) -> Vec<f64> {
    s.points
        .iter()
        .map(|p| {
            let req = Request {
                pinned: pinned(p),
                n_ctx: Some(s.n_ctx),
                speed: Some((*c, false)),
                ..Request::default()
            };
            let plan = Planner::plan(&s.model, &s.hw, &req)
                .unwrap_or_else(|e| panic!("ngl {} ncmoe {}: {e}", p.ngl, p.ncmoe));
            plan.predicted.tg_tok_s
        })
        .collect()
}

fn loss(s: &Sweep, c: &SpeedConstants) -> f64 {
    predict(s, c)
        .iter()
        .zip(&s.points)
        .map(|(pred, p)| (pred / p.measured_tg).ln().powi(2))
        .sum()
}

const CUDA_BLOCK: Fitted = (
    "cuda_block_overhead_s",
    |c| &mut c.cuda_block_overhead_s,
    1e-6,
    1e-3,
);
const PCIE_SPLIT: Fitted = (
    "pcie_split_overhead_s",
    |c| &mut c.pcie_split_overhead_s,
    1e-7,
    1e-2,
);
/// Nuisance: how much of the measured (PyTorch) CPU bandwidth llama.cpp reaches there.
const CPU_EFF: Fitted = ("cpu_efficiency", |c| &mut c.cpu_efficiency, 0.1, 1.0);

/// The fit of `fields` to the sweep (see [`fit_constants`]).
fn fit(s: &Sweep, start: SpeedConstants, fields: &[Fitted]) -> SpeedConstants {
    fit_constants(start, fields, 1.0, |c| loss(s, c))
}

#[test]
fn h200_sweep_is_reproduced_and_cuda_constants_are_the_fit() {
    let s = load();
    assert!(
        s.points.len() >= 30,
        "expected the placement sweep, found {} points",
        s.points.len()
    );
    // The committed constants, with only the nuisance CPU efficiency fitted.
    let committed = fit(&s, SpeedConstants::SEED_FIT, &[CPU_EFF]);
    let fitted = fit(
        &s,
        SpeedConstants::SEED_FIT,
        &[CUDA_BLOCK, PCIE_SPLIT, CPU_EFF],
    );
    let mut worst: f64 = 0.0;
    for (p, pred) in s.points.iter().zip(predict(&s, &committed)) {
        let err = pred / p.measured_tg - 1.0;
        eprintln!(
            "-ngl {:2} -ncmoe {:2}: measured {:6.1}  predicted {:6.1}  ({:+.0}%)",
            p.ngl,
            p.ncmoe,
            p.measured_tg,
            pred,
            err * 100.0
        );
        worst = worst.max(err.abs());
    }
    for (name, f, _, _) in [CUDA_BLOCK, PCIE_SPLIT, CPU_EFF] {
        let (mut a, mut b) = (committed, fitted);
        eprintln!(
            "{name:24} committed {:.4e}  fitted {:.4e}",
            *f(&mut a),
            *f(&mut b)
        );
    }
    let (lc, lf) = (loss(&s, &committed), loss(&s, &fitted));
    eprintln!("loss: committed {lc:.5}, fitted {lf:.5}");
    assert!(worst < 0.25, "a placement is off by {:.0}%", worst * 100.0);
    assert!(
        lc <= lf * 1.05 + 1e-4,
        "the committed CUDA constants are not the fit of {RESULTS}: loss {lc} vs {lf}; update them from the values printed above"
    );
}

/// The plan at `budget` on the measured machine, or with a pinned placement.
fn plan_at(s: &Sweep, budget: u64, pinned: Pinned) -> Option<strix_run::planner::Plan> {
    let mut hw = s.hw.clone();
    hw.gpus[0].vram_bytes = budget;
    let req = Request {
        pinned,
        n_ctx: Some(s.n_ctx),
        ..Request::default()
    };
    Planner::plan(&s.model, &hw, &req).ok()
}

/// With the committed constants, the plan at each budget of the run is the fastest
/// measured placement among those the planner itself lets fit (its 1 GiB headroom
/// included), within 5 %: this checks the speed model's ranking on a real GPU,
/// apart from how much memory the planner keeps free. The speeds are the sweep's.
#[test]
fn h200_plans_pick_the_fastest_placement_the_planner_lets_fit() {
    let s = load();
    assert!(!s.budgets.is_empty());
    for &budget in &s.budgets {
        let plan = plan_at(&s, budget, Pinned::default()).expect("a plan at every budget");
        // Generation runs one token at a time, so the physical batch does not enter its
        // speed: when the plan's `-ub` was not measured for its placement, the same
        // placement at another `-ub` (step 2 measured every placement at 512) stands in.
        let same_placement = |p: &&Point| {
            p.ngl == plan.n_gpu_layers && p.ncmoe == plan.n_cpu_moe && p.threads == plan.n_threads
        };
        let mine = s
            .points
            .iter()
            .filter(same_placement)
            .find(|p| p.ubatch == plan.n_ubatch)
            .or_else(|| s.points.iter().find(same_placement))
            .unwrap_or_else(|| {
                panic!(
                    "budget {budget}: the plan -ngl {} -ncmoe {} -t {} -ub {} was not measured; run bench/gpu-plan-check again",
                    plan.n_gpu_layers, plan.n_cpu_moe, plan.n_threads, plan.n_ubatch
                )
            });
        let best = s
            .points
            .iter()
            .filter(|p| plan_at(&s, budget, pinned(p)).is_some())
            .max_by(|a, b| a.measured_tg.total_cmp(&b.measured_tg))
            .expect("some placement fits");
        let ratio = mine.measured_tg / best.measured_tg;
        eprintln!(
            "{:.1} GiB: plan -ngl {} -ncmoe {} measured {:.1}; best the planner lets fit -ngl {} -ncmoe {} {:.1} ({ratio:.3})",
            budget as f64 / (1u64 << 30) as f64,
            mine.ngl,
            mine.ncmoe,
            mine.measured_tg,
            best.ngl,
            best.ncmoe,
            best.measured_tg
        );
        assert!(
            ratio >= 0.95,
            "budget {budget}: plan reaches {ratio:.3} of the best"
        );
    }
}
