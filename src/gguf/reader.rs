//! The GGUF header reader: metadata and tensor infos, never tensor data.
//!
//! Every check mirrors llama.cpp's own reader (`ggml/src/gguf.cpp`,
//! `gguf_init_from_reader`) so that a file we accept is one llama.cpp accepts, with
//! one addition: the tensor data must lie inside the file (llama.cpp finds that out
//! only when it loads the weights). Every count is bounded by the bytes left in the
//! file before anything is allocated, so a header that claims 2^60 tensors costs
//! nothing.

use super::error::{GgufError, Problem};
use super::types::{GgmlType, GGML_TYPE_COUNT};
use super::value::{GgufArray, GgufValue, ValueType};
use serde::Serialize;
use std::collections::HashMap;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// `GGUF_DEFAULT_ALIGNMENT` in gguf.h.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// `GGUF_MAX_STRING_LENGTH` and `GGUF_MAX_ARRAY_ELEMENTS` in gguf.cpp (1 Gi).
const MAX_STRING_LENGTH: u64 = 1 << 30;
const MAX_ARRAY_ELEMENTS: u64 = 1 << 30;
/// `GGML_MAX_NAME` in ggml.h: names must be shorter than this.
const MAX_TENSOR_NAME: usize = 64;
/// `GGML_MAX_DIMS` in ggml.h.
pub const MAX_DIMS: u32 = 4;
/// How deep we follow arrays of arrays (llama.cpp follows none).
const MAX_ARRAY_NESTING: u32 = 8;
/// The most memory a header's metadata may take once read. Real headers are a few MB
/// (Gemma 3 270M's, with its 262,144-token vocabulary, is 6.5 MB); without a cap, a
/// header of a billion empty strings in a large sparse file would take 3x its bytes in
/// memory (24-byte `String`s for 8-byte lengths) until the process ran out of memory.
/// llama.cpp's own per-array and per-string limits (1 Gi) bound each value, not the
/// sum.
pub const MAX_HEADER_MEMORY: u64 = 1 << 30;
/// Elements reserved ahead of an array's reading: a count is only a claim until the
/// elements are read, so larger arrays grow as they are.
const PREALLOC_ELEMENTS: usize = 1 << 16;
/// Read buffer: headers with large vocabularies are a few MB of small strings.
const READ_BUFFER: usize = 256 * 1024;

/// Byte order of a GGUF file. llama.cpp writes the host's order; big-endian files
/// exist for s390x.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ByteOrder {
    /// little-endian (almost every file)
    Little,
    /// big-endian
    Big,
}

/// One tensor's description from the header.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorInfo {
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Its ggml type.
    pub ggml_type: GgmlType,
    /// Elements per dimension, innermost first (`ne` in ggml), 1 to 4 entries.
    pub shape: Vec<u64>,
    /// Offset of its data from the start of the data section.
    pub offset: u64,
    /// Bytes of data (`ggml_nbytes`).
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// A parsed GGUF header.
#[derive(Debug, Clone)]
pub struct GgufHeader {
    /// Format version (2 or 3).
    pub version: u32,
    /// Byte order of the file.
    pub byte_order: ByteOrder,
    /// Data alignment (`general.alignment`, default 32).
    pub alignment: u64,
    /// Metadata in file order.
    pub metadata: Vec<(String, GgufValue)>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    /// Absolute offset of the data section.
    pub data_offset: u64,
    /// Size of the data section (each tensor padded to the alignment).
    pub data_bytes: u64,
    /// Size of the file.
    pub file_size: u64,
    index: HashMap<String, usize>,
}

impl GgufHeader {
    /// The value of a metadata key.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// A string value.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(GgufValue::as_str)
    }

    /// An integer value that is >= 0.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(GgufValue::as_u64)
    }

    /// A numeric value as a float.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(GgufValue::as_f64)
    }

    /// Total tensor data bytes, unpadded.
    pub fn tensor_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.n_bytes).sum()
    }

    pub(crate) fn new(
        version: u32,
        byte_order: ByteOrder,
        metadata: Vec<(String, GgufValue)>,
        tensors: Vec<TensorInfo>,
    ) -> Self {
        let index = metadata
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        GgufHeader {
            version,
            byte_order,
            alignment: DEFAULT_ALIGNMENT,
            metadata,
            tensors,
            data_offset: 0,
            data_bytes: 0,
            file_size: 0,
            index,
        }
    }
}

