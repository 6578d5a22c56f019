//! `strix-run plan --model MODEL [hardware flags] [--ctx N] [--json]`.

use super::args::{EmitArg, ModelChoice, Planning, PlanningArgs};
use super::format::{bytes, print_json};
use super::output::outln;
use anyhow::bail;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use strix_run::hardware::{Backend, Hardware};
use strix_run::model::ModelMeta;
use strix_run::planner::emit::{args as emit_args, EmitTarget};
use strix_run::planner::{DeviceBytes, Plan, Planner};

/// Arguments of `plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The model: a .gguf file (any shard of a split model), an alias (8b, 30b, 235b,
    /// 397b, a preset name) or part of a model's name. A known model that is not on
    /// this machine is planned from its real shape (a what-if plan).
    #[arg(long, short = 'm')]
    pub model: String,
    #[command(flatten)]
    pub planning: PlanningArgs,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the equivalent llama.cpp arguments instead of the plan.
    #[arg(long, value_enum)]
    pub emit: Option<EmitArg>,
    /// Which planner: strix-run's, or llama.cpp's own `fit_params` run on the same model
    /// for a side-by-side comparison (needs the `runtime` feature; llama.cpp sees this
    /// machine's devices, not a described one).
    #[arg(long, value_enum, default_value_t = PlannerChoice::Strix)]
    pub planner: PlannerChoice,
}

/// The planner to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlannerChoice {
    /// strix-run's planner.
    Strix,
    /// llama.cpp's `common_fit_params`, next to strix-run's plan.
    LlamaFit,
}

/// Runs `plan`.
pub fn run(args: &PlanArgs) -> anyhow::Result<()> {
    args.planning.plan.refuse_auto_parallel()?;
    let planning = args.planning.resolve()?;
    let (model, on_this_machine) = match planning.find_model(&args.model, false)? {
        ModelChoice::Here(found) => (found.meta, true),
        ModelChoice::ShapeOnly {
            alias,
            preset,
            meta,
            searched,
        } => {
            eprintln!(
                "'{alias}' is not on this machine ({} places searched; `strix-run models` lists them): \
                 planning {} from its real shape",
                searched.len(),
                preset.display_name
            );
            (*meta, false)
        }
    };
    if !on_this_machine && (args.emit.is_some() || args.planner == PlannerChoice::LlamaFit) {
        bail!(
            "'{}' is not on this machine: `--emit` and `--planner llama-fit` need the file; \
             download it (or point --models-dir at it)",
            args.model
        );
    }
    let Planning {
        hw,
        request,
        speed_source: source,
        ..
    } = planning;
    let started = std::time::Instant::now();
    let planned = Planner::plan(&model, &hw, &request);
    let planned_in = started.elapsed();
    if args.planner == PlannerChoice::LlamaFit {
        return llama_fit::compare(&model, &planned, planned_in, args.json);
    }
    let plan = planned?;
    if let Some(target) = args.emit {
        let target = EmitTarget::from(target);
        let program = match target {
            EmitTarget::LlamaServer => "llama-server",
            EmitTarget::LlamaBench => "llama-bench",
        };
        outln!(
            "{program} -m {} {}",
            model.path.display(),
            emit_args(&plan, target).join(" ")
        );
        return Ok(());
    }
    if args.json {
        return print_json(&plan);
    }
    print_plan(&model, &hw, &plan)?;
    outln!("{source}");
    Ok(())
}

fn gb(b: u64) -> String {
    bytes(b)
}

fn device_row(t: &mut Table, name: &str, d: &DeviceBytes, budget: u64) {
    let pct = if budget > 0 {
        format!("{:.0}%", d.total() as f64 * 100.0 / budget as f64)
    } else {
        "-".into()
    };
    t.add_row(vec![
        Cell::new(name),
        Cell::new(gb(d.weights)).set_alignment(CellAlignment::Right),
        Cell::new(gb(d.context())).set_alignment(CellAlignment::Right),
        Cell::new(gb(d.compute + d.output)).set_alignment(CellAlignment::Right),
        Cell::new(gb(d.total())).set_alignment(CellAlignment::Right),
        Cell::new(gb(budget)).set_alignment(CellAlignment::Right),
        Cell::new(pct).set_alignment(CellAlignment::Right),
    ]);
}

