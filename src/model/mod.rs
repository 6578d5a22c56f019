//! What a model needs: the summary the planner works from, read from GGUF headers,
//! and synthetic models with the shapes of real ones.

mod meta;
pub mod presets;
pub mod synth;

pub use meta::{BlockKind, BlockMeta, ModelMeta, NonBlockBytes, RecurrentMeta};
