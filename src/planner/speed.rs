//! The speed model: predicted generation (tg) and prompt (pp) tokens per second.
//!
//! Generation is memory-bound: each token reads the weights it uses once. Time per
//! token = bytes read on the GPU / GPU bandwidth + bytes read on the CPU / CPU
//! bandwidth + a fixed cost per block + a cost per hand-over between CPU and GPU.
//! Only the used experts of an MoE block are read (`n_expert_used / n_expert`).
//! Prompt processing is compute-bound: 2 FLOPs per active weight per token.
//!
//! All constants live in [`SpeedConstants::SEED_FIT`] with the data they were fitted
//! to; the README's "Measured" section shows the fit. Bandwidths come from the
//! hardware model (measured: GPU ~212 GB/s, CPU ~110 GB/s on Strix Halo,
//! lhl/strix-halo-testing; `docs/facts.md`, 'Bandwidth').

use super::memory::MemoryEstimate;
use crate::gguf::GgmlType;
use crate::hardware::{Backend, Os};
use crate::model::ModelMeta;
use serde::Serialize;

/// The constants of the speed model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SpeedConstants {
    /// Fraction of the GPU's measured read bandwidth that dense weight reads reach.
    pub gpu_dense_efficiency: f64,
    /// Fraction for routed-expert reads on the GPU (scattered expert matrices, IQ
    /// dequantisation).
    pub gpu_expert_efficiency: f64,
    /// Fixed cost per block on the GPU per token (kernel launches) on the Strix Halo
    /// iGPU (Vulkan, HIP) and other non-CUDA GPUs, seconds.
    pub gpu_block_overhead_s: f64,
    /// Fraction of the CPU's measured bandwidth llama.cpp's CPU kernels reach on
    /// k-quants and legacy quants.
    pub cpu_efficiency: f64,
    /// The same for IQ (i-quant) types, whose dequantisation is compute-heavy on a CPU.
    pub cpu_iq_efficiency: f64,
    /// Cost of one CPU↔GPU hand-over per token (synchronisation, copies) on an iGPU
    /// that shares the CPU's memory, seconds.
    pub split_overhead_s: f64,
    /// The same for a discrete GPU behind PCIe, seconds.
    pub pcie_split_overhead_s: f64,
    /// Fixed cost per block on the GPU per token with CUDA, seconds.
    pub cuda_block_overhead_s: f64,
    /// Multiplier on the CPU side's efficiency under Windows (the seed's Windows runs
    /// were slower on the CPU side than its Linux CPU-only run).
    pub windows_cpu_factor: f64,
    /// Threads at which the CPU side saturates memory bandwidth.
    pub cpu_saturation_threads: f64,
    /// Slowdown of the CPU side when threads exceed physical cores, per extra thread
    /// per physical core (SMT siblings fight over the same core).
    pub oversubscription_penalty: f64,
    /// Effective prompt-processing FLOP/s of the Strix Halo iGPU with Vulkan.
    pub gpu_pp_flops_vulkan: f64,
    /// The same with HIP/ROCm.
    pub gpu_pp_flops_hip: f64,
    /// Effective prompt FLOP/s per physical CPU core.
    pub cpu_pp_flops_per_core: f64,
    /// Relative spread of the prediction (the range shown is ± this).
    pub spread: f64,
}

