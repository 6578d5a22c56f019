//! Shared test support.

#![allow(dead_code)]

#[cfg(feature = "runtime")]
pub mod llama_gguf;
#[cfg(feature = "runtime")]
pub mod server;

use std::path::{Path, PathBuf};

/// The real Gemma 3 270M Q4_K_M from PyPI, put in `models/` by `scripts/fetch-gemma`
/// (the README's test command runs it); `STRIX_GEMMA` overrides the path.
pub fn gemma_path() -> PathBuf {
    let path = std::env::var_os("STRIX_GEMMA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gemma-3-270m-q4_k_m.gguf")
        });
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-gemma (the README's test command does)",
        path.display()
    );
    path
}

/// Prints planned against allocated memory per side (for the test log).
#[cfg(feature = "runtime")]
pub fn print_memory(label: &str, loaded: &strix_run::runtime::load::Loaded) {
    for c in loaded.memory_comparison() {
        eprintln!(
            "{label} {}: weights {} planned / {} allocated ({} repacked, {} counted once); \
             context {} / {}; compute {} / {}; output {} planned",
            c.side,
            c.planned_weights,
            c.actual_model,
            c.actual_repacked,
            c.actual_weights,
            c.planned_context,
            c.actual_context,
            c.planned_compute,
            c.actual_compute,
            c.planned_output
        );
    }
}

/// A binary of llama.cpp's own tools (`llama-simple`, `llama-bench`), built from the
/// pinned llama.cpp by `scripts/build-llama-tools` into `target/llama-tools/bin`;
/// `STRIX_LLAMA_TOOLS` names another directory.
pub fn llama_tool(name: &str) -> PathBuf {
    let dir = std::env::var_os("STRIX_LLAMA_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/llama-tools/bin"));
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-llama-tools (the README's test command does)",
        path.display()
    );
    path
}

/// This machine as detected, with the devices llama.cpp itself sees merged in (what
/// the CLI plans with when no hardware flag is given).
#[cfg(feature = "runtime")]
pub fn detected_hardware() -> strix_run::hardware::Hardware {
    use strix_run::hardware::{resolve, DetectConfig, HardwareOverrides};
    let mut hw =
        resolve(&HardwareOverrides::default(), &DetectConfig::default()).expect("detection");
    let devices = strix_run::runtime::devices::llama_devices();
    strix_run::runtime::devices::merge_into(&mut hw, &devices);
    hw
}

/// Prompts for the greedy-output comparisons: plain text, a trailing newline, and
/// Gemma's chat turn markup.
pub const PROMPTS: [&str; 3] = [
    "The capital of France is",
    "Write a haiku about memory bandwidth:\n",
    "<start_of_turn>user\nList three prime numbers.<end_of_turn>\n<start_of_turn>model\n",
];

/// Gemma on the detected machine with a small context (fast to create) and 2 threads.
#[cfg(feature = "runtime")]
pub fn gemma_session() -> strix_run::runtime::session::Session {
    use strix_run::planner::{Pinned, Request};
    use strix_run::runtime::load::{plan_and_load, LoadOptions};
    let request = Request {
        n_ctx: Some(1024),
        pinned: Pinned {
            threads: Some(2),
            ..Pinned::default()
        },
        ..Request::default()
    };
    let mut opts = LoadOptions::new(request, detected_hardware());
    opts.progress = false;
    let loaded = plan_and_load(&gemma_path(), &opts).expect("Gemma loads");
    strix_run::runtime::session::Session::new(loaded)
}
