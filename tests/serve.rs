//! `strix-run serve` driven by real clients that nobody in this project wrote: the
//! `openai` and `anthropic` Python packages from PyPI (the programs in `tests/clients/`,
//! run by the venv `scripts/setup` makes in `target/clients-venv`) and curl, against the
//! real Gemma 3 270M.
//!
//! Servers are shared where the checks allow (test threads run at once): the main one
//! (4 slots of 512 tokens, a 64 KiB body limit) and a keyed one (`--api-key`, 1 slot,
//! queue 1) start on first use and live until the test process ends. A test whose
//! checks need the server to itself (greedy equalities across requests, all slots
//! idle, memory) takes it exclusively. Every wait is bounded; token counts are small.

use crate::support::server::{run_bounded, spawn_tied, Server, Shared, CLIENT_TIMEOUT};
use serde_json::{json, Value};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Context tokens per slot of the main server.
const MAIN_CTX: u64 = 512;
/// Body limit of the main server.
const MAIN_MAX_BODY: usize = 64 * 1024;
/// The keyed server's key.
const KEY: &str = "secret";

/// 4 slots of 512 tokens, a 64 KiB body limit, room for 16 waiting requests.
fn main_server() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        Shared::new(Server::start(&[
            "--parallel",
            "4",
            "--ctx",
            &MAIN_CTX.to_string(),
            "--max-body",
            &MAIN_MAX_BODY.to_string(),
            "--queue",
            "16",
        ]))
    })
}

/// `--api-key secret`, one slot and one place in the queue.
fn keyed_server() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        Shared::new(Server::start(&[
            "--api-key",
            KEY,
            "--parallel",
            "1",
            "--queue",
            "1",
            "--ctx",
            "512",
        ]))
    })
}

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

/// `openai_client.py COMMAND --requests REQUESTS FLAGS...`: one result per request.
fn openai(
    server: &Server,
    key: Option<&str>,
    command: &str,
    requests: &Value,
    flags: &[&str],
) -> Vec<Value> {
    let requests = requests.to_string();
    let mut args = vec![command, "--requests", &requests];
    args.extend_from_slice(flags);
    let out = server.client("openai_client.py", key, &args);
    out.as_array()
        .unwrap_or_else(|| panic!("openai_client.py printed no list: {out}"))
        .clone()
}

/// `anthropic_client.py messages --requests REQUESTS FLAGS...`.
fn anthropic(server: &Server, key: Option<&str>, requests: &Value, flags: &[&str]) -> Vec<Value> {
    let requests = requests.to_string();
    let mut args = vec!["messages", "--requests", &requests];
    args.extend_from_slice(flags);
    let out = server.client("anthropic_client.py", key, &args);
    out.as_array()
        .unwrap_or_else(|| panic!("anthropic_client.py printed no list: {out}"))
        .clone()
}

fn text(result: &Value) -> &str {
    result["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {result}"))
}

fn int(v: &Value, what: &str) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("{what} is not a non-negative integer: {v}"))
}

/// OpenAI's usage object: the three counts add up, `prompt_tokens_details.cached_tokens`
/// is a count. Returns (prompt, completion).
fn check_usage(usage: &Value) -> (u64, u64) {
    let prompt = int(&usage["prompt_tokens"], "usage.prompt_tokens");
    let completion = int(&usage["completion_tokens"], "usage.completion_tokens");
    let total = int(&usage["total_tokens"], "usage.total_tokens");
    assert_eq!(total, prompt + completion, "usage: {usage}");
    assert!(prompt > 0, "usage.prompt_tokens is 0: {usage}");
    int(
        &usage["prompt_tokens_details"]["cached_tokens"],
        "usage.prompt_tokens_details.cached_tokens",
    );
    (prompt, completion)
}

/// llama-server's `timings` object.
fn check_timings(timings: &Value, completion_tokens: u64) {
    for key in [
        "prompt_n",
        "prompt_ms",
        "prompt_per_second",
        "predicted_n",
        "predicted_ms",
        "predicted_per_second",
        "cache_n",
    ] {
        assert!(
            timings[key].is_number(),
            "timings.{key} is not a number: {timings}"
        );
    }
    assert_eq!(
        timings["predicted_n"].as_u64(),
        Some(completion_tokens),
        "timings.predicted_n against usage.completion_tokens: {timings}"
    );
}

/// An OpenAI error body: `{"error": {"message", "type", "param", "code"}}`.
fn openai_error(r: &crate::support::server::Response, status: u16) -> Value {
    assert_eq!(r.status, status, "wanted HTTP {status}, got: {}", r.body);
    let body = r.json();
    let e = &body["error"];
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no error.message: {body}"
    );
    assert!(e["type"].is_string(), "error.type is not a string: {body}");
    let obj = e.as_object().unwrap();
    assert!(
        obj.contains_key("param") && obj.contains_key("code"),
        "error.param and error.code must be there (null allowed): {body}"
    );
    e.clone()
}

/// An Anthropic error body: `{"type": "error", "error": {"type": KIND, "message"}}`.
fn anthropic_error(r: &crate::support::server::Response, status: u16, kind: &str) -> Value {
    assert_eq!(r.status, status, "wanted HTTP {status}, got: {}", r.body);
    let body = r.json();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no error.message: {body}"
    );
    body["error"].clone()
}

/// Whether an OpenAI error names `field`: as `param`, or as a word of the message.
fn names_field(error: &Value, field: &str) -> bool {
    error["param"] == field
        || error["message"].as_str().is_some_and(|m| {
            m.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|w| w == field)
        })
}

/// The integers in a message.
fn numbers(message: &str) -> Vec<u64> {
    message
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// A word of `text` (letters only, at least 4) whose first occurrence is not at the
/// start: a stop string greedy output reaches.
fn stop_word(text: &str) -> String {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphabetic()))
        .find(|w| {
            w.len() >= 4 && w.chars().all(char::is_alphabetic) && text.find(w).unwrap_or(0) > 0
        })
        .unwrap_or_else(|| panic!("no word of 4+ letters to stop on in {text:?}"))
        .to_string()
}

