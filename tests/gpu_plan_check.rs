//! `measurements/gpu-plan-check --frontier` against a stand-in for llama-bench whose GPU
//! memory and speed are known functions of the placement: the edge walks must find the
//! true edge of what fits each budget, wherever the planner's memory model starts them,
//! and the summary must compare the plan with the fastest point that fits.
//!
//! The stand-in's memory is deliberately not the planner's: expert offload costs 0.28
//! GiB per block on the GPU over a 2 GiB base, a layer split 0.40 GiB per layer, so the
//! walks start off the edge and have to step to it. With no GPU here the script judges
//! fit by the buffers llama-bench reports, which is what the stand-in prints.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const GIB: f64 = (1u64 << 30) as f64;
const N_BLOCK: u32 = 48;
const N_OFF: u32 = 49;

/// Generation speed in the stand-in's world at 16 threads.
fn world_tg(ngl: u32, ncmoe: u32) -> f64 {
    if ngl >= N_OFF {
        50.0 + 3.0 * f64::from(N_BLOCK - ncmoe)
    } else {
        30.0 + 2.0 * f64::from(ngl)
    }
}

/// GiB on the GPU in the stand-in's world.
fn world_gib(ngl: u32, ncmoe: u32) -> f64 {
    if ngl >= N_OFF {
        2.0 + 0.28 * f64::from(N_BLOCK - ncmoe)
    } else {
        0.1 + 0.40 * f64::from(ngl)
    }
}

const FAKE_LLAMA_BENCH: &str = r#"#!/usr/bin/env python3
import json, sys
a = sys.argv[1:]
if a == ["--list-devices"]:
    print("Available devices:\n  CUDA0: stand-in (1 MiB)")
    sys.exit(0)
o = {f: a[i + 1] for i, f in enumerate(a[:-1]) if f in ("-ngl", "-ncmoe", "-ub", "-t")}
ngl, ncmoe = int(o["-ngl"]), int(o["-ncmoe"])
if ngl >= 49:
    gib = 2.0 + 0.28 * (48 - ncmoe); tg = 50 + 3.0 * (48 - ncmoe)
else:
    gib = 0.1 + 0.40 * ngl; tg = 30 + 2.0 * ngl
tg *= int(o["-t"]) / 16
print(f"CUDA0 model buffer size = {gib * 1024:.3f} MiB", file=sys.stderr)
print(json.dumps([{"n_prompt": 512, "n_gen": 0, "avg_ts": 300.0, "stddev_ts": 0, "samples_ts": [300.0]},
                  {"n_prompt": 0, "n_gen": 64, "avg_ts": tg, "stddev_ts": 0, "samples_ts": [tg]}]))
"#;

fn has_python() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn frontier_walks_find_the_measured_edge_of_each_budget() {
    assert!(has_python(), "measurements/gpu-plan-check needs python3");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    let work = dir.path();

    // The machine the 30B run planned for (its hardware profile, from the results).
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(
            root.join("measurements/results/2026-11-26-nvidia-h200-qwen3-30b.json"),
        )
        .expect("committed results"),
    )
    .expect("JSON");
    let profile = work.join("hw.json");
    std::fs::write(&profile, results["hardware_profile"].to_string()).expect("write profile");

    let fake = work.join("llama-bench");
    std::fs::write(&fake, FAKE_LLAMA_BENCH).expect("write stand-in");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    // The model, header only: the script does not synthesise one that exists.
    let strix = env!("CARGO_BIN_EXE_strix-run");
    let model = work.join("qwen3-30b-a3b-Q4_K_M.gguf");
    let synth = Command::new(strix)
        .args([
            "synth",
            "--preset",
            "qwen3-30b-a3b",
            "--quant",
            "Q4_K_M",
            "--sparse",
        ])
        .arg("--out")
        .arg(&model)
        .output()
        .expect("strix-run synth");
    assert!(
        synth.status.success(),
        "{}",
        String::from_utf8_lossy(&synth.stderr)
    );

    let out = work.join("result.json");
    let run = Command::new("python3")
        .arg(root.join("measurements/gpu-plan-check"))
        .arg("--strix")
        .arg(strix)
        .arg("--llama-bench")
        .arg(&fake)
        .arg("--work")
        .arg(work)
        .arg("--out")
        .arg(&out)
        .arg("--hw-profile")
        .arg(&profile)
        .args(["--preset", "qwen3-30b-a3b", "--quant", "Q4_K_M"])
        .args(["--budgets", "8GiB,12GiB", "--frontier"])
        .args([
            "--threads",
            "8,16",
            "--ngl-stride",
            "12",
            "--ncmoe-stride",
            "12",
        ])
        .args(["--ab-rounds", "2", "--ab-reps", "2"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 measurements/gpu-plan-check");
    let stderr = String::from_utf8_lossy(&run.stderr);
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("no results ({e}): {stderr}")),
    )
    .expect("results JSON");
    assert_eq!(doc["complete"], true, "{stderr}");

    for plan in doc["plans"].as_array().expect("plans") {
        let budget = plan["budget_bytes"].as_f64().expect("budget") / GIB;
        let edges = &plan["frontier"]["edges"];
        // The true edges: the most on the GPU whose footprint is within the budget.
        let experts = (0..=N_BLOCK)
            .rev()
            .find(|&s| world_gib(N_OFF, N_BLOCK - s) <= budget)
            .expect("some expert offload fits");
        let layers = (0..=N_OFF)
            .rev()
            .find(|&s| world_gib(s, 0) <= budget)
            .expect("some layer split fits");
        assert_eq!(
            edges["experts"]["edge"], experts,
            "{budget} GiB expert offload: {edges}"
        );
        assert_eq!(edges["layers"]["edge"], layers, "{budget} GiB layer split");
        assert_ne!(
            edges["experts"]["start"], experts,
            "{budget} GiB: the stand-in should make the walk step off the planner's start"
        );
        // The fastest fitting point in the stand-in's world is the expert-offload edge
        // at 16 threads, and the summary must say so.
        let row = doc["summary"]
            .as_array()
            .expect("summary")
            .iter()
            .find(|r| r["budget_gib"].as_f64() == Some(budget))
            .expect("a summary row per budget");
        assert_eq!(row["best"]["ngl"], N_OFF, "{row}");
        assert_eq!(row["best"]["ncmoe"], N_BLOCK - experts, "{row}");
        assert_eq!(row["best"]["t"], 16, "{row}");

        // Step 4: the plan against that point, two rounds, the plan first in round 1.
        let runs: Vec<&Value> = doc["ab"]
            .as_array()
            .expect("A/B runs")
            .iter()
            .filter(|r| r["budget_bytes"] == plan["budget_bytes"])
            .collect();
        let roles: Vec<&str> = runs
            .iter()
            .map(|r| r["role"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(roles, ["plan", "rival", "rival", "plan"], "{budget} GiB");
        let cfg = &plan["config"];
        let plan_tg = world_tg(
            cfg["ngl"].as_u64().expect("ngl") as u32,
            cfg["ncmoe"].as_u64().expect("ncmoe") as u32,
        );
        let expected = plan_tg / world_tg(N_OFF, N_BLOCK - experts);
        let pooled = row["ratio_pooled"].as_f64().expect("a pooled ratio");
        assert!(
            (pooled - expected).abs() < 1e-3,
            "{budget} GiB: pooled ratio {pooled}, the stand-in's {expected}"
        );
        assert_eq!(row["pass"], expected >= 0.95, "{row}");
    }
}
