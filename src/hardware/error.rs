//! Errors of the hardware layer. Each names the file or value at fault and says what
//! to do about it.

use std::io;
use std::path::PathBuf;

use super::size::SizeError;

/// Reading the machine (sysfs, procfs, sysinfo) failed.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// A file detection cannot do without is absent.
    #[error(
        "{path} does not exist, and hardware detection needs it ({why}); \
         describe the machine with --hw PRESET or --hw-profile FILE instead"
    )]
    Missing {
        /// the file
        path: PathBuf,
        /// what it is needed for
        why: &'static str,
    },
    /// A file exists but could not be read.
    #[error("cannot read {path}: {source}; check its permissions or use --hw / --hw-profile")]
    Read {
        /// the file
        path: PathBuf,
        /// the I/O error
        #[source]
        source: io::Error,
    },
    /// A file holds something other than what the kernel writes there.
    #[error(
        "{path}: expected {expected}, found `{found}`; detection cannot trust this file, \
         describe the machine with --hw PRESET or --hw-profile FILE instead"
    )]
    Garbage {
        /// the file
        path: PathBuf,
        /// what the file should contain
        expected: &'static str,
        /// what it contains (shortened)
        found: String,
    },
}

fn parse_location(field: &str, line: &usize, column: &usize) -> String {
    if field.is_empty() || field == "." {
        format!("line {line}, column {column}")
    } else {
        format!("field `{field}` (line {line}, column {column})")
    }
}

/// Reading or writing a hardware profile (JSON) failed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The profile could not be read.
    #[error("cannot read the hardware profile: {source}; check the path given to --hw-profile")]
    Read {
        /// Why (names the file: missing, not a regular file, unreadable).
        #[source]
        source: crate::files::FileError,
    },
    /// The profile is not a valid hardware description.
    #[error(
        "hardware profile {path} is not valid: {location}: {message}; {fix}",
        location = parse_location(.field, .line, .column),
        fix = if .field.is_empty() || .field == "." {
            "it must be the JSON of a hardware description (as `strix-run doctor --json` prints under \"hardware\")"
        } else {
            "fix that field (or regenerate the profile)"
        }
    )]
    Parse {
        /// the profile file
        path: PathBuf,
        /// The field at fault as a path into the document (`gpu.memory_bytes`), or `.`
        /// when the document itself is not JSON.
        field: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is wrong (serde's message without its position).
        message: String,
    },
    /// The profile could not be serialized.
    #[error("cannot encode the hardware profile for {path}: {source}")]
    Encode {
        /// the profile file
        path: PathBuf,
        /// the JSON error
        #[source]
        source: serde_json::Error,
    },
    /// The profile could not be written.
    #[error("cannot write hardware profile {path}: {source}; check that the directory exists and is writable")]
    Write {
        /// the profile file
        path: PathBuf,
        /// the I/O error
        #[source]
        source: io::Error,
    },
}

/// Anything that stops us from describing the machine.
#[derive(Debug, thiserror::Error)]
pub enum HardwareError {
    /// `--hw NAME` with a name we do not know.
    #[error("unknown hardware preset `{name}`; known presets: {known}")]
    UnknownPreset {
        /// the name given
        name: String,
        /// the known names, comma separated
        known: String,
    },
    /// `--hw` and `--hw-profile` were both given.
    #[error("--hw {preset} and --hw-profile {profile} both describe the whole machine; pass only one of them")]
    ConflictingSources {
        /// the preset name
        preset: String,
        /// the profile path
        profile: PathBuf,
    },
    /// Detection failed.
    #[error(transparent)]
    Detect(#[from] DetectError),
    /// A profile could not be read or written.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// A size could not be parsed.
    #[error(transparent)]
    Size(#[from] SizeError),
    /// A value that no machine can have.
    #[error("impossible hardware value {field} = {value}: {problem}; {fix}")]
    Invalid {
        /// the field (or flag) at fault
        field: &'static str,
        /// the value, formatted for humans
        value: String,
        /// why it is impossible
        problem: String,
        /// what to do
        fix: &'static str,
    },
}
