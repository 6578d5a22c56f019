//! `strix-run inspect MODEL [--json]`.

use super::format::{bytes, count, params, print_json};
use super::output::outln;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use std::path::PathBuf;
use std::time::Instant;
use strix_run::model::{BlockKind, BlockMeta, ModelMeta};

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// A .gguf file (any shard of a split model).
    pub model: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `inspect`.
pub fn run(args: &InspectArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let meta = ModelMeta::open(&args.model)?;
    let elapsed = started.elapsed();
    if args.json {
        return print_json(&meta);
    }
    print_summary(&meta)?;
    outln!(
        "read {} of headers in {:.1} ms",
        bytes(meta.bytes_read),
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}

fn kind_name(kind: BlockKind) -> &'static str {
    match kind {
        BlockKind::FullAttention => "full attention",
        BlockKind::SlidingWindow => "sliding window",
        BlockKind::Recurrent => "recurrent",
    }
}

fn print_summary(m: &ModelMeta) -> anyhow::Result<()> {
    let title = [m.name.as_deref(), m.size_label.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ");
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    let mut row = |k: &str, v: String| {
        t.add_row(vec![Cell::new(k), Cell::new(v)]);
    };
    row(
        "model",
        if title.is_empty() {
            m.path.display().to_string()
        } else {
            title
        },
    );
    row(
        "architecture",
        format!(
            "{}{}",
            m.arch,
            m.file_type_name
                .as_deref()
                .map(|f| format!(" · {f}"))
                .unwrap_or_default()
        ),
    );
    row(
        "files",
        format!(
            "{} shard{} · {} on disk · {} of tensors",
            m.shards.len(),
            if m.shards.len() == 1 { "" } else { "s" },
            bytes(m.file_bytes),
            bytes(m.tensor_bytes)
        ),
    );
    row(
        "parameters",
        format!("{} ({})", params(m.params), count(m.params)),
    );
    row(
        "layers",
        format!(
            "{} blocks + output = {} offloadable",
            m.n_block, m.n_layer_offloadable
        ),
    );
    row(
        "attention",
        format!(
            "{} heads, {} KV heads, head dim {}/{}, embedding {}",
            m.n_head, m.n_head_kv, m.head_dim_k, m.head_dim_v, m.n_embd
        ),
    );
    let mut context = format!("trained on {} tokens", m.n_ctx_train);
    for kind in [BlockKind::SlidingWindow, BlockKind::Recurrent] {
        let n = m.blocks.iter().filter(|b| b.kind == kind).count();
        if n > 0 {
            context.push_str(&format!(
                "; {n} of {} blocks {}",
                m.n_block,
                kind_name(kind)
            ));
        }
    }
    if let Some(w) = m.sliding_window {
        context.push_str(&format!(" (window {w})"));
    }
    row("context", context);
    if m.n_expert > 0 {
        row(
            "experts",
            format!(
                "{} routed, {} used per token, {} shared; {:.0}% of weights active per token",
                m.n_expert,
                m.n_expert_used,
                m.n_expert_shared,
                m.active_fraction() * 100.0
            ),
        );
    }
    row("vocabulary", count(m.n_vocab));
    row(
        "outside blocks",
        format!(
            "token_embd {} · output {} · other {}",
            bytes(m.non_block.token_embd),
            bytes(m.non_block.output),
            bytes(m.non_block.other)
        ),
    );
    outln!("{t}");

    let mut types = Table::new();
    types.load_preset(UTF8_FULL_CONDENSED);
    types.set_header(vec!["tensor type", "bytes", "share"]);
    let mut by_size: Vec<_> = m.tensor_types.iter().collect();
    by_size.sort_by(|a, b| b.1.cmp(a.1));
    for (name, &n) in by_size {
        types.add_row(vec![
            Cell::new(name),
            Cell::new(bytes(n)).set_alignment(CellAlignment::Right),
            Cell::new(format!(
                "{:.1}%",
                n as f64 * 100.0 / m.tensor_bytes.max(1) as f64
            ))
            .set_alignment(CellAlignment::Right),
        ]);
    }
    outln!("{types}");

    let mut blocks = Table::new();
    blocks.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec!["kind", "blocks", "bytes each", "dense each"];
    if m.n_expert > 0 {
        header.extend(["routed experts each", "shared experts each"]);
    }
    blocks.set_header(header);
    for kind in [
        BlockKind::FullAttention,
        BlockKind::SlidingWindow,
        BlockKind::Recurrent,
    ] {
        let group: Vec<&BlockMeta> = m.blocks.iter().filter(|b| b.kind == kind).collect();
        if group.is_empty() {
            continue;
        }
        let span = |f: fn(&BlockMeta) -> u64| {
            let lo = group.iter().map(|b| f(b)).min().unwrap_or(0);
            let hi = group.iter().map(|b| f(b)).max().unwrap_or(0);
            if lo == hi {
                bytes(lo)
            } else {
                format!("{} – {}", bytes(lo), bytes(hi))
            }
        };
        let mut cells = vec![
            Cell::new(kind_name(kind)),
            Cell::new(format!("{} ({})", group.len(), index_ranges(&group))),
            Cell::new(span(|b| b.bytes)).set_alignment(CellAlignment::Right),
            Cell::new(span(|b| b.dense_bytes)).set_alignment(CellAlignment::Right),
        ];
        if m.n_expert > 0 {
            cells.push(Cell::new(span(|b| b.expert_bytes)).set_alignment(CellAlignment::Right));
            cells.push(
                Cell::new(span(|b| b.shared_expert_bytes)).set_alignment(CellAlignment::Right),
            );
        }
        blocks.add_row(cells);
    }
    outln!("{blocks}");
    Ok(())
}

/// Block indices as compact ranges ("0-2, 4-6, 8"), cut short after a few.
fn index_ranges(blocks: &[&BlockMeta]) -> String {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for b in blocks {
        match ranges.last_mut() {
            Some(r) if r.1 + 1 == b.index => r.1 = b.index,
            _ => ranges.push((b.index, b.index)),
        }
    }
    let shown: Vec<String> = ranges
        .iter()
        .take(6)
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    let more = if ranges.len() > 6 { ", …" } else { "" };
    format!("{}{more}", shown.join(", "))
}
