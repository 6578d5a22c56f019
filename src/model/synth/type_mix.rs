//! The type of each tensor: llama.cpp's per-tensor quantization mix
//! (`llama_tensor_get_type_impl` of src/llama-quant.cpp, ported), the
//! [`UD_IQ2_XXS`](super::quant::UD_IQ2_XXS) dynamic mix, and the fallback for rows a
//! type's block does not divide.

use super::quant::{gt, Ftype};
use crate::gguf::GgmlType;
use crate::model::presets::Preset;

/// `tensor_category` of src/llama-quant.cpp (`tensor_get_category`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Output,
    TokenEmbd,
    AttnQkv,
    AttnKvB,
    AttnV,
    AttnK,
    AttnQ,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Other,
}

fn category(name: &str) -> Category {
    if name == "output.weight" {
        Category::Output
    } else if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        Category::TokenEmbd
    } else if name.contains("attn_qkv.weight") {
        Category::AttnQkv
    } else if name.contains("attn_kv_b.weight") {
        Category::AttnKvB
    } else if name.contains("attn_v.weight") {
        Category::AttnV
    } else if name.contains("attn_k.weight") {
        Category::AttnK
    } else if name.contains("attn_q.weight") {
        Category::AttnQ
    } else if name.contains("attn_output.weight") {
        Category::AttnOutput
    } else if name.contains("ffn_up") {
        Category::FfnUp
    } else if name.contains("ffn_gate") {
        Category::FfnGate
    } else if name.contains("ffn_down") {
        Category::FfnDown
    } else {
        Category::Other
    }
}

fn is_attn_v(cat: Category) -> bool {
    matches!(cat, Category::AttnV | Category::AttnQkv | Category::AttnKvB)
}

/// `tensor_allows_quantization` (src/llama-quant.cpp), for the tensor names these
/// presets have: 2-D and 3-D weights except norms, routers and conv1d.
pub(super) fn allows_quantization(name: &str, shape: &[u64]) -> bool {
    shape.len() >= 2
        && name.ends_with("weight")
        && !name.contains("_norm.weight")
        && !name.contains("ffn_gate_inp.weight")
        && !name.contains("ssm_conv1d")
}

