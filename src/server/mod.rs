//! `strix-run serve`: an OpenAI- and Anthropic-compatible HTTP server over one planned
//! model, with continuous batching ([`engine`]).
//!
//! - [`engine`]: the batching engine (its own thread, one llama.cpp sequence per slot).
//! - [`openai`], [`anthropic`]: the two APIs. [`error`]: their error bodies.
//! - This module: the shared state, the routes (`/health`, `/metrics`, `/slots` and the
//!   API routes behind the optional key), and [`serve`] with graceful shutdown.
//!
//! The server binds before the model loads: `/health` answers 503 until
//! [`AppState::set_engine`] is called, then 200. Safe defaults: the CLI binds loopback
//! unless told otherwise; with a key every `/v1` route needs it (`Authorization: Bearer`
//! or `x-api-key`, compared in constant time); bodies are bounded; the queue is
//! bounded; CORS is off unless an origin is given; a panic in a handler is a 500 for
//! that request only.

pub mod anthropic;
pub mod engine;
pub mod error;
pub mod openai;

use crate::runtime::load::MemoryComparison;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use engine::{Engine, Finish};
use error::{ApiError, Dialect};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// `system_fingerprint` in OpenAI responses.
pub const FINGERPRINT: &str = concat!("strix-run-", env!("CARGO_PKG_VERSION"));

/// Settings of the HTTP side.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Required on `/v1` routes when set.
    pub api_key: Option<String>,
    /// Largest request body, bytes.
    pub max_body: usize,
    /// Allowed CORS origin (none: no CORS headers).
    pub cors_origin: Option<String>,
    /// After SIGINT/SIGTERM, how long running requests may take before the server exits.
    pub shutdown_timeout: Duration,
}

/// What the handlers share.
#[derive(Debug)]
pub struct AppState {
    /// The model's id in the APIs (the GGUF file name without `.gguf`).
    pub model_id: String,
    /// Unix time the server started.
    pub created: u64,
    /// The model's description for `/v1/models` (`meta`).
    pub model_meta: Value,
    engine: OnceLock<Engine>,
    memory: OnceLock<Vec<MemoryComparison>>,
    ids: AtomicU64,
    api_key: Option<String>,
}

impl AppState {
    /// State for `model_id`, without an engine yet (loading).
    pub fn new(model_id: String, model_meta: Value, api_key: Option<String>) -> Self {
        AppState {
            model_id,
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            model_meta,
            engine: OnceLock::new(),
            memory: OnceLock::new(),
            ids: AtomicU64::new(1),
            api_key,
        }
    }

    /// The model is loaded: requests are served from now on.
    pub fn set_engine(&self, engine: Engine, memory: Vec<MemoryComparison>) {
        let _ = self.memory.set(memory);
        let _ = self.engine.set(engine);
    }

    /// The engine, or 503 while loading.
    pub fn engine(&self) -> Result<&Engine, ApiError> {
        self.engine.get().ok_or_else(|| {
            let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the model is loading");
            e.retry_after = Some(5);
            e
        })
    }

    /// A number for response ids.
    pub fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }
}

/// llama-server's `timings` object.
pub fn finish_timings(f: &Finish) -> Value {
    let evaluated = f.prompt_tokens - f.cached_tokens;
    let per = |n: usize, ms: f64| if n > 0 { ms / n as f64 } else { 0.0 };
    let rate = |n: usize, ms: f64| {
        if ms > 0.0 {
            n as f64 * 1000.0 / ms
        } else {
            0.0
        }
    };
    json!({
        "cache_n": f.cached_tokens,
        "prompt_n": evaluated,
        "prompt_ms": f.prompt_ms,
        "prompt_per_token_ms": per(evaluated, f.prompt_ms),
        "prompt_per_second": rate(evaluated, f.prompt_ms),
        "predicted_n": f.generated_tokens,
        "predicted_ms": f.generation_ms,
        "predicted_per_token_ms": per(f.generated_tokens, f.generation_ms),
        "predicted_per_second": rate(f.generated_tokens, f.generation_ms),
    })
}

/// Constant-time equality of a presented key and the configured one (the length of
/// the configured key is not hidden; its content is).
fn key_matches(presented: &str, key: &str) -> bool {
    use subtle::ConstantTimeEq;
    let (p, k) = (presented.as_bytes(), key.as_bytes());
    let same_len = p.len() == k.len();
    // Compare against the key's own length either way, so the time does not depend on
    // where a wrong key differs.
    let padded: Vec<u8> = (0..k.len())
        .map(|i| p.get(i).copied().unwrap_or(0))
        .collect();
    bool::from(padded.ct_eq(k)) & same_len
}

/// The key a request presents: `Authorization: Bearer KEY` or `x-api-key: KEY`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

async fn require_key(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Some(key) = &state.api_key {
        let ok = presented_key(request.headers()).is_some_and(|p| key_matches(p, key));
        if !ok {
            let dialect = if request.uri().path() == "/v1/messages" {
                Dialect::Anthropic
            } else {
                Dialect::OpenAi
            };
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "a valid API key is required: send `Authorization: Bearer KEY` or `x-api-key: KEY`",
            )
            .dialect(dialect)
            .into_response();
        }
    }
    next.run(request).await
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.engine.get() {
        Some(e) if e.shared().running.load(Ordering::SeqCst) => {
            Json(json!({"status": "ok"})).into_response()
        }
        Some(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "stopped"})),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "loading"})),
        )
            .into_response(),
    }
}

