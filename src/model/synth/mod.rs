//! Synthetic GGUF models with the real shapes of known models ([`super::presets`]), so
//! that planning and benchmarking can be tested without downloading 100 GB.
//!
//! A synthetic file has what a real one has: the metadata keys convert_hf_to_gguf.py
//! writes for the architecture, a valid byte-level BPE tokenizer of the model's vocabulary
//! size, every tensor llama.cpp's loader asks for (`src/models/<arch>.cpp`,
//! `load_arch_tensors`) with its real shape, and per-tensor types chosen the way
//! `llama-quantize` chooses them (`src/llama-quant.cpp`, `llama_tensor_get_type_impl`,
//! ported in `type_mix.rs`). Its data is either a hole ([`SynthRequest::sparse`]: the
//! file has its full size but costs only its header on disk) or seeded random weights that
//! decode to finite numbers, so llama.cpp can run it.
//!
//! # Sizes against the seed article
//!
//! Bytes of the sparse files this module writes with each seed preset's default quant,
//! against the sizes the seed article ("Datacenter on Your Desk") and its repository
//! give. GB = 10⁹ bytes, GiB = 2³⁰ bytes. `tests/synth.rs` checks these within the stated
//! tolerance.
//!
//! | preset | quant | ours | seed says | difference | why |
//! |---|---|---|---|---|---|
//! | `qwen3-8b` | Q4_K_M | 5.03 GB (4.68 GiB) | "5.5 GB on GPU" | −8.6 % | the seed's number is what the runtime reported on the GPU (weights plus KV cache and compute buffers, or GiB-vs-GB rounding); llama-quantize's Q4_K_M mix of Qwen3-8B's 8.19 B parameters is 5.03 GB |
//! | `qwen3-32b` | Q4_K_M | 19.76 GB (18.40 GiB) | "20 GB" | −1.2 % | rounding. Cross-check against a published file: at Q8_0 ours is 34.82 GB, as bartowski/Qwen_Qwen3-32B-GGUF lists `Qwen3-32B-Q8_0.gguf` |
//! | `qwen3-235b-a22b` | Q2_K | 85.69 GB (79.80 GiB), 2 shards | "80 GB, 2 shards" (56.5 GB GPU + 24.2 GB CPU) | −0.25 % against 80 GiB | the seed's "GB" are GiB, as the runtime prints them; 80 GB decimal would be 6.6 % below llama-quantize's Q2_K mix |
//! | `qwen3.5-397b-a17b` | UD-IQ2_XXS | 115.29 GB (107.37 GiB), 4 shards | "115 GB across four shards", 107 GiB | +0.3 % | our imitation of Unsloth's dynamic mix (see [`UD_IQ2_XXS`]); plain llama.cpp IQ2_XXS would give 104.5 GB |
//!
//! `tests/synth.rs` also pins the exact tensor bytes. File sizes include the tokenizer in
//! the header (4.35 MB for Qwen3's 151936 tokens and 151387 merges, 7.26 MB for
//! Qwen3.5's 248320).
//!
//! # Modules
//!
//! Each part has one job; the ones further down use the ones above them, never the
//! other way round:
//! - `error.rs`: [`SynthError`];
//! - `quant.rs`: quantization names and the llama.cpp ftype each stands for;
//! - `type_mix.rs`: the type llama-quantize (or [`UD_IQ2_XXS`]) gives each tensor;
//! - `tensors.rs`: the tensors of each architecture, with shapes and types ([`tensor_plan`]);
//! - `vocab.rs`: the byte-level BPE vocabulary;
//! - `metadata.rs`: the GGUF metadata keys;
//! - `shards.rs`: which tensors go into which shard, and the shard file names;
//! - `fill.rs`: random but valid weights;
//! - this file: the request, [`build_writers`] and [`synth`], which writes the files.

mod error;
mod fill;
mod metadata;
mod quant;
mod shards;
mod tensors;
mod type_mix;
mod vocab;

pub use error::SynthError;
pub use quant::{quant_names, UD_IQ2_XXS};
pub use tensors::{tensor_plan, PlannedTensor};

use super::presets::{find_preset, Preset};
use crate::files::{check_target, Existing, PendingFile};
use crate::gguf::{
    GgufError, GgufValue, GgufWriter, TensorData, TensorInfo, KEY_SPLIT_COUNT, KEY_SPLIT_NO,
    KEY_SPLIT_TENSORS_COUNT,
};
use fill::{can_fill, fill_chunk};
use metadata::metadata;
use quant::parse_quant;
use shards::{shard_paths, split_plan};
use std::path::PathBuf;

/// What to synthesize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthRequest {
    /// Preset name or alias ([`super::presets::presets`]).
    pub preset: String,
    /// llama.cpp ftype name (`Q4_K_M`, `Q2_K`, `IQ2_XXS`, `Q8_0`, `F16`, `Q4_0`…) or
    /// [`UD_IQ2_XXS`]; `None`: the preset's default (the seed's quant).
    pub quant: Option<String>,
    /// Where to write. With several shards, `dir/name.gguf` becomes
    /// `dir/name-00001-of-0000N.gguf` … (llama.cpp's `llama_split_path` naming).
    pub out: PathBuf,
    /// Leave the tensor data as a hole: the file has its full size, only the header is on
    /// disk. Otherwise the data is seeded random weights (all of them written: a seed
    /// preset then needs its full size on disk).
    pub sparse: bool,
    /// Number of files; 0: the preset's default (the shard count of the seed's download).
    pub shards: u32,
    /// Seed of the random weights (ignored when sparse).
    pub seed: u64,
    /// What to do with files already at the output paths. Either way nothing is
    /// half-written: every file is written beside its target and renamed into place only
    /// once all of them were written.
    pub existing: Existing,
}

