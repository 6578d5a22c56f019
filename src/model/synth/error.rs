//! Everything that can go wrong making a synthetic model, in one error type.

use crate::gguf::{GgmlType, GgufError};
use crate::model::presets::UnknownPreset;
use std::path::PathBuf;

/// What can go wrong making a synthetic model.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// No preset has this name ([`UnknownPreset`] of [`find_preset`]).
    ///
    /// [`find_preset`]: crate::model::presets::find_preset
    #[error("unknown preset '{name}'; known presets: {known}")]
    UnknownPreset {
        /// the name asked for
        name: String,
        /// the names that exist
        known: String,
    },
    /// The quantization name is not one this module can imitate.
    #[error("unknown quantization '{quant}'; known: {known}")]
    UnknownQuant {
        /// the name asked for
        quant: String,
        /// the names that exist
        known: String,
    },
    /// The shard count cannot be honoured.
    #[error("cannot split {tensors} tensors into {shards} shards (1 to {tensors} allowed, 0 for the preset's default)")]
    BadShards {
        /// shards asked for
        shards: u32,
        /// tensors in the model
        tensors: usize,
    },
    /// The output path cannot be used.
    #[error("{path}: {problem}")]
    BadOutput {
        /// the path given
        path: PathBuf,
        /// what is wrong with it
        problem: String,
    },
    /// Real (non-sparse) data was asked for a tensor type whose blocks this module
    /// cannot fill with valid values.
    #[error("cannot write random {ggml_type} data for tensor '{tensor}'; use --sparse or another quantization")]
    UnsupportedFill {
        /// the tensor
        tensor: String,
        /// its type
        ggml_type: GgmlType,
    },
    /// A preset is inconsistent (a bug in the preset table).
    #[error("preset '{preset}' is inconsistent: {problem}")]
    InvalidPreset {
        /// the preset
        preset: String,
        /// what is wrong
        problem: String,
    },
    /// Writing or laying out the GGUF failed.
    #[error(transparent)]
    Gguf(#[from] GgufError),
}

/// A preset name that [`find_preset`](crate::model::presets::find_preset) does not know
/// becomes [`SynthError::UnknownPreset`], with the same fields and the same message.
impl From<UnknownPreset> for SynthError {
    fn from(e: UnknownPreset) -> Self {
        SynthError::UnknownPreset {
            name: e.name,
            known: e.known,
        }
    }
}
