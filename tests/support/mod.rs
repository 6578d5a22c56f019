//! Shared test support.

#![allow(dead_code)]

pub mod llama_gguf;

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
