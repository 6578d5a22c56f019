//! GGUF metadata values: the 13 value types of the format (`enum gguf_type` in
//! llama.cpp's `ggml/include/gguf.h`), arrays included.

use serde::ser::{Serialize, SerializeSeq, Serializer};
use std::fmt;

/// The type tag of a GGUF metadata value, as stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ValueType {
    /// `GGUF_TYPE_UINT8`
    U8 = 0,
    /// `GGUF_TYPE_INT8`
    I8 = 1,
    /// `GGUF_TYPE_UINT16`
    U16 = 2,
    /// `GGUF_TYPE_INT16`
    I16 = 3,
    /// `GGUF_TYPE_UINT32`
    U32 = 4,
    /// `GGUF_TYPE_INT32`
    I32 = 5,
    /// `GGUF_TYPE_FLOAT32`
    F32 = 6,
    /// `GGUF_TYPE_BOOL` (one byte)
    Bool = 7,
    /// `GGUF_TYPE_STRING` (u64 length + bytes)
    String = 8,
    /// `GGUF_TYPE_ARRAY` (element type + u64 count + elements)
    Array = 9,
    /// `GGUF_TYPE_UINT64`
    U64 = 10,
    /// `GGUF_TYPE_INT64`
    I64 = 11,
    /// `GGUF_TYPE_FLOAT64`
    F64 = 12,
}

impl ValueType {
    /// The type for a tag read from a file, if it is one of the 13.
    pub fn from_tag(tag: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match tag {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// Bytes one element of this type takes in a file; `None` for strings and arrays,
    /// whose size depends on their content.
    pub fn fixed_size(self) -> Option<u64> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    /// The smallest number of bytes one element can take (a string is at least its
    /// 8-byte length, an array at least its 12-byte header). Used to bound counts
    /// against the bytes left in the file before allocating anything.
    pub fn min_size(self) -> u64 {
        match self {
            ValueType::String => 8,
            ValueType::Array => 12,
            other => other.fixed_size().unwrap_or(1),
        }
    }

    /// The name llama.cpp uses for the type (`gguf_type_name`).
    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "str",
            Array => "arr",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// u8
    U8(u8),
    /// i8
    I8(i8),
    /// u16
    U16(u16),
    /// i16
    I16(i16),
    /// u32
    U32(u32),
    /// i32
    I32(i32),
    /// f32
    F32(f32),
    /// bool
    Bool(bool),
    /// UTF-8 string
    String(String),
    /// array
    Array(GgufArray),
    /// u64
    U64(u64),
    /// i64
    I64(i64),
    /// f64
    F64(f64),
}

/// A typed array. Arrays of arrays are allowed by the format (llama.cpp's own reader
/// rejects them; ours reads them to a bounded depth).
#[derive(Debug, Clone, PartialEq)]
pub enum GgufArray {
    /// u8 elements
    U8(Vec<u8>),
    /// i8 elements
    I8(Vec<i8>),
    /// u16 elements
    U16(Vec<u16>),
    /// i16 elements
    I16(Vec<i16>),
    /// u32 elements
    U32(Vec<u32>),
    /// i32 elements
    I32(Vec<i32>),
    /// f32 elements
    F32(Vec<f32>),
    /// bool elements
    Bool(Vec<bool>),
    /// string elements
    String(Vec<String>),
    /// nested arrays
    Array(Vec<GgufArray>),
    /// u64 elements
    U64(Vec<u64>),
    /// i64 elements
    I64(Vec<i64>),
    /// f64 elements
    F64(Vec<f64>),
}

/// Calls `$body` with `$v` bound to the inner vector, whatever the element type.
macro_rules! each_array {
    ($arr:expr, $v:ident => $body:expr) => {
        match $arr {
            GgufArray::U8($v) => $body,
            GgufArray::I8($v) => $body,
            GgufArray::U16($v) => $body,
            GgufArray::I16($v) => $body,
            GgufArray::U32($v) => $body,
            GgufArray::I32($v) => $body,
            GgufArray::F32($v) => $body,
            GgufArray::Bool($v) => $body,
            GgufArray::String($v) => $body,
            GgufArray::Array($v) => $body,
            GgufArray::U64($v) => $body,
            GgufArray::I64($v) => $body,
            GgufArray::F64($v) => $body,
        }
    };
}

impl GgufArray {
    /// The element type.
    pub fn elem_type(&self) -> ValueType {
        match self {
            GgufArray::U8(_) => ValueType::U8,
            GgufArray::I8(_) => ValueType::I8,
            GgufArray::U16(_) => ValueType::U16,
            GgufArray::I16(_) => ValueType::I16,
            GgufArray::U32(_) => ValueType::U32,
            GgufArray::I32(_) => ValueType::I32,
            GgufArray::F32(_) => ValueType::F32,
            GgufArray::Bool(_) => ValueType::Bool,
            GgufArray::String(_) => ValueType::String,
            GgufArray::Array(_) => ValueType::Array,
            GgufArray::U64(_) => ValueType::U64,
            GgufArray::I64(_) => ValueType::I64,
            GgufArray::F64(_) => ValueType::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        each_array!(self, v => v.len())
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as an unsigned integer, when the elements are integers and it fits.
    pub fn get_u64(&self, i: usize) -> Option<u64> {
        match self {
            GgufArray::U8(v) => v.get(i).map(|&x| u64::from(x)),
            GgufArray::U16(v) => v.get(i).map(|&x| u64::from(x)),
            GgufArray::U32(v) => v.get(i).map(|&x| u64::from(x)),
            GgufArray::U64(v) => v.get(i).copied(),
            GgufArray::I8(v) => v.get(i).and_then(|&x| u64::try_from(x).ok()),
            GgufArray::I16(v) => v.get(i).and_then(|&x| u64::try_from(x).ok()),
            GgufArray::I32(v) => v.get(i).and_then(|&x| u64::try_from(x).ok()),
            GgufArray::I64(v) => v.get(i).and_then(|&x| u64::try_from(x).ok()),
            _ => None,
        }
    }

    /// Element `i` as a bool (bool arrays only).
    pub fn get_bool(&self, i: usize) -> Option<bool> {
        match self {
            GgufArray::Bool(v) => v.get(i).copied(),
            _ => None,
        }
    }
}

impl GgufValue {
    /// The value's type tag.
    pub fn value_type(&self) -> ValueType {
        match self {
            GgufValue::U8(_) => ValueType::U8,
            GgufValue::I8(_) => ValueType::I8,
            GgufValue::U16(_) => ValueType::U16,
            GgufValue::I16(_) => ValueType::I16,
            GgufValue::U32(_) => ValueType::U32,
            GgufValue::I32(_) => ValueType::I32,
            GgufValue::F32(_) => ValueType::F32,
            GgufValue::Bool(_) => ValueType::Bool,
            GgufValue::String(_) => ValueType::String,
            GgufValue::Array(_) => ValueType::Array,
            GgufValue::U64(_) => ValueType::U64,
            GgufValue::I64(_) => ValueType::I64,
            GgufValue::F64(_) => ValueType::F64,
        }
    }

    /// The value as an unsigned integer, for any integer type holding a value >= 0.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            GgufValue::U8(x) => Some(u64::from(*x)),
            GgufValue::U16(x) => Some(u64::from(*x)),
            GgufValue::U32(x) => Some(u64::from(*x)),
            GgufValue::U64(x) => Some(*x),
            GgufValue::I8(x) => u64::try_from(*x).ok(),
            GgufValue::I16(x) => u64::try_from(*x).ok(),
            GgufValue::I32(x) => u64::try_from(*x).ok(),
            GgufValue::I64(x) => u64::try_from(*x).ok(),
            _ => None,
        }
    }

    /// The value as a float, for float and integer types.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            GgufValue::F32(x) => Some(f64::from(*x)),
            GgufValue::F64(x) => Some(*x),
            GgufValue::I8(x) => Some(f64::from(*x)),
            GgufValue::I16(x) => Some(f64::from(*x)),
            GgufValue::I32(x) => Some(f64::from(*x)),
            GgufValue::I64(x) => Some(*x as f64),
            other => other.as_u64().map(|x| x as f64),
        }
    }

