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
