//! Shapes of known models, so that [`super::synth`] can write GGUF files that look like
//! them without downloading any weights.
//!
//! Every seed preset reproduces a rung of the model ladder in the seed article ("Datacenter
//! on Your Desk", thebeedubya/autoresearch) with the real model's hyperparameters. The
//! sources are cited on each preset: the model's Hugging Face `config.json` (as quoted in
//! public code, see below) and how the pinned llama.cpp reads it (`src/models/<arch>.cpp`,
//! `load_arch_hparams` / `load_arch_tensors`).
//!
//! The small presets (`micro-*`, `tiny-*`) are made up: they exist so that a real llama.cpp
//! can load and run the synthetic file quickly on a CPU, one per llama.cpp architecture the
//! seed presets use (plus `llama`).

/// No preset has the name asked for ([`find_preset`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown preset '{name}'; known presets: {known}")]
pub struct UnknownPreset {
    /// the name asked for
    pub name: String,
    /// the names that exist
    pub known: String,
}

/// Mixture-of-experts hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MoeShape {
    /// Routed experts per layer (`{arch}.expert_count`, HF `num_experts`).
    pub n_expert: u32,
    /// Routed experts used per token (`{arch}.expert_used_count`, HF `num_experts_per_tok`).
    pub n_expert_used: u32,
    /// FFN width of one routed expert (`{arch}.expert_feed_forward_length`,
    /// HF `moe_intermediate_size`).
    pub n_ff_exp: u32,
    /// FFN width of the always-active shared expert, 0 when there is none
    /// (`{arch}.expert_shared_feed_forward_length`, HF `shared_expert_intermediate_size`).
    pub n_ff_shexp: u32,
}

/// The hybrid layout of Qwen3.5 / Qwen3-Next (`qwen35moe`): gated-delta-net linear
/// attention (a recurrent state, no KV cache) in most blocks, full attention in every
/// `full_attention_interval`-th block. llama.cpp stores the delta-net sizes under the
/// `{arch}.ssm.*` keys (`llama_model_qwen35moe::load_arch_hparams`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HybridShape {
    /// Block `i` uses full attention when `(i + 1) % full_attention_interval == 0`
    /// (`{arch}.full_attention_interval`, HF `full_attention_interval`).
    pub full_attention_interval: u32,
    /// Depthwise convolution width (`{arch}.ssm.conv_kernel`, HF `linear_conv_kernel_dim`).
    pub ssm_conv_kernel: u32,
    /// Head dimension of the linear attention keys and values (`{arch}.ssm.state_size`,
    /// HF `linear_key_head_dim` = `linear_value_head_dim`).
    pub ssm_state_size: u32,
    /// Key heads (`{arch}.ssm.group_count`, HF `linear_num_key_heads`).
    pub ssm_group_count: u32,
    /// Value heads (`{arch}.ssm.time_step_rank`, HF `linear_num_value_heads`).
    pub ssm_time_step_rank: u32,
    /// Value heads × head dimension (`{arch}.ssm.inner_size`).
    pub ssm_inner_size: u32,
    /// Multi-rope sections (`{arch}.rope.dimension_sections`, HF `mrope_section` padded to 4).
    pub rope_sections: [i32; 4],
}

impl HybridShape {
    /// Whether block `il` is a linear-attention (recurrent) block: llama.cpp's rule in
    /// `llama_model_qwen35moe::load_arch_hparams`.
    pub fn is_recurrent(&self, il: u32) -> bool {
        !(il + 1).is_multiple_of(self.full_attention_interval.max(1))
    }
}

/// A tokenizer to synthesize: a byte-level BPE vocabulary (`tokenizer.ggml.model` =
/// `gpt2`) of the preset's size, with the model family's special tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenizerShape {
    /// `tokenizer.ggml.pre`: the pre-tokenizer llama.cpp applies (`src/llama-vocab.cpp`).
    pub pre: &'static str,
    /// Id of the first special token; ids below it are ordinary tokens (256 byte tokens
    /// plus merges), ids from it on are `specials`, then `[PAD{id}]` fillers up to the
    /// vocabulary size, as convert_hf_to_gguf.py pads a vocabulary.
    pub special_base: u32,
    /// Special (control) tokens, in id order from `special_base`.
    pub specials: &'static [&'static str],
    /// `tokenizer.ggml.bos_token_id`, as a special token's text.
    pub bos: &'static str,
    /// `tokenizer.ggml.eos_token_id`, as a special token's text.
    pub eos: &'static str,
    /// `tokenizer.ggml.padding_token_id`, as a special token's text.
    pub pad: &'static str,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: bool,
    /// `tokenizer.chat_template` (a short Jinja template of the family's chat format).
    pub chat_template: &'static str,
}

