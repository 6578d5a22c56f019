//! Standard output that reports a failed write as an error instead of panicking the way
//! `println!` does (`strix-run inspect MODEL >/dev/full`). A closed pipe still ends the
//! process quietly: `main` restores the default SIGPIPE action.

use std::fmt;
use std::io::{self, Write};

/// A write to standard output failed (a full disk, an I/O error).
#[derive(Debug, thiserror::Error)]
#[error("cannot write to standard output: {0}")]
pub struct OutputError(#[source] pub io::Error);

/// Writes formatted text to standard output, flushed through its line buffer so that a
/// failed write surfaces here, where it can be reported.
pub fn write_fmt(args: fmt::Arguments<'_>) -> Result<(), OutputError> {
    let mut out = io::stdout().lock();
    out.write_fmt(args).map_err(OutputError)
}

/// Flushes what is still buffered (text without a final newline). `run` calls it once a
/// command has finished, since the buffer flushed at exit drops errors.
pub fn flush() -> Result<(), OutputError> {
    io::stdout().lock().flush().map_err(OutputError)
}

/// `println!` that returns a failed write as an error with `?`.
macro_rules! outln {
    () => {
        $crate::cli::output::write_fmt(format_args!("\n"))?
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write_fmt(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// `print!` that returns a failed write as an error with `?`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write_fmt(format_args!($($arg)*))?
    };
}

pub(crate) use {out, outln};