impl SpeedConstants {
    /// Fitted to the seed article and repository's measurements (`docs/facts.md`,
    /// 'Measured speeds of the seed') plus one third-party Strix Halo measurement, by
    /// `planner-tests/speed_fit.rs`, which replays each measurement with its own
    /// placement pinned, re-fits these constants from scratch (coordinate descent on
    /// the squared log error, within physical bounds) and fails if the values below are
    /// not that fit. The seed's points: Qwen3 8B / 32B Q4_K_M all on the GPU (37.0,
    /// 10.4 tok/s); Qwen3-235B-A22B Q2_K 66/95 at 8, 12 and 24 threads (9.65, 9.75,
    /// 2.8) and 70/95 under the HIP SDK (9.1); Qwen3.5-397B-A17B 33/61 under the HIP
    /// SDK at 2 and 16 GB carveouts (6.1, 6.82), 61/61 on Linux Vulkan (17-19, taken as
    /// 18) and CPU-only (9.15). The other point: Qwen3-Coder-30B-A3B Q4_K_M all on the
    /// GPU with Linux Vulkan, 66 tok/s (fromthematrix.dev, "Which Local LLM Is Fastest
    /// on Ryzen AI Max+ 395?", llama.cpp b8123, generation after a 7,624-token prompt;
    /// `docs/facts.md`, 'Other Strix Halo measurements').
    /// It is the only small MoE model: without it the seed's points put 187.5 µs on
    /// every GPU block, and a 48-block model like Qwen3-30B-A3B came out faster on the
    /// CPU than on the GPU. Every point is reproduced within 9%.
    ///
    /// Not fitted (no data to separate them): `split_overhead_s` (2 ms per CPU↔GPU
    /// hand-over, assumed: no seed run used expert offload (`--n-cpu-moe`), which hands
    /// over twice per block; at 2 ms the planner keeps the seed's own layer splits
    /// (`planner-tests/seed_table.rs`); `strix-run bench` measures it) and
    /// `cpu_saturation_threads` (8: the seed's 8 and 12 threads ran within 1%). The
    /// seed has no Linux CPU run of a k-quant model, so `cpu_efficiency` (0.93 of the
    /// CPU's STREAM bandwidth) is only pinned through the partial placements and is
    /// confounded with `windows_cpu_factor` (the Windows runs' CPU side was ~2.6x
    /// slower than the Linux CPU-only run). The prompt-speed constants come from
    /// kyuz0/amd-strix-halo-toolboxes (Qwen3-235B-A22B UD-Q3_K_XL pp512: 159 tok/s
    /// Vulkan, 195 ROCm, 22B active parameters; `docs/facts.md`, 'Other Strix Halo
    /// measurements'); `cpu_pp_flops_per_core` is an
    /// assumption (~60 GFLOP/s per Zen 5 core on quantised matmul). `strix-run bench`
    /// calibration replaces all of them with values measured on the user's machine.
    ///
    /// Two constants describe a discrete NVIDIA GPU with CUDA instead, fitted by
    /// `planner-tests/cuda_fit.rs` to `measurements/results/2026-11-26-nvidia-h200.json`
    /// (`measurements/gpu-plan-check` on an H200 with CUDA 13.0: tiny-moe F16, 32 placements,
    /// -ngl 0-19 and -ncmoe 1-18 at 16 threads, GPU read bandwidth measured there at
    /// 4.25 TB/s): `cuda_block_overhead_s` (55 µs per GPU block per token, against the
    /// iGPU's 71.4 µs) and `pcie_split_overhead_s` (15 µs per hand-over). The second
    /// agrees with the bound of 0.22 ms that AlexsJones/llmfit pull request #755 gives
    /// (RTX 2080 + ~102 GB/s DDR4, Qwen3-30B-A3B Q4_K_M `-ngl 99 --n-cpu-moe 36` at
    /// 36.7 tok/s: 27.2 ms per token, at least 8.6 ms of it CPU expert reads and 2.5 ms
    /// GPU reads, the rest at most for its 72 hand-overs).
    pub const SEED_FIT: SpeedConstants = SpeedConstants {
        gpu_dense_efficiency: 0.944,
        gpu_expert_efficiency: 0.654,
        gpu_block_overhead_s: 71.4e-6,
        cpu_efficiency: 0.930,
        cpu_iq_efficiency: 0.745,
        split_overhead_s: 2.0e-3,
        pcie_split_overhead_s: 15e-6,
        cuda_block_overhead_s: 55e-6,
        windows_cpu_factor: 0.379,
        cpu_saturation_threads: 8.0,
        oversubscription_penalty: 0.497,
        gpu_pp_flops_vulkan: 7.0e12,
        gpu_pp_flops_hip: 8.6e12,
        cpu_pp_flops_per_core: 60e9,
        spread: 0.2,
    };
}

/// Predicted speeds with ranges.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prediction {
    /// Generated tokens per second.
    pub tg_tok_s: f64,
    /// Low and high ends of the generation range.
    pub tg_range: (f64, f64),
    /// Prompt tokens per second.
    pub pp_tok_s: f64,
    /// Low and high ends of the prompt range.
    pub pp_range: (f64, f64),
    /// Whether the constants were measured on this machine (`strix-run bench`) or
    /// are the defaults fitted to the seed's Strix Halo.
    pub calibrated: bool,
    /// Generation with every one of the plan's sequences busy at once (batched decode):
    /// the same as `tg_tok_s` for one sequence.
    pub concurrent: Concurrency,
}

