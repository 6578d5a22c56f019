//! Bench results and their output formats: a table (the default), JSON, CSV and
//! Markdown.
//!
//! Each measured point has one record per test, shaped like `llama-bench -o json`'s
//! (`n_prompt`, `n_gen`, `n_threads`, `n_batch`, `n_ubatch`, `n_gpu_layers`,
//! `n_cpu_moe`, `flash_attn`, `type_k`, `type_v`, `avg_ts`, `stddev_ts`, `samples_ts`):
//! a prompt test (`ppN`: `n_gen` 0) and a generation test (`tgN`: `n_prompt` 0).

use super::economics::{CostPerMtok, Economics};
use super::stats::Samples;
use super::sweep::{GridPoint, SweepKey, SweepValue};
use crate::hardware::Backend;
use crate::planner::{KvType, Plan};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use serde::Serialize;
use std::fmt::Write as _;

/// The configuration of a point: every planner value that decides speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PointConfig {
    /// Backend.
    pub backend: Backend,
    /// n_gpu_layers.
    pub n_gpu_layers: u32,
    /// --n-cpu-moe.
    pub n_cpu_moe: u32,
    /// Generation threads.
    pub n_threads: u32,
    /// Prompt threads.
    pub n_threads_batch: u32,
    /// Logical batch.
    pub n_batch: u32,
    /// Physical batch.
    pub n_ubatch: u32,
    /// Context.
    pub n_ctx: u32,
    /// Flash attention.
    pub flash_attn: bool,
    /// K cache type.
    pub type_k: KvType,
    /// V cache type.
    pub type_v: KvType,
    /// mmap.
    pub use_mmap: bool,
}

impl PointConfig {
    /// The configuration of a plan.
    pub fn of(p: &Plan) -> Self {
        PointConfig {
            backend: p.backend,
            n_gpu_layers: p.n_gpu_layers,
            n_cpu_moe: p.n_cpu_moe,
            n_threads: p.n_threads,
            n_threads_batch: p.n_threads_batch,
            n_batch: p.n_batch,
            n_ubatch: p.n_ubatch,
            n_ctx: p.n_ctx,
            flash_attn: p.flash_attn,
            type_k: p.type_k,
            type_v: p.type_v,
            use_mmap: p.use_mmap,
        }
    }

    /// The value of a sweepable parameter.
    pub fn value(&self, key: SweepKey) -> SweepValue {
        match key {
            SweepKey::Ngl => SweepValue::Number(self.n_gpu_layers),
            SweepKey::Ncmoe => SweepValue::Number(self.n_cpu_moe),
            SweepKey::Threads => SweepValue::Number(self.n_threads),
            SweepKey::ThreadsBatch => SweepValue::Number(self.n_threads_batch),
            SweepKey::Batch => SweepValue::Number(self.n_batch),
            SweepKey::Ubatch => SweepValue::Number(self.n_ubatch),
            SweepKey::Ctx => SweepValue::Number(self.n_ctx),
            SweepKey::Fa => SweepValue::Switch(self.flash_attn),
            SweepKey::Ctk => SweepValue::Kv(self.type_k),
            SweepKey::Ctv => SweepValue::Kv(self.type_v),
            SweepKey::Mmap => SweepValue::Switch(self.use_mmap),
        }
    }
}

/// Which test a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TestKind {
    /// Prompt processing.
    Pp,
    /// Generation.
    Tg,
}

/// One test of one point, shaped like a `llama-bench -o json` record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestRecord {
    /// `pp512`, `tg128`, ...
    pub test: String,
    /// Which.
    pub kind: TestKind,
    /// Prompt tokens (0 for a generation test).
    pub n_prompt: u32,
    /// Generated tokens (0 for a prompt test).
    pub n_gen: u32,
    /// Threads the test ran with.
    pub n_threads: u32,
    /// Logical batch.
    pub n_batch: u32,
    /// Physical batch.
    pub n_ubatch: u32,
    /// n_gpu_layers.
    pub n_gpu_layers: u32,
    /// --n-cpu-moe.
    pub n_cpu_moe: u32,
    /// Flash attention.
    pub flash_attn: bool,
    /// K cache type.
    pub type_k: String,
    /// V cache type.
    pub type_v: String,
    /// Context size requested.
    pub n_ctx: u32,
    /// Backend.
    pub backend: Backend,
    /// mmap.
    pub use_mmap: bool,
    /// Mean tokens per second.
    pub avg_ts: f64,
    /// Sample standard deviation.
    pub stddev_ts: f64,
    /// Tokens per second of each repetition.
    pub samples_ts: Vec<f64>,
    /// The plan's predicted tokens per second.
    pub predicted_ts: f64,
    /// This test's speed over the best point's speed of the same test (1 = best).
    pub ratio_to_best: Option<f64>,
}

