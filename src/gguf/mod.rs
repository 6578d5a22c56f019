//! The GGUF file format, read and written in pure Rust.
//!
//! Only headers are read (metadata and tensor infos); tensor data is never touched.
//! The checks mirror llama.cpp's `ggml/src/gguf.cpp`, and the tests compare this
//! reader with llama.cpp's own on real files.

mod error;
mod reader;
mod split;
mod types;
mod value;
mod writer;

pub use error::{GgufError, Problem};
pub use reader::{
    read_file, read_header, ByteOrder, GgufHeader, ReadStats, TensorInfo, DEFAULT_ALIGNMENT,
    MAX_HEADER_MEMORY,
};
pub use split::{
    GgufModel, Shard, SplitName, KEY_SPLIT_COUNT, KEY_SPLIT_NO, KEY_SPLIT_TENSORS_COUNT,
};
pub use types::{file_type_name, GgmlType, TypeTraits, GGML_TYPE_COUNT};
pub use value::{GgufArray, GgufValue, ValueType};
pub use writer::{GgufWriter, TensorData, WriteSummary};