/// A value of a Prometheus metric without labels.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (n, v) = l.split_once(char::is_whitespace)?;
        (n == name || n.starts_with(&format!("{name}{{")))
            .then(|| v.trim().parse().ok())
            .flatten()
    })
}

#[test]
fn health_models_metrics_and_slots() {
    let (_g, s) = main_server().shared();
    // Right after `listening`: 503 loading, or 200 when loading was already done.
    match &s.first_health {
        Ok(r) if r.status == 503 => {
            assert_eq!(r.json()["status"], "loading", "503 /health: {}", r.body)
        }
        Ok(r) if r.status == 200 => assert_eq!(r.json()["status"], "ok", "{}", r.body),
        Ok(r) => panic!("GET /health while loading: HTTP {}: {}", r.status, r.body),
        Err(e) => panic!("GET /health right after `listening` got no answer: {e}"),
    }
    let health = s.get("/health");
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json()["status"], "ok", "{}", health.body);

    let models = s.get("/v1/models");
    assert_eq!(models.status, 200, "{}", models.body);
    let body = models.json();
    assert_eq!(body["object"], "list", "{body}");
    let data = body["data"].as_array().expect("data is a list");
    assert_eq!(data.len(), 1, "{body}");
    assert_eq!(data[0]["id"], s.model_id.as_str(), "{body}");
    assert_eq!(data[0]["object"], "model", "{body}");
    assert_eq!(data[0]["owned_by"], "strix-run", "{body}");
    // The same through the openai package.
    let listed = s.client("openai_client.py", None, &["models"]);
    assert_eq!(
        listed[0]["id"],
        s.model_id.as_str(),
        "openai models.list(): {listed}"
    );

    let metrics = s.get("/metrics");
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "/metrics content-type: {:?}",
        metrics.header("content-type")
    );
    for name in [
        "strix_requests_total",
        "strix_prompt_tokens_total",
        "strix_generated_tokens_total",
        "strix_queue_depth",
        "strix_slots_busy",
        "strix_slots_total",
    ] {
        assert!(
            metric(&metrics.body, name).is_some(),
            "/metrics has no value for {name}:\n{}",
            metrics.body
        );
    }
    assert_eq!(metric(&metrics.body, "strix_slots_total"), Some(4.0));

    let slots = s.slots();
    assert_eq!(slots.len(), 4, "{slots:?}");
    for (i, slot) in slots.iter().enumerate() {
        assert_eq!(slot["id"], i, "{slot}");
        assert!(
            ["idle", "prompt", "generating"].contains(&slot["state"].as_str().unwrap_or("")),
            "slot state: {slot}"
        );
    }
}

#[test]
fn openai_chat_completion_shape() {
    let (_g, s) = main_server().shared();
    let r = openai(
        s,
        None,
        "chat",
        &json!({
            "model": s.model_id,
            "messages": [
                {"role": "system", "content": "You answer in one short sentence."},
                {"role": "user", "content": "What is the sky's colour?"},
            ],
            "temperature": 0, "max_tokens": 16,
        }),
        &[],
    );
    let r = &r[0];
    assert_eq!(r["model"], s.model_id.as_str(), "{r}");
    assert_eq!(r["role"], "assistant", "{r}");
    assert!(!text(r).is_empty(), "empty answer: {r}");
    assert!(
        r["id"].as_str().is_some_and(|id| !id.is_empty()),
        "no id: {r}"
    );
    assert!(
        ["stop", "length"].contains(&r["finish_reason"].as_str().unwrap_or("")),
        "{r}"
    );
    let (_, completion) = check_usage(&r["usage"]);
    assert!((1..=16).contains(&completion), "{r}");
    if r["finish_reason"] == "length" {
        assert_eq!(completion, 16, "{r}");
    }
    check_timings(&r["timings"], completion);
}

#[test]
fn openai_stream_equals_the_non_streamed_greedy_answer() {
    let (_g, s) = main_server().exclusive();
    let request = json!({
        "model": s.model_id, "messages": user("Name three animals that live in the sea."),
        "temperature": 0, "max_tokens": 24,
    });
    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    // The request twice first: the second finds its whole prompt cached, as the
    // stream will. (Whether a partly cached prompt changes greedy output is for
    // `openai_seed_reproducible` and `greedy_completions_equal_the_cli` to show.)
    let r = openai(s, None, "chat", &json!([request, request, streamed]), &[]);
    let (whole, stream) = (&r[1], &r[2]);
    assert!(!text(stream).is_empty(), "empty stream: {stream}");
    assert_eq!(
        text(stream),
        text(whole),
        "concatenated deltas against the non-streamed greedy answer"
    );
    assert_eq!(stream["finish_reason"], whole["finish_reason"], "{stream}");
    assert_eq!(
        stream["objects"],
        json!(["chat.completion.chunk"]),
        "{stream}"
    );
    assert_eq!(
        stream["ids"], 1,
        "every chunk of one stream has the same id: {stream}"
    );
    assert_eq!(
        stream["roles"][0], "assistant",
        "the first delta carries the role: {stream}"
    );
    assert!(
        !stream["usage"].is_null(),
        "no usage chunk with include_usage: {stream}"
    );
    assert_eq!(
        stream["usage_chunk_choices"], 0,
        "the usage chunk has no choices: {stream}"
    );
    let (_, completion) = check_usage(&stream["usage"]);
    assert_eq!(
        completion,
        int(&whole["usage"]["completion_tokens"], "completion_tokens"),
        "{stream}"
    );
}

