//! The planner against measurements, as module `planner` of the integration test binary
//! (`tests/integration.rs`; `cargo test --test integration planner::` runs them):
//! - `speed_fit` and `seed_table`: the seed's measurements;
//! - `cuda_fit`: the CUDA constants against the committed GPU sweep (measurements/results/).

mod common;

mod cuda_fit;
mod seed_table;
mod serving;
mod speed_fit;
