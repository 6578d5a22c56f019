//! Split models whose shards do not belong together: another quantisation's shard,
//! split keys that disagree, tensors twice or missing, metadata that differs, a shard
//! cut short. Consistent sets, llama.cpp's own per-layer quantisations and dynamic
//! quantisations whose types vary by layer are still accepted.

use assert_cmd::Command;
use predicates::prelude::*;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use strix_run::gguf::{
    read_header, GgmlType, GgufError, GgufModel, GgufValue, GgufWriter, ReadStats, Shard,
    TensorData, KEY_SPLIT_COUNT, KEY_SPLIT_NO, KEY_SPLIT_TENSORS_COUNT,
};
use strix_run::model::presets::{find_preset, presets};
use strix_run::model::synth::{quant_names, synth, tensor_plan, PlannedTensor, SynthRequest};
use strix_run::model::ModelMeta;

/// Writes `preset` at `quant` in `shards` sparse files named `prefix-0000N-of-0000M.gguf`
/// in `dir`; returns the shard paths.
fn synth_split(dir: &Path, prefix: &str, preset: &str, quant: &str, shards: u32) -> Vec<PathBuf> {
    let summary = synth(&SynthRequest {
        preset: preset.into(),
        quant: Some(quant.into()),
        out: dir.join(format!("{prefix}.gguf")),
        sparse: true,
        shards,
        seed: 0,
        existing: strix_run::files::Existing::Replace,
    })
    .expect("synth writes the model");
    let files = summary.files;
    assert_eq!(files.len() as u32, shards);
    files
}

/// The first shard's path.
fn first(files: &[PathBuf]) -> &Path {
    &files[0]
}

/// A `ShardMismatch` error's shard and problem.
fn mismatch(err: GgufError) -> (PathBuf, String) {
    let text = err.to_string();
    match err {
        GgufError::ShardMismatch { path, problem } => (path, problem),
        other => panic!("expected a shard mismatch, got {other:?}: {text}"),
    }
}

/// A header in memory, read as a file of its full size (data reads as zeros).
struct SparseBytes {
    header: Vec<u8>,
    len: u64,
    pos: u64,
}

