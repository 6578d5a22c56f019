//! Synthetic models: every preset writes, reads back, and has the shapes, sizes and
//! metadata its real model has. Pure Rust (runs with `--no-default-features`); the
//! llama.cpp checks are in `tests/synth_llama.rs`.

use std::collections::HashSet;
use std::path::Path;
use strix_run::gguf::{GgmlType, GgufModel, GgufValue, TensorInfo};
use strix_run::model::presets::{find_preset, presets, Preset};
use strix_run::model::synth::{quant_names, synth, tensor_plan, SynthError, SynthRequest};

const GB: f64 = 1e9;
const GIB: f64 = 1_073_741_824.0;

fn sparse(preset: &str, quant: Option<&str>, shards: u32, out: &Path) -> SynthRequest {
    SynthRequest {
        preset: preset.into(),
        quant: quant.map(Into::into),
        out: out.to_path_buf(),
        sparse: true,
        shards,
        seed: 0,
        existing: strix_run::files::Existing::Replace,
    }
}

fn u64_key(model: &GgufModel, key: &str) -> u64 {
    model
        .get(key)
        .and_then(GgufValue::as_u64)
        .unwrap_or_else(|| panic!("missing integer key {key}"))
}

/// Parameters the preset's hyperparameters imply, written out from the llama.cpp loaders
/// (src/models/{llama,qwen3,qwen3moe,qwen35moe}.cpp) independently of the synth code.
fn expected_params_and_tensors(p: &Preset) -> (u64, usize) {
    let e = u64::from(p.n_embd);
    let v = u64::from(p.n_vocab);
    let hd = u64::from(p.head_dim);
    let nq = u64::from(p.n_head) * hd;
    let nkv = u64::from(p.n_head_kv) * hd;
    let mut params = e * v + e; // token_embd, output_norm
    let mut tensors = 2;
    if !p.tied_embeddings {
        params += e * v;
        tensors += 1;
    }
    for il in 0..p.n_layer {
        params += e; // attn_norm
        tensors += 1;
        if let Some(h) = p.hybrid {
            params += e; // post_attention_norm
            tensors += 1;
            if (il + 1) % h.full_attention_interval == 0 {
                params += e * 2 * nq + 2 * e * nkv + nq * e + 2 * hd;
                tensors += 6;
            } else {
                let ds = u64::from(h.ssm_state_size);
                let key = ds * u64::from(h.ssm_group_count);
                let vh = u64::from(h.ssm_time_step_rank);
                let val = ds * vh;
                let conv = 2 * key + val;
                params += e * conv
                    + e * val
                    + u64::from(h.ssm_conv_kernel) * conv
                    + 2 * vh
                    + 2 * e * vh
                    + ds
                    + val * e;
                tensors += 9;
            }
        } else {
            params += e * nq + 2 * e * nkv + nq * e + e;
            tensors += 5;
            if p.arch != "llama" {
                params += 2 * hd;
                tensors += 2;
            }
        }
        match p.moe {
            Some(m) => {
                let x = u64::from(m.n_expert);
                params += e * x + 3 * e * u64::from(m.n_ff_exp) * x;
                tensors += 4;
                if m.n_ff_shexp > 0 {
                    params += e + 3 * e * u64::from(m.n_ff_shexp);
                    tensors += 4;
                }
            }
            None => {
                params += 3 * e * u64::from(p.n_ff);
                tensors += 3;
            }
        }
    }
    (params, tensors)
}

/// Tensors convert_hf_to_gguf.py keeps in F32 and llama-quantize never quantizes.
fn is_float_tensor(t: &TensorInfo) -> bool {
    t.shape.len() < 2
        || t.name.ends_with("norm.weight")
        || t.name.ends_with("ffn_gate_inp.weight")
        || t.name.ends_with("ssm_conv1d.weight")
}

fn type_of<'a>(model: &'a GgufModel, name: &str) -> &'a TensorInfo {
    model
        .tensors()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tensor {name}"))
}

fn ty(name: &str) -> GgmlType {
    GgmlType::from_name(name).expect("known type")
}