impl TestRecord {
    /// A record for `config` from samples.
    pub fn new(
        kind: TestKind,
        tokens: u32,
        config: &PointConfig,
        samples: Samples,
        predicted_ts: f64,
    ) -> Self {
        let (test, n_prompt, n_gen, n_threads) = match kind {
            TestKind::Pp => (format!("pp{tokens}"), tokens, 0, config.n_threads_batch),
            TestKind::Tg => (format!("tg{tokens}"), 0, tokens, config.n_threads),
        };
        TestRecord {
            test,
            kind,
            n_prompt,
            n_gen,
            n_threads,
            n_batch: config.n_batch,
            n_ubatch: config.n_ubatch,
            n_gpu_layers: config.n_gpu_layers,
            n_cpu_moe: config.n_cpu_moe,
            flash_attn: config.flash_attn,
            type_k: config.type_k.to_string(),
            type_v: config.type_v.to_string(),
            n_ctx: config.n_ctx,
            backend: config.backend,
            use_mmap: config.use_mmap,
            avg_ts: samples.avg_ts,
            stddev_ts: samples.stddev_ts,
            samples_ts: samples.samples_ts,
            predicted_ts,
            ratio_to_best: None,
        }
    }
}

/// Planned and allocated bytes on one side (GPU or host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceMemory {
    /// `gpu` or `host`.
    pub side: String,
    /// llama.cpp's devices on this side.
    pub devices: Vec<String>,
    /// Planned: weights + KV/state + compute + output.
    pub planned_bytes: u64,
    /// Allocated: weights (counted once) + KV/state + compute.
    pub actual_bytes: u64,
    /// Allocated weights.
    pub actual_weights: u64,
    /// Allocated KV cache and recurrent state.
    pub actual_context: u64,
    /// Allocated compute buffers.
    pub actual_compute: u64,
}

/// What happened to a point.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "lowercase")]
pub enum PointStatus {
    /// Measured.
    Measured,
    /// The planner proved it will not fit (or the pins are impossible): not run.
    Skipped(String),
    /// It was run and failed (load or decode).
    Failed(String),
}

/// The predicted speeds of a point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Predicted {
    /// Generation, tok/s.
    pub tg_tok_s: f64,
    /// Prompt, tok/s.
    pub pp_tok_s: f64,
    /// Whether this machine's calibration was applied.
    pub calibrated: bool,
}

/// One point of a bench.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointResult {
    /// `plan` or the grid point.
    pub label: String,
    /// The grid point, when swept.
    pub grid: Option<GridPoint>,
    /// The planner's own choice.
    pub is_plan: bool,
    /// Measured, skipped or failed.
    #[serde(flatten)]
    pub status: PointStatus,
    /// The configuration (absent when the planner refused it).
    pub config: Option<PointConfig>,
    /// The plan in one line.
    pub plan: Option<String>,
    /// The plan's predicted speeds.
    pub predicted: Option<Predicted>,
    /// The tests (empty unless measured).
    pub tests: Vec<TestRecord>,
    /// Seconds to load (model and context; 0 when the loaded model was reused).
    pub load_seconds: Option<f64>,
    /// Whether the model was reloaded for this point (else only a new context, or
    /// nothing, was needed).
    pub reloaded: bool,
    /// Memory per side.
    pub memory: Vec<DeviceMemory>,
    /// Cost per million generated tokens (with `--watts` and `--price-kwh`).
    pub cost_per_mtok: Option<CostPerMtok>,
}