impl Read for SparseBytes {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        let at = self.pos as usize;
        // the header, then zeros (reads stop at the header's end, so one call gives one)
        let n = match self.header.get(at..) {
            Some(rest) if !rest.is_empty() => {
                let n = n.min(rest.len());
                buf[..n].copy_from_slice(&rest[..n]);
                n
            }
            _ => {
                buf[..n].fill(0);
                n
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SparseBytes {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.pos = match pos {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self.len.saturating_add_signed(d),
            SeekFrom::Current(d) => self.pos.saturating_add_signed(d),
        };
        Ok(self.pos)
    }
}

/// Writers with the split keys of shard `i` of `count`, holding `tensors`.
fn shard_writer(
    i: usize,
    count: usize,
    total: usize,
    tensors: &[(String, GgmlType)],
) -> GgufWriter {
    let mut w = GgufWriter::new();
    if i == 0 {
        w.set("general.architecture", GgufValue::String("llama".into()));
    }
    w.set(KEY_SPLIT_NO, GgufValue::U16(i as u16));
    w.set(KEY_SPLIT_COUNT, GgufValue::U16(count as u16));
    w.set(KEY_SPLIT_TENSORS_COUNT, GgufValue::I32(total as i32));
    for (name, ty) in tensors {
        let shape: &[u64] = if name.contains("norm") {
            &[256]
        } else {
            &[256, 16]
        };
        w.add_tensor(name, *ty, shape).expect("tensor");
    }
    w
}

/// Copies `from` over `to` (a shard of another set takes a shard's place).
fn swap_in(from: &Path, to: &Path) {
    std::fs::copy(from, to).expect("copy the shard");
}

#[test]
fn a_shard_from_another_quantisation_is_refused() {
    let q4 = tempfile::tempdir().unwrap();
    let q8 = tempfile::tempdir().unwrap();
    let mine = synth_split(q4.path(), "micro", "micro-dense", "Q4_K_M", 2);
    let other = synth_split(q8.path(), "micro", "micro-dense", "Q8_0", 2);
    GgufModel::open(first(&mine)).expect("the set as written opens");
    swap_in(&other[1], &mine[1]);
    for opened_from in &mine {
        let (path, problem) = mismatch(GgufModel::open(opened_from).expect_err("mixed set"));
        assert_eq!(path, mine[1], "{problem}");
        assert!(problem.contains("another quantisation"), "{problem}");
        assert!(problem.contains("micro-00001-of-00002.gguf"), "{problem}");
        assert!(
            problem.contains("q8_0 here but q4_K there"),
            "the types are named: {problem}"
        );
    }
    let err = ModelMeta::open(first(&mine)).expect_err("the model layer refuses it too");
    assert!(
        err.to_string().contains("micro-00002-of-00002.gguf"),
        "{err}"
    );
    // the other way round: shard 2 of Q4_K_M among Q8_0
    let q8_again = tempfile::tempdir().unwrap();
    let other = synth_split(q8_again.path(), "micro", "micro-dense", "Q8_0", 2);
    let q4_again = tempfile::tempdir().unwrap();
    let mine = synth_split(q4_again.path(), "micro", "micro-dense", "Q4_K_M", 2);
    swap_in(&mine[1], &other[1]);
    let (path, _) = mismatch(GgufModel::open(&other[0]).expect_err("mixed set"));
    assert_eq!(path, other[1]);
}

#[test]
fn inspect_refuses_a_mixed_set_and_names_the_shard() {
    let q4 = tempfile::tempdir().unwrap();
    let q8 = tempfile::tempdir().unwrap();
    let mine = synth_split(q4.path(), "micro", "micro-dense", "Q4_K_M", 2);
    let other = synth_split(q8.path(), "micro", "micro-dense", "Q8_0", 2);
    swap_in(&other[1], &mine[1]);
    Command::cargo_bin("strix-run")
        .unwrap()
        .env_remove("STRIX_MODELS")
        .arg("inspect")
        .arg(first(&mine))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(mine[1].to_str().unwrap()))
        .stderr(predicate::str::contains("another quantisation"));
}

/// `preset` at `quant` in `shards` shards, shard `k` with the types `other` gives its
/// tensors: a shard of another quantisation split at the same tensors (gguf-split's
/// default, `--split-max-tensors`, splits every quantisation of a model alike).
fn same_layout_other_types(
    preset: &str,
    quant: &str,
    other: &str,
    shards: usize,
    k: usize,
) -> Vec<Shard> {
    let p = find_preset(preset).unwrap();
    let mut groups = split_by_bytes(&tensor_plan(p, quant).unwrap(), shards).unwrap();
    let types = tensor_plan(p, other).unwrap();
    for t in &mut groups[k] {
        t.ggml_type = types.iter().find(|x| x.name == t.name).unwrap().ggml_type;
    }
    shards_of(&groups)
}

#[test]
fn another_quantisation_split_at_the_same_tensors_is_refused() {
    // Q6_K shares Q4_K_M's type for attn_v and ffn_down in some layers: the roles
    // quantised alike in every layer still tell them apart
    for (preset, quant, other) in [
        ("micro-dense", "Q4_K_M", "Q6_K"),
        ("micro-dense", "Q4_K_M", "Q8_0"),
        ("micro-moe", "Q4_K_M", "Q5_K_M"),
        ("qwen3-30b-a3b", "Q4_K_M", "IQ2_XXS"),
        ("qwen3-8b", "Q8_0", "Q4_K_M"),
    ] {
        // (shard 4 of 4 of micro-dense holds one quantised layer tensor and the output
        // layer: too little to judge, see the limit in `GgufModel::from_shards`)
        for (shards, k) in [(2, 1), (4, 1), (4, 2)] {
            let set = same_layout_other_types(preset, quant, other, shards, k);
            let what = format!(
                "{preset} {quant} with shard {} of {shards} from {other}",
                k + 1
            );
            let Err(err) = GgufModel::from_shards(set) else {
                panic!("{what} is accepted");
            };
            let (path, problem) = mismatch(err);
            assert_eq!(
                path,
                PathBuf::from(format!("m-{:05}-of-{shards:05}.gguf", k + 1)),
                "{what}: {problem}"
            );
            assert!(
                problem.contains("another quantisation"),
                "{what}: {problem}"
            );
        }
    }
}

/// Splits `plan` into `shards` contiguous groups of about equal bytes, as gguf-split's
/// `--split-max-size` (and `strix-run synth --shards`) does; `None` when there are
/// fewer tensors than shards.
fn split_by_bytes(plan: &[PlannedTensor], shards: usize) -> Option<Vec<Vec<PlannedTensor>>> {
    if shards == 0 || shards > plan.len() {
        return None;
    }
    let total: u64 = plan.iter().map(PlannedTensor::n_bytes).sum();
    let mut groups: Vec<Vec<PlannedTensor>> = Vec::new();
    let mut current = Vec::new();
    let mut acc = 0u64;
    for (i, t) in plan.iter().enumerate() {
        if !current.is_empty() && groups.len() + 1 < shards {
            let closed = groups.len() as u128;
            let must = plan.len() - i == shards - groups.len() - 1;
            let full = u128::from(acc) * shards as u128 >= u128::from(total) * (closed + 1);
            if must || full {
                groups.push(std::mem::take(&mut current));
            }
        }
        acc += t.n_bytes();
        current.push(t.clone());
    }
    groups.push(current);
    Some(groups)
}

/// Shards in memory holding `groups`, with split keys only. The header is encoded here
/// rather than by [`GgufWriter`], whose check for a repeated name makes a set of 2,000
/// tensors slow to build in a debug build.
fn shards_of(groups: &[Vec<PlannedTensor>]) -> Vec<Shard> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let total: usize = groups.iter().map(Vec::len).sum();
    let count = groups.len();
    groups
        .iter()
        .enumerate()
        .map(|(i, group)| {
            let mut h = b"GGUF".to_vec();
            h.extend_from_slice(&3u32.to_le_bytes());
            h.extend_from_slice(&(group.len() as u64).to_le_bytes());
            h.extend_from_slice(&3u64.to_le_bytes());
            string(&mut h, KEY_SPLIT_NO);
            h.extend_from_slice(&2u32.to_le_bytes()); // u16
            h.extend_from_slice(&(i as u16).to_le_bytes());
            string(&mut h, KEY_SPLIT_COUNT);
            h.extend_from_slice(&2u32.to_le_bytes());
            h.extend_from_slice(&(count as u16).to_le_bytes());
            string(&mut h, KEY_SPLIT_TENSORS_COUNT);
            h.extend_from_slice(&5u32.to_le_bytes()); // i32
            h.extend_from_slice(&(total as i32).to_le_bytes());
            let mut offset = 0u64;
            for t in group {
                string(&mut h, &t.name);
                h.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
                for d in &t.shape {
                    h.extend_from_slice(&d.to_le_bytes());
                }
                h.extend_from_slice(&t.ggml_type.id().to_le_bytes());
                h.extend_from_slice(&offset.to_le_bytes());
                offset += t.n_bytes().next_multiple_of(32);
            }
            h.resize(h.len().next_multiple_of(32), 0);
            let len = h.len() as u64 + offset;
            let path = PathBuf::from(format!("m-{:05}-of-{count:05}.gguf", i + 1));
            let source = SparseBytes {
                header: h,
                len,
                pos: 0,
            };
            Shard {
                header: read_header(source, &path).expect("header reads"),
                path,
                stats: ReadStats { bytes_read: 0 },
            }
        })
        .collect()
}

