//! Warnings and advice: what the user should watch for, and what would make the
//! model run faster on this machine (BIOS carveout, `ttm.pages_limit`, kernel,
//! backend to build). The facts and their public sources (the seed article and
//! repository among them): `docs/facts.md`, 'Memory pools', 'Backends' and 'Measured
//! speeds of the seed'.

use super::candidate::{check, Candidate};
use super::memory::{estimate, Placement};
use super::{KvType, Request};
use crate::hardware::{
    AllocationPool, Backend, GpuVendor, Hardware, KernelVersion, Os, RuntimeFlavor,
};
use crate::model::ModelMeta;

const GIB: u64 = 1 << 30;

/// Kernel that fixes the KFD limits behind ROCm 7.2's SVM resident-memory errors
/// (AMD rocm-docs rdna3-5 page, claim; `docs/facts.md`, 'Backends').
const KFD_FIXED_KERNEL: KernelVersion = KernelVersion {
    major: 6,
    minor: 18,
    patch: 4,
};

fn strix_like(hw: &Hardware) -> bool {
    hw.gpus
        .iter()
        .any(|g| g.integrated && g.vendor == GpuVendor::Amd)
}

pub(super) fn warnings(
    model: &ModelMeta,
    hw: &Hardware,
    req: &Request,
    c: &Candidate,
    threads: u32,
) -> Vec<String> {
    let mut w = Vec::new();
    if threads > hw.cpu.physical_cores {
        w.push(format!(
            "{threads} threads on {} physical cores: CPU work on SMT siblings is catastrophic on Strix Halo \
             (seed: 24 threads on 16 cores ran 2.8 tok/s against 9.8 at 12)",
            hw.cpu.physical_cores
        ));
    }
    if model.n_ctx_train > 0 && u64::from(c.ctx.n_ctx) > model.n_ctx_train {
        w.push(format!(
            "context {} is beyond the {} tokens the model was trained on: quality will degrade",
            c.ctx.n_ctx, model.n_ctx_train
        ));
    }
    if c.ctx.type_k != KvType::F16 || c.ctx.type_v != KvType::F16 {
        w.push(format!(
            "KV cache quantised to {}/{} to fit more on the GPU: a small quality cost",
            c.ctx.type_k, c.ctx.type_v
        ));
    }
    if c.backend == Backend::Hip && strix_like(hw) {
        w.push(
            "HIP on gfx1151: llama.cpp #25992 reported corrupted output on the integrated host-buffer path; \
             compare a few answers with the Vulkan or CPU backend"
                .into(),
        );
    }
    let gpu_use = c.mem.gpu.total() as f64 / c.pools.gpu_budget_bytes.max(1) as f64;
    if c.backend.is_gpu() && gpu_use > 0.97 {
        w.push(format!(
            "the GPU side uses {:.0}% of its budget: other programs allocating GPU memory may make the load fail",
            gpu_use * 100.0
        ));
    }
    if req.pinned.use_mmap == Some(true) && !c.use_mmap {
        w.push("mmap was pinned on but is off".into());
    }
    w
}

/// Bytes the whole model needs on the GPU with this candidate's context.
fn full_offload(model: &ModelMeta, c: &Candidate) -> (u64, u64, bool) {
    let full = Placement {
        n_gpu_layers: model.n_layer_offloadable,
        n_cpu_moe: 0,
    };
    let mem = estimate(model, full, &c.ctx, c.gpu_use);
    let fits = check(&mem, &c.pools, c.reserve.bytes(model.n_block, &mem)).is_ok();
    (mem.gpu.total(), mem.host.total(), fits)
}

