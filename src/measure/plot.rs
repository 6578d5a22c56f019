//! `--plot out.svg`: tokens per second against the first swept parameter, one series
//! per combination of the other swept parameters (and per model), generation on the
//! left and prompt processing on the right, the plan's point ringed in red.
//!
//! Drawn with plotters' SVG backend (text as SVG `<text>`, so no font library is
//! needed).

use super::report::{BenchReport, ModelReport, PointResult, TestKind};
use super::sweep::SweepKey;
use plotters::prelude::*;
use std::path::Path;

/// Why the plot could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Only SVG is supported.
    #[error("--plot writes SVG: name the file *.svg (got {0})")]
    Format(String),
    /// Nothing was measured.
    #[error("nothing to plot: no point was measured")]
    Empty,
    /// The file cannot be written.
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    /// plotters failed.
    #[error("drawing {path}: {message}")]
    Draw {
        /// The file.
        path: String,
        /// plotters' error.
        message: String,
    },
}

/// One line of the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// (x, tok/s), sorted by x.
    pub points: Vec<(f64, f64)>,
}

/// What the plot shows for one test: the series and the plan's points.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotData {
    /// The lines.
    pub series: Vec<Series>,
    /// The plan's point(s) (one per model).
    pub plan: Vec<(f64, f64)>,
}

fn series_name(model: &ModelReport, many_models: bool, p: &PointResult, x_key: SweepKey) -> String {
    let rest: Vec<String> = match &p.grid {
        Some(g) => {
            g.0.iter()
                .filter(|(k, _)| *k != x_key)
                .map(|(k, v)| format!("{k}={v}"))
                .collect()
        }
        None => vec![p.label.clone()],
    };
    let rest = if rest.is_empty() {
        "measured".to_string()
    } else {
        rest.join(" ")
    };
    if many_models {
        format!("{}: {rest}", model.model)
    } else {
        rest
    }
}

/// The data of one test's panel: `x_key` on the x axis.
pub fn plot_data(report: &BenchReport, x_key: SweepKey, kind: TestKind) -> PlotData {
    let many = report.models.len() > 1;
    let mut series: Vec<Series> = Vec::new();
    let mut plan = Vec::new();
    for m in &report.models {
        for p in &m.points {
            let (Some(config), Some(y)) = (p.config, p.speed(kind)) else {
                continue;
            };
            let x = config.value(x_key).as_f64();
            if p.is_plan {
                plan.push((x, y));
            }
            let name = series_name(m, many, p, x_key);
            match series.iter_mut().find(|s| s.name == name) {
                Some(s) => s.points.push((x, y)),
                None => series.push(Series {
                    name,
                    points: vec![(x, y)],
                }),
            }
        }
    }
    for s in &mut series {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    PlotData { series, plan }
}

fn draw_err(path: &Path, e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Checks, before anything is measured, that `path` names an SVG file that can be
/// written (its directory exists; nothing but a regular file is in the way).
pub fn check_path(path: &Path) -> Result<(), PlotError> {
    let is_svg = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    if !is_svg {
        return Err(PlotError::Format(path.display().to_string()));
    }
    crate::files::check_target(path, crate::files::Existing::Replace)?;
    Ok(())
}

/// Writes the SVG plot of `report` with `x_key` on the x axis (drawn in memory, then
/// written through a temporary file renamed into place).
pub fn write_svg(report: &BenchReport, x_key: SweepKey, path: &Path) -> Result<(), PlotError> {
    check_path(path)?;
    let mut svg = String::new();
    draw_svg(report, x_key, path, &mut svg)?;
    crate::files::write_atomically(path, crate::files::Existing::Replace, |f| {
        std::io::Write::write_all(f, svg.as_bytes())
    })?;
    Ok(())
}

fn draw_svg(
    report: &BenchReport,
    x_key: SweepKey,
    path: &Path,
    svg: &mut String,
) -> Result<(), PlotError> {
    let panels = [
        (TestKind::Tg, "generation", report.params.n_gen),
        (TestKind::Pp, "prompt processing", report.params.n_prompt),
    ];
    let data: Vec<(PlotData, String)> = panels
        .iter()
        .filter(|(_, _, n)| *n > 0)
        .map(|&(kind, what, n)| {
            let test = match kind {
                TestKind::Tg => format!("tg{n}"),
                TestKind::Pp => format!("pp{n}"),
            };
            (plot_data(report, x_key, kind), format!("{what} ({test})"))
        })
        .filter(|(d, _)| !d.series.is_empty())
        .collect();
    if data.is_empty() {
        return Err(PlotError::Empty);
    }
    let width = 640 * data.len() as u32;
    let root = SVGBackend::with_string(svg, (width, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    let areas = root.split_evenly((1, data.len()));
    for (area, (d, title)) in areas.iter().zip(&data) {
        let xs = d.series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
        let (mut x0, mut x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
        if x1 - x0 < 1e-9 {
            x0 -= 1.0;
            x1 += 1.0;
        }
        let pad = (x1 - x0) * 0.05;
        let ymax = d
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0f64, f64::max)
            * 1.15;
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{title} tok/s vs {x_key}"), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((x0 - pad)..(x1 + pad), 0.0..ymax.max(1.0))
            .map_err(|e| draw_err(path, e))?;
        chart
            .configure_mesh()
            .x_desc(x_key.name())
            .y_desc("tok/s")
            .draw()
            .map_err(|e| draw_err(path, e))?;
        for (i, s) in d.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))
                .map_err(|e| draw_err(path, e))?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| draw_err(path, e))?;
        }
        chart
            .draw_series(
                d.plan
                    .iter()
                    .map(|&p| Circle::new(p, 9, RED.stroke_width(3))),
            )
            .map_err(|e| draw_err(path, e))?
            .label("plan (planner's choice)")
            .legend(|(x, y)| Circle::new((x + 10, y), 6, RED.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| draw_err(path, e))?;
    }
    root.present().map_err(|e| draw_err(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::report::tests::sample_report;

    #[test]
    fn series_per_other_dimension_and_the_plan_point() {
        let r = sample_report();
        let d = plot_data(&r, SweepKey::Threads, TestKind::Tg);
        // The sample's points have no grid: each label is its own series.
        assert_eq!(d.series.len(), 2);
        assert_eq!(d.plan, vec![(2.0, 62.0)]);
    }

    #[test]
    fn writes_an_svg_with_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.svg");
        write_svg(&sample_report(), SweepKey::Threads, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
        assert!(svg.contains("<text"), "no text elements");
        assert!(svg.contains("tok/s vs threads"), "no caption");
        assert!(svg.contains("plan (planner"), "no legend");
        assert!(svg.contains("<circle"), "no points");
        let png = dir.path().join("p.png");
        assert!(matches!(
            write_svg(&sample_report(), SweepKey::Threads, &png),
            Err(PlotError::Format(_))
        ));
    }
}