#[test]
fn every_preset_writes_sparse_and_reads_back_with_the_shapes_it_implies() {
    let dir = tempfile::tempdir().expect("tempdir");
    for p in presets() {
        // Q8_0 (34 bytes per 32 weights for every quantized tensor) and F32 make the
        // bytes computable from the shapes alone.
        for quant in ["Q8_0", "F32"] {
            let out = dir.path().join(format!("{}-{quant}.gguf", p.name));
            let s = synth(&sparse(p.name, Some(quant), 1, &out)).expect("synth");
            let model = GgufModel::open(&out).expect("read back");
            let (params, tensors) = expected_params_and_tensors(p);
            assert_eq!(s.params, params, "{} params", p.name);
            assert_eq!(s.tensors, tensors, "{} tensors", p.name);
            assert_eq!(model.tensors().count(), tensors, "{}", p.name);
            let read_params: u64 = model.tensors().map(TensorInfo::n_elements).sum();
            assert_eq!(read_params, params, "{}", p.name);
            let expected_bytes: u64 = model
                .tensors()
                .map(|t| {
                    let n = t.n_elements();
                    if is_float_tensor(t) {
                        assert_eq!(t.ggml_type, GgmlType::F32, "{} {}", p.name, t.name);
                        4 * n
                    } else if quant == "F32" {
                        4 * n
                    } else {
                        assert_eq!(t.ggml_type, GgmlType::Q8_0, "{} {}", p.name, t.name);
                        n / 32 * 34
                    }
                })
                .sum();
            assert_eq!(s.tensor_bytes, expected_bytes, "{} {quant}", p.name);
            let on_disk = std::fs::metadata(&out).expect("stat").len();
            assert_eq!(s.file_bytes, on_disk);
            assert_eq!(model.file_bytes(), on_disk);
            assert!(on_disk >= s.header_bytes + expected_bytes);
            // the file is sparse: only the header is allocated
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                let allocated = std::fs::metadata(&out).expect("stat").blocks() * 512;
                assert!(
                    allocated <= s.header_bytes + (1 << 20),
                    "{}: {allocated} bytes allocated",
                    p.name
                );
            }
            // metadata the llama.cpp loader needs
            let a = p.arch;
            assert_eq!(
                model
                    .get("general.architecture")
                    .and_then(GgufValue::as_str),
                Some(a)
            );
            assert_eq!(
                u64_key(&model, &format!("{a}.block_count")),
                u64::from(p.n_layer)
            );
            assert_eq!(
                u64_key(&model, &format!("{a}.embedding_length")),
                u64::from(p.n_embd)
            );
            assert_eq!(
                u64_key(&model, &format!("{a}.attention.head_count")),
                u64::from(p.n_head)
            );
            assert_eq!(
                u64_key(&model, &format!("{a}.attention.head_count_kv")),
                u64::from(p.n_head_kv)
            );
            assert_eq!(
                u64_key(&model, &format!("{a}.attention.key_length")),
                u64::from(p.head_dim)
            );
            assert!(model.get(&format!("{a}.context_length")).is_some());
            assert!(model.get(&format!("{a}.rope.freq_base")).is_some());
            assert!(model
                .get(&format!("{a}.attention.layer_norm_rms_epsilon"))
                .is_some());
            if let Some(m) = p.moe {
                assert_eq!(
                    u64_key(&model, &format!("{a}.expert_count")),
                    u64::from(m.n_expert)
                );
                assert_eq!(
                    u64_key(&model, &format!("{a}.expert_used_count")),
                    u64::from(m.n_expert_used)
                );
                assert_eq!(
                    u64_key(&model, &format!("{a}.expert_feed_forward_length")),
                    u64::from(m.n_ff_exp)
                );
            }
            let tokens = model
                .get("tokenizer.ggml.tokens")
                .and_then(GgufValue::as_array)
                .expect("tokens");
            assert_eq!(tokens.len(), p.n_vocab as usize, "{}", p.name);
            let embd = type_of(&model, "token_embd.weight");
            assert_eq!(embd.shape, vec![u64::from(p.n_embd), u64::from(p.n_vocab)]);
            assert_eq!(
                model.tensors().any(|t| t.name == "output.weight"),
                !p.tied_embeddings
            );
        }
    }
}

