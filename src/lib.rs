//! strix-run: llama.cpp with an allocation planner for AMD Strix Halo and other
//! unified-memory machines.
//!
//! Layers, each depending only on the ones before it:
//! [`files`] (reading and writing files safely) → [`gguf`] (file format) → [`model`]
//! (what a model needs) → [`discovery`] (which models are on this machine, and which one
//! the user means) → [`hardware`] (what the machine offers) → [`planner`] (how to place
//! the model) → [`measure`] (what `strix-run bench` measures and how it reports it,
//! without llama.cpp) → `runtime` (llama.cpp, behind the `runtime` feature) → `server`
//! (`strix-run serve`: the HTTP APIs and continuous batching, with the runtime) → the
//! `strix-run` binary (`src/cli`, the only place that knows the command line).
//! `ARCHITECTURE.md` shows where each decision lives.

pub mod discovery;
pub mod files;
pub mod gguf;
pub mod hardware;
pub mod measure;
pub mod model;
pub mod planner;
#[cfg(feature = "runtime")]
pub mod runtime;
#[cfg(feature = "runtime")]
pub mod server;