impl PointResult {
    /// The test of `kind`, if measured.
    pub fn test(&self, kind: TestKind) -> Option<&TestRecord> {
        self.tests.iter().find(|t| t.kind == kind)
    }

    /// Mean speed of `kind`.
    pub fn speed(&self, kind: TestKind) -> Option<f64> {
        self.test(kind).map(|t| t.avg_ts)
    }
}

/// How the plan compares with the best measured point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanVsBest {
    /// The best point by generation speed.
    pub best_tg: Option<String>,
    /// Plan tg / best tg.
    pub plan_tg_ratio: Option<f64>,
    /// The best point by prompt speed.
    pub best_pp: Option<String>,
    /// Plan pp / best pp.
    pub plan_pp_ratio: Option<f64>,
}

/// Everything measured for one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelReport {
    /// The model's name.
    pub model: String,
    /// Its file.
    pub path: String,
    /// Its size on disk.
    pub file_bytes: u64,
    /// The points, in the order run.
    pub points: Vec<PointResult>,
    /// The plan against the best point (a sweep only).
    pub plan_vs_best: Option<PlanVsBest>,
}

impl ModelReport {
    /// Fills every test's `ratio_to_best` and [`ModelReport::plan_vs_best`]
    /// (the latter only when more than one point was measured).
    pub fn rank(&mut self) {
        let mut best: [(Option<usize>, f64); 2] = [(None, 0.0), (None, 0.0)];
        for (i, p) in self.points.iter().enumerate() {
            for (slot, kind) in [TestKind::Tg, TestKind::Pp].into_iter().enumerate() {
                if let Some(s) = p.speed(kind) {
                    if s > best[slot].1 {
                        best[slot] = (Some(i), s);
                    }
                }
            }
        }
        for p in &mut self.points {
            for t in &mut p.tests {
                let b = best[usize::from(t.kind == TestKind::Pp)].1;
                t.ratio_to_best = (b > 0.0).then(|| t.avg_ts / b);
            }
        }
        let measured = self
            .points
            .iter()
            .filter(|p| p.status == PointStatus::Measured)
            .count();
        if measured < 2 {
            self.plan_vs_best = None;
            return;
        }
        let plan = self.points.iter().find(|p| p.is_plan);
        let ratio = |kind| {
            plan.and_then(|p| p.test(kind))
                .and_then(|t| t.ratio_to_best)
        };
        let label = |slot: usize| best[slot].0.map(|i| self.points[i].label.clone());
        self.plan_vs_best = Some(PlanVsBest {
            best_tg: label(0),
            plan_tg_ratio: ratio(TestKind::Tg),
            best_pp: label(1),
            plan_pp_ratio: ratio(TestKind::Pp),
        });
    }
}

/// A ladder model that is not on this machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MissingModel {
    /// The alias asked for.
    pub alias: String,
    /// Where discovery looked.
    pub searched: Vec<String>,
}

/// The bench parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BenchParams {
    /// Prompt tokens per prompt test (0: no prompt test).
    pub n_prompt: u32,
    /// Generated tokens per generation test (0: no generation test).
    pub n_gen: u32,
    /// Timed repetitions per test (after one warm-up).
    pub repetitions: u32,
}

/// A whole bench run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// The machine ([`crate::planner::calibration::machine_key`]).
    pub machine: String,
    /// The parameters.
    pub params: BenchParams,
    /// Where the speed constants came from (`speed: ...`).
    pub speed: String,
    /// The models, in the order run.
    pub models: Vec<ModelReport>,
    /// Ladder models not found.
    pub missing: Vec<MissingModel>,
    /// Why a ladder stopped early.
    pub stopped: Option<String>,
    /// What happened to the calibration file.
    pub calibration: Option<String>,
    /// Economics inputs, when given.
    pub economics: Option<Economics>,
}

fn speed_cell(t: Option<&TestRecord>) -> String {
    t.map_or_else(
        || "-".to_string(),
        |t| format!("{:.2} ± {:.2}", t.avg_ts, t.stddev_ts),
    )
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_string(), |r| format!("{r:.3}"))
}

