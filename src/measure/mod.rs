//! `strix-run bench` without llama.cpp: which configurations to measure ([`points`],
//! [`sweep`]), statistics ([`stats`]), economics ([`economics`]), the report and its
//! formats ([`report`]) and the plot ([`plot`]). The measuring itself is
//! `runtime::measure` (feature `runtime`); the calibration it feeds is
//! [`crate::planner::calibration`].

pub mod economics;
pub mod plot;
pub mod points;
pub mod report;
pub mod stats;
pub mod sweep;

pub use economics::{CostPerMtok, Economics};
pub use points::{plan_points, PlannedPoint};
pub use report::{BenchParams, BenchReport, ModelReport, PointResult, PointStatus, TestKind};
pub use stats::Samples;
pub use sweep::{SweepError, SweepKey, SweepSpec};
