//! The tensors of a synthetic model: every tensor llama.cpp's loader asks for, with its
//! real shape, in file order, and the type the quantization gives it.

use super::error::SynthError;
use super::quant::parse_quant;
use super::type_mix::{allows_quantization, fallback, ud_iq2_xxs_type, MixState};
use crate::gguf::GgmlType;
use crate::model::presets::{HybridShape, MoeShape, Preset};

/// One tensor of a synthetic model: its name, shape (innermost first, like ggml's `ne`)
/// and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTensor {
    /// GGUF tensor name (`blk.3.ffn_down_exps.weight`).
    pub name: String,
    /// Shape, innermost dimension first.
    pub shape: Vec<u64>,
    /// Type chosen for the quantization.
    pub ggml_type: GgmlType,
}

impl PlannedTensor {
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Bytes of data (0 if the shape does not fit the type, which the planner never does).
    pub fn n_bytes(&self) -> u64 {
        let rows = self.n_elements() / self.shape.first().copied().unwrap_or(1).max(1);
        self.ggml_type
            .row_bytes(self.shape.first().copied().unwrap_or(0))
            .map_or(0, |row| row * rows)
    }
}

/// The tensors llama.cpp's loader creates for the preset, in the order it creates them
/// (`load_arch_tensors` of src/models/llama.cpp, qwen3.cpp, qwen3moe.cpp, qwen35moe.cpp).
fn tensor_shapes(p: &Preset) -> Result<Vec<(String, Vec<u64>)>, SynthError> {
    let bad = |problem: String| SynthError::InvalidPreset {
        preset: p.name.to_string(),
        problem,
    };
    if !matches!(p.arch, "llama" | "qwen3" | "qwen3moe" | "qwen35moe") {
        return Err(bad(format!("architecture '{}' is not synthesized", p.arch)));
    }
    if matches!(p.arch, "qwen3moe" | "qwen35moe") != p.moe.is_some() {
        return Err(bad(
            "experts must be given exactly for the MoE architectures".into(),
        ));
    }
    if (p.arch == "qwen35moe") != p.hybrid.is_some() {
        return Err(bad("the hybrid shape belongs to qwen35moe only".into()));
    }
    let e = u64::from(p.n_embd);
    let v = u64::from(p.n_vocab);
    let hd = u64::from(p.head_dim);
    let q_dim = u64::from(p.n_head) * hd;
    let kv_dim = u64::from(p.n_head_kv) * hd;
    let mut out: Vec<(String, Vec<u64>)> = Vec::new();
    let mut add = |name: String, shape: Vec<u64>| out.push((name, shape));

    add("token_embd.weight".into(), vec![e, v]);
    for il in 0..p.n_layer {
        let b = |t: &str| format!("blk.{il}.{t}");
        add(b("attn_norm.weight"), vec![e]);
        match (p.arch, p.hybrid) {
            ("qwen35moe", Some(h)) => {
                add(b("post_attention_norm.weight"), vec![e]);
                if h.is_recurrent(il) {
                    linear_attention_tensors(&h, e, &mut |n, s| add(b(n), s));
                } else {
                    // the query projection also produces the output gate: 2 × heads × dim
                    add(b("attn_q.weight"), vec![e, 2 * q_dim]);
                    add(b("attn_k.weight"), vec![e, kv_dim]);
                    add(b("attn_v.weight"), vec![e, kv_dim]);
                    add(b("attn_output.weight"), vec![q_dim, e]);
                    add(b("attn_q_norm.weight"), vec![hd]);
                    add(b("attn_k_norm.weight"), vec![hd]);
                }
            }
            _ => {
                add(b("attn_q.weight"), vec![e, q_dim]);
                add(b("attn_k.weight"), vec![e, kv_dim]);
                add(b("attn_v.weight"), vec![e, kv_dim]);
                add(b("attn_output.weight"), vec![q_dim, e]);
                if p.arch != "llama" {
                    add(b("attn_k_norm.weight"), vec![hd]);
                    add(b("attn_q_norm.weight"), vec![hd]);
                }
                add(b("ffn_norm.weight"), vec![e]);
            }
        }
        match p.moe {
            None => {
                let f = u64::from(p.n_ff);
                add(b("ffn_gate.weight"), vec![e, f]);
                add(b("ffn_down.weight"), vec![f, e]);
                add(b("ffn_up.weight"), vec![e, f]);
            }
            Some(m) => moe_tensors(p.arch, &m, e, &mut |n, s| add(b(n), s)),
        }
    }
    add("output_norm.weight".into(), vec![e]);
    if !p.tied_embeddings {
        add("output.weight".into(), vec![e, v]);
    }
    Ok(out)
}

