//! The search: every usable backend, KV type and physical batch; for each, every
//! n_gpu_layers with the fewest CPU-side experts that fit; the fastest predicted
//! candidate wins.

use super::advice;
use super::candidate::{check, Candidate, Violation, DEFAULT_UBATCH};
use super::memory::{estimate, ContextShape, GpuUse, Placement};
use super::reserve::GpuReserve;
use super::speed::{predict, GpuLink, SpeedConstants, SpeedInputs};
use super::{KvType, MemoryReport, Objective, Plan, PlanError, Rejected, Request};
use crate::hardware::{Backend, Hardware, MemoryPools, MmapRule, PoolConfig};
use crate::model::ModelMeta;

/// Default context when the user asks for none: the seed's production config ran
/// num_ctx 2048-4096 (seed article, "The Optimization Sweep").
const DEFAULT_CTX: u32 = 4096;
/// llama.cpp's default logical batch (`common_params::n_batch`).
const DEFAULT_BATCH: u32 = 2048;
/// The most parallel sequences a llama.cpp context takes (`LLAMA_MAX_SEQ` in
/// src/llama-cparams.h; `llama_context` throws above it).
const LLAMA_MAX_SEQ: u32 = 256;

struct Settings {
    /// The context llama.cpp will make ([`super::memory::effective_n_ctx`]).
    n_ctx: u32,
    /// The context asked for (pinned or the default).
    n_ctx_requested: u32,
    n_seq: u32,
    threads: u32,
    threads_batch: u32,
    constants: SpeedConstants,
    calibrated: bool,
}

fn validate_pins(model: &ModelMeta, hw: &Hardware, req: &Request) -> Result<(), PlanError> {
    let p = &req.pinned;
    let invalid = |flag: &'static str, value: String, reason: String| {
        Err(PlanError::InvalidPin {
            flag,
            value,
            reason,
        })
    };
    if let Some(g) = p.n_gpu_layers {
        if g > model.n_layer_offloadable {
            return invalid(
                "ngl",
                g.to_string(),
                format!(
                    "the model has {} offloadable layers ({} blocks + output)",
                    model.n_layer_offloadable, model.n_block
                ),
            );
        }
    }
    if let Some(n) = p.n_cpu_moe {
        if !model.is_moe() && n > 0 {
            return invalid(
                "n-cpu-moe",
                n.to_string(),
                "the model has no routed experts".into(),
            );
        }
        if n > model.n_block {
            return invalid(
                "n-cpu-moe",
                n.to_string(),
                format!("the model has {} blocks", model.n_block),
            );
        }
    }
    for (flag, t) in [("threads", p.threads), ("threads-batch", p.threads_batch)] {
        if let Some(t) = t {
            if t == 0 || t > hw.cpu.logical_threads {
                return invalid(
                    flag,
                    t.to_string(),
                    format!("this CPU has {} hardware threads", hw.cpu.logical_threads),
                );
            }
        }
    }
    if let (Some(b), Some(u)) = (p.n_batch, p.n_ubatch) {
        if u > b {
            return invalid(
                "ubatch",
                u.to_string(),
                format!("the physical batch cannot exceed the logical batch ({b})"),
            );
        }
    }
    for (flag, v) in [("batch", p.n_batch), ("ubatch", p.n_ubatch)] {
        if v == Some(0) {
            return invalid(flag, "0".into(), "must be at least 1".into());
        }
    }
    let quantized_v = p.type_v.is_some_and(|t| t != KvType::F16);
    if quantized_v && p.flash_attn == Some(false) {
        return invalid(
            "cache-type-v",
            p.type_v.map(|t| t.to_string()).unwrap_or_default(),
            "llama.cpp needs flash attention for a quantised V cache; drop --flash-attn off".into(),
        );
    }
    if let Some(c) = req.n_ctx {
        if c == 0 {
            return invalid("ctx", "0".into(), "must be at least 1".into());
        }
    }
    if let Some(n) = req.n_seq {
        if n == 0 || n > LLAMA_MAX_SEQ {
            return invalid(
                "parallel",
                n.to_string(),
                format!("llama.cpp runs 1 to {LLAMA_MAX_SEQ} sequences (LLAMA_MAX_SEQ)"),
            );
        }
    }
    Ok(())
}

