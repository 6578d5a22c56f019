//! llama.cpp's memory oracle (`strix_run::runtime::oracle`) on the real Gemma 3 270M
//! Q4_K_M, on a CPU-only build. Expectations are computed from the GGUF itself, read
//! with llama.cpp's own GGUF reader (`llama_cpp_sys_2::gguf_*`), never from the oracle.
//!
//! The model comes from `scripts/fetch-gemma` (into `models/`); `STRIX_GEMMA` overrides
//! the path.
//!
//! In the `serial` test binary (`tests/serial.rs`): the oracle swaps llama.cpp's global
//! logger while it runs, so no model may load meanwhile.

use crate::support;

use support::gemma_path;

use std::ffi::CString;
use std::path::Path;
use strix_run::gguf::GgmlType;
use strix_run::runtime::oracle::{
    llama_fit, llama_memory_breakdown, FitOptions, FitStatus, LlamaMemoryBreakdown,
    LlamaMemoryRequest, OracleError,
};

/// What the tests need from the GGUF, read by llama.cpp's GGUF reader.
#[derive(Debug)]
struct GgufFacts {
    /// Sum of the tensors' data sizes (`gguf_get_tensor_size`).
    tensor_bytes: u64,
    n_tensors: u64,
    n_layer: u32,
    n_head_kv: u32,
    key_length: u32,
    value_length: u32,
    n_swa: u32,
    n_ctx_train: u32,
    /// Per layer: sliding-window attention or not.
    is_swa: Vec<bool>,
}

fn gguf_facts(path: &Path) -> GgufFacts {
    use llama_cpp_sys_2 as sys;
    let cpath = CString::new(path.to_str().expect("utf-8 path")).expect("no NUL");
    let params = sys::gguf_init_params {
        no_alloc: true,
        ctx: std::ptr::null_mut(),
    };
    // SAFETY: plain C calls on a context we own and free at the end; keys are looked up
    // before their values are read and types are checked.
    unsafe {
        let ctx = sys::gguf_init_from_file(cpath.as_ptr(), params);
        assert!(
            !ctx.is_null(),
            "llama.cpp's gguf reader rejects {}",
            path.display()
        );
        let arch_key = CString::new("general.architecture").unwrap();
        let arch_id = sys::gguf_find_key(ctx, arch_key.as_ptr());
        assert!(arch_id >= 0);
        let arch = std::ffi::CStr::from_ptr(sys::gguf_get_val_str(ctx, arch_id))
            .to_string_lossy()
            .into_owned();
        assert_eq!(arch, "gemma3", "the test model is Gemma 3");
        let u32_key = |name: &str| -> Option<u32> {
            let key = CString::new(format!("{arch}.{name}")).unwrap();
            let id = sys::gguf_find_key(ctx, key.as_ptr());
            if id < 0 {
                return None;
            }
            match sys::gguf_get_kv_type(ctx, id) {
                sys::GGUF_TYPE_UINT32 => Some(sys::gguf_get_val_u32(ctx, id)),
                sys::GGUF_TYPE_INT32 => Some(sys::gguf_get_val_i32(ctx, id) as u32),
                t => panic!("{arch}.{name} has gguf type {t}, expected a 32-bit integer"),
            }
        };
        let n_layer = u32_key("block_count").expect("block_count");
        let n_head_kv = u32_key("attention.head_count_kv").expect("head_count_kv (scalar)");
        let key_length = u32_key("attention.key_length").expect("key_length");
        let value_length = u32_key("attention.value_length").expect("value_length");
        let n_swa = u32_key("attention.sliding_window").expect("sliding_window");
        let n_ctx_train = u32_key("context_length").expect("context_length");

        // Sliding-window layers: the GGUF's `sliding_window_pattern` if it has one, else
        // llama.cpp's built-in pattern for Gemma 3 (src/models/gemma3.cpp:
        // load_swa_pattern(ml, 6): every 6th layer, il % 6 == 5, is full attention).
        let pat_key = CString::new(format!("{arch}.attention.sliding_window_pattern")).unwrap();
        let pat_id = sys::gguf_find_key(ctx, pat_key.as_ptr());
        let is_swa: Vec<bool> =
            if pat_id >= 0 && sys::gguf_get_kv_type(ctx, pat_id) == sys::GGUF_TYPE_ARRAY {
                assert_eq!(sys::gguf_get_arr_type(ctx, pat_id), sys::GGUF_TYPE_BOOL);
                let n = sys::gguf_get_arr_n(ctx, pat_id);
                let data = sys::gguf_get_arr_data(ctx, pat_id) as *const bool;
                (0..n).map(|i| *data.add(i)).collect()
            } else {
                let n_pattern = if pat_id >= 0 {
                    sys::gguf_get_val_u32(ctx, pat_id)
                } else {
                    6
                };
                (0..n_layer)
                    .map(|il| il % n_pattern < n_pattern - 1)
                    .collect()
            };

        let n_tensors = sys::gguf_get_n_tensors(ctx);
        let tensor_bytes = (0..n_tensors)
            .map(|i| sys::gguf_get_tensor_size(ctx, i) as u64)
            .sum();
        sys::gguf_free(ctx);
        GgufFacts {
            tensor_bytes,
            n_tensors: n_tensors as u64,
            n_layer,
            n_head_kv,
            key_length,
            value_length,
            n_swa,
            n_ctx_train,
            is_swa,
        }
    }
}

