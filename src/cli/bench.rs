//! `strix-run bench`: llama-bench-style measurements of the plan (or a sweep grid, or
//! a model ladder), the plan's prediction next to them, calibration of the speed
//! model, economics, and a plot.

use super::args::{Planning, PlanningArgs};
use super::format::print_json;
use super::output::out;
use anyhow::bail;
use std::path::PathBuf;
use strix_run::discovery::{resolve, DiscoveryConfig, DiscoveryError, Resolved};
use strix_run::measure::report::MissingModel;
use strix_run::measure::{Economics, SweepSpec};
use strix_run::model::ModelMeta;

/// Output format of `bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A table (the default).
    Table,
    /// JSON.
    Json,
    /// CSV, one row per test.
    Csv,
    /// Markdown.
    Markdown,
}

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("format").args(["json", "csv", "markdown"])))]
#[command(group(clap::ArgGroup::new("what").args(["model", "ladder"]).required(true)))]
pub struct BenchArgs {
    /// The model: a .gguf path, an alias (8b, 32b, 235b, 397b, gemma3-270m, a preset
    /// name) or a fragment of a model's name.
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    /// Bench a ladder of models, smallest first (comma-separated aliases or paths, e.g.
    /// 8b,32b,235b,397b): the ones on this machine run, missing ones are listed with
    /// where discovery looked, and the ladder stops at the first the planner says
    /// cannot fit.
    #[arg(long, value_delimiter = ',')]
    pub ladder: Option<Vec<String>>,
    /// Let the planner choose everything not pinned (the default; accepted for clarity).
    #[arg(long)]
    pub auto: bool,
    /// Prompt tokens per prompt test (0: none).
    #[arg(long = "pp", default_value_t = 512)]
    pub n_prompt: u32,
    /// Generated tokens per generation test (0: none).
    #[arg(long = "tg", default_value_t = 128)]
    pub n_gen: u32,
    /// Timed repetitions per test, after one warm-up.
    #[arg(long = "repetitions", short = 'r', default_value_t = 5)]
    pub repetitions: u32,
    /// Skip the warm-up runs.
    #[arg(long = "no-warmup")]
    pub no_warmup: bool,
    /// Sweep a grid of pinned values, e.g. ngl=0..61:4,threads=4,8,12,16,ubatch=256,512
    /// (KEY=V[,V...]; V is N, A..B or A..B:STEP; keys ngl, ncmoe, threads,
    /// threads-batch, batch, ubatch, ctx, fa, ctk, ctv, mmap).
    #[arg(long)]
    pub sweep: Option<String>,
    /// Write an SVG plot of tok/s against the first swept parameter.
    #[arg(long, value_name = "FILE.svg", requires = "sweep")]
    pub plot: Option<PathBuf>,
    /// Print the results as JSON (one record per test, llama-bench's fields).
    #[arg(long)]
    pub json: bool,
    /// Print the results as CSV (one row per test).
    #[arg(long)]
    pub csv: bool,
    /// Print the results as Markdown.
    #[arg(long)]
    pub markdown: bool,
    /// Power drawn at the wall while generating, watts (with --price-kwh: cost per
    /// million generated tokens).
    #[arg(long, requires = "price_kwh")]
    pub watts: Option<f64>,
    /// Electricity price per kWh.
    #[arg(long = "price-kwh", requires = "watts")]
    pub price_kwh: Option<f64>,
    /// Price of the machine, written off over --lifetime-years at --hours-per-day.
    #[arg(long = "hardware-cost", requires = "watts")]
    pub hardware_cost: Option<f64>,
    /// Years to write the hardware off over.
    #[arg(long = "lifetime-years", default_value_t = strix_run::measure::economics::DEFAULT_LIFETIME_YEARS)]
    pub lifetime_years: f64,
    /// Hours per day the machine generates.
    #[arg(long = "hours-per-day", default_value_t = strix_run::measure::economics::DEFAULT_HOURS_PER_DAY)]
    pub hours_per_day: f64,
    #[command(flatten)]
    pub planning: PlanningArgs,
}

impl BenchArgs {
    fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else if self.csv {
            Format::Csv
        } else if self.markdown {
            Format::Markdown
        } else {
            Format::Table
        }
    }

    fn economics(&self) -> anyhow::Result<Option<Economics>> {
        let (Some(watts), Some(price_kwh)) = (self.watts, self.price_kwh) else {
            return Ok(None);
        };
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(anyhow::anyhow!("--{name} must be a number >= 0 (got {v})"))
            }
        };
        positive("watts", watts)?;
        positive("price-kwh", price_kwh)?;
        positive("lifetime-years", self.lifetime_years)?;
        if !(self.hours_per_day > 0.0 && self.hours_per_day <= 24.0) {
            bail!(
                "--hours-per-day must be in (0, 24] (got {})",
                self.hours_per_day
            );
        }
        if let Some(c) = self.hardware_cost {
            positive("hardware-cost", c)?;
        }
        Ok(Some(Economics {
            watts,
            price_kwh,
            hardware_cost: self.hardware_cost,
            lifetime_years: self.lifetime_years,
            hours_per_day: self.hours_per_day,
        }))
    }
}

