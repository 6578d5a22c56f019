//! Files strix-run reads and writes, the same way everywhere:
//! - what it reads must be a regular file, checked on the opened handle before a byte is
//!   read (a FIFO would block forever, a character device such as `/dev/zero` never
//!   ends, a directory is no file), with the kind named in the error;
//! - what it writes goes to a temporary file in the target's directory that is renamed
//!   into place only once everything was written, so a full disk or an error half way
//!   leaves the old file (or nothing) behind, never a truncated one.
//!
//! This module is the bottom layer: it knows no file format.

use std::fs::{File, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a file could not be opened, read or written.
#[derive(Debug, Error)]
pub enum FileError {
    /// Nothing is at the path (or a component of it is missing).
    #[error("{path}: no such file")]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// The path is a chain of symbolic links that never ends.
    #[error("{path}: symbolic link loop (too many levels of symbolic links)")]
    SymlinkLoop {
        /// The path.
        path: PathBuf,
    },
    /// Something other than a regular file is at the path.
    #[error("{path}: is {kind}, not a regular file; give the path of a file")]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What is there, with its article ("a FIFO (named pipe)", "a directory", ...).
        kind: &'static str,
    },
    /// The target exists and the caller asked not to replace it.
    #[error("{path}: already exists; {hint}")]
    Exists {
        /// The path.
        path: PathBuf,
        /// How to replace it anyway (e.g. "pass --force to replace it").
        hint: &'static str,
    },
    /// Any other I/O error, with what was being done.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What failed ("cannot open", "cannot write", ...).
        action: &'static str,
        /// The cause.
        source: io::Error,
    },
}

impl FileError {
    /// Maps an error of opening or inspecting `path` to the variant that says it best.
    pub fn from_io(path: &Path, action: &'static str, source: io::Error) -> FileError {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::NotFound => FileError::NotFound { path },
            _ if source.raw_os_error() == Some(libc::ELOOP) => FileError::SymlinkLoop { path },
            _ => FileError::Io {
                path,
                action,
                source,
            },
        }
    }
}

/// What kind of thing `meta` describes, with its article, for messages.
pub fn kind_name(meta: &Metadata) -> &'static str {
    let ft = meta.file_type();
    if ft.is_file() {
        return "a regular file";
    }
    if ft.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ft.is_socket() {
            return "a socket";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
    }
    if ft.is_symlink() {
        return "a symbolic link";
    }
    "not a file"
}

/// Checks that `path` names a regular file (following symbolic links), without opening
/// it. For listings and checks before long work; readers use [`open_regular`].
pub fn check_regular(path: &Path) -> Result<Metadata, FileError> {
    let meta = std::fs::metadata(path).map_err(|e| FileError::from_io(path, "cannot read", e))?;
    if meta.is_file() {
        Ok(meta)
    } else {
        Err(FileError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_name(&meta),
        })
    }
}

/// Opens `path` for reading if, and only if, it is a regular file. The open itself does
/// not block on a FIFO (it is made non-blocking, then the handle's own metadata is
/// checked), so there is no window in which the path can be swapped for one.
pub fn open_regular(path: &Path) -> Result<File, FileError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options
        .open(path)
        .map_err(|e| FileError::from_io(path, "cannot open", e))?;
    let meta = file
        .metadata()
        .map_err(|e| FileError::from_io(path, "cannot read", e))?;
    if !meta.is_file() {
        return Err(FileError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_name(&meta),
        });
    }
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // Back to ordinary blocking reads (regular files ignore the flag; this keeps the
        // handle what callers expect).
        // SAFETY: fcntl on a descriptor this function owns.
        unsafe {
            let fd = file.as_raw_fd();
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
            }
        }
    }
    Ok(file)
}

/// Reads a whole regular file as UTF-8 text; a missing file is `Ok(None)`.
pub fn read_text_if_exists(path: &Path) -> Result<Option<String>, FileError> {
    use std::io::Read;
    let mut file = match open_regular(path) {
        Ok(f) => f,
        Err(FileError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| FileError::from_io(path, "cannot read", e))?;
    Ok(Some(text))
}

/// Reads a whole regular file as UTF-8 text.
pub fn read_text(path: &Path) -> Result<String, FileError> {
    read_text_if_exists(path)?.ok_or_else(|| FileError::NotFound {
        path: path.to_path_buf(),
    })
}

/// What to do when the target of a write already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Replace it (atomically: readers see the old file or the new one).
    Replace,
    /// Refuse, before anything is written, and again at the rename (nothing is clobbered
    /// if the file appeared in between); the hint says how to replace it anyway.
    Refuse {
        /// E.g. "pass --force to replace it".
        hint: &'static str,
    },
}

/// A file being written: a temporary file beside its target, renamed over the target by
/// [`PendingFile::commit`] and removed if dropped uncommitted.
#[derive(Debug)]
pub struct PendingFile {
    target: PathBuf,
    existing: Existing,
    temp: tempfile::NamedTempFile,
}

impl PendingFile {
    /// Starts writing `target`. Its directory must exist. With [`Existing::Refuse`] an
    /// existing target (of any kind) is refused here, before any work; with
    /// [`Existing::Replace`] only a regular file (or nothing) may be there.
    pub fn create(target: &Path, existing: Existing) -> Result<PendingFile, FileError> {
        check_target(target, existing)?;
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(dir)
            .map_err(|e| FileError::from_io(target, "cannot create a file beside it", e))?;
        Ok(PendingFile {
            target: target.to_path_buf(),
            existing,
            temp,
        })
    }

    /// The open temporary file, to write to.
    pub fn file(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// Where the file will be.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes the data to disk and renames the file into place.
    pub fn commit(self) -> Result<(), FileError> {
        let target = self.target;
        self.temp
            .as_file()
            .sync_all()
            .map_err(|e| FileError::from_io(&target, "cannot write", e))?;
        match self.existing {
            Existing::Replace => self.temp.persist(&target).map(drop),
            Existing::Refuse { hint } => match self.temp.persist_noclobber(&target) {
                Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(FileError::Exists { path: target, hint })
                }
                other => other.map(drop),
            },
        }
        .map_err(|e| {
            FileError::from_io(&target, "cannot move the finished file into place", e.error)
        })
    }
}

/// Checks, before any work, that `target` can be written under `existing`.
pub fn check_target(target: &Path, existing: Existing) -> Result<(), FileError> {
    match std::fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(FileError::from_io(target, "cannot write", e)),
        Ok(meta) => match existing {
            Existing::Refuse { hint } => {
                return Err(FileError::Exists {
                    path: target.to_path_buf(),
                    hint,
                })
            }
            Existing::Replace if !meta.is_file() => {
                return Err(FileError::NotRegular {
                    path: target.to_path_buf(),
                    kind: kind_name(&meta),
                })
            }
            Existing::Replace => {}
        },
    }
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(meta) => Err(FileError::Io {
            path: target.to_path_buf(),
            action: "cannot write",
            source: io::Error::other(format!(
                "{} is {}, not a directory",
                dir.display(),
                kind_name(&meta)
            )),
        }),
        Err(e) => Err(FileError::Io {
            path: target.to_path_buf(),
            action: "cannot write",
            source: io::Error::new(e.kind(), format!("its directory {}: {e}", dir.display())),
        }),
    }
}

/// Writes `target` in one go through a [`PendingFile`].
pub fn write_atomically(
    target: &Path,
    existing: Existing,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), FileError> {
    let mut pending = PendingFile::create(target, existing)?;
    write(pending.file()).map_err(|e| FileError::from_io(target, "cannot write", e))?;
    pending.commit()
}