/// Bytes of one KV cache row of `n` elements of `t` (ggml's `ggml_row_size`).
fn row_bytes(t: GgmlType, n: u32) -> u64 {
    // SAFETY: pure function of a valid type id.
    unsafe { llama_cpp_sys_2::ggml_row_size(t.id(), i64::from(n)) as u64 }
}

/// The KV cache bytes llama.cpp allocates for Gemma 3 with `req` (swa_full off, one
/// sequence), from the hyperparameters: full-attention layers hold n_ctx cells, sliding-
/// window layers min(n_ctx, n_swa + n_ubatch) rounded up to 256 (llama-kv-cache-iswa.cpp).
fn expected_kv_bytes(f: &GgufFacts, req: &LlamaMemoryRequest) -> u64 {
    assert_eq!(req.n_seq_max, 1);
    let per_cell_per_layer = u64::from(f.n_head_kv)
        * (row_bytes(req.type_k, f.key_length) + row_bytes(req.type_v, f.value_length));
    let n_full = f.is_swa.iter().filter(|s| !**s).count() as u64;
    let n_swa_layers = f.is_swa.iter().filter(|s| **s).count() as u64;
    let swa_cells = if req.swa_full {
        u64::from(req.n_ctx)
    } else {
        let c = u64::from(req.n_ctx.min(f.n_swa + req.n_ubatch));
        c.div_ceil(256) * 256
    };
    (n_full * u64::from(req.n_ctx) + n_swa_layers * swa_cells) * per_cell_per_layer
}

fn breakdown(req: &LlamaMemoryRequest) -> LlamaMemoryBreakdown {
    llama_memory_breakdown(&gemma_path(), req).expect("llama.cpp projects memory for Gemma")
}

fn req(n_ctx: u32) -> LlamaMemoryRequest {
    LlamaMemoryRequest {
        n_ctx,
        ..LlamaMemoryRequest::default()
    }
}

const MIB: f64 = 1024.0 * 1024.0;