/// A model to bench.
struct Target {
    path: PathBuf,
    meta: ModelMeta,
}

/// Resolves `--model`, or the `--ladder` (found ones smallest first, and the missing).
fn targets(
    args: &BenchArgs,
    cfg: &DiscoveryConfig,
) -> anyhow::Result<(Vec<Target>, Vec<MissingModel>)> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    let queries: Vec<String> = match (&args.model, &args.ladder) {
        (Some(m), _) => vec![m.clone()],
        (None, Some(l)) => l.clone(),
        (None, None) => bail!("give --model MODEL or --ladder 8b,32b,..."),
    };
    let searched = |roots: &[strix_run::discovery::SearchedRoot]| {
        roots
            .iter()
            .map(|s| {
                format!(
                    "{} {}{}",
                    s.label,
                    s.path.display(),
                    if s.exists { "" } else { " (missing)" }
                )
            })
            .collect::<Vec<_>>()
    };
    for q in &queries {
        let q = q.trim();
        if q.is_empty() {
            continue;
        }
        match resolve(q, cfg) {
            Ok(Resolved::Local { model, .. }) => found.push(Target {
                path: model.path.clone(),
                meta: model.meta.clone(),
            }),
            Ok(Resolved::KnownShapeOnly {
                alias, searched: s, ..
            }) => missing.push(MissingModel {
                alias,
                searched: searched(&s),
            }),
            Err(DiscoveryError::NotFound { query, searched: s }) if args.ladder.is_some() => {
                missing.push(MissingModel {
                    alias: query,
                    searched: searched(&s),
                })
            }
            Err(e) => return Err(e.into()),
        }
    }
    if args.model.is_some() && found.is_empty() {
        let m = &missing[0];
        bail!(
            "'{}' is not on this machine (looked in {}); `strix-run plan` shows how it would run",
            m.alias,
            m.searched.join(", ")
        );
    }
    found.sort_by_key(|t| t.meta.file_bytes);
    found.dedup_by(|a, b| a.path == b.path);
    Ok((found, missing))
}

/// What `run` resolved before measuring.
#[cfg_attr(not(feature = "runtime"), allow(dead_code))]
struct Inputs {
    planning: Planning,
    sweep: Option<SweepSpec>,
    targets: Vec<Target>,
    missing: Vec<MissingModel>,
    economics: Option<Economics>,
    format: Format,
}

/// Runs `bench`.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let sweep = args.sweep.as_deref().map(SweepSpec::parse).transpose()?;
    if args.repetitions == 0 {
        bail!("-r/--repetitions must be at least 1");
    }
    if args.n_prompt == 0 && args.n_gen == 0 {
        bail!("nothing to measure: --pp and --tg are both 0");
    }
    let economics = args.economics()?;
    // Output paths are checked before anything is measured.
    if let Some(plot) = &args.plot {
        strix_run::measure::plot::check_path(plot)?;
    }
    args.planning.plan.refuse_auto_parallel()?;
    let planning = args.planning.resolve()?;
    let (targets, missing) = targets(args, &planning.discovery)?;
    let format = args.format();
    engine::run(
        args,
        Inputs {
            planning,
            sweep,
            targets,
            missing,
            economics,
            format,
        },
    )
}

fn emit(report: &strix_run::measure::BenchReport, format: Format) -> anyhow::Result<()> {
    use strix_run::measure::report::{to_csv, to_markdown, to_table};
    match format {
        Format::Json => print_json(report),
        Format::Csv => {
            out!("{}", to_csv(report));
            Ok(())
        }
        Format::Markdown => {
            out!("{}", to_markdown(report));
            Ok(())
        }
        Format::Table => {
            out!("{}", to_table(report));
            Ok(())
        }
    }
}

#[cfg(feature = "runtime")]
mod engine {
    use super::*;
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    use std::io::IsTerminal;
    use std::sync::atomic::Ordering;
    use strix_run::hardware::Hardware;
    use strix_run::measure::report::{BenchParams, BenchReport, ModelReport, PointStatus};
    use strix_run::measure::{plan_points, PlannedPoint};
    use strix_run::planner::calibration::{
        self, default_path, is_this_machine, machine_key, CalibrationFile, CalibrationRun, Spread,
    };
    use strix_run::planner::{Planner, Request};
    use strix_run::runtime::measure::{bench_points, MeasureOptions, PointsOptions};
    use strix_run::runtime::session::INTERRUPT;