    /// The value as a string slice.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            GgufValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The value as an array.
    pub fn as_array(&self) -> Option<&GgufArray> {
        match self {
            GgufValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

impl fmt::Display for GgufValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GgufValue::U8(x) => write!(f, "{x}"),
            GgufValue::I8(x) => write!(f, "{x}"),
            GgufValue::U16(x) => write!(f, "{x}"),
            GgufValue::I16(x) => write!(f, "{x}"),
            GgufValue::U32(x) => write!(f, "{x}"),
            GgufValue::I32(x) => write!(f, "{x}"),
            GgufValue::F32(x) => write!(f, "{x}"),
            GgufValue::Bool(x) => write!(f, "{x}"),
            GgufValue::String(x) => write!(f, "{x:?}"),
            GgufValue::U64(x) => write!(f, "{x}"),
            GgufValue::I64(x) => write!(f, "{x}"),
            GgufValue::F64(x) => write!(f, "{x}"),
            GgufValue::Array(a) => write!(f, "[{}; {}]", a.elem_type().name(), a.len()),
        }
    }
}

impl Serialize for GgufArray {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        each_array!(self, v => {
            for item in v {
                seq.serialize_element(item)?;
            }
        });
        seq.end()
    }
}

impl Serialize for GgufValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            GgufValue::U8(x) => x.serialize(serializer),
            GgufValue::I8(x) => x.serialize(serializer),
            GgufValue::U16(x) => x.serialize(serializer),
            GgufValue::I16(x) => x.serialize(serializer),
            GgufValue::U32(x) => x.serialize(serializer),
            GgufValue::I32(x) => x.serialize(serializer),
            GgufValue::F32(x) => x.serialize(serializer),
            GgufValue::Bool(x) => x.serialize(serializer),
            GgufValue::String(x) => x.serialize(serializer),
            GgufValue::U64(x) => x.serialize(serializer),
            GgufValue::I64(x) => x.serialize(serializer),
            GgufValue::F64(x) => x.serialize(serializer),
            GgufValue::Array(a) => a.serialize(serializer),
        }
    }
}