/// The rows every text format shows: header and cells.
fn rows(report: &BenchReport, m: &ModelReport) -> (Vec<String>, Vec<Vec<String>>) {
    let p = report.params;
    let mut header = vec!["point".to_string(), "config".to_string()];
    if p.n_prompt > 0 {
        header.push(format!("pp{} tok/s", p.n_prompt));
    }
    if p.n_gen > 0 {
        header.push(format!("tg{} tok/s", p.n_gen));
    }
    header.push("predicted pp / tg".to_string());
    header.push("tg vs best".to_string());
    header.push("load s".to_string());
    if report.economics.is_some() {
        header.push("cost / Mtok".to_string());
    }
    let mut out = Vec::new();
    for pt in &m.points {
        let mut row = vec![
            if pt.is_plan {
                format!("{} ★", pt.label)
            } else {
                pt.label.clone()
            },
            pt.plan.clone().unwrap_or_default(),
        ];
        let reason = match &pt.status {
            PointStatus::Measured => None,
            PointStatus::Skipped(r) => Some(format!("skipped: {r}")),
            PointStatus::Failed(r) => Some(format!("failed: {r}")),
        };
        if let Some(r) = reason {
            row[1] = if row[1].is_empty() {
                r
            } else {
                format!("{} — {r}", row[1])
            };
        }
        if p.n_prompt > 0 {
            row.push(speed_cell(pt.test(TestKind::Pp)));
        }
        if p.n_gen > 0 {
            row.push(speed_cell(pt.test(TestKind::Tg)));
        }
        row.push(pt.predicted.map_or_else(
            || "-".to_string(),
            |pr| format!("{:.1} / {:.1}", pr.pp_tok_s, pr.tg_tok_s),
        ));
        row.push(ratio(pt.test(TestKind::Tg).and_then(|t| t.ratio_to_best)));
        row.push(
            pt.load_seconds
                .map_or_else(|| "-".to_string(), |s| format!("{s:.2}")),
        );
        if report.economics.is_some() {
            row.push(pt.cost_per_mtok.map_or_else(
                || "-".to_string(),
                |c| match c.hardware {
                    Some(h) => format!("{:.4} ({:.4} energy + {h:.4} hardware)", c.total, c.energy),
                    None => format!("{:.4}", c.energy),
                },
            ));
        }
        out.push(row);
    }
    (header, out)
}

fn summary_lines(report: &BenchReport, m: &ModelReport) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(v) = &m.plan_vs_best {
        if let (Some(best), Some(r)) = (&v.best_tg, v.plan_tg_ratio) {
            lines.push(format!(
                "plan ★ generation: {r:.3} x the best point ({best})"
            ));
        }
        if let (Some(best), Some(r)) = (&v.best_pp, v.plan_pp_ratio) {
            lines.push(format!(
                "plan ★ prompt:     {r:.3} x the best point ({best})"
            ));
        }
    }
    for pt in m.points.iter().filter(|p| p.is_plan) {
        for d in &pt.memory {
            lines.push(format!(
                "memory {} ({}): {} allocated ({} weights, {} KV/state, {} compute), {} planned",
                d.side,
                d.devices.join(", "),
                mib(d.actual_bytes),
                mib(d.actual_weights),
                mib(d.actual_context),
                mib(d.actual_compute),
                mib(d.planned_bytes)
            ));
        }
    }
    let _ = report;
    lines
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / 1_048_576.0)
}

fn header_line(report: &BenchReport, m: &ModelReport) -> String {
    format!(
        "{} ({}, {}) · {} repetitions after a warm-up · {}",
        m.model,
        m.path,
        mib(m.file_bytes),
        report.params.repetitions,
        report.speed
    )
}