fn settings(model: &ModelMeta, hw: &Hardware, req: &Request) -> Settings {
    let train = if model.n_ctx_train > 0 {
        model.n_ctx_train.min(u64::from(u32::MAX)) as u32
    } else {
        DEFAULT_CTX
    };
    // Never above physical cores: the seed measured 24 threads on 16 cores at
    // 2.8 tok/s against 9.8 at 12 (seed article, "The Optimization Sweep").
    let physical = hw.cpu.physical_cores.max(1);
    let (constants, calibrated) = req.speed.unwrap_or((SpeedConstants::SEED_FIT, false));
    let n_ctx_requested = req.n_ctx.unwrap_or(DEFAULT_CTX.min(train));
    let n_seq = req.n_seq.unwrap_or(1).max(1);
    Settings {
        n_ctx: super::memory::effective_n_ctx(n_ctx_requested, n_seq),
        n_ctx_requested,
        n_seq,
        threads: req.pinned.threads.unwrap_or(physical),
        threads_batch: req
            .pinned
            .threads_batch
            .or(req.pinned.threads)
            .unwrap_or(physical),
        constants,
        calibrated,
    }
}

fn candidate_backends(hw: &Hardware, req: &Request) -> Vec<Backend> {
    if let Some(b) = req.pinned.backend {
        return vec![b];
    }
    let mut list: Vec<Backend> = hw.backends.iter().map(|r| r.backend).collect();
    if !list.contains(&Backend::Cpu) {
        list.push(Backend::Cpu);
    }
    list
}

/// Load mode: mmap unless the rules say otherwise or the GPU shares RAM.
fn default_mmap(model: &ModelMeta, hw: &Hardware, backend: Backend, pools: &MemoryPools) -> bool {
    if let MmapRule::AvoidAbove(limit) = pools.rules.mmap {
        if model.file_bytes > limit {
            // ROCm pins every pageable page: loading with mmap is very slow past
            // ~64 GB (llama.cpp #15018, via the rules table).
            return false;
        }
    }
    // On an iGPU mmap'ed weights would exist twice (page cache + GPU buffer) in the
    // same RAM; Strix Halo users run --no-mmap / -mmp 0 (`docs/facts.md`, "Loading:
    // mmap and --fit"; kyuz0's toolboxes benchmark with -mmp 0).
    !(backend.is_gpu() && hw.gpu_for(backend).is_some_and(|g| g.integrated))
}

fn ubatch_options(req: &Request) -> Vec<u32> {
    if let Some(u) = req.pinned.n_ubatch {
        return vec![u];
    }
    match req.objective {
        Objective::Generate => vec![DEFAULT_UBATCH, 256, 128],
        Objective::Prompt => vec![DEFAULT_UBATCH, 1024, 2048, 256, 128],
    }
}

fn kv_options(req: &Request) -> Vec<(KvType, KvType, bool)> {
    let p = &req.pinned;
    let mut out = Vec::new();
    let ks: Vec<KvType> = p
        .type_k
        .map_or(vec![KvType::F16, KvType::Q8_0, KvType::Q4_0], |t| vec![t]);
    for k in ks {
        let v = p.type_v.unwrap_or(k);
        // Flash attention: the seed measured no speed difference; it removes the KQ
        // matrix from the compute buffer and is required for a quantised V cache.
        let fa = p.flash_attn.unwrap_or(true);
        if v != KvType::F16 && !fa {
            continue;
        }
        if !out.contains(&(k, v, fa)) {
            out.push((k, v, fa));
        }
    }
    out
}

/// What stays fixed while the placements of one backend are searched.
struct BackendSearch<'a> {
    model: &'a ModelMeta,
    req: &'a Request,
    backend: Backend,
    pools: &'a MemoryPools,
    settings: &'a Settings,
    use_mmap: bool,
    gpu_use: GpuUse,
    reserve: GpuReserve,
}