#[test]
fn every_consistent_synth_set_is_accepted() {
    // llama.cpp's own per-layer choices (attn_v and ffn_down in the first and last
    // layers, IQ3_XS's middle layers, the IQ types' first eighth) and the imitation of
    // Unsloth's dynamic mix, with shard boundaries anywhere: split by size into 2 to 24
    // shards (down to one or two layers per shard) and by tensor count (gguf-split's
    // default is 128)
    for p in presets() {
        for q in quant_names() {
            let plan = tensor_plan(p, q).unwrap();
            let mut layouts: Vec<(String, Vec<Vec<PlannedTensor>>)> = [2, 3, 5, 9, 24]
                .into_iter()
                .filter_map(|n| split_by_bytes(&plan, n).map(|g| (format!("{n} shards"), g)))
                .collect();
            layouts.push((
                "128 tensors a shard".into(),
                plan.chunks(128).map(<[PlannedTensor]>::to_vec).collect(),
            ));
            for (layout, groups) in layouts {
                if let Err(e) = GgufModel::from_shards(shards_of(&groups)) {
                    panic!("{} {q} in {layout} is refused: {e}", p.name);
                }
            }
        }
    }
    // and as synth writes them, through open and the model layer
    let dir = tempfile::tempdir().unwrap();
    for (preset, quant) in [
        ("micro-moe", "UD-IQ2_XXS"),
        ("micro-hybrid", "IQ3_XS"),
        ("micro-dense", "Q3_K_M"),
    ] {
        for shards in [2, 4] {
            let sub = dir.path().join(format!("{preset}-{quant}-{shards}"));
            let files = synth_split(&sub, preset, preset, quant, shards);
            ModelMeta::open(&files[files.len() - 1])
                .unwrap_or_else(|e| panic!("{preset} {quant} in {shards}: {e}"));
        }
    }
}

