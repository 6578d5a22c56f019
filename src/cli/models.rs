//! `strix-run models [QUERY] [--models-dir DIR]... [--json] [hardware flags]`: the
//! GGUF models on this machine, whether each fits, and where discovery looked. With
//! QUERY, what that query resolves to (a local file, or the what-if plan of a known
//! model that is not downloaded yet).

use super::args::{MachineArgs, ModelsDirs};
use super::format::{bytes, print_json};
use super::machine::machine;
use super::output::outln;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use serde::Serialize;
use std::path::PathBuf;
use strix_run::discovery::{
    discover, whatif, Discovery, DiscoveryConfig, FoundModel, Resolved, SearchedRoot, SkippedFile,
};
use strix_run::hardware::Hardware;
use strix_run::model::ModelMeta;
use strix_run::planner::{PlanError, Planner, Request};

/// Arguments of `models`.
#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    /// Show what this resolves to: a path, an alias (8b, 32b, 235b, 397b, gemma3-270m,
    /// a preset name) or part of a model's name.
    pub query: Option<String>,
    #[command(flatten)]
    pub models: ModelsDirs,
    /// Print the listing as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub machine: MachineArgs,
}

/// Whether a model fits the machine, from the planner's default plan.
#[derive(Debug, Clone, Serialize)]
struct Fit {
    /// `full` (every layer on the GPU), `partial`, `cpu`, `no`, or `unknown` (no
    /// machine description).
    verdict: &'static str,
    /// Layers on the GPU (counting the output layer).
    n_gpu_layers: Option<u32>,
    /// Offloadable layers.
    n_layer_offloadable: u32,
    /// Predicted generation speed, tokens per second.
    tg_tok_s: Option<f64>,
    /// The same for people.
    text: String,
}

/// One listed model.
#[derive(Debug, Serialize)]
struct Row {
    name: String,
    path: PathBuf,
    source: &'static str,
    arch: String,
    model_name: Option<String>,
    size_label: Option<String>,
    quant: Option<String>,
    file_bytes: u64,
    shards: Vec<PathBuf>,
    params: u64,
    fits: Fit,
}

/// The `--json` document.
#[derive(Debug, Serialize)]
struct Report<'a> {
    machine: Option<String>,
    models: Vec<Row>,
    searched: &'a [SearchedRoot],
    skipped: &'a [SkippedFile],
    problems: &'a [String],
}

/// Runs `models`.
pub fn run(args: &ModelsArgs) -> anyhow::Result<()> {
    let cfg = args.models.discovery();
    if let Some(query) = &args.query {
        return show_query(query, &cfg, args);
    }
    let found = discover(&cfg);
    let hw = machine(&args.machine.overrides());
    let machine_error = hw.as_ref().err().map(|e| e.to_string());
    let hw = hw.ok();
    let rows: Vec<Row> = found.models.iter().map(|m| row(m, hw.as_ref())).collect();
    if args.json {
        return print_json(&Report {
            machine: machine_error,
            models: rows,
            searched: &found.searched,
            skipped: &found.skipped,
            problems: &found.problems,
        });
    }
    if rows.is_empty() {
        outln!("no GGUF models found");
    } else {
        outln!("{}", models_table(&rows));
    }
    if let Some(e) = machine_error {
        outln!("fits: unknown, the machine could not be described: {e}");
    }
    outln!("{}", roots_table(&found.searched));
    print_notes(&found)?;
    Ok(())
}

fn row(m: &FoundModel, hw: Option<&Hardware>) -> Row {
    Row {
        name: m.display_name.clone(),
        path: m.path.clone(),
        source: m.source_label,
        arch: m.meta.arch.clone(),
        model_name: m.meta.name.clone(),
        size_label: m.meta.size_label.clone(),
        quant: m.meta.file_type_name.clone(),
        file_bytes: m.meta.file_bytes,
        shards: m.meta.shards.clone(),
        params: m.meta.params,
        fits: fit(&m.meta, hw),
    }
}

