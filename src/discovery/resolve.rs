//! From what the user typed to one model.
//!
//! In order:
//! 1. a file that exists is that file (any shard: [`ModelMeta`] finds the set);
//!    something that looks like a path (starts with `/`, `\`, `.` or `~`, or ends in
//!    `.gguf`) and is not a file is an error naming it; `Qwen/Qwen3-8B-GGUF` is a
//!    name (a Hugging Face repository), not a path;
//! 2. an alias ([`super::find_alias`]) picks the local files whose metadata match it;
//!    none: the alias's known shape ([`Resolved::KnownShapeOnly`]) for a what-if plan;
//! 3. anything else is a case-insensitive fragment of a file's display name, file name,
//!    `general.name`, `general.basename` or `general.size_label` (also compared
//!    without punctuation, so `qwen3 8b` finds `Qwen3-8B`).
//!
//! Several matches are ordered, and the first one taken, by: root priority
//! ([`DiscoveryConfig::roots`]: `--models-dir` first, Ollama last), then match quality
//! (an exact size label before a near one; for fragments, a whole-name match before a
//! partial one), then display name, then path. The others are returned as
//! `candidates`.

use super::aliases::{find_alias, normalize, Alias};
use super::candidate::{self, Opened};
use super::{discover, Discovery, DiscoveryConfig, DiscoveryError, FoundModel, SearchedRoot};
use crate::model::presets::Preset;
use crate::model::ModelMeta;
use std::path::{Path, PathBuf};

/// What a query resolved to.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// A file on this machine.
    Local {
        /// The chosen model.
        model: Box<FoundModel>,
        /// The other matches, in order (for "also found: ...").
        candidates: Vec<PathBuf>,
    },
    /// A known model that is not on this machine: plan its shape before downloading
    /// ([`super::whatif::preset_meta`]).
    KnownShapeOnly {
        /// The alias typed.
        alias: String,
        /// The synthetic preset with its shape.
        preset: &'static Preset,
        /// Where discovery looked.
        searched: Vec<SearchedRoot>,
    },
}

/// Resolves `query` against the machine described by `cfg` (runs [`discover`] unless
/// the query is a path).
pub fn resolve(query: &str, cfg: &DiscoveryConfig) -> Result<Resolved, DiscoveryError> {
    if let Some(path) = as_path(query, cfg)? {
        return open_path(&path);
    }
    resolve_in(query, &discover(cfg))
}

/// Resolves an alias or name fragment against an existing [`Discovery`] (paths are
/// not considered: use [`resolve`]).
pub fn resolve_in(query: &str, found: &Discovery) -> Result<Resolved, DiscoveryError> {
    let query = query.trim();
    if let Some(alias) = find_alias(query) {
        return by_alias(query, &alias, found);
    }
    let mut matches: Vec<(&FoundModel, u8)> = found
        .models
        .iter()
        .filter_map(|m| fragment_match(query, m).map(|q| (m, q)))
        .collect();
    sort_matches(&mut matches);
    local(matches).ok_or_else(|| DiscoveryError::NotFound {
        query: query.to_string(),
        searched: found.searched.clone(),
    })
}

fn by_alias(query: &str, alias: &Alias, found: &Discovery) -> Result<Resolved, DiscoveryError> {
    let mut matches: Vec<(&FoundModel, u8)> = found
        .models
        .iter()
        .filter_map(|m| alias.matches(&m.meta).map(|q| (m, q as u8)))
        .collect();
    sort_matches(&mut matches);
    if let Some(resolved) = local(matches) {
        return Ok(resolved);
    }
    match alias.preset() {
        Some(preset) => Ok(Resolved::KnownShapeOnly {
            alias: query.to_string(),
            preset,
            searched: found.searched.clone(),
        }),
        None => Err(DiscoveryError::AliasWithoutShape {
            alias: query.to_string(),
            searched: found.searched.clone(),
        }),
    }
}

fn sort_matches(matches: &mut [(&FoundModel, u8)]) {
    matches.sort_by(|(a, qa), (b, qb)| {
        (a.root_index, qa, &a.display_name, &a.path).cmp(&(
            b.root_index,
            qb,
            &b.display_name,
            &b.path,
        ))
    });
}

fn local(matches: Vec<(&FoundModel, u8)>) -> Option<Resolved> {
    let mut iter = matches.into_iter().map(|(m, _)| m);
    let first = iter.next()?;
    Some(Resolved::Local {
        model: Box::new(first.clone()),
        candidates: iter.map(|m| m.path.clone()).collect(),
    })
}

/// 0: the query is a whole name (file stem, display name, `general.name`); 1: a part
/// of one of the names; `None`: no match.
fn fragment_match(query: &str, m: &FoundModel) -> Option<u8> {
    let q = query.to_lowercase();
    let qn = normalize(query);
    let stem = m
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let whole = [
        Some(m.display_name.as_str()),
        Some(stem.as_str()),
        m.meta.name.as_deref(),
    ];
    if whole
        .iter()
        .flatten()
        .any(|n| n.eq_ignore_ascii_case(query))
    {
        return Some(0);
    }
    let names: Vec<&str> = whole
        .into_iter()
        .chain([m.meta.basename.as_deref(), m.meta.size_label.as_deref()])
        .flatten()
        .collect();
    // Several fields together, so that "qwen3 8b" finds basename Qwen3 + label 8B.
    let joined = names.join(" ");
    let hit =
        joined.to_lowercase().contains(&q) || (!qn.is_empty() && normalize(&joined).contains(&qn));
    hit.then_some(1)
}

/// The query as a path: `Some` when it names a file; an error when it looks like a
/// path but is not a file; `None` when it is a name to look up.
fn as_path(query: &str, cfg: &DiscoveryConfig) -> Result<Option<PathBuf>, DiscoveryError> {
    let trimmed = query.trim();
    let path = cfg.expand_home(trimmed);
    let looks_like_path = trimmed.starts_with(['/', '\\', '.', '~'])
        || trimmed.to_ascii_lowercase().ends_with(".gguf");
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(Some(path)),
        _ if !looks_like_path => Ok(None),
        Ok(meta) if meta.is_dir() => Err(DiscoveryError::NotAFile { path }),
        // A FIFO, socket or device: named as what it is (opening a FIFO would block).
        Ok(_) => Err(crate::files::check_regular(&path)
            .err()
            .map_or(DiscoveryError::PathNotFound { path }, DiscoveryError::File)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(DiscoveryError::PathNotFound { path })
        }
        // A symbolic link loop, a permission error: said as it is.
        Err(e) => Err(DiscoveryError::File(crate::files::FileError::from_io(
            &path,
            "cannot read",
            e,
        ))),
    }
}

fn open_path(path: &Path) -> Result<Resolved, DiscoveryError> {
    let meta: ModelMeta = match candidate::open(path)? {
        Opened::Model(meta) => *meta,
        Opened::NotAModel(reason) => {
            return Err(DiscoveryError::NotAModel {
                path: path.to_path_buf(),
                reason,
            })
        }
    };
    let display_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    Ok(Resolved::Local {
        model: Box::new(FoundModel {
            path: path.to_path_buf(),
            source_label: "path",
            display_name,
            meta,
            root_index: usize::MAX,
        }),
        candidates: Vec::new(),
    })
}