async fn slots(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let engine = state.engine()?;
    let slots = engine
        .shared()
        .slots
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    Ok(Json(slots).into_response())
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    use std::fmt::Write;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let one = |v: f64| vec![(String::new(), v)];
    metric(
        "strix_ready",
        "gauge",
        "1 once the model is loaded.",
        &one(f64::from(u8::from(state.engine.get().is_some()))),
    );
    if let Some(engine) = state.engine.get() {
        let shared = engine.shared();
        let c = &shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        metric(
            "strix_requests_total",
            "counter",
            "Requests answered.",
            &one(get(&c.requests)),
        );
        metric(
            "strix_requests_failed_total",
            "counter",
            "Requests that failed.",
            &one(get(&c.failed)),
        );
        metric(
            "strix_requests_cancelled_total",
            "counter",
            "Requests whose client went away.",
            &one(get(&c.cancelled)),
        );
        metric(
            "strix_prompt_tokens_total",
            "counter",
            "Prompt tokens evaluated.",
            &one(get(&c.prompt_tokens)),
        );
        metric(
            "strix_prompt_tokens_cached_total",
            "counter",
            "Prompt tokens reused from a slot's cache.",
            &one(get(&c.cached_tokens)),
        );
        metric(
            "strix_generated_tokens_total",
            "counter",
            "Tokens generated.",
            &one(get(&c.generated_tokens)),
        );
        let rate = |n: f64, micros: f64| if micros > 0.0 { n * 1e6 / micros } else { 0.0 };
        metric(
            "strix_prompt_tokens_per_second",
            "gauge",
            "Prompt tokens evaluated per second of decode steps that held prompt tokens.",
            &one(rate(get(&c.prompt_tokens), get(&c.prompt_micros))),
        );
        metric(
            "strix_generation_tokens_per_second",
            "gauge",
            "Tokens generated per second of generation-only decode steps (all slots together).",
            &one(rate(get(&c.generated_tokens), get(&c.generation_micros))),
        );
        metric(
            "strix_decode_steps_total",
            "counter",
            "llama_decode calls.",
            &one(get(&c.steps)),
        );
        metric(
            "strix_queue_depth",
            "gauge",
            "Requests waiting for a slot.",
            &one(shared.queued.load(Ordering::SeqCst) as f64),
        );
        metric(
            "strix_slots_busy",
            "gauge",
            "Slots working on a request.",
            &one(shared.busy.load(Ordering::SeqCst) as f64),
        );
        metric(
            "strix_slots_total",
            "gauge",
            "Slots.",
            &one(engine.slots() as f64),
        );
    }
    if let Some(memory) = state.memory.get() {
        let rows = |f: &dyn Fn(&MemoryComparison) -> u64| -> Vec<(String, f64)> {
            memory
                .iter()
                .map(|m| (format!("{{device=\"{}\"}}", m.side), f(m) as f64))
                .collect()
        };
        metric(
            "strix_memory_planned_bytes",
            "gauge",
            "Memory the plan budgets per device (weights, KV, compute, output).",
            &rows(&|m| {
                m.planned_weights + m.planned_context + m.planned_compute + m.planned_output
            }),
        );
        metric(
            "strix_memory_allocated_bytes",
            "gauge",
            "Memory llama.cpp allocated per device (weights, KV, compute).",
            &rows(&|m| m.actual_weights + m.actual_context + m.actual_compute),
        );
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response()
}

fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown".to_owned());
    tracing::error!("a request handler panicked: {detail}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("internal error while handling the request ({detail}); the server goes on"),
    )
    .into_response()
}

/// The routes.
pub fn router(state: Arc<AppState>, config: &ServerConfig) -> Router {
    let api = Router::new()
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/completions", post(openai::completions))
        .route("/v1/models", get(openai::models))
        .route("/v1/messages", post(anthropic::messages))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_key,
        ));
    let mut app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/slots", get(slots))
        .merge(api)
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such route (see GET /v1/models, POST /v1/chat/completions, POST /v1/messages)",
            )
        })
        .layer(DefaultBodyLimit::max(config.max_body))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .with_state(state);
    if let Some(origin) = &config.cors_origin {
        if let Ok(origin) = origin.parse::<axum::http::HeaderValue>() {
            app = app.layer(
                tower_http::cors::CorsLayer::new()
                    .allow_origin(origin)
                    .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
                    .allow_headers(tower_http::cors::Any),
            );
        }
    }
    app
}

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting, lets
/// running requests finish for up to `timeout`, and returns (true when every request
/// finished in time).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    timeout: Duration,
) -> std::io::Result<bool> {
    let (signalled_tx, mut signalled_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = signalled_tx.send(true);
    });
    let deadline = async move {
        while !*signalled_rx.borrow() {
            if signalled_rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        tokio::time::sleep(timeout).await;
    };
    tokio::select! {
        result = server => result.map(|()| true),
        () = deadline => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::key_matches;

    #[test]
    fn keys_match_only_when_equal() {
        assert!(key_matches("secret", "secret"));
        assert!(!key_matches("secreT", "secret"));
        assert!(!key_matches("secret2", "secret"));
        assert!(!key_matches("secre", "secret"));
        assert!(!key_matches("", "secret"));
    }
}