/// The fastest feasible placement for one backend and context shape, plus the
/// closest miss when nothing fits.
fn best_placement(
    b: &BackendSearch<'_>,
    ctx: ContextShape,
    inputs: &SpeedInputs,
) -> Result<Candidate, Violation> {
    let BackendSearch {
        model,
        req,
        backend,
        pools,
        settings: s,
        use_mmap,
        gpu_use,
        reserve,
    } = *b;
    let gpu = backend.is_gpu();
    let n_block = model.n_block;
    let max_ngl = if gpu { n_block + 1 } else { 0 };
    let ngls: Vec<u32> = match req.pinned.n_gpu_layers {
        Some(g) => vec![g],
        None => (0..=max_ngl).rev().collect(),
    };
    let mut best: Option<Candidate> = None;
    let mut closest_miss: Option<Violation> = None;
    for g in ngls {
        let first_gpu = (n_block + 1).saturating_sub(g);
        let ncmoes: Vec<u32> = match req.pinned.n_cpu_moe {
            Some(n) => vec![n],
            None if model.is_moe() && g > 1 => {
                std::iter::once(0).chain(first_gpu + 1..=n_block).collect()
            }
            None => vec![0],
        };
        let mut fitted = false;
        let mut violation = None;
        for n in ncmoes {
            let placement = Placement {
                n_gpu_layers: g,
                n_cpu_moe: n,
            };
            let mem = estimate(model, placement, &ctx, gpu_use);
            match check(&mem, pools, reserve.bytes(n_block, &mem)) {
                Ok(()) => {
                    let prediction = predict(model, &mem, n, inputs, &s.constants, s.calibrated);
                    let cand = Candidate {
                        backend,
                        placement,
                        ctx,
                        mem,
                        prediction,
                        use_mmap,
                        gpu_use,
                        pools: pools.clone(),
                        reserve,
                    };
                    let better = best.as_ref().is_none_or(|b| {
                        cand.speed(req.objective) > b.speed(req.objective) * 1.0001
                    });
                    if better {
                        best = Some(cand);
                    }
                    fitted = true;
                    break;
                }
                Err(v @ Violation::Gpu { .. }) => violation = Some(v),
                Err(v) => {
                    // More experts on the CPU only make the host side worse.
                    violation = Some(v);
                    break;
                }
            }
        }
        if !fitted && closest_miss.is_none() {
            closest_miss = violation;
        }
    }
    match best {
        Some(c) => Ok(c),
        None => Err(closest_miss.unwrap_or(Violation::Host { need: 0, have: 0 })),
    }
}

