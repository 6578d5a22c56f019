//! `strix-run synth --preset NAME --quant Q --out PATH [--sparse] [--shards N]`.

use super::format::{bytes, params, print_json};
use super::output::outln;
use std::path::PathBuf;
use strix_run::files::Existing;
use strix_run::model::synth::{synth, SynthRequest};

/// Arguments of `synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Model shape to reproduce (e.g. qwen3-235b-a22b, qwen3.5-397b-a17b, tiny-moe).
    #[arg(long)]
    pub preset: String,
    /// Quantization mix as llama.cpp names it (Q4_K_M, Q2_K, IQ2_XXS, Q8_0, F16, ...);
    /// default: the preset's own.
    #[arg(long)]
    pub quant: Option<String>,
    /// Output path (`name.gguf`; shards become `name-00001-of-0000N.gguf`).
    #[arg(long)]
    pub out: PathBuf,
    /// Write only the header and leave the data region as a hole (a 115 GB shape costs a few MB).
    #[arg(long)]
    pub sparse: bool,
    /// Split into this many shards (default: as the model is published, e.g. 4 for the 397B).
    #[arg(long, default_value_t = 0)]
    pub shards: u32,
    /// Seed for the random weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Replace files already at the output path(s).
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `synth`.
pub fn run(args: &SynthArgs) -> anyhow::Result<()> {
    let summary = synth(&SynthRequest {
        preset: args.preset.clone(),
        quant: args.quant.clone(),
        out: args.out.clone(),
        sparse: args.sparse,
        shards: args.shards,
        seed: args.seed,
        existing: if args.force {
            Existing::Replace
        } else {
            Existing::Refuse {
                hint: "pass --force to replace it",
            }
        },
    })?;
    if args.json {
        return print_json(&serde_json::json!({
            "files": summary.files,
            "params": summary.params,
            "tensor_bytes": summary.tensor_bytes,
            "file_bytes": summary.file_bytes,
            "header_bytes": summary.header_bytes,
        }));
    }
    for f in &summary.files {
        outln!("wrote {}", f.display());
    }
    outln!(
        "{} parameters, {} of tensors, {} in {} file{}{}",
        params(summary.params),
        bytes(summary.tensor_bytes),
        bytes(summary.file_bytes),
        summary.files.len(),
        if summary.files.len() == 1 { "" } else { "s" },
        if args.sparse {
            " (sparse: data region not allocated on disk)"
        } else {
            ""
        }
    );
    Ok(())
}
