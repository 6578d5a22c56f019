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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::whatif::preset_meta;
    use crate::hardware::Backend;
    use crate::model::presets::find_preset;

    fn setup() -> (ModelMeta, Hardware, Request) {
        let meta = preset_meta(find_preset("micro-dense").unwrap()).unwrap();
        let hw = Hardware::preset("strix-halo-128").unwrap();
        let mut req = Request::default();
        req.pinned.backend = Some(Backend::Cpu);
        req.n_ctx = Some(640);
        (meta, hw, req)
    }

    #[test]
    fn without_a_sweep_the_plan_is_the_only_point() {
        let (meta, hw, req) = setup();
        let pts = plan_points(&meta, &hw, &req, None);
        assert_eq!(pts.len(), 1);
        assert!(pts[0].is_plan);
        assert_eq!(pts[0].label, PLAN_LABEL);
        assert!(pts[0].plan.is_ok());
    }

    #[test]
    fn the_grid_point_equal_to_the_plan_is_marked() {
        let (meta, hw, req) = setup();
        // 16 physical cores: the planner's own choice is 16 threads.
        let spec = SweepSpec::parse("threads=8,16").unwrap();
        let pts = plan_points(&meta, &hw, &req, Some(&spec));
        assert_eq!(pts.len(), 2);
        assert!(!pts[0].is_plan);
        assert!(
            pts[1].is_plan,
            "{:?}",
            pts[1].plan.as_ref().map(|p| p.n_threads)
        );
        assert_eq!(pts[0].plan.as_ref().unwrap().n_threads, 8);
    }

    #[test]
    fn the_plan_is_appended_when_off_the_grid_and_impossible_points_carry_the_reason() {
        let (meta, hw, req) = setup();
        let spec = SweepSpec::parse("threads=4,999").unwrap();
        let pts = plan_points(&meta, &hw, &req, Some(&spec));
        assert_eq!(pts.len(), 3);
        assert!(pts.iter().filter(|p| p.is_plan).count() == 1 && pts[2].is_plan);
        assert_eq!(pts[2].label, PLAN_LABEL);
        assert_eq!(pts[2].plan.as_ref().unwrap().n_threads, 16);
        let reason = pts[1].plan.as_ref().unwrap_err();
        assert!(reason.contains("--threads 999"), "{reason}");
    }
}
