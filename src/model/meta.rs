//! `ModelMeta`: everything the planner needs to know about a model, read from its
//! GGUF header(s) by the architecture prefix (`{arch}.block_count`, ...), never
//! hard-coded per model.
//!
//! Key names and defaults follow the pinned llama.cpp: `src/llama-arch.cpp`
//! (`LLM_KV_NAMES`), `src/llama-model.cpp` (`load_hparams`) and `src/models/*.cpp`
//! (per-architecture `load_arch_hparams`).

use crate::gguf::{file_type_name, GgufArray, GgufError, GgufModel, GgufValue, TensorInfo};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The most repeating blocks llama.cpp loads (`LLAMA_MAX_LAYERS` in
/// src/llama-hparams.h; `load_hparams` asserts it).
const LLAMA_MAX_LAYERS: u32 = 512;
/// The most routed experts llama.cpp loads (`LLAMA_MAX_EXPERTS`, same file).
const LLAMA_MAX_EXPERTS: u32 = 1024;

/// How a block keeps its context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// Full attention: a KV cache entry per token of context.
    FullAttention,
    /// Sliding-window attention: the KV cache holds at most the window.
    SlidingWindow,
    /// Recurrent / linear attention: a fixed-size state per sequence, no KV cache.
    Recurrent,
}

/// One repeating block (`blk.N.*`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockMeta {
    /// Block index N.
    pub index: u32,
    /// All tensor bytes of the block.
    pub bytes: u64,
    /// Attention, norms, router and dense FFN bytes (everything but experts).
    pub dense_bytes: u64,
    /// Routed-expert bytes (`*_exps` tensors): what `--n-cpu-moe` keeps on the CPU.
    pub expert_bytes: u64,
    /// Shared-expert bytes (`*_shexp` tensors): used by every token.
    pub shared_expert_bytes: u64,
    /// The largest routed-expert tensor (one `*_exps` matrix, all experts).
    pub largest_expert_tensor: u64,
    /// The largest other tensor (attention, dense FFN, shared expert, router).
    pub largest_dense_tensor: u64,
    /// How the block attends.
    pub kind: BlockKind,
    /// KV heads of this block (0 for recurrent blocks).
    pub n_head_kv: u32,
}

/// Bytes outside the repeating blocks.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NonBlockBytes {
    /// `token_embd.*` (kept on the CPU by llama.cpp: it is a lookup, not a matmul).
    pub token_embd: u64,
    /// `output.*` (the output layer llama.cpp counts as one offloadable layer), plus
    /// `output_norm.*`.
    pub output: u64,
    /// The output projection, `output.weight`; 0 when the model has none and projects
    /// with `token_embd.weight` (tied embeddings).
    pub output_matrix: u64,
    /// Everything else outside `blk.*` (rope factors, ...).
    pub other: u64,
}

/// Sizes of the recurrent state (linear attention / SSM), per sequence per block,
/// in elements (llama.cpp stores them as f32: `llama_hparams::n_embd_r/n_embd_s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RecurrentMeta {
    /// `ssm.conv_kernel`
    pub d_conv: u32,
    /// `ssm.inner_size`
    pub d_inner: u32,
    /// `ssm.state_size`
    pub d_state: u32,
    /// `ssm.group_count`
    pub n_group: u32,
    /// `ssm.time_step_rank`
    pub dt_rank: u32,
    /// Convolution state elements: (d_conv − 1) × (d_inner + 2 × n_group × d_state).
    pub n_embd_r: u64,
    /// SSM state elements: d_state × d_inner.
    pub n_embd_s: u64,
}

