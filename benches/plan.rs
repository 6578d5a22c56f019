//! Planning and inspecting the seed's largest model, the sparse 4-shard
//! Qwen3.5-397B-A17B, and llama.cpp's own `fit_params` on the same files:
//! `cargo bench --bench plan` (without llama.cpp: `--no-default-features`).
//! Target: planning under 50 ms median.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use strix_run::hardware::Hardware;
use strix_run::model::synth::{synth, SynthRequest};
use strix_run::model::ModelMeta;
use strix_run::planner::{Planner, Request};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut req = SynthRequest::new("qwen3.5-397b-a17b", dir.path().join("qwen3.5-397b.gguf"));
    req.sparse = true;
    req.shards = 4;
    let files = synth(&req).expect("synth").files;
    let shard = files[0].clone();
    let hw = Hardware::preset("strix-halo-128").expect("preset");

    c.bench_function("inspect 397B (4 sparse shards)", |b| {
        b.iter(|| ModelMeta::open(black_box(&shard)).expect("open"))
    });
    let model = ModelMeta::open(&shard).expect("open");
    c.bench_function("plan 397B on strix-halo-128 (all backends)", |b| {
        b.iter(|| {
            Planner::plan(black_box(&model), black_box(&hw), &Request::default()).expect("plan")
        })
    });
    c.bench_function("read + plan 397B", |b| {
        b.iter(|| {
            let m = ModelMeta::open(black_box(&shard)).expect("open");
            Planner::plan(&m, &hw, &Request::default()).expect("plan")
        })
    });
}

/// llama.cpp's own fitting on the same 397B files: the peer to compare planning speed
/// against (`common_fit_params`, reached through the runtime's oracle).
#[cfg(feature = "runtime")]
fn bench_llama_fit(c: &mut Criterion) {
    use strix_run::runtime::oracle::{llama_fit, FitOptions, LlamaMemoryRequest};
    let dir = tempfile::tempdir().expect("temp dir");
    let mut req = SynthRequest::new("qwen3.5-397b-a17b", dir.path().join("qwen3.5-397b.gguf"));
    req.sparse = true;
    req.shards = 4;
    let files = synth(&req).expect("synth").files;
    let mut group = c.benchmark_group("llama.cpp");
    group.sample_size(10);
    group.bench_function("fit_params 397B (4 sparse shards)", |b| {
        b.iter(|| {
            llama_fit(
                black_box(&files[0]),
                &LlamaMemoryRequest::default(),
                &FitOptions::default(),
            )
            .expect("fit")
        })
    });
    group.finish();
}

#[cfg(not(feature = "runtime"))]
fn bench_llama_fit(_: &mut Criterion) {}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench, bench_llama_fit
}
criterion_main!(benches);