pub(super) fn plan(model: &ModelMeta, hw: &Hardware, req: &Request) -> Result<Plan, PlanError> {
    validate_pins(model, hw, req)?;
    let s = settings(model, hw, req);
    let pool_config = PoolConfig {
        os_reserve_bytes: req
            .os_reserve_bytes
            .unwrap_or(crate::hardware::DEFAULT_OS_RESERVE),
    };
    let mut rejected = Vec::new();
    let mut best: Option<Candidate> = None;
    let mut misses: Vec<(Backend, String)> = Vec::new();
    for backend in candidate_backends(hw, req) {
        if let (Backend::Cpu, Some(g @ 1..)) = (backend, req.pinned.n_gpu_layers) {
            rejected.push(Rejected {
                option: "backend cpu".into(),
                reason: format!("--ngl {g} needs a GPU backend"),
            });
            continue;
        }
        let pools = match hw.memory_pools_with(backend, &pool_config) {
            Ok(p) => p,
            Err(refused) => {
                if req.pinned.backend.is_some() {
                    return Err(PlanError::BackendRefused {
                        backend,
                        reason: refused.reason,
                        advice: refused.advice,
                    });
                }
                rejected.push(Rejected {
                    option: format!("backend {backend}"),
                    reason: format!("{}; {}", refused.reason, refused.advice),
                });
                continue;
            }
        };
        let use_mmap = req
            .pinned
            .use_mmap
            .unwrap_or_else(|| default_mmap(model, hw, backend, &pools));
        let gpu = hw.gpu_for(backend);
        let gpu_use = GpuUse::of(backend, gpu.is_some_and(|g| g.integrated), use_mmap);
        let reserve = req
            .gpu_reserve_bytes
            .map_or_else(|| GpuReserve::for_backend(backend), GpuReserve::flat);
        let gpu_bw = gpu.map_or(0, |g| g.bandwidth_bytes_per_s) as f64;
        let gpu_link = GpuLink::of(gpu.is_none_or(|g| g.integrated));
        let mut best_for_backend: Option<Candidate> = None;
        let mut miss = None;
        for (type_k, type_v, flash_attn) in kv_options(req) {
            for n_ubatch in ubatch_options(req) {
                let n_batch = req.pinned.n_batch.unwrap_or(DEFAULT_BATCH.max(n_ubatch));
                let ctx = ContextShape {
                    n_ctx: s.n_ctx,
                    n_seq: s.n_seq,
                    n_batch,
                    n_ubatch: n_ubatch.min(n_batch),
                    type_k,
                    type_v,
                    flash_attn,
                };
                let inputs = SpeedInputs {
                    backend,
                    os: hw.os,
                    gpu_bandwidth: gpu_bw,
                    gpu_link,
                    cpu_bandwidth: hw.cpu_bandwidth_bytes_per_s as f64,
                    physical_cores: hw.cpu.physical_cores,
                    threads: s.threads,
                    threads_batch: s.threads_batch,
                    n_ubatch: ctx.n_ubatch,
                    n_seq: s.n_seq,
                };
                let search = BackendSearch {
                    model,
                    req,
                    backend,
                    pools: &pools,
                    settings: &s,
                    use_mmap,
                    gpu_use,
                    reserve,
                };
                match best_placement(&search, ctx, &inputs) {
                    Ok(c) => {
                        let better = best_for_backend.as_ref().is_none_or(|b| {
                            c.score(req.objective) > b.score(req.objective) * 1.0001
                        });
                        if better {
                            best_for_backend = Some(c);
                        }
                    }
                    Err(v) => {
                        if miss.is_none() {
                            miss = Some(v.describe(&pools));
                        }
                    }
                }
            }
        }
        match best_for_backend {
            Some(c) => {
                let replace = best
                    .as_ref()
                    .is_none_or(|b| c.score(req.objective) > b.score(req.objective) * 1.0001);
                if replace {
                    if let Some(old) = best.take() {
                        rejected.push(losing_backend(&old, &c, req.objective));
                    }
                    best = Some(c);
                } else if let Some(b) = &best {
                    rejected.push(losing_backend(&c, b, req.objective));
                }
            }
            None => misses.push((backend, miss.unwrap_or_else(|| "nothing fits".into()))),
        }
    }
    let Some(chosen) = best else {
        let reason = misses
            .iter()
            .map(|(b, m)| format!("{b}: {m}"))
            .chain(
                rejected
                    .iter()
                    .map(|r| format!("{}: {}", r.option, r.reason)),
            )
            .collect::<Vec<_>>()
            .join("; ");
        return Err(PlanError::DoesNotFit {
            model: model
                .name
                .clone()
                .unwrap_or_else(|| model.path.display().to_string()),
            reason: if reason.is_empty() {
                "no backend is usable".into()
            } else {
                reason
            },
            advice: advice::does_not_fit(req),
        });
    };
    for (b, m) in misses {
        rejected.push(Rejected {
            option: format!("backend {b}"),
            reason: m,
        });
    }
    Ok(finish(model, hw, req, &s, chosen, rejected))
}

fn losing_backend(loser: &Candidate, winner: &Candidate, objective: Objective) -> Rejected {
    let (lost, won) = (loser.speed(objective), winner.speed(objective));
    // The search keeps the first backend unless another scores better by more than
    // 0.01%: say so when that is why this one lost.
    let tie = loser.score(objective) <= winner.score(objective) * 1.0001
        && winner.score(objective) <= loser.score(objective) * 1.0001;
    Rejected {
        option: format!(
            "backend {} ({} layers on GPU)",
            loser.backend, loser.placement.n_gpu_layers
        ),
        reason: if tie {
            format!(
                "predicted the same {lost:.1} tok/s; a tie goes to the backend listed first for this machine ({})",
                winner.backend
            )
        } else {
            format!("predicted {lost:.1} tok/s against {won:.1}")
        },
    }
}

