//! strix-run: llama.cpp with an allocation planner for AMD Strix Halo and other
//! unified-memory machines.
//!
//! Layers, each depending only on the ones before it:
//! [`gguf`] (file format) → [`model`] (what a model needs) → [`discovery`] (which
//! models are on this machine, and which one the user means) → [`hardware`] (what the
//! machine offers) → [`planner`] (how to place the model) → [`bench`](mod@bench) (what to
//! measure and how to report it, without llama.cpp) → `runtime` (llama.cpp, behind the
//! `runtime` feature) → the `strix-run` binary.

pub mod bench;
pub mod discovery;
pub mod gguf;
pub mod hardware;
pub mod model;
pub mod planner;
#[cfg(feature = "runtime")]
pub mod runtime;
