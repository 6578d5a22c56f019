//! The memory model: what a placement costs on the GPU and on the host, per kind of
//! buffer, the way llama.cpp allocates it.
//!
//! Sources (pinned llama.cpp):
//! - layer placement: `llama_model_base::load_tensors` in `src/llama-model.cpp`:
//!   with `n_gpu_layers = g`, layers `il >= n_block + 1 - g` go to the GPU, where
//!   `il == n_block` is the output layer; the input layer (`token_embd`) always stays
//!   on the CPU.
//! - `--n-cpu-moe N`: `common/arg.cpp` keeps the routed-expert tensors
//!   (`blk.i.ffn_*_exps`) of blocks `0..N` in CPU buffers.
//! - KV cache: `src/llama-kv-cache.cpp` (one K and one V row of
//!   `n_embd_{k,v}_gqa` elements per cell per layer, on the layer's device);
//!   `n_ctx` is padded to 256 (`src/llama-context.cpp`); sliding-window layers hold
//!   `pad256(min(n_ctx, n_swa·n_seq + n_ubatch))` cells (`src/llama-kv-cache-iswa.cpp`).
//! - recurrent state: `(n_embd_r + n_embd_s)` f32 per sequence per recurrent layer
//!   (`src/llama-memory-recurrent.cpp`, `llama_hparams::n_embd_r/n_embd_s`).
//! - output buffer: `n_vocab` f32 logits per output row on the host
//!   (`llama_context::output_reserve`).
//!
//! - weight staging: with a batch of at least 32 rows, ggml's scheduler runs a matmul
//!   whose weights sit in host memory on the GPU anyway ("op offload",
//!   `ggml_backend_sched_backend_id_from_cur` in `ggml/src/ggml-backend.cpp`;
//!   `GGML_OP_OFFLOAD_MIN_BATCH` defaults to 32 in ggml-cuda and ggml-vulkan) and copies
//!   the weight into the GPU's compute buffer first. Each such weight starts its own
//!   graph split "so the memory of the previously offloaded weights can be reused", so
//!   the buffer holds the largest one. A GPU that can read the host buffer in place
//!   (an integrated CUDA/HIP device, with weights in its pinned host buffers, which
//!   llama.cpp uses when it does not mmap) copies nothing.
//!
//! The compute-buffer estimate is a model of ggml's graph allocator, not an exact
//! count; the planner reports it next to llama.cpp's own figure in the tests.
//!
//! Sizes saturate at `u64::MAX` instead of wrapping: a header with absurd dimensions, or
//! a pinned context and batch at their 32-bit limits, gives a plan that does not fit,
//! never a small wrapped number that would.

use super::KvType;
use crate::hardware::Backend;
use crate::model::{BlockKind, ModelMeta};
use serde::Serialize;

/// Where the weights go: the two numbers llama.cpp takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// `n_gpu_layers`, counting the output layer (0..=n_block + 1).
    pub n_gpu_layers: u32,
    /// `--n-cpu-moe`: routed experts of blocks `0..n_cpu_moe` stay on the CPU.
    pub n_cpu_moe: u32,
}

/// Context settings that change memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ContextShape {
    /// Context length (before padding).
    pub n_ctx: u32,
    /// Parallel sequences.
    pub n_seq: u32,
    /// Logical batch.
    pub n_batch: u32,
    /// Physical batch (what the compute buffers are sized for).
    pub n_ubatch: u32,
    /// K cache type.
    pub type_k: KvType,
    /// V cache type.
    pub type_v: KvType,
    /// Flash attention (no KQ matrix in the compute buffer).
    pub flash_attn: bool,
}

/// Bytes on one side (GPU or host), by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeviceBytes {
    /// Model weights.
    pub weights: u64,
    /// KV cache (attention layers).
    pub kv_cache: u64,
    /// Recurrent state (linear-attention / SSM layers).
    pub recurrent_state: u64,
    /// Compute buffers (graph intermediates).
    pub compute: u64,
    /// Output (logits) buffer.
    pub output: u64,
}