#[test]
fn seed_presets_land_on_the_seed_articles_sizes() {
    // (preset, what the seed says in bytes, tolerance, shards, blocks + output layer)
    // Seed: "Qwen3 8B Q4_K_M -- 5.5 GB", "Qwen3 32B Q4_K_M -- 20 GB ... all 65 layers",
    // "Qwen3-235B-A22B Q2_K ... 56.5 GB on GPU plus 24.2 GB on CPU ... 66-of-95" (the
    // repo: "80 GB, 2 shards"), "Qwen3.5-397B-A17B IQ2_XXS ... 115 GB across four GGUF
    // shards. 33 of 61 layers" (the repo: 107 GiB).
    let cases: [(&str, f64, f64, u32, Option<u64>); 4] = [
        ("qwen3-8b", 5.5 * GB, 0.10, 1, None),
        ("qwen3-32b", 20.0 * GB, 0.05, 1, Some(65)),
        ("qwen3-235b-a22b", 80.0 * GIB, 0.03, 2, Some(95)),
        ("qwen3.5-397b-a17b", 107.0 * GIB, 0.02, 4, Some(61)),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, seed_bytes, tolerance, shards, layers) in cases {
        let out = dir.path().join(format!("{name}.gguf"));
        let s = synth(&sparse(name, None, 0, &out)).expect("synth");
        assert_eq!(s.files.len() as u32, shards, "{name} shard count");
        let ours = s.file_bytes as f64;
        let diff = (ours - seed_bytes) / seed_bytes;
        assert!(
            diff.abs() <= tolerance,
            "{name}: {ours} bytes vs the seed's {seed_bytes} ({:+.1} %)",
            diff * 100.0
        );
        let model = GgufModel::open(&s.files[s.files.len() - 1]).expect("open");
        assert_eq!(model.shards.len() as u32, shards);
        assert_eq!(model.file_bytes(), s.file_bytes);
        if let Some(layers) = layers {
            let arch = find_preset(name).expect("preset").arch;
            assert_eq!(u64_key(&model, &format!("{arch}.block_count")) + 1, layers);
        }
    }
    // and the decimal number the article gives for the 397B download
    let out = dir.path().join("again.gguf");
    let s = synth(&sparse("qwen3.5-397b-a17b", None, 0, &out)).expect("synth");
    let diff = (s.file_bytes as f64 - 115.0 * GB) / (115.0 * GB);
    assert!(diff.abs() <= 0.02, "{:+.2} %", diff * 100.0);
}

#[test]
fn sizes_are_pinned() {
    // Regression guard for the table in src/model/synth.rs: tensor bytes per seed preset
    // at its default quant, and Qwen3.5-397B at plain IQ2_XXS.
    let cases = [
        ("qwen3-8b", None, 5_021_827_072u64),
        ("qwen3-32b", None, 19_756_174_336),
        ("qwen3-235b-a22b", None, 85_684_996_096),
        ("qwen3.5-397b-a17b", None, 115_283_897_344),
        ("qwen3.5-397b-a17b", Some("IQ2_XXS"), 104_478_145_536),
    ];
    for (name, quant, bytes) in cases {
        let p = find_preset(name).expect("preset");
        let plan = tensor_plan(p, quant.unwrap_or(p.default_quant)).expect("plan");
        assert_eq!(
            plan.iter().map(|t| t.n_bytes()).sum::<u64>(),
            bytes,
            "{name}"
        );
    }
}

#[test]
fn a_published_file_size_is_reproduced() {
    // bartowski/Qwen_Qwen3-32B-GGUF lists Qwen3-32B-Q8_0.gguf at 34.82 GB.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("q32-q8.gguf");
    let s = synth(&sparse("qwen3-32b", Some("Q8_0"), 1, &out)).expect("synth");
    let gb = s.file_bytes as f64 / GB;
    assert!((gb - 34.82).abs() < 0.005, "{gb} GB");
}

