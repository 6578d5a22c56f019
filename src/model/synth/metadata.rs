//! The GGUF metadata keys of a synthetic model: architecture hyperparameters, file type
//! and tokenizer, as convert_hf_to_gguf.py and llama-quantize write them.

use super::error::SynthError;
use super::quant::Quant;
use super::vocab::build_vocab;
use crate::gguf::{GgufArray, GgufValue};
use crate::model::presets::Preset;

/// The metadata convert_hf_to_gguf.py and llama-quantize write for this architecture
/// (keys from src/llama-arch.cpp `LLM_KV_NAMES`, read by `llama_model_base::load_hparams`
/// and the architecture's `load_arch_hparams`).
pub(super) fn metadata(p: &Preset, q: &Quant) -> Result<Vec<(String, GgufValue)>, SynthError> {
    use GgufValue::{Bool, String as S, F32, U32};
    let a = p.arch;
    let mut m: Vec<(String, GgufValue)> = Vec::new();
    let mut set = |k: String, v: GgufValue| m.push((k, v));
    set("general.architecture".into(), S(a.into()));
    set("general.type".into(), S("model".into()));
    set("general.name".into(), S(p.display_name.into()));
    set("general.basename".into(), S(p.basename.into()));
    set("general.size_label".into(), S(p.size_label.into()));
    if q.ftype.default_type().traits().is_some_and(|t| t.quantized) {
        set("general.quantization_version".into(), U32(2));
    }
    set("general.file_type".into(), U32(q.ftype.file_type()));
    if q.ud {
        set(
            "general.quantized_by".into(),
            S("strix-run synth (Unsloth-style dynamic mix)".into()),
        );
    }
    set(format!("{a}.block_count"), U32(p.n_layer));
    set(format!("{a}.context_length"), U32(p.n_ctx_train));
    set(format!("{a}.embedding_length"), U32(p.n_embd));
    if p.n_ff > 0 {
        set(format!("{a}.feed_forward_length"), U32(p.n_ff));
    }
    set(format!("{a}.attention.head_count"), U32(p.n_head));
    set(format!("{a}.attention.head_count_kv"), U32(p.n_head_kv));
    set(format!("{a}.rope.freq_base"), F32(p.rope_freq_base));
    set(
        format!("{a}.attention.layer_norm_rms_epsilon"),
        F32(p.rms_eps),
    );
    set(format!("{a}.attention.key_length"), U32(p.head_dim));
    set(format!("{a}.attention.value_length"), U32(p.head_dim));
    if a == "llama" || p.n_rot != p.head_dim {
        set(format!("{a}.rope.dimension_count"), U32(p.n_rot));
    }
    if a == "llama" {
        set(format!("{a}.vocab_size"), U32(p.n_vocab));
    }
    if let Some(moe) = p.moe {
        set(format!("{a}.expert_count"), U32(moe.n_expert));
        set(format!("{a}.expert_used_count"), U32(moe.n_expert_used));
        set(format!("{a}.expert_feed_forward_length"), U32(moe.n_ff_exp));
        if moe.n_ff_shexp > 0 {
            set(
                format!("{a}.expert_shared_feed_forward_length"),
                U32(moe.n_ff_shexp),
            );
        }
    }
    if let Some(h) = p.hybrid {
        set(
            format!("{a}.rope.dimension_sections"),
            GgufValue::Array(GgufArray::I32(h.rope_sections.to_vec())),
        );
        set(format!("{a}.ssm.conv_kernel"), U32(h.ssm_conv_kernel));
        set(format!("{a}.ssm.state_size"), U32(h.ssm_state_size));
        set(format!("{a}.ssm.group_count"), U32(h.ssm_group_count));
        set(format!("{a}.ssm.time_step_rank"), U32(h.ssm_time_step_rank));
        set(format!("{a}.ssm.inner_size"), U32(h.ssm_inner_size));
        set(
            format!("{a}.full_attention_interval"),
            U32(h.full_attention_interval),
        );
    }
    let vocab = build_vocab(p)?;
    set("tokenizer.ggml.model".into(), S("gpt2".into()));
    set("tokenizer.ggml.pre".into(), S(p.tokenizer.pre.into()));
    set(
        "tokenizer.ggml.tokens".into(),
        GgufValue::Array(GgufArray::String(vocab.tokens)),
    );
    set(
        "tokenizer.ggml.token_type".into(),
        GgufValue::Array(GgufArray::I32(vocab.types)),
    );
    set(
        "tokenizer.ggml.merges".into(),
        GgufValue::Array(GgufArray::String(vocab.merges)),
    );
    set("tokenizer.ggml.eos_token_id".into(), U32(vocab.eos));
    set("tokenizer.ggml.padding_token_id".into(), U32(vocab.pad));
    set("tokenizer.ggml.bos_token_id".into(), U32(vocab.bos));
    set(
        "tokenizer.ggml.add_bos_token".into(),
        Bool(p.tokenizer.add_bos),
    );
    set(
        "tokenizer.chat_template".into(),
        S(p.tokenizer.chat_template.into()),
    );
    Ok(m)
}