impl DeviceBytes {
    /// Everything on this side.
    pub fn total(&self) -> u64 {
        self.weights
            .saturating_add(self.kv_cache)
            .saturating_add(self.recurrent_state)
            .saturating_add(self.compute)
            .saturating_add(self.output)
    }

    /// What llama.cpp calls the context's memory (KV cache + recurrent state).
    pub fn context(&self) -> u64 {
        self.kv_cache.saturating_add(self.recurrent_state)
    }
}

/// What a placement costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MemoryEstimate {
    /// On the GPU (0 without one).
    pub gpu: DeviceBytes,
    /// On the host.
    pub host: DeviceBytes,
    /// Blocks whose weights sit on the GPU (the output layer not counted).
    pub gpu_blocks: u32,
    /// Blocks on the GPU whose routed experts stay on the CPU.
    pub gpu_blocks_experts_on_cpu: u32,
    /// Whether the output layer is on the GPU.
    pub output_on_gpu: bool,
}

/// Bytes of one cache row of `n` elements of `ty` (`ggml_row_size`).
fn row_bytes(ty: KvType, n: u64) -> u64 {
    let tr = ty.ggml().traits().map_or((1, 2), |t| {
        (u64::from(t.block_size), u64::from(t.type_size))
    });
    n.div_ceil(tr.0).saturating_mul(tr.1)
}

fn pad256(n: u64) -> u64 {
    n.div_ceil(256).saturating_mul(256)
}

/// The context llama.cpp really makes for a request of `n_ctx` tokens over `n_seq`
/// sequences (`kv_unified` off, as strix-run loads): `n_ctx` padded to a multiple of
/// 256, split into sequences each padded to 256 again, and the total made the sum of
/// the sequences (`llama_context::llama_context` in `src/llama-context.cpp`: `--ctx 1`
/// gives 256 cells, `--ctx 300` gives 512, `--ctx 4096 --parallel 3` gives 3 × 1536).
/// Past `u32::MAX` it stops at the largest multiple of 256 (llama.cpp's own `uint32_t`
/// padding would wrap to 0 and refuse the context).
pub fn effective_n_ctx(n_ctx: u32, n_seq: u32) -> u32 {
    let n_seq = u64::from(n_seq.max(1));
    let total = pad256(u64::from(n_ctx.max(1)));
    let per_seq = pad256(total / n_seq).max(256);
    let effective = per_seq.saturating_mul(n_seq);
    u32::try_from(effective).unwrap_or(u32::MAX - 255)
}

/// KV cells a block keeps.
fn kv_cells(model: &ModelMeta, kind: BlockKind, ctx: &ContextShape) -> u64 {
    let n_ctx = pad256(u64::from(ctx.n_ctx.max(1)));
    match kind {
        BlockKind::FullAttention => n_ctx,
        BlockKind::SlidingWindow => {
            let window = u64::from(model.sliding_window.unwrap_or(0))
                .saturating_mul(u64::from(ctx.n_seq.max(1)))
                .saturating_add(u64::from(ctx.n_ubatch));
            pad256(n_ctx.min(window))
        }
        BlockKind::Recurrent => 0,
    }
}

/// KV-cache bytes of one block.
pub fn block_kv_bytes(model: &ModelMeta, index: usize, ctx: &ContextShape) -> u64 {
    let Some(b) = model.blocks.get(index) else {
        return 0;
    };
    let cells = kv_cells(model, b.kind, ctx);
    let k = u64::from(b.n_head_kv) * u64::from(model.head_dim_k);
    let v = u64::from(b.n_head_kv) * u64::from(model.head_dim_v);
    cells.saturating_mul(row_bytes(ctx.type_k, k).saturating_add(row_bytes(ctx.type_v, v)))
}

