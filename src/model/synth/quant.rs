//! Quantization names: which llama.cpp ftype (`enum llama_ftype`) each accepted name
//! stands for, with its `general.file_type` number and default tensor type.

use super::error::SynthError;
use crate::gguf::GgmlType;

/// Name of strix-run's imitation of Unsloth's "UD-IQ2_XXS" dynamic quant (Unsloth Dynamic
/// 2.0, the quant of the seed's Qwen3.5-397B-A17B download). The recipe is not published
/// tensor by tensor; this one follows what Unsloth and others wrote about it:
/// routed-expert `ffn_gate`/`ffn_up` at IQ2_XXS, `ffn_down` at IQ3_XXS on the
/// layers llama.cpp's `use_more_bits` picks (first and last eighth, every third between)
/// and IQ2_XXS elsewhere; attention and linear-attention projections at Q5_K (K/V: Q8_0),
/// `attn_output` and `ssm_out` (the most quantization-sensitive tensor of Qwen3.5,
/// per Unsloth's KL-divergence study) at Q6_K; `ssm_alpha`/`ssm_beta` kept F32; shared
/// experts at Q5_K (down: Q6_K); `token_embd` Q4_K, `output` Q6_K; routers and norms F32.
/// For Qwen3.5-397B-A17B this lands at 107.4 GiB, the seed's 107 GiB.
/// `general.file_type` is IQ2_XXS (19), as in Unsloth's files.
pub const UD_IQ2_XXS: &str = "UD-IQ2_XXS";

/// `enum llama_ftype` of llama.cpp's `include/llama.h` (the ones imitated here).
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ftype {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2_K,
    Q2_K_S,
    Q3_K_S,
    Q3_K_M,
    Q3_K_L,
    Q4_K_S,
    Q4_K_M,
    Q5_K_S,
    Q5_K_M,
    Q6_K,
    IQ1_S,
    IQ1_M,
    IQ2_XXS,
    IQ2_XS,
    IQ2_S,
    IQ2_M,
    IQ3_XXS,
    IQ3_XS,
    IQ3_S,
    IQ3_M,
    IQ4_NL,
    IQ4_XS,
}

/// Accepted names: llama-quantize's names (`tools/quantize/quantize.cpp`
/// `QUANT_OPTIONS`), its short aliases, and [`UD_IQ2_XXS`].
const QUANT_NAMES: &[(&str, Ftype)] = &[
    ("F32", Ftype::F32),
    ("F16", Ftype::F16),
    ("BF16", Ftype::BF16),
    ("Q4_0", Ftype::Q4_0),
    ("Q4_1", Ftype::Q4_1),
    ("Q5_0", Ftype::Q5_0),
    ("Q5_1", Ftype::Q5_1),
    ("Q8_0", Ftype::Q8_0),
    ("Q2_K", Ftype::Q2_K),
    ("Q2_K_S", Ftype::Q2_K_S),
    ("Q3_K_S", Ftype::Q3_K_S),
    ("Q3_K_M", Ftype::Q3_K_M),
    ("Q3_K", Ftype::Q3_K_M),
    ("Q3_K_L", Ftype::Q3_K_L),
    ("Q4_K_S", Ftype::Q4_K_S),
    ("Q4_K_M", Ftype::Q4_K_M),
    ("Q4_K", Ftype::Q4_K_M),
    ("Q5_K_S", Ftype::Q5_K_S),
    ("Q5_K_M", Ftype::Q5_K_M),
    ("Q5_K", Ftype::Q5_K_M),
    ("Q6_K", Ftype::Q6_K),
    ("IQ1_S", Ftype::IQ1_S),
    ("IQ1_M", Ftype::IQ1_M),
    ("IQ2_XXS", Ftype::IQ2_XXS),
    ("IQ2_XS", Ftype::IQ2_XS),
    ("IQ2_S", Ftype::IQ2_S),
    ("IQ2_M", Ftype::IQ2_M),
    ("IQ3_XXS", Ftype::IQ3_XXS),
    ("IQ3_XS", Ftype::IQ3_XS),
    ("IQ3_S", Ftype::IQ3_S),
    ("IQ3_M", Ftype::IQ3_M),
    ("IQ4_NL", Ftype::IQ4_NL),
    ("IQ4_XS", Ftype::IQ4_XS),
    (UD_IQ2_XXS, Ftype::IQ2_XXS),
];

