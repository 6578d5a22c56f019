//! Synthetic GGUF models with the real shapes of known models ([`super::presets`]), so
//! that planning and benchmarking can be tested without downloading 100 GB.
//!
//! A synthetic file has what a real one has: the metadata keys convert_hf_to_gguf.py
//! writes for the architecture, a valid byte-level BPE tokenizer of the model's vocabulary
//! size, every tensor llama.cpp's loader asks for (`src/models/<arch>.cpp`,
//! `load_arch_tensors`) with its real shape, and per-tensor types chosen the way
//! `llama-quantize` chooses them (`src/llama-quant.cpp`, `llama_tensor_get_type_impl`,
//! ported below). Its data is either a hole ([`SynthRequest::sparse`]: the file has its
//! full size but costs only its header on disk) or seeded random weights that decode to
//! finite numbers, so llama.cpp can run it.
//!
//! # Sizes against the seed article
//!
//! Bytes of the sparse files this module writes with each seed preset's default quant,
//! against the sizes the seed article ("Datacenter on Your Desk") and its repository
//! give. GB = 10⁹ bytes, GiB = 2³⁰ bytes. `tests/synth.rs` checks these within the stated
//! tolerance.
//!
//! | preset | quant | ours | seed says | difference | why |
//! |---|---|---|---|---|---|
//! | `qwen3-8b` | Q4_K_M | 5.03 GB (4.68 GiB) | "5.5 GB on GPU" | −8.6 % | the seed's number is what the runtime reported on the GPU (weights plus KV cache and compute buffers, or GiB-vs-GB rounding); llama-quantize's Q4_K_M mix of Qwen3-8B's 8.19 B parameters is 5.03 GB |
//! | `qwen3-32b` | Q4_K_M | 19.76 GB (18.40 GiB) | "20 GB" | −1.2 % | rounding. Cross-check against a published file: at Q8_0 ours is 34.82 GB, as bartowski/Qwen_Qwen3-32B-GGUF lists `Qwen3-32B-Q8_0.gguf` |
//! | `qwen3-235b-a22b` | Q2_K | 85.69 GB (79.80 GiB), 2 shards | "80 GB, 2 shards" (56.5 GB GPU + 24.2 GB CPU) | −0.25 % against 80 GiB | the seed's "GB" are GiB, as the runtime prints them; 80 GB decimal would be 6.6 % below llama-quantize's Q2_K mix |
//! | `qwen3.5-397b-a17b` | UD-IQ2_XXS | 115.29 GB (107.37 GiB), 4 shards | "115 GB across four shards", 107 GiB | +0.3 % | our imitation of Unsloth's dynamic mix (see [`UD_IQ2_XXS`]); plain llama.cpp IQ2_XXS would give 104.5 GB |
//!
//! `tests/synth.rs` also pins the exact tensor bytes. File sizes include the tokenizer in
//! the header (4.35 MB for Qwen3's 151936 tokens and 151387 merges, 7.26 MB for
//! Qwen3.5's 248320).

use super::presets::{find_preset, HybridShape, MoeShape, Preset};
use crate::gguf::{
    GgmlType, GgufArray, GgufError, GgufValue, GgufWriter, SplitName, TensorData, TensorInfo,
    KEY_SPLIT_COUNT, KEY_SPLIT_NO, KEY_SPLIT_TENSORS_COUNT,
};
use std::path::{Path, PathBuf};

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

