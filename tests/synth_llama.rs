//! Synthetic models in the real llama.cpp (needs the default `runtime` feature): the
//! runnable presets load on the CPU, decode a prompt and give finite logits; every preset,
//! the 235B and 397B ones included, passes llama.cpp's GGUF reader and its model loader
//! (metadata, vocabulary, every tensor's name and shape) without allocating the weights.

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use std::ffi::CString;
use std::num::NonZeroU32;
use std::path::Path;
use strix_run::model::presets::{find_preset, presets};
use strix_run::model::synth::{synth, SynthRequest, SynthSummary};

/// llama.cpp's backend may be initialised once per process: the runtime's, since the
/// other tests in this binary use the runtime (its log goes to `tracing`).
fn backend() -> &'static LlamaBackend {
    strix_run::runtime::llama_backend().expect("nothing but the runtime initialises llama.cpp")
}

fn write(preset: &str, quant: Option<&str>, sparse: bool, shards: u32, out: &Path) -> SynthSummary {
    synth(&SynthRequest {
        preset: preset.into(),
        quant: quant.map(Into::into),
        out: out.to_path_buf(),
        sparse,
        shards,
        seed: 42,
        existing: strix_run::files::Existing::Replace,
    })
    .unwrap_or_else(|e| panic!("{preset} {quant:?}: {e}"))
}

/// Loads `path` on the CPU, decodes a short prompt and returns the last token's logits.
fn run(path: &Path, n_vocab: usize) -> Vec<f32> {
    let backend = backend();
    let params = LlamaModelParams::default().with_n_gpu_layers(0);
    let model =
        LlamaModel::load_from_file(backend, path, &params).expect("llama.cpp loads the model");
    assert_eq!(model.n_vocab() as usize, n_vocab);
    let tokens = model
        .vocab()
        .tokenize(b"Hello from a synthetic model on Strix Halo!", true, true);
    assert!(tokens.len() >= 5, "tokenized to {} tokens", tokens.len());
    let ctx_params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(256))
        .with_n_batch(256)
        .with_n_threads(2)
        .with_n_threads_batch(2);
    let mut ctx = model.new_context(backend, ctx_params).expect("context");
    let mut batch = LlamaBatch::new(tokens.len() + 1, 1);
    let last = tokens.len() - 1;
    for (i, &t) in tokens.iter().enumerate() {
        batch.add(t, i as i32, &[0], i == last).expect("batch");
    }
    ctx.decode(&mut batch).expect("decode the prompt");
    let logits = ctx.get_logits_ith(last as i32).to_vec();
    // one more token through the KV cache / recurrent state
    let next = logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .expect("logits");
    batch.clear();
    batch
        .add(
            llama_cpp_2::token::LlamaToken(next as i32),
            tokens.len() as i32,
            &[0],
            true,
        )
        .expect("batch");
    ctx.decode(&mut batch).expect("decode one more token");
    let again = ctx.get_logits_ith(0);
    assert!(
        again.iter().all(|x| x.is_finite()),
        "second step logits not finite"
    );
    logits
}

fn assert_useful_logits(name: &str, logits: &[f32]) {
    assert!(
        logits.iter().all(|x| x.is_finite()),
        "{name}: non-finite logits"
    );
    let min = logits.iter().copied().fold(f32::INFINITY, f32::min);
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    assert!(max > min, "{name}: all logits equal ({min})");
}

#[test]
fn micro_presets_run_in_llama_cpp_with_finite_logits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("micro-dense", None),
        ("micro-moe", None),
        ("micro-hybrid", None),
        // other block layouts through llama.cpp's CPU kernels
        ("micro-dense", Some("Q8_0")),
        ("micro-dense", Some("F16")),
        ("micro-dense", Some("Q4_0")),
        ("micro-moe", Some("Q2_K")),
        ("micro-moe", Some("IQ2_XXS")),
        ("micro-hybrid", Some("UD-IQ2_XXS")),
        ("micro-hybrid", Some("Q5_K_M")),
    ];
    for (name, quant) in cases {
        let p = find_preset(name).expect("preset");
        let out = dir
            .path()
            .join(format!("{name}-{}.gguf", quant.unwrap_or("default")));
        let s = write(name, quant, false, 1, &out);
        let logits = run(&out, p.n_vocab as usize);
        assert_useful_logits(&format!("{name} {quant:?}"), &logits);
        std::fs::remove_file(&out).expect("rm");
        let _ = s;
    }
}

