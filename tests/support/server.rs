//! A `strix-run serve` process for the server tests (`tests/serve.rs`), and the real
//! clients they drive it with: the `openai` and `anthropic` Python packages (the
//! programs in `tests/clients/`, run by the venv `scripts/setup` makes) and curl.
//!
//! Every wait is bounded. A server is killed when its `Server` is dropped; one kept in
//! a `static` (never dropped) is killed by the kernel when the test process ends: every
//! child is started from one thread that lives as long as the process, with
//! `PR_SET_PDEATHSIG`, which fires when the thread that started the child ends.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// From start to `strix-run serve: ready` (two busy cores in CI: generous).
pub const READY_TIMEOUT: Duration = Duration::from_secs(240);
/// One client program's run, all its requests together.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(240);
/// One curl request.
pub const CURL_TIMEOUT: Duration = Duration::from_secs(60);

/// Lines of the server's output kept for failure messages.
const LOG_LINES: usize = 400;

/// The venv's Python with the `openai` and `anthropic` packages (`scripts/setup`);
/// `STRIX_CLIENTS_PYTHON` names another interpreter.
pub fn clients_python() -> PathBuf {
    let path = std::env::var_os("STRIX_CLIENTS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/clients-venv/bin/python")
        });
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup (it installs the openai and anthropic packages \
         into target/clients-venv; the README's test command runs it)",
        path.display()
    );
    path
}

/// The client programs' folder.
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Starts `cmd` from a thread that lives as long as the test process, with the parent
/// death signal set to SIGKILL: the child cannot outlive the tests, even when its
/// `Child` sits in a `static` that is never dropped.
pub fn spawn_tied(mut cmd: Command) -> std::io::Result<Child> {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have ended before prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let sender = SPAWNER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("child-spawner".into())
                .spawn(move || {
                    for (mut cmd, reply) in rx {
                        let _ = reply.send(cmd.spawn());
                    }
                })
                .expect("the spawner thread starts");
            Mutex::new(tx)
        })
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let (reply_tx, reply_rx) = mpsc::channel();
    sender
        .send((cmd, reply_tx))
        .expect("the spawner thread is alive");
    reply_rx.recv().expect("the spawner thread answers")
}

/// What a finished (or killed) child printed.
#[derive(Debug)]
pub struct Finished {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Finished {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }
}

/// Kills and reaps a child when dropped (a test that panics leaves none behind).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn drain<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = r.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `cmd` with `stdin` as its input, killed after `timeout`.
pub fn run_bounded(mut cmd: Command, stdin: &[u8], timeout: Duration) -> Finished {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let program = format!("{cmd:?}");
    let mut child =
        KillOnDrop(spawn_tied(cmd).unwrap_or_else(|e| panic!("cannot start {program}: {e}")));
    let input = stdin.to_vec();
    let mut pipe = child.0.stdin.take().expect("stdin piped");
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let out = drain(child.0.stdout.take().expect("stdout piped"));
    let err = drain(child.0.stderr.take().expect("stderr piped"));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.0.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                let _ = child.0.kill();
                break child.0.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for {program}: {e}"),
        }
    };
    let _ = writer.join();
    Finished {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        timed_out,
    }
}

/// An HTTP response as curl saw it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {}: the body is not JSON ({e}): {:?}",
                self.status, self.body
            )
        })
    }
}