/// Predicted generation when `slots` sequences generate together.
///
/// One batched decode step reads the weights once for all of its tokens, so a step of
/// P tokens costs the single-token time's memory part once (for an MoE, the experts
/// the P tokens route to: `n_expert / n_used × (1 − (1 − n_used / n_expert)^P)` times
/// the experts one token reads, assuming uniform routing) plus compute for each further
/// token. That compute is the prompt model's time per token times
/// [`DecodeShape::logits_factor`]: a prompt batch computes the output projection for
/// its last token only, a decode batch for every token, and the projection
/// (`n_embd × n_vocab`) can outweigh the blocks (Gemma 3 270M: 168M of its 268M
/// parameters). Aggregate = P / step time; each stream gets 1 / step time. Left out:
/// the KV reads that grow with the context, and sampling (a server samples once per
/// sequence and step).
///
/// Checked against `llama-batched-bench` from the same llama.cpp on the development
/// VM's CPU (`measurements/batched-decode`; `planner-tests/serving.rs` holds the
/// committed run to it), not fitted to it; unmeasured on GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Concurrency {
    /// Sequences generating together.
    pub slots: u32,
    /// Tokens per second of all of them together.
    pub aggregate_tg_tok_s: f64,
    /// Tokens per second each one gets.
    pub per_stream_tg_tok_s: f64,
}

/// What batched decoding depends on besides the single-stream speeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeShape {
    /// Share of one token's weight reads that are routed experts (0 for a dense model).
    pub expert_share: f64,
    /// Fraction of the experts one token uses, `n_expert_used / n_expert` (0 when dense).
    pub expert_fraction: f64,
    /// Compute of one decoded token (its blocks and the output projection) over the
    /// compute of one prompt token (its blocks only): `(blocks + n_embd × n_vocab) /
    /// blocks`, in parameters; 1 when unknown.
    pub logits_factor: f64,
}

impl DecodeShape {
    /// A dense model whose output projection is negligible.
    pub const DENSE: DecodeShape = DecodeShape {
        expert_share: 0.0,
        expert_fraction: 0.0,
        logits_factor: 1.0,
    };

    /// The shape of `model` (routing and output projection from its header).
    pub fn of(model: &ModelMeta) -> DecodeShape {
        // Per token, over the blocks: dense (and shared-expert) bytes, the routed experts
        // it reads, and all routed experts.
        let (mut dense, mut active_experts, mut all_experts) = (0.0, 0.0, 0.0);
        for b in &model.blocks {
            dense += (b.dense_bytes + b.shared_expert_bytes) as f64;
            active_experts += model.active_expert_bytes(b) as f64;
            all_experts += b.expert_bytes as f64;
        }
        let routed = model.n_expert > 0 && model.n_expert_used > 0;
        let (expert_share, expert_fraction) = if routed {
            let total = active_experts + dense + model.non_block.output as f64;
            (
                if total > 0.0 {
                    active_experts / total
                } else {
                    0.0
                },
                f64::from(model.n_expert_used) / f64::from(model.n_expert),
            )
        } else {
            (0.0, 0.0)
        };
        // Parameters, not bytes: the embedding and output matrices are often stored
        // wider than the blocks. The blocks hold what the embedding and an untied output
        // matrix (n_embd × n_vocab each) leave of the file's parameters (norms and other
        // small tensors included); a token uses their share that its bytes use.
        let projection = model.n_embd as f64 * model.n_vocab as f64;
        let untied = if model.non_block.output_matrix > 0 {
            projection
        } else {
            0.0
        };
        let block_bytes = dense + all_experts;
        let block_params = if block_bytes > 0.0 {
            (model.params as f64 - projection - untied).max(0.0) * (dense + active_experts)
                / block_bytes
        } else {
            0.0
        };
        let logits_factor = if block_params > 0.0 {
            // Bounded: a header with (almost) no blocks must not predict nothing.
            ((block_params + projection) / block_params).min(MAX_LOGITS_FACTOR)
        } else {
            1.0
        };
        DecodeShape {
            expert_share,
            expert_fraction,
            logits_factor,
        }
    }
}

/// Upper bound of [`DecodeShape::logits_factor`] (Gemma 3 270M: about 2.7).
const MAX_LOGITS_FACTOR: f64 = 16.0;