#[test]
fn tensor_types_follow_llama_quantize() {
    let dir = tempfile::tempdir().expect("tempdir");

    // Qwen3-8B Q4_K_M (src/llama-quant.cpp): output Q6_K, token_embd Q4_K, attn_v and
    // ffn_down Q6_K where use_more_bits(i, 36) holds: i < 4, i >= 31, (i - 4) % 3 == 2.
    let out = dir.path().join("q8b.gguf");
    synth(&sparse("qwen3-8b", Some("Q4_K_M"), 1, &out)).expect("synth");
    let m = GgufModel::open(&out).expect("open");
    assert_eq!(type_of(&m, "output.weight").ggml_type, GgmlType::Q6_K);
    assert_eq!(type_of(&m, "token_embd.weight").ggml_type, GgmlType::Q4_K);
    assert_eq!(type_of(&m, "output_norm.weight").ggml_type, GgmlType::F32);
    for i in 0..36 {
        let more = !(4..31).contains(&i) || (i - 4) % 3 == 2;
        let want = if more { GgmlType::Q6_K } else { GgmlType::Q4_K };
        assert_eq!(
            type_of(&m, &format!("blk.{i}.attn_v.weight")).ggml_type,
            want,
            "layer {i}"
        );
        assert_eq!(
            type_of(&m, &format!("blk.{i}.ffn_down.weight")).ggml_type,
            want,
            "layer {i}"
        );
        assert_eq!(
            type_of(&m, &format!("blk.{i}.attn_q.weight")).ggml_type,
            GgmlType::Q4_K
        );
        assert_eq!(
            type_of(&m, &format!("blk.{i}.ffn_up.weight")).ggml_type,
            GgmlType::Q4_K
        );
        assert_eq!(
            type_of(&m, &format!("blk.{i}.attn_q_norm.weight")).ggml_type,
            GgmlType::F32
        );
    }
    assert_eq!(u64_key(&m, "general.file_type"), 15);

    // Qwen3-235B-A22B Q2_K: attn_v Q4_K (GQA 16), attn_output and every ffn_down Q3_K,
    // the rest Q2_K, the router F32.
    let out = dir.path().join("q235.gguf");
    synth(&sparse("qwen3-235b-a22b", Some("Q2_K"), 1, &out)).expect("synth");
    let m = GgufModel::open(&out).expect("open");
    for (name, want) in [
        ("output.weight", "q6_K"),
        ("token_embd.weight", "q2_K"),
        ("blk.0.attn_v.weight", "q4_K"),
        ("blk.50.attn_k.weight", "q2_K"),
        ("blk.93.attn_output.weight", "q3_K"),
        ("blk.7.ffn_down_exps.weight", "q3_K"),
        ("blk.7.ffn_gate_exps.weight", "q2_K"),
        ("blk.7.ffn_up_exps.weight", "q2_K"),
        ("blk.7.ffn_gate_inp.weight", "f32"),
    ] {
        assert_eq!(type_of(&m, name).ggml_type, ty(want), "{name}");
    }
    assert_eq!(
        type_of(&m, "blk.7.ffn_down_exps.weight").shape,
        vec![1536, 4096, 128]
    );
    assert_eq!(u64_key(&m, "general.file_type"), 10);
}

