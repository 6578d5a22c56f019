//! Errors of the GGUF layer. Every error names the file, and malformed-file errors
//! also name the byte offset where reading stopped.

use std::io;
use std::path::PathBuf;

/// What is wrong with a file's bytes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    /// The first four bytes are not `GGUF`.
    #[error("not a GGUF file: magic bytes are {0:02x?}, expected \"GGUF\"")]
    BadMagic([u8; 4]),
    /// Version 1, 0, or newer than this reader knows.
    #[error("GGUF version {0} is not supported (only versions 2 and 3)")]
    UnsupportedVersion(u32),
    /// The file ends before a value it announces.
    #[error("file ends early: {needed} more bytes needed, {available} left")]
    Truncated {
        /// bytes the next item needs
        needed: u64,
        /// bytes left in the file
        available: u64,
    },
    /// A count that cannot fit in the bytes left (or over llama.cpp's own limits).
    #[error("{what} count {count} is impossible (at most {max} fit here)")]
    CountTooLarge {
        /// what was counted
        what: &'static str,
        /// the count in the file
        count: u64,
        /// the largest count that could be valid
        max: u64,
    },
    /// Metadata that would take more memory than any real header.
    #[error(
        "the metadata would take more than {max} bytes of memory (real headers take a few MB)"
    )]
    HeaderTooLarge {
        /// the limit, bytes
        max: u64,
    },
    /// A string that is not UTF-8.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 {
        /// which string
        what: &'static str,
    },
    /// A value type tag outside the 13 defined.
    #[error("key '{key}' has unknown value type {tag}")]
    UnknownValueType {
        /// the key
        key: String,
        /// the tag found
        tag: u32,
    },
    /// Arrays nested deeper than we follow.
    #[error("key '{key}' nests arrays deeper than {max} levels")]
    NestingTooDeep {
        /// the key
        key: String,
        /// the limit
        max: u32,
    },
    /// An empty key.
    #[error("key number {0} is empty")]
    EmptyKey(u64),
    /// The same key twice.
    #[error("duplicate key '{0}'")]
    DuplicateKey(String),
    /// `general.alignment` of the wrong type or not a power of two.
    #[error("general.alignment must be a u32 power of two, found {0}")]
    BadAlignment(String),
    /// A tensor name of 64 bytes or more (`GGML_MAX_NAME`).
    #[error("tensor name '{0}' is too long (llama.cpp allows at most 63 bytes)")]
    TensorNameTooLong(String),
    /// The same tensor name twice.
    #[error("duplicate tensor name '{0}'")]
    DuplicateTensor(String),
    /// More than 4 dimensions (`GGML_MAX_DIMS`).
    #[error("tensor '{tensor}' has {n_dims} dimensions (at most 4)")]
    TooManyDims {
        /// the tensor
        tensor: String,
        /// dimensions claimed
        n_dims: u32,
    },
    /// A dimension that does not fit a signed 64-bit count.
    #[error("tensor '{tensor}' has an invalid dimension {dim}")]
    BadDim {
        /// the tensor
        tensor: String,
        /// the raw dimension
        dim: u64,
    },
    /// Element or byte counts that overflow.
    #[error("tensor '{tensor}' has a shape {shape:?} whose size overflows")]
    SizeOverflow {
        /// the tensor
        tensor: String,
        /// its shape
        shape: Vec<u64>,
    },
    /// A ggml type id this llama.cpp does not know.
    #[error("tensor '{tensor}' has unknown ggml type id {id} (this build knows 0..{count})")]
    UnknownGgmlType {
        /// the tensor
        tensor: String,
        /// the id
        id: u32,
        /// `GGML_TYPE_COUNT`
        count: u32,
    },
    /// A type id whose support was removed from ggml.
    #[error("tensor '{tensor}' uses ggml type id {id}, whose support was removed from llama.cpp")]
    RemovedGgmlType {
        /// the tensor
        tensor: String,
        /// the id
        id: u32,
    },
    /// A row that is not a whole number of quantization blocks.
    #[error("tensor '{tensor}' rows of {row} elements are not a multiple of the {ty} block size {block}")]
    PartialBlock {
        /// the tensor
        tensor: String,
        /// elements per row
        row: u64,
        /// the type
        ty: String,
        /// the block size
        block: u32,
    },
    /// A tensor offset other than the one llama.cpp requires (the tensors are packed in
    /// order, each padded to the alignment).
    #[error("tensor '{tensor}' has data offset {offset}, expected {expected}")]
    BadTensorOffset {
        /// the tensor
        tensor: String,
        /// offset in the file
        offset: u64,
        /// offset llama.cpp expects
        expected: u64,
    },
    /// The tensor data runs past the end of the file.
    #[error(
        "tensor data needs {needed} bytes but the file has {file_size}: the file is truncated"
    )]
    DataPastEnd {
        /// bytes the data section needs (from the start of the file)
        needed: u64,
        /// actual file size
        file_size: u64,
    },
}