/// Raw SSE on the wire, as curl receives it: `data: {json}` events, the usage chunk
/// (with include_usage) last, then `data: [DONE]`.
#[test]
fn sse_wire_format_with_curl() {
    let (_g, s) = main_server().shared();
    for (path, body, object) in [
        (
            "/v1/chat/completions",
            json!({"model": s.model_id, "messages": user("Say hi."), "max_tokens": 8,
                   "stream": true, "stream_options": {"include_usage": true}}),
            "chat.completion.chunk",
        ),
        (
            "/v1/completions",
            json!({"model": s.model_id, "prompt": "The capital of France is", "max_tokens": 8,
                   "stream": true, "stream_options": {"include_usage": true}}),
            "text_completion",
        ),
    ] {
        let r = s.post_json(path, &body.to_string(), &[]);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.starts_with("text/event-stream")),
            "{path}: content-type {:?}",
            r.header("content-type")
        );
        let body = r.body.replace("\r\n", "\n");
        let events: Vec<&str> = body
            .split("\n\n")
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        assert!(events.len() >= 3, "{path}: too few events: {}", r.body);
        assert_eq!(
            *events.last().unwrap(),
            "data: [DONE]",
            "{path}: the stream must end with data: [DONE]: {}",
            r.body
        );
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| {
                let data = e
                    .strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("{path}: an event without `data: `: {e:?}"));
                serde_json::from_str(data)
                    .unwrap_or_else(|err| panic!("{path}: event is not JSON ({err}): {data}"))
            })
            .collect();
        for c in &chunks {
            assert_eq!(c["object"], object, "{path}: {c}");
        }
        let usage = chunks.last().unwrap();
        assert_eq!(
            usage["choices"],
            json!([]),
            "{path}: the last chunk before [DONE] is the usage chunk: {usage}"
        );
        check_usage(&usage["usage"]);
        assert!(
            chunks
                .iter()
                .any(|c| !c["choices"][0]["finish_reason"].is_null()),
            "{path}: no chunk has a finish_reason: {}",
            r.body
        );
    }
}

#[test]
fn openai_stop_sequences() {
    let (_g, s) = main_server().exclusive();
    let request = json!({
        "model": s.model_id, "messages": user("Write two sentences about the ocean."),
        "temperature": 0, "max_tokens": 24,
    });
    // Twice: the second finds its whole prompt cached, as the requests below will.
    let greedy = openai(s, None, "chat", &json!([request, request]), &[]);
    let greedy = text(&greedy[1]).to_string();
    let stop = stop_word(&greedy);
    let at = greedy.find(&stop).unwrap();
    let mut as_string = request.clone();
    as_string["stop"] = json!(stop);
    let mut as_list = request.clone();
    as_list["stop"] = json!(["zzqx never said", stop]);
    let mut streamed = as_string.clone();
    streamed["stream"] = json!(true);
    let completion = json!({
        "model": s.model_id, "prompt": "The three primary colours are",
        "temperature": 0, "max_tokens": 24,
    });
    let results = openai(s, None, "chat", &json!([as_string, as_list, streamed]), &[]);
    for r in &results {
        let t = text(r);
        assert!(
            !t.contains(&stop),
            "stop {stop:?}: the output holds it: {t:?} (greedy: {greedy:?})"
        );
        assert_eq!(r["finish_reason"], "stop", "stop {stop:?}: {r}");
        assert!(
            greedy.starts_with(t) && t.trim_end() == greedy[..at].trim_end(),
            "stop {stop:?}: {t:?} is not the greedy answer {greedy:?} cut before it"
        );
    }
    // The completions route too.
    let whole = openai(s, None, "complete", &json!([completion, completion]), &[]);
    let whole = text(&whole[1]).to_string();
    let stop = stop_word(&whole);
    let at = whole.find(&stop).unwrap();
    let mut cut = completion.clone();
    cut["stop"] = json!([stop]);
    let r = openai(s, None, "complete", &cut, &[]);
    let t = text(&r[0]);
    assert_eq!(r[0]["finish_reason"], "stop", "{}", r[0]);
    assert_eq!(
        t.trim_end(),
        whole[..at].trim_end(),
        "completion stopped on {stop:?}; whole: {whole:?}"
    );
}

#[test]
fn openai_max_tokens_ends_with_length() {
    let (_g, s) = main_server().shared();
    let base = json!({
        "model": s.model_id,
        "messages": user("Count from one to one hundred in words, separated by commas."),
        "temperature": 0,
    });
    let mut a = base.clone();
    a["max_tokens"] = json!(5);
    let mut b = base.clone();
    b["max_completion_tokens"] = json!(5);
    let mut c = a.clone();
    c["stream"] = json!(true);
    c["stream_options"] = json!({"include_usage": true});
    let d = json!({"model": s.model_id, "prompt": "One, two, three, four,", "max_tokens": 5, "temperature": 0});
    let mut results = openai(s, None, "chat", &json!([a, b, c]), &[]);
    results.extend(openai(s, None, "complete", &d, &[]));
    for r in &results {
        assert_eq!(r["finish_reason"], "length", "{r}");
        assert_eq!(r["usage"]["completion_tokens"], 5, "{r}");
        assert!(!text(r).is_empty(), "{r}");
    }
}

#[test]
fn openai_seed_reproducible() {
    let (_g, s) = main_server().exclusive();
    let request = |seed: u64| {
        json!({
            "model": s.model_id, "messages": user("Invent a name for a new planet and describe it."),
            "temperature": 1.0, "seed": seed, "max_tokens": 24,
            // A reused prefix gives slightly different numbers than evaluating it again
            // (llama.cpp's results depend on how tokens were batched), which can flip a
            // sampled token: the same text every time needs the whole prompt evaluated.
            "cache_prompt": false,
        })
    };
    let r = openai(
        s,
        None,
        "chat",
        &json!([request(42), request(42), request(42), request(7)]),
        &[],
    );
    assert!(!text(&r[0]).is_empty(), "{}", r[0]);
    let runs: Vec<String> = r[..3]
        .iter()
        .map(|x| {
            format!(
                "{:?} (cached prompt tokens: {})",
                text(x),
                x["usage"]["prompt_tokens_details"]["cached_tokens"]
            )
        })
        .collect();
    assert!(
        text(&r[0]) == text(&r[1]) && text(&r[1]) == text(&r[2]),
        "temperature 1, seed 42, three times: different texts:\n  {}",
        runs.join("\n  ")
    );
    if text(&r[0]) == text(&r[3]) {
        eprintln!("note: seeds 42 and 7 gave the same text: {:?}", text(&r[0]));
    }
}

