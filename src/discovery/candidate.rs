//! Opening one candidate file: read its header, skip what is not a runnable model
//! (multimodal projectors, vocabulary-only files), summarize the rest.

use crate::gguf::{read_file, GgufError, GgufModel, Shard, SplitName, KEY_SPLIT_COUNT};
use crate::model::ModelMeta;
use std::path::Path;

/// What a `.gguf` file turned out to be.
#[derive(Debug)]
pub(crate) enum Opened {
    /// A model.
    Model(Box<ModelMeta>),
    /// A GGUF that is not a model to run, and why.
    NotAModel(String),
}

/// Reads the header of `path` (and of its other shards when it is split) and
/// summarizes it. Reads headers only, never tensor data.
///
/// A multimodal projector is recognized as llama.cpp's `clip` loader recognizes it:
/// `general.architecture` = `clip` (`tools/mtmd/clip-impl.h`, `KEY_ARCH` /
/// `clip.cpp`), and newer converters also write `general.type` = `mmproj`
/// (gguf-py `constants.py`, `GGUFType.MMPROJ`).
pub(crate) fn open(path: &Path) -> Result<Opened, GgufError> {
    let (header, stats) = read_file(path)?;
    let arch = header.get_str("general.architecture");
    let kind = header.get_str("general.type");
    if kind == Some("mmproj") || arch == Some("clip") {
        return Ok(Opened::NotAModel(
            "a multimodal projector (mmproj), not a language model".into(),
        ));
    }
    if kind == Some("adapter") {
        return Ok(Opened::NotAModel(
            "a LoRA adapter (general.type = adapter), not a model".into(),
        ));
    }
    if header.tensors.is_empty() && header.get(KEY_SPLIT_COUNT).is_none() {
        return Ok(Opened::NotAModel(
            "has no tensors (a vocabulary-only file)".into(),
        ));
    }
    let split = header.get_u64(KEY_SPLIT_COUNT).unwrap_or(1) > 1;
    let model = if split {
        GgufModel::open(path)?
    } else {
        GgufModel {
            shards: vec![Shard {
                path: path.to_path_buf(),
                header,
                stats,
            }],
        }
    };
    Ok(Opened::Model(Box::new(ModelMeta::from_gguf(&model, path)?)))
}

/// Whether `path` is a later shard (`-0000N-of-…`, N > 1) whose first shard lies
/// beside it: the first shard stands for the set. When the first shard is missing the
/// file is kept, so that opening it reports the missing shard.
pub(crate) fn is_covered_shard(path: &Path) -> bool {
    let Some(name) = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(SplitName::parse)
    else {
        return false;
    };
    name.no > 1
        && path
            .parent()
            .is_some_and(|dir| dir.join(name.file_name(1)).exists())
}
