//! The API's error body, `{"status", "message", "data"}`, and how store errors map to it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use strongroom_store::StoreError;
use utoipa::ToSchema;

/// Every error response: `{"status": N, "message": "...", "data": {...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The HTTP status, repeated.
    pub status: u16,
    /// What went wrong, in one sentence. Never a value or a token.
    pub message: String,
    /// Details: `reason` names the error kind (`not_found`, `expired`, ...).
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    reason: &'static str,
    /// What the server log gets for a server error (driver and configuration messages
    /// never reach the client); logged by [`log_server_errors`], not here.
    cause: Option<String>,
}

/// The cause of a server error, carried from the handler to [`log_server_errors`] in the
/// response's extensions (and removed there: it never leaves the server).
#[derive(Clone, Debug)]
struct ErrorCause(String);

/// A response layer: logs the cause of every server error once, with the request's span.
pub(crate) async fn log_server_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    if let Some(ErrorCause(cause)) = response.extensions_mut().remove::<ErrorCause>() {
        tracing::error!(error = %cause, status = response.status().as_u16(), "request failed");
    }
    response
}

impl ApiError {
    /// An error with a status, a message and a reason code.
    pub fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            reason,
            cause: None,
        }
    }

    /// The same error, with `cause` for the server log.
    #[must_use]
    fn caused_by(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid bearer token",
        )
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }

    /// 503: the server runs without a master key.
    pub fn disabled() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "disabled",
            "secrets are disabled: no master key is configured (set STRONGROOM_MASTER_KEY)",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut data = serde_json::Map::new();
        data.insert("reason".into(), self.reason.into());
        let body = ErrorBody {
            status: self.status.as_u16(),
            message: self.message,
            data,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(ErrorCause(cause));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        use strongroom_store::ErrorKind;
        // One arm per kind, no catch-all: a new kind must be given a status here.
        let (status, reason) = match error.kind() {
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ErrorKind::Gone => (StatusCode::GONE, "expired"),
            ErrorKind::Invalid => (StatusCode::BAD_REQUEST, "invalid_input"),
            ErrorKind::Conflict => (StatusCode::CONFLICT, "conflict"),
            ErrorKind::WrongKey => match error {
                StoreError::KeyVersionUnavailable { .. } => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "key_version_unavailable")
                }
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "wrong_key"),
            },
            ErrorKind::Integrity => (StatusCode::INTERNAL_SERVER_ERROR, "integrity"),
            ErrorKind::Config | ErrorKind::Unavailable | ErrorKind::Internal => {
                // Driver and configuration messages stay in the server log.
                return Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
                .caused_by(&error);
            }
        };
        let api = Self::new(status, reason, error.to_string());
        if status.is_server_error() {
            api.caused_by(&error)
        } else {
            api
        }
    }
}
