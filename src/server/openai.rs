//! OpenAI's API: `POST /v1/chat/completions`, `POST /v1/completions`, `GET /v1/models`.
//!
//! Requests are read in two steps, so that every failure names its cause: the body must
//! be JSON, then each field must have its type (`serde_path_to_error` names the path).
//! Fields OpenAI defines that strix-run does not implement are accepted only at their
//! default value (`n: 1`, `logprobs: false`, ...); any other value, and any field
//! OpenAI does not define, is a 400 naming it, never silently ignored.

use super::engine::{Event, Finish, FinishReason, Generation, Job, Prompt};
use super::error::ApiError;
use super::{finish_timings, AppState};
use crate::runtime::chat::{ChatRequest, ParsedReply};
use crate::runtime::session::SamplingOptions;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedReceiver;

/// Parses a request body: JSON first, then the typed request (the field at fault named).
pub fn parse_body<T: DeserializeOwned>(
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "the request body is larger than the server accepts (--max-body)",
            )
        } else {
            ApiError::new(status, format!("the request body could not be read: {e}"))
        }
    })?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the request body must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ApiError::bad_field(&path, format!("field `{path}`: {}", e.inner()))
    })
}

/// `stop`: one string or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StopField {
    /// One stop string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl StopField {
    /// As a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            StopField::One(s) => vec![s],
            StopField::Many(v) => v,
        }
    }
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamOptions {
    /// Send a last chunk with `usage`.
    #[serde(default)]
    pub include_usage: bool,
}

/// The sampling and length fields both OpenAI routes share.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CommonFields {
    /// The model id (`GET /v1/models`).
    pub model: Option<String>,
    /// Token limit.
    pub max_tokens: Option<u32>,
    /// Temperature (0: greedy).
    pub temperature: Option<f32>,
    /// Top-p.
    pub top_p: Option<f32>,
    /// Top-k (llama.cpp extension).
    pub top_k: Option<i32>,
    /// Min-p (llama.cpp extension).
    pub min_p: Option<f32>,
    /// Repeat penalty (llama.cpp extension).
    pub repeat_penalty: Option<f32>,
    /// Seed.
    pub seed: Option<i64>,
    /// Stop strings.
    pub stop: Option<StopField>,
    /// Stream the answer as server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
    /// Must be 1.
    pub n: Option<u32>,
    /// Must be false / absent.
    pub logprobs: Option<Value>,
    /// Must be absent or 0.
    pub top_logprobs: Option<u32>,
    /// Must be 0.
    pub frequency_penalty: Option<f32>,
    /// Must be 0.
    pub presence_penalty: Option<f32>,
    /// Must be empty.
    pub logit_bias: Option<Map<String, Value>>,
    /// Accepted and not used.
    pub user: Option<String>,
    /// Reuse a slot's cached prefix (llama-server's extension; default true).
    pub cache_prompt: Option<bool>,
}

impl CommonFields {
    /// Refuses values of fields strix-run does not implement.
    fn check(&self) -> Result<(), ApiError> {
        let unsupported = |field: &str, what: &str| {
            Err(ApiError::bad_field(
                field,
                format!("`{field}` {what}: strix-run does not support it"),
            ))
        };
        if self.n.is_some_and(|n| n != 1) {
            return unsupported("n", "must be 1 (one answer per request)");
        }
        match &self.logprobs {
            None | Some(Value::Null) | Some(Value::Bool(false)) => {}
            Some(Value::Number(n)) if n.as_u64() == Some(0) => {}
            Some(_) => return unsupported("logprobs", "is not available"),
        }
        if self.top_logprobs.is_some_and(|n| n != 0) {
            return unsupported("top_logprobs", "is not available");
        }
        if self.frequency_penalty.is_some_and(|p| p != 0.0) {
            return unsupported("frequency_penalty", "must be 0 (use repeat_penalty)");
        }
        if self.presence_penalty.is_some_and(|p| p != 0.0) {
            return unsupported("presence_penalty", "must be 0 (use repeat_penalty)");
        }
        if self.logit_bias.as_ref().is_some_and(|m| !m.is_empty()) {
            return unsupported("logit_bias", "must be empty");
        }
        if self.stream_options.is_some() && !self.stream {
            return Err(ApiError::bad_field(
                "stream_options",
                "`stream_options` is only allowed with `stream: true`",
            ));
        }
        Ok(())
    }