/// A ggml type by its ggml name (all names used here are in the pinned type table).
pub(super) fn gt(name: &str) -> GgmlType {
    GgmlType::from_name(name).unwrap_or(GgmlType::F32)
}

impl Ftype {
    /// The `general.file_type` value.
    pub(super) fn file_type(self) -> u32 {
        use Ftype::*;
        match self {
            F32 => 0,
            F16 => 1,
            Q4_0 => 2,
            Q4_1 => 3,
            Q8_0 => 7,
            Q5_0 => 8,
            Q5_1 => 9,
            Q2_K => 10,
            Q3_K_S => 11,
            Q3_K_M => 12,
            Q3_K_L => 13,
            Q4_K_S => 14,
            Q4_K_M => 15,
            Q5_K_S => 16,
            Q5_K_M => 17,
            Q6_K => 18,
            IQ2_XXS => 19,
            IQ2_XS => 20,
            Q2_K_S => 21,
            IQ3_XS => 22,
            IQ3_XXS => 23,
            IQ1_S => 24,
            IQ4_NL => 25,
            IQ3_S => 26,
            IQ3_M => 27,
            IQ2_S => 28,
            IQ2_M => 29,
            IQ4_XS => 30,
            IQ1_M => 31,
            BF16 => 32,
        }
    }

    /// `llama_ftype_get_default_type` (src/llama-quant.cpp).
    pub(super) fn default_type(self) -> GgmlType {
        use Ftype::*;
        gt(match self {
            F32 => "f32",
            F16 => "f16",
            BF16 => "bf16",
            Q4_0 => "q4_0",
            Q4_1 => "q4_1",
            Q5_0 => "q5_0",
            Q5_1 => "q5_1",
            Q8_0 => "q8_0",
            Q2_K | Q2_K_S => "q2_K",
            IQ3_XS => "iq3_s",
            Q3_K_S | Q3_K_M | Q3_K_L => "q3_K",
            Q4_K_S | Q4_K_M => "q4_K",
            Q5_K_S | Q5_K_M => "q5_K",
            Q6_K => "q6_K",
            IQ2_XXS => "iq2_xxs",
            IQ2_XS | IQ2_S => "iq2_xs",
            IQ2_M => "iq2_s",
            IQ3_XXS => "iq3_xxs",
            IQ1_S => "iq1_s",
            IQ1_M => "iq1_m",
            IQ4_NL => "iq4_nl",
            IQ4_XS => "iq4_xs",
            IQ3_S | IQ3_M => "iq3_s",
        })
    }

    /// Whether the quantization needs an importance matrix in llama.cpp
    /// (`tensor_requires_imatrix`): such files are always made with one, and the type
    /// choice depends on it in a few places.
    pub(super) fn has_imatrix(self) -> bool {
        use Ftype::*;
        matches!(
            self,
            IQ1_S | IQ1_M | IQ2_XXS | IQ2_XS | IQ2_S | IQ2_M | IQ3_XXS | Q2_K_S
        )
    }
}

/// A parsed quantization request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Quant {
    /// The accepted name, as [`QUANT_NAMES`] spells it.
    pub(super) name: &'static str,
    /// The llama.cpp ftype it stands for.
    pub(super) ftype: Ftype,
    /// Whether it is [`UD_IQ2_XXS`] (the dynamic mix, not llama-quantize's).
    pub(super) ud: bool,
}

/// The quantization called `name`, case-insensitively.
pub(super) fn parse_quant(name: &str) -> Result<Quant, SynthError> {
    let wanted = name.trim();
    QUANT_NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(wanted))
        .map(|&(n, ftype)| Quant {
            name: n,
            ftype,
            ud: n == UD_IQ2_XXS,
        })
        .ok_or_else(|| SynthError::UnknownQuant {
            quant: name.to_string(),
            known: quant_names().join(", "),
        })
}

/// The quantization names [`synth`](super::synth) accepts.
pub fn quant_names() -> Vec<&'static str> {
    QUANT_NAMES.iter().map(|(n, _)| *n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quant_names_parse_case_insensitively() {
        assert_eq!(
            parse_quant("q4_k_m").map(|q| q.ftype).ok(),
            Some(Ftype::Q4_K_M)
        );
        assert_eq!(parse_quant("ud-iq2_xxs").map(|q| q.ud).ok(), Some(true));
        assert!(matches!(
            parse_quant("Q9_X"),
            Err(SynthError::UnknownQuant { .. })
        ));
    }
}
