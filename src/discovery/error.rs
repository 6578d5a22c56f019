//! Why a query resolved to no model. Every message says what was tried.

use super::aliases::alias_names;
use super::SearchedRoot;
use crate::gguf::GgufError;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Why [`super::resolve`] found no model.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The query is a path, and nothing is there.
    #[error("{}: no such file. Check the path, or give an alias ({}) or part of a model's name.", .path.display(), alias_list())]
    PathNotFound {
        /// the path as expanded
        path: PathBuf,
    },
    /// The query is a folder, not a model file.
    #[error("{}: is a folder, not a .gguf file. To search it, pass --models-dir {} and a model name.", .path.display(), .path.display())]
    NotAFile {
        /// the folder
        path: PathBuf,
    },
    /// The file is a GGUF but not a model to run.
    #[error("{}: {reason}", .path.display())]
    NotAModel {
        /// the file
        path: PathBuf,
        /// what it is
        reason: String,
    },
    /// The file could not be read as a model.
    #[error(transparent)]
    Unreadable(#[from] GgufError),
    /// The path names something that is not a readable regular file.
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    /// An alias whose model is not on this machine and whose shape strix-run does not
    /// know, so there is no what-if plan either.
    #[error("no local file matches alias '{alias}', and strix-run has no built-in shape for it, so it cannot plan it before download.{}", searched_list(.searched))]
    AliasWithoutShape {
        /// the alias
        alias: String,
        /// where discovery looked
        searched: Vec<SearchedRoot>,
    },
    /// Nothing matches the query.
    #[error("no model matches '{query}'.{}\nknown aliases: {}", searched_list(.searched), alias_list())]
    NotFound {
        /// what the user typed
        query: String,
        /// where discovery looked
        searched: Vec<SearchedRoot>,
    },
}

fn alias_list() -> String {
    alias_names().join(", ")
}

/// "looked in:" and one line per root.
pub(crate) fn searched_list(searched: &[SearchedRoot]) -> String {
    let mut out = String::from("\nlooked in:");
    if searched.is_empty() {
        out.push_str(" nowhere (no --models-dir, $STRIX_MODELS or $HOME)");
    }
    for root in searched {
        let state = if root.exists {
            format!("{} GGUF files", root.files_seen)
        } else {
            "does not exist".to_string()
        };
        let _ = write!(
            out,
            "\n  {:<19} {} ({state})",
            root.label,
            root.path.display()
        );
    }
    out
}
