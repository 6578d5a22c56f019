//! A bounded, loop-safe walk that collects files below a folder.
//!
//! Symlinks are followed (Hugging Face snapshots are symlinks into `blobs/`, and users
//! link model folders around), each real folder is entered once (so a link back up
//! cannot loop), hidden folders are skipped, and an unreadable folder becomes a
//! problem message instead of an error.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Files found below a root, sorted, and what could not be read.
#[derive(Debug, Default)]
pub(crate) struct Walked {
    /// Files that passed the filter, sorted by path.
    pub files: Vec<PathBuf>,
    /// Folders or links that could not be read.
    pub problems: Vec<String>,
}

/// Walks `root` up to `max_depth` folders deep, keeping files for which `keep(name)`
/// is true. `root` itself must exist (the caller checks).
pub(crate) fn walk(root: &Path, max_depth: usize, keep: impl Fn(&str) -> bool) -> Walked {
    let mut out = Walked::default();
    let mut visited: HashSet<PathBuf> = HashSet::new();
    let mut stack: Vec<(PathBuf, usize)> = vec![(root.to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let real = match dir.canonicalize() {
            Ok(real) => real,
            Err(e) => {
                out.problems
                    .push(format!("{}: cannot resolve: {e}", dir.display()));
                continue;
            }
        };
        if !visited.insert(real) {
            continue; // a symlink loop or a second link to the same folder
        }
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                out.problems
                    .push(format!("{}: cannot list folder: {e}", dir.display()));
                continue;
            }
        };
        let mut subdirs = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    out.problems
                        .push(format!("{}: cannot read an entry: {e}", dir.display()));
                    continue;
                }
            };
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            // fs::metadata follows symlinks: a link to a file counts as a file.
            let meta = match fs::metadata(&path) {
                Ok(meta) => meta,
                Err(e) => {
                    if keep(&name) {
                        out.problems.push(format!(
                            "{}: cannot read (a dangling link or no permission): {e}",
                            path.display()
                        ));
                    }
                    continue;
                }
            };
            if meta.is_dir() {
                if depth < max_depth && !name.starts_with('.') {
                    subdirs.push(path);
                }
            } else if meta.is_file() && keep(&name) {
                out.files.push(path);
            }
        }
        // Reverse so that the stack pops folders in name order.
        subdirs.sort();
        stack.extend(subdirs.into_iter().rev().map(|d| (d, depth + 1)));
    }
    out.files.sort();
    out
}

/// Whether a file name ends in `.gguf` (any case).
pub(crate) fn is_gguf_name(name: &str) -> bool {
    name.len() > 5
        && name.is_char_boundary(name.len() - 5)
        && name[name.len() - 5..].eq_ignore_ascii_case(".gguf")
}
