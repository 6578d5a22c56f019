//! llama.cpp's own GGUF reader and writer (through `llama-cpp-sys-2`, built from the
//! pinned source), turned into this crate's value types so tests can compare the
//! two implementations field by field.

#![allow(dead_code)]

use llama_cpp_sys_2 as sys;
use std::ffi::{c_void, CStr, CString};
use std::path::Path;
use strix_run::gguf::{GgmlType, GgufArray, GgufValue, ValueType};

/// What llama.cpp's reader reports about a file.
#[derive(Debug)]
pub struct LlamaView {
    pub version: u32,
    pub alignment: u64,
    pub data_offset: u64,
    pub metadata: Vec<(String, GgufValue)>,
    /// (name, type id, shape without trailing 1s beyond n_dims is not known: all 4 dims), offset, size
    pub tensors: Vec<LlamaTensor>,
}

#[derive(Debug, PartialEq)]
pub struct LlamaTensor {
    pub name: String,
    pub type_id: u32,
    pub ne: [u64; 4],
    pub offset: u64,
    pub size: u64,
}

fn cstr(p: *const std::os::raw::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: llama.cpp returns NUL-terminated strings owned by the context.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Reads a file with `gguf_init_from_file` (metadata only, no tensor data).
/// `None` when llama.cpp rejects the file.
pub fn read(path: &Path) -> Option<LlamaView> {
    let c_path = CString::new(path.to_str()?).ok()?;
    let params = sys::gguf_init_params {
        no_alloc: true,
        ctx: std::ptr::null_mut(),
    };
    // SAFETY: valid C string; the context is freed below.
    let ctx = unsafe { sys::gguf_init_from_file(c_path.as_ptr(), params) };
    if ctx.is_null() {
        return None;
    }
    // SAFETY: ctx is a valid context for the whole block.
    let view = unsafe { view(ctx) };
    unsafe { sys::gguf_free(ctx) };
    Some(view)
}

unsafe fn array_value(ctx: *const sys::gguf_context, i: i64) -> GgufArray {
    let n = sys::gguf_get_arr_n(ctx, i);
    let ty = ValueType::from_tag(sys::gguf_get_arr_type(ctx, i)).expect("llama.cpp array type");
    if ty == ValueType::String {
        return GgufArray::String(
            (0..n)
                .map(|j| cstr(sys::gguf_get_arr_str(ctx, i, j)))
                .collect(),
        );
    }
    let data = sys::gguf_get_arr_data(ctx, i);
    macro_rules! slice {
        ($t:ty) => {
            if n == 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(data as *const $t, n).to_vec()
            }
        };
    }
    match ty {
        ValueType::U8 => GgufArray::U8(slice!(u8)),
        ValueType::I8 => GgufArray::I8(slice!(i8)),
        ValueType::U16 => GgufArray::U16(slice!(u16)),
        ValueType::I16 => GgufArray::I16(slice!(i16)),
        ValueType::U32 => GgufArray::U32(slice!(u32)),
        ValueType::I32 => GgufArray::I32(slice!(i32)),
        ValueType::F32 => GgufArray::F32(slice!(f32)),
        ValueType::Bool => GgufArray::Bool(slice!(u8).into_iter().map(|b| b != 0).collect()),
        ValueType::U64 => GgufArray::U64(slice!(u64)),
        ValueType::I64 => GgufArray::I64(slice!(i64)),
        ValueType::F64 => GgufArray::F64(slice!(f64)),
        ValueType::String | ValueType::Array => {
            unreachable!("handled above / rejected by llama.cpp")
        }
    }
}

unsafe fn view(ctx: *const sys::gguf_context) -> LlamaView {
    let n_kv = sys::gguf_get_n_kv(ctx);
    let mut metadata = Vec::new();
    for i in 0..n_kv {
        let key = cstr(sys::gguf_get_key(ctx, i));
        let ty = ValueType::from_tag(sys::gguf_get_kv_type(ctx, i)).expect("llama.cpp kv type");
        let value = match ty {
            ValueType::U8 => GgufValue::U8(sys::gguf_get_val_u8(ctx, i)),
            ValueType::I8 => GgufValue::I8(sys::gguf_get_val_i8(ctx, i)),
            ValueType::U16 => GgufValue::U16(sys::gguf_get_val_u16(ctx, i)),
            ValueType::I16 => GgufValue::I16(sys::gguf_get_val_i16(ctx, i)),
            ValueType::U32 => GgufValue::U32(sys::gguf_get_val_u32(ctx, i)),
            ValueType::I32 => GgufValue::I32(sys::gguf_get_val_i32(ctx, i)),
            ValueType::F32 => GgufValue::F32(sys::gguf_get_val_f32(ctx, i)),
            ValueType::Bool => GgufValue::Bool(sys::gguf_get_val_bool(ctx, i)),
            ValueType::String => GgufValue::String(cstr(sys::gguf_get_val_str(ctx, i))),
            ValueType::U64 => GgufValue::U64(sys::gguf_get_val_u64(ctx, i)),
            ValueType::I64 => GgufValue::I64(sys::gguf_get_val_i64(ctx, i)),
            ValueType::F64 => GgufValue::F64(sys::gguf_get_val_f64(ctx, i)),
            ValueType::Array => GgufValue::Array(array_value(ctx, i)),
        };
        metadata.push((key, value));
    }
    let n_tensors = sys::gguf_get_n_tensors(ctx);
    let mut tensors = Vec::new();
    for i in 0..n_tensors {
        let ne_ptr = sys::gguf_get_tensor_ne(ctx, i);
        let ne_slice = std::slice::from_raw_parts(ne_ptr, 4);
        tensors.push(LlamaTensor {
            name: cstr(sys::gguf_get_tensor_name(ctx, i)),
            type_id: sys::gguf_get_tensor_type(ctx, i),
            ne: [
                ne_slice[0] as u64,
                ne_slice[1] as u64,
                ne_slice[2] as u64,
                ne_slice[3] as u64,
            ],
            offset: sys::gguf_get_tensor_offset(ctx, i) as u64,
            size: sys::gguf_get_tensor_size(ctx, i) as u64,
        });
    }
    LlamaView {
        version: sys::gguf_get_version(ctx),
        alignment: sys::gguf_get_alignment(ctx) as u64,
        data_offset: sys::gguf_get_data_offset(ctx) as u64,
        metadata,
        tensors,
    }
}

