//! The GGUF layer on its own: round trips, byte orders, split models, hostile input.
//! (The comparisons with llama.cpp's own reader are in `llama_oracle.rs`.)

use proptest::prelude::*;
use std::io::Cursor;
use std::path::Path;
use strix_run::gguf::{
    read_file, read_header, ByteOrder, GgmlType, GgufArray, GgufError, GgufModel, GgufValue,
    GgufWriter, Problem, TensorData, KEY_SPLIT_COUNT, KEY_SPLIT_NO, KEY_SPLIT_TENSORS_COUNT,
    MAX_HEADER_MEMORY,
};

fn sample_writer(order: ByteOrder) -> GgufWriter {
    let mut w = GgufWriter::new().byte_order(order);
    w.set("general.architecture", GgufValue::String("llama".into()));
    w.set("llama.block_count", GgufValue::U32(2));
    w.set("t.f64", GgufValue::F64(0.125));
    w.set("t.i16", GgufValue::I16(-3));
    w.set(
        "t.nested",
        GgufValue::Array(GgufArray::Array(vec![
            GgufArray::U16(vec![1, 2]),
            GgufArray::String(vec!["x".into(), "yz".into()]),
            GgufArray::Array(vec![GgufArray::Bool(vec![true])]),
        ])),
    );
    w.add_tensor("blk.0.attn_q.weight", GgmlType::Q4_K, &[256, 2])
        .expect("tensor");
    w.add_tensor("blk.1.attn_q.weight", GgmlType::F32, &[5])
        .expect("tensor");
    w
}

fn header_bytes(w: &GgufWriter) -> Vec<u8> {
    let mut bytes = w.header_bytes();
    let data: u64 = w
        .tensors()
        .last()
        .map(|t| t.offset + t.n_bytes)
        .unwrap_or(0);
    bytes.resize(bytes.len() + data as usize, 0);
    bytes
}

#[test]
fn round_trip_both_byte_orders_and_nested_arrays() {
    for order in [ByteOrder::Little, ByteOrder::Big] {
        let w = sample_writer(order);
        let h = read_header(Cursor::new(header_bytes(&w)), Path::new("mem.gguf")).expect("reads");
        assert_eq!(h.byte_order, order);
        assert_eq!(h.version, 3);
        assert_eq!(h.metadata, w.metadata());
        assert_eq!(h.tensors, w.tensors());
        // q4_K: 256 elements per 144-byte block, two rows.
        assert_eq!(h.tensors[0].n_bytes, 288);
        // Second tensor starts at the first one's size padded to 32.
        assert_eq!(h.tensors[1].offset, 288);
    }
}

#[test]
fn big_endian_file_is_byte_swapped_on_disk() {
    let le = sample_writer(ByteOrder::Little).header_bytes();
    let be = sample_writer(ByteOrder::Big).header_bytes();
    assert_eq!(&le[4..8], &[3, 0, 0, 0]);
    assert_eq!(&be[4..8], &[0, 0, 0, 3]);
}

#[test]
fn sparse_file_has_full_size_but_little_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sparse.gguf");
    let mut w = GgufWriter::new();
    w.set("general.architecture", GgufValue::String("llama".into()));
    // 4096 x 262144 f16 = 2 GiB of data.
    w.add_tensor("token_embd.weight", GgmlType::F16, &[4096, 262_144])
        .expect("tensor");
    let summary = w.write(&path, TensorData::Sparse).expect("write");
    let meta = std::fs::metadata(&path).expect("stat");
    assert_eq!(meta.len(), summary.file_bytes);
    assert_eq!(
        summary.file_bytes,
        summary.header_bytes + 2 * 4096 * 262_144
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        assert!(
            meta.blocks() * 512 < 1 << 20,
            "sparse file uses {} bytes on disk",
            meta.blocks() * 512
        );
    }
    let (h, stats) = read_file(&path).expect("reads");
    assert_eq!(h.tensors.len(), 1);
    assert!(
        stats.bytes_read < 1 << 20,
        "read {} bytes",
        stats.bytes_read
    );
}

fn le_header(n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&n_tensors.to_le_bytes());
    b.extend_from_slice(&n_kv.to_le_bytes());
    b
}

fn problem_of(bytes: Vec<u8>) -> Problem {
    match read_header(Cursor::new(bytes), Path::new("hostile.gguf")) {
        Err(GgufError::Malformed { problem, .. }) => problem,
        other => panic!("expected a malformed-file error, got {other:?}"),
    }
}