/// An error from reading or writing GGUF files.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened, is not a regular file, or its size could not be read.
    #[error(transparent)]
    Open(#[from] crate::files::FileError),
    /// An I/O error other than an early end of file.
    #[error("{path}: read error at offset {offset}: {source}")]
    Io {
        /// the file
        path: PathBuf,
        /// where
        offset: u64,
        /// the cause
        source: io::Error,
    },
    /// The file's bytes are not a valid GGUF header.
    #[error("{path}: offset {offset}: {problem}. {hint}", hint = problem_hint(.problem, *.file_size))]
    Malformed {
        /// the file
        path: PathBuf,
        /// where reading stopped
        offset: u64,
        /// the file's size in bytes
        file_size: u64,
        /// what is wrong
        problem: Problem,
    },
    /// A shard of a split model is missing.
    #[error("{path}: shard {no} of {count} of this split model is missing (expected {expected}). Download all {count} shards into the same folder.")]
    MissingShard {
        /// the shard that was opened
        path: PathBuf,
        /// 1-based number of the missing shard
        no: u32,
        /// number of shards
        count: u32,
        /// the file name that was expected
        expected: PathBuf,
    },
    /// Shards that do not belong together.
    #[error("{path}: {problem}. The shards of one model must come from the same download.")]
    ShardMismatch {
        /// the shard at fault
        path: PathBuf,
        /// what does not match
        problem: String,
    },
    /// A metadata key the model layer needs is missing or has the wrong type.
    #[error("{path}: metadata key '{key}' {problem}")]
    BadKey {
        /// the file
        path: PathBuf,
        /// the key
        key: String,
        /// what is wrong
        problem: String,
    },
    /// Writing a file failed.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// the file
        path: PathBuf,
        /// the cause
        source: io::Error,
    },
    /// A tensor given to the writer is invalid.
    #[error("cannot write tensor '{tensor}': {problem}")]
    InvalidTensor {
        /// the tensor
        tensor: String,
        /// what is wrong
        problem: String,
    },
}

/// A count of this size or less is one a real header holds (tokens, keys, tensors): when
/// it does not fit in the bytes left, the file was more likely cut than corrupted.
const PLAUSIBLE_COUNT: u64 = u32::MAX as u64;

fn problem_hint(problem: &Problem, file_size: u64) -> String {
    let cut = |part: &str| {
        format!(
            "The file is {file_size} bytes long and ends inside its {part}: it looks cut short \
             (an interrupted download or copy): download it again."
        )
    };
    match problem {
        Problem::BadMagic(_) => "Check that the path points to a .gguf model file.".into(),
        Problem::Truncated { .. } => cut("header"),
        Problem::DataPastEnd { .. } => cut("tensor data"),
        Problem::CountTooLarge { count, .. } if *count <= PLAUSIBLE_COUNT => format!(
            "The file is {file_size} bytes long: it looks cut short (an interrupted download \
             or copy), or it is corrupt: download it again."
        ),
        Problem::UnsupportedVersion(_) => {
            "Convert the model again with a current llama.cpp (convert_hf_to_gguf.py).".into()
        }
        Problem::UnknownGgmlType { .. } | Problem::RemovedGgmlType { .. } => {
            "The file needs a different llama.cpp version than the one strix-run is built with."
                .into()
        }
        _ => "The file is corrupt or was not written by a GGUF writer: download it again.".into(),
    }
}

impl GgufError {
    /// The malformation, when this error is one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            GgufError::Malformed { problem, .. } => Some(problem),
            _ => None,
        }
    }
}