/// What can go wrong making a synthetic model.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// No preset has this name.
    #[error("unknown preset '{name}'; known presets: {known}")]
    UnknownPreset {
        /// the name asked for
        name: String,
        /// the names that exist
        known: String,
    },
    /// The quantization name is not one this module can imitate.
    #[error("unknown quantization '{quant}'; known: {known}")]
    UnknownQuant {
        /// the name asked for
        quant: String,
        /// the names that exist
        known: String,
    },
    /// The shard count cannot be honoured.
    #[error("cannot split {tensors} tensors into {shards} shards (1 to {tensors} allowed, 0 for the preset's default)")]
    BadShards {
        /// shards asked for
        shards: u32,
        /// tensors in the model
        tensors: usize,
    },
    /// The output path cannot be used.
    #[error("{path}: {problem}")]
    BadOutput {
        /// the path given
        path: PathBuf,
        /// what is wrong with it
        problem: String,
    },
    /// Real (non-sparse) data was asked for a tensor type whose blocks this module
    /// cannot fill with valid values.
    #[error("cannot write random {ggml_type} data for tensor '{tensor}'; use --sparse or another quantization")]
    UnsupportedFill {
        /// the tensor
        tensor: String,
        /// its type
        ggml_type: GgmlType,
    },
    /// A preset is inconsistent (a bug in the preset table).
    #[error("preset '{preset}' is inconsistent: {problem}")]
    InvalidPreset {
        /// the preset
        preset: String,
        /// what is wrong
        problem: String,
    },
    /// Writing or laying out the GGUF failed.
    #[error(transparent)]
    Gguf(#[from] GgufError),
}

/// What to synthesize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthRequest {
    /// Preset name or alias ([`super::presets::presets`]).
    pub preset: String,
    /// llama.cpp ftype name (`Q4_K_M`, `Q2_K`, `IQ2_XXS`, `Q8_0`, `F16`, `Q4_0`…) or
    /// [`UD_IQ2_XXS`]; `None`: the preset's default (the seed's quant).
    pub quant: Option<String>,
    /// Where to write. With several shards, `dir/name.gguf` becomes
    /// `dir/name-00001-of-0000N.gguf` … (llama.cpp's `llama_split_path` naming).
    pub out: PathBuf,
    /// Leave the tensor data as a hole: the file has its full size, only the header is on
    /// disk. Otherwise the data is seeded random weights (all of them written: a seed
    /// preset then needs its full size on disk).
    pub sparse: bool,
    /// Number of files; 0: the preset's default (the shard count of the seed's download).
    pub shards: u32,
    /// Seed of the random weights (ignored when sparse).
    pub seed: u64,
}

impl SynthRequest {
    /// A request for `preset` at its default quant, one file or the seed's shard count,
    /// real random weights, seed 0.
    pub fn new(preset: impl Into<String>, out: impl Into<PathBuf>) -> Self {
        SynthRequest {
            preset: preset.into(),
            quant: None,
            out: out.into(),
            sparse: false,
            shards: 0,
            seed: 0,
        }
    }
}

/// What [`synth`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSummary {
    /// The preset's name.
    pub preset: &'static str,
    /// The quantization used.
    pub quant: String,
    /// The files, first shard first.
    pub files: Vec<PathBuf>,
    /// Number of tensors.
    pub tensors: usize,
    /// Bytes of tensor data (without alignment padding).
    pub tensor_bytes: u64,
    /// Bytes of all files together.
    pub file_bytes: u64,
    /// Bytes of all headers together (metadata and tensor infos, padding included).
    pub header_bytes: u64,
    /// Parameters (elements of all tensors).
    pub params: u64,
}

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

// ---------------------------------------------------------------------------------------
// Quantization names and llama.cpp's per-tensor type choice
// ---------------------------------------------------------------------------------------