fn finish(
    model: &ModelMeta,
    hw: &Hardware,
    req: &Request,
    s: &Settings,
    c: Candidate,
    mut rejected: Vec<Rejected>,
) -> Plan {
    let gpu_total = c.mem.gpu.total();
    let all_on_gpu =
        c.placement.n_gpu_layers == model.n_layer_offloadable && c.placement.n_cpu_moe == 0;
    // What one more step towards the GPU would break: one more layer, or (for MoE)
    // one block fewer with its experts on the CPU.
    let next = if c.placement.n_cpu_moe > 0 && c.placement.n_gpu_layers == model.n_layer_offloadable
    {
        Placement {
            n_cpu_moe: c.placement.n_cpu_moe - 1,
            ..c.placement
        }
    } else {
        Placement {
            n_gpu_layers: c.placement.n_gpu_layers + 1,
            ..c.placement
        }
    };
    let blocked = (c.backend != Backend::Cpu && !all_on_gpu)
        .then(|| {
            let mem = estimate(model, next, &c.ctx, c.gpu_use);
            check(&mem, &c.pools, c.reserve.bytes(model.n_block, &mem)).err()
        })
        .flatten();
    let binding = if c.backend == Backend::Cpu {
        "no GPU backend in use".to_string()
    } else if all_on_gpu {
        "none: the whole model is on the GPU".to_string()
    } else if let Some(v) = &blocked {
        v.describe(&c.pools)
    } else if req.pinned.n_gpu_layers.is_some() {
        "pinned: --ngl".to_string()
    } else {
        "speed: more on the GPU was predicted slower".to_string()
    };
    if let Some(v) = &blocked {
        rejected.push(Rejected {
            option: format!(
                "n_gpu_layers {} with --n-cpu-moe {}",
                next.n_gpu_layers, next.n_cpu_moe
            ),
            reason: v.describe(&c.pools),
        });
    }
    let mut warnings = advice::warnings(model, hw, req, &c, s.threads);
    if s.n_ctx != s.n_ctx_requested {
        warnings.insert(
            0,
            format!(
                "context {} becomes {} tokens: llama.cpp pads the context to a multiple of 256 \
                 per sequence, and the plan budgets what it allocates",
                s.n_ctx_requested, s.n_ctx
            ),
        );
    }
    let advice = advice::advice(model, hw, req, &c, blocked.is_some());
    Plan {
        backend: c.backend,
        n_gpu_layers: c.placement.n_gpu_layers,
        n_layer_offloadable: model.n_layer_offloadable,
        n_cpu_moe: c.placement.n_cpu_moe,
        n_threads: s.threads,
        n_threads_batch: s.threads_batch,
        n_batch: c.ctx.n_batch,
        n_ubatch: c.ctx.n_ubatch,
        n_ctx: c.ctx.n_ctx,
        n_ctx_requested: s.n_ctx_requested,
        n_seq: c.ctx.n_seq,
        flash_attn: c.ctx.flash_attn,
        type_k: c.ctx.type_k,
        type_v: c.ctx.type_v,
        use_mmap: c.use_mmap,
        memory: MemoryReport {
            gpu_bytes: gpu_total,
            host_bytes: c.mem.host.total(),
            gpu_budget_bytes: c.pools.gpu_budget_bytes,
            host_budget_bytes: c.pools.host_budget_bytes,
            shared_budget_bytes: c.pools.shared_physical_bytes,
            gpu_reserve_bytes: c.reserve.bytes(model.n_block, &c.mem),
            breakdown: c.mem,
        },
        predicted: c.prediction,
        binding_constraint: binding,
        rejected,
        warnings,
        advice,
    }
}