    /// Sampling values: llama.cpp's defaults where the request says nothing.
    fn sampling(&self) -> SamplingOptions {
        let mut s = SamplingOptions::default();
        if let Some(t) = self.temperature {
            s.temperature = t;
            s.greedy = t <= 0.0;
        }
        if let Some(p) = self.top_p {
            s.top_p = p;
        }
        if let Some(k) = self.top_k {
            s.top_k = k;
        }
        if let Some(p) = self.min_p {
            s.min_p = p;
        }
        if let Some(r) = self.repeat_penalty {
            s.repeat_penalty = r;
        }
        if let Some(seed) = self.seed {
            // OpenAI seeds are 64-bit; llama.cpp's are 32-bit (u32::MAX: random).
            s.seed = (seed as u64 & 0xffff_ffff) as u32;
        }
        s
    }

    fn generation(&self, max_tokens: Option<u32>, grammar: Option<String>) -> Generation {
        Generation {
            max_tokens: max_tokens.or(self.max_tokens).unwrap_or(u32::MAX),
            sampling: self.sampling(),
            stop: self
                .stop
                .clone()
                .map(StopField::into_vec)
                .unwrap_or_default(),
            grammar,
            cache_prompt: self.cache_prompt.unwrap_or(true),
        }
    }

    fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }
}

/// Refuses fields OpenAI does not define (or strix-run does not know).
fn refuse_unknown(other: &BTreeMap<String, Value>) -> Result<(), ApiError> {
    // Fields clients send that change nothing here.
    const HARMLESS: [&str; 3] = ["store", "metadata", "service_tier"];
    match other.keys().find(|k| !HARMLESS.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad_field(
            k,
            format!("unknown field `{k}`: strix-run does not support it"),
        )),
        None => Ok(()),
    }
}

/// `response_format`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text.
    Text,
    /// Any JSON object (enforced by a grammar).
    JsonObject,
    /// JSON valid against the schema (enforced by a grammar).
    JsonSchema {
        /// `{name, schema, strict}`.
        json_schema: JsonSchemaSpec,
    },
}

/// `response_format.json_schema`.
#[derive(Debug, Clone, Deserialize)]
pub struct JsonSchemaSpec {
    /// A name (not used).
    #[serde(default)]
    pub name: Option<String>,
    /// The schema.
    #[serde(default)]
    pub schema: Option<Value>,
    /// Accepted (the grammar always enforces the schema).
    #[serde(default)]
    pub strict: Option<bool>,
}

impl ResponseFormat {
    /// The JSON schema to enforce, if any.
    pub fn schema(&self) -> Option<Value> {
        match self {
            ResponseFormat::Text => None,
            ResponseFormat::JsonObject => Some(json!({"type": "object"})),
            ResponseFormat::JsonSchema { json_schema } => Some(
                json_schema
                    .schema
                    .clone()
                    .unwrap_or_else(|| json!({"type": "object"})),
            ),
        }
    }
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatCompletionRequest {
    /// Shared fields.
    #[serde(flatten)]
    pub common: CommonFields,
    /// The conversation.
    pub messages: Vec<Value>,
    /// Newer name of `max_tokens`.
    pub max_completion_tokens: Option<u32>,
    /// JSON output.
    pub response_format: Option<ResponseFormat>,
    /// Tools the model may call.
    pub tools: Option<Vec<Value>>,
    /// `auto`, `none`, `required` or `{"type": "function", "function": {"name"}}`.
    pub tool_choice: Option<Value>,
    /// Several calls in one answer.
    pub parallel_tool_calls: Option<bool>,
    /// Anything else (refused).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    /// Shared fields.
    #[serde(flatten)]
    pub common: CommonFields,
    /// The prompt (a string, or a list holding one string).
    pub prompt: Value,
    /// JSON output (llama-server accepts it here too).
    pub response_format: Option<ResponseFormat>,
    /// Must be false.
    pub echo: Option<bool>,
    /// Must be absent.
    pub suffix: Option<String>,
    /// Must be 1.
    pub best_of: Option<u32>,
    /// Anything else (refused).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// Checks `model` names the served model.
pub fn check_model(state: &AppState, model: Option<&str>) -> Result<(), ApiError> {
    match model {
        None | Some("") => Ok(()),
        Some(m) if m == state.model_id => Ok(()),
        Some(m) => Err(ApiError {
            param: Some("model".into()),
            ..ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "model `{m}` is not served here; this server serves `{}` (GET /v1/models)",
                    state.model_id
                ),
            )
        }),
    }
}