/// A dynamic quantisation as Unsloth's UD quants make them: attention in every layer at
/// Q6_K/Q8_0, the routed experts' types chosen per layer by `expert_type(layer, role)`,
/// layers `per_shard[i]` in shard `i`. Returns the first shard's path.
fn dynamic_quant(
    dir: &Path,
    per_shard: &[std::ops::Range<usize>],
    expert_type: impl Fn(usize, &str) -> GgmlType,
) -> PathBuf {
    let mut tensors_of = Vec::new();
    for range in per_shard {
        let mut tensors: Vec<(String, GgmlType)> = Vec::new();
        for l in range.clone() {
            tensors.push((format!("blk.{l}.attn_norm.weight"), GgmlType::F32));
            tensors.push((format!("blk.{l}.attn_q.weight"), GgmlType::Q6_K));
            tensors.push((format!("blk.{l}.attn_k.weight"), GgmlType::Q8_0));
            tensors.push((format!("blk.{l}.attn_v.weight"), GgmlType::Q8_0));
            tensors.push((format!("blk.{l}.attn_output.weight"), GgmlType::Q6_K));
            tensors.push((format!("blk.{l}.ffn_norm.weight"), GgmlType::F32));
            tensors.push((format!("blk.{l}.ffn_gate_inp.weight"), GgmlType::F32));
            for role in ["ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"] {
                tensors.push((format!("blk.{l}.{role}.weight"), expert_type(l, role)));
            }
        }
        tensors_of.push(tensors);
    }
    let total: usize = tensors_of.iter().map(Vec::len).sum();
    let count = per_shard.len();
    for (i, tensors) in tensors_of.iter().enumerate() {
        let path = dir.join(format!("ud-{:05}-of-{count:05}.gguf", i + 1));
        shard_writer(i, count, total, tensors)
            .write(&path, TensorData::Sparse)
            .expect("write");
    }
    dir.join(format!("ud-00001-of-{count:05}.gguf"))
}

