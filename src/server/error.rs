//! Error responses, shaped as the API the client speaks expects them: OpenAI's
//! `{"error": {"message", "type", "param", "code"}}` or Anthropic's
//! `{"type": "error", "error": {"type", "message"}}`.

use super::engine::{JobError, SubmitError};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Which API shapes the error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI (and the server's own routes).
    OpenAi,
    /// Anthropic (`/v1/messages`).
    Anthropic,
}

/// An error answer: status, message, the request field at fault.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong and what to do.
    pub message: String,
    /// The request field at fault, if one is.
    pub param: Option<String>,
    /// Seconds for `Retry-After` (busy).
    pub retry_after: Option<u32>,
    /// The body's shape.
    pub dialect: Dialect,
}

impl ApiError {
    /// A 400 naming the field.
    pub fn bad_field(field: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            param: Some(field.to_owned()),
            retry_after: None,
            dialect: Dialect::OpenAi,
        }
    }

    /// An error of this status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            param: None,
            retry_after: None,
            dialect: Dialect::OpenAi,
        }
    }

    /// The same error, shaped for `dialect`.
    pub fn dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// The error's type name in the dialect.
    fn kind(&self) -> &'static str {
        match (self.dialect, self.status.as_u16()) {
            (Dialect::OpenAi, 401) => "authentication_error",
            (Dialect::OpenAi, 404) => "not_found_error",
            (Dialect::OpenAi, 503) => "unavailable_error",
            (Dialect::OpenAi, s) if s >= 500 => "server_error",
            (Dialect::OpenAi, _) => "invalid_request_error",
            (Dialect::Anthropic, 401) => "authentication_error",
            (Dialect::Anthropic, 404) => "not_found_error",
            (Dialect::Anthropic, 413) => "request_too_large",
            (Dialect::Anthropic, 503) => "overloaded_error",
            (Dialect::Anthropic, s) if s >= 500 => "api_error",
            (Dialect::Anthropic, _) => "invalid_request_error",
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        let mut err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        if matches!(e, SubmitError::Busy(_)) {
            err.retry_after = Some(1);
        }
        err
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match &e {
            JobError::BadRequest(_) => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
            JobError::PromptTooLong { .. } => ApiError::bad_field("messages", e.to_string()),
            JobError::Internal(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.dialect {
            Dialect::OpenAi => json!({"error": {
                "message": self.message, "type": self.kind(), "param": self.param,
                "code": self.status.as_u16(),
            }}),
            Dialect::Anthropic => json!({"type": "error", "error": {
                "type": self.kind(), "message": self.message,
            }}),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