/// The shape of one model: everything [`super::synth`] needs to write its GGUF.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    /// The name used on the command line (`--preset`).
    pub name: &'static str,
    /// Other accepted names.
    pub aliases: &'static [&'static str],
    /// One line for `--help` and listings.
    pub description: &'static str,
    /// llama.cpp architecture name (`general.architecture`, `src/llama-arch.cpp`).
    pub arch: &'static str,
    /// `general.name`.
    pub display_name: &'static str,
    /// `general.basename`.
    pub basename: &'static str,
    /// `general.size_label`, as convert_hf_to_gguf.py writes it (`235B-A22B`).
    pub size_label: &'static str,
    /// Transformer blocks (`{arch}.block_count`).
    pub n_layer: u32,
    /// Hidden size (`{arch}.embedding_length`).
    pub n_embd: u32,
    /// Dense FFN width (`{arch}.feed_forward_length`); 0: not written (the key is
    /// optional in llama.cpp and Qwen3.5-MoE's text config has no dense FFN).
    pub n_ff: u32,
    /// Query heads (`{arch}.attention.head_count`).
    pub n_head: u32,
    /// Key/value heads (`{arch}.attention.head_count_kv`).
    pub n_head_kv: u32,
    /// Head dimension (`{arch}.attention.key_length` and `value_length`).
    pub head_dim: u32,
    /// Rotary dimensions (`{arch}.rope.dimension_count`); written only when it is not
    /// the whole head (partial rotary).
    pub n_rot: u32,
    /// Vocabulary size (rows of `token_embd`).
    pub n_vocab: u32,
    /// Training context (`{arch}.context_length`).
    pub n_ctx_train: u32,
    /// `{arch}.attention.layer_norm_rms_epsilon`.
    pub rms_eps: f32,
    /// `{arch}.rope.freq_base`.
    pub rope_freq_base: f32,
    /// Whether the output projection reuses `token_embd` (no `output.weight`).
    pub tied_embeddings: bool,
    /// Mixture-of-experts shape, if the model has experts.
    pub moe: Option<MoeShape>,
    /// Hybrid linear/full attention shape (`qwen35moe`).
    pub hybrid: Option<HybridShape>,
    /// The tokenizer to synthesize.
    pub tokenizer: TokenizerShape,
    /// The quantization the seed article used (a llama.cpp ftype name, or `UD-IQ2_XXS`).
    pub default_quant: &'static str,
    /// Shards the seed's download came in (used when a request asks for 0 shards).
    pub default_shards: u32,
    /// Small enough to write with real weights and run in llama.cpp on a CPU.
    pub runnable: bool,
    /// Where the numbers come from.
    pub source: &'static str,
}

impl Preset {
    /// Every name this preset answers to: its name, then its aliases.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }

    /// Whether block `il` has full (softmax) attention with a KV cache.
    pub fn is_full_attention(&self, il: u32) -> bool {
        self.hybrid.is_none_or(|h| !h.is_recurrent(il))
    }
}

/// ChatML, the Qwen chat format (`<|im_start|>role\n…<|im_end|>`).
const CHATML: &str = "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/// The Llama 3 chat format.
const LLAMA3_CHAT: &str = "{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";

/// Qwen3's added tokens 151643..=151668 (Qwen/Qwen3-8B `tokenizer_config.json`,
/// `added_tokens_decoder`); the vocabulary is padded to 151936 (`config.json` `vocab_size`).
const QWEN3_SPECIALS: &[&str] = &[
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
];

