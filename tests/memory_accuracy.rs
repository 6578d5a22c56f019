//! The planner's memory model against llama.cpp's own dry run
//! (`common_get_device_memory_data`: the model and context are created with
//! `no_alloc`, so nothing is allocated and sparse files work).
//!
//! On this CPU-only machine everything lands on the host device, so this checks the
//! weights, KV-cache and recurrent-state arithmetic for every layer type: Gemma 3
//! (sliding window), dense Qwen3, Qwen3 MoE and the Qwen3.5 hybrid (recurrent
//! blocks), at several contexts and KV types. Target: weights and context within 2%;
//! compute buffers are printed next to llama.cpp's figure.
//!
//! In the `serial` test binary (`tests/serial.rs`): the oracle swaps llama.cpp's global
//! logger while it runs, so no model may load meanwhile.

use crate::support;

use std::path::Path;
use strix_run::gguf::GgmlType;
use strix_run::model::synth::{synth, SynthRequest};
use strix_run::model::ModelMeta;
use strix_run::planner::memory::{estimate, ContextShape, GpuUse, Placement};
use strix_run::planner::KvType;
use strix_run::runtime::oracle::{llama_memory_breakdown, FlashAttn, LlamaMemoryRequest};

fn within(ours: u64, theirs: u64, tolerance: f64) -> bool {
    let (a, b) = (ours as f64, theirs as f64);
    (a - b).abs() <= tolerance * b.max(1.0)
}

fn check(path: &Path, label: &str) {
    let meta = ModelMeta::open(path).expect("our summary");
    for (n_ctx, kv) in [
        (512, KvType::F16),
        (4096, KvType::F16),
        (16384, KvType::F16),
        (4096, KvType::Q8_0),
    ] {
        let ctx = ContextShape {
            n_ctx,
            n_seq: 1,
            n_batch: 2048,
            n_ubatch: 512,
            type_k: kv,
            type_v: kv,
            flash_attn: true,
        };
        let ours = estimate(
            &meta,
            Placement {
                n_gpu_layers: 0,
                n_cpu_moe: 0,
            },
            &ctx,
            GpuUse::None,
        );
        let req = LlamaMemoryRequest {
            n_gpu_layers: 0,
            n_ctx,
            type_k: GgmlType::from_name(kv.name()).expect("kv type"),
            type_v: GgmlType::from_name(kv.name()).expect("kv type"),
            flash_attn: FlashAttn::Enabled,
            // Repacked CPU weights are not counted by llama.cpp's dry run; without
            // repacking it counts every weight.
            use_extra_bufts: false,
            ..LlamaMemoryRequest::default()
        };
        let theirs = llama_memory_breakdown(path, &req).expect("llama.cpp dry run");
        let host = theirs.host();
        eprintln!(
            "{label:18} ctx {n_ctx:6} {kv}: weights {} vs {}  context {} vs {}  compute {} vs {} (ours vs llama.cpp, bytes)",
            ours.host.weights,
            host.model,
            ours.host.context(),
            host.context,
            ours.host.compute,
            host.compute
        );
        assert!(
            within(ours.host.weights, host.model, 0.02),
            "{label}: weights {} vs {}",
            ours.host.weights,
            host.model
        );
        assert!(
            within(ours.host.context(), host.context, 0.02),
            "{label} ctx {n_ctx} {kv}: context {} vs {}",
            ours.host.context(),
            host.context
        );
        assert!(host.compute > 0 && ours.host.compute > 0);
    }
}

#[test]
fn gemma_3_270m_matches_llama_cpp_dry_run() {
    let _one = crate::one_at_a_time();
    check(&support::gemma_path(), "gemma-3-270m");
}

#[test]
fn synthetic_presets_match_llama_cpp_dry_run() {
    let _one = crate::one_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    // Runnable presets with real weights, and the seed's shapes as sparse files
    // (the dry run never reads tensor data).
    for (preset, sparse) in [
        ("micro-dense", false),
        ("micro-moe", false),
        ("micro-hybrid", false),
        ("tiny-moe", true),
        ("qwen3-8b", true),
        ("qwen3-30b-a3b", true),
        ("qwen3-235b-a22b", true),
        ("qwen3.5-397b-a17b", true),
    ] {
        let mut req = SynthRequest::new(preset, dir.path().join(format!("{preset}.gguf")));
        req.sparse = sparse;
        let files = synth(&req).expect("synth").files;
        check(&files[0], preset);
    }
}

/// The batched-decode model's logits factor for the real Gemma 3 270M, read from its
/// header, against the model card's split: 100M parameters in the blocks, 170M in the
/// embedding, which is also its output projection (640 × 262144): (100 + 168) / 100 =
/// 2.68. The header gives parameters through bytes at the file's average width, so a
/// band, not the exact figure.
#[test]
fn gemma_3_270m_decode_shape_matches_its_published_split() {
    let meta = ModelMeta::open(&support::gemma_path()).expect("Gemma's header");
    let shape = strix_run::planner::speed::DecodeShape::of(&meta);
    assert!(
        (2.2..=3.2).contains(&shape.logits_factor),
        "{shape:?} (published split: 2.68)"
    );
    assert_eq!((shape.expert_share, shape.expert_fraction), (0.0, 0.0));
}
