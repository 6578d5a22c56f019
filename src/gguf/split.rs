//! Split models: `name-00001-of-00004.gguf` … `name-00004-of-00004.gguf`, each shard
//! carrying `split.no` (0-based), `split.count` and, in every shard,
//! `split.tensors.count` (llama.cpp's `llama_split_path` / `LLM_KV_SPLIT_*` in
//! `src/llama-arch.cpp`, written by its `gguf-split` tool).

use super::error::GgufError;
use super::reader::{read_file, GgufHeader, ReadStats, TensorInfo};
use super::value::GgufValue;
use std::path::{Path, PathBuf};

/// `LLM_KV_SPLIT_NO`
pub const KEY_SPLIT_NO: &str = "split.no";
/// `LLM_KV_SPLIT_COUNT`
pub const KEY_SPLIT_COUNT: &str = "split.count";
/// `LLM_KV_SPLIT_TENSORS_COUNT`
pub const KEY_SPLIT_TENSORS_COUNT: &str = "split.tensors.count";

/// One file of a model.
#[derive(Debug, Clone)]
pub struct Shard {
    /// Where it is.
    pub path: PathBuf,
    /// Its header.
    pub header: GgufHeader,
    /// How much of it was read.
    pub stats: ReadStats,
}

/// A model's GGUF files: one, or all shards of a split model in order.
#[derive(Debug, Clone)]
pub struct GgufModel {
    /// The files, first shard first.
    pub shards: Vec<Shard>,
}

/// The parts of a shard file name: `prefix-NNNNN-of-MMMMM.gguf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitName {
    /// Everything before `-NNNNN-of-MMMMM.gguf`.
    pub prefix: String,
    /// 1-based shard number.
    pub no: u32,
    /// Number of shards.
    pub count: u32,
}

impl SplitName {
    /// Parses a file name (not a path) of the form llama.cpp's `llama_split_path` makes.
    pub fn parse(file_name: &str) -> Option<SplitName> {
        let stem = file_name.strip_suffix(".gguf")?;
        let (rest, count) = stem.rsplit_once("-of-")?;
        let (prefix, no) = rest.rsplit_once('-')?;
        let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(no) || !digits(count) || prefix.is_empty() {
            return None;
        }
        Some(SplitName {
            prefix: prefix.to_string(),
            no: no.parse().ok()?,
            count: count.parse().ok()?,
        })
    }

    /// The file name of shard `no` (1-based) of this set.
    pub fn file_name(&self, no: u32) -> String {
        format!("{}-{:05}-of-{:05}.gguf", self.prefix, no, self.count)
    }
}

fn split_value(header: &GgufHeader, key: &str, path: &Path) -> Result<Option<u64>, GgufError> {
    match header.get(key) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| GgufError::BadKey {
            path: path.to_path_buf(),
            key: key.to_string(),
            problem: format!("must be a non-negative integer, found {v}"),
        }),
    }
}

impl GgufModel {
    /// Opens a model from any of its files. For a split model every shard is found
    /// beside it, read, and checked to belong to the same set.
    pub fn open(path: &Path) -> Result<GgufModel, GgufError> {
        let (header, stats) = read_file(path)?;
        let count = split_value(&header, KEY_SPLIT_COUNT, path)?.unwrap_or(1);
        if count <= 1 {
            return Ok(GgufModel {
                shards: vec![Shard {
                    path: path.to_path_buf(),
                    header,
                    stats,
                }],
            });
        }
        let mismatch = |p: &Path, problem: String| GgufError::ShardMismatch {
            path: p.to_path_buf(),
            problem,
        };
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let name = SplitName::parse(file_name).ok_or_else(|| {
            mismatch(
                path,
                format!("split.count is {count} but the file name does not end in -NNNNN-of-{count:05}.gguf, so the other shards cannot be found"),
            )
        })?;
        if u64::from(name.count) != count {
            return Err(mismatch(
                path,
                format!(
                    "file name says {} shards but split.count is {count}",
                    name.count
                ),
            ));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut opened = Some((header, stats));
        let mut shards = Vec::with_capacity(name.count as usize);
        for no in 1..=name.count {
            let shard_path = dir.join(name.file_name(no));
            let (header, stats) = if no == name.no {
                match opened.take() {
                    Some(h) => h,
                    None => read_file(&shard_path)?,
                }
            } else {
                if !shard_path.exists() {
                    return Err(GgufError::MissingShard {
                        path: path.to_path_buf(),
                        no,
                        count: name.count,
                        expected: shard_path,
                    });
                }
                read_file(&shard_path)?
            };
            let shard_count = split_value(&header, KEY_SPLIT_COUNT, &shard_path)?;
            if shard_count != Some(count) {
                return Err(mismatch(
                    &shard_path,
                    format!("split.count is {shard_count:?}, the first shard says {count}"),
                ));
            }
            let shard_no = split_value(&header, KEY_SPLIT_NO, &shard_path)?;
            if shard_no != Some(u64::from(no - 1)) {
                return Err(mismatch(
                    &shard_path,
                    format!(
                        "split.no is {shard_no:?}, expected {} for this file name",
                        no - 1
                    ),
                ));
            }
            shards.push(Shard {
                path: shard_path,
                header,
                stats,
            });
        }
        let model = GgufModel { shards };
        let first = &model.shards[0];
        if let Some(expected) = split_value(&first.header, KEY_SPLIT_TENSORS_COUNT, &first.path)? {
            let found = model.tensors().count() as u64;
            if found != expected {
                return Err(mismatch(
                    &first.path,
                    format!(
                        "split.tensors.count is {expected} but the shards hold {found} tensors"
                    ),
                ));
            }
        }
        Ok(model)
    }

    /// A one-file model from a header read elsewhere (e.g. from memory).
    pub fn single(path: &Path, header: GgufHeader) -> GgufModel {
        GgufModel {
            shards: vec![Shard {
                path: path.to_path_buf(),
                header,
                stats: ReadStats { bytes_read: 0 },
            }],
        }
    }

    /// The first shard's header (it carries the model's metadata).
    pub fn header(&self) -> &GgufHeader {
        &self.shards[0].header
    }

    /// A metadata value from the first shard.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.header().get(key)
    }

    /// All tensors of all shards, in order.
    pub fn tensors(&self) -> impl Iterator<Item = &TensorInfo> {
        self.shards.iter().flat_map(|s| s.header.tensors.iter())
    }

    /// Sum of the shards' file sizes.
    pub fn file_bytes(&self) -> u64 {
        self.shards.iter().map(|s| s.header.file_size).sum()
    }

    /// Bytes read from disk to open the model.
    pub fn bytes_read(&self) -> u64 {
        self.shards.iter().map(|s| s.stats.bytes_read).sum()
    }

    /// The paths of all shards.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.shards.iter().map(|s| s.path.clone()).collect()
    }
}