/// ggml's own block size and bytes per block for a type id.
pub fn ggml_sizes(id: u32) -> (i64, usize) {
    // SAFETY: plain table lookups for ids below GGML_TYPE_COUNT.
    unsafe { (sys::ggml_blck_size(id), sys::ggml_type_size(id)) }
}

/// Writes a GGUF file with llama.cpp's writer: the given metadata (no nested arrays)
/// and tensors filled with a byte pattern.
pub fn write(
    path: &Path,
    metadata: &[(String, GgufValue)],
    tensors: &[(String, GgmlType, Vec<i64>)],
) -> bool {
    unsafe {
        let g = sys::gguf_init_empty();
        for (key, value) in metadata {
            let k = CString::new(key.as_str()).expect("key");
            let k = k.as_ptr();
            match value {
                GgufValue::U8(x) => sys::gguf_set_val_u8(g, k, *x),
                GgufValue::I8(x) => sys::gguf_set_val_i8(g, k, *x),
                GgufValue::U16(x) => sys::gguf_set_val_u16(g, k, *x),
                GgufValue::I16(x) => sys::gguf_set_val_i16(g, k, *x),
                GgufValue::U32(x) => sys::gguf_set_val_u32(g, k, *x),
                GgufValue::I32(x) => sys::gguf_set_val_i32(g, k, *x),
                GgufValue::F32(x) => sys::gguf_set_val_f32(g, k, *x),
                GgufValue::Bool(x) => sys::gguf_set_val_bool(g, k, *x),
                GgufValue::U64(x) => sys::gguf_set_val_u64(g, k, *x),
                GgufValue::I64(x) => sys::gguf_set_val_i64(g, k, *x),
                GgufValue::F64(x) => sys::gguf_set_val_f64(g, k, *x),
                GgufValue::String(s) => {
                    let v = CString::new(s.as_str()).expect("value");
                    sys::gguf_set_val_str(g, k, v.as_ptr())
                }
                GgufValue::Array(GgufArray::String(items)) => {
                    let owned: Vec<CString> = items
                        .iter()
                        .map(|s| CString::new(s.as_str()).expect("item"))
                        .collect();
                    let mut ptrs: Vec<*const std::os::raw::c_char> =
                        owned.iter().map(|c| c.as_ptr()).collect();
                    sys::gguf_set_arr_str(g, k, ptrs.as_mut_ptr(), ptrs.len())
                }
                GgufValue::Array(arr) => {
                    let (ptr, n): (*const c_void, usize) = match arr {
                        GgufArray::U8(v) => (v.as_ptr().cast(), v.len()),
                        GgufArray::I8(v) => (v.as_ptr().cast(), v.len()),
                        GgufArray::U16(v) => (v.as_ptr().cast(), v.len()),
                        GgufArray::I16(v) => (v.as_ptr().cast(), v.len()),
                        GgufArray::U32(v) => (v.as_ptr().cast(), v.len()),
                        GgufArray::I32(v) => (v.as_ptr().cast(), v.len()),
                        GgufArray::F32(v) => (v.as_ptr().cast(), v.len()),
                        GgufArray::U64(v) => (v.as_ptr().cast(), v.len()),
                        GgufArray::I64(v) => (v.as_ptr().cast(), v.len()),
                        GgufArray::F64(v) => (v.as_ptr().cast(), v.len()),
                        GgufArray::Bool(v) => (v.as_ptr().cast(), v.len()),
                        GgufArray::String(_) | GgufArray::Array(_) => {
                            panic!("not supported by llama.cpp")
                        }
                    };
                    sys::gguf_set_arr_data(g, k, arr.elem_type() as u32, ptr, n)
                }
            }
        }
        let total: usize = tensors
            .iter()
            .map(|(_, ty, ne)| {
                let n: i64 = ne.iter().product();
                (n as usize / sys::ggml_blck_size(ty.id()) as usize) * sys::ggml_type_size(ty.id())
                    + 256
            })
            .sum::<usize>()
            + (tensors.len() + 1) * sys::ggml_tensor_overhead();
        let ctx = sys::ggml_init(sys::ggml_init_params {
            mem_size: total,
            mem_buffer: std::ptr::null_mut(),
            no_alloc: false,
        });
        for (i, (name, ty, ne)) in tensors.iter().enumerate() {
            let t = sys::ggml_new_tensor(ctx, ty.id(), ne.len() as i32, ne.as_ptr());
            let n = CString::new(name.as_str()).expect("name");
            sys::ggml_set_name(t, n.as_ptr());
            let bytes = sys::ggml_nbytes(t);
            let data = sys::ggml_get_data(t) as *mut u8;
            for j in 0..bytes {
                *data.add(j) = (i + j) as u8 & 0x3f;
            }
            sys::gguf_add_tensor(g, t);
        }
        let p = CString::new(path.to_str().expect("path")).expect("path");
        let ok = sys::gguf_write_to_file(g, p.as_ptr(), false);
        sys::ggml_free(ctx);
        sys::gguf_free(g);
        ok
    }
}
