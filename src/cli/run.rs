//! `strix-run --model MODEL --auto [-p PROMPT] [-n N]`: resolve the model, plan, load
//! exactly the plan, and generate (or chat when no prompt is given).

use super::args::{searched_lines, ModelChoice, PlanningArgs};
use super::format::print_json;
use super::output::outln;
use super::plan::print_plan;
use anyhow::bail;
use std::path::PathBuf;
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
    /// Prompt to complete (`-` reads it from standard input); without a prompt, an
    /// interactive chat starts.
    #[arg(long, short = 'p', conflicts_with = "file")]
    pub prompt: Option<String>,
    /// Read the prompt from this file (for prompts longer than a command line holds).
    #[arg(long, short = 'f', value_name = "PATH")]
    pub file: Option<PathBuf>,
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
    pub planning: PlanningArgs,
}

/// Runs a model (or shows the plan for a model that is not here).
pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let Some(query) = args.model.as_deref() else {
        bail!("no model given: `strix-run --model MODEL --auto -p \"...\"` (MODEL: a .gguf path, an alias such as 8b or 397b, or part of a name); `strix-run models` lists what is here");
    };
    engine::check_sampling(args)?;
    // Read before anything is planned or loaded: a missing file fails at once.
    let prompt = if args.dry_run { None } else { prompt(args)? };
    args.planning.plan.refuse_auto_parallel()?;
    let planning = args.planning.resolve()?;
    let source = &planning.speed_source;
    let (hw, request) = (&planning.hw, &planning.request);
    // The header discovery read is the one everything plans from: read once.
    let meta = match planning.find_model(query, args.json)? {
        ModelChoice::Here(found) => found.meta,
        ModelChoice::ShapeOnly {
            alias,
            preset,
            meta,
            searched,
        } => {
            eprintln!("'{alias}' is not on this machine. Looked in:");
            for line in searched_lines(&searched) {
                eprintln!("  {line}");
            }
            eprintln!(
                "Here is how {} would run here (its real shape, planned without the file):\n",
                preset.display_name
            );
            let plan = Planner::plan(&meta, hw, request)?;
            if args.json {
                print_json(
                    &serde_json::json!({"found": false, "alias": alias, "searched": searched, "plan": plan}),
                )?;
            } else {
                print_plan(&meta, hw, &plan)?;
                outln!("{source}");
            }
            if args.dry_run {
                return Ok(());
            }
            bail!("download the model (or point --models-dir at it) to run it");
        }
    };
    // One plan, for --dry-run and the run alike.
    let plan = Planner::plan(&meta, hw, request)?;
    if args.dry_run {
        if args.json {
            return print_json(&plan);
        }
        print_plan(&meta, hw, &plan)?;
        outln!("{source}");
        return Ok(());
    }
    engine::run(
        args,
        prompt,
        Planned {
            meta,
            plan,
            hw: planning.hw,
            request: planning.request,
        },
    )
}

/// What `run` planned: the model's header, the plan, and what it was planned for (the
/// request again for the step-down should llama.cpp fail to load the plan).
#[cfg_attr(not(feature = "runtime"), allow(dead_code))]
pub(crate) struct Planned {
    meta: strix_run::model::ModelMeta,
    plan: strix_run::planner::Plan,
    hw: strix_run::hardware::Hardware,
    request: strix_run::planner::Request,
}

/// The prompt: `-p TEXT`, `-p -` (standard input) or `--file PATH`; `None` for a chat.
fn prompt(args: &RunArgs) -> anyhow::Result<Option<String>> {
    use anyhow::Context;
    use std::io::Read;
    if let Some(path) = &args.file {
        let text = strix_run::files::read_text(path).map_err(|e| match e {
            strix_run::files::FileError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::InvalidData =>
            {
                anyhow::anyhow!("--file {}: is not UTF-8 text", path.display())
            }
            e => anyhow::Error::from(e).context("--file"),
        })?;
        return Ok(Some(text));
    }
    match args.prompt.as_deref() {
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("-p -: reading the prompt from standard input")?;
            Ok(Some(text))
        }
        other => Ok(other.map(str::to_string)),
    }
}

#[cfg(feature = "runtime")]
mod engine {
    use super::*;
    use crate::cli::format::bytes;
    use anyhow::Context;
    use std::io::BufRead;
    use std::ops::ControlFlow;
    use std::sync::atomic::{AtomicBool, Ordering};
    use strix_run::runtime::load::{load, plan_summary, LoadOptions, MemoryComparison};
    use strix_run::runtime::session::{
        ChatMessage, GenerateOptions, GenerateStats, SamplingOptions, Session, StopReason,
        INTERRUPT,
    };

    /// Set while the chat waits for a line: Ctrl-C then says how to leave.
    static AT_PROMPT: AtomicBool = AtomicBool::new(false);
    /// Set once that hint was shown; a second Ctrl-C at the same prompt leaves.
    static HINTED: AtomicBool = AtomicBool::new(false);

