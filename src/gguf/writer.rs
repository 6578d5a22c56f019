//! The GGUF writer: header plus tensor data, or a header-only *sparse* file whose
//! data region is a hole, so that the shape of a 115 GB model costs a few MB of disk.
//!
//! The layout follows llama.cpp's `gguf_write_to_buf` (`ggml/src/gguf.cpp`): metadata,
//! tensor infos with offsets packed in order, padding to the alignment, then each
//! tensor's data padded to the alignment.

use super::error::GgufError;
use super::reader::{ByteOrder, TensorInfo, DEFAULT_ALIGNMENT, MAX_DIMS};
use super::types::GgmlType;
use super::value::{GgufArray, GgufValue};
use crate::files::{Existing, PendingFile};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

/// Largest chunk handed to a [`TensorData::Fill`] callback.
const FILL_CHUNK: u64 = 8 << 20;

/// How tensor data is produced when writing.
pub enum TensorData<'a> {
    /// Leave the data region as a hole: the file has the right size but only the
    /// header is on disk.
    Sparse,
    /// Write real data: the callback fills `chunk` with the bytes of `tensor` starting
    /// at `offset` within it. Chunks are whole blocks of the tensor's type.
    Fill(&'a mut dyn FnMut(&TensorInfo, u64, &mut [u8])),
}

/// What a write produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteSummary {
    /// Header bytes, padding included (where the data section starts).
    pub header_bytes: u64,
    /// Size of the file.
    pub file_bytes: u64,
}

/// Builds a GGUF file.
#[derive(Debug, Clone)]
pub struct GgufWriter {
    byte_order: ByteOrder,
    alignment: u64,
    metadata: Vec<(String, GgufValue)>,
    tensors: Vec<TensorInfo>,
    data_bytes: u64,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    /// An empty little-endian GGUF v3 file with the default alignment.
    pub fn new() -> Self {
        GgufWriter {
            byte_order: ByteOrder::Little,
            alignment: DEFAULT_ALIGNMENT,
            metadata: Vec::new(),
            tensors: Vec::new(),
            data_bytes: 0,
        }
    }

    /// Writes in the given byte order.
    pub fn byte_order(mut self, order: ByteOrder) -> Self {
        self.byte_order = order;
        self
    }

    /// Sets a metadata key, replacing an earlier value of the same key.
    /// `general.alignment` (a power-of-two u32) also changes the data alignment;
    /// set it before adding tensors.
    pub fn set(&mut self, key: impl Into<String>, value: GgufValue) {
        let key = key.into();
        if key == "general.alignment" {
            if let GgufValue::U32(a) = value {
                if a.is_power_of_two() && self.tensors.is_empty() {
                    self.alignment = u64::from(a);
                }
            }
        }
        match self.metadata.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.metadata.push((key, value)),
        }
    }

    /// Metadata set so far.
    pub fn metadata(&self) -> &[(String, GgufValue)] {
        &self.metadata
    }

    /// Tensors added so far, with their offsets.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Adds a tensor of the given type and shape (innermost dimension first).
    pub fn add_tensor(
        &mut self,
        name: &str,
        ggml_type: GgmlType,
        shape: &[u64],
    ) -> Result<(), GgufError> {
        let invalid = |problem: String| GgufError::InvalidTensor {
            tensor: name.to_string(),
            problem,
        };
        if name.is_empty() || name.len() >= 64 {
            return Err(invalid("names must be 1 to 63 bytes".into()));
        }
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(invalid("a tensor of this name was already added".into()));
        }
        if shape.is_empty() || shape.len() > MAX_DIMS as usize {
            return Err(invalid(format!(
                "{} dimensions (1 to 4 allowed)",
                shape.len()
            )));
        }
        let n_elements = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| invalid(format!("shape {shape:?} overflows")))?;
        let n_bytes = ggml_type
            .row_bytes(shape[0])
            .and_then(|row| row.checked_mul(n_elements / shape[0].max(1)))
            .ok_or_else(|| invalid(format!("shape {shape:?} does not fit type {ggml_type}")))?;
        let offset = self.data_bytes;
        self.data_bytes = offset
            .checked_add(n_bytes.next_multiple_of(self.alignment))
            .ok_or_else(|| invalid("data section overflows".into()))?;
        self.tensors.push(TensorInfo {
            name: name.to_string(),
            ggml_type,
            shape: shape.to_vec(),
            offset,
            n_bytes,
        });
        Ok(())
    }

    /// The header bytes, padded to the start of the data section.
    pub fn header_bytes(&self) -> Vec<u8> {
        let mut out = Enc {
            buf: Vec::new(),
            order: self.byte_order,
        };
        out.buf.extend_from_slice(b"GGUF");
        out.u32(3);
        out.u64(self.tensors.len() as u64);
        out.u64(self.metadata.len() as u64);
        for (key, value) in &self.metadata {
            out.string(key);
            out.u32(value.value_type() as u32);
            out.value(value);
        }
        for t in &self.tensors {
            out.string(&t.name);
            out.u32(t.shape.len() as u32);
            for &d in &t.shape {
                out.u64(d);
            }
            out.u32(t.ggml_type.id());
            out.u64(t.offset);
        }
        let padded = (out.buf.len() as u64).next_multiple_of(self.alignment);
        out.buf.resize(padded as usize, 0);
        out.buf
    }

    /// Writes the file. With [`TensorData::Sparse`] only the header is written and
    /// the file is extended to its full size without writing the data.
    ///
    /// The file is written beside `path` and renamed into place once complete: a failed
    /// write (a full disk) leaves no partial file. An existing file is replaced.
    pub fn write(&self, path: &Path, data: TensorData<'_>) -> Result<WriteSummary, GgufError> {
        let mut pending = PendingFile::create(path, Existing::Replace)?;
        let summary = self.write_to(pending.file(), path, data)?;
        pending.commit()?;
        Ok(summary)
    }

    /// Writes the file into `file` (from its start); `path` names it in errors. With
    /// [`TensorData::Sparse`] only the header is written and the file is extended to its
    /// full size without writing the data.
    pub fn write_to(
        &self,
        file: &mut File,
        path: &Path,
        data: TensorData<'_>,
    ) -> Result<WriteSummary, GgufError> {
        let werr = |source| GgufError::Write {
            path: path.to_path_buf(),
            source,
        };
        let header = self.header_bytes();
        let header_bytes = header.len() as u64;
        let file_bytes = header_bytes + self.data_bytes;
        file.seek(SeekFrom::Start(0)).map_err(werr)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&header).map_err(werr)?;
        match data {
            TensorData::Sparse => {
                let file = out.into_inner().map_err(|e| werr(e.into_error()))?;
                file.set_len(file_bytes).map_err(werr)?;
            }
            TensorData::Fill(fill) => {
                let mut chunk = Vec::new();
                for t in &self.tensors {
                    out.seek(SeekFrom::Start(header_bytes + t.offset))
                        .map_err(werr)?;
                    let type_size = t.ggml_type.traits().map_or(1, |tr| u64::from(tr.type_size));
                    let step = (FILL_CHUNK / type_size).max(1) * type_size;
                    let mut done = 0;
                    while done < t.n_bytes {
                        let len = step.min(t.n_bytes - done);
                        chunk.clear();
                        chunk.resize(len as usize, 0);
                        fill(t, done, &mut chunk);
                        out.write_all(&chunk).map_err(werr)?;
                        done += len;
                    }
                }
                let file = out.into_inner().map_err(|e| werr(e.into_error()))?;
                file.set_len(file_bytes).map_err(werr)?;
            }
        }
        Ok(WriteSummary {
            header_bytes,
            file_bytes,
        })
    }
}