    fn progress(total: u64) -> ProgressBar {
        if total < 2 || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:30!} [{bar:30}] {pos}/{len} points · {elapsed} elapsed · ETA {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    }

    /// The calibration runs of a model's measured points: measured speed against the
    /// default constants' prediction of the same configuration. Runs whose samples
    /// scatter too much, or whose ratio is implausible, come back apart with the reason
    /// ([`CalibrationRun::check`]).
    fn calibration_runs(
        target: &Target,
        hw: &Hardware,
        base: &Request,
        model: &ModelReport,
        plans: &[PlannedPoint],
    ) -> (Vec<CalibrationRun>, Vec<String>) {
        use strix_run::measure::TestKind;
        let now = calibration::now_unix();
        let mut runs = Vec::new();
        let mut refused = Vec::new();
        for (point, planned) in model.points.iter().zip(plans) {
            let (PointStatus::Measured, Ok(plan)) = (&point.status, &planned.plan) else {
                continue;
            };
            let mut req = Request::pinning(plan, base);
            req.speed = None;
            let Ok(default) = Planner::plan(&target.meta, hw, &req) else {
                continue;
            };
            let speed = |k| point.speed(k).unwrap_or(0.0);
            let samples = |k: TestKind| {
                point
                    .tests
                    .iter()
                    .filter(|t| t.kind == k)
                    .flat_map(|t| t.samples_ts.iter().copied())
                    .collect::<Vec<f64>>()
            };
            let run = CalibrationRun {
                unix_time: now,
                model: model.model.clone(),
                backend: plan.backend,
                plan: point.plan.clone().unwrap_or_default(),
                predicted_tg: default.predicted.tg_tok_s,
                predicted_pp: default.predicted.pp_tok_s,
                measured_tg: speed(TestKind::Tg),
                measured_pp: speed(TestKind::Pp),
            };
            let spread = Spread::of_samples(&samples(TestKind::Tg), &samples(TestKind::Pp));
            match run.check(spread) {
                Ok(()) => runs.push(run),
                Err(why) => refused.push(format!("{} ({}): {why}", model.model, point.label)),
            }
        }
        (runs, refused)
    }