/// A model as the planner sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ModelMeta {
    /// The file that was opened.
    pub path: PathBuf,
    /// All shards, first first.
    pub shards: Vec<PathBuf>,
    /// `general.architecture`
    pub arch: String,
    /// `general.name`
    pub name: Option<String>,
    /// `general.basename`
    pub basename: Option<String>,
    /// `general.size_label` (e.g. `235B-A22B`)
    pub size_label: Option<String>,
    /// `general.file_type` (llama_ftype)
    pub file_type: Option<u32>,
    /// The file type as llama.cpp names it (e.g. `Q4_K - Medium`).
    pub file_type_name: Option<String>,
    /// `{arch}.block_count`: repeating blocks (MTP/nextn blocks included, as llama.cpp's `n_layer_all`).
    pub n_block: u32,
    /// Layers llama.cpp counts when offloading: blocks + 1 (the output layer); its log
    /// says "offloaded N/M layers" with this M.
    pub n_layer_offloadable: u32,
    /// `{arch}.embedding_length`
    pub n_embd: u64,
    /// Query heads (largest over blocks when given per block).
    pub n_head: u32,
    /// KV heads (largest over attention blocks).
    pub n_head_kv: u32,
    /// `{arch}.attention.key_length` (default n_embd / n_head).
    pub head_dim_k: u32,
    /// `{arch}.attention.value_length` (default n_embd / n_head).
    pub head_dim_v: u32,
    /// `{arch}.feed_forward_length` (largest over blocks; 0 when absent).
    pub n_ff: u64,
    /// `{arch}.expert_feed_forward_length` (0 for dense models).
    pub n_ff_exp: u64,
    /// `{arch}.context_length`: the training context.
    pub n_ctx_train: u64,
    /// Vocabulary size.
    pub n_vocab: u64,
    /// `{arch}.expert_count` (0 for dense models).
    pub n_expert: u32,
    /// `{arch}.expert_used_count`
    pub n_expert_used: u32,
    /// `{arch}.expert_shared_count`
    pub n_expert_shared: u32,
    /// `{arch}.attention.sliding_window`, when the model uses one.
    pub sliding_window: Option<u32>,
    /// `{arch}.full_attention_interval` for hybrid models (every N-th block attends fully).
    pub full_attention_interval: Option<u32>,
    /// Recurrent state sizes, when some blocks are recurrent.
    pub recurrent: Option<RecurrentMeta>,
    /// Per-block sizes and kinds.
    pub blocks: Vec<BlockMeta>,
    /// Bytes outside the blocks.
    pub non_block: NonBlockBytes,
    /// Sum of all tensor bytes.
    pub tensor_bytes: u64,
    /// Sum of the files' sizes.
    pub file_bytes: u64,
    /// Parameter count (sum of tensor elements).
    pub params: u64,
    /// Bytes by ggml type name.
    pub tensor_types: BTreeMap<String, u64>,
    /// Bytes read from disk to build this summary.
    pub bytes_read: u64,
}

/// Architectures whose sliding-window pattern llama.cpp hard-codes in the loader
/// rather than reading from the file (`load_swa_pattern(ml, N)` in `src/models/*.cpp`):
/// every N-th block is full attention, the others use the window.
const SWA_PATTERN_DEFAULTS: &[(&str, u32)] = &[
    ("gemma3", 6),  // src/models/gemma3.cpp
    ("gemma2", 2),  // src/models/gemma2.cpp (alternating)
    ("cohere2", 4), // src/models/cohere2.cpp
];

/// Hybrid architectures whose recurrent blocks follow `full_attention_interval`
/// (default 4) when `attention.recurrent_layers` is absent: block i is recurrent
/// unless (i + 1) % interval == 0 (src/models/qwen35moe.cpp, qwen35.cpp, qwen3next.cpp).
const INTERVAL_HYBRID_ARCHS: &[&str] = &["qwen35moe", "qwen35", "qwen3next"];

/// Architectures where every block is recurrent.
const ALL_RECURRENT_ARCHS: &[&str] = &["mamba", "mamba2", "rwkv6", "rwkv7"];

struct Keys<'a> {
    model: &'a GgufModel,
    arch: String,
    path: &'a Path,
}