#[test]
fn qwen35_hybrid_layout_matches_llama_cpps_loader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("q397.gguf");
    synth(&sparse("qwen3.5-397b-a17b", None, 1, &out)).expect("synth");
    let m = GgufModel::open(&out).expect("open");
    let names: HashSet<&str> = m.tensors().map(|t| t.name.as_str()).collect();
    let mut full = 0;
    for il in 0..60 {
        let has = |t: &str| names.contains(format!("blk.{il}.{t}").as_str());
        // llama_model_qwen35moe::load_arch_hparams: recurrent unless (il + 1) % 4 == 0
        if (il + 1) % 4 == 0 {
            full += 1;
            assert!(has("attn_q.weight") && has("attn_k.weight") && has("attn_v.weight"));
            assert!(has("attn_q_norm.weight") && !has("attn_qkv.weight") && !has("ssm_a"));
        } else {
            for t in [
                "attn_qkv.weight",
                "attn_gate.weight",
                "ssm_conv1d.weight",
                "ssm_dt.bias",
                "ssm_a",
                "ssm_beta.weight",
                "ssm_alpha.weight",
                "ssm_norm.weight",
                "ssm_out.weight",
            ] {
                assert!(has(t), "blk.{il}.{t}");
            }
            assert!(!has("attn_q.weight"));
        }
        for t in [
            "post_attention_norm.weight",
            "ffn_gate_inp.weight",
            "ffn_gate_exps.weight",
            "ffn_up_exps.weight",
            "ffn_down_exps.weight",
            "ffn_gate_inp_shexp.weight",
            "ffn_gate_shexp.weight",
            "ffn_up_shexp.weight",
            "ffn_down_shexp.weight",
        ] {
            assert!(has(t), "blk.{il}.{t}");
        }
    }
    assert_eq!(full, 15);
    // shapes from HF config: q with output gate = 2 × 32 heads × 256; GDN qkv = 2 × 16 ×
    // 128 + 64 × 128; 512 experts of 1024
    assert_eq!(type_of(&m, "blk.3.attn_q.weight").shape, vec![4096, 16384]);
    assert_eq!(type_of(&m, "blk.3.attn_k.weight").shape, vec![4096, 512]);
    assert_eq!(
        type_of(&m, "blk.3.attn_output.weight").shape,
        vec![8192, 4096]
    );
    assert_eq!(
        type_of(&m, "blk.0.attn_qkv.weight").shape,
        vec![4096, 12288]
    );
    assert_eq!(type_of(&m, "blk.0.ssm_conv1d.weight").shape, vec![4, 12288]);
    assert_eq!(type_of(&m, "blk.0.ssm_out.weight").shape, vec![8192, 4096]);
    assert_eq!(
        type_of(&m, "blk.0.ffn_up_exps.weight").shape,
        vec![4096, 1024, 512]
    );
    for (key, want) in [
        ("qwen35moe.ssm.conv_kernel", 4),
        ("qwen35moe.ssm.state_size", 128),
        ("qwen35moe.ssm.group_count", 16),
        ("qwen35moe.ssm.time_step_rank", 64),
        ("qwen35moe.ssm.inner_size", 8192),
        ("qwen35moe.full_attention_interval", 4),
        ("qwen35moe.expert_shared_feed_forward_length", 1024),
        ("qwen35moe.rope.dimension_count", 64),
        ("general.file_type", 19),
    ] {
        assert_eq!(u64_key(&m, key), want, "{key}");
    }
    // the dynamic mix: experts mostly IQ2_XXS, sensitive tensors higher
    assert_eq!(
        type_of(&m, "blk.20.ffn_gate_exps.weight").ggml_type,
        GgmlType::IQ2_XXS
    );
    assert_eq!(
        type_of(&m, "blk.0.ffn_down_exps.weight").ggml_type,
        GgmlType::IQ3_XXS
    );
    assert_eq!(
        type_of(&m, "blk.0.ssm_out.weight").ggml_type,
        GgmlType::Q6_K
    );
    assert_eq!(
        type_of(&m, "blk.0.ssm_alpha.weight").ggml_type,
        GgmlType::F32
    );
}

#[test]
fn tokenizer_is_a_valid_bpe_vocabulary() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["qwen3-8b", "micro-dense", "tiny-dense-1b"] {
        let p = find_preset(name).expect("preset");
        let out = dir.path().join(format!("{name}.gguf"));
        synth(&sparse(name, None, 1, &out)).expect("synth");
        let m = GgufModel::open(&out).expect("open");
        let strings = |key: &str| -> Vec<String> {
            let arr = m.get(key).and_then(GgufValue::as_array).expect(key);
            (0..arr.len())
                .map(|i| match arr {
                    strix_run::gguf::GgufArray::String(v) => v[i].clone(),
                    _ => panic!("{key} is not a string array"),
                })
                .collect()
        };
        let tokens = strings("tokenizer.ggml.tokens");
        let unique: HashSet<&String> = tokens.iter().collect();
        assert_eq!(unique.len(), tokens.len(), "{name}: duplicate tokens");
        for merge in strings("tokenizer.ggml.merges") {
            let (a, b) = merge.split_once(' ').expect("merge has two parts");
            assert!(unique.contains(&format!("{a}{b}")), "{name}: merge {merge}");
            assert!(unique.contains(&a.to_string()) && unique.contains(&b.to_string()));
        }
        let id = |key: &str| u64_key(&m, key) as usize;
        assert_eq!(tokens[id("tokenizer.ggml.bos_token_id")], p.tokenizer.bos);
        assert_eq!(tokens[id("tokenizer.ggml.eos_token_id")], p.tokenizer.eos);
        assert_eq!(
            m.get("tokenizer.ggml.pre").and_then(GgufValue::as_str),
            Some(p.tokenizer.pre)
        );
    }
    // Qwen3's real ids: <|endoftext|> 151643, <|im_end|> 151645
    let p = find_preset("qwen3-8b").expect("preset");
    assert_eq!(p.tokenizer.special_base, 151_643);
}