    /// Ctrl-C stops the generation in progress (prompt evaluation included) through the
    /// runtime's interrupt flag; without a handler it would end the process. At an idle
    /// chat prompt it says how to leave, and a second one leaves (exit 130).
    fn install_ctrl_c() {
        let _ = ctrlc::set_handler(|| {
            if AT_PROMPT.load(Ordering::SeqCst) {
                if HINTED.swap(true, Ordering::SeqCst) {
                    eprintln!();
                    std::process::exit(crate::cli::EXIT_INTERRUPTED);
                }
                eprint!("\n(Ctrl-D or another Ctrl-C ends the chat; Ctrl-C during an answer stops it)\n> ");
            } else {
                INTERRUPT.store(true, Ordering::SeqCst);
            }
        });
    }

    /// Refuses impossible sampling values before anything is planned or loaded.
    pub fn check_sampling(args: &RunArgs) -> anyhow::Result<()> {
        options(args).sampling.validate()?;
        Ok(())
    }

    /// Writes generated text as it comes; a failed write stops the generation and is
    /// kept to be reported.
    struct TextOut {
        quiet: bool,
        failed: Option<crate::cli::output::OutputError>,
    }

    impl TextOut {
        fn token(&mut self, piece: &str) -> ControlFlow<()> {
            if self.quiet {
                return ControlFlow::Continue(());
            }
            let written = crate::cli::output::write_fmt(format_args!("{piece}"))
                .and_then(|()| crate::cli::output::flush());
            match written {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    self.failed = Some(e);
                    ControlFlow::Break(())
                }
            }
        }

        /// The write error, if one stopped the generation.
        fn check(&mut self, stats: &GenerateStats) -> anyhow::Result<()> {
            match self.failed.take() {
                Some(e) => Err(anyhow::Error::from(e).context(format!(
                    "the generated text could not be written ({} tokens generated; generation stopped)",
                    stats.generated_tokens
                ))),
                None => Ok(()),
            }
        }
    }

    /// Reads one chat line; a line that is not UTF-8 is refused and the chat goes on.
    /// `None` at the end of input.
    fn read_chat_line(stdin: &std::io::Stdin) -> anyhow::Result<Option<String>> {
        loop {
            HINTED.store(false, Ordering::SeqCst);
            AT_PROMPT.store(true, Ordering::SeqCst);
            eprint!("> ");
            let mut bytes = Vec::new();
            let read = stdin.lock().read_until(b'\n', &mut bytes);
            AT_PROMPT.store(false, Ordering::SeqCst);
            if read.context("reading the chat from standard input")? == 0 {
                return Ok(None);
            }
            match String::from_utf8(bytes) {
                Ok(line) => return Ok(Some(line)),
                Err(e) => eprintln!(
                    "that line is not UTF-8 text (invalid byte at position {}); it was not sent, type it again",
                    e.utf8_error().valid_up_to()
                ),
            }
        }
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

    pub fn run(args: &RunArgs, prompt: Option<String>, planned: Planned) -> anyhow::Result<()> {
        let Planned {
            meta,
            plan,
            hw,
            request,
        } = planned;
        let path = meta.path.clone();
        let mut opts = LoadOptions::new(request, hw);
        opts.progress = !args.json;
        let loaded =
            load(meta, plan, &opts).with_context(|| format!("loading {}", path.display()))?;
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
        let mut text_out = TextOut {
            quiet: args.json,
            failed: None,
        };
        match prompt {
            Some(prompt) => {
                let stats = session.generate(&prompt, &gen, &mut |p| text_out.token(p))?;
                text_out.check(&stats)?;
                if args.json {
                    let report = session.loaded().report();
                    print_json(&serde_json::json!({
                        "plan": report.plan, "load_seconds": report.load_seconds, "attempts": report.attempts,
                        "memory": report.memory, "actual_memory": report.actual, "stats": stats,
                    }))?;
                } else {
                    outln!();
                    report(&stats);
                }
                if stats.stop_reason == StopReason::Cancelled {
                    return Err(crate::cli::Interrupted.into());
                }
            }
            None => {
                let mut messages: Vec<ChatMessage> = Vec::new();
                if let Some(system) = &args.system {
                    messages.push(ChatMessage::new("system", system.clone()));
                }
                eprintln!("chat: type a message, Ctrl-C stops an answer, Ctrl-D ends");
                let stdin = std::io::stdin();
                while let Some(line) = read_chat_line(&stdin)? {
                    let line = line.trim();
                    if line.is_empty() {
                        continue;
                    }
                    messages.push(ChatMessage::new("user", line));
                    let stats = session.chat(&messages, &gen, &mut |p| text_out.token(p))?;
                    text_out.check(&stats)?;
                    outln!();
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

    pub fn check_sampling(_: &RunArgs) -> anyhow::Result<()> {
        Ok(())
    }

    pub fn run(_: &RunArgs, _: Option<String>, _: Planned) -> anyhow::Result<()> {
        bail!("this strix-run was built without llama.cpp (--no-default-features): it can plan (--dry-run) but not run models")
    }
}
