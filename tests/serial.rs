//! The tests that use llama.cpp's process-wide state, as a test binary of their own
//! (feature `runtime`) whose tests run one at a time: each takes [`one_at_a_time`]
//! first.
//! - `runtime_interrupt` sets `session::INTERRUPT`, which stops any generation in the
//!   process.
//! - `runtime_oracle` and `memory_accuracy` call llama.cpp's memory oracle, which swaps
//!   llama.cpp's global logger while it runs: no model may load on another thread
//!   meanwhile (`src/runtime/load.rs`), and the integration tests load models.
//! - `bench_recorded` measures speeds that must be plausible to be recorded, which the
//!   integration tests running beside it on the same cores can prevent.
//!
//! The other tests are in `integration.rs`.

mod support;

mod bench_recorded;
mod memory_accuracy;
mod runtime_interrupt;
mod runtime_oracle;

use std::sync::{Mutex, MutexGuard};

/// Held by each test of this binary for its whole run.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    // A test that failed while holding it leaves it poisoned; the next one goes on.
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}
