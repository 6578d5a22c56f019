//! Anthropic's Messages API: `POST /v1/messages`, streaming and not, for Claude Code and
//! the Anthropic SDKs. The conversation is turned into OpenAI-shaped messages (what
//! llama.cpp's chat code reads): `system` first, `tool_use` blocks into `tool_calls`,
//! `tool_result` blocks into `tool` messages.

use super::engine::{FinishReason, Prompt};
use super::error::{ApiError, Dialect};
use super::openai::{async_stream, check_model, collect, parse_body, start, StreamStep};
use super::{finish_timings, AppState};
use crate::runtime::chat::ChatRequest;
use crate::runtime::session::SamplingOptions;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// `POST /v1/messages`.
#[derive(Debug, Clone, Deserialize)]
pub struct MessagesRequest {
    /// The model id.
    pub model: String,
    /// Required by Anthropic's API.
    pub max_tokens: u32,
    /// The conversation.
    pub messages: Vec<AnthropicMessage>,
    /// A string or text blocks.
    pub system: Option<Value>,
    /// Stop strings.
    pub stop_sequences: Option<Vec<String>>,
    /// Temperature.
    pub temperature: Option<f32>,
    /// Top-p.
    pub top_p: Option<f32>,
    /// Top-k.
    pub top_k: Option<i32>,
    /// Stream events.
    #[serde(default)]
    pub stream: bool,
    /// Tools: `{name, description, input_schema}`.
    pub tools: Option<Vec<Value>>,
    /// `{"type": "auto" | "any" | "tool" | "none", "name"}`.
    pub tool_choice: Option<Value>,
    /// Accepted, not used.
    pub metadata: Option<Value>,
    /// Extended thinking: only `{"type": "disabled"}` is accepted.
    pub thinking: Option<Value>,
    /// Anything else (refused).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// One message: a role and a string or content blocks.
#[derive(Debug, Clone, Deserialize)]
pub struct AnthropicMessage {
    /// `user` or `assistant`.
    pub role: String,
    /// A string or blocks.
    pub content: Value,
}

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_field(field, message).dialect(Dialect::Anthropic)
}

/// Text of a string or of text blocks.
fn text_of(value: &Value, field: &str) -> Result<String, ApiError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let mut out = String::new();
            for b in blocks {
                match (
                    b.get("type").and_then(Value::as_str),
                    b.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => out.push_str(t),
                    (kind, _) => {
                        return Err(bad(
                            field,
                            format!(
                                "`{field}`: block type {kind:?} is not supported here (text only)"
                            ),
                        ))
                    }
                }
            }
            Ok(out)
        }
        _ => Err(bad(
            field,
            format!("`{field}` must be a string or a list of blocks"),
        )),
    }
}

/// The conversation as OpenAI-shaped messages.
fn openai_messages(req: &MessagesRequest) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    if let Some(system) = &req.system {
        out.push(json!({"role": "system", "content": text_of(system, "system")?}));
    }
    for (i, m) in req.messages.iter().enumerate() {
        let field = format!("messages[{i}]");
        if m.role != "user" && m.role != "assistant" {
            return Err(bad(
                &field,
                format!("`{field}.role` must be user or assistant, not `{}`", m.role),
            ));
        }
        let blocks = match &m.content {
            Value::String(s) => {
                out.push(json!({"role": m.role, "content": s}));
                continue;
            }
            Value::Array(b) => b,
            _ => {
                return Err(bad(
                    &field,
                    format!("`{field}.content` must be a string or blocks"),
                ))
            }
        };
        let mut text = String::new();
        let mut calls = Vec::new();
        for b in blocks {
            match b.get("type").and_then(Value::as_str) {
                Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
                Some("tool_use") => calls.push(json!({
                    "id": b.get("id").cloned().unwrap_or(Value::Null),
                    "type": "function",
                    "function": {
                        "name": b.get("name").cloned().unwrap_or(Value::Null),
                        "arguments": b.get("input").cloned().unwrap_or(json!({})).to_string(),
                    },
                })),
                Some("tool_result") => {
                    let content = match b.get("content") {
                        None | Some(Value::Null) => String::new(),
                        Some(c) => text_of(c, &format!("{field}.content.tool_result"))?,
                    };
                    out.push(json!({
                        "role": "tool",
                        "tool_call_id": b.get("tool_use_id").cloned().unwrap_or(Value::Null),
                        "content": content,
                    }));
                }
                other => {
                    return Err(bad(
                        &field,
                        format!("`{field}`: content block type {other:?} is not supported (text, tool_use, tool_result)"),
                    ))
                }
            }
        }
        if !calls.is_empty() {
            out.push(json!({"role": "assistant", "content": text, "tool_calls": calls}));
        } else if !text.is_empty() || m.role == "assistant" {
            out.push(json!({"role": m.role, "content": text}));
        }
    }
    Ok(out)
}