impl Keys<'_> {
    fn get(&self, suffix: &str) -> Option<&GgufValue> {
        self.model.get(&format!("{}.{suffix}", self.arch))
    }

    fn bad(&self, suffix: &str, problem: &str) -> GgufError {
        GgufError::BadKey {
            path: self.path.to_path_buf(),
            key: format!("{}.{suffix}", self.arch),
            problem: problem.to_string(),
        }
    }

    /// An optional non-negative integer key.
    fn opt_u64(&self, suffix: &str) -> Result<Option<u64>, GgufError> {
        match self.get(suffix) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                self.bad(
                    suffix,
                    &format!("must be a non-negative integer, found {v}"),
                )
            }),
        }
    }

    fn opt_u32(&self, suffix: &str) -> Result<Option<u32>, GgufError> {
        match self.opt_u64(suffix)? {
            None => Ok(None),
            Some(v) => u32::try_from(v)
                .map(Some)
                .map_err(|_| self.bad(suffix, &format!("{v} is out of range"))),
        }
    }

    fn required_u64(&self, suffix: &str) -> Result<u64, GgufError> {
        self.opt_u64(suffix)?.ok_or_else(|| self.missing(suffix))
    }

    fn required_u32(&self, suffix: &str) -> Result<u32, GgufError> {
        self.opt_u32(suffix)?.ok_or_else(|| self.missing(suffix))
    }

    fn missing(&self, suffix: &str) -> GgufError {
        self.bad(
            suffix,
            "is missing: the file is not a complete llama.cpp model",
        )
    }

    /// A key that may be one integer or an array with one integer per block
    /// (`get_key_or_arr` in llama-model-loader.cpp).
    fn per_block(&self, suffix: &str, n_block: u32) -> Result<Option<Vec<u32>>, GgufError> {
        match self.get(suffix) {
            None => Ok(None),
            Some(GgufValue::Array(arr)) => {
                if arr.len() != n_block as usize {
                    return Err(self.bad(
                        suffix,
                        &format!(
                            "has {} entries but the model has {n_block} blocks",
                            arr.len()
                        ),
                    ));
                }
                (0..arr.len())
                    .map(|i| arr.get_u64(i).and_then(|v| u32::try_from(v).ok()))
                    .collect::<Option<Vec<u32>>>()
                    .map(Some)
                    .ok_or_else(|| self.bad(suffix, "must hold non-negative integers"))
            }
            Some(_) => {
                let v = self.opt_u32(suffix)?.unwrap_or(0);
                Ok(Some(vec![v; n_block as usize]))
            }
        }
    }
}

/// Splits `blk.N.rest` into N.
fn block_index(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("blk.")?;
    let (n, _) = rest.split_once('.')?;
    n.parse().ok()
}

fn is_routed_expert(name: &str) -> bool {
    // ffn_{gate,up,down,gate_up}_exps.{weight,bias,scale}: llama-arch.cpp LLM_TENSOR_FFN_*_EXPS.
    name.contains("_exps.")
}

fn is_shared_expert(name: &str) -> bool {
    // ffn_{gate,up,down}_shexp and ffn_gate_inp_shexp: LLM_TENSOR_FFN_*_SHEXP.
    name.contains("_shexp.")
}

impl ModelMeta {
    /// Reads the model at `path` (any shard of a split model).
    pub fn open(path: &Path) -> Result<ModelMeta, GgufError> {
        let model = GgufModel::open(path)?;
        ModelMeta::from_gguf(&model, path)
    }