/// Gated-delta-net tensors of a linear-attention block (`load_block_trunk` in
/// src/models/qwen35moe.cpp): head_k_dim = head_v_dim = ssm.state_size, key heads =
/// ssm.group_count, value heads = ssm.time_step_rank.
fn linear_attention_tensors(h: &HybridShape, e: u64, add: &mut dyn FnMut(&str, Vec<u64>)) {
    let d_state = u64::from(h.ssm_state_size);
    let n_v_heads = u64::from(h.ssm_time_step_rank);
    let key_dim = d_state * u64::from(h.ssm_group_count);
    let value_dim = d_state * n_v_heads;
    let conv_dim = 2 * key_dim + value_dim;
    add("attn_qkv.weight", vec![e, conv_dim]);
    add("attn_gate.weight", vec![e, value_dim]);
    add(
        "ssm_conv1d.weight",
        vec![u64::from(h.ssm_conv_kernel), conv_dim],
    );
    add("ssm_dt.bias", vec![n_v_heads]);
    add("ssm_a", vec![n_v_heads]);
    add("ssm_beta.weight", vec![e, n_v_heads]);
    add("ssm_alpha.weight", vec![e, n_v_heads]);
    add("ssm_norm.weight", vec![d_state]);
    add("ssm_out.weight", vec![value_dim, e]);
}

/// Router, routed experts (stacked: `[in, out, n_expert]`) and the shared expert.
fn moe_tensors(arch: &str, m: &MoeShape, e: u64, add: &mut dyn FnMut(&str, Vec<u64>)) {
    let x = u64::from(m.n_expert);
    let f = u64::from(m.n_ff_exp);
    add("ffn_gate_inp.weight", vec![e, x]);
    if arch == "qwen35moe" {
        add("ffn_down_exps.weight", vec![f, e, x]);
        add("ffn_gate_exps.weight", vec![e, f, x]);
        add("ffn_up_exps.weight", vec![e, f, x]);
    } else {
        add("ffn_gate_exps.weight", vec![e, f, x]);
        add("ffn_down_exps.weight", vec![f, e, x]);
        add("ffn_up_exps.weight", vec![e, f, x]);
    }
    if m.n_ff_shexp > 0 {
        let fs = u64::from(m.n_ff_shexp);
        add("ffn_gate_inp_shexp.weight", vec![e]);
        add("ffn_gate_shexp.weight", vec![e, fs]);
        add("ffn_up_shexp.weight", vec![e, fs]);
        add("ffn_down_shexp.weight", vec![fs, e]);
    }
}

/// The tensors of `preset` with the types `quant` gives them, in file order.
pub fn tensor_plan(preset: &Preset, quant: &str) -> Result<Vec<PlannedTensor>, SynthError> {
    let q = parse_quant(quant)?;
    let shapes = tensor_shapes(preset)?;
    let default = q.ftype.default_type();
    let quantized = default.traits().is_some_and(|t| t.quantized);
    let mut state = MixState::new(preset, q.ftype, &shapes);
    let mut plan = Vec::with_capacity(shapes.len());
    for (name, shape) in shapes {
        let ggml_type = if !allows_quantization(&name, &shape) {
            // what convert_hf_to_gguf.py stores: norms, 1-D tensors, routers, conv1d in F32
            GgmlType::F32
        } else if q.ud {
            fallback(shape[0], ud_iq2_xxs_type(&name, preset.n_layer))
        } else if quantized {
            let chosen = state.choose(&name, &shape, default);
            fallback(shape[0], chosen)
        } else {
            default
        };
        plan.push(PlannedTensor {
            name,
            shape,
            ggml_type,
        });
    }
    Ok(plan)
}