/// Parses `curl -i` output: the last header block (after any `100 Continue`), then the
/// body.
fn parse_curl(raw: &[u8]) -> Result<Response, String> {
    let mut rest = raw;
    loop {
        let text_end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| {
                format!(
                    "no header block in curl's output: {:?}",
                    String::from_utf8_lossy(raw)
                )
            })?;
        let head = String::from_utf8_lossy(&rest[..text_end]).into_owned();
        rest = &rest[text_end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        if status == 100 {
            continue;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        return Ok(Response {
            status,
            headers,
            body: String::from_utf8_lossy(rest).into_owned(),
        });
    }
}

/// One request with curl: `method` to `url` with `headers` ("Name: value") and an
/// optional body (sent as it is, from standard input). `Err` with curl's message when
/// no HTTP answer came (refused, reset, timed out).
pub fn curl(
    method: &str,
    url: &str,
    headers: &[&str],
    body: Option<&[u8]>,
) -> Result<Response, String> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-i", "--noproxy", "*", "-X", method])
        .arg("--max-time")
        .arg(CURL_TIMEOUT.as_secs().to_string())
        // No `Expect: 100-continue` for large bodies: the server answers at once.
        .args(["-H", "Expect:"]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    if body.is_some() {
        cmd.args(["--data-binary", "@-"]);
    }
    cmd.arg(url);
    let done = run_bounded(
        cmd,
        body.unwrap_or_default(),
        CURL_TIMEOUT + Duration::from_secs(10),
    );
    if !done.success() {
        return Err(format!(
            "curl {method} {url}: {:?}{}: {}",
            done.status,
            if done.timed_out { " (timed out)" } else { "" },
            done.stderr.trim()
        ));
    }
    parse_curl(done.stdout.as_bytes())
}

/// A running `strix-run serve`.
pub struct Server {
    child: Mutex<Child>,
    pub pid: u32,
    /// `http://127.0.0.1:PORT`, as the server printed it.
    pub url: String,
    /// The model's id in the APIs: the GGUF file name without `.gguf`.
    pub model_id: String,
    /// GET /health right after the server said it listens (before or while loading).
    pub first_health: Result<Response, String>,
    /// The arguments after `serve`.
    pub args: Vec<String>,
    lines: Mutex<Receiver<String>>,
    log: Arc<Mutex<Vec<String>>>,
    _config: tempfile::TempDir,
}

/// The model id the server should report for the model at `path`: the file name
/// without `.gguf`.
pub fn model_id_of(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    name.strip_suffix(".gguf").unwrap_or(&name).to_string()
}

impl Server {
    /// `strix-run serve -m GEMMA --host 127.0.0.1 --port 0 --threads 1 --threads-batch 1
    /// EXTRA...` (no thread pins when EXTRA has its own) with an empty config directory
    /// (no calibration file), waited on until it says it is ready.
    pub fn start(extra: &[&str]) -> Server {
        Server::start_model(&crate::support::gemma_path(), extra)
    }

    /// The same with another model file.
    pub fn start_model(model: &Path, extra: &[&str]) -> Server {
        let server = Server::spawn(model, extra);
        server.wait_line("strix-run serve: ready", READY_TIMEOUT);
        server
    }

    /// Starts the server and waits only until it listens.
    pub fn spawn(model: &Path, extra: &[&str]) -> Server {
        let config = tempfile::tempdir().expect("a temporary config directory");
        let mut args: Vec<String> = vec![
            "-m".into(),
            model.display().to_string(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            "0".into(),
        ];
        // One thread each, unless the test pins its own: the test threads run several
        // llama.cpp processes at once on a small machine, and ggml's threads wait for
        // each other by spinning, so two-thread processes beside each other crawled
        // (x0.007 of the prediction in one CI run; a 48-token stream then outlived a
        // 60 s shutdown timeout). A single thread never waits for another.
        if !extra.iter().any(|a| a.starts_with("--threads")) {
            args.extend(["--threads", "1", "--threads-batch", "1"].map(String::from));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_strix-run"));
        cmd.arg("serve")
            .args(&args)
            .env("XDG_CONFIG_HOME", config.path())
            .env_remove("STRIX_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn_tied(cmd).expect("strix-run serve starts");
        let pid = child.id();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let keep = |log: &Arc<Mutex<Vec<String>>>, line: String| {
            let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
            if log.len() >= LOG_LINES {
                log.remove(0);
            }
            log.push(line);
        };
        let out = child.stdout.take().expect("stdout piped");
        let out_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                keep(&out_log, format!("[stdout] {line}"));
                let _ = tx.send(line);
            }
        });
        let err = child.stderr.take().expect("stderr piped");
        let err_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                keep(&err_log, format!("[stderr] {line}"));
            }
        });
        let mut server = Server {
            child: Mutex::new(child),
            pid,
            url: String::new(),
            model_id: model_id_of(model),
            first_health: Err("not asked yet".into()),
            args,
            lines: Mutex::new(rx),
            log,
            _config: config,
        };
        let prefix = "strix-run serve: listening on ";
        let line = server.wait_line(prefix, READY_TIMEOUT);
        let url = line[line.find(prefix).unwrap() + prefix.len()..]
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        assert!(
            url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
            "the listening line names no loopback URL with a real port: {line:?}"
        );
        server.url = url;
        server.first_health = curl("GET", &server.url("/health"), &[], None);
        server
    }

    /// `self.url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Waits for a line of standard output that starts with (or holds) `prefix`;
    /// panics with the log when the server ends or `timeout` passes first.
    pub fn wait_line(&self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let rx = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(prefix) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!(
                    "strix-run serve {:?} printed no {prefix:?} within {timeout:?}\n{}",
                    self.args,
                    self.log_tail()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait_exit(Duration::from_secs(10));
                    panic!(
                        "strix-run serve {:?} ended ({status:?}) before printing {prefix:?}\n{}",
                        self.args,
                        self.log_tail()
                    )
                }
            }
        }
    }

    /// The last lines the server printed (stdout and stderr), for failure messages.
    pub fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let from = log.len().saturating_sub(60);
        format!(
            "--- server output (last lines) ---\n{}",
            log[from..].join("\n")
        )
    }

    /// Still running? Panics with the log when it has ended.
    pub fn assert_alive(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "strix-run serve {:?} has ended: {status}\n{}",
                self.args,
                self.log_tail()
            );
        }
    }

    /// One request; panics (with the server's log) when no HTTP answer came.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[&str],
        body: Option<&[u8]>,
    ) -> Response {
        curl(method, &self.url(path), headers, body).unwrap_or_else(|e| {
            self.assert_alive();
            panic!("{e}\n{}", self.log_tail())
        })
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], None)
    }

    /// POST of a JSON body (any bytes: malformed ones too).
    pub fn post_json(&self, path: &str, body: &str, headers: &[&str]) -> Response {
        let mut all = vec!["Content-Type: application/json"];
        all.extend_from_slice(headers);
        self.request("POST", path, &all, Some(body.as_bytes()))
    }

    /// GET /slots as JSON.
    pub fn slots(&self) -> Vec<serde_json::Value> {
        let r = self.get("/slots");
        assert_eq!(r.status, 200, "GET /slots: {}", r.body);
        r.json()
            .as_array()
            .unwrap_or_else(|| panic!("GET /slots is not a JSON array: {}", r.body))
            .clone()
    }

    /// Waits until every slot says `"state": "idle"`; `Err` with the last /slots
    /// answer after `timeout`.
    pub fn wait_slots_idle(&self, timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let slots = self.slots();
            if !slots.is_empty() && slots.iter().all(|s| s["state"] == "idle") {
                return Ok(start.elapsed());
            }
            if start.elapsed() >= timeout {
                return Err(format!(
                    "not every slot idle after {timeout:?}: {}",
                    serde_json::Value::Array(slots)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server process's resident memory (VmRSS), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .expect("/proc/PID/status of the server");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("a VmRSS line")
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        // SAFETY: kill(2) on our own child's pid, which is not reaped while `self` lives.
        let rc = unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM {}", self.pid);
    }

    /// Waits for the process to end; `None` after `timeout`.
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() >= deadline => return None,
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => return None,
            }
        }
    }

    /// A client program (`tests/clients/SCRIPT`) against this server, with `--key`
    /// when given: its JSON result (the last line it printed). Panics with what it
    /// printed, and the server's log, when it fails.
    pub fn client(&self, script: &str, key: Option<&str>, args: &[&str]) -> serde_json::Value {
        let done = run_bounded(self.client_command(script, key, args), b"", CLIENT_TIMEOUT);
        if !done.success() {
            self.fail_client(script, args, &done);
        }
        last_json_line(&done.stdout).unwrap_or_else(|| self.fail_client(script, args, &done))
    }

    /// The command line of a client program against this server.
    pub fn client_command(&self, script: &str, key: Option<&str>, args: &[&str]) -> Command {
        let mut cmd = Command::new(clients_python());
        cmd.arg(clients_dir().join(script))
            .arg("--url")
            .arg(&self.url);
        if let Some(key) = key {
            cmd.args(["--key", key]);
        }
        cmd.args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .current_dir(clients_dir());
        for var in [
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            "ANTHROPIC_AUTH_TOKEN",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    pub fn fail_client(&self, script: &str, args: &[&str], done: &Finished) -> ! {
        panic!(
            "{script} {args:?} failed ({:?}{})\n--- stdout ---\n{}\n--- stderr ---\n{}\n{}",
            done.status,
            if done.timed_out { ", timed out" } else { "" },
            done.stdout.trim_end(),
            done.stderr.trim_end(),
            self.log_tail()
        )
    }
}

/// The last line of `out` that parses as JSON.
pub fn last_json_line(out: &str) -> Option<serde_json::Value> {
    out.lines()
        .rev()
        .find_map(|l| serde_json::from_str(l.trim()).ok())
}

impl Drop for Server {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

/// A server shared by several tests (the test threads run at once), with a lock:
/// tests that only need the server take `shared()`, tests whose checks need it to
/// themselves (all slots idle, batch composition, memory) take `exclusive()`.
pub struct Shared {
    pub server: Server,
    lock: std::sync::RwLock<()>,
}

impl Shared {
    pub fn new(server: Server) -> Shared {
        Shared {
            server,
            lock: std::sync::RwLock::new(()),
        }
    }

    pub fn shared(&self) -> (std::sync::RwLockReadGuard<'_, ()>, &Server) {
        let guard = self.lock.read().unwrap_or_else(|e| e.into_inner());
        self.server.assert_alive();
        (guard, &self.server)
    }

    pub fn exclusive(&self) -> (std::sync::RwLockWriteGuard<'_, ()>, &Server) {
        let guard = self.lock.write().unwrap_or_else(|e| e.into_inner());
        self.server.assert_alive();
        (guard, &self.server)
    }
}

/// Qwen 2.5 Instruct's chat template: Hermes-style tool calls (JSON in `<tool_call>`),
/// which llama.cpp's chat layer recognises. Gemma's own template has no tools.
pub const HERMES_TOOLS_JINJA: &str = r#"{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"#;

/// A copy of the test Gemma in `dir`, named `name`, with `jinja` as its
/// `tokenizer.chat_template` (the weights copied as they are).
pub fn gemma_with_template(dir: &Path, name: &str, jinja: &str) -> PathBuf {
    use std::io::{Seek, SeekFrom};
    use strix_run::gguf::{read_file, GgufValue, GgufWriter, TensorData, TensorInfo};

    let src = crate::support::gemma_path();
    let (header, _) = read_file(&src).expect("read Gemma's header");
    let mut w = GgufWriter::new();
    for (key, value) in &header.metadata {
        w.set(key.clone(), value.clone());
    }
    w.set(
        "tokenizer.chat_template",
        GgufValue::String(jinja.to_owned()),
    );
    for t in &header.tensors {
        w.add_tensor(&t.name, t.ggml_type, &t.shape)
            .expect("a tensor of the copy");
    }
    let originals: std::collections::HashMap<&str, u64> = header
        .tensors
        .iter()
        .map(|t| (t.name.as_str(), header.data_offset + t.offset))
        .collect();
    let mut file = std::fs::File::open(&src).expect("open Gemma");
    let mut fill = |t: &TensorInfo, offset: u64, chunk: &mut [u8]| {
        file.seek(SeekFrom::Start(originals[t.name.as_str()] + offset))
            .expect("seek in Gemma");
        file.read_exact(chunk).expect("read Gemma's tensor data");
    };
    let copy = dir.join(name);
    w.write(&copy, TensorData::Fill(&mut fill))
        .expect("write the copy");
    copy
}