/// Recurrent-state bytes of one block (f32, one state per sequence).
pub fn block_recurrent_bytes(model: &ModelMeta, index: usize, ctx: &ContextShape) -> u64 {
    match (model.blocks.get(index), model.recurrent) {
        (Some(b), Some(r)) if b.kind == BlockKind::Recurrent => r
            .n_embd_r
            .saturating_add(r.n_embd_s)
            .saturating_mul(4 * u64::from(ctx.n_seq.max(1))),
        _ => 0,
    }
}

/// Compute-buffer model. ggml's allocator reuses memory across the graph, so the
/// buffer is about the largest set of intermediates alive at once: the residual
/// stream and normed copies, the FFN (or the used experts') activations, the
/// attention scores (without flash attention), and the logits on the device that
/// holds the output layer. The multipliers are the intermediates a transformer block
/// keeps alive (residual, norm, Q/K/V, FFN gate/up); against llama.cpp's dry run this
/// lands within -20% to +45% (`tests/memory_accuracy.rs`, Gemma 3 270M and six
/// synthetic presets, ctx 512 to 16384).
fn compute_bytes(
    model: &ModelMeta,
    ctx: &ContextShape,
    holds_layers: bool,
    holds_output: bool,
) -> u64 {
    // One f32 in each row of a physical batch.
    let f32_per_row = u64::from(ctx.n_ubatch.min(ctx.n_batch).max(1)) * 4;
    let mut bytes = 0u64;
    if holds_layers {
        let ffn = if model.n_expert > 0 {
            u64::from(model.n_expert_used)
                .saturating_mul(model.n_ff_exp.max(1))
                .saturating_mul(2)
        } else {
            model.n_ff.saturating_mul(2)
        };
        let attn = if ctx.flash_attn {
            0
        } else {
            let kv = pad256(u64::from(ctx.n_ctx.max(1)));
            u64::from(model.n_head).saturating_mul(kv)
        };
        let q = u64::from(model.n_head)
            .saturating_mul(u64::from(model.head_dim_k.max(1)))
            .saturating_mul(3);
        let per_row = model
            .n_embd
            .saturating_mul(4)
            .saturating_add(q)
            .saturating_add(ffn.max(attn));
        bytes = bytes.saturating_add(f32_per_row.saturating_mul(per_row));
    }
    if holds_output {
        bytes = bytes.saturating_add(f32_per_row.saturating_mul(model.n_vocab));
    }
    bytes
}

/// How the plan uses a GPU, as far as memory is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuUse {
    /// No GPU backend: everything is on the host.
    None,
    /// A GPU that copies host-resident weights into its compute buffer to run a
    /// batch's matmuls on them (discrete GPUs; Vulkan; CUDA/HIP with mmap'ed weights).
    StagesHostWeights,
    /// A GPU that reads host-resident weights in place: an integrated CUDA/HIP device
    /// (`supports_buft` accepts its host buffer type) with the weights read into
    /// pinned host buffers rather than mmap'ed.
    ReadsHostWeights,
}

impl GpuUse {
    /// How `backend` uses its GPU: `integrated` is the GPU's own flag, `use_mmap`
    /// whether the weights are mmap'ed (then host weights are in ggml's plain CPU
    /// buffers, which no GPU backend reads in place).
    pub fn of(backend: Backend, integrated: bool, use_mmap: bool) -> Self {
        match backend {
            Backend::Cpu => GpuUse::None,
            // ggml-cuda's `supports_buft`: an integrated device takes its host buffer.
            Backend::Cuda | Backend::Hip if integrated && !use_mmap => GpuUse::ReadsHostWeights,
            _ => GpuUse::StagesHostWeights,
        }
    }

    /// Whether any GPU backend is in use.
    pub fn is_gpu(self) -> bool {
        self != GpuUse::None
    }
}