/// The ~1B dense and ~3B-total MoE presets, which benchmarks will use, run too
/// (0.6 GB and 1.8 GB of real random weights; a few seconds each).
#[test]
fn tiny_presets_run_in_llama_cpp_with_finite_logits() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["tiny-dense-1b", "tiny-moe"] {
        let p = find_preset(name).expect("preset");
        let out = dir.path().join(format!("{name}.gguf"));
        write(name, None, false, 1, &out);
        let logits = run(&out, p.n_vocab as usize);
        assert_useful_logits(name, &logits);
        std::fs::remove_file(&out).expect("rm");
    }
}

#[test]
fn a_split_runnable_model_loads_from_its_first_shard() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("moe.gguf");
    let s = write("micro-moe", None, false, 3, &out);
    assert_eq!(s.files.len(), 3);
    let logits = run(&s.files[0], 4096);
    assert_useful_logits("micro-moe in 3 shards", &logits);
}

/// llama.cpp's own GGUF reader (`gguf_init_from_file`, no_alloc): tensor count and sizes.
fn llama_gguf_tensors(path: &Path) -> (i64, u64) {
    let c = CString::new(path.to_str().expect("utf-8 path")).expect("path");
    let params = llama_cpp_sys_2::gguf_init_params {
        no_alloc: true,
        ctx: std::ptr::null_mut(),
    };
    // SAFETY: a valid C string; the context is freed below.
    let ctx = unsafe { llama_cpp_sys_2::gguf_init_from_file(c.as_ptr(), params) };
    assert!(
        !ctx.is_null(),
        "llama.cpp's gguf reader rejects {}",
        path.display()
    );
    // SAFETY: ctx is a valid gguf context until gguf_free.
    let (n, bytes) = unsafe {
        let n = llama_cpp_sys_2::gguf_get_n_tensors(ctx);
        let bytes = (0..n)
            .map(|i| llama_cpp_sys_2::gguf_get_tensor_size(ctx, i) as u64)
            .sum();
        llama_cpp_sys_2::gguf_free(ctx);
        (n, bytes)
    };
    (n, bytes)
}

#[test]
fn every_preset_passes_llama_cpps_reader_and_loader_without_weights() {
    let backend = backend();
    let dir = tempfile::tempdir().expect("tempdir");
    for p in presets() {
        let out = dir.path().join(format!("{}.gguf", p.name));
        // the seed's quant and shard count: 2 shards for 235B, 4 for 397B
        let s = write(p.name, None, true, 0, &out);
        let mut tensors = 0;
        let mut bytes = 0;
        for f in &s.files {
            let (n, b) = llama_gguf_tensors(f);
            tensors += n;
            bytes += b;
        }
        assert_eq!(tensors as usize, s.tensors, "{}", p.name);
        assert_eq!(bytes, s.tensor_bytes, "{}", p.name);

        // the model loader checks every key, the vocabulary and each tensor's shape
        let params = LlamaModelParams::default()
            .with_n_gpu_layers(0)
            .with_no_alloc(true);
        let model = LlamaModel::load_from_file(backend, &s.files[0], &params)
            .unwrap_or_else(|e| panic!("{}: llama.cpp's loader rejects the model: {e}", p.name));
        assert_eq!(model.n_params(), s.params, "{}", p.name);
        assert_eq!(model.n_layer(), p.n_layer, "{}", p.name);
        assert_eq!(model.n_vocab() as u32, p.n_vocab, "{}", p.name);
        assert_eq!(model.n_embd() as u32, p.n_embd, "{}", p.name);
        assert_eq!(model.size(), s.tensor_bytes, "{}", p.name);
        assert_eq!(model.is_hybrid(), p.hybrid.is_some(), "{}", p.name);
        let arch = model.meta_val_str("general.architecture").expect("arch");
        assert_eq!(arch, p.arch);
        drop(model);
        for f in &s.files {
            std::fs::remove_file(f).expect("rm");
        }
    }
}