/// Submits a job and waits for a slot to take it (or for its refusal).
pub async fn start(
    state: &AppState,
    prompt: Prompt,
    generation: Generation,
) -> Result<(UnboundedReceiver<Event>, usize), ApiError> {
    let engine = state.engine()?;
    let (events, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    engine.submit(Job {
        prompt,
        generation,
        events,
    })?;
    match receiver.recv().await {
        Some(Event::Started { prompt_tokens, .. }) => Ok((receiver, prompt_tokens)),
        Some(Event::Failed(e)) => Err(e.into()),
        Some(_) | None => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the engine ended the request before it started",
        )),
    }
}

/// Waits for the end of a job.
pub async fn collect(mut receiver: UnboundedReceiver<Event>) -> Result<Finish, ApiError> {
    while let Some(event) = receiver.recv().await {
        match event {
            Event::Done(finish) => return Ok(*finish),
            Event::Failed(e) => return Err(e.into()),
            Event::Started { .. } | Event::Text(_) => {}
        }
    }
    Err(ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the engine stopped during the request",
    ))
}

/// OpenAI's `finish_reason`.
pub fn finish_reason(finish: &Finish) -> &'static str {
    if finish
        .reply
        .as_ref()
        .is_some_and(|r| !r.tool_calls.is_empty())
    {
        return "tool_calls";
    }
    match finish.reason {
        FinishReason::EndOfGeneration | FinishReason::StopString(_) => "stop",
        FinishReason::MaxTokens | FinishReason::ContextFull => "length",
        FinishReason::Cancelled => "stop",
    }
}

fn usage(finish: &Finish) -> Value {
    json!({
        "prompt_tokens": finish.prompt_tokens,
        "completion_tokens": finish.generated_tokens,
        "total_tokens": finish.prompt_tokens + finish.generated_tokens,
        "prompt_tokens_details": {"cached_tokens": finish.cached_tokens},
    })
}

fn tool_calls_json(reply: &ParsedReply) -> Value {
    Value::Array(
        reply
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({"index": i, "id": c.id, "type": "function",
                       "function": {"name": c.name, "arguments": c.arguments}})
            })
            .collect(),
    )
}

/// The assistant message of a finished chat.
fn message(finish: &Finish) -> Value {
    match &finish.reply {
        Some(reply) if !reply.tool_calls.is_empty() => json!({
            "role": "assistant",
            "content": if reply.content.is_empty() { Value::Null } else { Value::String(reply.content.clone()) },
            "tool_calls": tool_calls_json(reply),
        }),
        Some(reply) => {
            let mut m = json!({"role": "assistant", "content": reply.content});
            if !reply.reasoning_content.is_empty() {
                m["reasoning_content"] = json!(reply.reasoning_content);
            }
            m
        }
        None => json!({"role": "assistant", "content": finish.text}),
    }
}

/// A chat request as the engine takes it.
fn chat_job(req: &ChatCompletionRequest) -> Result<(Prompt, Generation), ApiError> {
    req.common.check()?;
    refuse_unknown(&req.other)?;
    if req.messages.is_empty() {
        return Err(ApiError::bad_field("messages", "`messages` is empty"));
    }
    let mut tools = req.tools.clone().filter(|t| !t.is_empty());
    let tool_choice = match &req.tool_choice {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if ["auto", "none", "required"].contains(&s.as_str()) => {
            Some(s.clone())
        }
        Some(Value::Object(o)) => {
            // One named function: offer only it, and require a call.
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    ApiError::bad_field("tool_choice", "`tool_choice` object needs function.name")
                })?;
            let named: Vec<Value> = tools
                .iter()
                .flatten()
                .filter(|t| t.pointer("/function/name").and_then(Value::as_str) == Some(name))
                .cloned()
                .collect();
            if named.is_empty() {
                return Err(ApiError::bad_field(
                    "tool_choice",
                    format!("`tool_choice` names `{name}`, which is not in `tools`"),
                ));
            }
            tools = Some(named);
            Some("required".to_owned())
        }
        Some(other) => {
            return Err(ApiError::bad_field(
                "tool_choice",
                format!("`tool_choice` must be auto, none, required or a function, not {other}"),
            ))
        }
    };
    let json_schema = req
        .response_format
        .as_ref()
        .and_then(ResponseFormat::schema);
    let chat = ChatRequest {
        messages: Value::Array(req.messages.clone()),
        tools: tools.map(Value::Array),
        tool_choice,
        parallel_tool_calls: req.parallel_tool_calls.unwrap_or(false),
        json_schema,
        grammar: None,
        add_generation_prompt: true,
        enable_thinking: false,
    };
    let generation = req.common.generation(req.max_completion_tokens, None);
    Ok((Prompt::Chat(chat), generation))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `POST /v1/chat/completions`.
pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let req: ChatCompletionRequest = parse_body(body)?;
    check_model(&state, req.common.model.as_deref())?;
    let (prompt, generation) = chat_job(&req)?;
    let has_tools = req.tools.as_ref().is_some_and(|t| !t.is_empty());
    let (receiver, _) = start(&state, prompt, generation).await?;
    let id = format!("chatcmpl-{}", state.next_id());
    let created = unix_now();
    let model = state.model_id.clone();
    if !req.common.stream {
        let finish = collect(receiver).await?;
        return Ok(Json(json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "system_fingerprint": super::FINGERPRINT,
            "choices": [{"index": 0, "message": message(&finish),
                         "finish_reason": finish_reason(&finish), "logprobs": null}],
            "usage": usage(&finish),
            "timings": finish_timings(&finish),
        }))
        .into_response());
    }
    let include_usage = req.common.include_usage();
    let chunk = move |delta: Value, finish: Option<&str>| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
               "system_fingerprint": super::FINGERPRINT,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}]})
    };
    let stream = async_stream(receiver, move |event| match event {
        StreamStep::Begin => vec![data(chunk(
            json!({"role": "assistant", "content": ""}),
            None,
        ))],
        // With tools the answer is parsed when complete; the text is sent then.
        StreamStep::Text(_) if has_tools => vec![],
        StreamStep::Text(t) => vec![data(chunk(json!({"content": t}), None))],
        StreamStep::Done(finish) => {
            let mut out = Vec::new();
            if let Some(reply) = finish.reply.as_ref().filter(|_| has_tools) {
                if !reply.content.is_empty() {
                    out.push(data(chunk(json!({"content": reply.content}), None)));
                }
                if !reply.tool_calls.is_empty() {
                    out.push(data(chunk(
                        json!({"tool_calls": tool_calls_json(reply)}),
                        None,
                    )));
                }
            } else if has_tools && !finish.text.is_empty() {
                out.push(data(chunk(json!({"content": finish.text}), None)));
            }
            let mut last = chunk(json!({}), Some(finish_reason(&finish)));
            last["timings"] = finish_timings(&finish);
            out.push(data(last));
            if include_usage {
                let mut u = chunk(json!({}), None);
                u["choices"] = json!([]);
                u["usage"] = usage(&finish);
                out.push(data(u));
            }
            out.push(SseEvent::default().data("[DONE]"));
            out
        }
        StreamStep::Failed(e) => failed_events(&e),
    });
    Ok(Sse::new(stream).into_response())
}

