//! Generation and chat as a person drives them: Ctrl-C, bad input lines, long prompts.

use super::common::*;
use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const GENERATION: Duration = Duration::from_secs(180);

/// Collects a child's stream as it comes, so a test can wait for a given text.
struct Stream(Arc<Mutex<Vec<u8>>>);

impl Stream {
    fn follow(mut from: impl Read + Send + 'static) -> Stream {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = from.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("lock").extend_from_slice(&chunk[..n]);
            }
        });
        Stream(buf)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }

    /// Waits until the stream holds `needle` `times` times.
    fn wait_for(&self, needle: &str, times: usize, child: &mut Child) {
        let started = Instant::now();
        while self.text().matches(needle).count() < times {
            if let Some(status) = child.try_wait().expect("wait") {
                panic!("exited ({status}) before {needle:?}: {}", self.text());
            }
            if started.elapsed() > GENERATION {
                let _ = child.kill();
                panic!("no {needle:?} after {GENERATION:?}: {}", self.text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        if started.elapsed() > GENERATION {
            let _ = child.kill();
            panic!("did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn chat(gemma: &std::path::Path) -> (Child, Stream, Stream) {
    let mut child = strix()
        .args(["--model"])
        .arg(gemma)
        .args(["--ctx", "512", "-n", "8", "--temp", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = Stream::follow(child.stdout.take().expect("stdout"));
    let err = Stream::follow(child.stderr.take().expect("stderr"));
    (child, out, err)
}

#[test]
fn a_line_that_is_not_utf8_is_refused_and_the_chat_goes_on() {
    let (mut child, out, err) = chat(&gemma());
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"caf\xe9 au lait\n").expect("write");
    stdin.write_all(b"Say hello.\n").expect("write");
    drop(stdin);
    let status = wait_exit(&mut child);
    let stderr = err.text();
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("that line is not UTF-8 text (invalid byte at position 3)"),
        "{stderr}"
    );
    // The next line was answered: one generation report.
    assert_eq!(stderr.matches("[prompt ").count(), 1, "{stderr}");
    assert!(!out.text().trim().is_empty());
}

#[test]
fn ctrl_c_at_an_idle_chat_prompt_says_how_to_leave_and_a_second_leaves() {
    let (mut child, _out, err) = chat(&gemma());
    let _stdin = child.stdin.take().expect("stdin");
    err.wait_for("> ", 1, &mut child);
    kill(child.id(), libc::SIGINT);
    err.wait_for("Ctrl-D or another Ctrl-C ends the chat", 1, &mut child);
    kill(child.id(), libc::SIGINT);
    let status = wait_exit(&mut child);
    assert_eq!(status.code(), Some(130), "{}", err.text());
}

#[test]
fn ctrl_c_during_generation_exits_130_after_the_report() {
    let gemma = gemma();
    let mut child = strix()
        .args(["--model"])
        .arg(&gemma)
        .args(["--ctx", "4096", "-n", "4000", "--temp", "1", "--seed", "1"])
        .args(["-p", "Write a very long story about a dragon."])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = Stream::follow(child.stdout.take().expect("stdout"));
    let err = Stream::follow(child.stderr.take().expect("stderr"));
    // Some text has streamed: generation is under way.
    let started = Instant::now();
    while out.text().len() < 20 {
        assert!(started.elapsed() < GENERATION, "no text: {}", err.text());
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(child.id(), libc::SIGINT);
    let status = wait_exit(&mut child);
    let stderr = err.text();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("stop: Cancelled"), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
}

#[test]
fn ctrl_c_during_bench_reports_what_was_measured() {
    let config = tempfile::tempdir().expect("tempdir");
    let gemma = gemma();
    let mut child = strix()
        .env("XDG_CONFIG_HOME", config.path())
        .args(["bench", "--json", "--model"])
        .arg(&gemma)
        .args([
            "--sweep",
            "threads=1,1,1,1,1,1",
            "--pp",
            "64",
            "--tg",
            "16",
            "-r",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = Stream::follow(child.stdout.take().expect("stdout"));
    let err = Stream::follow(child.stderr.take().expect("stderr"));
    // One point measured (one progress line each), then Ctrl-C.
    err.wait_for("bench: ", 1, &mut child);
    kill(child.id(), libc::SIGINT);
    let status = wait_exit(&mut child);
    let stderr = err.text();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(!stderr.contains("nothing was measured"), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&out.text()).expect("the report");
    let text = report.to_string();
    assert!(!text.contains("llama_decode failed"), "{text}");
    assert!(text.contains("interrupted (Ctrl-C)"), "{text}");
    assert!(
        text.contains("\"Measured\"") || text.contains("measured"),
        "{text}"
    );
}

/// Greedy completion of `prompt` given as `how`.
fn complete(how: &[&str], stdin: Option<&str>) -> String {
    let gemma = gemma();
    let mut cmd = strix();
    cmd.args(["--model"])
        .arg(&gemma)
        .args(["--ctx", "512", "-n", "8", "--temp", "0"])
        .args(how);
    cmd.stdin(Stdio::piped());
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write");
    }
    drop(input);
    let o = wait_bounded(&mut child, GENERATION);
    assert_eq!(o.code(), 0, "{how:?}: {o:?}");
    o.stdout
}

#[test]
fn a_prompt_from_a_file_or_stdin_is_the_same_prompt() {
    let prompt = "The capital of France is";
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("prompt.txt");
    std::fs::write(&file, prompt).expect("write");
    let given = complete(&["-p", prompt], None);
    assert!(!given.trim().is_empty());
    assert_eq!(
        complete(&["--file", file.to_str().expect("utf-8")], None),
        given
    );
    assert_eq!(complete(&["-p", "-"], Some(prompt)), given);
}

#[test]
fn a_prompt_longer_than_a_command_line_is_read_from_a_file() {
    // 200 KiB: more than Linux passes in one argument (128 KiB).
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("long.txt");
    std::fs::write(&file, "word ".repeat(40 * 1024)).expect("write");
    let gemma = gemma();
    let o = run_bounded(
        strix()
            .args(["--model"])
            .arg(&gemma)
            .args(["--ctx", "512", "-n", "1", "--file"])
            .arg(&file),
        GENERATION,
    );
    // Read and tokenized whole: refused only because the context is smaller.
    o.refused("tokens; the context holds 512");
    let missing = dir.path().join("nope.txt");
    let o = run_bounded(
        strix()
            .args(["--model"])
            .arg(&gemma)
            .args(["--file"])
            .arg(&missing),
        QUICK,
    );
    o.refused("nope.txt: no such file");
    assert!(!o.stderr.contains("loaded in"), "{}", o.stderr);
}