/// Counts the bytes actually read from the underlying source.
struct Counting<R> {
    inner: R,
    bytes_read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes_read += n as u64;
        Ok(n)
    }
}

impl<R: Seek> Seek for Counting<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// What [`read_file`] returns besides the header: how much of the file it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReadStats {
    /// Bytes read from the source (the header plus read-ahead).
    pub bytes_read: u64,
}

/// Reads the header of the GGUF file at `path`.
pub fn read_file(path: &Path) -> Result<(GgufHeader, ReadStats), GgufError> {
    let file = crate::files::open_regular(path)?;
    let mut counting = Counting {
        inner: file,
        bytes_read: 0,
    };
    let header = read_header(&mut counting, path)?;
    tracing::debug!(
        path = %path.display(),
        bytes_read = counting.bytes_read,
        "read GGUF header"
    );
    Ok((
        header,
        ReadStats {
            bytes_read: counting.bytes_read,
        },
    ))
}

/// Reads a GGUF header from any seekable source; `path` only labels errors.
pub fn read_header<R: Read + Seek>(source: R, path: &Path) -> Result<GgufHeader, GgufError> {
    let mut src = Source::new(source, path)?;
    src.header()
}

struct Source<R> {
    inner: BufReader<R>,
    path: PathBuf,
    pos: u64,
    len: u64,
    order: ByteOrder,
    /// Bytes of metadata held in memory so far.
    held: u64,
}

macro_rules! read_num {
    ($name:ident, $ty:ty) => {
        fn $name(&mut self) -> Result<$ty, GgufError> {
            let mut buf = [0u8; std::mem::size_of::<$ty>()];
            self.fill(&mut buf)?;
            Ok(match self.order {
                ByteOrder::Little => <$ty>::from_le_bytes(buf),
                ByteOrder::Big => <$ty>::from_be_bytes(buf),
            })
        }
    };
}

/// Reads a counted array of fixed-size numbers into a vector.
macro_rules! read_vec {
    ($self:ident, $n:expr, $read:ident) => {{
        let mut v = Vec::with_capacity($n.min(PREALLOC_ELEMENTS));
        for _ in 0..$n {
            v.push($self.$read()?);
        }
        v
    }};
}

impl<R: Read + Seek> Source<R> {
    fn new(mut source: R, path: &Path) -> Result<Self, GgufError> {
        let io_err = |source| GgufError::Io {
            path: path.to_path_buf(),
            offset: 0,
            source,
        };
        let len = source.seek(SeekFrom::End(0)).map_err(io_err)?;
        source.seek(SeekFrom::Start(0)).map_err(io_err)?;
        Ok(Source {
            inner: BufReader::with_capacity(READ_BUFFER, source),
            path: path.to_path_buf(),
            pos: 0,
            len,
            order: ByteOrder::Little,
            held: 0,
        })
    }

    /// Counts `bytes` more of metadata held in memory, refusing past
    /// [`MAX_HEADER_MEMORY`].
    fn hold(&mut self, bytes: u64) -> Result<(), GgufError> {
        self.held = self.held.saturating_add(bytes);
        if self.held > MAX_HEADER_MEMORY {
            return Err(self.malformed(Problem::HeaderTooLarge {
                max: MAX_HEADER_MEMORY,
            }));
        }
        Ok(())
    }