/// `POST /v1/completions`.
pub async fn completions(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let req: CompletionRequest = parse_body(body)?;
    check_model(&state, req.common.model.as_deref())?;
    req.common.check()?;
    refuse_unknown(&req.other)?;
    if req.echo == Some(true) {
        return Err(ApiError::bad_field("echo", "`echo` is not supported"));
    }
    if req.suffix.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::bad_field("suffix", "`suffix` is not supported"));
    }
    if req.best_of.is_some_and(|n| n != 1) {
        return Err(ApiError::bad_field("best_of", "`best_of` must be 1"));
    }
    let prompt = match &req.prompt {
        Value::String(s) => s.clone(),
        Value::Array(a) if a.len() == 1 && a[0].is_string() => {
            a[0].as_str().unwrap_or_default().to_owned()
        }
        _ => {
            return Err(ApiError::bad_field(
                "prompt",
                "`prompt` must be a string (or a list of one string)",
            ))
        }
    };
    let grammar = match req
        .response_format
        .as_ref()
        .and_then(ResponseFormat::schema)
    {
        Some(schema) => Some(
            crate::runtime::chat::json_schema_to_grammar(&schema)
                .map_err(|e| ApiError::bad_field("response_format", e.to_string()))?,
        ),
        None => None,
    };
    let generation = req.common.generation(None, grammar);
    let (receiver, _) = start(&state, Prompt::Text(prompt), generation).await?;
    let id = format!("cmpl-{}", state.next_id());
    let created = unix_now();
    let model = state.model_id.clone();
    if !req.common.stream {
        let finish = collect(receiver).await?;
        return Ok(Json(json!({
            "id": id, "object": "text_completion", "created": created, "model": model,
            "system_fingerprint": super::FINGERPRINT,
            "choices": [{"index": 0, "text": finish.text,
                         "finish_reason": finish_reason(&finish), "logprobs": null}],
            "usage": usage(&finish),
            "timings": finish_timings(&finish),
        }))
        .into_response());
    }
    let include_usage = req.common.include_usage();
    let chunk = move |text: &str, finish: Option<&str>| {
        json!({"id": id, "object": "text_completion", "created": created, "model": model,
               "system_fingerprint": super::FINGERPRINT,
               "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": null}]})
    };
    let stream = async_stream(receiver, move |event| match event {
        StreamStep::Begin => vec![],
        StreamStep::Text(t) => vec![data(chunk(&t, None))],
        StreamStep::Done(finish) => {
            let mut last = chunk("", Some(finish_reason(&finish)));
            last["timings"] = finish_timings(&finish);
            let mut out = vec![data(last)];
            if include_usage {
                let mut u = chunk("", None);
                u["choices"] = json!([]);
                u["usage"] = usage(&finish);
                out.push(data(u));
            }
            out.push(SseEvent::default().data("[DONE]"));
            out
        }
        StreamStep::Failed(e) => failed_events(&e),
    });
    Ok(Sse::new(stream).into_response())
}

/// `GET /v1/models`.
pub async fn models(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({"object": "list", "data": [{
        "id": state.model_id, "object": "model", "created": state.created, "owned_by": "strix-run",
        "meta": state.model_meta,
    }]}))
}

/// The end of an OpenAI stream that failed mid-way: an error event, then `[DONE]`.
fn failed_events(e: &ApiError) -> Vec<SseEvent> {
    vec![
        data(
            json!({"error": {"message": e.message, "type": "server_error", "param": null, "code": e.status.as_u16()}}),
        ),
        SseEvent::default().data("[DONE]"),
    ]
}

/// An SSE `data:` event holding JSON.
pub fn data(value: Value) -> SseEvent {
    SseEvent::default().data(value.to_string())
}

/// What a stream sends events for.
pub enum StreamStep {
    /// Before the first text.
    Begin,
    /// Text that became final.
    Text(String),
    /// The end.
    Done(Box<Finish>),
    /// A failure mid-way.
    Failed(ApiError),
}

/// Turns engine events into SSE events through `render`. The stream owns the receiver:
/// when the client goes away the stream is dropped, and the engine cancels the job.
pub fn async_stream(
    receiver: UnboundedReceiver<Event>,
    mut render: impl FnMut(StreamStep) -> Vec<SseEvent> + Send + 'static,
) -> impl futures_core::Stream<Item = Result<SseEvent, Infallible>> + Send + 'static {
    let first = render(StreamStep::Begin);
    let state = (
        receiver,
        std::collections::VecDeque::from(first),
        false,
        render,
    );
    futures_util::stream::unfold(
        state,
        |(mut rx, mut queue, mut ended, mut render)| async move {
            loop {
                if let Some(e) = queue.pop_front() {
                    return Some((Ok(e), (rx, queue, ended, render)));
                }
                if ended {
                    return None;
                }
                match rx.recv().await {
                    Some(Event::Text(t)) => queue.extend(render(StreamStep::Text(t))),
                    Some(Event::Done(f)) => {
                        ended = true;
                        queue.extend(render(StreamStep::Done(f)));
                    }
                    Some(Event::Failed(e)) => {
                        ended = true;
                        queue.extend(render(StreamStep::Failed(e.into())));
                    }
                    Some(Event::Started { .. }) => {}
                    None => {
                        ended = true;
                        queue.extend(render(StreamStep::Failed(ApiError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "the engine stopped during the request",
                        ))));
                    }
                }
            }
        },
    )
}
