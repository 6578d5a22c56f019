//! `strix-run --model MODEL --auto [-p PROMPT] [-n N]`: resolve the model, plan, load
//! exactly the plan, and generate (or chat when no prompt is given).

use super::format::print_json;
use super::machine::machine;
use super::plan::{print_plan, PlanFlags};
use anyhow::bail;
use std::path::PathBuf;
use strix_run::discovery::{resolve, DiscoveryConfig, Resolved};
use strix_run::hardware::HardwareOverrides;
use strix_run::planner::Planner;

/// The run arguments (also accepted at the top level without a subcommand).
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The model: a .gguf path, an alias (8b, 32b, 235b, 397b, gemma3-270m, a preset
    /// name) or a fragment of a model's name.
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    /// Let the planner choose everything not pinned (the default; accepted for clarity).
    #[arg(long)]
    pub auto: bool,
    /// Prompt to complete; without it, an interactive chat starts.
    #[arg(long, short = 'p')]
    pub prompt: Option<String>,
    /// System message for chat.
    #[arg(long)]
    pub system: Option<String>,
    /// Tokens to generate at most.
    #[arg(long = "n-predict", short = 'n', default_value_t = 256)]
    pub n_predict: u32,
    /// Show the plan only; load nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the plan and the run's statistics (and the text) as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also print planned vs actual memory per device and llama.cpp's progress.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// More places to look for models (before $STRIX_MODELS, ~/models and the caches).
    #[arg(long = "models-dir")]
    pub models_dirs: Vec<PathBuf>,
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.8)]
    pub temp: f32,
    /// Top-k (0: off).
    #[arg(long = "top-k", default_value_t = 40)]
    pub top_k: i32,
    /// Top-p (1: off).
    #[arg(long = "top-p", default_value_t = 0.95)]
    pub top_p: f32,
    /// Min-p (0: off).
    #[arg(long = "min-p", default_value_t = 0.05)]
    pub min_p: f32,
    /// Repeat penalty (1: off).
    #[arg(long = "repeat-penalty", default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// Random seed.
    #[arg(long)]
    pub seed: Option<u32>,
    /// Always pick the most likely token.
    #[arg(long)]
    pub greedy: bool,
    #[command(flatten)]
    pub hardware: HardwareOverrides,
    #[command(flatten)]
    pub plan: PlanFlags,
}