/// The header of a file whose one key is an array of `count` empty strings, and a hole
/// of `hole` bytes after it (a sparse file: no disk used).
fn sparse_string_array(dir: &Path, count: u64, hole: u64) -> std::path::PathBuf {
    let mut b = le_header(0, 1);
    b.extend_from_slice(&1u64.to_le_bytes());
    b.push(b'k');
    b.extend_from_slice(&9u32.to_le_bytes()); // array
    b.extend_from_slice(&8u32.to_le_bytes()); // of strings
    b.extend_from_slice(&count.to_le_bytes());
    let path = dir.join(format!("strings-{count}.gguf"));
    let file = std::fs::File::create(&path).expect("create");
    std::io::Write::write_all(&mut &file, &b).expect("write");
    file.set_len(b.len() as u64 + hole).expect("a sparse hole");
    path
}

/// A billion empty strings fit in an 8 GiB hole but would take 24 GiB of memory: refused
/// before any is read. A million are read (24 MiB).
#[test]
fn metadata_larger_than_any_real_header_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hole = 1 << 33;
    let path = sparse_string_array(dir.path(), 1 << 30, hole);
    let header_end = std::fs::metadata(&path).expect("stat").len() - hole;
    match read_file(&path) {
        Err(GgufError::Malformed {
            problem: Problem::HeaderTooLarge { max },
            offset,
            ..
        }) => {
            assert_eq!(max, MAX_HEADER_MEMORY);
            assert_eq!(
                offset, header_end,
                "refused where the count ends, before reading"
            );
        }
        other => panic!("expected the metadata to be refused, got {other:?}"),
    }
    let path = sparse_string_array(dir.path(), 1 << 20, 1 << 23);
    let (header, _) = read_file(&path).expect("a million empty strings read");
    match header.get("k") {
        Some(GgufValue::Array(GgufArray::String(v))) => assert_eq!(v.len(), 1 << 20),
        other => panic!("{other:?}"),
    }
}

#[test]
fn absurd_counts_are_refused_without_allocating() {
    // 2^60 tensors and 2^60 keys in a 24-byte file.
    assert!(matches!(
        problem_of(le_header(1 << 60, 0)),
        Problem::CountTooLarge { what: "tensor", .. }
    ));
    assert!(matches!(
        problem_of(le_header(0, 1 << 60)),
        Problem::CountTooLarge { .. }
    ));
    // A string claiming 2^62 bytes.
    let mut b = le_header(0, 1);
    b.extend_from_slice(&(1u64 << 62).to_le_bytes());
    assert!(matches!(problem_of(b), Problem::CountTooLarge { .. }));
    // An array claiming 2^40 u64 elements.
    let mut b = le_header(0, 1);
    b.extend_from_slice(&1u64.to_le_bytes());
    b.push(b'k');
    b.extend_from_slice(&9u32.to_le_bytes());
    b.extend_from_slice(&10u32.to_le_bytes());
    b.extend_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(
        problem_of(b),
        Problem::CountTooLarge {
            what: "array element",
            ..
        }
    ));
}

