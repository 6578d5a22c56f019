//! Reading files under the detection root: optional ones quietly, essential ones
//! with an error naming the file.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::hardware::error::DetectError;

/// Files read relative to a root ("/" or a fake tree in tests).
#[derive(Debug)]
pub(crate) struct Root {
    root: PathBuf,
    /// Files that exist but could not be read, for the notes.
    pub unreadable: Vec<String>,
}

impl Root {
    /// A root directory.
    pub fn new(root: &Path) -> Self {
        Root {
            root: root.to_path_buf(),
            unreadable: Vec::new(),
        }
    }

    /// `relative` under the root ("proc/meminfo").
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// A file's text, `None` when absent or unreadable (remembered in `unreadable`).
    pub fn optional(&mut self, path: &Path) -> Option<String> {
        match fs::read(path) {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => {
                self.unreadable.push(format!("{}: {e}", path.display()));
                None
            }
        }
    }

    /// A file's text; absent or unreadable is an error.
    pub fn essential(&self, path: &Path, why: &'static str) -> Result<String, DetectError> {
        match fs::read(path) {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(DetectError::Missing {
                path: path.to_path_buf(),
                why,
            }),
            Err(source) => Err(DetectError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The entries of a directory, sorted by name; empty when absent or unreadable.
    pub fn list(&mut self, dir: &Path) -> Vec<(String, PathBuf)> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                self.unreadable.push(format!("{}: {e}", dir.display()));
                return Vec::new();
            }
        };
        let mut out: Vec<(String, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect();
        out.sort();
        out
    }
}
