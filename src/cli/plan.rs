//! `strix-run plan --model MODEL [hardware flags] [--ctx N] [--json]`.

use super::format::{bytes, print_json};
use anyhow::bail;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use std::path::{Path, PathBuf};
use strix_run::discovery::{resolve, whatif, DiscoveryConfig, Resolved};
use strix_run::hardware::{Backend, Hardware, HardwareOverrides};
use strix_run::model::ModelMeta;
use strix_run::planner::emit::{args as emit_args, EmitTarget};
use strix_run::planner::{DeviceBytes, KvType, Objective, Pinned, Plan, Planner, Request};

/// On or off, for flags that take one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// on
    On,
    /// off
    Off,
}

impl Switch {
    fn on(self) -> bool {
        self == Switch::On
    }
}

/// Planner inputs shared by `plan` and the run commands: the request and the pins.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanFlags {
    /// What to optimise.
    #[arg(long, value_enum, default_value_t = Objective::Generate)]
    pub objective: Objective,
    /// Context length wanted (default 4096, or the model's training context if smaller).
    #[arg(long)]
    pub ctx: Option<u32>,
    /// Parallel sequences.
    #[arg(long)]
    pub parallel: Option<u32>,
    /// Pin n_gpu_layers (counting the output layer, like llama.cpp).
    #[arg(long)]
    pub ngl: Option<u32>,
    /// Pin how many blocks keep their routed experts on the CPU.
    #[arg(long = "n-cpu-moe")]
    pub n_cpu_moe: Option<u32>,
    /// Pin generation threads.
    #[arg(long)]
    pub threads: Option<u32>,
    /// Pin prompt-processing threads.
    #[arg(long = "threads-batch")]
    pub threads_batch: Option<u32>,
    /// Pin the logical batch.
    #[arg(long)]
    pub batch: Option<u32>,
    /// Pin the physical batch.
    #[arg(long)]
    pub ubatch: Option<u32>,
    /// Pin the K cache type (f16, q8_0, q4_0).
    #[arg(long = "cache-type-k")]
    pub cache_type_k: Option<KvType>,
    /// Pin the V cache type (f16, q8_0, q4_0).
    #[arg(long = "cache-type-v")]
    pub cache_type_v: Option<KvType>,
    /// Pin flash attention.
    #[arg(long = "flash-attn", value_enum)]
    pub flash_attn: Option<Switch>,
    /// Pin mmap loading.
    #[arg(long, value_enum)]
    pub mmap: Option<Switch>,
    /// RAM to keep back for the OS and display (default 4GiB).
    #[arg(long = "os-reserve", value_parser = strix_run::hardware::parse_size)]
    pub os_reserve: Option<u64>,
    /// GPU memory to keep free below the GPU budget for the backend's runtime,
    /// whatever the placement (default: 1 GiB; with CUDA 0.70 GiB plus a little per
    /// block left on the CPU, as measured on an H200). Raise it if a load runs out of
    /// GPU memory; lower it to pack the GPU tighter.
    #[arg(long = "gpu-reserve", value_parser = strix_run::hardware::parse_size)]
    pub gpu_reserve: Option<u64>,
    /// Ignore this machine's speed calibration (`strix-run bench` writes it): predict
    /// with the default constants, and record nothing.
    #[arg(long = "no-calibration")]
    pub no_calibration: bool,
}

impl PlanFlags {
    /// The planner request. A single `--backend` pins it; a list only says what exists.
    pub fn request(&self, hw_flags: &HardwareOverrides) -> Request {
        let backend = match hw_flags.backends.as_deref() {
            Some([one]) => Some(*one),
            _ => None,
        };
        Request {
            objective: self.objective,
            n_ctx: self.ctx,
            n_seq: self.parallel,
            pinned: Pinned {
                backend,
                n_gpu_layers: self.ngl,
                n_cpu_moe: self.n_cpu_moe,
                threads: self.threads,
                threads_batch: self.threads_batch,
                n_batch: self.batch,
                n_ubatch: self.ubatch,
                type_k: self.cache_type_k,
                type_v: self.cache_type_v,
                flash_attn: self.flash_attn.map(Switch::on),
                use_mmap: self.mmap.map(Switch::on),
            },
            os_reserve_bytes: self.os_reserve,
            gpu_reserve_bytes: self.gpu_reserve,
            speed: None,
        }
    }
}