impl SynthRequest {
    /// A request for `preset` at its default quant, one file or the seed's shard count,
    /// real random weights, seed 0.
    pub fn new(preset: impl Into<String>, out: impl Into<PathBuf>) -> Self {
        SynthRequest {
            preset: preset.into(),
            quant: None,
            out: out.into(),
            sparse: false,
            shards: 0,
            seed: 0,
            existing: Existing::Replace,
        }
    }
}

/// What [`synth`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSummary {
    /// The preset's name.
    pub preset: &'static str,
    /// The quantization used.
    pub quant: String,
    /// The files, first shard first.
    pub files: Vec<PathBuf>,
    /// Number of tensors.
    pub tensors: usize,
    /// Bytes of tensor data (without alignment padding).
    pub tensor_bytes: u64,
    /// Bytes of all files together.
    pub file_bytes: u64,
    /// Bytes of all headers together (metadata and tensor infos, padding included).
    pub header_bytes: u64,
    /// Parameters (elements of all tensors).
    pub params: u64,
}

/// The GGUF writers of `preset` at `quant` in `shards` files (0: the preset's default):
/// the first carries all metadata, every one carries `split.no`, `split.count` (u16) and
/// `split.tensors.count` (i32) when there is more than one, as llama.cpp's gguf-split
/// writes them and `llama_model_loader` reads them.
pub fn build_writers(
    preset: &Preset,
    quant: &str,
    shards: u32,
) -> Result<Vec<GgufWriter>, SynthError> {
    let q = parse_quant(quant)?;
    let plan = tensor_plan(preset, quant)?;
    let n_tensors = plan.len();
    let shards = if shards == 0 {
        preset.default_shards.max(1)
    } else {
        shards
    };
    let groups = split_plan(plan, shards)?;
    let count = groups.len();
    let meta = metadata(preset, &q)?;
    let mut writers = Vec::with_capacity(count);
    for (i, group) in groups.into_iter().enumerate() {
        let mut w = GgufWriter::new();
        if i == 0 {
            for (k, v) in &meta {
                w.set(k.clone(), v.clone());
            }
        }
        if count > 1 {
            w.set(KEY_SPLIT_NO, GgufValue::U16(i as u16));
            w.set(KEY_SPLIT_COUNT, GgufValue::U16(count as u16));
            w.set(
                KEY_SPLIT_TENSORS_COUNT,
                GgufValue::I32(i32::try_from(n_tensors).unwrap_or(i32::MAX)),
            );
        }
        for t in &group {
            w.add_tensor(&t.name, t.ggml_type, &t.shape)?;
        }
        writers.push(w);
    }
    Ok(writers)
}

/// Writes the synthetic model the request describes.
pub fn synth(req: &SynthRequest) -> Result<SynthSummary, SynthError> {
    let preset = find_preset(&req.preset)?;
    let quant = parse_quant(req.quant.as_deref().unwrap_or(preset.default_quant))?;
    let writers = build_writers(preset, quant.name, req.shards)?;
    let paths = shard_paths(&req.out, writers.len() as u32)?;
    if let Some(dir) = req.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| SynthError::BadOutput {
            path: dir.to_path_buf(),
            problem: format!("cannot create the directory: {e}"),
        })?;
    }
    if !req.sparse {
        for w in &writers {
            for t in w.tensors() {
                if !can_fill(t.ggml_type) {
                    return Err(SynthError::UnsupportedFill {
                        tensor: t.name.clone(),
                        ggml_type: t.ggml_type,
                    });
                }
            }
        }
    }
    // Every target is checked before the first byte is written.
    for path in &paths {
        check_target(path, req.existing).map_err(GgufError::from)?;
    }
    let mut summary = SynthSummary {
        preset: preset.name,
        quant: quant.name.to_string(),
        files: paths.clone(),
        tensors: 0,
        tensor_bytes: 0,
        file_bytes: 0,
        header_bytes: 0,
        params: 0,
    };
    let mut pending = Vec::with_capacity(paths.len());
    for (w, path) in writers.iter().zip(&paths) {
        let mut file = PendingFile::create(path, req.existing).map_err(GgufError::from)?;
        let written = if req.sparse {
            w.write_to(file.file(), path, TensorData::Sparse)?
        } else {
            let seed = req.seed;
            let mut fill = |t: &TensorInfo, offset: u64, chunk: &mut [u8]| {
                fill_chunk(seed, t, offset, chunk);
            };
            w.write_to(file.file(), path, TensorData::Fill(&mut fill))?
        };
        pending.push(file);
        summary.header_bytes += written.header_bytes;
        summary.file_bytes += written.file_bytes;
        summary.tensors += w.tensors().len();
        summary.tensor_bytes += w.tensors().iter().map(|t| t.n_bytes).sum::<u64>();
        summary.params += w.tensors().iter().map(TensorInfo::n_elements).sum::<u64>();
    }
    // All written: move them into place (a failure before this point removed them all).
    for file in pending {
        file.commit().map_err(GgufError::from)?;
    }
    Ok(summary)
}
