//! Model headers that parse but describe impossible models, and pinned values at
//! their limits, reach the user as a typed error or a "does not fit", never as a panic
//! or a size that wrapped around to something small (which would let a plan "fit").
//!
//! The headers are the real Gemma 3 270M's and the synthetic tiny-moe's and Qwen3.5
//! 397B's (a hybrid with recurrent blocks), with hyperparameters replaced in memory.

use crate::support;

use proptest::prelude::*;
use std::path::PathBuf;
use std::sync::OnceLock;
use strix_run::gguf::{read_file, GgufArray, GgufError, GgufHeader, GgufModel, GgufValue};
use strix_run::hardware::{Hardware, PRESET_NAMES};
use strix_run::model::synth::{synth, SynthRequest};
use strix_run::model::ModelMeta;
use strix_run::planner::{Pinned, Planner, Request};

struct Base {
    path: PathBuf,
    header: GgufHeader,
    arch: String,
}

/// The three headers, read once (the synthetic ones written sparse into a folder that
/// lives as long as the test binary).
fn bases() -> &'static [Base] {
    static BASES: OnceLock<(tempfile::TempDir, Vec<Base>)> = OnceLock::new();
    let (_, bases) = BASES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut paths = vec![support::gemma_path()];
        for preset in ["tiny-moe", "qwen3.5-397b-a17b"] {
            let mut req = SynthRequest::new(preset, dir.path().join(format!("{preset}.gguf")));
            req.sparse = true;
            req.shards = 1;
            paths.push(synth(&req).expect("synth").files[0].clone());
        }
        let bases = paths
            .into_iter()
            .map(|path| {
                let (header, _) = read_file(&path).expect("a valid header");
                let arch = header
                    .get_str("general.architecture")
                    .expect("architecture")
                    .to_string();
                Base { path, header, arch }
            })
            .collect();
        (dir, bases)
    });
    bases
}

/// Where each of `base`'s integer hyperparameters (`{arch}.*`, scalars and per-block
/// arrays) sits in its metadata.
fn hyperparameters(base: &Base) -> Vec<usize> {
    let prefix = format!("{}.", base.arch);
    base.header
        .metadata
        .iter()
        .enumerate()
        .filter(|(_, (k, v))| {
            k.starts_with(&prefix)
                && (v.as_u64().is_some()
                    || matches!(v, GgufValue::I32(_))
                    || matches!(v, GgufValue::Array(GgufArray::U32(_) | GgufArray::I32(_))))
        })
        .map(|(i, _)| i)
        .collect()
}

/// `base` with the metadata values at the given positions replaced (keys and order
/// kept, so the header's key index stays right).
fn with_values(base: &Base, changes: &[(usize, GgufValue)]) -> GgufModel {
    let mut header = base.header.clone();
    for (i, v) in changes {
        header.metadata[*i].1 = v.clone();
    }
    GgufModel::single(&base.path, header)
}

fn with_keys(base: &Base, changes: &[(&str, GgufValue)]) -> GgufModel {
    let positions: Vec<(usize, GgufValue)> = changes
        .iter()
        .map(|(suffix, v)| {
            let key = format!("{}.{suffix}", base.arch);
            let i = base
                .header
                .metadata
                .iter()
                .position(|(k, _)| *k == key)
                .unwrap_or_else(|| panic!("{key} is in the header"));
            (i, v.clone())
        })
        .collect();
    with_values(base, &positions)
}

fn bad_key(base: &Base, changes: &[(&str, GgufValue)]) -> (String, String) {
    let model = with_keys(base, changes);
    match ModelMeta::from_gguf(&model, &base.path) {
        Err(GgufError::BadKey { path, key, problem }) => {
            assert_eq!(path, base.path);
            (key, problem)
        }
        other => panic!("{changes:?}: expected a named key error, got {other:?}"),
    }
}

/// Counts llama.cpp's loader refuses (`load_hparams` in src/llama-model.cpp asserts
/// them) are refused here too, naming the key and the limit.
#[test]
fn counts_llama_cpp_refuses_are_named() {
    let [gemma, moe, _] = bases() else {
        panic!("three bases")
    };
    let (key, problem) = bad_key(gemma, &[("block_count", GgufValue::U32(513))]);
    assert_eq!(key, "gemma3.block_count");
    assert!(
        problem.contains("513") && problem.contains("at most 512"),
        "{problem}"
    );

    let (key, problem) = bad_key(moe, &[("expert_count", GgufValue::U32(1025))]);
    assert_eq!(key, "qwen3moe.expert_count");
    assert!(problem.contains("at most 1024"), "{problem}");

    let (key, problem) = bad_key(moe, &[("expert_used_count", GgufValue::U32(0))]);
    assert_eq!(key, "qwen3moe.expert_used_count");
    assert!(problem.contains("at least one"), "{problem}");

    let n_expert = ModelMeta::from_gguf(&with_keys(moe, &[]), &moe.path)
        .expect("the unchanged header reads")
        .n_expert;
    let (key, problem) = bad_key(moe, &[("expert_used_count", GgufValue::U32(n_expert + 1))]);
    assert_eq!(key, "qwen3moe.expert_used_count");
    assert!(
        problem.contains(&format!("more than the model's {n_expert} experts")),
        "{problem}"
    );

    let (key, problem) = bad_key(moe, &[("expert_count", GgufValue::U32(0))]);
    assert_eq!(key, "qwen3moe.expert_used_count");
    assert!(problem.contains("no expert_count"), "{problem}");

    // Dimensions are 32-bit in llama.cpp.
    let (key, problem) = bad_key(gemma, &[("embedding_length", GgufValue::U64(1 << 32))]);
    assert_eq!(key, "gemma3.embedding_length");
    assert!(problem.contains("out of range"), "{problem}");
}