    /// Builds the summary from opened GGUF files.
    pub fn from_gguf(model: &GgufModel, path: &Path) -> Result<ModelMeta, GgufError> {
        let general = |key: &str| {
            model
                .get(key)
                .and_then(GgufValue::as_str)
                .map(str::to_string)
        };
        let arch = general("general.architecture").ok_or_else(|| GgufError::BadKey {
            path: path.to_path_buf(),
            key: "general.architecture".into(),
            problem: "is missing or not a string: not a llama.cpp model file".into(),
        })?;
        let keys = Keys {
            model,
            arch: arch.clone(),
            path,
        };
        let n_block_raw = keys.required_u64("block_count")?;
        let n_block = u32::try_from(n_block_raw)
            .ok()
            .filter(|&n| n <= LLAMA_MAX_LAYERS)
            .ok_or_else(|| {
                keys.bad(
                    "block_count",
                    &format!(
                        "is {n_block_raw}, but llama.cpp loads at most {LLAMA_MAX_LAYERS} blocks (LLAMA_MAX_LAYERS)"
                    ),
                )
            })?;
        // Dimensions are 32-bit in llama.cpp (`llama_hparams`), and so here.
        let n_embd = u64::from(keys.required_u32("embedding_length")?);
        let head_counts = keys
            .per_block("attention.head_count", n_block)?
            .unwrap_or_default();
        let n_head = head_counts.iter().copied().max().unwrap_or(0);
        let kv_counts = keys
            .per_block("attention.head_count_kv", n_block)?
            .unwrap_or_else(|| head_counts.clone());
        let default_head_dim = if n_head > 0 {
            u32::try_from(n_embd / u64::from(n_head)).unwrap_or(0)
        } else {
            0
        };
        let head_dim_k = keys
            .opt_u32("attention.key_length")?
            .unwrap_or(default_head_dim);
        let head_dim_v = keys
            .opt_u32("attention.value_length")?
            .unwrap_or(default_head_dim);
        let n_ff = keys
            .per_block("feed_forward_length", n_block)?
            .and_then(|v| v.into_iter().max())
            .map_or(0, u64::from);
        let n_ff_exp = keys
            .opt_u32("expert_feed_forward_length")?
            .map_or(0, u64::from);
        let n_expert = keys.opt_u32("expert_count")?.unwrap_or(0);
        // One count or one per block; llama.cpp checks the largest.
        let n_expert_used = keys
            .per_block("expert_used_count", n_block)?
            .and_then(|v| v.into_iter().max())
            .unwrap_or(0);
        check_experts(&keys, n_expert, n_expert_used)?;
        let n_expert_shared = keys.opt_u32("expert_shared_count")?.unwrap_or(0);
        let n_ctx_train = keys.opt_u32("context_length")?.map_or(0, u64::from);
        let sliding_window = keys.opt_u32("attention.sliding_window")?.filter(|&w| w > 0);
        let full_attention_interval = keys.opt_u32("full_attention_interval")?;

        let kinds = block_kinds(&keys, n_block, sliding_window, full_attention_interval)?;
        let recurrent = if kinds.contains(&BlockKind::Recurrent) {
            Some(recurrent_meta(&keys)?)
        } else {
            None
        };

        let mut blocks: Vec<BlockMeta> = (0..n_block)
            .map(|i| BlockMeta {
                index: i,
                bytes: 0,
                dense_bytes: 0,
                expert_bytes: 0,
                shared_expert_bytes: 0,
                largest_expert_tensor: 0,
                largest_dense_tensor: 0,
                kind: kinds[i as usize],
                n_head_kv: match kinds[i as usize] {
                    BlockKind::Recurrent => 0,
                    _ => kv_counts.get(i as usize).copied().unwrap_or(0),
                },
            })
            .collect();
        let mut non_block = NonBlockBytes::default();
        let mut tensor_types: BTreeMap<String, u64> = BTreeMap::new();
        let mut params = 0u64;
        let mut tensor_bytes = 0u64;
        let mut n_vocab_from_embd = None;
        for t in model.tensors() {
            add_tensor(t, &mut blocks, &mut non_block, path)?;
            *tensor_types.entry(t.ggml_type.name()).or_default() += t.n_bytes;
            params = params.saturating_add(t.n_elements());
            tensor_bytes = tensor_bytes.saturating_add(t.n_bytes);
            if t.name == "token_embd.weight" {
                n_vocab_from_embd = t.shape.get(1).copied();
            }
        }
        let n_vocab = match model
            .get("tokenizer.ggml.tokens")
            .and_then(GgufValue::as_array)
        {
            Some(GgufArray::String(tokens)) => tokens.len() as u64,
            _ => n_vocab_from_embd.unwrap_or(0),
        };
        let n_head_kv = blocks.iter().map(|b| b.n_head_kv).max().unwrap_or(0);
        // Some converters omit expert_shared_count (llama.cpp's qwen35moe loader does
        // not read it); shared-expert tensors mean at least one.
        let n_expert_shared =
            if n_expert_shared == 0 && blocks.iter().any(|b| b.shared_expert_bytes > 0) {
                1
            } else {
                n_expert_shared
            };
        let file_type = model
            .get("general.file_type")
            .and_then(GgufValue::as_u64)
            .and_then(|v| u32::try_from(v).ok());
        Ok(ModelMeta {
            path: path.to_path_buf(),
            shards: model.paths(),
            arch,
            name: general("general.name"),
            basename: general("general.basename"),
            size_label: general("general.size_label"),
            file_type,
            file_type_name: file_type.and_then(file_type_name).map(str::to_string),
            n_block,
            n_layer_offloadable: n_block + 1,
            n_embd,
            n_head,
            n_head_kv,
            head_dim_k,
            head_dim_v,
            n_ff,
            n_ff_exp,
            n_ctx_train,
            n_vocab,
            n_expert,
            n_expert_used,
            n_expert_shared,
            sliding_window,
            full_attention_interval,
            recurrent,
            blocks,
            non_block,
            tensor_bytes,
            file_bytes: model.file_bytes(),
            params,
            tensor_types,
            bytes_read: model.bytes_read(),
        })
    }

