//! The integration tests and the planner tests as one test binary, each file a module:
//! `cargo test --test integration cli::` runs `tests/cli.rs`. One binary links llama.cpp's
//! static libraries once, where a binary per file linked them once per file.
//!
//! Cargo.toml sets `autotests = false`, so a new file in `tests/` is compiled only once
//! a `mod` line here (or in `serial.rs`) names it. Two kinds of test need a process of
//! their own and so another binary:
//! - tests that use llama.cpp's process-wide state in a way the other tests here would
//!   see, in `serial.rs` (one test at a time): the interrupt flag, and the memory
//!   oracle, which swaps llama.cpp's global logger while the tests here load models;
//! - `vulkan.rs` (feature `vulkan`), which sets `GGML_VK_VISIBLE_DEVICES` before
//!   llama.cpp initialises its backends.
//!
//! Shared helpers are in `support/`, used as `crate::support`.

mod support;

mod bench;
mod cli;
mod discovery;
mod gguf;
mod gpu_kit;
mod gpu_plan_check;
mod hardening;
mod hostile_models;
#[cfg(feature = "runtime")]
mod llama_oracle;
#[cfg(feature = "runtime")]
mod llama_tools;
#[path = "../planner-tests/mod.rs"]
mod planner;
#[cfg(feature = "runtime")]
mod runtime_chat;
#[cfg(feature = "runtime")]
mod runtime_generate;
#[cfg(feature = "runtime")]
mod runtime_load;
#[cfg(feature = "runtime")]
mod serve;
mod synth;
#[cfg(feature = "runtime")]
mod synth_llama;