#[test]
fn a_dynamic_quantisation_whose_types_vary_by_layer_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    // the experts change type exactly at the shard boundary (layers 0-2 Q4_K, then
    // IQ2_XXS): each expert role is one type in shard 1 and another in shard 2, while
    // attention agrees
    let sub = dir.path().join("boundary");
    std::fs::create_dir(&sub).unwrap();
    let first = dynamic_quant(&sub, &[0..3, 3..12], |l, _| {
        if l < 3 {
            GgmlType::Q4_K
        } else {
            GgmlType::IQ2_XXS
        }
    });
    let model = GgufModel::open(&first).expect("a consistent dynamic quant opens");
    assert_eq!(model.shards.len(), 2);
    // types mixed inside shards too, over four shards
    let sub = dir.path().join("mixed");
    std::fs::create_dir(&sub).unwrap();
    let first = dynamic_quant(&sub, &[0..4, 4..9, 9..15, 15..20], |l, role| {
        match (l, role) {
            (0..=2, _) => GgmlType::Q4_K,
            (_, "ffn_down_exps") if l % 5 == 0 => GgmlType::Q3_K,
            (_, "ffn_down_exps") => GgmlType::IQ2_XXS,
            (18.., _) => GgmlType::IQ2_XXS,
            _ => GgmlType::IQ1_S,
        }
    });
    GgufModel::open(&first).expect("a consistent dynamic quant opens");
}

#[test]
fn split_keys_that_disagree_name_the_shard() {
    let tensors = |l: usize| {
        vec![
            (format!("blk.{l}.attn_q.weight"), GgmlType::Q4_K),
            (format!("blk.{l}.ffn_up.weight"), GgmlType::Q4_K),
        ]
    };
    let write = |dir: &Path, writers: Vec<GgufWriter>| -> PathBuf {
        let n = writers.len();
        for (i, w) in writers.iter().enumerate() {
            w.write(
                &dir.join(format!("k-{:05}-of-{n:05}.gguf", i + 1)),
                TensorData::Sparse,
            )
            .unwrap();
        }
        dir.join(format!("k-00001-of-{n:05}.gguf"))
    };
    let second = |dir: &Path| dir.join("k-00002-of-00002.gguf");

    // split.tensors.count differs in shard 2 (shard 1's matches the tensors)
    let dir = tempfile::tempdir().unwrap();
    let mut w2 = shard_writer(1, 2, 4, &tensors(1));
    w2.set(KEY_SPLIT_TENSORS_COUNT, GgufValue::I32(6));
    let first = write(dir.path(), vec![shard_writer(0, 2, 4, &tensors(0)), w2]);
    let (path, problem) = mismatch(GgufModel::open(&first).unwrap_err());
    assert_eq!(path, second(dir.path()), "{problem}");
    assert!(
        problem.contains("split.tensors.count is 6 here but 4"),
        "{problem}"
    );

    // split.count differs in shard 2
    let dir = tempfile::tempdir().unwrap();
    let mut w2 = shard_writer(1, 2, 4, &tensors(1));
    w2.set(KEY_SPLIT_COUNT, GgufValue::U16(3));
    let first = write(dir.path(), vec![shard_writer(0, 2, 4, &tensors(0)), w2]);
    let (path, problem) = mismatch(GgufModel::open(&first).unwrap_err());
    assert_eq!(path, second(dir.path()), "{problem}");
    assert!(problem.contains("split.count is 3"), "{problem}");

    // split.no says shard 1 in the second file
    let dir = tempfile::tempdir().unwrap();
    let mut w2 = shard_writer(1, 2, 4, &tensors(1));
    w2.set(KEY_SPLIT_NO, GgufValue::U16(0));
    let first = write(dir.path(), vec![shard_writer(0, 2, 4, &tensors(0)), w2]);
    let (path, problem) = mismatch(GgufModel::open(&first).unwrap_err());
    assert_eq!(path, second(dir.path()), "{problem}");
    assert!(problem.contains("split.no is 0, expected 1"), "{problem}");

    // a tensor in both shards, the count fitting the sum
    let dir = tempfile::tempdir().unwrap();
    let mut both = tensors(1);
    both.push(tensors(0)[0].clone());
    let first = write(
        dir.path(),
        vec![
            shard_writer(0, 2, 5, &tensors(0)),
            shard_writer(1, 2, 5, &both),
        ],
    );
    let (path, problem) = mismatch(GgufModel::open(&first).unwrap_err());
    assert_eq!(path, second(dir.path()), "{problem}");
    assert!(
        problem.contains("tensor 'blk.0.attn_q.weight' is also in k-00001-of-00002.gguf"),
        "{problem}"
    );

    // tensors missing: the count says 5, the shards hold 4
    let dir = tempfile::tempdir().unwrap();
    let first = write(
        dir.path(),
        vec![
            shard_writer(0, 2, 5, &tensors(0)),
            shard_writer(1, 2, 5, &tensors(1)),
        ],
    );
    let (_, problem) = mismatch(GgufModel::open(&first).unwrap_err());
    assert!(
        problem.contains("split.tensors.count is 5 but the shards hold 4 tensors (2 + 2)"),
        "{problem}"
    );
}

