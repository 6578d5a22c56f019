//! Planning for serving: how many slots (parallel sequences) to give a server.
//!
//! Each slot holds its own context, so the plan budgets KV and compute for
//! `slots × per-slot context`. More slots raise the aggregate generation throughput
//! (a batched decode step reads the weights once for every busy slot:
//! [`super::speed::Concurrency`]) until compute dominates, and each stream gets slower.
//! [`choose_slots`] plans 1, 2, ... slots and keeps the count with the highest
//! predicted aggregate throughput among those that fit the memory budgets and leave one
//! stream at least [`MIN_STREAM_SHARE`] of the single-stream speed (of the one-slot
//! plan): a server that agents use should not make each of them wait twice as long.

use super::{Plan, PlanError, Planner, Request};
use crate::hardware::Hardware;
use crate::model::ModelMeta;
use serde::Serialize;

/// The least share of the single-stream generation speed one stream keeps when all
/// slots are busy.
pub const MIN_STREAM_SHARE: f64 = 0.5;

/// The most slots `auto` considers (llama-server's default is 4; agents rarely need
/// more from one box, and each slot costs a context's KV).
pub const MAX_AUTO_SLOTS: u32 = 16;

/// One slot count that was considered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlotOption {
    /// Slots.
    pub slots: u32,
    /// Predicted aggregate generation with all busy (None: did not fit).
    pub aggregate_tg_tok_s: Option<f64>,
    /// Predicted speed of one stream then.
    pub per_stream_tg_tok_s: Option<f64>,
    /// Why it was not chosen (or "chosen").
    pub verdict: String,
}

/// The slot count chosen and its plan.
#[derive(Debug, Clone, Serialize)]
pub struct SlotChoice {
    /// Slots.
    pub slots: u32,
    /// The plan for them.
    pub plan: Plan,
    /// Every count considered.
    pub considered: Vec<SlotOption>,
}

/// Plans `slots` slots of `slot_ctx` tokens each.
pub fn plan_slots(
    model: &ModelMeta,
    hardware: &Hardware,
    request: &Request,
    slots: u32,
    slot_ctx: u32,
) -> Result<Plan, PlanError> {
    let mut req = request.clone();
    req.n_seq = Some(slots.max(1));
    req.n_ctx = Some(slot_ctx.max(1).saturating_mul(slots.max(1)));
    Planner::plan(model, hardware, &req)
}

/// Chooses the slot count (see the module docs). Fails only when one slot does not fit.
pub fn choose_slots(
    model: &ModelMeta,
    hardware: &Hardware,
    request: &Request,
    slot_ctx: u32,
) -> Result<SlotChoice, PlanError> {
    let single = plan_slots(model, hardware, request, 1, slot_ctx)?;
    let single_tg = single.predicted.tg_tok_s;
    let mut considered = vec![SlotOption {
        slots: 1,
        aggregate_tg_tok_s: Some(single_tg),
        per_stream_tg_tok_s: Some(single_tg),
        verdict: String::new(),
    }];
    let mut best: (u32, f64, Plan) = (1, single_tg, single);
    for slots in 2..=MAX_AUTO_SLOTS {
        let plan = match plan_slots(model, hardware, request, slots, slot_ctx) {
            Ok(p) => p,
            Err(e) => {
                considered.push(SlotOption {
                    slots,
                    aggregate_tg_tok_s: None,
                    per_stream_tg_tok_s: None,
                    verdict: format!("does not fit: {e}"),
                });
                break;
            }
        };
        let c = plan.predicted.concurrent;
        let mut option = SlotOption {
            slots,
            aggregate_tg_tok_s: Some(c.aggregate_tg_tok_s),
            per_stream_tg_tok_s: Some(c.per_stream_tg_tok_s),
            verdict: String::new(),
        };
        if c.per_stream_tg_tok_s < MIN_STREAM_SHARE * single_tg {
            option.verdict = format!(
                "one stream would get {:.1} tok/s, under {:.0}% of the single-stream {:.1}",
                c.per_stream_tg_tok_s,
                MIN_STREAM_SHARE * 100.0,
                single_tg
            );
            considered.push(option);
            // Each further slot is slower per stream still.
            break;
        }
        if c.aggregate_tg_tok_s > best.1 {
            best = (slots, c.aggregate_tg_tok_s, plan);
        } else {
            option.verdict = format!(
                "{:.1} tok/s together is no more than {} slots give",
                c.aggregate_tg_tok_s, best.0
            );
        }
        considered.push(option);
    }
    for o in &mut considered {
        if o.slots == best.0 {
            o.verdict = "chosen".into();
        } else if o.verdict.is_empty() {
            o.verdict = format!("{} slots give more together", best.0);
        }
    }
    Ok(SlotChoice {
        slots: best.0,
        plan: best.2,
        considered,
    })
}
