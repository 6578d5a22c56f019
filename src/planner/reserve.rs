//! GPU memory kept free below a budget: what the backend's runtime takes outside the
//! buffers llama.cpp allocates (driver context, BLAS library, scratch pool, captured
//! graphs), plus what keeps the plan off the edge.
//!
//! The planner's memory model ([`super::memory`]) predicts llama.cpp's buffers; a
//! plan fits when those plus this reserve stay within the budget.

use super::memory::MemoryEstimate;
use crate::hardware::Backend;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// How much GPU memory a placement keeps free: a fixed part plus a part per block
/// that leaves work on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuReserve {
    /// Kept free whatever the placement.
    pub base_bytes: u64,
    /// Added for each repeating block whose weights stay on the CPU.
    pub per_cpu_block_bytes: u64,
    /// Added for each block on the GPU whose routed experts stay on the CPU.
    pub per_cpu_expert_block_bytes: u64,
}

impl GpuReserve {
    /// 1 GiB, whatever the placement: llama.cpp's own fitting keeps 1 GiB per device
    /// (`fit_params_target` in common/common.h). Under the Windows HIP SDK's total
    /// cap it also keeps the plan off the edge the seed measured: 62.0 GiB loaded but
    /// ran at 4.5 tok/s against 6.1 at 59.3 GiB (memory pressure). Used for HIP and
    /// Vulkan, whose runtimes' own use has not been measured here.
    pub const DEFAULT: GpuReserve = GpuReserve {
        base_bytes: GIB,
        per_cpu_block_bytes: 0,
        per_cpu_expert_block_bytes: 0,
    };

    /// CUDA, fitted to the GPU peak (NVML) minus llama.cpp's CUDA buffers at the 42
    /// points of `measurements/results/2026-11-26-nvidia-h200-qwen3-30b.json` (NVIDIA H200,
    /// CUDA 13.0, driver 580; expert offload, layer splits, `-ngl 0`, the whole model
    /// on the GPU). Least squares gave 0.697 GiB + 2.90 MiB per CPU-resident block +
    /// 0.49 MiB per block with its experts on the CPU, every point within 7.4 MiB; the
    /// base is raised to 0.705 GiB so that no point is above the line. The base is the
    /// CUDA context (0.51 GiB at `llama-bench --list-devices` alone), cuBLAS and ggml's
    /// pool. The per-block parts grow with the number of GPU graph splits, consistent
    /// with ggml-cuda keeping one CUDA graph per split (`cuda_graphs` in
    /// ggml-cuda/common.cuh: "multiple graphs per context when the computation is split
    /// across CPU/GPU (e.g., with --n-cpu-moe)"). There is no margin beyond the line:
    /// the memory model's own figure was 0.01-0.10 GiB above llama.cpp's buffers at
    /// every one of those points, and `strix-run run` steps down if a load fails.
    ///
    /// The budget in that run was the GPU's memory above idle, context included. Where
    /// the budget is instead llama.cpp's free-memory reading (a build with the `cuda`
    /// feature), that reading is taken once the CUDA context exists, so the context is
    /// counted twice and the plan keeps about 0.5 GiB more free than it needs.
    pub const CUDA: GpuReserve = GpuReserve {
        base_bytes: 722 * MIB,
        per_cpu_block_bytes: 2970 * MIB / 1024,
        per_cpu_expert_block_bytes: MIB / 2,
    };

    /// The reserve for a backend's runtime.
    pub fn for_backend(backend: Backend) -> GpuReserve {
        match backend {
            Backend::Cuda => GpuReserve::CUDA,
            Backend::Cpu | Backend::Vulkan | Backend::Hip => GpuReserve::DEFAULT,
        }
    }

    /// A flat reserve the user chose (`--gpu-reserve`).
    pub fn flat(bytes: u64) -> GpuReserve {
        GpuReserve {
            base_bytes: bytes,
            per_cpu_block_bytes: 0,
            per_cpu_expert_block_bytes: 0,
        }
    }

    /// The bytes kept free for a placement of a model with `n_block` repeating blocks.
    pub fn bytes(&self, n_block: u32, mem: &MemoryEstimate) -> u64 {
        let cpu_blocks = u64::from(n_block.saturating_sub(mem.gpu_blocks));
        let cpu_expert_blocks = u64::from(mem.gpu_blocks_experts_on_cpu);
        self.base_bytes
            .saturating_add(cpu_blocks.saturating_mul(self.per_cpu_block_bytes))
            .saturating_add(cpu_expert_blocks.saturating_mul(self.per_cpu_expert_block_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement(gpu_blocks: u32, experts_on_cpu: u32) -> MemoryEstimate {
        MemoryEstimate {
            gpu_blocks,
            gpu_blocks_experts_on_cpu: experts_on_cpu,
            ..MemoryEstimate::default()
        }
    }

    #[test]
    fn the_default_is_one_gib_whatever_the_placement() {
        for mem in [placement(0, 0), placement(48, 0), placement(48, 30)] {
            assert_eq!(GpuReserve::DEFAULT.bytes(48, &mem), GIB);
        }
        assert_eq!(GpuReserve::for_backend(Backend::Hip), GpuReserve::DEFAULT);
        assert_eq!(
            GpuReserve::for_backend(Backend::Vulkan),
            GpuReserve::DEFAULT
        );
    }

    #[test]
    fn cuda_keeps_more_for_each_block_left_on_the_cpu() {
        let r = GpuReserve::for_backend(Backend::Cuda);
        let all = r.bytes(48, &placement(48, 0));
        let layer_split = r.bytes(48, &placement(20, 0));
        let expert_offload = r.bytes(48, &placement(48, 30));
        assert_eq!(all, r.base_bytes);
        assert_eq!(layer_split - all, 28 * r.per_cpu_block_bytes);
        assert_eq!(expert_offload - all, 30 * r.per_cpu_expert_block_bytes);
        // The measured span: 0.70 GiB with everything on the GPU, 0.83 at -ngl 0.
        let none = r.bytes(48, &placement(0, 0)) as f64 / GIB as f64;
        assert!((0.82..0.86).contains(&none), "{none}");
    }

    #[test]
    fn a_flat_reserve_ignores_the_placement_and_never_overflows() {
        let r = GpuReserve::flat(123);
        assert_eq!(r.bytes(48, &placement(0, 0)), 123);
        let huge = GpuReserve {
            per_cpu_block_bytes: u64::MAX,
            ..GpuReserve::CUDA
        };
        assert_eq!(huge.bytes(48, &placement(0, 0)), u64::MAX);
    }
}