/// Qwen3 tokenizer: `qwen2` pre-tokenizer, `<|endoftext|>` = 151643 is BOS and padding,
/// `<|im_end|>` = 151645 is EOS, no BOS added (what convert_hf_to_gguf.py writes for
/// Qwen3 and llama.cpp reads in `llama_vocab::impl::load`).
const QWEN3_TOKENIZER: TokenizerShape = TokenizerShape {
    pre: "qwen2",
    special_base: 151_643,
    specials: QWEN3_SPECIALS,
    bos: "<|endoftext|>",
    eos: "<|im_end|>",
    pad: "<|endoftext|>",
    add_bos: false,
    chat_template: CHATML,
};

/// Qwen3.5's tokenizer: 248320 ids (HF `vocab_size`), `<|endoftext|>` = 248044,
/// `<|im_start|>` = 248045, `<|im_end|>` = 248046 (HF `bos_token_id`/`eos_token_id`
/// 248045/248046), pre-tokenizer `qwen35` (`src/llama-vocab.cpp`).
const QWEN35_TOKENIZER: TokenizerShape = TokenizerShape {
    pre: "qwen35",
    special_base: 248_044,
    specials: &[
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<tool_call>",
        "</tool_call>",
        "<think>",
        "</think>",
    ],
    bos: "<|endoftext|>",
    eos: "<|im_end|>",
    pad: "<|endoftext|>",
    add_bos: false,
    chat_template: CHATML,
};