    /// Whether the model has routed experts.
    pub fn is_moe(&self) -> bool {
        self.n_expert > 0 && self.blocks.iter().any(|b| b.expert_bytes > 0)
    }

    /// Expert bytes one token reads in a block: the routed experts it uses
    /// (`n_expert_used` of `n_expert`), assuming experts of equal size.
    pub fn active_expert_bytes(&self, block: &BlockMeta) -> u64 {
        if self.n_expert == 0 {
            return block.expert_bytes;
        }
        let used = u64::from(self.n_expert_used.min(self.n_expert));
        block.expert_bytes / u64::from(self.n_expert) * used
    }

    /// Parameters active per token (dense + shared + the used routed experts), from
    /// bytes scaled by the model's average bits per weight. Rough; for display.
    pub fn active_fraction(&self) -> f64 {
        let active: u64 = self
            .blocks
            .iter()
            .map(|b| b.dense_bytes + b.shared_expert_bytes + self.active_expert_bytes(b))
            .sum::<u64>()
            + self.non_block.output
            + self.non_block.other;
        if self.tensor_bytes == 0 {
            return 1.0;
        }
        active as f64 / self.tensor_bytes as f64
    }
}

fn add_tensor(
    t: &TensorInfo,
    blocks: &mut [BlockMeta],
    non_block: &mut NonBlockBytes,
    path: &Path,
) -> Result<(), GgufError> {
    match block_index(&t.name) {
        Some(i) => {
            let Some(block) = blocks.get_mut(i as usize) else {
                return Err(GgufError::BadKey {
                    path: path.to_path_buf(),
                    key: "block_count".into(),
                    problem: format!(
                        "is {} but tensor '{}' belongs to block {i}",
                        blocks.len(),
                        t.name
                    ),
                });
            };
            block.bytes += t.n_bytes;
            if is_routed_expert(&t.name) {
                block.expert_bytes += t.n_bytes;
                block.largest_expert_tensor = block.largest_expert_tensor.max(t.n_bytes);
            } else {
                if is_shared_expert(&t.name) {
                    block.shared_expert_bytes += t.n_bytes;
                } else {
                    block.dense_bytes += t.n_bytes;
                }
                block.largest_dense_tensor = block.largest_dense_tensor.max(t.n_bytes);
            }
        }
        None if t.name.starts_with("token_embd.") => non_block.token_embd += t.n_bytes,
        None if t.name.starts_with("output.") || t.name.starts_with("output_norm.") => {
            non_block.output += t.n_bytes;
            if t.name == "output.weight" {
                non_block.output_matrix = t.n_bytes;
            }
        }
        None => non_block.other += t.n_bytes,
    }
    Ok(())
}