/// Arguments of `plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The model: a .gguf file (any shard of a split model), an alias (8b, 30b, 235b,
    /// 397b, a preset name) or part of a model's name. A known model that is not on
    /// this machine is planned from its real shape (a what-if plan).
    #[arg(long, short = 'm')]
    pub model: String,
    /// Also look for models here (repeatable; `STRIX_MODELS` and the usual places are
    /// searched too).
    #[arg(long = "models-dir")]
    pub models_dirs: Vec<PathBuf>,
    #[command(flatten)]
    pub hardware: HardwareOverrides,
    #[command(flatten)]
    pub plan: PlanFlags,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the equivalent llama.cpp arguments instead of the plan.
    #[arg(long, value_enum)]
    pub emit: Option<EmitTarget>,
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
    let (model, on_this_machine) = open_model(args)?;
    if !on_this_machine && (args.emit.is_some() || args.planner == PlannerChoice::LlamaFit) {
        bail!(
            "'{}' is not on this machine: `--emit` and `--planner llama-fit` need the file; \
             download it (or point --models-dir at it)",
            args.model
        );
    }
    let hw = super::machine::machine(&args.hardware)?;
    let (speed, source) = super::machine::speed(&hw, args.plan.no_calibration);
    let mut request = args.plan.request(&args.hardware);
    request.speed = Some(speed);
    let started = std::time::Instant::now();
    let planned = Planner::plan(&model, &hw, &request);
    let planned_in = started.elapsed();
    if args.planner == PlannerChoice::LlamaFit {
        return llama_fit::compare(&model, &planned, planned_in, args.json);
    }
    let plan = planned?;
    if let Some(target) = args.emit {
        let program = match target {
            EmitTarget::LlamaServer => "llama-server",
            EmitTarget::LlamaBench => "llama-bench",
        };
        println!(
            "{program} -m {} {}",
            model.path.display(),
            emit_args(&plan, target).join(" ")
        );
        return Ok(());
    }
    if args.json {
        return print_json(&plan);
    }
    print_plan(&model, &hw, &plan);
    println!("{source}");
    Ok(())
}

/// The model `--model` names, and whether its file is here: an existing path is
/// opened as it is; anything else goes through discovery like `strix-run --model`, and
/// a known model that is not here is summarised from its preset's shape.
fn open_model(args: &PlanArgs) -> anyhow::Result<(ModelMeta, bool)> {
    if Path::new(&args.model).is_file() {
        return Ok((ModelMeta::open(Path::new(&args.model))?, true));
    }
    let discovery = DiscoveryConfig::from_env(args.models_dirs.clone());
    match resolve(&args.model, &discovery)? {
        Resolved::Local { model, candidates } => {
            if !candidates.is_empty() {
                eprintln!(
                    "using {} ({}); {} more match",
                    model.path.display(),
                    model.source_label,
                    candidates.len()
                );
            }
            Ok((ModelMeta::open(&model.path)?, true))
        }
        Resolved::KnownShapeOnly {
            alias,
            preset,
            searched,
        } => {
            eprintln!(
                "'{alias}' is not on this machine ({} places searched; `strix-run models` lists them): \
                 planning {} from its real shape",
                searched.len(),
                preset.display_name
            );
            Ok((whatif::preset_meta(preset)?, false))
        }
    }
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
pub fn print_plan(model: &ModelMeta, hw: &Hardware, plan: &Plan) {
    let name = model
        .name
        .clone()
        .unwrap_or_else(|| model.path.display().to_string());
    println!(
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
    println!(
        "plan: {} backend, {}/{} layers on the GPU{experts}",
        plan.backend, plan.n_gpu_layers, plan.n_layer_offloadable
    );
    println!(
        "      {} threads ({} for prompts), ctx {}, batch {}/{}, KV {}/{}, flash attention {}, {}",
        plan.n_threads,
        plan.n_threads_batch,
        plan.n_ctx,
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
    println!("{t}");
    let p = &plan.predicted;
    println!(
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
    println!("binding constraint: {}", plan.binding_constraint);
    for r in &plan.rejected {
        println!("rejected: {}: {}", r.option, r.reason);
    }
    for w in &plan.warnings {
        println!("warning: {w}");
    }
    for a in &plan.advice {
        println!("advice: {a}");
    }
}

/// `--planner llama-fit`: llama.cpp's own fitting on the same file, next to our plan.
#[cfg(feature = "runtime")]
mod llama_fit {
    use super::print_json;
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
                println!("strix-run: {e} ({:.2} ms)", planned_in.as_secs_f64() * 1e3);
                println!(
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
        println!("                 strix-run            llama.cpp fit_params");
        println!(
            "backend          {:<20} (devices of this machine)",
            plan.backend.to_string()
        );
        println!(
            "n_gpu_layers     {:<20} {}",
            format!("{}/{}", plan.n_gpu_layers, plan.n_layer_offloadable),
            fit.n_gpu_layers
        );
        println!(
            "experts on CPU   {:<20} {} override(s)",
            format!("{} blocks", plan.n_cpu_moe),
            fit.overrides.len()
        );
        println!("n_ctx            {:<20} {}", plan.n_ctx, fit.n_ctx);
        println!("status           {:<20} {:?}", "fits", fit.status);
        println!(
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