#[test]
fn shards_find_each_other_and_carry_split_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("sub").join("micro.gguf");
    let s = synth(&sparse("micro-moe", Some("Q4_K_M"), 3, &out)).expect("synth");
    let names: Vec<String> = s
        .files
        .iter()
        .map(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "micro-00001-of-00003.gguf",
            "micro-00002-of-00003.gguf",
            "micro-00003-of-00003.gguf"
        ]
    );
    // any shard finds the set
    let m = GgufModel::open(&s.files[1]).expect("open middle shard");
    assert_eq!(m.shards.len(), 3);
    assert_eq!(m.tensors().count(), s.tensors);
    assert_eq!(m.file_bytes(), s.file_bytes);
    for (i, shard) in m.shards.iter().enumerate() {
        let h = &shard.header;
        assert!(!h.tensors.is_empty(), "shard {i} is empty");
        assert_eq!(h.get("split.no"), Some(&GgufValue::U16(i as u16)));
        assert_eq!(h.get("split.count"), Some(&GgufValue::U16(3)));
        assert_eq!(
            h.get("split.tensors.count"),
            Some(&GgufValue::I32(s.tensors as i32))
        );
        // only the first shard carries the model's metadata (gguf-split)
        assert_eq!(h.get("general.architecture").is_some(), i == 0);
    }
    // data is spread by size: no shard holds more than half of it
    let biggest = m
        .shards
        .iter()
        .map(|s| s.header.tensor_bytes())
        .max()
        .unwrap_or(0);
    assert!(biggest * 2 < s.tensor_bytes);
    // a missing shard is reported
    std::fs::remove_file(&s.files[2]).expect("rm");
    assert!(GgufModel::open(&s.files[0]).is_err());

    // an output already named like a shard keeps its prefix
    let out = dir.path().join("x-00001-of-00002.gguf");
    let s = synth(&sparse("micro-dense", None, 2, &out)).expect("synth");
    assert_eq!(s.files[1], dir.path().join("x-00002-of-00002.gguf"));
    // one shard: exactly the path given, no split keys
    let out = dir.path().join("single.gguf");
    let s = synth(&sparse("micro-dense", None, 1, &out)).expect("synth");
    assert_eq!(s.files, vec![out.clone()]);
    let m = GgufModel::open(&out).expect("open");
    assert!(m.get("split.count").is_none());
}

#[test]
fn bad_requests_are_typed_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.gguf");
    match synth(&sparse("qwen4-1t", None, 1, &out)) {
        Err(SynthError::UnknownPreset { known, .. }) => {
            assert!(known.contains("qwen3-235b-a22b") && known.contains("micro-dense"));
        }
        other => panic!("expected UnknownPreset, got {other:?}"),
    }
    assert!(matches!(
        synth(&sparse("micro-dense", Some("Q9_Z"), 1, &out)),
        Err(SynthError::UnknownQuant { .. })
    ));
    assert!(matches!(
        synth(&sparse("micro-dense", None, 10_000, &out)),
        Err(SynthError::BadShards { .. })
    ));
    assert!(matches!(
        synth(&sparse("micro-dense", None, 1, Path::new("/"))),
        Err(SynthError::BadOutput { .. })
    ));
    // aliases and case do not matter
    assert_eq!(
        find_preset("Qwen3-235B-A22B").map(|p| p.name).ok(),
        Some("qwen3-235b-a22b")
    );
    assert_eq!(
        find_preset("QWEN3:8B").map(|p| p.name).ok(),
        Some("qwen3-8b")
    );
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let mant = f32::from(h & 0x3ff);
    match exp {
        0 => sign * mant * 2f32.powi(-24),
        31 => f32::NAN,
        e => sign * (1.0 + mant / 1024.0) * 2f32.powi(e - 15),
    }
}