fn block_kinds(
    keys: &Keys<'_>,
    n_block: u32,
    sliding_window: Option<u32>,
    full_attention_interval: Option<u32>,
) -> Result<Vec<BlockKind>, GgufError> {
    let n = n_block as usize;
    let arch = keys.arch.as_str();
    // Explicit per-block recurrent flags win (LLM_KV_ATTENTION_RECURRENT_LAYERS).
    if let Some(GgufValue::Array(arr)) = keys.get("attention.recurrent_layers") {
        if arr.len() == n {
            return Ok((0..n)
                .map(
                    |i| match arr.get_bool(i).or(arr.get_u64(i).map(|v| v != 0)) {
                        Some(true) => BlockKind::Recurrent,
                        _ => BlockKind::FullAttention,
                    },
                )
                .collect());
        }
    }
    if ALL_RECURRENT_ARCHS.contains(&arch) {
        return Ok(vec![BlockKind::Recurrent; n]);
    }
    if INTERVAL_HYBRID_ARCHS.contains(&arch) {
        let interval = full_attention_interval.unwrap_or(4).max(1);
        // MTP ("nextn") blocks at the end are attention-only (src/models/qwen35moe.cpp).
        let nextn = keys.opt_u32("nextn_predict_layers")?.unwrap_or(0);
        let n_trunk = n_block.saturating_sub(nextn);
        return Ok((0..n_block)
            .map(|i| {
                if i < n_trunk && (i + 1) % interval != 0 {
                    BlockKind::Recurrent
                } else {
                    BlockKind::FullAttention
                }
            })
            .collect());
    }
    if sliding_window.is_none() {
        return Ok(vec![BlockKind::FullAttention; n]);
    }
    // Sliding window: an explicit per-block bool array, else a period
    // (`attention.sliding_window_pattern`, else the loader's default for the arch).
    // With period p, block i uses the window when i % p < p - 1
    // (llama_hparams::set_swa_pattern, dense_first = false).
    if let Some(GgufValue::Array(arr)) = keys.get("attention.sliding_window_pattern") {
        return Ok((0..n)
            .map(|i| match arr.get_bool(i) {
                Some(true) => BlockKind::SlidingWindow,
                _ => BlockKind::FullAttention,
            })
            .collect());
    }
    let period = match keys.opt_u32("attention.sliding_window_pattern")? {
        Some(p) => Some(p),
        None => SWA_PATTERN_DEFAULTS
            .iter()
            .find(|(a, _)| *a == arch)
            .map(|(_, p)| *p),
    };
    Ok((0..n_block)
        .map(|i| match period {
            // Without a known period llama.cpp applies the window to every block.
            None | Some(0) => BlockKind::SlidingWindow,
            Some(p) if i % p < p - 1 => BlockKind::SlidingWindow,
            Some(_) => BlockKind::FullAttention,
        })
        .collect())
}

/// The expert counts llama.cpp's `load_hparams` accepts: at most
/// [`LLAMA_MAX_EXPERTS`], at least one used per token when there are experts, none
/// without them, and never more used than exist.
fn check_experts(keys: &Keys<'_>, n_expert: u32, n_expert_used: u32) -> Result<(), GgufError> {
    if n_expert > LLAMA_MAX_EXPERTS {
        return Err(keys.bad(
            "expert_count",
            &format!(
                "is {n_expert}, but llama.cpp loads at most {LLAMA_MAX_EXPERTS} experts (LLAMA_MAX_EXPERTS)"
            ),
        ));
    }
    let problem = if n_expert == 0 && n_expert_used > 0 {
        format!("is {n_expert_used}, but the model has no expert_count")
    } else if n_expert > 0 && n_expert_used == 0 {
        format!("is 0 or missing, but the model has {n_expert} experts: llama.cpp needs at least one per token")
    } else if n_expert_used > n_expert {
        format!("is {n_expert_used}, more than the model's {n_expert} experts")
    } else {
        return Ok(());
    };
    Err(keys.bad("expert_used_count", &problem))
}

fn recurrent_meta(keys: &Keys<'_>) -> Result<RecurrentMeta, GgufError> {
    let d_conv = keys.opt_u32("ssm.conv_kernel")?.unwrap_or(0);
    let d_inner = keys.opt_u32("ssm.inner_size")?.unwrap_or(0);
    let d_state = keys.opt_u32("ssm.state_size")?.unwrap_or(0);
    let n_group = keys.opt_u32("ssm.group_count")?.unwrap_or(0);
    let dt_rank = keys.opt_u32("ssm.time_step_rank")?.unwrap_or(0);
    // llama_hparams::n_embd_r() / n_embd_s() (src/llama-hparams.cpp), Mamba-style case.
    let n_embd_r = u64::from(d_conv.saturating_sub(1)).saturating_mul(
        u64::from(d_inner)
            .saturating_add((2 * u64::from(n_group)).saturating_mul(u64::from(d_state))),
    );
    let n_embd_s = u64::from(d_state) * u64::from(d_inner);
    Ok(RecurrentMeta {
        d_conv,
        d_inner,
        d_state,
        n_group,
        dt_rank,
        n_embd_r,
        n_embd_s,
    })
}