/// One screen: placement, memory vs budgets, speed, binding constraint, rejected
/// alternatives, warnings, advice.
pub fn print_plan(model: &ModelMeta, hw: &Hardware, plan: &Plan) -> anyhow::Result<()> {
    let name = model
        .name
        .clone()
        .unwrap_or_else(|| model.path.display().to_string());
    outln!(
        "{name} ({}, {}) on {} · {} cores · {} RAM{}",
        model.arch,
        model.file_type_name.as_deref().unwrap_or("?"),
        hw.gpus
            .first()
            .map_or("CPU only".to_string(), |g| g.name.clone()),
        hw.cpu.physical_cores,
        bytes(hw.ram_total_bytes),
        hw.carveout_bytes
            .map(|c| format!(" ({} carveout)", bytes(c)))
            .unwrap_or_default()
    );
    let experts = if plan.n_cpu_moe > 0 {
        format!(
            ", routed experts of blocks 0-{} on the CPU",
            plan.n_cpu_moe - 1
        )
    } else {
        String::new()
    };
    outln!(
        "plan: {} backend, {}/{} layers on the GPU{experts}",
        plan.backend,
        plan.n_gpu_layers,
        plan.n_layer_offloadable
    );
    outln!(
        "      {} threads ({} for prompts), ctx {}, batch {}/{}, KV {}/{}, flash attention {}, {}",
        plan.n_threads,
        plan.n_threads_batch,
        plan.ctx_label(),
        plan.n_batch,
        plan.n_ubatch,
        plan.type_k,
        plan.type_v,
        if plan.flash_attn { "on" } else { "off" },
        if plan.use_mmap {
            "mmap"
        } else {
            "no mmap (read into buffers)"
        }
    );
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "memory", "weights", "KV/state", "compute", "total", "budget", "use",
    ]);
    let b = &plan.memory.breakdown;
    if plan.backend != Backend::Cpu {
        device_row(&mut t, "GPU", &b.gpu, plan.memory.gpu_budget_bytes);
    }
    device_row(&mut t, "host", &b.host, plan.memory.host_budget_bytes);
    if let Some(shared) = plan.memory.shared_budget_bytes {
        let both = plan.memory.gpu_bytes + plan.memory.host_bytes;
        t.add_row(vec![
            Cell::new("unified total"),
            Cell::new(""),
            Cell::new(""),
            Cell::new(""),
            Cell::new(gb(both)).set_alignment(CellAlignment::Right),
            Cell::new(gb(shared)).set_alignment(CellAlignment::Right),
            Cell::new(format!(
                "{:.0}%",
                both as f64 * 100.0 / shared.max(1) as f64
            ))
            .set_alignment(CellAlignment::Right),
        ]);
    }
    outln!("{t}");
    let p = &plan.predicted;
    outln!(
        "predicted: generation {:.1} tok/s ({:.1}-{:.1}), prompt {:.0} tok/s ({:.0}-{:.0}) [{}]",
        p.tg_tok_s,
        p.tg_range.0,
        p.tg_range.1,
        p.pp_tok_s,
        p.pp_range.0,
        p.pp_range.1,
        match (p.calibrated, plan.backend) {
            (true, _) => "calibrated on this machine",
            (false, Backend::Cuda) => {
                "default constants, fitted to the seed's Strix Halo and an H200 sweep (CUDA)"
            }
            (false, _) => "default constants, fitted to the seed's Strix Halo",
        }
    );
    if plan.n_seq > 1 {
        let c = &p.concurrent;
        outln!(
            "predicted with all {} sequences generating: {:.1} tok/s together, {:.1} tok/s each (batched-decode model)",
            c.slots,
            c.aggregate_tg_tok_s,
            c.per_stream_tg_tok_s
        );
    }
    outln!("binding constraint: {}", plan.binding_constraint);
    for r in &plan.rejected {
        outln!("rejected: {}: {}", r.option, r.reason);
    }
    for w in &plan.warnings {
        outln!("warning: {w}");
    }
    for a in &plan.advice {
        outln!("advice: {a}");
    }
    Ok(())
}

