//! The `strix-run` command: a thin layer of argument parsing and printing over the
//! `strix_run` library.

mod cli;

fn main() -> std::process::ExitCode {
    // Die quietly on a closed pipe (`strix-run inspect big.gguf | head`) like other
    // Unix tools, instead of panicking on the failed write.
    #[cfg(unix)]
    // SAFETY: restoring the default SIGPIPE disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    cli::run()
}
