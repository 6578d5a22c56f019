//! The `strix-run` binary as a user meets it: exit codes, messages, JSON keys.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::PathBuf;

fn strix() -> Command {
    Command::cargo_bin("strix-run").expect("binary built")
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = strix()
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).expect("valid JSON")
}

fn synth_sparse(dir: &std::path::Path, preset: &str, shards: u32) -> PathBuf {
    let out = dir.join(format!("{preset}.gguf"));
    strix()
        .args([
            "synth",
            "--preset",
            preset,
            "--sparse",
            "--shards",
            &shards.to_string(),
            "--out",
        ])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("sparse"));
    if shards > 1 {
        dir.join(format!("{preset}-00002-of-{shards:05}.gguf"))
    } else {
        out
    }
}

#[test]
fn inspect_json_has_the_documented_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shard = synth_sparse(dir.path(), "qwen3-235b-a22b", 2);
    let v = json(&["inspect", "--json", shard.to_str().expect("utf-8")]);
    for key in [
        "arch",
        "n_block",
        "n_layer_offloadable",
        "shards",
        "tensor_bytes",
        "file_bytes",
        "params",
        "n_expert",
        "n_expert_used",
        "blocks",
        "tensor_types",
    ] {
        assert!(v.get(key).is_some(), "missing key {key}");
    }
    assert_eq!(v["arch"], "qwen3moe");
    assert_eq!(v["n_block"], 94);
    assert_eq!(v["n_layer_offloadable"], 95);
    assert_eq!(v["shards"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["n_expert"], 128);
    assert_eq!(v["n_expert_used"], 8);
    let block = &v["blocks"][0];
    assert!(block["index"].is_u64() && block["bytes"].is_u64() && block["expert_bytes"].is_u64());
}

#[test]
fn truncated_model_fails_with_a_message_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = synth_sparse(dir.path(), "micro-dense", 1);
    let bytes = std::fs::read(&good).expect("read");
    let bad = dir.path().join("cut.gguf");
    std::fs::write(&bad, &bytes[..bytes.len() / 3]).expect("write");
    strix()
        .args(["inspect"])
        .arg(&bad)
        .assert()
        .failure()
        .code(1)
        .stderr(
            predicate::str::contains("cut.gguf").and(predicate::str::contains("download it again")),
        );
}

