//! `strix-run doctor [--json]`: what this build carries, what the machine is, which
//! backends can run on it and why not, and what to change.

use super::args::MachineArgs;
use super::format::{bytes, print_json};
use super::machine::machine;
use super::output::outln;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Table};
use serde::Serialize;
use strix_run::hardware::{Backend, Hardware};

/// What `build.rs` recorded about this build.
#[derive(Debug, Clone, Serialize)]
pub struct BuildInfo {
    /// strix-run's version.
    pub version: &'static str,
    /// llama.cpp backends compiled in (`none` without the runtime).
    pub backends: &'static str,
    /// HIP GPU targets (used by the `hip` feature).
    pub hip_targets: &'static str,
    /// The llama.cpp binding.
    pub llama_cpp: &'static str,
}

/// This build.
pub const BUILD: BuildInfo = BuildInfo {
    version: env!("CARGO_PKG_VERSION"),
    backends: env!("STRIX_BACKENDS"),
    hip_targets: env!("STRIX_HIP_TARGETS"),
    llama_cpp: env!("STRIX_LLAMA_CPP"),
};

/// `--version` text: version, llama.cpp, backends, HIP targets.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nllama.cpp: ",
    env!("STRIX_LLAMA_CPP"),
    "\nbackends: ",
    env!("STRIX_BACKENDS"),
    "\nHIP targets: ",
    env!("STRIX_HIP_TARGETS")
);

/// Arguments of `doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub machine: MachineArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct BackendCheck {
    backend: Backend,
    compiled_in: bool,
    usable_here: bool,
    gpu_budget_bytes: Option<u64>,
    reason: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    build: BuildInfo,
    hardware: Hardware,
    backends: Vec<BackendCheck>,
    advice: Vec<String>,
}

fn compiled(backend: Backend) -> bool {
    BUILD.backends.split(',').any(|b| b == backend.to_string())
}

/// Runs `doctor`.
pub fn run(args: &DoctorArgs) -> anyhow::Result<()> {
    let hw = machine(&args.machine.overrides())?;
    let backends: Vec<BackendCheck> = [Backend::Cpu, Backend::Vulkan, Backend::Hip, Backend::Cuda]
        .into_iter()
        .map(|backend| match hw.memory_pools(backend) {
            Ok(p) => BackendCheck {
                backend,
                compiled_in: compiled(backend),
                usable_here: true,
                gpu_budget_bytes: backend.is_gpu().then_some(p.gpu_budget_bytes),
                reason: None,
            },
            Err(refused) => BackendCheck {
                backend,
                compiled_in: compiled(backend),
                usable_here: false,
                gpu_budget_bytes: None,
                reason: Some(format!("{}; {}", refused.reason, refused.advice)),
            },
        })
        .collect();
    let mut advice = Vec::new();
    for b in &backends {
        if b.usable_here && !b.compiled_in && b.backend.is_gpu() {
            advice.push(format!(
                "the {} backend would run here but is not compiled in: build with `cargo build --release --features {}`",
                b.backend,
                feature_of(b.backend)
            ));
        }
    }
    if BUILD.backends == "none" {
        advice.push("this build has no llama.cpp (built with --no-default-features): it can plan but not run models".into());
    }
    let report = Report {
        build: BUILD,
        hardware: hw,
        backends,
        advice,
    };
    if args.json {
        return print_json(&report);
    }
    print_report(&report)?;
    Ok(())
}

fn feature_of(backend: Backend) -> &'static str {
    match backend {
        Backend::Hip => "hip",
        Backend::Vulkan => "vulkan",
        Backend::Cuda => "cuda",
        Backend::Cpu => "runtime",
    }
}

fn print_report(r: &Report) -> anyhow::Result<()> {
    let b = &r.build;
    outln!(
        "strix-run {} · llama.cpp {} · backends compiled in: {} · HIP targets: {}",
        b.version,
        b.llama_cpp,
        b.backends,
        b.hip_targets
    );
    let hw = &r.hardware;
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    let mut row = |k: &str, v: String| {
        t.add_row(vec![Cell::new(k), Cell::new(v)]);
    };
    row(
        "OS",
        format!(
            "{:?}{}",
            hw.os,
            hw.kernel
                .map(|k| format!(", kernel {}.{}.{}", k.major, k.minor, k.patch))
                .unwrap_or_default()
        ),
    );
    row(
        "CPU",
        format!(
            "{} · {} cores / {} threads · {:.0} GB/s",
            hw.cpu.name.as_deref().unwrap_or("unknown"),
            hw.cpu.physical_cores,
            hw.cpu.logical_threads,
            hw.cpu_bandwidth_bytes_per_s as f64 / 1e9
        ),
    );
    row(
        "RAM",
        format!(
            "{} total, {} available",
            bytes(hw.ram_total_bytes),
            bytes(hw.ram_available_bytes)
        ),
    );
    if let Some(c) = hw.carveout_bytes {
        row("BIOS carveout", bytes(c));
    }
    row(
        "GTT",
        format!(
            "{}{}",
            bytes(hw.effective_gtt_bytes()),
            hw.ttm_pages_limit
                .map(|p| format!(" (ttm.pages_limit={p})"))
                .unwrap_or_else(|| " (kernel default)".into())
        ),
    );
    for g in &hw.gpus {
        row(
            "GPU",
            format!(
                "{} · {} · {}{}{}",
                g.name,
                if g.integrated {
                    "integrated"
                } else {
                    "discrete"
                },
                bytes(g.vram_bytes),
                g.gfx_target
                    .as_deref()
                    .map(|t| format!(" · {t}"))
                    .unwrap_or_default(),
                g.free_bytes
                    .map(|f| format!(" · {} free", bytes(f)))
                    .unwrap_or_default()
            ),
        );
    }
    outln!("{t}");
    let mut bt = Table::new();
    bt.load_preset(UTF8_FULL_CONDENSED);
    bt.set_header(vec![
        "backend",
        "compiled in",
        "usable here",
        "GPU budget / why not",
    ]);
    for c in &r.backends {
        bt.add_row(vec![
            Cell::new(c.backend.to_string()),
            Cell::new(if c.compiled_in { "yes" } else { "no" }),
            Cell::new(if c.usable_here { "yes" } else { "no" }),
            Cell::new(match (&c.reason, c.gpu_budget_bytes) {
                (Some(r), _) => r.clone(),
                (None, Some(b)) => bytes(b),
                (None, None) => "-".into(),
            }),
        ]);
    }
    outln!("{bt}");
    for n in &hw.notes {
        outln!("note: {n}");
    }
    for a in &r.advice {
        outln!("advice: {a}");
    }
    Ok(())
}
