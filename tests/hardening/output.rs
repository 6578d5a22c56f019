//! A failed write to standard output is an error (exit 1, one line), never a panic; a
//! closed pipe stays the quiet end it is for `| head`.

use super::common::*;
use std::fs::OpenOptions;
use std::process::Stdio;

fn to_dev_full(args: &[&str]) -> Outcome {
    let full = OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let mut cmd = strix();
    cmd.args(args);
    let mut child = cmd
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_bounded(&mut child, QUICK)
}

#[test]
fn every_command_reports_a_full_stdout_instead_of_panicking() {
    let gemma = gemma();
    let model = gemma.to_str().expect("utf-8");
    let dir = gemma.parent().expect("models dir").to_str().expect("utf-8");
    for args in [
        vec!["inspect", model],
        vec!["inspect", "--json", model],
        vec!["plan", "--model", model, "--hw", "strix-halo-128"],
        vec!["plan", "--json", "--model", model, "--hw", "strix-halo-128"],
        vec!["--model", model, "--dry-run", "--hw", "strix-halo-128"],
        vec!["models", "--models-dir", dir],
        vec!["doctor"],
        vec!["doctor", "--json"],
    ] {
        let o = to_dev_full(&args);
        assert_eq!(o.code(), 1, "{args:?}: {o:?}");
        o.no_panic();
        assert!(
            o.stderr
                .contains("cannot write to standard output: No space left on device"),
            "{args:?}: {}",
            o.stderr
        );
    }
}

#[cfg(feature = "runtime")]
#[test]
fn generated_text_that_cannot_be_written_is_an_error_not_a_panic() {
    let gemma = gemma();
    let model = gemma.to_str().expect("utf-8");
    let o = to_dev_full(&[
        "--model",
        model,
        "-p",
        "Once upon a time",
        "-n",
        "8",
        "--temp",
        "0",
        "--ctx",
        "256",
    ]);
    assert_eq!(o.code(), 1, "{o:?}");
    o.no_panic();
    assert!(
        o.stderr.contains("the generated text could not be written")
            && o.stderr.contains("No space left on device"),
        "{}",
        o.stderr
    );
    // --json writes the whole record at the end: the same error, not a panic.
    let o = to_dev_full(&[
        "--model",
        model,
        "-p",
        "Once upon a time",
        "-n",
        "4",
        "--temp",
        "0",
        "--ctx",
        "256",
        "--json",
    ]);
    assert_eq!(o.code(), 1, "{o:?}");
    assert!(
        o.stderr.contains("cannot write to standard output"),
        "{}",
        o.stderr
    );
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let gemma = gemma();
    let mut child = strix()
        .args(["inspect", "--json"])
        .arg(&gemma)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // The reader goes away before anything is read, like `| head -0`.
    drop(child.stdout.take());
    let o = wait_bounded(&mut child, QUICK);
    use std::os::unix::process::ExitStatusExt;
    assert!(
        o.status.success() || o.status.signal() == Some(libc::SIGPIPE),
        "{o:?}"
    );
    assert!(o.stderr.is_empty(), "{}", o.stderr);
}