#[test]
fn missing_model_and_missing_shard_are_explained() {
    let out = strix()
        .args(["inspect", "/nonexistent/model.gguf"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("/nonexistent/model.gguf"))
        .get_output()
        .stderr
        .clone();
    // The cause is said once, not once by the message and again by its source.
    let stderr = String::from_utf8_lossy(&out);
    assert_eq!(
        stderr.to_lowercase().matches("no such file").count(),
        1,
        "{stderr}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let second = synth_sparse(dir.path(), "qwen3-235b-a22b", 2);
    std::fs::remove_file(dir.path().join("qwen3-235b-a22b-00001-of-00002.gguf")).expect("remove");
    strix()
        .arg("inspect")
        .arg(&second)
        .assert()
        .failure()
        .stderr(predicate::str::contains("shard 1 of 2").and(predicate::str::contains("missing")));
}

#[test]
fn plan_json_and_emit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = synth_sparse(dir.path(), "qwen3-32b", 1);
    let m = model.to_str().expect("utf-8");
    let v = json(&["plan", "-m", m, "--hw", "strix-halo-128", "--json"]);
    for key in [
        "backend",
        "n_gpu_layers",
        "n_layer_offloadable",
        "n_cpu_moe",
        "n_threads",
        "n_threads_batch",
        "n_batch",
        "n_ubatch",
        "n_ctx",
        "flash_attn",
        "type_k",
        "type_v",
        "use_mmap",
        "memory",
        "predicted",
        "binding_constraint",
        "warnings",
        "advice",
    ] {
        assert!(v.get(key).is_some(), "missing key {key}");
    }
    for key in [
        "gpu_bytes",
        "host_bytes",
        "gpu_budget_bytes",
        "host_budget_bytes",
        "breakdown",
    ] {
        assert!(v["memory"].get(key).is_some(), "missing memory.{key}");
    }
    assert!(v["predicted"]["tg_tok_s"].as_f64().is_some_and(|t| t > 0.0));
    assert_eq!(v["n_gpu_layers"], 65);
    strix()
        .args([
            "plan",
            "-m",
            m,
            "--hw",
            "strix-halo-128",
            "--emit",
            "llama-server",
        ])
        .assert()
        .success()
        .stdout(
            predicate::str::starts_with("llama-server -m ")
                .and(predicate::str::contains("-ngl 65")),
        );
}

/// The GPU memory a plan keeps free: the CUDA runtime's measured share by default (on
/// the H200 profile of `measurements/results`), and the user's figure with `--gpu-reserve`,
/// which moves the placement and the binding constraint with it.
#[test]
fn plan_keeps_gpu_memory_free_for_the_runtime_and_gpu_reserve_sets_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = synth_sparse(dir.path(), "qwen3-30b-a3b", 1);
    let m = model.to_str().expect("utf-8");
    let results = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("measurements/results/2026-11-26-nvidia-h200-qwen3-30b.json"),
    )
    .expect("the committed H200 run");
    let doc: serde_json::Value = serde_json::from_str(&results).expect("JSON");
    let profile = dir.path().join("h200.json");
    std::fs::write(&profile, doc["hardware_profile"].to_string()).expect("write profile");
    let p = profile.to_str().expect("utf-8");
    let base = [
        "plan",
        "-m",
        m,
        "--hw-profile",
        p,
        "--gpu-mem",
        "12GiB",
        "--ctx",
        "576",
    ];
    let gib = (1u64 << 30) as f64;

    let default = json(&[&base[..], &["--json"]].concat());
    assert_eq!(default["backend"], "cuda");
    let reserve = default["memory"]["gpu_reserve_bytes"]
        .as_u64()
        .expect("gpu_reserve_bytes");
    assert!(
        (0.69..0.75).contains(&(reserve as f64 / gib)),
        "CUDA reserve {reserve}"
    );
    let kept = default["binding_constraint"].as_str().expect("a string");
    let expected = format!("less {:.2} GiB headroom", reserve as f64 / gib);
    assert!(kept.contains(&expected), "{kept}");

    let two = json(&[&base[..], &["--gpu-reserve", "2GiB", "--json"]].concat());
    assert_eq!(two["memory"]["gpu_reserve_bytes"], 2u64 << 30);
    assert!(
        two["n_cpu_moe"].as_u64() > default["n_cpu_moe"].as_u64(),
        "2 GiB kept free must leave more experts on the CPU: {} vs {}",
        two["n_cpu_moe"],
        default["n_cpu_moe"]
    );
    let gpu = two["memory"]["gpu_bytes"].as_u64().expect("gpu_bytes");
    assert!(gpu + (2u64 << 30) <= 12u64 << 30, "{gpu} bytes planned");
    assert!(two["binding_constraint"]
        .as_str()
        .is_some_and(|b| b.contains("less 2 GiB headroom")));

    strix()
        .args(base)
        .args(["--gpu-reserve", "lots"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("lots"));
}

