//! Command-line interface: one module per subcommand.

mod args;
mod bench;
mod doctor;
mod format;
mod inspect;
mod machine;
mod models;
mod output;
mod plan;
mod run;
mod serve;
mod synth;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Run huge GGUF models on unified-memory machines (AMD Strix Halo and friends):
/// read the model, know the machine, plan the allocation, explain it, run it.
///
/// Without a subcommand: `strix-run --model MODEL --auto [-p PROMPT]` plans, loads and
/// generates (or chats when no prompt is given).
#[derive(Debug, Parser)]
#[command(
    name = "strix-run",
    version,
    long_version = doctor::LONG_VERSION,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: Box<run::RunArgs>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Plan, load and generate (the same as giving the options without a subcommand).
    Run(Box<run::RunArgs>),
    /// Measure prompt and generation speed (llama-bench style) of the plan, a sweep
    /// grid or a model ladder; calibrate the planner's speed model on this machine.
    Bench(Box<bench::BenchArgs>),
    /// What this build carries, what the machine is, which backends can run here.
    Doctor(doctor::DoctorArgs),
    /// Summarize a GGUF model: architecture, layers, sizes, experts, quantization.
    Inspect(inspect::InspectArgs),
    /// List the GGUF models on this machine, whether they fit, and where discovery looked.
    Models(Box<models::ModelsArgs>),
    /// Plan how to run a model on this (or a described) machine, and explain why.
    Plan(Box<plan::PlanArgs>),
    /// Serve a model over OpenAI- and Anthropic-compatible HTTP APIs, with continuous
    /// batching over planned slots.
    Serve(Box<serve::ServeArgs>),
    /// Write a synthetic GGUF model with the real shapes of a known model.
    Synth(synth::SynthArgs),
}

/// The exit code of a command stopped by Ctrl-C (128 + SIGINT, as a shell reports a
/// process the signal ended), so scripts can tell an interrupted run from a finished one.
pub const EXIT_INTERRUPTED: i32 = 130;

/// A command stopped by Ctrl-C after reporting what it had done.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// Parses the command line, runs the command and turns errors into a message and exit
/// code 1 (130 when Ctrl-C stopped it).
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    log_to_stderr();
    let result = match cli.command {
        None => run::run(&cli.run),
        Some(Command::Run(args)) => run::run(&args),
        Some(Command::Bench(args)) => bench::run(&args),
        Some(Command::Doctor(args)) => doctor::run(&args),
        Some(Command::Inspect(args)) => inspect::run(&args),
        Some(Command::Models(args)) => models::run(&args),
        Some(Command::Plan(args)) => plan::run(&args),
        Some(Command::Serve(args)) => serve::run(&args),
        Some(Command::Synth(args)) => synth::run(&args),
    };
    // What is still buffered is written now, so a failed write is reported (the flush at
    // exit would drop the error).
    let result = result.and_then(|()| output::flush().map_err(anyhow::Error::from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is::<Interrupted>() => {
            eprintln!("interrupted");
            ExitCode::from(EXIT_INTERRUPTED as u8)
        }
        Err(err) => {
            eprintln!("error: {}", error_message(&err));
            ExitCode::FAILURE
        }
    }
}

/// Logs of strix-run and llama.cpp (`tracing`) on stderr, filtered by `RUST_LOG` (e.g.
/// `RUST_LOG=llama-cpp-2=info` for llama.cpp's own log, `strix_run=debug` for every
/// header read and load attempt); nothing without it.
fn log_to_stderr() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// The error and its causes, joined with ": " like anyhow's `{:#}`, leaving out a cause
/// whose text the message already carries (the library's errors name their cause in
/// their own text, so `{:#}` printed it twice).
fn error_message(err: &anyhow::Error) -> String {
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}