    fn record(hw: &Hardware, runs: Vec<CalibrationRun>, mut refused: Vec<String>) -> String {
        let not_recorded = |refused: &[String]| {
            if refused.is_empty() {
                String::new()
            } else {
                format!("; not recorded: {}", refused.join("; "))
            }
        };
        if runs.is_empty() {
            return if refused.is_empty() {
                "nothing measured, nothing recorded".into()
            } else {
                format!("nothing recorded{}", not_recorded(&refused))
            };
        }
        let path = match default_path() {
            Ok(p) => p,
            Err(e) => return format!("not recorded: {e}"),
        };
        let mut file = match CalibrationFile::load(&path) {
            Ok(f) => f,
            Err(e) => return format!("not recorded: {e}"),
        };
        let key = machine_key(hw);
        let offered = runs.len();
        for (run, why) in file.record(&key, runs) {
            refused.push(format!("{} ({}): {why}", run.model, run.plan));
        }
        let n = offered.saturating_sub(refused.len());
        if n == 0 {
            return format!("nothing recorded{}", not_recorded(&refused));
        }
        if let Err(e) = file.save(&path) {
            return format!("not recorded: {e}");
        }
        let corrections = file
            .machine(&key)
            .map(|m| {
                m.corrections
                    .iter()
                    .map(|(b, c)| {
                        format!(
                            "{b}: generation x{:.3}, prompt x{:.3} over {} runs",
                            c.tg_scale, c.pp_scale, c.runs
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        format!(
            "recorded {n} run{} in {} ({corrections}); plan, run and bench now use it{}",
            if n == 1 { "" } else { "s" },
            path.display(),
            not_recorded(&refused)
        )
    }

    pub fn run(args: &BenchArgs, inputs: Inputs) -> anyhow::Result<()> {
        let Inputs {
            planning:
                Planning {
                    hw,
                    mut request,
                    speed_source: source,
                    ..
                },
            sweep,
            targets,
            missing,
            economics,
            format,
        } = inputs;
        // llama-bench's context: the test's tokens.
        if request.n_ctx.is_none() {
            request.n_ctx = Some((args.n_prompt + args.n_gen).max(args.n_prompt.max(1)));
        }
        INTERRUPT.store(false, Ordering::SeqCst);
        let _ = ctrlc::set_handler(|| INTERRUPT.store(true, Ordering::SeqCst));

        // Plan everything first: the ladder stops at the first model that cannot fit.
        let mut stopped = None;
        let mut planned: Vec<(Target, Vec<PlannedPoint>)> = Vec::new();
        for t in targets {
            let points = plan_points(&t.meta, &hw, &request, sweep.as_ref());
            let auto = points.iter().find(|p| p.is_plan).map(|p| &p.plan);
            if let (Some(Err(reason)), None, None) = (auto, &args.ladder, &sweep) {
                bail!("no plan to measure: {reason}");
            }
            if let (Some(Err(reason)), true) = (auto, args.ladder.is_some()) {
                stopped = Some(format!(
                    "{} cannot fit ({reason}); the ladder stops here",
                    t.meta
                        .name
                        .clone()
                        .unwrap_or_else(|| t.path.display().to_string())
                ));
                break;
            }
            planned.push((t, points));
        }
        let total: usize = planned
            .iter()
            .map(|(_, p)| p.iter().filter(|p| p.plan.is_ok()).count())
            .sum();
        let bar = progress(total as u64);
        let measure = MeasureOptions {
            n_prompt: args.n_prompt,
            n_gen: args.n_gen,
            repetitions: args.repetitions,
            warmup: !args.no_warmup,
        };
        let opts = PointsOptions {
            hardware: hw.clone(),
            request: request.clone(),
            measure,
            // Sweep points are measured exactly as pinned; a lone plan may step down.
            max_attempts: if sweep.is_some() { 1 } else { 4 },
        };
        let mut models = Vec::new();
        let mut runs = Vec::new();
        let mut refused = Vec::new();
        for (t, points) in &planned {
            let name = t
                .meta
                .name
                .clone()
                .unwrap_or_else(|| t.path.display().to_string());
            bar.set_message(name.clone());
            let mut on_point = |_: usize, p: &strix_run::measure::PointResult| {
                if p.status != PointStatus::Measured && p.config.is_none() {
                    return;
                }
                bar.inc(1);
                let tg = p.speed(strix_run::measure::TestKind::Tg);
                let pp = p.speed(strix_run::measure::TestKind::Pp);
                let line = format!(
                    "{name}: {}{}: pp {} tg {}",
                    p.label,
                    if p.is_plan { " (plan)" } else { "" },
                    pp.map_or("-".into(), |v| format!("{v:.1}")),
                    tg.map_or("-".into(), |v| format!("{v:.1}"))
                );
                // Without a terminal (a log, a script) each point is one line on stderr.
                if bar.is_hidden() {
                    eprintln!("bench: {line}");
                } else {
                    bar.println(line);
                }
            };
            let mut results = bench_points(&t.meta, points, &opts, &mut on_point);
            if let Some(e) = &economics {
                for r in &mut results {
                    r.cost_per_mtok = r
                        .speed(strix_run::measure::TestKind::Tg)
                        .and_then(|tg| e.cost_per_mtok(tg));
                }
            }
            let mut m = ModelReport {
                model: name,
                path: t.path.display().to_string(),
                file_bytes: t.meta.file_bytes,
                points: results,
                plan_vs_best: None,
            };
            m.rank();
            let (plausible, implausible) = calibration_runs(t, &hw, &request, &m, points);
            runs.extend(plausible);
            refused.extend(implausible);
            models.push(m);
        }
        bar.finish_and_clear();
        let calibration = if args.planning.plan.no_calibration {
            Some("not recorded (--no-calibration)".to_string())
        } else if !is_this_machine(&hw) {
            Some(
                "not recorded: the machine was described (preset, profile or what-if flags), not detected"
                    .to_string(),
            )
        } else {
            Some(record(&hw, runs, refused))
        };
        let report = BenchReport {
            machine: machine_key(&hw),
            params: BenchParams {
                n_prompt: args.n_prompt,
                n_gen: args.n_gen,
                repetitions: args.repetitions,
            },
            speed: source.to_string(),
            models,
            missing,
            stopped,
            calibration,
            economics,
        };
        super::emit(&report, format)?;
        if INTERRUPT.load(Ordering::SeqCst) {
            // What was measured is printed above; the rest was skipped as interrupted.
            return Err(crate::cli::Interrupted.into());
        }
        let measured = report
            .models
            .iter()
            .flat_map(|m| &m.points)
            .any(|p| p.status == PointStatus::Measured);
        if !measured {
            bail!(if report.models.is_empty() {
                "nothing was measured: none of the models is on this machine (or the first cannot fit)"
            } else {
                "nothing was measured: every point was skipped or failed (see the reasons above)"
            });
        }
        if let (Some(path), Some(spec)) = (&args.plot, &sweep) {
            let key = spec.dims[0].key;
            strix_run::measure::plot::write_svg(&report, key, path)?;
            eprintln!("plot: {}", path.display());
        }
        Ok(())
    }
}

#[cfg(not(feature = "runtime"))]
mod engine {
    use super::*;

    pub fn run(_: &BenchArgs, _: Inputs) -> anyhow::Result<()> {
        let _ = super::emit;
        bail!("this strix-run was built without llama.cpp (--no-default-features): `bench` measures through llama.cpp and cannot run; `strix-run plan` predicts")
    }
}
