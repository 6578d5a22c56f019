//! Command-line interface: one module per subcommand.

mod bench;
mod doctor;
mod format;
mod inspect;
mod machine;
mod models;
mod plan;
mod run;
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
    /// Write a synthetic GGUF model with the real shapes of a known model.
    Synth(synth::SynthArgs),
}

/// Parses the command line, runs the command and turns errors into a message and exit code 1.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => run::run(&cli.run),
        Some(Command::Run(args)) => run::run(&args),
        Some(Command::Bench(args)) => bench::run(&args),
        Some(Command::Doctor(args)) => doctor::run(&args),
        Some(Command::Inspect(args)) => inspect::run(&args),
        Some(Command::Models(args)) => models::run(&args),
        Some(Command::Plan(args)) => plan::run(&args),
        Some(Command::Synth(args)) => synth::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", error_message(&err));
            ExitCode::FAILURE
        }
    }
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