#[test]
fn real_weights_are_seeded_and_their_scales_finite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, seed: u64| {
        let out = dir.path().join(name);
        let req = SynthRequest {
            preset: "micro-dense".into(),
            quant: Some("Q4_K_M".into()),
            out: out.clone(),
            sparse: false,
            shards: 1,
            seed,
            existing: strix_run::files::Existing::Replace,
        };
        synth(&req).expect("synth");
        std::fs::read(&out).expect("read")
    };
    let a = write("a.gguf", 7);
    let b = write("b.gguf", 7);
    let c = write("c.gguf", 8);
    assert_eq!(a, b, "same seed, same bytes");
    assert_ne!(a, c, "another seed, other weights");

    let m = GgufModel::open(&dir.path().join("a.gguf")).expect("open");
    let data = m.header().data_offset as usize;
    let tensor = |name: &str| {
        let t = type_of(&m, name);
        let start = data + t.offset as usize;
        (t.clone(), &a[start..start + t.n_bytes as usize])
    };
    // norms are 1
    let (_, norm) = tensor("blk.0.attn_norm.weight");
    assert!(norm
        .chunks_exact(4)
        .all(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) == 1.0));
    // Q4_K: d and dmin at bytes 0 and 2 of each 144-byte block; Q6_K: d at byte 208 of 210
    for (name, block, offsets) in [
        ("blk.1.attn_q.weight", 144usize, &[0usize, 2][..]),
        // use_more_bits(3, 4): the last eighth of 4 layers
        ("blk.3.attn_v.weight", 210, &[208][..]),
        ("output.weight", 210, &[208][..]),
    ] {
        let (t, bytes) = tensor(name);
        let want = if block == 144 {
            GgmlType::Q4_K
        } else {
            GgmlType::Q6_K
        };
        assert_eq!(t.ggml_type, want, "{name}");
        assert_eq!(bytes.len() % block, 0, "{name}");
        for b in bytes.chunks_exact(block) {
            for &o in offsets {
                let d = f16_to_f32(u16::from_le_bytes([b[o], b[o + 1]]));
                assert!(d.is_finite() && d > 0.0 && d < 0.01, "{name}: scale {d}");
            }
        }
        assert!(bytes.iter().any(|&x| x != 0));
    }
}

#[test]
fn every_quantization_writes_real_weights_for_a_runnable_preset() {
    let dir = tempfile::tempdir().expect("tempdir");
    for quant in quant_names() {
        let out = dir.path().join(format!("{quant}.gguf"));
        let req = SynthRequest {
            preset: "micro-hybrid".into(),
            quant: Some(quant.into()),
            out: out.clone(),
            sparse: false,
            shards: 1,
            seed: 1,
            existing: strix_run::files::Existing::Replace,
        };
        let s = synth(&req).unwrap_or_else(|e| panic!("{quant}: {e}"));
        assert_eq!(std::fs::metadata(&out).expect("stat").len(), s.file_bytes);
        std::fs::remove_file(&out).expect("rm");
    }
}

#[test]
fn runnable_presets_are_small_and_seed_presets_are_not() {
    for p in presets() {
        let plan = tensor_plan(p, p.default_quant).expect("plan");
        let bytes: u64 = plan.iter().map(|t| t.n_bytes()).sum();
        if p.name.starts_with("micro-") {
            assert!(p.runnable && bytes < 100_000_000, "{}: {bytes}", p.name);
        }
        if !p.runnable {
            assert!(bytes > 4_000_000_000, "{}", p.name);
        }
    }
}
