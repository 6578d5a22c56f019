//! The speed calibration file: corrections outside their plausible range are refused
//! with the file, machine, backend, value and range named; a FIFO at its path does not
//! hang `plan`; a bench run far off the prediction is not recorded.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use strix_run::hardware::{detect, Backend, DetectConfig};
use strix_run::planner::calibration::{
    machine_key, CalibrationError, CalibrationFile, CalibrationRun, ImplausibleRun,
};

/// `$XDG_CONFIG_HOME/strix-run/calibration.json` under `config`.
fn calibration_path(config: &Path) -> PathBuf {
    config.join("strix-run").join("calibration.json")
}

/// Writes a calibration file whose machine `key` has a CPU correction of `tg_scale`.
fn write_scale(path: &Path, key: &str, tg_scale: f64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let json = serde_json::json!({
        "version": 1,
        "machines": {
            key: {
                "runs": [],
                "corrections": { "cpu": { "tg_scale": tg_scale, "pp_scale": 1.0, "runs": 1 } }
            }
        }
    });
    std::fs::write(path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
}

/// A small synthetic model to plan.
fn micro_model(dir: &Path) -> PathBuf {
    let out = dir.join("micro-dense.gguf");
    strix_run::model::synth::synth(&strix_run::model::synth::SynthRequest {
        preset: "micro-dense".into(),
        quant: Some("Q4_K_M".into()),
        out: out.clone(),
        sparse: true,
        shards: 1,
        seed: 0,
        existing: strix_run::files::Existing::Replace,
    })
    .expect("synth writes the model");
    out
}

#[test]
fn calibration_files_with_implausible_scales_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = calibration_path(dir.path());
    // JSON has no NaN or infinity: 1e-9 and 1e9 stand for "absurd"
    for scale in [-5.0, 0.0, 1e-9, 1e9] {
        write_scale(&path, "cpu=test", scale);
        let err = CalibrationFile::load(&path).expect_err("refused");
        assert!(
            matches!(
                &err,
                CalibrationError::ImplausibleScale { value, side: "generation", .. } if *value == scale
            ),
            "{scale}: {err:?}"
        );
        let msg = err.to_string();
        let value = format!("is {scale}, outside the plausible range 0.02 to 20");
        for part in [
            path.to_str().unwrap(),
            "machine 'cpu=test'",
            "generation scale of the cpu correction",
            value.as_str(),
            "Delete that machine's entry",
            "run `strix-run bench` again",
        ] {
            assert!(msg.contains(part), "{part:?} missing from: {msg}");
        }
    }
    write_scale(&path, "cpu=test", 1.5);
    CalibrationFile::load(&path).expect("a plausible scale loads");
}

#[test]
fn plan_does_not_apply_an_implausible_calibration() {
    let dir = tempfile::tempdir().unwrap();
    let model = micro_model(dir.path());
    // this machine's key, so that the old code applied the scale (0.0 tok/s, calibrated)
    let hw = detect(&DetectConfig::default()).expect("detects this machine");
    let config = dir.path().join("config");
    write_scale(&calibration_path(&config), &machine_key(&hw), -5.0);
    let out = assert_cmd::Command::cargo_bin("strix-run")
        .unwrap()
        .env("XDG_CONFIG_HOME", &config)
        .args(["plan", "--json", "-m"])
        .arg(&model)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("generation scale of the cpu correction")
            && stderr.contains("is -5, outside the plausible range 0.02 to 20")
            && stderr.contains("strix-run bench"),
        "{stderr}"
    );
    if out.status.success() {
        // reported and left out: the plan uses the default constants
        let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(plan["predicted"]["calibrated"], false, "{plan}");
        assert!(
            plan["predicted"]["tg_tok_s"].as_f64().unwrap() > 0.0,
            "{plan}"
        );
    } else {
        assert_eq!(out.status.code(), Some(1), "{stderr}");
    }
}

#[cfg(unix)]
#[test]
fn a_fifo_as_calibration_file_does_not_hang_plan() {
    let dir = tempfile::tempdir().unwrap();
    let model = micro_model(dir.path());
    let config = dir.path().join("config");
    let path = calibration_path(&config);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("strix-run"))
        .env("XDG_CONFIG_HOME", &config)
        .args(["plan", "--hw", "strix-halo-128", "-m"])
        .arg(&model)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("plan still waits on the FIFO after 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("FIFO"), "{stderr}");
    assert!(stderr.contains(path.to_str().unwrap()), "{stderr}");
}

#[test]
fn a_run_at_x0_009_of_the_prediction_is_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = calibration_path(dir.path());
    let mut file = CalibrationFile::load(&path).unwrap();
    let noisy = CalibrationRun {
        unix_time: 1_767_225_600,
        model: "micro".into(),
        backend: Backend::Cpu,
        plan: "cpu".into(),
        predicted_tg: 40.0,
        predicted_pp: 1000.0,
        measured_tg: 38.0,
        measured_pp: 9.0,
    };
    let refused = file.record("k", [noisy.clone()]);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        matches!(refused[0].1, ImplausibleRun::Ratio { side: "prompt", .. }),
        "{refused:?}"
    );
    let why = refused[0].1.to_string();
    assert!(why.contains("x0.009"), "{why}");
    file.save(&path).unwrap();
    let back = CalibrationFile::load(&path).unwrap();
    assert!(back.machine("k").is_none(), "{back:?}");
    // the library check the bench command runs before recording says the same
    assert_eq!(
        noisy
            .check(strix_run::planner::calibration::Spread::UNKNOWN)
            .unwrap_err(),
        refused[0].1
    );
}