/// Smallest batch for which ggml moves a matmul on host weights to the GPU
/// (`GGML_OP_OFFLOAD_MIN_BATCH`, ggml-cuda.cu and ggml-vulkan.cpp).
const OP_OFFLOAD_MIN_BATCH: u32 = 32;

/// What `placement` costs for `model` with `ctx` when the GPU is used as `gpu` says
/// (a CPU-only plan puts everything on the host).
pub fn estimate(
    model: &ModelMeta,
    placement: Placement,
    ctx: &ContextShape,
    gpu_use: GpuUse,
) -> MemoryEstimate {
    let gpu = gpu_use.is_gpu();
    let n_block = model.n_block;
    let g = if gpu {
        placement.n_gpu_layers.min(n_block + 1)
    } else {
        0
    };
    let first_gpu = n_block + 1 - g;
    let output_on_gpu = g > 0;
    let mut est = MemoryEstimate {
        output_on_gpu,
        ..MemoryEstimate::default()
    };
    est.host.weights += model.non_block.token_embd + model.non_block.other;
    if output_on_gpu {
        est.gpu.weights += model.non_block.output;
    } else {
        est.host.weights += model.non_block.output;
    }
    // The largest weight a matmul reads from host memory (see the module docs).
    let mut largest_host_matmul_weight = if output_on_gpu {
        0
    } else if model.non_block.output_matrix > 0 {
        model.non_block.output_matrix
    } else {
        // Tied embeddings: the output projection reads `token_embd`, which stays on the
        // host.
        model.non_block.token_embd
    };
    for (i, b) in model.blocks.iter().enumerate() {
        let on_gpu = (i as u32) >= first_gpu;
        let experts_on_cpu = (i as u32) < placement.n_cpu_moe;
        let kv = block_kv_bytes(model, i, ctx);
        let rs = block_recurrent_bytes(model, i, ctx);
        if on_gpu {
            est.gpu_blocks += 1;
            est.gpu.kv_cache = est.gpu.kv_cache.saturating_add(kv);
            est.gpu.recurrent_state = est.gpu.recurrent_state.saturating_add(rs);
            if experts_on_cpu && b.expert_bytes > 0 {
                est.gpu_blocks_experts_on_cpu += 1;
                est.gpu.weights += b.bytes - b.expert_bytes;
                est.host.weights += b.expert_bytes;
                largest_host_matmul_weight =
                    largest_host_matmul_weight.max(b.largest_expert_tensor);
            } else {
                est.gpu.weights += b.bytes;
            }
        } else {
            est.host.weights += b.bytes;
            est.host.kv_cache = est.host.kv_cache.saturating_add(kv);
            est.host.recurrent_state = est.host.recurrent_state.saturating_add(rs);
            largest_host_matmul_weight = largest_host_matmul_weight
                .max(b.largest_expert_tensor)
                .max(b.largest_dense_tensor);
        }
    }
    let host_layers = est.gpu_blocks < n_block || est.gpu_blocks_experts_on_cpu > 0;
    let ubatch = ctx.n_ubatch.min(ctx.n_batch);
    let staging = if gpu_use == GpuUse::StagesHostWeights && ubatch >= OP_OFFLOAD_MIN_BATCH {
        largest_host_matmul_weight
    } else {
        0
    };
    est.gpu.compute = if g > 0 {
        compute_bytes(model, ctx, est.gpu_blocks > 0, output_on_gpu).saturating_add(staging)
    } else if staging > 0 {
        // No layer on the GPU, but the batch's matmuls (and their activations, logits
        // included) still run there.
        compute_bytes(model, ctx, true, true).saturating_add(staging)
    } else {
        0
    };
    est.host.compute = compute_bytes(model, ctx, host_layers || g == 0, !output_on_gpu);
    // Logits for the output rows live in a host buffer (n_seq rows during generation).
    est.host.output = model
        .n_vocab
        .saturating_mul(4 * u64::from(ctx.n_seq.max(1)));
    est
}