/// `enum llama_ftype` of llama.cpp's `include/llama.h` (the ones imitated here).
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ftype {
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
fn gt(name: &str) -> GgmlType {
    GgmlType::from_name(name).unwrap_or(GgmlType::F32)
}

impl Ftype {
    /// The `general.file_type` value.
    fn file_type(self) -> u32 {
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
    fn default_type(self) -> GgmlType {
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
    fn has_imatrix(self) -> bool {
        use Ftype::*;
        matches!(
            self,
            IQ1_S | IQ1_M | IQ2_XXS | IQ2_XS | IQ2_S | IQ2_M | IQ3_XXS | Q2_K_S
        )
    }
}

/// A parsed quantization request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quant {
    name: &'static str,
    ftype: Ftype,
    ud: bool,
}

fn parse_quant(name: &str) -> Result<Quant, SynthError> {
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

/// The quantization names [`synth`] accepts.
pub fn quant_names() -> Vec<&'static str> {
    QUANT_NAMES.iter().map(|(n, _)| *n).collect()
}

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
fn allows_quantization(name: &str, shape: &[u64]) -> bool {
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
struct MixState {
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
    fn new(preset: &Preset, ftype: Ftype, tensors: &[(String, Vec<u64>)]) -> Self {
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
    fn choose(&mut self, name: &str, shape: &[u64], mut new: GgmlType) -> GgmlType {
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

/// [`UD_IQ2_XXS`]'s choice for one quantizable tensor.
fn ud_iq2_xxs_type(name: &str, n_layer: u32) -> GgmlType {
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
fn fallback(ne0: u64, target: GgmlType) -> GgmlType {
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

// ---------------------------------------------------------------------------------------
// Tensors of each architecture
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------

/// `llama_token_type` (include/llama.h).
const TOKEN_NORMAL: i32 = 1;
const TOKEN_CONTROL: i32 = 3;
const TOKEN_USER_DEFINED: i32 = 4;
const TOKEN_UNUSED: i32 = 5;

/// GPT-2's byte-to-unicode table (`bytes_to_unicode` of the GPT-2 encoder, which
/// byte-level BPE tokenizers and llama.cpp's `unicode_byte_to_utf8` share), in GPT-2's
/// vocabulary order: printable bytes first, then the rest mapped to U+0100 upward.
fn byte_symbols() -> Vec<String> {
    let printable = |b: u32| {
        (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b)
    };
    let mut out: Vec<String> = (0u32..256)
        .filter(|&b| printable(b))
        .filter_map(char::from_u32)
        .map(String::from)
        .collect();
    let mut n = 0;
    for b in 0u32..256 {
        if !printable(b) {
            if let Some(c) = char::from_u32(256 + n) {
                out.push(String::from(c));
            }
            n += 1;
        }
    }
    out
}

/// A valid byte-level BPE vocabulary: tokens, their types, merges, special token ids.
struct Vocab {
    tokens: Vec<String>,
    types: Vec<i32>,
    merges: Vec<String>,
    bos: u32,
    eos: u32,
    pad: u32,
}

fn build_vocab(p: &Preset) -> Result<Vocab, SynthError> {
    let t = &p.tokenizer;
    let bad = |problem: String| SynthError::InvalidPreset {
        preset: p.name.to_string(),
        problem,
    };
    let n_normal = t.special_base as usize;
    let n_vocab = p.n_vocab as usize;
    if n_normal < 256 || n_normal + t.specials.len() > n_vocab {
        return Err(bad(format!(
            "{} ordinary + {} special tokens do not fit a vocabulary of {n_vocab} with 256 byte tokens",
            n_normal,
            t.specials.len()
        )));
    }
    let symbols = byte_symbols();
    let mut tokens = Vec::with_capacity(n_vocab);
    let mut merges = Vec::with_capacity(n_normal.saturating_sub(256));
    tokens.extend(symbols.iter().cloned());
    // Ordinary tokens: every pair of byte symbols, then symbol triples, each with the
    // merge that makes it, so every token is reachable and every merge yields a token.
    let mut level: Vec<String> = symbols.clone();
    'outer: while tokens.len() < n_normal {
        let mut next = Vec::new();
        for left in &level {
            for right in &symbols {
                if tokens.len() >= n_normal {
                    break 'outer;
                }
                let joined = format!("{left}{right}");
                merges.push(format!("{left} {right}"));
                tokens.push(joined.clone());
                next.push(joined);
            }
        }
        level = next;
    }
    let mut types = vec![TOKEN_NORMAL; tokens.len()];
    for s in t.specials {
        tokens.push((*s).to_string());
        types.push(if s.starts_with("<|") {
            TOKEN_CONTROL
        } else {
            TOKEN_USER_DEFINED
        });
    }
    while tokens.len() < n_vocab {
        tokens.push(format!("[PAD{}]", tokens.len()));
        types.push(TOKEN_UNUSED);
    }
    let id = |s: &str| {
        t.specials
            .iter()
            .position(|x| *x == s)
            .map(|i| t.special_base + i as u32)
            .ok_or_else(|| bad(format!("special token '{s}' is not among the specials")))
    };
    Ok(Vocab {
        bos: id(t.bos)?,
        eos: id(t.eos)?,
        pad: id(t.pad)?,
        tokens,
        types,
        merges,
    })
}

// ---------------------------------------------------------------------------------------
// Metadata and files
// ---------------------------------------------------------------------------------------

/// The metadata convert_hf_to_gguf.py and llama-quantize write for this architecture
/// (keys from src/llama-arch.cpp `LLM_KV_NAMES`, read by `llama_model_base::load_hparams`
/// and the architecture's `load_arch_hparams`).
fn metadata(p: &Preset, q: &Quant) -> Result<Vec<(String, GgufValue)>, SynthError> {
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

/// Splits the plan into `shards` contiguous groups of about equal bytes, each non-empty
/// (what llama.cpp's gguf-split does with `--split-max-size`).
fn split_plan(
    plan: Vec<PlannedTensor>,
    shards: u32,
) -> Result<Vec<Vec<PlannedTensor>>, SynthError> {
    let n = plan.len();
    let want = shards as usize;
    if want == 0 || want > n {
        return Err(SynthError::BadShards { shards, tensors: n });
    }
    let total: u64 = plan.iter().map(PlannedTensor::n_bytes).sum();
    let mut groups: Vec<Vec<PlannedTensor>> = Vec::with_capacity(want);
    let mut cur: Vec<PlannedTensor> = Vec::new();
    let mut acc: u64 = 0;
    for (i, t) in plan.into_iter().enumerate() {
        if !cur.is_empty() && groups.len() + 1 < want {
            let closed = groups.len() as u64;
            let must = n - i == want - groups.len() - 1;
            let full =
                u128::from(acc) * u128::from(shards) >= u128::from(total) * u128::from(closed + 1);
            if must || full {
                groups.push(std::mem::take(&mut cur));
            }
        }
        acc += t.n_bytes();
        cur.push(t);
    }
    groups.push(cur);
    Ok(groups)
}

/// The GGUF writers of `preset` at `quant` in `shards` files (0: the preset's default):
/// the first carries all metadata, every one carries `split.no`, `split.count` (u16) and
/// `split.tensors.count` (i32) when there is more than one, as llama.cpp's gguf-split
/// writes them and `llama_model_loader` reads them.
pub fn build_writers(
    preset: &Preset,
    quant: &str,
    shards: u32,
) -> Result<Vec<GgufWriter>, SynthError> {
    let q = parse_quant(quant)?;
    let plan = tensor_plan(preset, quant)?;
    let n_tensors = plan.len();
    let shards = if shards == 0 {
        preset.default_shards.max(1)
    } else {
        shards
    };
    let groups = split_plan(plan, shards)?;
    let count = groups.len();
    let meta = metadata(preset, &q)?;
    let mut writers = Vec::with_capacity(count);
    for (i, group) in groups.into_iter().enumerate() {
        let mut w = GgufWriter::new();
        if i == 0 {
            for (k, v) in &meta {
                w.set(k.clone(), v.clone());
            }
        }
        if count > 1 {
            w.set(KEY_SPLIT_NO, GgufValue::U16(i as u16));
            w.set(KEY_SPLIT_COUNT, GgufValue::U16(count as u16));
            w.set(
                KEY_SPLIT_TENSORS_COUNT,
                GgufValue::I32(i32::try_from(n_tensors).unwrap_or(i32::MAX)),
            );
        }
        for t in &group {
            w.add_tensor(&t.name, t.ggml_type, &t.shape)?;
        }
        writers.push(w);
    }
    Ok(writers)
}

/// The file names for `count` shards of `out`: `out` itself for one, else
/// `prefix-00001-of-0000N.gguf` beside it (a name that already is a shard name keeps its
/// prefix).
fn shard_paths(out: &Path, count: u32) -> Result<Vec<PathBuf>, SynthError> {
    let file_name = out
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| SynthError::BadOutput {
            path: out.to_path_buf(),
            problem: "the output must be a file name (UTF-8), e.g. models/qwen3-8b.gguf".into(),
        })?;
    if count <= 1 {
        return Ok(vec![out.to_path_buf()]);
    }
    let prefix = match SplitName::parse(file_name) {
        Some(s) => s.prefix,
        None => file_name
            .strip_suffix(".gguf")
            .unwrap_or(file_name)
            .to_string(),
    };
    let name = SplitName {
        prefix,
        no: 1,
        count,
    };
    let dir = out.parent().unwrap_or(Path::new(""));
    Ok((1..=count).map(|no| dir.join(name.file_name(no))).collect())
}

/// Writes the synthetic model the request describes.
pub fn synth(req: &SynthRequest) -> Result<SynthSummary, SynthError> {
    let preset = find_preset(&req.preset)?;
    let quant = parse_quant(req.quant.as_deref().unwrap_or(preset.default_quant))?;
    let writers = build_writers(preset, quant.name, req.shards)?;
    let paths = shard_paths(&req.out, writers.len() as u32)?;
    if let Some(dir) = req.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| SynthError::BadOutput {
            path: dir.to_path_buf(),
            problem: format!("cannot create the directory: {e}"),
        })?;
    }
    if !req.sparse {
        for w in &writers {
            for t in w.tensors() {
                if !can_fill(t.ggml_type) {
                    return Err(SynthError::UnsupportedFill {
                        tensor: t.name.clone(),
                        ggml_type: t.ggml_type,
                    });
                }
            }
        }
    }
    let mut summary = SynthSummary {
        preset: preset.name,
        quant: quant.name.to_string(),
        files: paths.clone(),
        tensors: 0,
        tensor_bytes: 0,
        file_bytes: 0,
        header_bytes: 0,
        params: 0,
    };
    for (w, path) in writers.iter().zip(&paths) {
        let written = if req.sparse {
            w.write(path, TensorData::Sparse)?
        } else {
            let seed = req.seed;
            let mut fill = |t: &TensorInfo, offset: u64, chunk: &mut [u8]| {
                fill_chunk(seed, t, offset, chunk);
            };
            w.write(path, TensorData::Fill(&mut fill))?
        };
        summary.header_bytes += written.header_bytes;
        summary.file_bytes += written.file_bytes;
        summary.tensors += w.tensors().len();
        summary.tensor_bytes += w.tensors().iter().map(|t| t.n_bytes).sum::<u64>();
        summary.params += w.tensors().iter().map(TensorInfo::n_elements).sum::<u64>();
    }
    Ok(summary)
}

// ---------------------------------------------------------------------------------------
// Random but valid weights
// ---------------------------------------------------------------------------------------

/// xorshift64* (Vigna), seeded through splitmix64.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// FNV-1a of a tensor name, to give every tensor its own stream.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// f32 to IEEE half (round to nearest, subnormals kept).
fn f16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let a = x.abs();
    if a.is_nan() {
        return sign | 0x7e00;
    }
    if a >= 65504.0 {
        return sign | 0x7bff;
    }
    if a < 6.103_515_6e-5 {
        // subnormal: a = m × 2⁻²⁴
        return sign | (a * 16_777_216.0).round() as u16;
    }
    let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
    let mant = bits & 0x7f_ffff;
    let mut h = ((exp as u32) << 10) | (mant >> 13);
    if mant & 0x1000 != 0 {
        h += 1;
    }
    sign | (h.min(0x7bff) as u16)
}

/// How one tensor's values look.
#[derive(Clone, Copy)]
enum Values {
    /// Norm weights: 1.
    Ones,
    /// Qwen3.5's `ssm_a` (−exp(A_log)): negative, so the recurrent state decays.
    Decay,
    /// Uniform with root mean square `rms`.
    Uniform(f32),
}

fn values_for(t: &TensorInfo) -> Values {
    if t.name.ends_with("norm.weight") {
        Values::Ones
    } else if t.name.ends_with("ssm_a") {
        Values::Decay
    } else {
        // weights of a row of n inputs: keep each output's variance near its input's
        let n = t.shape.first().copied().unwrap_or(1).max(1) as f32;
        Values::Uniform(1.0 / n.sqrt())
    }
}

fn value(v: Values, rng: &mut Rng) -> f32 {
    match v {
        Values::Ones => 1.0,
        Values::Decay => -(0.1 + 0.9 * rng.unit()),
        // uniform on [-r√3, r√3] has root mean square r
        Values::Uniform(r) => (2.0 * rng.unit() - 1.0) * r * 1.732_050_8,
    }
}

/// Where a quantized block keeps its f16 scales, and how large the dequantized value of a
/// random block is for scale 1 (root mean square of `scale multiplier × quant`), so the
/// scale can be set for the wanted weight size. Offsets from ggml-common.h.
struct BlockScale {
    /// Offset of the f16 super-block scale `d`.
    d: usize,
    /// Offset and ratio to `d` of an f16 `dmin`/`m`, if any (chosen to centre the values).
    min: Option<(usize, f32)>,
    /// Root mean square of the dequantized values when `d` = 1.
    rms: f32,
}

fn block_scale(ty: GgmlType) -> Option<BlockScale> {
    let s = |d, min, rms| Some(BlockScale { d, min, rms });
    match ty.name().as_str() {
        "q4_0" | "iq4_nl" => s(0, None, if ty == GgmlType::Q4_0 { 4.6 } else { 64.0 }),
        "q4_1" => s(0, Some((2, -8.0)), 4.6),
        "q5_0" => s(0, None, 9.2),
        "q5_1" => s(0, Some((2, -16.0)), 9.2),
        "q8_0" => s(0, None, 74.0),
        "q2_K" => s(80, Some((82, 1.5)), 10.0),
        "q3_K" => s(108, None, 42.0),
        "q4_K" => s(0, Some((2, 7.5)), 214.0),
        "q5_K" => s(0, Some((2, 15.5)), 434.0),
        "q6_K" => s(208, None, 1369.0),
        "iq2_xxs" | "iq2_xs" | "iq2_s" => s(0, None, 62.0),
        "iq3_xxs" | "iq3_s" => s(0, None, 160.0),
        "iq1_s" => s(0, None, 9.0),
        "iq4_xs" => s(0, None, 1184.0),
        _ => None,
    }
}

/// Whether [`fill_chunk`] can write valid data of this type.
fn can_fill(ty: GgmlType) -> bool {
    ty == GgmlType::F32
        || ty == GgmlType::F16
        || ty == GgmlType::BF16
        || ty == gt("iq1_m")
        || block_scale(ty).is_some()
}

/// Fills `chunk` (whole blocks of tensor `t`, starting `offset` bytes into it) with
/// seeded random values: every scale a small finite f16, so llama.cpp's forward pass
/// stays finite.
fn fill_chunk(seed: u64, t: &TensorInfo, offset: u64, chunk: &mut [u8]) {
    let mut rng = Rng::new(seed ^ name_hash(&t.name) ^ offset.rotate_left(17));
    let values = values_for(t);
    let ty = t.ggml_type;
    if ty == GgmlType::F32 {
        for c in chunk.chunks_exact_mut(4) {
            c.copy_from_slice(&value(values, &mut rng).to_le_bytes());
        }
        return;
    }
    if ty == GgmlType::F16 {
        for c in chunk.chunks_exact_mut(2) {
            c.copy_from_slice(&f16_bits(value(values, &mut rng)).to_le_bytes());
        }
        return;
    }
    if ty == GgmlType::BF16 {
        for c in chunk.chunks_exact_mut(2) {
            let b = (value(values, &mut rng).to_bits() >> 16) as u16;
            c.copy_from_slice(&b.to_le_bytes());
        }
        return;
    }
    let Some(traits) = ty.traits() else {
        return;
    };
    let block = traits.type_size as usize;
    let target = match values {
        Values::Uniform(r) => r,
        _ => 0.05,
    };
    rng.fill(chunk);
    if ty == gt("iq1_m") {
        // block_iq1_m has no f16 field: the scale's 16 bits are the top nibbles of the
        // four u16 `scales` words (bytes 48..56), see dequantize_row_iq1_m.
        let h = f16_bits(target / 9.0);
        for b in chunk.chunks_exact_mut(block) {
            for k in 0..4 {
                let at = 48 + 2 * k;
                let w = u16::from_le_bytes([b[at], b[at + 1]]);
                let w = (w & 0x0fff) | (((h >> (4 * k)) & 0xf) << 12);
                b[at..at + 2].copy_from_slice(&w.to_le_bytes());
            }
        }
        return;
    }
    let Some(scale) = block_scale(ty) else {
        return;
    };
    let d = target / scale.rms;
    let d16 = f16_bits(d).to_le_bytes();
    let min16 = scale
        .min
        .map(|(at, ratio)| (at, f16_bits(d * ratio).to_le_bytes()));
    for b in chunk.chunks_exact_mut(block) {
        b[scale.d..scale.d + 2].copy_from_slice(&d16);
        if let Some((at, m)) = min16 {
            b[at..at + 2].copy_from_slice(&m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion() {
        assert_eq!(f16_bits(1.0), 0x3c00);
        assert_eq!(f16_bits(-2.0), 0xc000);
        assert_eq!(f16_bits(0.0), 0);
        assert_eq!(f16_bits(65504.0), 0x7bff);
        assert_eq!(f16_bits(1e9), 0x7bff);
        // smallest subnormal 2^-24
        assert_eq!(f16_bits(5.960_464_5e-8), 1);
        assert_eq!(f16_bits(6.103_515_6e-5), 0x0400);
    }

    #[test]
    fn byte_symbols_are_gpt2s() {
        let s = byte_symbols();
        assert_eq!(s.len(), 256);
        assert_eq!(s[0], "!");
        // the space byte (0x20) maps to 'Ġ' (U+0120)
        assert!(s.contains(&"Ġ".to_string()));
        let mut sorted = s.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 256);
    }

    #[test]
    fn split_plan_balances_and_never_leaves_a_shard_empty() {
        let t = |i: usize, n: u64| PlannedTensor {
            name: format!("t{i}"),
            shape: vec![n],
            ggml_type: GgmlType::F32,
        };
        let plan: Vec<_> = (0..10).map(|i| t(i, 100)).collect();
        let groups = split_plan(plan, 4).expect("split");
        assert_eq!(groups.len(), 4);
        assert!(groups.iter().all(|g| !g.is_empty()));
        assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), 10);
        // one huge tensor first still leaves a tensor for every later shard
        let mut plan: Vec<_> = (0..4).map(|i| t(i, 1)).collect();
        plan[0].shape = vec![1_000_000];
        let groups = split_plan(plan, 4).expect("split");
        assert_eq!(
            groups.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1, 1, 1, 1]
        );
        assert!(split_plan(vec![t(0, 1)], 2).is_err());
        assert!(split_plan(vec![t(0, 1)], 0).is_err());
    }

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
