//! Command-line interface: one module per subcommand.

mod format;
mod inspect;
mod machine;
mod plan;
mod synth;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Run huge GGUF models on unified-memory machines (AMD Strix Halo and friends):
/// read the model, know the machine, plan the allocation, explain it.
#[derive(Debug, Parser)]
#[command(name = "strix-run", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Summarize a GGUF model: architecture, layers, sizes, experts, quantization.
    Inspect(inspect::InspectArgs),
    /// Plan how to run a model on this (or a described) machine, and explain why.
    Plan(Box<plan::PlanArgs>),
    /// Write a synthetic GGUF model with the real shapes of a known model.
    Synth(synth::SynthArgs),
}

/// Parses the command line, runs the command and turns errors into a message and exit code 1.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Synth(args) => synth::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