    fn malformed(&self, problem: Problem) -> GgufError {
        GgufError::Malformed {
            path: self.path.clone(),
            offset: self.pos,
            file_size: self.len,
            problem,
        }
    }

    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    /// Fails unless `n` more bytes exist.
    fn need(&self, n: u64) -> Result<(), GgufError> {
        if n > self.remaining() {
            return Err(self.malformed(Problem::Truncated {
                needed: n,
                available: self.remaining(),
            }));
        }
        Ok(())
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), GgufError> {
        self.need(buf.len() as u64)?;
        self.inner.read_exact(buf).map_err(|source| GgufError::Io {
            path: self.path.clone(),
            offset: self.pos,
            source,
        })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    read_num!(u8, u8);
    read_num!(i8, i8);
    read_num!(u16, u16);
    read_num!(i16, i16);
    read_num!(u32, u32);
    read_num!(i32, i32);
    read_num!(u64, u64);
    read_num!(i64, i64);
    read_num!(f32, f32);
    read_num!(f64, f64);

    fn bool(&mut self) -> Result<bool, GgufError> {
        // llama.cpp reads the byte into a C++ bool; any non-zero byte is true.
        Ok(self.u8()? != 0)
    }

    /// Bounds a count of items of at least `min_size` bytes each by the bytes left.
    fn count(
        &self,
        what: &'static str,
        n: u64,
        min_size: u64,
        limit: u64,
    ) -> Result<usize, GgufError> {
        let fit = self.remaining() / min_size.max(1);
        let max = fit.min(limit);
        if n > max {
            return Err(self.malformed(Problem::CountTooLarge {
                what,
                count: n,
                max,
            }));
        }
        usize::try_from(n).map_err(|_| {
            self.malformed(Problem::CountTooLarge {
                what,
                count: n,
                max,
            })
        })
    }

    fn string(&mut self, what: &'static str) -> Result<String, GgufError> {
        let n = self.u64()?;
        let n = self.count(what, n, 1, MAX_STRING_LENGTH)?;
        self.hold(n as u64)?;
        let mut buf = vec![0u8; n];
        let start = self.pos;
        self.fill(&mut buf)?;
        String::from_utf8(buf).map_err(|_| GgufError::Malformed {
            path: self.path.clone(),
            offset: start,
            file_size: self.len,
            problem: Problem::InvalidUtf8 { what },
        })
    }

    fn header(&mut self) -> Result<GgufHeader, GgufError> {
        let mut magic = [0u8; 4];
        self.fill(&mut magic)?;
        if &magic != b"GGUF" {
            self.pos = 0;
            return Err(self.malformed(Problem::BadMagic(magic)));
        }
        let raw_version = self.u32()?;
        // A file of the other byte order reads its small version number with the low
        // 16 bits zero (gguf.cpp makes the same observation and refuses; we swap).
        let version = if raw_version & 0xFFFF == 0 && raw_version != 0 {
            self.order = ByteOrder::Big;
            raw_version.swap_bytes()
        } else {
            raw_version
        };
        if !(2..=3).contains(&version) {
            self.pos -= 4;
            return Err(self.malformed(Problem::UnsupportedVersion(version)));
        }
        let n_tensors = self.u64()?;
        let n_kv = self.u64()?;

        // A KV pair is at least key length (8) + 1 byte key + type (4) + 1 byte value.
        let n_kv = self.count("metadata key-value", n_kv, 14, u64::MAX)?;
        let mut metadata = Vec::with_capacity(n_kv.min(4096));
        let mut seen = HashMap::with_capacity(n_kv.min(4096));
        for i in 0..n_kv {
            let key_offset = self.pos;
            let key = self.string("metadata key")?;
            if key.is_empty() {
                self.pos = key_offset;
                return Err(self.malformed(Problem::EmptyKey(i as u64)));
            }
            if seen.contains_key(&key) {
                self.pos = key_offset;
                return Err(self.malformed(Problem::DuplicateKey(key)));
            }
            let tag = self.u32()?;
            let value = self.value(&key, tag, 0)?;
            seen.insert(key.clone(), metadata.len());
            metadata.push((key, value));
        }

        let mut header = GgufHeader::new(version, self.order, metadata, Vec::new());
        header.alignment = match header.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(GgufValue::U32(a)) if a.is_power_of_two() => u64::from(*a),
            Some(other) => {
                return Err(self.malformed(Problem::BadAlignment(format!(
                    "{} of type {}",
                    other,
                    other.value_type().name()
                ))))
            }
        };

        // A tensor info is at least name length (8) + 1 byte + n_dims (4) + 1 dim (8)
        // + type (4) + offset (8).
        let n_tensors = self.count("tensor", n_tensors, 33, u64::MAX)?;
        let mut tensors = Vec::with_capacity(n_tensors.min(65536));
        let mut names = std::collections::HashSet::with_capacity(n_tensors.min(65536));
        for _ in 0..n_tensors {
            let info = self.tensor_info()?;
            if !names.insert(info.name.clone()) {
                return Err(self.malformed(Problem::DuplicateTensor(info.name)));
            }
            tensors.push(info);
        }

        // The data section starts at the next multiple of the alignment.
        let data_offset = if n_tensors > 0 {
            self.pos.div_ceil(header.alignment) * header.alignment
        } else {
            self.pos
        };
        let mut expected = 0u64;
        for t in &tensors {
            if t.offset != expected {
                return Err(self.malformed(Problem::BadTensorOffset {
                    tensor: t.name.clone(),
                    offset: t.offset,
                    expected,
                }));
            }
            let padded = t
                .n_bytes
                .checked_next_multiple_of(header.alignment)
                .and_then(|p| expected.checked_add(p));
            expected = match padded {
                Some(e) => e,
                None => {
                    return Err(self.malformed(Problem::SizeOverflow {
                        tensor: t.name.clone(),
                        shape: t.shape.clone(),
                    }))
                }
            };
        }
        // The last tensor's data must end inside the file (its padding need not).
        let data_end = tensors
            .last()
            .map(|t| {
                data_offset
                    .saturating_add(t.offset)
                    .saturating_add(t.n_bytes)
            })
            .unwrap_or(data_offset);
        if n_tensors > 0 && data_end > self.len {
            return Err(self.malformed(Problem::DataPastEnd {
                needed: data_end,
                file_size: self.len,
            }));
        }
        header.tensors = tensors;
        header.data_offset = data_offset;
        header.data_bytes = expected;
        header.file_size = self.len;
        Ok(header)
    }