/// Anthropic tools as OpenAI tools, and the tool choice.
fn tools(req: &MessagesRequest) -> Result<(Option<Value>, Option<String>), ApiError> {
    let mut list: Vec<Value> = Vec::new();
    for (i, t) in req.tools.iter().flatten().enumerate() {
        let name = t
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("tools", format!("`tools[{i}].name` is missing")))?;
        list.push(json!({"type": "function", "function": {
            "name": name,
            "description": t.get("description").cloned().unwrap_or(json!("")),
            "parameters": t.get("input_schema").cloned().unwrap_or(json!({"type": "object"})),
        }}));
    }
    let choice = match &req.tool_choice {
        None | Some(Value::Null) => None,
        Some(c) => match c.get("type").and_then(Value::as_str) {
            Some("auto") => Some("auto".to_owned()),
            Some("none") => Some("none".to_owned()),
            Some("any") => Some("required".to_owned()),
            Some("tool") => {
                let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                list.retain(|t| t.pointer("/function/name").and_then(Value::as_str) == Some(name));
                if list.is_empty() {
                    return Err(bad(
                        "tool_choice",
                        format!("`tool_choice` names `{name}`, which is not in `tools`"),
                    ));
                }
                Some("required".to_owned())
            }
            _ => {
                return Err(bad(
                    "tool_choice",
                    "`tool_choice.type` must be auto, any, tool or none",
                ))
            }
        },
    };
    Ok(((!list.is_empty()).then_some(Value::Array(list)), choice))
}

fn stop_reason(finish: &super::engine::Finish) -> (&'static str, Option<String>) {
    if finish
        .reply
        .as_ref()
        .is_some_and(|r| !r.tool_calls.is_empty())
    {
        return ("tool_use", None);
    }
    match &finish.reason {
        FinishReason::StopString(s) => ("stop_sequence", Some(s.clone())),
        FinishReason::MaxTokens | FinishReason::ContextFull => ("max_tokens", None),
        FinishReason::EndOfGeneration | FinishReason::Cancelled => ("end_turn", None),
    }
}

/// The content blocks of a finished answer.
fn content(finish: &super::engine::Finish) -> Vec<Value> {
    let (text, calls) = match &finish.reply {
        Some(r) => (r.content.clone(), r.tool_calls.clone()),
        None => (finish.text.clone(), Vec::new()),
    };
    let mut blocks = Vec::new();
    if !text.is_empty() || calls.is_empty() {
        blocks.push(json!({"type": "text", "text": text}));
    }
    for c in calls {
        let input: Value = serde_json::from_str(&c.arguments).unwrap_or(json!({}));
        blocks.push(json!({"type": "tool_use", "id": if c.id.is_empty() { format!("toolu_{}", c.name) } else { c.id.clone() }, "name": c.name, "input": input}));
    }
    blocks
}