/// Encodes values in one byte order.
struct Enc {
    buf: Vec<u8>,
    order: ByteOrder,
}

macro_rules! enc_num {
    ($name:ident, $ty:ty) => {
        fn $name(&mut self, v: $ty) {
            match self.order {
                ByteOrder::Little => self.buf.extend_from_slice(&v.to_le_bytes()),
                ByteOrder::Big => self.buf.extend_from_slice(&v.to_be_bytes()),
            }
        }
    };
}

impl Enc {
    enc_num!(u8, u8);
    enc_num!(i8, i8);
    enc_num!(u16, u16);
    enc_num!(i16, i16);
    enc_num!(u32, u32);
    enc_num!(i32, i32);
    enc_num!(u64, u64);
    enc_num!(i64, i64);
    enc_num!(f32, f32);
    enc_num!(f64, f64);

    fn string(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }

    fn value(&mut self, v: &GgufValue) {
        match v {
            GgufValue::U8(x) => self.u8(*x),
            GgufValue::I8(x) => self.i8(*x),
            GgufValue::U16(x) => self.u16(*x),
            GgufValue::I16(x) => self.i16(*x),
            GgufValue::U32(x) => self.u32(*x),
            GgufValue::I32(x) => self.i32(*x),
            GgufValue::F32(x) => self.f32(*x),
            GgufValue::Bool(x) => self.u8(u8::from(*x)),
            GgufValue::String(s) => self.string(s),
            GgufValue::U64(x) => self.u64(*x),
            GgufValue::I64(x) => self.i64(*x),
            GgufValue::F64(x) => self.f64(*x),
            GgufValue::Array(a) => self.array(a),
        }
    }

    fn array(&mut self, a: &GgufArray) {
        self.u32(a.elem_type() as u32);
        self.u64(a.len() as u64);
        match a {
            GgufArray::U8(v) => v.iter().for_each(|&x| self.u8(x)),
            GgufArray::I8(v) => v.iter().for_each(|&x| self.i8(x)),
            GgufArray::U16(v) => v.iter().for_each(|&x| self.u16(x)),
            GgufArray::I16(v) => v.iter().for_each(|&x| self.i16(x)),
            GgufArray::U32(v) => v.iter().for_each(|&x| self.u32(x)),
            GgufArray::I32(v) => v.iter().for_each(|&x| self.i32(x)),
            GgufArray::F32(v) => v.iter().for_each(|&x| self.f32(x)),
            GgufArray::Bool(v) => v.iter().for_each(|&x| self.u8(u8::from(x))),
            GgufArray::String(v) => v.iter().for_each(|s| self.string(s)),
            GgufArray::Array(v) => v.iter().for_each(|inner| self.array(inner)),
            GgufArray::U64(v) => v.iter().for_each(|&x| self.u64(x)),
            GgufArray::I64(v) => v.iter().for_each(|&x| self.i64(x)),
            GgufArray::F64(v) => v.iter().for_each(|&x| self.f64(x)),
        }
    }
}