    fn tensor_info(&mut self) -> Result<TensorInfo, GgufError> {
        let name = self.string("tensor name")?;
        if name.len() >= MAX_TENSOR_NAME {
            return Err(self.malformed(Problem::TensorNameTooLong(name)));
        }
        let n_dims = self.u32()?;
        if n_dims > MAX_DIMS {
            return Err(self.malformed(Problem::TooManyDims {
                tensor: name,
                n_dims,
            }));
        }
        let mut shape = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            let dim = self.u64()?;
            // ggml stores dimensions as int64_t: negative values are invalid.
            if i64::try_from(dim).is_err() {
                return Err(self.malformed(Problem::BadDim { tensor: name, dim }));
            }
            shape.push(dim);
        }
        if shape.is_empty() {
            // ggml treats a 0-dimensional tensor as one element.
            shape.push(1);
        }
        let overflow = |s: &Self, name: String, shape: Vec<u64>| {
            s.malformed(Problem::SizeOverflow {
                tensor: name,
                shape,
            })
        };
        let n_elements = shape.iter().try_fold(1u64, |acc, &d| {
            acc.checked_mul(d).filter(|&n| n <= i64::MAX as u64)
        });
        let Some(n_elements) = n_elements else {
            return Err(overflow(self, name, shape));
        };
        let id = self.u32()?;
        let Some(ggml_type) = GgmlType::from_id(id) else {
            return Err(self.malformed(Problem::UnknownGgmlType {
                tensor: name,
                id,
                count: GGML_TYPE_COUNT,
            }));
        };
        let Some(traits) = ggml_type.traits() else {
            return Err(self.malformed(Problem::RemovedGgmlType { tensor: name, id }));
        };
        if !shape[0].is_multiple_of(u64::from(traits.block_size)) {
            return Err(self.malformed(Problem::PartialBlock {
                tensor: name,
                row: shape[0],
                ty: ggml_type.name(),
                block: traits.block_size,
            }));
        }
        let n_bytes =
            (n_elements / u64::from(traits.block_size)).checked_mul(u64::from(traits.type_size));
        let Some(n_bytes) = n_bytes else {
            return Err(overflow(self, name, shape));
        };
        let offset = self.u64()?;
        Ok(TensorInfo {
            name,
            ggml_type,
            shape,
            offset,
            n_bytes,
        })
    }

    fn value(&mut self, key: &str, tag: u32, depth: u32) -> Result<GgufValue, GgufError> {
        let Some(ty) = ValueType::from_tag(tag) else {
            return Err(self.malformed(Problem::UnknownValueType {
                key: key.to_string(),
                tag,
            }));
        };
        Ok(match ty {
            ValueType::U8 => GgufValue::U8(self.u8()?),
            ValueType::I8 => GgufValue::I8(self.i8()?),
            ValueType::U16 => GgufValue::U16(self.u16()?),
            ValueType::I16 => GgufValue::I16(self.i16()?),
            ValueType::U32 => GgufValue::U32(self.u32()?),
            ValueType::I32 => GgufValue::I32(self.i32()?),
            ValueType::F32 => GgufValue::F32(self.f32()?),
            ValueType::Bool => GgufValue::Bool(self.bool()?),
            ValueType::String => GgufValue::String(self.string("string value")?),
            ValueType::U64 => GgufValue::U64(self.u64()?),
            ValueType::I64 => GgufValue::I64(self.i64()?),
            ValueType::F64 => GgufValue::F64(self.f64()?),
            ValueType::Array => GgufValue::Array(self.array(key, depth)?),
        })
    }

    fn array(&mut self, key: &str, depth: u32) -> Result<GgufArray, GgufError> {
        if depth >= MAX_ARRAY_NESTING {
            return Err(self.malformed(Problem::NestingTooDeep {
                key: key.to_string(),
                max: MAX_ARRAY_NESTING,
            }));
        }
        let tag = self.u32()?;
        let Some(elem) = ValueType::from_tag(tag) else {
            return Err(self.malformed(Problem::UnknownValueType {
                key: key.to_string(),
                tag,
            }));
        };
        let n = self.u64()?;
        let n = self.count("array element", n, elem.min_size(), MAX_ARRAY_ELEMENTS)?;
        let in_memory = match elem {
            ValueType::String => std::mem::size_of::<String>() as u64,
            ValueType::Array => std::mem::size_of::<GgufArray>() as u64,
            other => other.fixed_size().unwrap_or(1),
        };
        self.hold((n as u64).saturating_mul(in_memory))?;
        Ok(match elem {
            ValueType::U8 => GgufArray::U8(read_vec!(self, n, u8)),
            ValueType::I8 => GgufArray::I8(read_vec!(self, n, i8)),
            ValueType::U16 => GgufArray::U16(read_vec!(self, n, u16)),
            ValueType::I16 => GgufArray::I16(read_vec!(self, n, i16)),
            ValueType::U32 => GgufArray::U32(read_vec!(self, n, u32)),
            ValueType::I32 => GgufArray::I32(read_vec!(self, n, i32)),
            ValueType::F32 => GgufArray::F32(read_vec!(self, n, f32)),
            ValueType::Bool => GgufArray::Bool(read_vec!(self, n, bool)),
            ValueType::U64 => GgufArray::U64(read_vec!(self, n, u64)),
            ValueType::I64 => GgufArray::I64(read_vec!(self, n, i64)),
            ValueType::F64 => GgufArray::F64(read_vec!(self, n, f64)),
            ValueType::String => {
                let mut v = Vec::with_capacity(n.min(PREALLOC_ELEMENTS));
                for _ in 0..n {
                    v.push(self.string("string array element")?);
                }
                GgufArray::String(v)
            }
            ValueType::Array => {
                let mut v = Vec::with_capacity(n.min(PREALLOC_ELEMENTS));
                for _ in 0..n {
                    v.push(self.array(key, depth + 1)?);
                }
                GgufArray::Array(v)
            }
        })
    }
}
