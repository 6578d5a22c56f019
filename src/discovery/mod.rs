//! Model discovery and resolution: find the GGUF models already on this machine, and
//! turn what the user typed (a path, an alias such as `8b` or `397b`, or a name
//! fragment) into one of them, or into a known shape to plan for before downloading.
//!
//! Pure Rust, headers only: every candidate is summarized from its GGUF header with
//! [`ModelMeta`], and matched on its metadata (`general.architecture`,
//! `general.size_label`, `general.basename`, `general.name`), not only its file name.
//!
//! - [`DiscoveryConfig`] says where to look ([`DiscoveryConfig::roots`], in priority
//!   order);
//! - [`discover`] lists what is there ([`Discovery`]);
//! - [`resolve`] picks one model for a query ([`Resolved`], [`DiscoveryError`]);
//! - [`ALIASES`] are the short names, and [`whatif::preset_meta`] builds a preset's
//!   summary in memory for the what-if plan.

mod aliases;
mod candidate;
mod config;
mod error;
mod naming;
mod ollama;
mod resolve;
mod walk;
pub mod whatif;

pub use aliases::{find_alias, Alias, MatchQuality, ALIASES};
pub use config::{DiscoveryConfig, RootKind, SearchRoot, DEFAULT_MAX_DEPTH};
pub use error::DiscoveryError;
pub use resolve::{resolve, resolve_in, Resolved};

use crate::model::ModelMeta;
use serde::Serialize;
use std::collections::HashSet;
use std::path::PathBuf;

/// A model found on disk.
#[derive(Debug, Clone, Serialize)]
pub struct FoundModel {
    /// The file to open: the first shard of a split model, a Hugging Face snapshot
    /// link, or an Ollama blob.
    pub path: PathBuf,
    /// The label of the root it was found in (see [`SearchRoot::label`]), or `path`
    /// when the user named the file.
    pub source_label: &'static str,
    /// A name for listings: `org/repo/file.gguf` for Hugging Face, `model:tag` for
    /// Ollama, the path below the root otherwise.
    pub display_name: String,
    /// Its header summary (all shards).
    pub meta: ModelMeta,
    /// Position of its root in [`DiscoveryConfig::roots`] (lower is searched first);
    /// `usize::MAX` for a path the user gave.
    #[serde(skip)]
    pub root_index: usize,
}

/// One root as searched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchedRoot {
    /// Where the path came from (`--models-dir`, `~/models`, `Ollama`, ...).
    pub label: &'static str,
    /// The folder.
    pub path: PathBuf,
    /// Whether it exists.
    pub exists: bool,
    /// GGUF files (for Ollama: manifests) seen below it.
    pub files_seen: usize,
}

/// A GGUF file that was found but is not a model to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedFile {
    /// The file.
    pub path: PathBuf,
    /// Why it is not listed.
    pub reason: String,
}

/// What [`discover`] found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Discovery {
    /// Models, in root priority order, then by name within a root. Each file appears
    /// once, under the first root that holds it.
    pub models: Vec<FoundModel>,
    /// Every root, searched or not (missing).
    pub searched: Vec<SearchedRoot>,
    /// GGUF files that are not models (projectors, vocabularies, adapters).
    pub skipped: Vec<SkippedFile>,
    /// Files that could not be read or parsed, folders that could not be listed.
    pub problems: Vec<String>,
}

/// Searches every root of `cfg` for GGUF models. Never fails: whatever cannot be
/// read becomes a line in [`Discovery::problems`].
pub fn discover(cfg: &DiscoveryConfig) -> Discovery {
    let mut out = Discovery::default();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    for (root_index, root) in cfg.roots().into_iter().enumerate() {
        let exists = root.path.is_dir();
        let mut searched = SearchedRoot {
            label: root.label,
            path: root.path.clone(),
            exists,
            files_seen: 0,
        };
        if exists {
            let files = root_files(&root, cfg.max_depth, &mut out.problems);
            searched.files_seen = files.len();
            for (path, display_name) in files {
                // The same file through two roots or two links: keep the first.
                let real = path.canonicalize().unwrap_or_else(|_| path.clone());
                if candidate::is_covered_shard(&path) || !seen.insert(real) {
                    continue;
                }
                match candidate::open(&path) {
                    Ok(candidate::Opened::Model(meta)) => out.models.push(FoundModel {
                        path,
                        source_label: root.label,
                        display_name,
                        meta: *meta,
                        root_index,
                    }),
                    Ok(candidate::Opened::NotAModel(reason)) => {
                        out.skipped.push(SkippedFile { path, reason })
                    }
                    Err(e) => out.problems.push(e.to_string()),
                }
            }
        }
        out.searched.push(searched);
    }
    out
}

/// The candidate files of one root with their display names.
fn root_files(
    root: &SearchRoot,
    max_depth: usize,
    problems: &mut Vec<String>,
) -> Vec<(PathBuf, String)> {
    match root.kind {
        RootKind::Ollama => {
            let scan = ollama::scan(&root.path, max_depth);
            problems.extend(scan.problems);
            scan.models.into_iter().map(|m| (m.blob, m.name)).collect()
        }
        RootKind::Folder | RootKind::HuggingFace => {
            let walked = walk::walk(&root.path, max_depth, walk::is_gguf_name);
            problems.extend(walked.problems);
            walked
                .files
                .into_iter()
                .map(|f| {
                    let name = naming::display_name(root, &f);
                    (f, name)
                })
                .collect()
        }
    }
}