/// Runs a model (or shows the plan for a model that is not here).
pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let Some(query) = args.model.as_deref() else {
        bail!("no model given: `strix-run --model MODEL --auto -p \"...\"` (MODEL: a .gguf path, an alias such as 8b or 397b, or part of a name); `strix-run models` lists what is here");
    };
    let discovery = DiscoveryConfig::from_env(args.models_dirs.clone());
    let hw = machine(&args.hardware)?;
    let mut request = args.plan.request(&args.hardware);
    let (speed, source) = super::machine::speed(&hw, args.plan.no_calibration);
    request.speed = Some(speed);
    let path = match resolve(query, &discovery)? {
        Resolved::Local { model, candidates } => {
            if !candidates.is_empty() && !args.json {
                eprintln!(
                    "using {} ({}); also found: {}",
                    model.path.display(),
                    model.source_label,
                    candidates
                        .iter()
                        .map(|c| c.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            model.path.clone()
        }
        Resolved::KnownShapeOnly {
            alias,
            preset,
            searched,
        } => {
            eprintln!("'{alias}' is not on this machine. Looked in:");
            for s in &searched {
                eprintln!(
                    "  {:22} {}{}",
                    s.label,
                    s.path.display(),
                    if s.exists { "" } else { " (missing)" }
                );
            }
            eprintln!(
                "Here is how {} would run here (its real shape, planned without the file):\n",
                preset.display_name
            );
            let meta = strix_run::discovery::whatif::preset_meta(preset)?;
            let plan = Planner::plan(&meta, &hw, &request)?;
            if args.json {
                print_json(
                    &serde_json::json!({"found": false, "alias": alias, "searched": searched, "plan": plan}),
                )?;
            } else {
                print_plan(&meta, &hw, &plan);
                println!("{source}");
            }
            if args.dry_run {
                return Ok(());
            }
            bail!("download the model (or point --models-dir at it) to run it");
        }
    };
    if args.dry_run {
        let meta = strix_run::model::ModelMeta::open(&path)?;
        let plan = Planner::plan(&meta, &hw, &request)?;
        if args.json {
            return print_json(&plan);
        }
        print_plan(&meta, &hw, &plan);
        println!("{source}");
        return Ok(());
    }
    engine::run(args, &path, hw, request)
}

#[cfg(feature = "runtime")]
mod engine {
    use super::*;
    use crate::cli::format::bytes;
    use anyhow::Context;
    use std::io::{BufRead, Write};
    use std::ops::ControlFlow;
    use std::sync::atomic::Ordering;
    use strix_run::hardware::Hardware;
    use strix_run::planner::Request;
    use strix_run::runtime::load::{plan_and_load, plan_summary, LoadOptions, MemoryComparison};
    use strix_run::runtime::session::{
        ChatMessage, GenerateOptions, GenerateStats, SamplingOptions, Session, INTERRUPT,
    };

    /// Ctrl-C stops the generation in progress (prompt evaluation included) through the
    /// runtime's interrupt flag; without a handler it would end the process.
    fn install_ctrl_c() {
        let _ = ctrlc::set_handler(|| INTERRUPT.store(true, Ordering::SeqCst));
    }

    fn options(args: &RunArgs) -> GenerateOptions {
        GenerateOptions {
            max_tokens: args.n_predict,
            sampling: SamplingOptions {
                temperature: args.temp,
                top_k: args.top_k,
                top_p: args.top_p,
                min_p: args.min_p,
                seed: args.seed.unwrap_or(u32::MAX),
                repeat_penalty: args.repeat_penalty,
                greedy: args.greedy || args.temp <= 0.0,
                ..SamplingOptions::default()
            },
            stop: Vec::new(),
        }
    }

    /// Planned against what llama.cpp allocated, per side.
    fn print_memory(rows: &[MemoryComparison]) {
        use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "",
            "weights planned",
            "actual",
            "KV/state planned",
            "actual",
            "compute planned",
            "actual",
        ]);
        let cell = |b: u64| Cell::new(bytes(b)).set_alignment(CellAlignment::Right);
        for r in rows {
            t.add_row(vec![
                Cell::new(r.side),
                cell(r.planned_weights),
                cell(r.actual_weights),
                cell(r.planned_context),
                cell(r.actual_context),
                cell(r.planned_compute),
                cell(r.actual_compute),
            ]);
        }
        eprintln!("{t}");
    }

    fn report(stats: &GenerateStats) {
        eprintln!(
            "\n[prompt {} tokens at {:.1} tok/s · generated {} tokens at {:.1} tok/s · stop: {:?}]",
            stats.prompt_tokens,
            stats.pp_tok_s,
            stats.generated_tokens,
            stats.tg_tok_s,
            stats.stop_reason
        );
    }

    pub fn run(
        args: &RunArgs,
        path: &std::path::Path,
        hw: Hardware,
        request: Request,
    ) -> anyhow::Result<()> {
        let mut opts = LoadOptions::new(request, hw);
        opts.progress = !args.json;
        let loaded =
            plan_and_load(path, &opts).with_context(|| format!("loading {}", path.display()))?;
        if !args.json {
            for a in &loaded.attempts {
                eprintln!(
                    "note: attempt {} failed and was stepped down: {a:?}",
                    a.number
                );
            }
            eprintln!(
                "{} · {} · loaded in {:.1} s",
                loaded.meta.name.as_deref().unwrap_or("model"),
                plan_summary(&loaded.plan),
                loaded.load_seconds
            );
            if args.verbose {
                print_memory(&loaded.memory_comparison());
            }
        }
        install_ctrl_c();
        let mut session = Session::new(loaded);
        let gen = options(args);
        let mut on_token = |piece: &str| {
            if !args.json {
                print!("{piece}");
                let _ = std::io::stdout().flush();
            }
            ControlFlow::Continue(())
        };
        match &args.prompt {
            Some(prompt) => {
                let stats = session.generate(prompt, &gen, &mut on_token)?;
                if args.json {
                    let report = session.loaded().report();
                    return print_json(&serde_json::json!({
                        "plan": report.plan, "load_seconds": report.load_seconds, "attempts": report.attempts,
                        "memory": report.memory, "actual_memory": report.actual, "stats": stats,
                    }));
                }
                println!();
                report(&stats);
            }
            None => {
                let mut messages: Vec<ChatMessage> = Vec::new();
                if let Some(system) = &args.system {
                    messages.push(ChatMessage::new("system", system.clone()));
                }
                eprintln!("chat: type a message, Ctrl-C stops an answer, Ctrl-D ends");
                let stdin = std::io::stdin();
                loop {
                    eprint!("> ");
                    let mut line = String::new();
                    if stdin.lock().read_line(&mut line)? == 0 {
                        break;
                    }
                    let line = line.trim();
                    if line.is_empty() {
                        continue;
                    }
                    messages.push(ChatMessage::new("user", line));
                    let stats = session.chat(&messages, &gen, &mut on_token)?;
                    println!();
                    report(&stats);
                    messages.push(ChatMessage::new("assistant", stats.text.clone()));
                }
            }
        }
        Ok(())
    }
}

#[cfg(not(feature = "runtime"))]
mod engine {
    use super::*;
    use strix_run::hardware::Hardware;
    use strix_run::planner::Request;

    pub fn run(_: &RunArgs, _: &std::path::Path, _: Hardware, _: Request) -> anyhow::Result<()> {
        bail!("this strix-run was built without llama.cpp (--no-default-features): it can plan (--dry-run) but not run models")
    }
}