/// A small ChatML tokenizer for the runnable Qwen-family presets: `n_vocab - 16` ordinary
/// tokens, then the specials.
const fn small_qwen_tokenizer(n_vocab: u32) -> TokenizerShape {
    TokenizerShape {
        pre: "qwen2",
        special_base: n_vocab - 16,
        specials: &["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        bos: "<|endoftext|>",
        eos: "<|im_end|>",
        pad: "<|endoftext|>",
        add_bos: false,
        chat_template: CHATML,
    }
}

/// Llama 3 tokenizer (`llama-bpe` pre-tokenizer, BOS added), with a small vocabulary.
const fn small_llama3_tokenizer(n_vocab: u32) -> TokenizerShape {
    TokenizerShape {
        pre: "llama-bpe",
        special_base: n_vocab - 16,
        specials: &[
            "<|begin_of_text|>",
            "<|end_of_text|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eot_id|>",
        ],
        bos: "<|begin_of_text|>",
        eos: "<|eot_id|>",
        pad: "<|end_of_text|>",
        add_bos: true,
        chat_template: LLAMA3_CHAT,
    }
}

static PRESETS: [Preset; 10] = [
    Preset {
        name: "qwen3-8b",
        aliases: &["qwen3:8b", "Qwen3-8B"],
        description: "Qwen3 8B dense (seed ladder rung 1: Q4_K_M, 5.5 GB, all on GPU, 37.0 tok/s)",
        arch: "qwen3",
        display_name: "Qwen3 8B",
        basename: "Qwen3",
        size_label: "8B",
        n_layer: 36,
        n_embd: 4096,
        n_ff: 12288,
        n_head: 32,
        n_head_kv: 8,
        head_dim: 128,
        n_rot: 128,
        n_vocab: 151_936,
        n_ctx_train: 40_960,
        rms_eps: 1e-6,
        rope_freq_base: 1_000_000.0,
        tied_embeddings: false,
        moe: None,
        hybrid: None,
        tokenizer: QWEN3_TOKENIZER,
        default_quant: "Q4_K_M",
        default_shards: 1,
        runnable: false,
        source: "Qwen/Qwen3-8B config.json (hidden_size 4096, intermediate_size 12288, 36 layers, 32/8 heads, head_dim 128, rope_theta 1e6, max_position_embeddings 40960, tie_word_embeddings false); llama.cpp src/models/qwen3.cpp",
    },
    Preset {
        name: "qwen3-32b",
        aliases: &["qwen3:32b", "Qwen3-32B"],
        description: "Qwen3 32B dense (seed ladder rung 2: Q4_K_M, 20 GB, all 65 layers on GPU, 10.4 tok/s)",
        arch: "qwen3",
        display_name: "Qwen3 32B",
        basename: "Qwen3",
        size_label: "32B",
        n_layer: 64,
        n_embd: 5120,
        n_ff: 25600,
        n_head: 64,
        n_head_kv: 8,
        head_dim: 128,
        n_rot: 128,
        n_vocab: 151_936,
        n_ctx_train: 40_960,
        rms_eps: 1e-6,
        rope_freq_base: 1_000_000.0,
        tied_embeddings: false,
        moe: None,
        hybrid: None,
        tokenizer: QWEN3_TOKENIZER,
        default_quant: "Q4_K_M",
        default_shards: 1,
        runnable: false,
        source: "Qwen/Qwen3-32B config.json (hidden_size 5120, intermediate_size 25600, 64 layers, 64/8 heads, head_dim 128, rope_theta 1e6, max_position_embeddings 40960); llama.cpp src/models/qwen3.cpp",
    },
    Preset {
        name: "qwen3-235b-a22b",
        aliases: &["qwen3:235b", "qwen3-235b", "Qwen3-235B-A22B"],
        description: "Qwen3-235B-A22B MoE (seed ladder rung 3: Q2_K, 80 GB in 2 shards, 66/95 layers on GPU, 9.2 tok/s)",
        arch: "qwen3moe",
        display_name: "Qwen3 235B A22B",
        basename: "Qwen3",
        size_label: "235B-A22B",
        n_layer: 94,
        n_embd: 4096,
        n_ff: 12288,
        n_head: 64,
        n_head_kv: 4,
        head_dim: 128,
        n_rot: 128,
        n_vocab: 151_936,
        n_ctx_train: 40_960,
        rms_eps: 1e-6,
        rope_freq_base: 1_000_000.0,
        tied_embeddings: false,
        moe: Some(MoeShape {
            n_expert: 128,
            n_expert_used: 8,
            n_ff_exp: 1536,
            n_ff_shexp: 0,
        }),
        hybrid: None,
        tokenizer: QWEN3_TOKENIZER,
        default_quant: "Q2_K",
        default_shards: 2,
        runnable: false,
        source: "Qwen/Qwen3-235B-A22B config.json (hidden_size 4096, intermediate_size 12288, moe_intermediate_size 1536, 94 layers, 64/4 heads, head_dim 128, 128 experts, 8 per token, vocab 151936, rope_theta 1e6); llama.cpp src/models/qwen3moe.cpp",
    },
    Preset {
        name: "qwen3.5-397b-a17b",
        aliases: &["qwen3.5-397b", "qwen35-397b", "Qwen3.5-397B-A17B"],
        description: "Qwen3.5-397B-A17B hybrid MoE (seed ladder rung 4: UD-IQ2_XXS, 107 GiB in 4 shards, 33/61 layers on GPU, 6.1 tok/s)",
        arch: "qwen35moe",
        display_name: "Qwen3.5 397B A17B",
        basename: "Qwen3.5",
        size_label: "397B-A17B",
        n_layer: 60,
        n_embd: 4096,
        n_ff: 0,
        n_head: 32,
        n_head_kv: 2,
        head_dim: 256,
        n_rot: 64,
        n_vocab: 248_320,
        n_ctx_train: 262_144,
        rms_eps: 1e-6,
        rope_freq_base: 10_000_000.0,
        tied_embeddings: false,
        moe: Some(MoeShape {
            n_expert: 512,
            n_expert_used: 10,
            n_ff_exp: 1024,
            n_ff_shexp: 1024,
        }),
        hybrid: Some(HybridShape {
            full_attention_interval: 4,
            ssm_conv_kernel: 4,
            ssm_state_size: 128,
            ssm_group_count: 16,
            ssm_time_step_rank: 64,
            ssm_inner_size: 64 * 128,
            rope_sections: [11, 11, 10, 0],
        }),
        tokenizer: QWEN35_TOKENIZER,
        default_quant: "UD-IQ2_XXS",
        default_shards: 4,
        runnable: false,
        source: "Qwen/Qwen3.5-397B-A17B config.json text_config (hidden_size 4096, 60 layers, 32/2 heads, head_dim 256, partial_rotary_factor 0.25, rope_theta 1e7, mrope_section [11,11,10], 512 experts, 10 per token, moe_intermediate_size 1024, shared_expert_intermediate_size 1024, full_attention_interval 4, linear_conv_kernel_dim 4, linear_key/value_head_dim 128, linear_num_key_heads 16, linear_num_value_heads 64, vocab 248320, max_position_embeddings 262144); llama.cpp src/models/qwen35moe.cpp",
    },
    Preset {
        name: "qwen3-30b-a3b",
        aliases: &["qwen3:30b", "qwen3-30b", "Qwen3-30B-A3B"],
        description: "Qwen3-30B-A3B MoE (~30.5B total, ~3.3B active: 48 layers of 128 experts, 8 per token; ~18.6 GB at Q4_K_M)",
        arch: "qwen3moe",
        display_name: "Qwen3 30B A3B",
        basename: "Qwen3",
        size_label: "30B-A3B",
        n_layer: 48,
        n_embd: 2048,
        n_ff: 6144,
        n_head: 32,
        n_head_kv: 4,
        head_dim: 128,
        n_rot: 128,
        n_vocab: 151_936,
        n_ctx_train: 40_960,
        rms_eps: 1e-6,
        rope_freq_base: 1_000_000.0,
        tied_embeddings: false,
        moe: Some(MoeShape {
            n_expert: 128,
            n_expert_used: 8,
            n_ff_exp: 768,
            n_ff_shexp: 0,
        }),
        hybrid: None,
        tokenizer: QWEN3_TOKENIZER,
        default_quant: "Q4_K_M",
        default_shards: 1,
        runnable: false,
        source: "Qwen/Qwen3-30B-A3B config.json (hidden_size 2048, intermediate_size 6144, moe_intermediate_size 768, 48 layers, 32/4 heads, head_dim 128, 128 experts, 8 per token, vocab 151936, rope_theta 1e6, rms_norm_eps 1e-6, max_position_embeddings 40960, tie_word_embeddings false); llama.cpp src/models/qwen3moe.cpp",
    },
    Preset {
        name: "tiny-dense-1b",
        aliases: &["tiny-dense", "llama-1b"],
        description: "Llama-3.2-1B shapes with a 16k vocabulary (runnable, ~1.0B params, ~0.6 GB at Q4_K_M)",
        arch: "llama",
        display_name: "Tiny Dense 1B",
        basename: "Tiny-Dense",
        size_label: "1B",
        n_layer: 16,
        n_embd: 2048,
        n_ff: 8192,
        n_head: 32,
        n_head_kv: 8,
        head_dim: 64,
        n_rot: 64,
        n_vocab: 16_384,
        n_ctx_train: 131_072,
        rms_eps: 1e-5,
        rope_freq_base: 500_000.0,
        tied_embeddings: true,
        moe: None,
        hybrid: None,
        tokenizer: small_llama3_tokenizer(16_384),
        default_quant: "Q4_K_M",
        default_shards: 1,
        runnable: true,
        source: "meta-llama/Llama-3.2-1B config.json (hidden_size 2048, intermediate_size 8192, 16 layers, 32/8 heads, head_dim 64, rope_theta 500000, rms_norm_eps 1e-5, tie_word_embeddings true) with vocab 16384 instead of 128256; llama.cpp src/models/llama.cpp",
    },
    Preset {
        name: "tiny-moe",
        aliases: &["tiny-moe-3b"],
        description: "Small Qwen3-MoE (runnable, ~3.0B total, ~0.6B active, ~1.8 GB at Q4_K_M)",
        arch: "qwen3moe",
        display_name: "Tiny MoE 3B A0.6B",
        basename: "Tiny-MoE",
        size_label: "3B-A0.6B",
        n_layer: 18,
        n_embd: 2048,
        n_ff: 6144,
        n_head: 16,
        n_head_kv: 4,
        head_dim: 128,
        n_rot: 128,
        n_vocab: 16_384,
        n_ctx_train: 32_768,
        rms_eps: 1e-6,
        rope_freq_base: 1_000_000.0,
        tied_embeddings: false,
        moe: Some(MoeShape {
            n_expert: 32,
            n_expert_used: 4,
            n_ff_exp: 768,
            n_ff_shexp: 0,
        }),
        hybrid: None,
        tokenizer: small_qwen_tokenizer(16_384),
        default_quant: "Q4_K_M",
        default_shards: 1,
        runnable: true,
        source: "made up: Qwen3-30B-A3B's block (hidden 2048, expert FFN 768, head_dim 128) with 18 layers and 32 experts; llama.cpp src/models/qwen3moe.cpp",
    },
    Preset {
        name: "micro-dense",
        aliases: &[],
        description: "Very small Qwen3 dense model for fast CI (runnable, ~17M params, ~10 MB at Q4_K_M)",
        arch: "qwen3",
        display_name: "Micro Dense",
        basename: "Micro-Dense",
        size_label: "17M",
        n_layer: 4,
        n_embd: 512,
        n_ff: 1536,
        n_head: 8,
        n_head_kv: 4,
        head_dim: 64,
        n_rot: 64,
        n_vocab: 4096,
        n_ctx_train: 4096,
        rms_eps: 1e-6,
        rope_freq_base: 1_000_000.0,
        tied_embeddings: false,
        moe: None,
        hybrid: None,
        tokenizer: small_qwen_tokenizer(4096),
        default_quant: "Q4_K_M",
        default_shards: 1,
        runnable: true,
        source: "made up; llama.cpp src/models/qwen3.cpp",
    },
    Preset {
        name: "micro-moe",
        aliases: &[],
        description: "Very small Qwen3-MoE model for fast CI (runnable, ~33M params, ~20 MB at Q4_K_M)",
        arch: "qwen3moe",
        display_name: "Micro MoE",
        basename: "Micro-MoE",
        size_label: "33M-A14M",
        n_layer: 4,
        n_embd: 512,
        n_ff: 1024,
        n_head: 8,
        n_head_kv: 4,
        head_dim: 64,
        n_rot: 64,
        n_vocab: 4096,
        n_ctx_train: 4096,
        rms_eps: 1e-6,
        rope_freq_base: 1_000_000.0,
        tied_embeddings: false,
        moe: Some(MoeShape {
            n_expert: 16,
            n_expert_used: 4,
            n_ff_exp: 256,
            n_ff_shexp: 0,
        }),
        hybrid: None,
        tokenizer: small_qwen_tokenizer(4096),
        default_quant: "Q4_K_M",
        default_shards: 1,
        runnable: true,
        source: "made up; llama.cpp src/models/qwen3moe.cpp",
    },
    Preset {
        name: "micro-hybrid",
        aliases: &["micro-qwen35moe"],
        description: "Very small Qwen3.5-MoE hybrid (linear + every 4th block full attention, shared expert) for fast CI (runnable, ~21M params, ~14 MB at Q4_K_M)",
        arch: "qwen35moe",
        display_name: "Micro Hybrid",
        basename: "Micro-Hybrid",
        size_label: "21M-A12M",
        n_layer: 4,
        n_embd: 512,
        n_ff: 0,
        n_head: 4,
        n_head_kv: 2,
        head_dim: 128,
        n_rot: 32,
        n_vocab: 4096,
        n_ctx_train: 4096,
        rms_eps: 1e-6,
        rope_freq_base: 10_000_000.0,
        tied_embeddings: false,
        moe: Some(MoeShape {
            n_expert: 8,
            n_expert_used: 2,
            n_ff_exp: 256,
            n_ff_shexp: 256,
        }),
        hybrid: Some(HybridShape {
            full_attention_interval: 4,
            ssm_conv_kernel: 4,
            ssm_state_size: 64,
            ssm_group_count: 2,
            ssm_time_step_rank: 4,
            ssm_inner_size: 4 * 64,
            rope_sections: [6, 5, 5, 0],
        }),
        tokenizer: small_qwen_tokenizer(4096),
        default_quant: "Q4_K_M",
        default_shards: 1,
        runnable: true,
        source: "made up, with Qwen3.5-397B-A17B's proportions (partial rotary 0.25, full attention every 4th block); llama.cpp src/models/qwen35moe.cpp",
    },
];

/// All presets: the seed ladder first, then Qwen3-30B-A3B, then the small runnable ones.
pub fn presets() -> &'static [Preset] {
    &PRESETS
}

/// The preset called `name` (or with that alias), case-insensitively.
pub fn find_preset(name: &str) -> Result<&'static Preset, UnknownPreset> {
    let wanted = name.trim();
    presets()
        .iter()
        .find(|p| p.names().any(|n| n.eq_ignore_ascii_case(wanted)))
        .ok_or_else(|| UnknownPreset {
            name: name.to_string(),
            known: presets()
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}