#[test]
fn openai_response_format_json_schema() {
    let (_g, s) = main_server().shared();
    let schema = json!({
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 24},
            "population": {"type": "integer"},
        },
        "required": ["city", "population"],
        "additionalProperties": false,
    });
    let prompt = user("Give the capital of France and its population, as JSON.");
    let r = openai(
        s,
        None,
        "chat",
        &json!([
            {"model": s.model_id, "messages": prompt, "temperature": 0, "max_tokens": 64,
             "response_format": {"type": "json_schema",
                                 "json_schema": {"name": "capital", "schema": schema}}},
            {"model": s.model_id, "messages": prompt, "temperature": 0, "max_tokens": 32,
             "response_format": {"type": "json_object"}},
        ]),
        &[],
    );
    let answer: Value = serde_json::from_str(text(&r[0]))
        .unwrap_or_else(|e| panic!("json_schema answer is not JSON ({e}): {}", r[0]));
    assert_eq!(r[0]["finish_reason"], "stop", "{}", r[0]);
    let obj = answer
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {answer}"));
    assert!(
        obj["city"]
            .as_str()
            .is_some_and(|c| c.chars().count() <= 24),
        "city: {answer}"
    );
    assert!(
        obj["population"].is_i64() || obj["population"].is_u64(),
        "population is not an integer: {answer}"
    );
    assert_eq!(obj.len(), 2, "additionalProperties false: {answer}");
    // json_object bounds nothing's length: a small model may fill max_tokens inside
    // the object. What it wrote must still start an object, and a finished answer
    // must parse as one.
    let object = text(&r[1]);
    assert!(
        object.trim_start().starts_with('{'),
        "json_object answer does not start an object: {}",
        r[1]
    );
    if r[1]["finish_reason"] == "stop" {
        let any: Value = serde_json::from_str(object)
            .unwrap_or_else(|e| panic!("json_object answer is not JSON ({e}): {}", r[1]));
        assert!(
            any.is_object(),
            "json_object answer is not an object: {any}"
        );
    } else {
        eprintln!("note: the json_object answer filled max_tokens: {object:?}");
    }
}