/// `expert_used_count` may hold one count per block (`get_key_or_arr` in
/// llama-model-loader.cpp); the largest is the one that counts.
#[test]
fn per_block_expert_counts_are_read() {
    let moe = &bases()[1];
    let meta = ModelMeta::from_gguf(&with_keys(moe, &[]), &moe.path).expect("reads");
    let mut per_block = vec![2u32; meta.n_block as usize];
    per_block[3] = meta.n_expert_used + 1;
    let model = with_keys(
        moe,
        &[(
            "expert_used_count",
            GgufValue::Array(GgufArray::U32(per_block)),
        )],
    );
    let read = ModelMeta::from_gguf(&model, &moe.path).expect("a per-block array reads");
    assert_eq!(read.n_expert_used, meta.n_expert_used + 1);
}

/// Every dimension at the largest value llama.cpp's 32-bit fields hold (the counts it
/// bounds left alone): the model reads, and no machine fits it. A size that wrapped
/// around would come out small and fit.
#[test]
fn every_dimension_at_its_largest_does_not_fit() {
    let bounded = ["block_count", "expert_count", "expert_used_count"];
    for base in bases() {
        let changes: Vec<(usize, GgufValue)> = hyperparameters(base)
            .into_iter()
            .filter(|&i| {
                let key = &base.header.metadata[i].0;
                !bounded.iter().any(|b| key.ends_with(&format!(".{b}")))
            })
            .map(|i| (i, GgufValue::U32(u32::MAX)))
            .collect();
        assert!(changes.len() >= 5, "{}: {changes:?}", base.arch);
        let model = with_values(base, &changes);
        let meta = ModelMeta::from_gguf(&model, &base.path)
            .unwrap_or_else(|e| panic!("{}: 32-bit values read: {e}", base.arch));
        for machine in PRESET_NAMES {
            let hw = Hardware::preset(machine).expect("preset");
            for flash_attn in [Some(false), None] {
                let req = Request {
                    n_ctx: Some(u32::MAX),
                    n_seq: Some(256),
                    pinned: Pinned {
                        flash_attn,
                        ..Pinned::default()
                    },
                    ..Request::default()
                };
                let err = Planner::plan(&meta, &hw, &req)
                    .err()
                    .unwrap_or_else(|| panic!("{} fits on {machine}", base.arch));
                assert!(
                    err.to_string().contains("does not fit"),
                    "{} on {machine}: {err}",
                    base.arch
                );
            }
        }
    }
}

fn hostile_value() -> impl Strategy<Value = GgufValue> {
    prop_oneof![
        4 => prop_oneof![
            Just(0u32),
            Just(1),
            Just(255),
            Just(256),
            Just(512),
            Just(513),
            Just(1024),
            Just(1025),
            Just(65_535),
            Just(1 << 31),
            Just(u32::MAX),
        ]
        .prop_map(GgufValue::U32),
        2 => any::<u32>().prop_map(GgufValue::U32),
        1 => prop_oneof![Just(1u64 << 32), Just(u64::MAX)].prop_map(GgufValue::U64),
        1 => Just(GgufValue::I32(-1)),
    ]
}

fn limit_or_any() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![
        Just(None),
        Just(Some(u32::MAX)),
        (1u32..1 << 20).prop_map(Some)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    /// Whatever the hyperparameters and pinned sizes, reading gives the model or a
    /// named key error, and a plan that comes back fits its budgets by its own figures.
    #[test]
    fn hostile_hyperparameters_never_panic_or_wrap(
        which in 0usize..3,
        changes in proptest::collection::vec((any::<prop::sample::Index>(), hostile_value()), 1..5),
        machine in 0..PRESET_NAMES.len(),
        n_ctx in limit_or_any(),
        n_seq in prop_oneof![Just(None), (1u32..=256).prop_map(Some)],
        n_ubatch in limit_or_any(),
        flash_attn in prop_oneof![Just(None), any::<bool>().prop_map(Some)],
    ) {
        let base = &bases()[which];
        let keys = hyperparameters(base);
        let changes: Vec<(usize, GgufValue)> =
            changes.into_iter().map(|(i, v)| (*i.get(&keys), v)).collect();
        let model = with_values(base, &changes);
        let meta = match ModelMeta::from_gguf(&model, &base.path) {
            Ok(meta) => meta,
            Err(GgufError::BadKey { .. }) => return Ok(()),
            Err(other) => panic!("{changes:?}: not a named key error: {other}"),
        };
        let hw = Hardware::preset(PRESET_NAMES[machine]).expect("preset");
        let req = Request {
            n_ctx,
            n_seq,
            pinned: Pinned {
                n_batch: n_ubatch,
                n_ubatch,
                flash_attn,
                ..Pinned::default()
            },
            ..Request::default()
        };
        if let Ok(plan) = Planner::plan(&meta, &hw, &req) {
            let m = &plan.memory;
            prop_assert!(m.gpu_bytes <= m.gpu_budget_bytes, "{changes:?}: {m:?}");
            prop_assert!(m.host_bytes <= m.host_budget_bytes, "{changes:?}: {m:?}");
            if let Some(shared) = m.shared_budget_bytes {
                prop_assert!(m.gpu_bytes.saturating_add(m.host_bytes) <= shared, "{changes:?}: {m:?}");
            }
        }
    }
}
