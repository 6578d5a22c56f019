//! strix-run against llama.cpp's own `llama-simple` binary, built from the pinned
//! llama.cpp by `scripts/build-llama-tools` (the README's test command builds it).
//!
//! `llama-simple` loads the model with llama.cpp's defaults, decodes the prompt in one
//! batch and samples greedily, printing the prompt's pieces and then each generated
//! piece to stdout. strix-run loads the same file through `plan_and_load` with its own
//! plan (2 threads, context 1024) and generates greedily through `Session`. The bytes
//! printed must be equal: same tokens, same order. The two runs differ in thread count
//! (llama.cpp's default 4 against our 2), context size and batch size; ggml's CPU
//! kernels give each output row to one thread, so no tolerance is needed.

use crate::support;

use support::{gemma_session, PROMPTS};

use std::process::Command;

/// Tokens generated per prompt.
const N_PREDICT: usize = 32;

#[test]
fn greedy_output_equals_llama_simple() {
    let simple = support::llama_tool("llama-simple");
    let mut session = gemma_session();
    for prompt in PROMPTS {
        let output = Command::new(&simple)
            .arg("-m")
            .arg(support::gemma_path())
            .arg("-n")
            .arg(N_PREDICT.to_string())
            .arg(prompt)
            .output()
            .expect("llama-simple runs");
        assert!(
            output.status.success(),
            "llama-simple failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let theirs = output.stdout;

        let prompt_tokens = session.tokenize(prompt, true, true).expect("tokenize");
        let generated = session
            .generate_tokens_greedy(&prompt_tokens, N_PREDICT)
            .expect("generate");
        let mut ours = Vec::new();
        for &t in prompt_tokens.iter().chain(&generated) {
            ours.extend(session.token_bytes(t, true));
        }
        ours.push(b'\n');
        eprintln!(
            "{prompt:?}\n  llama-simple: {:?}\n  strix-run:    {:?}",
            String::from_utf8_lossy(&theirs),
            String::from_utf8_lossy(&ours)
        );
        assert!(generated.len() >= 8, "too few tokens: {generated:?}");
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs),
            "greedy output for {prompt:?}"
        );
    }
}

/// `strix-run plan --emit llama-bench` prints a command line the real llama-bench
/// accepts, and llama-bench reports running exactly the plan's values.
#[test]
fn emitted_llama_bench_command_runs_the_plan() {
    let bench = support::llama_tool("llama-bench");
    let plan_cmd = |extra: &[&str]| {
        let out = assert_cmd::Command::cargo_bin("strix-run")
            .expect("binary")
            .args(["plan", "--no-calibration", "--model"])
            .arg(support::gemma_path())
            .args([
                "--threads",
                "1",
                "--ubatch",
                "256",
                "--cache-type-k",
                "q8_0",
            ])
            .args(extra)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    let plan: serde_json::Value = serde_json::from_str(&plan_cmd(&["--json"])).expect("JSON");
    let line = plan_cmd(&["--emit", "llama-bench"]);
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"llama-bench"), "{line}");
    let out = Command::new(&bench)
        .args(&words[1..])
        .args(["-p", "16", "-n", "4", "-r", "1", "-o", "json"])
        .output()
        .expect("llama-bench runs");
    assert!(
        out.status.success(),
        "llama-bench refused `{line}`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(records.len(), 2, "a prompt and a generation test");
    for r in &records {
        assert_eq!(r["n_threads"], plan["n_threads"], "{r}");
        assert_eq!(r["n_batch"], plan["n_batch"], "{r}");
        assert_eq!(r["n_ubatch"], plan["n_ubatch"], "{r}");
        assert_eq!(r["n_gpu_layers"], plan["n_gpu_layers"], "{r}");
        assert_eq!(r["n_cpu_moe"], plan["n_cpu_moe"], "{r}");
        assert_eq!(r["type_k"], plan["type_k"], "{r}");
        assert_eq!(r["type_v"], plan["type_v"], "{r}");
        assert_eq!(
            r["flash_attn"],
            i64::from(plan["flash_attn"] == true),
            "{r}"
        );
        let mode = if plan["use_mmap"] == true {
            "mmap"
        } else {
            "none"
        };
        assert_eq!(r["load_mode"], mode, "{r}");
    }
    assert_eq!(plan["n_threads"], 1);
    assert_eq!(plan["n_ubatch"], 256);
    assert_eq!(plan["type_k"], "q8_0");
}