#[test]
fn host_entry_and_hyperparameters() {
    let _one = crate::one_at_a_time();
    let f = gguf_facts(&gemma_path());
    let b = breakdown(&req(4096));
    eprintln!(
        "Gemma 3 270M at n_ctx 4096: {}",
        b.devices
            .iter()
            .map(|d| format!(
                "{} ({}{}): model {:.2} MiB, context {:.2} MiB, compute {:.2} MiB, total {:.0} MiB, free {:.0} MiB",
                d.name,
                d.description.as_deref().unwrap_or_default(),
                if d.is_host { ", host" } else { "" },
                d.model as f64 / MIB,
                d.context as f64 / MIB,
                d.compute as f64 / MIB,
                d.total.unwrap_or(0) as f64 / MIB,
                d.free.unwrap_or(0) as f64 / MIB
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    // CPU-only build: the model uses no GPU, so the host entry is the only one.
    assert_eq!(b.devices.len(), 1, "{b:?}");
    assert!(b.gpus().is_empty());
    let host = b.host();
    assert!(host.is_host);
    assert_eq!(host.name, "CPU");
    let (total, free) = (host.total.unwrap_or(0), host.free.unwrap_or(0));
    assert!(total > 0 && free > 0 && free <= total, "{host:?}");
    assert!(
        host.model > 0 && host.context > 0 && host.compute > 0,
        "{host:?}"
    );
    assert_eq!(b.n_layer, f.n_layer);
    assert_eq!(b.n_ctx_train, f.n_ctx_train);
    assert_eq!(b.n_expert, 0, "Gemma 3 is dense");
}

#[test]
fn model_bytes_equal_tensor_bytes_without_repacking() {
    let _one = crate::one_at_a_time();
    let f = gguf_facts(&gemma_path());
    // Every weight in a plain CPU (host) buffer: llama.cpp counts each tensor's size,
    // padded to the buffer alignment (32 bytes for the CPU buffer type).
    let plain = breakdown(&LlamaMemoryRequest {
        use_extra_bufts: false,
        ..req(4096)
    });
    let model = plain.host().model;
    assert!(
        model >= f.tensor_bytes && model <= f.tensor_bytes + 64 * f.n_tensors,
        "host model bytes {model} vs tensor bytes {} ({} tensors)",
        f.tensor_bytes,
        f.n_tensors
    );

    // With CPU weight repacking allowed (the default), repacked weights live in the
    // CPU_REPACK buffer type, which is neither a host buffer type nor one of the model's
    // devices, so common_get_device_memory_data leaves them out: never more than the
    // plain count. (How much less depends on the CPU's repack kernels.)
    let default = breakdown(&req(4096));
    assert!(
        default.host().model <= model,
        "{} > {model}",
        default.host().model
    );
    eprintln!(
        "host model bytes: {:.2} MiB without repacking (tensor data {:.2} MiB), {:.2} MiB with",
        model as f64 / MIB,
        f.tensor_bytes as f64 / MIB,
        default.host().model as f64 / MIB
    );
    // The weights do not depend on mmap in the projection (load_mode is forced to NONE).
    let no_mmap = breakdown(&LlamaMemoryRequest {
        use_mmap: false,
        ..req(4096)
    });
    assert_eq!(no_mmap.host().model, default.host().model);
}

#[test]
fn context_bytes_match_kv_cache_from_hyperparameters() {
    let _one = crate::one_at_a_time();
    let f = gguf_facts(&gemma_path());
    assert!(
        f.is_swa.iter().any(|s| !*s) && f.is_swa.iter().any(|s| *s),
        "{f:?}"
    );
    let r4 = req(4096);
    let r8 = req(8192);
    let c4 = breakdown(&r4).host().context;
    let c8 = breakdown(&r8).host().context;
    assert_eq!(c4, expected_kv_bytes(&f, &r4), "context at 4096");
    assert_eq!(c8, expected_kv_bytes(&f, &r8), "context at 8192");
    // Doubling the context doubles the full-attention layers' part; the sliding-window
    // layers' part stays (n_swa + n_ubatch cells).
    let n_full = f.is_swa.iter().filter(|s| !**s).count() as u64;
    let full_per_token = n_full
        * u64::from(f.n_head_kv)
        * (row_bytes(GgmlType::F16, f.key_length) + row_bytes(GgmlType::F16, f.value_length));
    assert_eq!(c8 - c4, 4096 * full_per_token);

    // A full-size sliding-window cache: every layer holds n_ctx cells.
    let full = LlamaMemoryRequest {
        swa_full: true,
        ..req(4096)
    };
    let cf = breakdown(&full).host().context;
    assert_eq!(cf, expected_kv_bytes(&f, &full));
    assert!(cf > c4);
}

#[test]
fn q8_0_k_cache_is_smaller_than_f16() {
    let _one = crate::one_at_a_time();
    let f = gguf_facts(&gemma_path());
    let f16 = req(4096);
    let q8 = LlamaMemoryRequest {
        type_k: GgmlType::Q8_0,
        ..req(4096)
    };
    let c_f16 = breakdown(&f16).host().context;
    let c_q8 = breakdown(&q8).host().context;
    assert!(c_q8 < c_f16, "q8_0 {c_q8} vs f16 {c_f16}");
    assert_eq!(c_q8, expected_kv_bytes(&f, &q8));
}

#[test]
fn n_cpu_moe_becomes_llama_cpp_overrides() {
    let _one = crate::one_at_a_time();
    // Gemma is dense: the expert patterns match no tensor, so nothing moves.
    let base = breakdown(&req(2048));
    let moe_req = LlamaMemoryRequest {
        n_cpu_moe: 3,
        ..req(2048)
    };
    assert_eq!(base, breakdown(&moe_req));

    // The fit reports the overrides in effect: exactly what `--n-cpu-moe 3` gives in
    // llama.cpp (common/arg.cpp: llm_ffn_block_regex(i, LLM_FFN_EXPS_REGEX) -> CPU).
    let fit = llama_fit(&gemma_path(), &moe_req, &FitOptions::default()).expect("fit runs");
    let got: Vec<(String, String)> = fit
        .overrides
        .iter()
        .map(|o| (o.pattern.clone(), o.buft.clone()))
        .collect();
    let want: Vec<(String, String)> = (0..3)
        .map(|i| {
            (
                format!("blk\\.{i}\\.ffn_(up|down|gate|gate_up)_(ch|)exps"),
                "CPU".to_owned(),
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn fit_on_cpu_only() {
    let _one = crate::one_at_a_time();
    let path = gemma_path();
    let f = gguf_facts(&path);

    // Plenty of room: nothing to change; an automatic context becomes the training context.
    let fit = llama_fit(
        &path,
        &req(0),
        &FitOptions {
            margins: vec![0],
            ..FitOptions::default()
        },
    )
    .expect("fit runs");
    assert_eq!(fit.status, FitStatus::Fits, "{fit:?}");
    assert_eq!(fit.n_ctx, f.n_ctx_train);
    assert!(fit.overrides.is_empty(), "{fit:?}");

    // A margin as large as all host memory with a fixed context: with no GPU the fit can
    // only lower an automatic context, so it reports that it does not fit.
    let host_total = breakdown(&req(4096)).host().total.unwrap_or(0) as u64;
    let fit = llama_fit(
        &path,
        &req(4096),
        &FitOptions {
            margins: vec![host_total],
            ..FitOptions::default()
        },
    )
    .expect("fit runs");
    assert_eq!(fit.status, FitStatus::DoesNotFit, "{fit:?}");
    assert_eq!(fit.n_ctx, 4096);

    // Leave exactly what a 16384-token context would use: an automatic context is cut to
    // at most about that (linear interpolation, rounded down to a multiple of 256).
    let used_16k = breakdown(&req(16384)).host().used();
    let fit = llama_fit(
        &path,
        &req(0),
        &FitOptions {
            margins: vec![host_total - used_16k],
            n_ctx_min: 4096,
        },
    )
    .expect("fit runs");
    assert_eq!(fit.status, FitStatus::Fits, "{fit:?}");
    assert!(
        fit.n_ctx.is_multiple_of(256) && (4096..=16384 + 256).contains(&fit.n_ctx),
        "{fit:?}"
    );
}

#[test]
fn errors_name_the_model() {
    let _one = crate::one_at_a_time();
    let missing = Path::new("/nonexistent/model.gguf");
    let e = llama_memory_breakdown(missing, &req(512)).unwrap_err();
    assert!(matches!(e, OracleError::ModelNotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/model.gguf"), "{e}");

    // Not a GGUF: llama.cpp fails to load it; the C++ exception comes back as an error.
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.gguf");
    std::fs::write(&bogus, b"not a gguf file at all").unwrap();
    let e = llama_memory_breakdown(&bogus, &req(512)).unwrap_err();
    assert!(matches!(e, OracleError::Llama { .. }), "{e:?}");
    assert!(e.to_string().contains("bogus.gguf"), "{e}");
    let e = llama_fit(&bogus, &req(512), &FitOptions::default()).unwrap_err();
    assert!(e.to_string().contains("bogus.gguf"), "{e}");

    let bad = LlamaMemoryRequest {
        n_ubatch: 0,
        ..req(512)
    };
    assert!(matches!(
        llama_memory_breakdown(&gemma_path(), &bad),
        Err(OracleError::InvalidRequest(_))
    ));
}
