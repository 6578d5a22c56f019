//! `strix-run bench` as a user meets it: argument errors (no llama.cpp needed), and,
//! with the `runtime` feature, real measurements of Gemma 3 270M and a synthetic MoE,
//! sweeps with skipped points, the ladder and the plot, on a fake config directory. No
//! timing thresholds: speeds are only checked to be positive. The calibration round
//! trip through the binary measures alone, in `bench_recorded.rs` (`serial.rs`).

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::Path;

/// The binary with its config directory (the calibration file) in `config`.
fn strix(config: &Path) -> Command {
    let mut c = Command::cargo_bin("strix-run").expect("binary built");
    c.env("XDG_CONFIG_HOME", config);
    c
}

/// The Gemma 3 270M test model (`scripts/fetch-gemma`; `STRIX_GEMMA` overrides), as
/// `tests/support` finds it (that module needs the runtime feature).
/// Runs a command that must succeed and returns its standard output.
fn stdout(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).expect("UTF-8 output")
}

fn gemma() -> String {
    let path = std::env::var_os("STRIX_GEMMA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gemma-3-270m-q4_k_m.gguf")
        });
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-gemma",
        path.display()
    );
    path.display().to_string()
}

#[test]
fn a_bad_sweep_names_the_part_and_shows_the_syntax() {
    let dir = tempfile::tempdir().unwrap();
    strix(dir.path())
        .args(["bench", "-m", &gemma(), "--sweep", "threads=1,2,ubatch=big"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("bad --sweep part 'ubatch=big'"))
        .stderr(predicate::str::contains("syntax: KEY=V"));
    strix(dir.path())
        .args(["bench", "-m", &gemma(), "--sweep", "gpus=1"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown key 'gpus'"));
    // nothing was measured, so nothing was recorded
    assert!(!dir.path().join("strix-run").exists());
}

#[test]
fn economics_flags_come_in_pairs() {
    let dir = tempfile::tempdir().unwrap();
    strix(dir.path())
        .args(["bench", "-m", &gemma(), "--watts", "100"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--price-kwh"));
}

#[test]
fn plan_says_where_its_speed_constants_come_from() {
    let dir = tempfile::tempdir().unwrap();
    strix(dir.path())
        .args(["plan", "-m", &gemma()])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "speed: default constants (run `strix-run bench` to calibrate)",
        ));
}

/// A hand-written calibration for this machine (as detected by the library, which is
/// what the binary does without llama.cpp's device list) scales the plan's
/// predictions by exactly its factors.
#[cfg(not(feature = "runtime"))]
#[test]
fn plan_applies_a_calibration_file() {
    use strix_run::planner::calibration::{machine_key, CalibrationFile, CalibrationRun};
    let dir = tempfile::tempdir().unwrap();
    let plan = |extra: &[&str]| -> serde_json::Value {
        let out = stdout(
            strix(dir.path())
                .args(["plan", "-m", &gemma(), "--json"])
                .args(extra),
        );
        serde_json::from_str(&out).unwrap()
    };
    let default = plan(&[]);
    assert_eq!(default["predicted"]["calibrated"], false);
    let hw = strix_run::hardware::detect(&strix_run::hardware::DetectConfig::default()).unwrap();
    let mut file = CalibrationFile::default();
    // measured twice and half the prediction: scales 2 and 0.5
    file.record(
        &machine_key(&hw),
        [CalibrationRun {
            unix_time: 1_767_225_600, // 2026-01-01
            model: "test".into(),
            backend: strix_run::hardware::Backend::Cpu,
            plan: "cpu".into(),
            predicted_tg: 100.0,
            predicted_pp: 1000.0,
            measured_tg: 200.0,
            measured_pp: 500.0,
        }],
    );
    let path = dir.path().join("strix-run/calibration.json");
    file.save(&path).unwrap();
    let calibrated = plan(&[]);
    assert_eq!(calibrated["predicted"]["calibrated"], true);
    let f = |v: &serde_json::Value, k: &str| v["predicted"][k].as_f64().unwrap();
    assert!((f(&calibrated, "tg_tok_s") / f(&default, "tg_tok_s") - 2.0).abs() < 1e-9);
    assert!((f(&calibrated, "pp_tok_s") / f(&default, "pp_tok_s") - 0.5).abs() < 1e-9);
    strix(dir.path())
        .args(["plan", "-m", &gemma()])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "speed: calibrated on this machine (1 run, 2026-01-01)",
        ));
    // --no-calibration and a deleted file give the defaults back
    assert_eq!(plan(&["--no-calibration"]), default);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(plan(&[]), default);
}

#[cfg(not(feature = "runtime"))]
#[test]
fn bench_needs_llama_cpp() {
    let dir = tempfile::tempdir().unwrap();
    strix(dir.path())
        .args(["bench", "-m", &gemma()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("built without llama.cpp"));
}

#[cfg(feature = "runtime")]
mod runtime {
    use super::*;
    use serde_json::Value;

    fn json(cmd: &mut Command) -> Value {
        let out = stdout(cmd);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    const TINY: [&str; 6] = ["--pp", "32", "--tg", "8", "-r", "2"];

    fn f(v: &Value) -> f64 {
        v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
    }

    /// Checks a measured point's tests: llama-bench's fields, positive speeds.
    fn check_measured(p: &Value, reps: usize) {
        assert_eq!(p["status"], "measured", "{p}");
        let tests = p["tests"].as_array().unwrap();
        assert_eq!(tests.len(), 2, "{p}");
        assert_eq!(tests[0]["test"], "pp32");
        assert_eq!(tests[0]["n_prompt"], 32);
        assert_eq!(tests[0]["n_gen"], 0);
        assert_eq!(tests[1]["test"], "tg8");
        assert_eq!(tests[1]["n_prompt"], 0);
        assert_eq!(tests[1]["n_gen"], 8);
        for t in tests {
            for k in [
                "n_threads",
                "n_batch",
                "n_ubatch",
                "n_gpu_layers",
                "n_cpu_moe",
                "flash_attn",
                "type_k",
                "type_v",
                "avg_ts",
                "stddev_ts",
                "samples_ts",
            ] {
                assert!(!t[k].is_null(), "{k} missing in {t}");
            }
            let samples = t["samples_ts"].as_array().unwrap();
            assert_eq!(samples.len(), reps, "{t}");
            assert!(samples.iter().all(|s| f(s) > 0.0), "{t}");
            let mean = samples.iter().map(f).sum::<f64>() / reps as f64;
            assert!((f(&t["avg_ts"]) - mean).abs() < 1e-6 * mean, "{t}");
            assert!(f(&t["stddev_ts"]) >= 0.0);
            assert!(f(&t["predicted_ts"]) > 0.0);
        }
        assert!(f(&p["load_seconds"]) >= 0.0);
        let mem = p["memory"].as_array().unwrap();
        let host = mem
            .iter()
            .find(|m| m["side"] == "host")
            .expect("host memory");
        assert!(f(&host["actual_weights"]) > 1e6, "{host}");
    }

    #[test]
    fn gemma_bench_reports_speed_memory_and_the_plan() {
        let dir = tempfile::tempdir().unwrap();
        let r = json(
            strix(dir.path())
                .args(["bench", "-m", &gemma(), "--json"])
                .args(TINY),
        );
        let models = r["models"].as_array().unwrap();
        assert_eq!(models.len(), 1);
        let points = models[0]["points"].as_array().unwrap();
        assert_eq!(points.len(), 1);
        let p = &points[0];
        assert_eq!(p["is_plan"], true);
        assert_eq!(p["label"], "plan");
        check_measured(p, 2);
        assert_eq!(p["config"]["backend"], "cpu");
        assert!(p["plan"].as_str().unwrap().starts_with("cpu ngl 0/19"));
        assert!(f(&p["predicted"]["tg_tok_s"]) > 0.0);
        assert_eq!(r["params"]["repetitions"], 2);
        assert!(r["speed"]
            .as_str()
            .unwrap()
            .starts_with("speed: default constants"));
        // Recorded, unless the other tests of this binary, running beside it on the
        // same cores, slowed it beyond what calibration accepts: then the report says
        // so. The round trip, measured alone, is in `serial.rs`.
        let calibration = r["calibration"].as_str().unwrap();
        assert!(
            calibration.starts_with("recorded 1 run")
                || calibration.starts_with("nothing recorded; not recorded: Gemma 3 270m (plan): "),
            "{calibration}"
        );
    }

    #[test]
    fn markdown_and_csv_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let md = stdout(
            strix(dir.path())
                .args(["bench", "-m", &gemma(), "--markdown", "--no-calibration"])
                .args([
                    "--watts",
                    "60",
                    "--price-kwh",
                    "0.30",
                    "--hardware-cost",
                    "2000",
                ])
                .args(TINY),
        );
        assert!(
            md.contains("| point | config | pp32 tok/s | tg8 tok/s |"),
            "{md}"
        );
        assert!(md.contains("| plan ★ |"), "{md}");
        assert!(md.contains("cost / Mtok"), "{md}");
        assert!(md.contains("energy +"), "{md}");
        assert!(md.contains("not recorded (--no-calibration)"), "{md}");
        assert!(!dir.path().join("strix-run/calibration.json").exists());
        let csv = stdout(
            strix(dir.path())
                .args(["bench", "-m", &gemma(), "--csv", "--no-calibration"])
                .args(TINY),
        );
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].starts_with("model,point,is_plan,status,reason,test,n_prompt,n_gen"));
        assert_eq!(lines.len(), 3, "{csv}");
        assert!(
            lines[1].contains(",plan,true,measured,,pp32,32,0,"),
            "{csv}"
        );
        assert!(lines[2].contains(",plan,true,measured,,tg8,0,8,"), "{csv}");
    }

    #[test]
    fn sweep_marks_the_plan_and_ranks_against_the_best() {
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("sweep.svg");
        let r = json(
            strix(dir.path())
                .args([
                    "bench",
                    "-m",
                    &gemma(),
                    "--json",
                    "--sweep",
                    "threads=1,2,ubatch=64,512",
                ])
                .arg("--plot")
                .arg(&svg)
                .args(TINY),
        );
        let points = r["models"][0]["points"].as_array().unwrap();
        // 4 grid points, plus the plan when it is none of them
        assert!(points.len() == 4 || points.len() == 5, "{}", points.len());
        assert_eq!(points.iter().filter(|p| p["is_plan"] == true).count(), 1);
        assert_eq!(points[0]["label"], "threads=1 ubatch=64");
        assert_eq!(points[3]["label"], "threads=2 ubatch=512");
        for p in points {
            check_measured(p, 2);
            for t in p["tests"].as_array().unwrap() {
                let ratio = f(&t["ratio_to_best"]);
                assert!(ratio > 0.0 && ratio <= 1.0 + 1e-12, "{t}");
            }
        }
        // the swept values are what ran
        assert_eq!(points[0]["tests"][1]["n_threads"], 1);
        assert_eq!(points[0]["tests"][0]["n_ubatch"], 64);
        assert_eq!(points[3]["tests"][1]["n_threads"], 2);
        assert_eq!(points[3]["tests"][0]["n_ubatch"], 512);
        // only the first point loads the model; the rest need a new context at most
        assert_eq!(points[0]["reloaded"], true);
        assert!(points[1..4].iter().all(|p| p["reloaded"] == false));
        let v = &r["models"][0]["plan_vs_best"];
        let best = v["best_tg"].as_str().unwrap();
        assert!(points.iter().any(|p| p["label"] == best));
        let plan_ratio = f(&v["plan_tg_ratio"]);
        assert!(plan_ratio > 0.0 && plan_ratio <= 1.0 + 1e-12);
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(
            text.contains("<svg") && text.contains("<text"),
            "no SVG text"
        );
        assert!(text.contains("tok/s vs threads"));
        assert!(text.contains("ubatch=64") && text.contains("ubatch=512"));
    }

    #[test]
    fn points_that_cannot_fit_are_skipped_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        // 6 GiB of RAM less the 4 GiB reserve: 2 GiB, too little for a million-token
        // f16 cache.
        let r = json(
            strix(dir.path())
                .args(["bench", "-m", &gemma(), "--json", "--ram", "6GiB"])
                .args(["--cache-type-k", "f16", "--cache-type-v", "f16"])
                .args(["--sweep", "ctx=256,1000000"])
                .args(TINY),
        );
        let points = r["models"][0]["points"].as_array().unwrap();
        check_measured(&points[0], 2);
        assert_eq!(points[1]["label"], "ctx=1000000");
        assert_eq!(points[1]["status"], "skipped");
        assert!(
            points[1]["reason"]
                .as_str()
                .unwrap()
                .contains("does not fit"),
            "{}",
            points[1]
        );
        assert!(points[1]["tests"].as_array().unwrap().is_empty());
        // a what-if machine is not this machine: nothing recorded
        assert!(r["calibration"]
            .as_str()
            .unwrap()
            .starts_with("not recorded"));
        assert!(!dir.path().join("strix-run/calibration.json").exists());
    }

    fn synth(dir: &Path, preset: &str) -> String {
        let out = dir.join(format!("{preset}.gguf"));
        Command::cargo_bin("strix-run")
            .unwrap()
            .args(["synth", "--preset", preset, "--out"])
            .arg(&out)
            .assert()
            .success();
        out.display().to_string()
    }

    #[test]
    fn nothing_measured_is_an_error_after_the_report() {
        let dir = tempfile::tempdir().unwrap();
        // 4 GiB of RAM is all reserve: no point fits, each says why, exit code 1.
        strix(dir.path())
            .args([
                "bench",
                "-m",
                &gemma(),
                "--ram",
                "4GiB",
                "--sweep",
                "threads=1,2",
            ])
            .args(TINY)
            .assert()
            .failure()
            .stdout(predicate::str::contains(
                "skipped: Gemma 3 270m does not fit",
            ))
            .stderr(predicate::str::contains("nothing was measured"));
        strix(dir.path())
            .args(["bench", "--ladder", "397b", "--models-dir"])
            .arg(dir.path())
            .args(TINY)
            .assert()
            .failure()
            .stdout(predicate::str::contains("missing: 397b (looked in"))
            .stderr(predicate::str::contains(
                "none of the models is on this machine",
            ));
    }

    #[test]
    fn synthetic_moe_sweep_over_threads_and_expert_placement() {
        let dir = tempfile::tempdir().unwrap();
        let moe = synth(dir.path(), "micro-moe");
        let csv = stdout(
            strix(dir.path())
                .args([
                    "bench",
                    "-m",
                    &moe,
                    "--csv",
                    "--sweep",
                    "threads=1,2,ncmoe=0,2",
                ])
                .args(TINY),
        );
        let lines: Vec<&str> = csv.lines().collect();
        let header: Vec<&str> = lines[0].split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
        // 4 grid points (+ the plan if it is none of them), 2 tests each
        assert!(lines.len() == 1 + 8 || lines.len() == 1 + 10, "{csv}");
        let mut ncmoe_seen = std::collections::BTreeSet::new();
        for l in &lines[1..] {
            let c: Vec<&str> = l.split(',').collect();
            assert_eq!(c[col("status")], "measured", "{l}");
            assert!(c[col("avg_ts")].parse::<f64>().unwrap() > 0.0, "{l}");
            ncmoe_seen.insert(c[col("n_cpu_moe")].to_string());
        }
        assert!(
            ncmoe_seen.contains("0") && ncmoe_seen.contains("2"),
            "{csv}"
        );
    }

    #[test]
    fn ladder_runs_what_is_here_smallest_first_and_stops_at_what_cannot_fit() {
        let dir = tempfile::tempdir().unwrap();
        let moe = synth(dir.path(), "micro-moe");
        let empty = tempfile::tempdir().unwrap();
        // Gemma first on the command line; the smaller MoE runs first; the 397B is
        // not here.
        let ladder = format!("{},{moe},397b", gemma());
        let r = json(
            strix(dir.path())
                .args(["bench", "--json", "--no-calibration", "--ladder", &ladder])
                .arg("--models-dir")
                .arg(empty.path())
                .args(TINY),
        );
        let models = r["models"].as_array().unwrap();
        assert_eq!(models.len(), 2, "{r}");
        assert!(f(&models[0]["file_bytes"]) < f(&models[1]["file_bytes"]));
        assert!(models[1]["path"]
            .as_str()
            .unwrap()
            .ends_with("gemma-3-270m-q4_k_m.gguf"));
        let missing = r["missing"].as_array().unwrap();
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0]["alias"], "397b");
        assert!(!missing[0]["searched"].as_array().unwrap().is_empty());
        assert!(r["stopped"].is_null());
        // With 4 GiB + 100 MiB of RAM (100 MiB after the reserve) the MoE fits and
        // Gemma does not: the ladder stops there.
        let r = json(
            strix(dir.path())
                .args(["bench", "--json", "--ladder", &ladder, "--ram", "4196MiB"])
                .arg("--models-dir")
                .arg(empty.path())
                .args(TINY),
        );
        let models = r["models"].as_array().unwrap();
        assert_eq!(models.len(), 1, "{r}");
        check_measured(&models[0]["points"][0], 2);
        let stopped = r["stopped"].as_str().unwrap();
        assert!(
            stopped.contains("cannot fit") && stopped.contains("ladder stops"),
            "{stopped}"
        );
    }
}