/// `POST /v1/messages`.
pub async fn messages(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let anthropic = |e: ApiError| e.dialect(Dialect::Anthropic);
    let req: MessagesRequest = parse_body(body).map_err(anthropic)?;
    check_model(&state, Some(&req.model)).map_err(anthropic)?;
    if let Some(k) = req.other.keys().next() {
        return Err(bad(
            k,
            format!("unknown field `{k}`: strix-run does not support it"),
        ));
    }
    if req
        .thinking
        .as_ref()
        .is_some_and(|t| t.get("type").and_then(Value::as_str) != Some("disabled"))
    {
        return Err(bad(
            "thinking",
            "`thinking` is not supported (only {\"type\": \"disabled\"})",
        ));
    }
    if req.messages.is_empty() {
        return Err(bad("messages", "`messages` is empty"));
    }
    let (tools, tool_choice) = tools(&req)?;
    let has_tools = tools.is_some();
    let chat = ChatRequest {
        messages: Value::Array(openai_messages(&req)?),
        tools,
        tool_choice,
        parallel_tool_calls: false,
        json_schema: None,
        grammar: None,
        add_generation_prompt: true,
        enable_thinking: false,
    };
    let mut sampling = SamplingOptions::default();
    if let Some(t) = req.temperature {
        sampling.temperature = t;
        sampling.greedy = t <= 0.0;
    }
    if let Some(p) = req.top_p {
        sampling.top_p = p;
    }
    if let Some(k) = req.top_k {
        sampling.top_k = k;
    }
    let generation = super::engine::Generation {
        max_tokens: req.max_tokens,
        sampling,
        stop: req.stop_sequences.clone().unwrap_or_default(),
        grammar: None,
        cache_prompt: true,
    };
    let (receiver, prompt_tokens) = start(&state, Prompt::Chat(chat), generation)
        .await
        .map_err(anthropic)?;
    let id = format!("msg_{}", state.next_id());
    let model = state.model_id.clone();
    if !req.stream {
        let finish = collect(receiver).await.map_err(anthropic)?;
        let (reason, sequence) = stop_reason(&finish);
        return Ok(Json(json!({
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": content(&finish), "stop_reason": reason, "stop_sequence": sequence,
            "usage": {"input_tokens": finish.prompt_tokens, "output_tokens": finish.generated_tokens,
                      "cache_read_input_tokens": finish.cached_tokens},
            "timings": finish_timings(&finish),
        }))
        .into_response());
    }
    let event = |name: &str, value: Value| SseEvent::default().event(name).data(value.to_string());
    let mut text_open = false;
    let stream = async_stream(receiver, move |step| match step {
        StreamStep::Begin => vec![
            event(
                "message_start",
                json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": prompt_tokens, "output_tokens": 0}}}),
            ),
            event("ping", json!({"type": "ping"})),
        ],
        // With tools the answer is parsed when complete; its blocks are sent then.
        StreamStep::Text(_) if has_tools => vec![],
        StreamStep::Text(t) => {
            let mut out = Vec::new();
            if !text_open {
                text_open = true;
                out.push(event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}),
                ));
            }
            out.push(event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": t}}),
            ));
            out
        }
        StreamStep::Done(finish) => {
            let mut out = Vec::new();
            let mut index = 0;
            if has_tools {
                for block in content(&finish) {
                    let (start, delta) = if block["type"] == "tool_use" {
                        (
                            json!({"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}),
                            json!({"type": "input_json_delta", "partial_json": block["input"].to_string()}),
                        )
                    } else {
                        (
                            json!({"type": "text", "text": ""}),
                            json!({"type": "text_delta", "text": block["text"]}),
                        )
                    };
                    out.push(event("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": start})));
                    out.push(event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index, "delta": delta}),
                    ));
                    out.push(event(
                        "content_block_stop",
                        json!({"type": "content_block_stop", "index": index}),
                    ));
                    index += 1;
                }
            } else {
                if !text_open {
                    out.push(event(
                        "content_block_start",
                        json!({"type": "content_block_start", "index": 0,
                        "content_block": {"type": "text", "text": ""}}),
                    ));
                }
                out.push(event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0}),
                ));
            }
            let (reason, sequence) = stop_reason(&finish);
            out.push(event(
                "message_delta",
                json!({"type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": sequence},
                "usage": {"output_tokens": finish.generated_tokens}}),
            ));
            out.push(event("message_stop", json!({"type": "message_stop"})));
            out
        }
        StreamStep::Failed(e) => vec![event(
            "error",
            json!({"type": "error",
            "error": {"type": "api_error", "message": e.message}}),
        )],
    });
    Ok(Sse::new(stream).into_response())
}