/// [`Concurrency`] at `slots` busy sequences, from the single-stream generation and
/// prompt speeds and the model's [`DecodeShape`].
pub fn concurrency(tg_tok_s: f64, pp_tok_s: f64, shape: &DecodeShape, slots: u32) -> Concurrency {
    let p = f64::from(slots.max(1));
    if tg_tok_s <= 0.0 {
        return Concurrency {
            slots: slots.max(1),
            aggregate_tg_tok_s: 0.0,
            per_stream_tg_tok_s: 0.0,
        };
    }
    let t1 = 1.0 / tg_tok_s;
    let (share, fraction) = (shape.expert_share, shape.expert_fraction);
    // Expert coverage relative to one token's experts.
    let coverage = if fraction > 0.0 && fraction < 1.0 {
        (1.0 - (1.0 - fraction).powf(p)) / fraction
    } else {
        1.0
    };
    let compute = if pp_tok_s > 0.0 {
        shape.logits_factor.max(1.0) / pp_tok_s
    } else {
        0.0
    };
    let step = t1 * ((1.0 - share) + share * coverage) + (p - 1.0) * compute;
    Concurrency {
        slots: slots.max(1),
        aggregate_tg_tok_s: p / step,
        per_stream_tg_tok_s: 1.0 / step,
    }
}

/// What the speed model needs to know about the machine and run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeedInputs {
    /// Backend in use (GPU bandwidth applies only to GPU backends).
    pub backend: Backend,
    /// Operating system.
    pub os: Os,
    /// GPU read bandwidth, bytes/s.
    pub gpu_bandwidth: f64,
    /// How the GPU reaches the CPU's memory (sets the cost of a hand-over).
    pub gpu_link: GpuLink,
    /// CPU read bandwidth, bytes/s.
    pub cpu_bandwidth: f64,
    /// Physical cores.
    pub physical_cores: u32,
    /// Threads used for generation.
    pub threads: u32,
    /// Threads used for prompt processing.
    pub threads_batch: u32,
    /// Physical batch.
    pub n_ubatch: u32,
    /// Sequences that may generate together (the plan's `n_seq`).
    pub n_seq: u32,
}

/// How the GPU is attached to the CPU's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuLink {
    /// An iGPU sharing the CPU's memory (Strix Halo).
    Unified,
    /// A discrete card behind PCIe.
    Pcie,
}

impl GpuLink {
    /// The link of a GPU: unified for an integrated one, PCIe otherwise.
    pub fn of(integrated: bool) -> GpuLink {
        if integrated {
            GpuLink::Unified
        } else {
            GpuLink::Pcie
        }
    }
}

/// Whether a type is one of the i-quants (costly to dequantise on a CPU).
fn is_iq(ty: GgmlType) -> bool {
    ty.name().starts_with("iq")
}

/// Share of the model's expert bytes stored in IQ types (used to blend the CPU
/// efficiencies).
fn iq_share(model: &ModelMeta) -> f64 {
    let iq: u64 = model
        .tensor_types
        .iter()
        .filter(|(name, _)| GgmlType::from_name(name).is_some_and(is_iq))
        .map(|(_, &b)| b)
        .sum();
    iq as f64 / model.tensor_bytes.max(1) as f64
}

/// CPU-side slowdown for a thread count: below saturation the CPU cannot pull full
/// bandwidth; above the physical cores SMT siblings collide.
fn thread_factor(c: &SpeedConstants, threads: u32, physical: u32) -> f64 {
    let t = f64::from(threads.max(1));
    let p = f64::from(physical.max(1));
    let ramp = (t / c.cpu_saturation_threads).min(1.0);
    let over = if t > p {
        1.0 + c.oversubscription_penalty * (t - p) * 16.0 / p
    } else {
        1.0
    };
    ramp / over
}

/// Bytes read per generated token on each side, and block counts.
struct TokenReads {
    gpu_dense: f64,
    gpu_experts: f64,
    cpu: f64,
    gpu_blocks: f64,
    cpu_blocks: f64,
    handovers: f64,
    active_params_gpu: f64,
    active_params_cpu: f64,
}

