//! What the hardening tests share: the binary, a run bounded in time, files of every kind.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The `strix-run` binary under test (`STRIX_RUN_BIN` names another build, e.g. an older
/// one to show a test fails on the behaviour it guards against).
pub fn strix() -> Command {
    let bin =
        std::env::var_os("STRIX_RUN_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_strix-run").into());
    let mut c = Command::new(bin);
    c.env_remove("STRIX_MODELS");
    c
}

/// What a bounded run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The exit status (a signal shows as no code).
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// How long it ran.
    pub took: Duration,
}

impl Outcome {
    /// The exit code; panics (failing the test) when a signal ended the process.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("ended by a signal: {self:?}"))
    }

    /// Fails unless the run ended with exit code 1 and a one-line `error:` naming `what`.
    pub fn refused(&self, what: &str) {
        assert_eq!(self.code(), 1, "{self:?}");
        assert!(self.stderr.contains("error: "), "{self:?}");
        assert!(
            self.stderr.contains(what),
            "expected {what:?} in: {}",
            self.stderr
        );
        self.no_panic();
    }

    /// Fails if the process panicked.
    pub fn no_panic(&self) {
        assert!(
            !self.stderr.contains("panicked") && self.status.code() != Some(101),
            "{self:?}"
        );
    }
}

/// Runs `cmd` (stdin closed unless set) and kills it after `limit`: a hang fails the
/// test instead of blocking the suite.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Outcome {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn strix-run");
    wait_bounded(&mut child, limit)
}

/// Waits for `child` (stdout and stderr piped) at most `limit`, reading its output.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Outcome {
    let started = Instant::now();
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut s);
        }
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut s);
        }
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Outcome {
        status,
        stdout: String::from_utf8_lossy(&out_reader.join().expect("stdout")).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().expect("stderr")).into_owned(),
        took: started.elapsed(),
    }
}

/// A bound for commands that read a header and plan: generous for a loaded CI machine,
/// far below "forever".
pub const QUICK: Duration = Duration::from_secs(30);

/// The real Gemma 3 270M (see `tests/support`).
pub fn gemma() -> PathBuf {
    super::support::gemma_path()
}

/// Makes a FIFO at `path`.
pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a valid C string.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo {}", path.display());
}

/// Sends `signal` to the process `pid`.
pub fn kill(pid: u32, signal: i32) {
    // SAFETY: plain syscall.
    let rc = unsafe { libc::kill(pid as i32, signal) };
    assert_eq!(rc, 0, "kill {pid}");
}

/// Limits the size of any file the command writes to `bytes` (RLIMIT_FSIZE), with
/// SIGXFSZ ignored so that a write past it fails with EFBIG the way a write to a full
/// disk fails with ENOSPC: an error the program must handle, not a signal.
pub fn limit_file_size(cmd: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The names in `dir`, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