/// The planner's default plan, in one line: "61/61 GPU, ~17.8 tok/s",
/// "partial 35/61, ~12.7 tok/s", "no: ...".
fn fit(meta: &ModelMeta, hw: Option<&Hardware>) -> Fit {
    let n = meta.n_layer_offloadable;
    let Some(hw) = hw else {
        return Fit {
            verdict: "unknown",
            n_gpu_layers: None,
            n_layer_offloadable: n,
            tg_tok_s: None,
            text: "?".into(),
        };
    };
    match Planner::plan(meta, hw, &Request::default()) {
        Ok(plan) => {
            let tg = plan.predicted.tg_tok_s;
            let (verdict, text) = if plan.n_gpu_layers >= n {
                ("full", format!("{n}/{n} GPU, ~{tg:.1} tok/s"))
            } else if plan.n_gpu_layers == 0 {
                ("cpu", format!("CPU only, ~{tg:.1} tok/s"))
            } else {
                (
                    "partial",
                    format!("partial {}/{n}, ~{tg:.1} tok/s", plan.n_gpu_layers),
                )
            };
            Fit {
                verdict,
                n_gpu_layers: Some(plan.n_gpu_layers),
                n_layer_offloadable: n,
                tg_tok_s: Some(tg),
                text,
            }
        }
        Err(e) => Fit {
            verdict: "no",
            n_gpu_layers: None,
            n_layer_offloadable: n,
            tg_tok_s: None,
            text: match e {
                PlanError::DoesNotFit { reason, .. } => format!("no: {reason}"),
                other => format!("no: {other}"),
            },
        },
    }
}

fn models_table(rows: &[Row]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(["model", "size", "quant", "arch", "shards", "source", "fits"]);
    for r in rows {
        t.add_row([
            Cell::new(&r.name),
            Cell::new(bytes(r.file_bytes)).set_alignment(CellAlignment::Right),
            Cell::new(r.quant.as_deref().unwrap_or("?")),
            Cell::new(&r.arch),
            Cell::new(r.shards.len()).set_alignment(CellAlignment::Right),
            Cell::new(r.source),
            Cell::new(&r.fits.text),
        ]);
    }
    t
}

fn roots_table(searched: &[SearchedRoot]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(["searched", "path", "found"]);
    for s in searched {
        t.add_row([
            Cell::new(s.label),
            Cell::new(s.path.display()),
            Cell::new(if s.exists {
                format!("{} GGUF files", s.files_seen)
            } else {
                "does not exist".into()
            }),
        ]);
    }
    t
}

fn print_notes(found: &Discovery) -> anyhow::Result<()> {
    for s in &found.skipped {
        outln!("skipped {}: {}", s.path.display(), s.reason);
    }
    for p in &found.problems {
        outln!("problem: {p}");
    }
    Ok(())
}

/// `models QUERY`: what the query resolves to, and how it would run.
fn show_query(query: &str, cfg: &DiscoveryConfig, args: &ModelsArgs) -> anyhow::Result<()> {
    // The error of a query that finds nothing lists where it looked and the aliases.
    let resolved = strix_run::discovery::resolve(query, cfg)?;
    let hw = machine(&args.machine.overrides())?;
    match resolved {
        Resolved::Local { model, candidates } => {
            let r = row(&model, Some(&hw));
            if args.json {
                return print_json(&serde_json::json!({
                    "query": query, "model": r, "candidates": candidates,
                }));
            }
            outln!(
                "{query} → {} ({}, {})",
                model.path.display(),
                model.source_label,
                model.display_name
            );
            outln!("{}", models_table(std::slice::from_ref(&r)));
            for c in &candidates {
                outln!("also found: {}", c.display());
            }
        }
        Resolved::KnownShapeOnly {
            alias,
            preset,
            searched,
        } => {
            let meta = whatif::preset_meta(preset)?;
            let f = fit(&meta, Some(&hw));
            if args.json {
                return print_json(&serde_json::json!({
                    "query": query, "alias": alias, "preset": preset.name,
                    "local": false, "file_bytes": meta.file_bytes, "shards": meta.shards.len(),
                    "quant": meta.file_type_name, "fits": f, "searched": searched,
                }));
            }
            outln!("{alias}: {} is not on this machine.", preset.display_name);
            outln!("{}", roots_table(&searched));
            outln!(
                "what-if, {} ({}, {} in {} file(s)) on this machine: {}",
                preset.display_name,
                meta.file_type_name
                    .as_deref()
                    .unwrap_or(preset.default_quant),
                bytes(meta.file_bytes),
                meta.shards.len(),
                f.text
            );
            outln!(
                "plan it in detail with `strix-run synth --preset {} --sparse --out models/{}.gguf`, then `strix-run plan -m` on that file",
                preset.name, preset.name
            );
        }
    }
    Ok(())
}