/// Greedy /v1/completions equals `strix-run -m MODEL -p PROMPT --greedy -n N`, token
/// for token: the same text, prompt tokens (BOS, special tokens parsed) and count.
#[test]
fn greedy_completions_equal_the_cli() {
    const N: u32 = 16;
    let config = tempfile::tempdir().unwrap();
    let cli: Vec<(String, u64, u64)> = crate::support::PROMPTS
        .iter()
        .map(|prompt| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_strix-run"));
            cmd.arg("-m")
                .arg(crate::support::gemma_path())
                .args(["-p", prompt, "--greedy", "-n", &N.to_string()])
                // The threads of the test servers (see `Server::spawn`).
                .args(["--threads", "1", "--threads-batch", "1"])
                .env("XDG_CONFIG_HOME", config.path());
            let done = run_bounded(cmd, b"", CLIENT_TIMEOUT);
            assert!(done.success(), "strix-run -p {prompt:?}: {done:?}");
            // The generated text, then one newline; the statistics go to stderr:
            // `[prompt P tokens at … · generated G tokens at …`.
            let text = done
                .stdout
                .strip_suffix('\n')
                .unwrap_or_else(|| {
                    panic!("CLI stdout without its final newline: {:?}", done.stdout)
                })
                .to_string();
            let count = |label: &str| -> u64 {
                let at = done
                    .stderr
                    .rfind(label)
                    .unwrap_or_else(|| panic!("no {label:?} in the CLI's stderr: {}", done.stderr));
                numbers(&done.stderr[at + label.len()..])[0]
            };
            (text, count("[prompt "), count("generated "))
        })
        .collect();
    let (_g, s) = main_server().exclusive();
    let requests: Vec<Value> = crate::support::PROMPTS
        .iter()
        .map(|p| json!({"model": s.model_id, "prompt": p, "temperature": 0, "max_tokens": N}))
        .collect();
    let results = openai(s, None, "complete", &json!(requests), &[]);
    let mut differ = Vec::new();
    for ((prompt, (cli_text, prompt_n, generated)), r) in
        crate::support::PROMPTS.iter().zip(&cli).zip(&results)
    {
        let (p, c) = check_usage(&r["usage"]);
        check_timings(&r["timings"], c);
        if text(r) != cli_text || p != *prompt_n || c != *generated {
            differ.push(format!(
                "prompt {prompt:?}:\n  server: {:?} (prompt {p} tokens, {} cached; generated {c})\n  CLI:    {cli_text:?} (prompt {prompt_n} tokens; generated {generated})",
                text(r),
                r["usage"]["prompt_tokens_details"]["cached_tokens"],
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "greedy /v1/completions against `strix-run -p PROMPT --greedy -n {N}`:\n{}",
        differ.join("\n")
    );
}

/// Four slots, eight clients at once, eight prompts: each answer equals the one the
/// same prompt gets alone. First, no answer sent together picks up another prompt's
/// topic word that its lone answer lacks (cross-talk between slots); then the strict
/// equality.
#[test]
fn concurrent_requests_do_not_mix() {
    // --deterministic: with llama.cpp's repacked CPU weights, 3 to 5 of these 8 answers
    // left the alone-answer after 32-46 characters when batched (the multi-row kernels
    // sum in another order); without repacking they were equal in every run.
    let server = Server::start(&["--parallel", "4", "--ctx", "512", "--deterministic"]);
    let s = &server;
    // Each prompt with a word of its own that no other prompt's answer should hold.
    let prompts = [
        ("Name a famous painter.", "painter"),
        ("What is the boiling point of water?", "boiling"),
        ("Write a short line about autumn leaves.", "autumn"),
        ("List two programming languages.", "programming"),
        ("What do bees make?", "bees"),
        ("Describe a cat in four words.", "cat"),
        ("Translate 'good morning' into French.", "French"),
        ("Why is the sea salty?", "salty"),
    ];
    let requests: Vec<Value> = prompts
        .iter()
        // Each prompt evaluated whole (no reused prefix), alone and together alike.
        .map(|(p, _)| json!({"model": s.model_id, "messages": user(p), "temperature": 0, "max_tokens": 24, "cache_prompt": false}))
        .collect();
    let alone = openai(s, None, "chat", &json!(requests), &[]);
    let together = openai(s, None, "chat", &json!(requests), &["--concurrent"]);
    let has_word = |text: &str, word: &str| {
        text.split(|c: char| !c.is_alphanumeric())
            .any(|w| w.eq_ignore_ascii_case(word))
    };
    let counts = |r: &Value| {
        (
            r["usage"]["prompt_tokens"].clone(),
            r["usage"]["completion_tokens"].clone(),
        )
    };
    let mut crossed = Vec::new();
    let mut differ = Vec::new();
    for (i, (((p, _), a), t)) in prompts.iter().zip(&alone).zip(&together).enumerate() {
        assert!(!text(a).is_empty(), "{p:?}: empty answer alone: {a}");
        for (j, (_, word)) in prompts.iter().enumerate() {
            if i != j && has_word(text(t), word) && !has_word(text(a), word) {
                crossed.push(format!(
                    "{p:?} sent together holds {word:?} (prompt {j}'s): {:?}; alone: {:?}",
                    text(t),
                    text(a)
                ));
            }
        }
        if text(a) != text(t) || counts(a) != counts(t) {
            let same = text(a)
                .chars()
                .zip(text(t).chars())
                .take_while(|(x, y)| x == y)
                .count();
            differ.push(format!(
                "{p:?} (the same for {same} characters):\n  alone:    {:?} {}\n  together: {:?} {}",
                text(a),
                a["usage"],
                text(t),
                t["usage"]
            ));
        }
    }
    assert!(
        crossed.is_empty(),
        "cross-talk between slots:\n{}",
        crossed.join("\n")
    );
    assert!(
        differ.is_empty(),
        "{} of 8 greedy answers differ when sent together:\n{}",
        differ.len(),
        differ.join("\n")
    );
}

/// A client that hangs up mid-stream frees its slot within 10 s.
#[test]
fn cancelled_stream_frees_its_slot() {
    let (_g, s) = main_server().exclusive();
    let request = json!({
        "model": s.model_id,
        "messages": user("Write a very long story about a dragon who learns to cook. Make it at least forty paragraphs."),
        "temperature": 0, "max_tokens": 400,
    });
    let r = s.client(
        "openai_client.py",
        None,
        &["cancel", "--request", &request.to_string(), "--chunks", "3"],
    );
    assert_eq!(r["chunks_read"], 3, "{r}");
    let hung_up = Instant::now();
    if let Err(e) = s.wait_slots_idle(Duration::from_secs(10)) {
        panic!(
            "{e} (10 s after the client hung up at chunk 3 of 400 tokens)\n{}",
            s.log_tail()
        );
    }
    eprintln!("slots idle {:?} after the hang-up", hung_up.elapsed());
    let after = openai(
        s,
        None,
        "chat",
        &json!({"model": s.model_id, "messages": user("Say yes."), "max_tokens": 4}),
        &[],
    );
    check_usage(&after[0]["usage"]);
}

#[test]
fn error_bodies() {
    let (_g, s) = main_server().shared();
    let chat = "/v1/chat/completions";
    let id = s.model_id.as_str();
    // Malformed JSON, wrong types.
    openai_error(
        &s.post_json(chat, r#"{"model": "x", "messages": ["#, &[]),
        400,
    );
    openai_error(
        &s.post_json(
            chat,
            &json!({"model": id, "messages": "hi"}).to_string(),
            &[],
        ),
        400,
    );
    openai_error(
        &s.post_json(
            chat,
            &json!({"model": id, "messages": user("hi"), "max_tokens": "four"}).to_string(),
            &[],
        ),
        400,
    );
    openai_error(
        &s.post_json(
            "/v1/completions",
            &json!({"model": id, "prompt": 5}).to_string(),
            &[],
        ),
        400,
    );
    // A request body for each route.
    let body_for = |path: &str, model: &str| {
        if path == chat {
            json!({"model": model, "messages": user("hi"), "max_tokens": 2})
        } else {
            json!({"model": model, "prompt": "hi", "max_tokens": 2})
        }
    };
    // Another model.
    for path in [chat, "/v1/completions"] {
        let body = body_for(path, "gpt-4o");
        openai_error(&s.post_json(path, &body.to_string(), &[]), 404);
    }
    // Unsupported fields with a non-default value name the field.
    for (path, field, value) in [
        (chat, "n", json!(2)),
        (chat, "logprobs", json!(true)),
        ("/v1/completions", "n", json!(2)),
    ] {
        let mut body = body_for(path, id);
        body[field] = value;
        let e = openai_error(&s.post_json(path, &body.to_string(), &[]), 400);
        assert!(
            names_field(&e, field),
            "{path} {field}: the error does not name it: {e}"
        );
    }
    // A body over --max-body.
    let big = "a ".repeat(MAIN_MAX_BODY);
    let body = json!({"model": id, "messages": user(&big), "max_tokens": 2}).to_string();
    assert!(body.len() > MAIN_MAX_BODY);
    openai_error(&s.post_json(chat, &body, &[]), 413);
    // A prompt longer than a slot's context: 400 with both counts.
    let long = "apple river stone cloud ".repeat(200);
    for (path, body) in [
        (
            chat,
            json!({"model": id, "messages": user(&long), "max_tokens": 4}),
        ),
        (
            "/v1/completions",
            json!({"model": id, "prompt": long, "max_tokens": 4}),
        ),
    ] {
        let e = openai_error(&s.post_json(path, &body.to_string(), &[]), 400);
        let message = e["message"].as_str().unwrap();
        let n = numbers(message);
        assert!(
            n.contains(&MAIN_CTX) && n.iter().any(|&x| x > MAIN_CTX),
            "{path}: the message should give the prompt's tokens (> {MAIN_CTX}) and the context ({MAIN_CTX}): {message:?}"
        );
    }
    // The Anthropic route's own shape.
    let messages = "/v1/messages";
    anthropic_error(
        &s.post_json(messages, r#"{"model": "x", "max_tokens": "#, &[]),
        400,
        "invalid_request_error",
    );
    anthropic_error(
        &s.post_json(
            messages,
            &json!({"model": id, "messages": user("hi")}).to_string(),
            &[],
        ),
        400,
        "invalid_request_error",
    );
    anthropic_error(
        &s.post_json(
            messages,
            &json!({"model": "claude-x", "max_tokens": 4, "messages": user("hi")}).to_string(),
            &[],
        ),
        404,
        "not_found_error",
    );
    anthropic_error(
        &s.post_json(
            messages,
            &json!({"model": id, "max_tokens": 4, "messages": user(&long)}).to_string(),
            &[],
        ),
        400,
        "invalid_request_error",
    );
    let body = json!({"model": id, "max_tokens": 4, "messages": user(&big)}).to_string();
    anthropic_error(&s.post_json(messages, &body, &[]), 413, "request_too_large");
    s.assert_alive();
}

#[test]
fn api_key_required_on_v1() {
    let (_g, s) = keyed_server().shared();
    let chat =
        json!({"model": s.model_id, "messages": user("Say hi."), "max_tokens": 2}).to_string();
    let bearer = format!("Authorization: Bearer {KEY}");
    let x_key = format!("x-api-key: {KEY}");
    // No key, a wrong key (both headers): 401.
    for headers in [
        vec![],
        vec!["Authorization: Bearer wrong"],
        vec!["x-api-key: wrong"],
    ] {
        openai_error(&s.request("GET", "/v1/models", &headers, None), 401);
        openai_error(&s.post_json("/v1/chat/completions", &chat, &headers), 401);
        let body =
            json!({"model": s.model_id, "max_tokens": 2, "messages": user("hi")}).to_string();
        anthropic_error(
            &s.post_json("/v1/messages", &body, &headers),
            401,
            "authentication_error",
        );
    }
    // The key, either way: 200.
    for header in [bearer.as_str(), x_key.as_str()] {
        let r = s.request("GET", "/v1/models", &[header], None);
        assert_eq!(r.status, 200, "{header}: {}", r.body);
        let r = s.post_json("/v1/chat/completions", &chat, &[header]);
        assert_eq!(r.status, 200, "{header}: {}", r.body);
    }
    // The server's own routes need none.
    for path in ["/health", "/metrics", "/slots"] {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path} without a key: {}", r.body);
    }
    // The packages, with the key and with a wrong one.
    let message = json!({"model": s.model_id, "max_tokens": 4, "messages": user("Say hi.")});
    let ok = anthropic(s, Some(KEY), &message, &[]);
    assert!(!text(&ok[0]).is_empty(), "{}", ok[0]);
    let wrong = anthropic(s, Some("wrong"), &message, &["--allow-errors"]);
    assert_eq!(wrong[0]["status"], 401, "{}", wrong[0]);
    assert_eq!(
        wrong[0]["error_class"], "AuthenticationError",
        "{}",
        wrong[0]
    );
    let request = json!({"model": s.model_id, "messages": user("Say hi."), "max_tokens": 4});
    let ok = openai(s, Some(KEY), "chat", &request, &[]);
    check_usage(&ok[0]["usage"]);
    let wrong = openai(s, Some("wrong"), "chat", &request, &["--allow-errors"]);
    assert_eq!(wrong[0]["status"], 401, "{}", wrong[0]);
}

#[test]
fn anthropic_messages() {
    let (_g, s) = main_server().exclusive();
    let base = json!({
        "model": s.model_id, "max_tokens": 24, "temperature": 0,
        "system": "You answer briefly.",
        "messages": user("Name three colours of the rainbow."),
    });
    let mut streamed = base.clone();
    streamed["stream"] = json!(true);
    let mut short = base.clone();
    short["max_tokens"] = json!(3);
    let blocks = json!({
        "model": s.model_id, "max_tokens": 8, "temperature": 0,
        "system": [{"type": "text", "text": "You answer briefly."}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hello."}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello! How can I help?"}]},
            {"role": "user", "content": [{"type": "text", "text": "Name a fruit."}]},
        ],
    });
    // `base` twice first: the second finds its whole prompt cached, as the stream will.
    let r = anthropic(s, None, &json!([base, base, streamed, short, blocks]), &[]);
    let (whole, stream, short, blocks) = (&r[1], &r[2], &r[3], &r[4]);
    for m in [whole, short, blocks] {
        assert_eq!(m["type"], "message", "{m}");
        assert_eq!(m["role"], "assistant", "{m}");
        assert_eq!(m["model"], s.model_id.as_str(), "{m}");
        assert_eq!(m["content_types"], json!(["text"]), "{m}");
        assert!(!text(m).is_empty(), "{m}");
        assert!(int(&m["usage"]["input_tokens"], "input_tokens") > 0, "{m}");
        assert!(
            int(&m["usage"]["output_tokens"], "output_tokens") > 0,
            "{m}"
        );
    }
    assert!(
        ["end_turn", "max_tokens"].contains(&whole["stop_reason"].as_str().unwrap_or("")),
        "{whole}"
    );
    assert!(
        int(&whole["usage"]["output_tokens"], "output_tokens") <= 24,
        "{whole}"
    );
    assert_eq!(short["stop_reason"], "max_tokens", "{short}");
    assert_eq!(short["usage"]["output_tokens"], 3, "{short}");

    // The stream: Anthropic's event sequence, the same text and counts.
    let events: Vec<&str> = stream["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|e| *e != "ping")
        .collect();
    let position = |name: &str| {
        events
            .iter()
            .position(|e| *e == name)
            .unwrap_or_else(|| panic!("no {name} event: {events:?}"))
    };
    assert_eq!(events.first(), Some(&"message_start"), "{events:?}");
    assert_eq!(events.last(), Some(&"message_stop"), "{events:?}");
    assert!(
        position("message_start") < position("content_block_start")
            && position("content_block_start") < position("content_block_delta")
            && position("content_block_delta") < position("content_block_stop")
            && position("content_block_stop") < position("message_delta")
            && position("message_delta") < position("message_stop"),
        "event order: {events:?}"
    );
    assert_eq!(stream["block_types"], json!(["text"]), "{stream}");
    assert_eq!(stream["message"]["role"], "assistant", "{stream}");
    assert_eq!(
        text(stream),
        text(whole),
        "streamed text against the whole message"
    );
    assert_eq!(stream["stop_reason"], whole["stop_reason"], "{stream}");
    assert_eq!(stream["usage"], whole["usage"], "{stream}");

    // stop_sequences: a word of the greedy answer.
    let word = stop_word(text(whole));
    let mut stopped = json!({
        "model": s.model_id, "max_tokens": 24, "temperature": 0,
        "system": "You answer briefly.",
        "messages": user("Name three colours of the rainbow."),
        "stop_sequences": [word],
    });
    let r = anthropic(s, None, &stopped, &[]);
    assert_eq!(r[0]["stop_reason"], "stop_sequence", "{}", r[0]);
    assert_eq!(r[0]["stop_sequence"], word.as_str(), "{}", r[0]);
    assert!(!text(&r[0]).contains(&word), "{}", r[0]);
    stopped["stream"] = json!(true);
    let r = anthropic(s, None, &stopped, &[]);
    assert_eq!(r[0]["stop_reason"], "stop_sequence", "streamed: {}", r[0]);
    assert_eq!(r[0]["stop_sequence"], word.as_str(), "streamed: {}", r[0]);
}

/// One slot, one place in the queue, four long requests at once: the ones that find
/// no room get 503 with Retry-After, the others finish.
#[test]
fn full_queue_answers_503_with_retry_after() {
    let (_g, s) = keyed_server().exclusive();
    let request = json!({
        "model": s.model_id,
        "messages": user("Count from 1 to 200, separated by commas."),
        "temperature": 0, "max_tokens": 48,
    });
    let results = openai(
        s,
        Some(KEY),
        "chat",
        &json!([request, request, request, request]),
        &["--concurrent", "--allow-errors"],
    );
    let busy: Vec<&Value> = results.iter().filter(|r| r["status"] == 503).collect();
    assert!(
        !busy.is_empty(),
        "no request got 503 with 1 slot and a queue of 1: {results:?}"
    );
    for r in &busy {
        let retry = r["retry_after"].as_str().unwrap_or("");
        assert!(
            retry.trim().parse::<u64>().is_ok(),
            "503 without a Retry-After in seconds: {r}"
        );
        let body = &r["body"];
        let message = body["message"]
            .as_str()
            .or(body["error"]["message"].as_str());
        assert!(message.is_some_and(|m| !m.is_empty()), "503 body: {r}");
    }
    for r in results.iter().filter(|r| r["status"] != 503) {
        assert_eq!(r["ok"], true, "not 503, so it should have succeeded: {r}");
        assert_eq!(r["usage"]["completion_tokens"], 48, "{r}");
    }
    s.wait_slots_idle(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
}

/// A bounded soak: afterwards every slot is idle, /health is 200, a request succeeds,
/// and resident memory grew less than 64 MiB from after a warm-up.
#[test]
fn soak_leaves_the_server_healthy() {
    const RSS_BOUND_KIB: u64 = 64 * 1024;
    let (_g, s) = main_server().exclusive();
    let soak = |requests: u32, seconds: u32, seed: u32| {
        s.client(
            "soak.py",
            None,
            &[
                "--model",
                &s.model_id,
                "--requests",
                &requests.to_string(),
                "--seconds",
                &seconds.to_string(),
                "--workers",
                "4",
                "--seed",
                &seed.to_string(),
                "--overlong-words",
                "800",
            ],
        )
    };
    let warm = soak(16, 30, 1);
    s.wait_slots_idle(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("after the warm-up ({warm}): {e}"));
    let before = s.rss_kib();
    let start = Instant::now();
    let report = soak(150, 40, 2);
    eprintln!("soak: {report} in {:?}", start.elapsed());
    let done = int(&report["done"], "done");
    assert!(done >= 30, "only {done} requests in 40 s: {report}");
    s.wait_slots_idle(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("after the soak ({report}): {e}\n{}", s.log_tail()));
    let health = s.get("/health");
    assert_eq!(health.status, 200, "{}", health.body);
    let after = openai(
        s,
        None,
        "chat",
        &json!({"model": s.model_id, "messages": user("Say yes."), "max_tokens": 4}),
        &[],
    );
    check_usage(&after[0]["usage"]);
    let metrics = s.get("/metrics").body;
    assert_eq!(metric(&metrics, "strix_slots_busy"), Some(0.0), "{metrics}");
    assert_eq!(
        metric(&metrics, "strix_queue_depth"),
        Some(0.0),
        "{metrics}"
    );
    let after_kib = s.rss_kib();
    eprintln!("soak: VmRSS {before} KiB after the warm-up, {after_kib} KiB after the soak");
    assert!(
        after_kib < before + RSS_BOUND_KIB,
        "VmRSS grew by {} KiB over {done} requests (bound {RSS_BOUND_KIB} KiB)",
        after_kib.saturating_sub(before)
    );
}

/// SIGTERM while a stream runs: the stream gets to its end, the process exits 0.
#[test]
fn sigterm_lets_the_running_stream_finish() {
    let server = Server::start(&[
        "--parallel",
        "1",
        "--ctx",
        "512",
        "--shutdown-timeout",
        "120",
    ]);
    let request = json!({
        "model": server.model_id,
        "messages": user("Count from 1 to 200, separated by commas."),
        "temperature": 0, "max_tokens": 48, "stream": true,
    });
    let requests = request.to_string();
    let mut cmd = server.client_command(
        "openai_client.py",
        None,
        &["chat", "--requests", &requests, "--announce"],
    );
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut child = spawn_tied(cmd).expect("the client starts");
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || std::io::read_to_string(err).unwrap_or_default());
    let kill = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(line) if line.contains("first_chunk") => {}
        other => {
            kill(&mut child);
            panic!(
                "no first chunk from the stream: {other:?}; client stderr: {}\n{}",
                stderr.join().unwrap_or_default(),
                server.log_tail()
            );
        }
    }
    server.terminate();
    let deadline = Instant::now() + Duration::from_secs(150);
    let status = loop {
        match child.try_wait().expect("waiting for the client") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                kill(&mut child);
                panic!(
                    "the stream did not end within 150 s of SIGTERM\n{}",
                    server.log_tail()
                );
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let lines: Vec<String> = rx.try_iter().collect();
    let stderr = stderr.join().unwrap_or_default();
    assert!(
        status.success(),
        "the client failed after SIGTERM ({status}): {stderr}\n{lines:?}\n{}",
        server.log_tail()
    );
    let result = lines
        .iter()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or_else(|| panic!("no result from the client: {lines:?} {stderr}"));
    let r = &result[0];
    assert!(!text(r).is_empty(), "{r}");
    assert!(
        ["length", "stop"].contains(&r["finish_reason"].as_str().unwrap_or("")),
        "the stream ended without its finish_reason: {r}"
    );
    let exit = server.wait_exit(Duration::from_secs(60));
    assert!(
        exit.is_some_and(|s| s.code() == Some(0)),
        "after SIGTERM the server should exit 0 once the stream is done: {exit:?}\n{}",
        server.log_tail()
    );
}

/// A tool-call round trip through the openai package, on a Gemma copy with a
/// Hermes-style tool template: tool_choice "required" gives a get_weather call with
/// JSON arguments; the tool's result goes back (role "tool") and an answer follows.
#[test]
fn openai_tool_call_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let model = crate::support::server::gemma_with_template(
        dir.path(),
        "gemma-3-270m-tools.gguf",
        crate::support::server::HERMES_TOOLS_JINJA,
    );
    let server = Server::start_model(&model, &["--parallel", "1", "--ctx", "1024"]);
    assert_eq!(server.model_id, "gemma-3-270m-tools");
    let r = server.client(
        "openai_client.py",
        None,
        &["tools", "--model", &server.model_id],
    );
    let first = &r["first"];
    assert_eq!(first["finish_reason"], "tool_calls", "{r}");
    let calls = first["tool_calls"].as_array().expect("tool_calls");
    assert!(!calls.is_empty(), "{r}");
    assert_eq!(calls[0]["name"], "get_weather", "{r}");
    assert_eq!(calls[0]["type"], "function", "{r}");
    assert!(
        calls[0]["id"].as_str().is_some_and(|id| !id.is_empty()),
        "a tool call needs an id: {r}"
    );
    assert!(
        first["arguments"]["city"].is_string(),
        "get_weather's arguments need a city string: {r}"
    );
    let second = &r["second"];
    assert!(
        ["stop", "length"].contains(&second["finish_reason"].as_str().unwrap_or("")),
        "the answer after the tool's result: {r}"
    );
    assert!(
        second["text"]
            .as_str()
            .is_some_and(|t| !t.trim().is_empty()),
        "no final assistant text after the tool's result: {r}"
    );
}