/// `--planner llama-fit`: llama.cpp's own fitting on the same file, next to our plan.
#[cfg(feature = "runtime")]
mod llama_fit {
    use super::print_json;
    use crate::cli::output::outln;
    use std::time::{Duration, Instant};
    use strix_run::model::ModelMeta;
    use strix_run::planner::{Plan, PlanError};
    use strix_run::runtime::oracle::{llama_fit, FitOptions, LlamaMemoryRequest};

    pub fn compare(
        model: &ModelMeta,
        planned: &Result<Plan, PlanError>,
        planned_in: Duration,
        json: bool,
    ) -> anyhow::Result<()> {
        let req = LlamaMemoryRequest {
            n_ctx: planned.as_ref().map_or(4096, |p| p.n_ctx),
            ..LlamaMemoryRequest::default()
        };
        let started = Instant::now();
        let fit = llama_fit(&model.path, &req, &FitOptions::default())?;
        let fit_in = started.elapsed();
        let plan = match planned {
            Ok(plan) => plan,
            Err(e) => {
                outln!("strix-run: {e} ({:.2} ms)", planned_in.as_secs_f64() * 1e3);
                outln!(
                    "llama.cpp fit_params: {:?}, n_gpu_layers {}, n_ctx {} ({:.1} ms)",
                    fit.status,
                    fit.n_gpu_layers,
                    fit.n_ctx,
                    fit_in.as_secs_f64() * 1e3
                );
                return Ok(());
            }
        };
        if json {
            return print_json(&serde_json::json!({
                "strix_run": {"n_gpu_layers": plan.n_gpu_layers, "n_cpu_moe": plan.n_cpu_moe,
                              "n_ctx": plan.n_ctx, "backend": plan.backend, "seconds": planned_in.as_secs_f64()},
                "llama_fit": {"status": fit.status, "n_gpu_layers": fit.n_gpu_layers, "n_ctx": fit.n_ctx,
                              "overrides": fit.overrides, "seconds": fit_in.as_secs_f64()},
            }));
        }
        outln!("                 strix-run            llama.cpp fit_params");
        outln!(
            "backend          {:<20} (devices of this machine)",
            plan.backend.to_string()
        );
        outln!(
            "n_gpu_layers     {:<20} {}",
            format!("{}/{}", plan.n_gpu_layers, plan.n_layer_offloadable),
            fit.n_gpu_layers
        );
        outln!(
            "experts on CPU   {:<20} {} override(s)",
            format!("{} blocks", plan.n_cpu_moe),
            fit.overrides.len()
        );
        outln!("n_ctx            {:<20} {}", plan.n_ctx, fit.n_ctx);
        outln!("status           {:<20} {:?}", "fits", fit.status);
        outln!(
            "time             {:<20} {:.1} ms",
            format!("{:.2} ms", planned_in.as_secs_f64() * 1e3),
            fit_in.as_secs_f64() * 1e3
        );
        Ok(())
    }
}

#[cfg(not(feature = "runtime"))]
mod llama_fit {
    use std::time::Duration;
    use strix_run::model::ModelMeta;
    use strix_run::planner::{Plan, PlanError};

    pub fn compare(
        _: &ModelMeta,
        _: &Result<Plan, PlanError>,
        _: Duration,
        _: bool,
    ) -> anyhow::Result<()> {
        anyhow::bail!("--planner llama-fit needs llama.cpp: this strix-run was built without the `runtime` feature")
    }
}
