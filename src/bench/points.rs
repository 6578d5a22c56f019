//! Which configurations a bench measures: the planner's own plan, or every point of a
//! sweep grid pinned in turn, each asked of the planner first so that points it proves
//! will not fit are skipped with its reason.

use super::report::PointConfig;
use super::sweep::{GridPoint, SweepSpec};
use crate::hardware::Hardware;
use crate::model::ModelMeta;
use crate::planner::{Plan, Planner, Request};

/// A configuration to measure (or skip).
#[derive(Debug, Clone)]
pub struct PlannedPoint {
    /// `plan` for the planner's choice, else the grid point (`threads=4 ubatch=256`).
    pub label: String,
    /// The grid point, when from a sweep.
    pub grid: Option<GridPoint>,
    /// Whether this is the configuration the planner chooses on its own.
    pub is_plan: bool,
    /// The plan with this point's pins, or why the planner refused it.
    pub plan: Result<Plan, String>,
}

/// The label of the planner's own choice.
pub const PLAN_LABEL: &str = "plan";

/// The points of a bench of `model`: without a sweep, the planner's plan for `base`;
/// with one, every grid point (its values pinned over `base`), the one equal to the
/// planner's own plan marked, and that plan appended when no grid point equals it.
pub fn plan_points(
    model: &ModelMeta,
    hw: &Hardware,
    base: &Request,
    sweep: Option<&SweepSpec>,
) -> Vec<PlannedPoint> {
    let auto = Planner::plan(model, hw, base).map_err(|e| e.to_string());
    let Some(sweep) = sweep else {
        return vec![PlannedPoint {
            label: PLAN_LABEL.to_string(),
            grid: None,
            is_plan: true,
            plan: auto,
        }];
    };
    let auto_config = auto.as_ref().ok().map(PointConfig::of);
    let mut out: Vec<PlannedPoint> = sweep
        .points()
        .into_iter()
        .map(|gp| {
            let mut req = base.clone();
            gp.apply(&mut req);
            let plan = Planner::plan(model, hw, &req).map_err(|e| e.to_string());
            let is_plan = match (&plan, &auto_config) {
                (Ok(p), Some(a)) => PointConfig::of(p) == *a,
                _ => false,
            };
            PlannedPoint {
                label: gp.to_string(),
                grid: Some(gp),
                is_plan,
                plan,
            }
        })
        .collect();
    // Only one point carries the mark (the first equal one).
    let mut seen = false;
    for p in &mut out {
        if p.is_plan {
            p.is_plan = !seen;
            seen = true;
        }
    }
    if !seen {
        out.push(PlannedPoint {
            label: PLAN_LABEL.to_string(),
            grid: None,
            is_plan: true,
            plan: auto,
        });
    }
    out
}