/// `use_more_bits` of `llama_tensor_get_type_impl`.
fn use_more_bits(i: i64, n: i64) -> bool {
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// The layer number in a `blk.N.` tensor name.
fn layer_of(name: &str) -> Option<u32> {
    name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
}

/// `quantize_state_impl`: the counters llama-quantize keeps while walking the tensors.
pub(super) struct MixState {
    ftype: Ftype,
    has_imatrix: bool,
    has_tied_embeddings: bool,
    n_expert: u32,
    n_gqa: u32,
    n_attention_wv: i64,
    i_attention_wv: i64,
    n_ffn_down: i64,
    i_ffn_down: i64,
    i_ffn_gate: i64,
    i_ffn_up: i64,
}

impl MixState {
    /// The counters before the first of `tensors` (all of the model's, in file order).
    pub(super) fn new(preset: &Preset, ftype: Ftype, tensors: &[(String, Vec<u64>)]) -> Self {
        MixState {
            ftype,
            has_imatrix: ftype.has_imatrix(),
            has_tied_embeddings: !tensors.iter().any(|(n, _)| n == "output.weight"),
            n_expert: preset.moe.map_or(0, |m| m.n_expert),
            n_gqa: preset.n_head / preset.n_head_kv.max(1),
            n_attention_wv: tensors
                .iter()
                .filter(|(n, _)| is_attn_v(category(n)))
                .count() as i64,
            i_attention_wv: 0,
            n_ffn_down: i64::from(preset.n_layer),
            i_ffn_down: 0,
            i_ffn_gate: 0,
            i_ffn_up: 0,
        }
    }

    /// `layer_info`: with experts the layer comes from the name, else from the counter.
    fn layer_info(&self, counter: i64, name: &str) -> (i64, i64) {
        if self.n_expert > 1 {
            if let Some(l) = layer_of(name) {
                return (i64::from(l), self.n_ffn_down);
            }
        }
        (counter, self.n_ffn_down)
    }

    /// `llama_tensor_get_type_impl` (src/llama-quant.cpp) for the architectures of the
    /// presets (no Falcon, no 70B special case, no MXFP4/ternary ftypes).
    pub(super) fn choose(&mut self, name: &str, shape: &[u64], mut new: GgmlType) -> GgmlType {
        use Ftype::*;
        let f = self.ftype;
        let cat = category(name);
        let is_iq_family = matches!(f, IQ2_XXS | IQ2_XS | IQ1_S | IQ2_S | IQ2_M | IQ1_M);
        if cat == Category::Output || (self.has_tied_embeddings && cat == Category::TokenEmbd) {
            let block = new.traits().map_or(1, |t| u64::from(t.block_size));
            if !shape[0].is_multiple_of(block) {
                new = GgmlType::Q8_0;
            } else if matches!(
                f,
                IQ2_XXS | IQ2_XS | IQ3_XXS | IQ1_S | IQ2_S | IQ2_M | IQ1_M
            ) {
                new = GgmlType::Q5_K;
            } else if new != GgmlType::Q8_0 {
                new = GgmlType::Q6_K;
            }
        } else if cat == Category::TokenEmbd {
            if matches!(f, IQ2_XXS | IQ2_XS | IQ1_S | IQ1_M) {
                new = GgmlType::Q2_K;
            } else if matches!(f, IQ2_S | IQ2_M | IQ3_XXS) {
                new = GgmlType::IQ3_S;
            }
        } else if is_iq_family {
            if is_attn_v(cat) {
                new = if self.n_gqa >= 4 || self.n_expert >= 4 {
                    GgmlType::Q4_K
                } else if matches!(f, IQ2_S | IQ2_M) {
                    GgmlType::IQ3_S
                } else {
                    GgmlType::Q2_K
                };
                self.i_attention_wv += 1;
            } else if self.n_expert == 8 && cat == Category::AttnK {
                new = GgmlType::Q4_K;
            } else if cat == Category::FfnDown {
                if self.i_ffn_down < self.n_ffn_down / 8 {
                    new = if matches!(f, IQ2_S | IQ2_M) {
                        GgmlType::IQ3_S
                    } else {
                        GgmlType::Q2_K
                    };
                }
                self.i_ffn_down += 1;
            } else if cat == Category::AttnOutput {
                if self.n_expert == 8 {
                    new = GgmlType::Q5_K;
                } else if matches!(f, IQ1_S | IQ1_M) {
                    new = GgmlType::IQ2_XXS;
                } else if matches!(f, IQ2_S | IQ2_M) {
                    new = GgmlType::IQ3_S;
                }
            }
        } else if is_attn_v(cat) {
            let gqa4 = self.n_gqa >= 4;
            if f == Q2_K {
                new = if gqa4 { GgmlType::Q4_K } else { GgmlType::Q3_K };
            } else if f == Q2_K_S && gqa4 {
                new = GgmlType::Q4_K;
            } else if f == IQ3_XXS {
                new = if gqa4 {
                    GgmlType::Q4_K
                } else if !self.has_imatrix {
                    GgmlType::IQ3_S
                } else {
                    GgmlType::IQ3_XXS
                };
            } else if (matches!(f, IQ3_XS | IQ3_S) && gqa4) || f == IQ3_M {
                new = GgmlType::Q4_K;
            } else if f == Q3_K_M {
                new = if self.i_attention_wv < 2 {
                    GgmlType::Q5_K
                } else {
                    GgmlType::Q4_K
                };
            } else if f == Q3_K_L || (matches!(f, IQ4_NL | IQ4_XS) && gqa4) {
                new = GgmlType::Q5_K;
            } else if matches!(f, Q4_K_M | Q5_K_M)
                && use_more_bits(self.i_attention_wv, self.n_attention_wv)
            {
                new = GgmlType::Q6_K;
            } else if f == Q4_K_S && self.i_attention_wv < 4 {
                new = GgmlType::Q5_K;
            }
            if self.n_expert == 8 {
                new = GgmlType::Q8_0;
            }
            self.i_attention_wv += 1;
        } else if cat == Category::AttnK {
            if self.n_expert == 8 {
                new = GgmlType::Q8_0;
            } else if f == IQ3_XS {
                new = GgmlType::IQ3_XXS;
            } else if f == IQ3_XXS {
                new = GgmlType::IQ2_S;
            }
        } else if cat == Category::AttnQ {
            if f == IQ3_XS {
                new = GgmlType::IQ3_XXS;
            } else if f == IQ3_XXS {
                new = GgmlType::IQ2_S;
            }
        } else if cat == Category::FfnDown {
            let (i_layer, n_layer) = self.layer_info(self.i_ffn_down, name);
            if f == Q2_K {
                new = GgmlType::Q3_K;
            } else if f == Q2_K_S {
                if i_layer < n_layer / 8 {
                    new = GgmlType::Q4_K;
                }
            } else if f == IQ3_XXS && !self.has_imatrix {
                new = if i_layer < n_layer / 8 {
                    GgmlType::Q4_K
                } else {
                    GgmlType::Q3_K
                };
            } else if f == Q3_K_M {
                new = if i_layer < n_layer / 16 {
                    GgmlType::Q5_K
                } else {
                    GgmlType::Q4_K
                };
            } else if f == IQ3_M
                && (i_layer < n_layer / 8
                    || (self.n_expert == 8 && use_more_bits(i_layer, n_layer)))
            {
                new = GgmlType::Q4_K;
            } else if f == Q3_K_L {
                new = GgmlType::Q5_K;
            } else if f == Q4_K_M {
                if use_more_bits(i_layer, n_layer) {
                    new = GgmlType::Q6_K;
                }
            } else if i_layer < n_layer / 8 && matches!(f, IQ4_NL | IQ4_XS) && !self.has_imatrix {
                new = GgmlType::Q5_K;
            } else if f == Q5_K_M && use_more_bits(i_layer, n_layer) {
                new = GgmlType::Q6_K;
            } else if f == Q4_K_S && i_layer < n_layer / 8 {
                new = GgmlType::Q5_K;
            } else if matches!(f, Q4_0 | Q5_0) && self.has_imatrix && i_layer < n_layer / 8 {
                new = if f == Q4_0 { gt("q4_1") } else { gt("q5_1") };
            }
            self.i_ffn_down += 1;
        } else if cat == Category::AttnOutput {
            if self.n_expert == 8 {
                if matches!(
                    f,
                    Q2_K | IQ3_XS
                        | IQ3_XXS
                        | Q3_K_S
                        | Q3_K_M
                        | IQ4_NL
                        | Q4_K_S
                        | Q4_K_M
                        | IQ3_S
                        | IQ3_M
                        | IQ4_XS
                ) {
                    new = GgmlType::Q5_K;
                }
            } else if f == Q2_K {
                new = GgmlType::Q3_K;
            } else if f == IQ3_XXS {
                new = GgmlType::IQ3_S;
            } else if f == Q3_K_M || f == IQ3_M {
                new = GgmlType::Q4_K;
            } else if f == Q3_K_L {
                new = GgmlType::Q5_K;
            }
        } else if cat == Category::FfnGate || cat == Category::FfnUp {
            let counter = if cat == Category::FfnGate {
                self.i_ffn_gate
            } else {
                self.i_ffn_up
            };
            let (i_layer, n_layer) = self.layer_info(counter, name);
            if f == IQ3_XS && i_layer >= n_layer / 8 && i_layer < 7 * n_layer / 8 {
                new = GgmlType::IQ3_XXS;
            }
            if cat == Category::FfnGate {
                self.i_ffn_gate += 1;
            } else {
                self.i_ffn_up += 1;
            }
        }
        new
    }
}

/// [`UD_IQ2_XXS`](super::quant::UD_IQ2_XXS)'s choice for one quantizable tensor.
pub(super) fn ud_iq2_xxs_type(name: &str, n_layer: u32) -> GgmlType {
    let cat = category(name);
    let more_bits = |name: &str| {
        layer_of(name).is_some_and(|l| use_more_bits(i64::from(l), i64::from(n_layer)))
    };
    match cat {
        Category::Output => GgmlType::Q6_K,
        Category::TokenEmbd => GgmlType::Q4_K,
        Category::AttnK | Category::AttnV => GgmlType::Q8_0,
        Category::AttnQ | Category::AttnQkv | Category::AttnKvB => GgmlType::Q5_K,
        Category::AttnOutput => GgmlType::Q6_K,
        _ if name.contains("ssm_alpha") || name.contains("ssm_beta") => GgmlType::F32,
        _ if name.contains("ssm_out") => GgmlType::Q6_K,
        _ if name.contains("attn_gate") => GgmlType::Q5_K,
        Category::FfnDown if name.contains("shexp") => GgmlType::Q6_K,
        Category::FfnGate | Category::FfnUp if name.contains("shexp") => GgmlType::Q5_K,
        Category::FfnDown if more_bits(name) => GgmlType::IQ3_XXS,
        _ => GgmlType::IQ2_XXS,
    }
}

/// `tensor_type_fallback` (src/llama-quant.cpp): a row length the type's block does not
/// divide falls back to a type with 32-element blocks, or F16.
pub(super) fn fallback(ne0: u64, target: GgmlType) -> GgmlType {
    let block = |t: GgmlType| t.traits().map_or(1, |tr| u64::from(tr.block_size));
    if ne0.is_multiple_of(block(target)) {
        return target;
    }
    let name = target.name();
    let alt = match name.as_str() {
        "iq1_s" | "iq1_m" | "iq2_xxs" | "iq2_xs" | "iq2_s" | "iq3_xxs" | "iq3_s" | "iq4_xs" => {
            GgmlType::IQ4_NL
        }
        "q2_K" | "q3_K" => GgmlType::Q4_0,
        "q4_K" => gt("q5_0"),
        "q5_K" => gt("q5_1"),
        "q6_K" => GgmlType::Q8_0,
        _ => target,
    };
    if ne0.is_multiple_of(block(alt)) {
        alt
    } else {
        GgmlType::F16
    }
}