pub(super) fn advice(
    model: &ModelMeta,
    hw: &Hardware,
    req: &Request,
    c: &Candidate,
    memory_bound: bool,
) -> Vec<String> {
    let mut a = Vec::new();
    let partial = c.backend != Backend::Cpu
        && (c.placement.n_gpu_layers < model.n_layer_offloadable || c.placement.n_cpu_moe > 0);
    let carveout = hw.carveout_bytes.unwrap_or(0);
    let linux_amd_igpu = hw.os == Os::Linux && strix_like(hw);
    // Memory advice is for plans that memory kept partial: when the whole model fits
    // the GPU as the machine is set up now, a partial plan was chosen for speed or
    // pinned, and raising a limit would change nothing.
    let (gpu_need, host_need, full_fits) = full_offload(model, c);
    let memory_limited = partial && !full_fits;

    // Linux: the GTT (default ~50% of RAM) limits the iGPU; raising ttm.pages_limit
    // let the seed's 397B run 61/61 layers on Vulkan at 17-19 tok/s (seed README;
    // `docs/facts.md`, 'GTT and ttm.pages_limit').
    if linux_amd_igpu
        && memory_limited
        && matches!(
            c.pools.rules.pool,
            AllocationPool::GttAndVram | AllocationPool::Gtt
        )
    {
        let gtt_need = gpu_need
            .saturating_add(c.reserve.bytes(model.n_block, &c.mem))
            .saturating_sub(if c.pools.rules.pool == AllocationPool::GttAndVram {
                carveout
            } else {
                0
            });
        let gtt_need = gtt_need.div_ceil(GIB).saturating_mul(GIB);
        let physical = hw.ram_total_bytes.saturating_sub(c.pools.os_reserve_bytes);
        if gpu_need.saturating_add(host_need) <= physical {
            let t = Hardware::ttm_advice(gtt_need);
            a.push(format!(
                "all {} layers fit in RAM but not in the GPU's GTT window ({:.1} GiB): boot with {} \
                 (or run `sudo {}` and reboot) to raise it to {:.0} GiB",
                model.n_layer_offloadable,
                hw.effective_gtt_bytes() as f64 / GIB as f64,
                t.kernel_parameter,
                t.amd_ttm_command,
                gtt_need as f64 / GIB as f64
            ));
        } else {
            a.push(format!(
                "the whole model needs {:.1} GiB but the machine has {:.1} GiB after the OS reserve: \
                 a smaller quantisation would run entirely on the GPU",
                (gpu_need + host_need) as f64 / GIB as f64,
                physical as f64 / GIB as f64
            ));
        }
    }
    // Linux iGPU: a carveout only takes RAM from the OS; Vulkan/ROCm use GTT.
    if linux_amd_igpu && carveout > 4 * GIB {
        a.push(format!(
            "the BIOS carveout ({:.0} GiB) is reserved from RAM; on Linux the GPU allocates from GTT, so a \
             small carveout (512 MiB) plus a large ttm.pages_limit gives the GPU and the OS more room",
            carveout as f64 / GIB as f64
        ));
    }
    if linux_amd_igpu && !hw.backends.iter().any(|r| r.backend == Backend::Vulkan) {
        a.push(
            "build with `--features vulkan`: on Linux, Vulkan (Mesa RADV) generates fastest on Strix Halo \
             (235B UD-Q3_K_XL: 17.2 tok/s Vulkan vs 14.6 ROCm, kyuz0/amd-strix-halo-toolboxes)"
                .into(),
        );
    }
    if c.backend == Backend::Hip && c.pools.rules.resident_limit {
        if let Some(k) = hw.kernel {
            if k < KFD_FIXED_KERNEL {
                a.push(format!(
                    "kernel {}.{}.{} limits ROCm's resident memory (GPU buffer + host copy must both fit); \
                     kernel >= 6.18.4 lifts it (AMD rocm-docs, claim)",
                    k.major, k.minor, k.patch
                ));
            }
        }
    }
    if hw.os == Os::Windows && strix_like(hw) {
        let hip = hw.runtime(Backend::Hip);
        let ollama = hip.is_some_and(|r| r.flavor == RuntimeFlavor::Ollama);
        if c.backend == Backend::Hip && !ollama {
            if memory_limited {
                a.push(
                    "the Windows HIP SDK caps all hipMalloc allocations at ~60 GB in total (seed, measured): \
                     Linux with Vulkan and a raised ttm.pages_limit ran the 397B on all 61 layers at 17-19 tok/s"
                        .into(),
                );
            }
            if carveout > 4 * GIB {
                a.push(format!(
                    "the HIP SDK allocates from system RAM, not the {:.0} GiB BIOS carveout: set the UMA frame \
                     buffer to its minimum (2 GB) to give hipMalloc that RAM (seed article, 'BIOS Discovery')",
                    carveout as f64 / GIB as f64
                ));
            }
        }
        if ollama && memory_limited {
            a.push(
                "Ollama's ROCm allocates only from the BIOS carveout: a 96 GB carveout gave the seed 66/95 layers \
                 of the 235B at 10.4 tok/s"
                    .into(),
            );
        }
    }
    if req.pinned.n_gpu_layers.is_some() && !memory_bound && partial {
        a.push("more GPU layers would fit: try without --ngl".into());
    }
    a
}

pub(super) fn does_not_fit(req: &Request) -> String {
    let mut tips = vec!["use a smaller quantisation of the model".to_string()];
    if req.n_ctx.is_some_and(|c| c > 4096) {
        tips.push("ask for a smaller --ctx".into());
    }
    if req.pinned.type_k.is_none() {
        tips.push("try --cache-type-k q8_0".into());
    }
    if req.pinned.n_gpu_layers.is_some() || req.pinned.n_cpu_moe.is_some() {
        tips.push("drop the pinned --ngl / --n-cpu-moe".into());
    }
    format!("Options: {}", tips.join("; "))
}