#[test]
fn hostile_headers_give_named_problems() {
    assert!(matches!(
        problem_of(b"GGML\x03\0\0\0".to_vec()),
        Problem::BadMagic(_)
    ));
    let mut v1 = b"GGUF".to_vec();
    v1.extend_from_slice(&1u32.to_le_bytes());
    v1.extend_from_slice(&[0; 16]);
    assert_eq!(problem_of(v1), Problem::UnsupportedVersion(1));
    // Non-UTF-8 key.
    let mut b = le_header(0, 1);
    b.extend_from_slice(&2u64.to_le_bytes());
    b.extend_from_slice(&[0xff, 0xfe]);
    b.extend_from_slice(&4u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    assert!(matches!(problem_of(b), Problem::InvalidUtf8 { .. }));
    // Unknown value type 13.
    let mut b = le_header(0, 1);
    b.extend_from_slice(&1u64.to_le_bytes());
    b.push(b'k');
    b.extend_from_slice(&13u32.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    assert!(matches!(
        problem_of(b),
        Problem::UnknownValueType { tag: 13, .. }
    ));
}

fn tensor_header(name: &str, dims: &[u64], type_id: u32, offset: u64) -> Vec<u8> {
    let mut b = le_header(1, 0);
    b.extend_from_slice(&(name.len() as u64).to_le_bytes());
    b.extend_from_slice(name.as_bytes());
    b.extend_from_slice(&(dims.len() as u32).to_le_bytes());
    for d in dims {
        b.extend_from_slice(&d.to_le_bytes());
    }
    b.extend_from_slice(&type_id.to_le_bytes());
    b.extend_from_slice(&offset.to_le_bytes());
    b.resize(b.len() + 4096, 0);
    b
}

#[test]
fn hostile_tensor_infos_give_named_problems() {
    assert!(matches!(
        problem_of(tensor_header("a", &[32], 43, 0)),
        Problem::UnknownGgmlType { id: 43, .. }
    ));
    assert!(matches!(
        problem_of(tensor_header("a", &[32], 31, 0)),
        Problem::RemovedGgmlType { id: 31, .. }
    ));
    assert!(matches!(
        problem_of(tensor_header("a", &[100], 12, 0)),
        Problem::PartialBlock { .. }
    ));
    assert!(matches!(
        problem_of(tensor_header("a", &[1 << 40, 1 << 40], 0, 0)),
        Problem::SizeOverflow { .. }
    ));
    assert!(matches!(
        problem_of(tensor_header("a", &[u64::MAX], 0, 0)),
        Problem::BadDim { .. }
    ));
    assert!(matches!(
        problem_of(tensor_header("a", &[1, 1, 1, 1, 1], 0, 0)),
        Problem::TooManyDims { n_dims: 5, .. }
    ));
    assert!(matches!(
        problem_of(tensor_header("a", &[32], 0, 64)),
        Problem::BadTensorOffset {
            offset: 64,
            expected: 0,
            ..
        }
    ));
    let long = "x".repeat(64);
    assert!(matches!(
        problem_of(tensor_header(&long, &[32], 0, 0)),
        Problem::TensorNameTooLong(_)
    ));
    // Data (1 GiB of f32) beyond the end of a 4 KiB file.
    assert!(matches!(
        problem_of(tensor_header("a", &[1 << 28], 0, 0)),
        Problem::DataPastEnd { .. }
    ));
}

#[test]
fn errors_name_the_file_the_offset_and_what_to_do() {
    let w = sample_writer(ByteOrder::Little);
    let mut bytes = header_bytes(&w);
    bytes.truncate(40);
    let err =
        read_header(Cursor::new(bytes), Path::new("/models/qwen.gguf")).expect_err("truncated");
    let msg = err.to_string();
    assert!(msg.contains("/models/qwen.gguf"), "{msg}");
    assert!(msg.contains("offset"), "{msg}");
    assert!(msg.contains("download it again"), "{msg}");
}

fn write_split(
    dir: &Path,
    count: u32,
    skip: Option<u32>,
    wrong_no: Option<u32>,
) -> std::path::PathBuf {
    for no in 1..=count {
        if skip == Some(no) {
            continue;
        }
        let mut w = GgufWriter::new();
        w.set("general.architecture", GgufValue::String("llama".into()));
        let recorded_no = if wrong_no == Some(no) { no } else { no - 1 };
        w.set(KEY_SPLIT_NO, GgufValue::U16(recorded_no as u16));
        w.set(KEY_SPLIT_COUNT, GgufValue::U16(count as u16));
        w.set(KEY_SPLIT_TENSORS_COUNT, GgufValue::I32(count as i32 * 2));
        for t in 0..2 {
            w.add_tensor(&format!("blk.{no}.t{t}.weight"), GgmlType::F32, &[8])
                .expect("tensor");
        }
        w.write(
            &dir.join(format!("m-{no:05}-of-{count:05}.gguf")),
            TensorData::Sparse,
        )
        .expect("write");
    }
    dir.join(format!("m-00002-of-{count:05}.gguf"))
}

#[test]
fn any_shard_finds_the_whole_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let second = write_split(dir.path(), 4, None, None);
    let model = GgufModel::open(&second).expect("opens");
    assert_eq!(model.shards.len(), 4);
    assert_eq!(model.tensors().count(), 8);
    assert!(model.shards[0].path.ends_with("m-00001-of-00004.gguf"));
}

#[test]
fn missing_and_mismatched_shards_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let second = write_split(dir.path(), 4, Some(3), None);
    let err = GgufModel::open(&second).expect_err("shard 3 missing");
    assert!(
        matches!(
            err,
            GgufError::MissingShard {
                no: 3,
                count: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("m-00003-of-00004.gguf"), "{err}");

    let dir = tempfile::tempdir().expect("tempdir");
    let second = write_split(dir.path(), 3, None, Some(3));
    let err = GgufModel::open(&second).expect_err("shard 3 claims the wrong number");
    assert!(matches!(err, GgufError::ShardMismatch { .. }), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any truncation or corruption of a valid header gives an error or a header,
    /// never a panic.
    #[test]
    fn corrupted_headers_never_panic(
        cut in 0usize..2000,
        flips in proptest::collection::vec((0usize..2000, any::<u8>()), 0..6),
        big_endian in any::<bool>(),
    ) {
        let order = if big_endian { ByteOrder::Big } else { ByteOrder::Little };
        let mut bytes = header_bytes(&sample_writer(order));
        for (pos, val) in flips {
            if let Some(b) = bytes.get_mut(pos) {
                *b = val;
            }
        }
        bytes.truncate(cut.min(bytes.len()));
        let _ = read_header(Cursor::new(bytes), Path::new("p.gguf"));
    }

    /// Random bytes after a valid magic and version never panic either.
    #[test]
    fn random_headers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = b"GGUF\x03\0\0\0".to_vec();
        bytes.extend(body);
        let _ = read_header(Cursor::new(bytes), Path::new("r.gguf"));
    }
}