/// The next turn of a conversation evaluates only what is new: the slot that answered
/// the first turn still holds it, and the second request goes there (its prompt starts
/// with the first one). The reuse is reported as OpenAI and llama-server report it.
#[test]
fn the_next_turn_reuses_the_cached_conversation() {
    let (_g, s) = main_server().exclusive();
    let question = "Tell me about the moon.";
    let first = openai(
        s,
        None,
        "chat",
        &json!([{"model": s.model_id, "messages": user(question), "temperature": 0, "max_tokens": 8}]),
        &[],
    );
    let prompt_1 = int(&first[0]["usage"]["prompt_tokens"], "prompt_tokens");
    let second = openai(
        s,
        None,
        "chat",
        &json!([{"model": s.model_id, "temperature": 0, "max_tokens": 8, "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": text(&first[0])},
            {"role": "user", "content": "And the sun?"},
        ]}]),
        &[],
    );
    let usage = &second[0]["usage"];
    let prompt_2 = int(&usage["prompt_tokens"], "prompt_tokens");
    let cached = int(
        &usage["prompt_tokens_details"]["cached_tokens"],
        "cached_tokens",
    );
    assert!(
        cached >= prompt_1 && cached < prompt_2,
        "the second turn ({prompt_2} tokens) reused {cached}; the first turn's prompt alone is {prompt_1}: {}",
        second[0]
    );
    assert_eq!(
        int(&second[0]["timings"]["prompt_n"], "timings.prompt_n"),
        prompt_2 - cached,
        "{}",
        second[0]
    );
}