#[test]
fn impossible_pins_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = synth_sparse(dir.path(), "qwen3-8b", 1);
    let m = model.to_str().expect("utf-8");
    strix()
        .args(["plan", "-m", m, "--hw", "strix-halo-128", "--ngl", "80"])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("--ngl 80").and(predicate::str::contains("37 offloadable")),
        );
    strix()
        .args(["plan", "-m", m, "--hw", "strix-halo-128", "--threads", "64"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("32 hardware threads"));
    // llama.cpp refuses a context of more than LLAMA_MAX_SEQ (256) sequences.
    for parallel in ["0", "257"] {
        strix()
            .args([
                "plan",
                "-m",
                m,
                "--hw",
                "strix-halo-128",
                "--parallel",
                parallel,
            ])
            .assert()
            .failure()
            .stderr(
                predicate::str::contains(format!("--parallel {parallel} is impossible"))
                    .and(predicate::str::contains("1 to 256 sequences")),
            );
    }
    strix()
        .args([
            "plan",
            "-m",
            m,
            "--hw",
            "strix-halo-128-win",
            "--backend",
            "vulkan",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("vulkan backend cannot be used"));
    strix()
        .args(["plan", "-m", m, "--hw", "no-such-machine"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("strix-halo-128"));
}

#[test]
fn an_alias_not_on_this_machine_shows_where_it_looked_and_the_what_if_plan() {
    let home = tempfile::tempdir().expect("tempdir");
    strix()
        .env("HOME", home.path())
        .env_remove("STRIX_MODELS")
        .args(["--model", "235b", "--hw", "strix-halo-128-win", "--auto"])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("not on this machine")
                .and(predicate::str::contains("Hugging Face")),
        )
        .stdout(predicate::str::contains("/95 layers on the GPU"));
    // --dry-run shows the same plan and succeeds.
    strix()
        .env("HOME", home.path())
        .env_remove("STRIX_MODELS")
        .args(["--model", "235b", "--hw", "strix-halo-128-win", "--dry-run"])
        .assert()
        .success();
}

#[test]
fn plan_takes_an_alias_and_plans_a_missing_model_from_its_shape() {
    let home = tempfile::tempdir().expect("tempdir");
    let plan = |extra: &[&str]| {
        let mut cmd = strix();
        cmd.env("HOME", home.path())
            .env_remove("STRIX_MODELS")
            .args(["plan", "--model", "30b", "--hw", "strix-halo-128"])
            .args(extra);
        cmd
    };
    let out = plan(&["--json"])
        .assert()
        .success()
        .stderr(predicate::str::contains("not on this machine"))
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
    // Qwen3-30B-A3B's 48 blocks plus the output layer.
    assert_eq!(v["n_layer_offloadable"], 49, "{v}");
    // A command line needs the file.
    plan(&["--emit", "llama-server"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("need the file"));
    // A synthetic model found in --models-dir is planned from its file, by name.
    let dir = tempfile::tempdir().expect("tempdir");
    synth_sparse(dir.path(), "qwen3-30b-a3b", 1);
    strix()
        .env("HOME", home.path())
        .env_remove("STRIX_MODELS")
        .args([
            "plan",
            "--model",
            "30b",
            "--hw",
            "strix-halo-128",
            "--emit",
            "llama-bench",
            "--models-dir",
        ])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("qwen3-30b-a3b.gguf"));
}

#[test]
fn no_model_is_a_clear_error() {
    strix()
        .assert()
        .failure()
        .stderr(predicate::str::contains("no model given"));
}

/// The main job end to end: discovery finds the real Gemma by its metadata, the plan
/// is loaded, text is generated, statistics come back as JSON.
#[cfg(feature = "runtime")]
#[test]
fn gemma_generates_through_the_command_line() {
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    assert!(
        models.join("gemma-3-270m-q4_k_m.gguf").exists(),
        "run scripts/fetch-gemma first"
    );
    let home = tempfile::tempdir().expect("tempdir");
    let out = strix()
        .env("HOME", home.path())
        .args([
            "--model",
            "gemma3-270m",
            "--auto",
            "--greedy",
            "-n",
            "12",
            "--json",
            "-p",
            "The capital of France is",
        ])
        .arg("--models-dir")
        .arg(&models)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
    assert_eq!(v["plan"]["backend"], "cpu");
    let stats = &v["stats"];
    assert!(
        stats["generated_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0 && n <= 12),
        "{stats}"
    );
    assert!(stats["tg_tok_s"].as_f64().is_some_and(|t| t > 0.0));
    assert!(stats["text"].as_str().is_some_and(|t| !t.is_empty()));
}

/// Each command reads a model's header once: discovery reads it, and planning, the dry
/// run, the load and the step-down all use that one reading (the reader logs each read
/// at debug level).
#[test]
fn a_models_header_is_read_once_per_command() {
    let gemma =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gemma-3-270m-q4_k_m.gguf");
    let g = gemma.to_str().expect("utf-8");
    let models = gemma.parent().expect("dir").to_str().expect("utf-8");
    let mut commands = vec![
        vec!["--model", g, "--dry-run"],
        vec![
            "--model",
            "gemma3-270m",
            "--models-dir",
            models,
            "--dry-run",
        ],
        vec!["plan", "--model", g],
        vec!["plan", "--model", "gemma3-270m", "--models-dir", models],
    ];
    if cfg!(feature = "runtime") {
        commands.push(vec!["--model", g, "-p", "Hi", "-n", "1", "--ctx", "256"]);
        commands.push(vec![
            "bench", "--model", g, "--pp", "8", "--tg", "2", "-r", "1",
        ]);
    }
    let config = tempfile::tempdir().expect("tempdir");
    for args in commands {
        let out = strix()
            .env("RUST_LOG", "strix_run::gguf=debug")
            .env("XDG_CONFIG_HOME", config.path())
            .args(&args)
            .assert()
            .success()
            .get_output()
            .stderr
            .clone();
        let log = String::from_utf8_lossy(&out);
        let reads = log
            .lines()
            .filter(|l| l.contains("read GGUF header") && l.contains("gemma-3-270m-q4_k_m.gguf"))
            .count();
        assert_eq!(reads, 1, "{args:?}: {log}");
    }
}