fn token_reads(model: &ModelMeta, mem: &MemoryEstimate, n_cpu_moe: u32) -> TokenReads {
    let n_block = model.n_block;
    let first_gpu = n_block - mem.gpu_blocks;
    let bits = model.tensor_bytes as f64 * 8.0 / model.params.max(1) as f64;
    let mut r = TokenReads {
        gpu_dense: 0.0,
        gpu_experts: 0.0,
        cpu: 0.0,
        gpu_blocks: 0.0,
        cpu_blocks: 0.0,
        handovers: 0.0,
        active_params_gpu: 0.0,
        active_params_cpu: 0.0,
    };
    for b in &model.blocks {
        let dense = (b.dense_bytes + b.shared_expert_bytes) as f64;
        let experts = model.active_expert_bytes(b) as f64;
        if b.index >= first_gpu {
            r.gpu_blocks += 1.0;
            r.gpu_dense += dense;
            r.active_params_gpu += dense * 8.0 / bits;
            if b.index < n_cpu_moe && b.expert_bytes > 0 {
                r.cpu += experts;
                r.active_params_cpu += experts * 8.0 / bits;
                // GPU → CPU for the experts and back.
                r.handovers += 2.0;
            } else {
                r.gpu_experts += experts;
                r.active_params_gpu += experts * 8.0 / bits;
            }
        } else {
            r.cpu_blocks += 1.0;
            r.cpu += dense + experts;
            r.active_params_cpu += (dense + experts) * 8.0 / bits;
        }
    }
    // The output layer reads all of its weights for every token.
    let output = model.non_block.output as f64;
    if mem.output_on_gpu {
        r.gpu_dense += output;
        r.active_params_gpu += output * 8.0 / bits;
    } else {
        r.cpu += output;
        r.active_params_cpu += output * 8.0 / bits;
    }
    // A split between CPU blocks and GPU blocks hands the hidden state over once.
    if mem.gpu_blocks > 0 && mem.gpu_blocks < n_block {
        r.handovers += 1.0;
    }
    r
}

/// Predicts tg and pp for a placement.
pub fn predict(
    model: &ModelMeta,
    mem: &MemoryEstimate,
    n_cpu_moe: u32,
    inputs: &SpeedInputs,
    c: &SpeedConstants,
    calibrated: bool,
) -> Prediction {
    let r = token_reads(model, mem, n_cpu_moe);
    let gpu = inputs.backend != Backend::Cpu;
    let iq = iq_share(model);
    let os_factor = if inputs.os == Os::Windows {
        c.windows_cpu_factor
    } else {
        1.0
    };
    let cpu_eff = (c.cpu_efficiency * (1.0 - iq) + c.cpu_iq_efficiency * iq) * os_factor;
    let cpu_bw =
        inputs.cpu_bandwidth * cpu_eff * thread_factor(c, inputs.threads, inputs.physical_cores);
    let mut t = 0.0;
    if gpu {
        let bw = inputs.gpu_bandwidth.max(1.0);
        t += r.gpu_dense / (bw * c.gpu_dense_efficiency)
            + r.gpu_experts / (bw * c.gpu_expert_efficiency)
            + r.gpu_blocks
                * if inputs.backend == Backend::Cuda {
                    c.cuda_block_overhead_s
                } else {
                    c.gpu_block_overhead_s
                }
            + r.handovers
                * match inputs.gpu_link {
                    GpuLink::Unified => c.split_overhead_s,
                    GpuLink::Pcie => c.pcie_split_overhead_s,
                };
    }
    t += r.cpu / cpu_bw.max(1.0);
    let tg = if t > 0.0 { 1.0 / t } else { 0.0 };

    let gpu_flops = match inputs.backend {
        Backend::Hip | Backend::Cuda => c.gpu_pp_flops_hip,
        _ => c.gpu_pp_flops_vulkan,
    };
    // Small physical batches under-use the GPU: scale by ubatch / (ubatch + 128),
    // normalised to 1 at llama.cpp's default 512 (assumption; calibrated by bench).
    let ub = f64::from(inputs.n_ubatch.max(1));
    let batch_eff = (ub / (ub + 128.0)) / (512.0 / 640.0);
    let cpu_flops = c.cpu_pp_flops_per_core
        * f64::from(inputs.threads_batch.min(inputs.physical_cores).max(1))
        / if inputs.threads_batch > inputs.physical_cores {
            1.0 + c.oversubscription_penalty
        } else {
            1.0
        };
    let mut tp = 2.0 * r.active_params_cpu / cpu_flops;
    if gpu {
        tp += 2.0 * r.active_params_gpu / (gpu_flops * batch_eff.min(1.25));
    } else {
        tp += 2.0 * r.active_params_gpu / cpu_flops;
    }
    let pp = if tp > 0.0 { 1.0 / tp } else { 0.0 };
    let spread = if calibrated { c.spread / 2.0 } else { c.spread };
    Prediction {
        concurrent: concurrency(tg, pp, &DecodeShape::of(model), inputs.n_seq),
        tg_tok_s: tg,
        tg_range: (tg * (1.0 - spread), tg * (1.0 + spread)),
        pp_tok_s: pp,
        pp_range: (pp * (1.0 - spread), pp * (1.0 + spread)),
        calibrated,
    }
}