fn footer_lines(report: &BenchReport) -> Vec<String> {
    let mut lines = Vec::new();
    for miss in &report.missing {
        lines.push(format!(
            "missing: {} (looked in {})",
            miss.alias,
            miss.searched.join(", ")
        ));
    }
    if let Some(s) = &report.stopped {
        lines.push(format!("stopped: {s}"));
    }
    if let Some(c) = &report.calibration {
        lines.push(format!("calibration: {c}"));
    }
    if let Some(e) = &report.economics {
        let mut s = format!(
            "cost per million generated tokens at {} W and {} per kWh",
            e.watts, e.price_kwh
        );
        if let Some(h) = e.hardware_cost {
            let _ = write!(
                s,
                ", hardware {h} written off over {} years at {} h/day",
                e.lifetime_years, e.hours_per_day
            );
        }
        lines.push(s);
    }
    lines
}

/// The default output: a table per model and the summary lines.
pub fn to_table(report: &BenchReport) -> String {
    let mut out = String::new();
    for m in &report.models {
        let (header, rows) = rows(report, m);
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        t.set_header(header.clone());
        for row in rows {
            t.add_row(row.into_iter().enumerate().map(|(i, c)| {
                let cell = Cell::new(c);
                if i >= 2 {
                    cell.set_alignment(CellAlignment::Right)
                } else {
                    cell
                }
            }));
        }
        let _ = writeln!(out, "{}", header_line(report, m));
        let _ = writeln!(out, "{t}");
        for l in summary_lines(report, m) {
            let _ = writeln!(out, "{l}");
        }
    }
    for l in footer_lines(report) {
        let _ = writeln!(out, "{l}");
    }
    out
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// Markdown: a heading and a table per model, the summary as a list.
pub fn to_markdown(report: &BenchReport) -> String {
    let mut out = String::new();
    for m in &report.models {
        let (header, rows) = rows(report, m);
        let _ = writeln!(out, "### {}\n", md_escape(&m.model));
        let _ = writeln!(out, "{}\n", md_escape(&header_line(report, m)));
        let _ = writeln!(
            out,
            "| {} |",
            header
                .iter()
                .map(|h| md_escape(h))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(
            out,
            "|{}",
            header
                .iter()
                .enumerate()
                .map(|(i, _)| if i >= 2 { " ---: |" } else { " --- |" })
                .collect::<String>()
        );
        for row in rows {
            let _ = writeln!(
                out,
                "| {} |",
                row.iter()
                    .map(|c| md_escape(c))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
        let lines = summary_lines(report, m);
        if !lines.is_empty() {
            out.push('\n');
        }
        for l in lines {
            let _ = writeln!(out, "- {}", md_escape(&l));
        }
        out.push('\n');
    }
    for l in footer_lines(report) {
        let _ = writeln!(out, "- {}", md_escape(&l));
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The CSV columns.
pub const CSV_HEADER: &[&str] = &[
    "model",
    "point",
    "is_plan",
    "status",
    "reason",
    "test",
    "n_prompt",
    "n_gen",
    "n_threads",
    "n_batch",
    "n_ubatch",
    "n_gpu_layers",
    "n_cpu_moe",
    "flash_attn",
    "type_k",
    "type_v",
    "n_ctx",
    "backend",
    "avg_ts",
    "stddev_ts",
    "predicted_ts",
    "ratio_to_best",
    "load_seconds",
    "cost_per_mtok",
];

/// CSV: one row per test (like `llama-bench -o csv`), one row per skipped or failed
/// point (no test columns).
pub fn to_csv(report: &BenchReport) -> String {
    let mut out = CSV_HEADER.join(",");
    out.push('\n');
    for m in &report.models {
        for pt in &m.points {
            let (status, reason) = match &pt.status {
                PointStatus::Measured => ("measured", ""),
                PointStatus::Skipped(r) => ("skipped", r.as_str()),
                PointStatus::Failed(r) => ("failed", r.as_str()),
            };
            let head = [
                csv_field(&m.model),
                csv_field(&pt.label),
                pt.is_plan.to_string(),
                status.to_string(),
                csv_field(reason),
            ];
            let load = pt
                .load_seconds
                .map(|s| format!("{s:.4}"))
                .unwrap_or_default();
            let cost = pt
                .cost_per_mtok
                .map(|c| format!("{:.6}", c.total))
                .unwrap_or_default();
            if pt.tests.is_empty() {
                let mut row: Vec<String> = head.to_vec();
                row.resize(CSV_HEADER.len(), String::new());
                out.push_str(&row.join(","));
                out.push('\n');
            }
            for t in &pt.tests {
                let mut row: Vec<String> = head.to_vec();
                row.extend([
                    t.test.clone(),
                    t.n_prompt.to_string(),
                    t.n_gen.to_string(),
                    t.n_threads.to_string(),
                    t.n_batch.to_string(),
                    t.n_ubatch.to_string(),
                    t.n_gpu_layers.to_string(),
                    t.n_cpu_moe.to_string(),
                    u8::from(t.flash_attn).to_string(),
                    t.type_k.clone(),
                    t.type_v.clone(),
                    t.n_ctx.to_string(),
                    t.backend.to_string(),
                    format!("{:.6}", t.avg_ts),
                    format!("{:.6}", t.stddev_ts),
                    format!("{:.6}", t.predicted_ts),
                    t.ratio_to_best
                        .map(|r| format!("{r:.6}"))
                        .unwrap_or_default(),
                    load.clone(),
                    if t.kind == TestKind::Tg {
                        cost.clone()
                    } else {
                        String::new()
                    },
                ]);
                out.push_str(&row.join(","));
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn config(threads: u32, ubatch: u32) -> PointConfig {
        PointConfig {
            backend: Backend::Cpu,
            n_gpu_layers: 0,
            n_cpu_moe: 0,
            n_threads: threads,
            n_threads_batch: threads,
            n_batch: 2048,
            n_ubatch: ubatch,
            n_ctx: 640,
            flash_attn: true,
            type_k: KvType::F16,
            type_v: KvType::F16,
            use_mmap: true,
        }
    }

    fn point(label: &str, threads: u32, pp: &[f64], tg: &[f64], is_plan: bool) -> PointResult {
        let c = config(threads, 512);
        PointResult {
            label: label.into(),
            grid: None,
            is_plan,
            status: PointStatus::Measured,
            config: Some(c),
            plan: Some(format!("cpu threads {threads}")),
            predicted: Some(Predicted {
                tg_tok_s: 50.0,
                pp_tok_s: 500.0,
                calibrated: false,
            }),
            tests: vec![
                TestRecord::new(TestKind::Pp, 512, &c, Samples::new(pp.to_vec()), 500.0),
                TestRecord::new(TestKind::Tg, 128, &c, Samples::new(tg.to_vec()), 50.0),
            ],
            load_seconds: Some(0.25),
            reloaded: true,
            memory: vec![DeviceMemory {
                side: "host".into(),
                devices: vec!["CPU".into()],
                planned_bytes: 300 << 20,
                actual_bytes: 290 << 20,
                actual_weights: 240 << 20,
                actual_context: 20 << 20,
                actual_compute: 30 << 20,
            }],
            cost_per_mtok: None,
        }
    }

    pub(crate) fn sample_report() -> BenchReport {
        let mut m = ModelReport {
            model: "Gemma, 3 \"270M\"".into(),
            path: "models/g.gguf".into(),
            file_bytes: 253 << 20,
            points: vec![
                point("threads=1", 1, &[400.0, 420.0], &[40.0, 44.0], false),
                point("threads=2", 2, &[800.0, 820.0], &[60.0, 64.0], true),
                PointResult {
                    label: "threads=64".into(),
                    grid: None,
                    is_plan: false,
                    status: PointStatus::Skipped(
                        "--threads 64 is impossible: more than the machine has".into(),
                    ),
                    config: None,
                    plan: None,
                    predicted: None,
                    tests: vec![],
                    load_seconds: None,
                    reloaded: false,
                    memory: vec![],
                    cost_per_mtok: None,
                },
            ],
            plan_vs_best: None,
        };
        m.rank();
        BenchReport {
            machine: "cpu=x".into(),
            params: BenchParams {
                n_prompt: 512,
                n_gen: 128,
                repetitions: 2,
            },
            speed: "speed: default constants (run `strix-run bench` to calibrate)".into(),
            models: vec![m],
            missing: vec![MissingModel {
                alias: "397b".into(),
                searched: vec!["~/models".into()],
            }],
            stopped: None,
            calibration: Some("recorded".into()),
            economics: None,
        }
    }

    #[test]
    fn ranking_marks_the_best_and_the_plan() {
        let r = sample_report();
        let m = &r.models[0];
        let v = m.plan_vs_best.as_ref().unwrap();
        assert_eq!(v.best_tg.as_deref(), Some("threads=2"));
        assert_eq!(v.plan_tg_ratio, Some(1.0));
        // threads=1: tg mean 42 against 62.
        let t = m.points[0].test(TestKind::Tg).unwrap();
        assert!((t.ratio_to_best.unwrap() - 42.0 / 62.0).abs() < 1e-12);
    }

    #[test]
    fn records_carry_the_llama_bench_fields() {
        let r = sample_report();
        let json = serde_json::to_value(&r).unwrap();
        let pt = &json["models"][0]["points"][1];
        assert_eq!(pt["status"], "measured");
        assert_eq!(pt["is_plan"], true);
        let pp = &pt["tests"][0];
        for f in [
            "n_prompt",
            "n_gen",
            "n_threads",
            "n_batch",
            "n_ubatch",
            "n_gpu_layers",
            "n_cpu_moe",
            "flash_attn",
            "type_k",
            "type_v",
            "avg_ts",
            "stddev_ts",
            "samples_ts",
        ] {
            assert!(!pp[f].is_null(), "{f} missing: {pp}");
        }
        assert_eq!(pp["n_prompt"], 512);
        assert_eq!(pp["n_gen"], 0);
        assert_eq!(pp["avg_ts"], 810.0);
        assert_eq!(pt["tests"][1]["test"], "tg128");
        assert_eq!(pt["tests"][1]["n_prompt"], 0);
        let skipped = &json["models"][0]["points"][2];
        assert_eq!(skipped["status"], "skipped");
        assert!(skipped["reason"].as_str().unwrap().contains("impossible"));
    }

    #[test]
    fn table_shows_speeds_marks_and_reasons() {
        let t = to_table(&sample_report());
        assert!(t.contains("pp512 tok/s"), "{t}");
        assert!(t.contains("810.00 ± 14.14"), "{t}");
        assert!(t.contains("threads=2 ★"), "{t}");
        assert!(t.contains("skipped: --threads 64"), "{t}");
        assert!(
            t.contains("plan ★ generation: 1.000 x the best point (threads=2)"),
            "{t}"
        );
        assert!(t.contains("missing: 397b (looked in ~/models)"), "{t}");
        assert!(t.contains("speed: default constants"), "{t}");
    }

    #[test]
    fn markdown_is_a_table() {
        let md = to_markdown(&sample_report());
        let lines: Vec<&str> = md.lines().collect();
        let header = lines.iter().position(|l| l.starts_with("| point")).unwrap();
        assert!(
            lines[header + 1].starts_with("| --- | --- | ---: |"),
            "{md}"
        );
        let pipes = |l: &str| l.matches('|').count();
        // header, separator and the three points: the same number of columns
        for row in &lines[header..header + 5] {
            assert_eq!(pipes(row), pipes(lines[header]), "{row}");
            assert!(row.starts_with('|') && row.ends_with('|'), "{row}");
        }
        assert!(md.contains("| threads=2 ★ |"), "{md}");
    }

    #[test]
    fn csv_has_one_row_per_test_and_quotes() {
        let csv = to_csv(&sample_report());
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], CSV_HEADER.join(","));
        // 2 measured points x 2 tests + 1 skipped point.
        assert_eq!(lines.len(), 1 + 4 + 1);
        assert!(
            lines[1]
                .starts_with("\"Gemma, 3 \"\"270M\"\"\",threads=1,false,measured,,pp512,512,0,1,"),
            "{csv}"
        );
        assert!(lines[5].contains(",skipped,"), "{csv}");
        // every row has the header's number of fields (no field here has a comma
        // except the quoted model name)
        for l in &lines[1..] {
            let unquoted = l.replacen("\"Gemma, 3 \"\"270M\"\"\"", "M", 1);
            assert_eq!(unquoted.split(',').count(), CSV_HEADER.len(), "{l}");
        }
    }
}