#[test]
fn metadata_a_later_shard_repeats_must_match_the_first() {
    let tensors = |l: usize| vec![(format!("blk.{l}.attn_q.weight"), GgmlType::Q4_K)];
    let dir = tempfile::tempdir().unwrap();
    let write = |file_type_1: GgufValue, file_type_2: GgufValue| -> PathBuf {
        let mut w1 = shard_writer(0, 2, 2, &tensors(0));
        w1.set("general.file_type", file_type_1);
        w1.set("general.name", GgufValue::String("Micro".into()));
        let mut w2 = shard_writer(1, 2, 2, &tensors(1));
        w2.set("general.file_type", file_type_2);
        w2.set("general.name", GgufValue::String("Micro".into()));
        let first = dir.path().join("f-00001-of-00002.gguf");
        w1.write(&first, TensorData::Sparse).unwrap();
        w2.write(
            &dir.path().join("f-00002-of-00002.gguf"),
            TensorData::Sparse,
        )
        .unwrap();
        first
    };
    // the same value, even written with another integer width, is the same model
    let first = write(GgufValue::U32(15), GgufValue::I32(15));
    GgufModel::open(&first).expect("same metadata");
    let first = write(GgufValue::U32(15), GgufValue::U32(7));
    let (path, problem) = mismatch(GgufModel::open(&first).unwrap_err());
    assert_eq!(path, dir.path().join("f-00002-of-00002.gguf"), "{problem}");
    assert!(
        problem.contains("metadata key 'general.file_type' is 7 here but 15 in the first shard f-00001-of-00002.gguf"),
        "{problem}"
    );
}

#[test]
fn a_shard_of_the_other_byte_order_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let w1 = shard_writer(0, 2, 2, &[("blk.0.attn_q.weight".into(), GgmlType::Q4_K)]);
    let w2 = shard_writer(1, 2, 2, &[("blk.1.attn_q.weight".into(), GgmlType::Q4_K)])
        .byte_order(strix_run::gguf::ByteOrder::Big);
    let first = dir.path().join("b-00001-of-00002.gguf");
    w1.write(&first, TensorData::Sparse).unwrap();
    w2.write(
        &dir.path().join("b-00002-of-00002.gguf"),
        TensorData::Sparse,
    )
    .unwrap();
    let (path, problem) = mismatch(GgufModel::open(&first).unwrap_err());
    assert_eq!(path, dir.path().join("b-00002-of-00002.gguf"));
    assert!(problem.contains("big-endian"), "{problem}");
}

#[test]
fn a_shard_shorter_than_its_tensor_data_is_refused() {
    for cut in [0usize, 1] {
        let dir = tempfile::tempdir().unwrap();
        let files = synth_split(dir.path(), "micro", "micro-dense", "Q4_K_M", 2);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&files[cut])
            .unwrap();
        let len = f.metadata().unwrap().len();
        f.set_len(len - 4096).unwrap();
        let err = GgufModel::open(&files[1 - cut]).expect_err("truncated shard");
        let msg = err.to_string();
        assert!(
            matches!(
                err.problem(),
                Some(strix_run::gguf::Problem::DataPastEnd { .. })
            ),
            "{msg}"
        );
        assert!(msg.contains(files[cut].to_str().unwrap()), "{msg}");
    }
}
