//! Errors of every surface: a surface-neutral [`Problem`] (status, reason code, message,
//! and the cause a server error logs), the one mapping of store error kinds to it, and
//! the renderers: [`ApiError`] renders PocketBase's `{"status", "message", "data"}`. A new
//! surface (a Vault-shaped API, a console) adds its own renderer over the same `Problem`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use strongroom_store::{ConflictKind, ErrorKind, StoreError};
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

/// A failure, before a surface renders it.
#[derive(Debug)]
pub struct Problem {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable reason code (`not_found`, `expired`, ...).
    pub reason: &'static str,
    /// One sentence for the client. Never a value or a token.
    pub message: String,
    /// Further named details for the client (`part`: which readiness check failed, ...).
    pub details: Vec<(&'static str, String)>,
    /// The store's kind of failure, when a store error made this problem (a surface with
    /// words of its own, such as Vault's, decides on it).
    pub kind: Option<ErrorKind>,
    /// What a conflict conflicts with, for [`ErrorKind::Conflict`].
    pub conflict: Option<ConflictKind>,
    /// What the server log gets for a server error (driver and configuration messages
    /// never reach the client); logged by [`log_server_errors`], not where it is made.
    cause: Option<String>,
}

impl Problem {
    /// A problem with a status, a reason code and a message.
    pub fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            reason,
            message: message.into(),
            details: Vec::new(),
            kind: None,
            conflict: None,
            cause: None,
        }
    }

    /// The same problem, with `cause` for the server log.
    #[must_use]
    pub fn caused_by(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    /// Renders `body` with this problem's status, and hands the cause to the log layer.
    pub fn respond(self, body: impl IntoResponse) -> Response {
        let status = self.status;
        self.respond_as(status, body)
    }

    /// Renders `body` with `status` (a surface whose statuses differ, such as Vault's),
    /// and hands the cause to the log layer.
    pub fn respond_as(self, status: StatusCode, body: impl IntoResponse) -> Response {
        let mut response = (status, body).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(ErrorCause(cause));
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        let mut problem = Self::from_store(&error);
        problem.kind = Some(error.kind());
        problem.conflict = error.conflict_kind();
        problem
    }
}

impl Problem {
    /// The status, reason and message of a store error.
    fn from_store(error: &StoreError) -> Self {
        // One arm per kind, no catch-all: a new kind must be given a status here.
        let (status, reason) = match error.kind() {
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ErrorKind::Gone => (StatusCode::GONE, "expired"),
            ErrorKind::Invalid => (StatusCode::BAD_REQUEST, "invalid_input"),
            ErrorKind::Conflict => (StatusCode::CONFLICT, "conflict"),
            ErrorKind::Limited => (StatusCode::TOO_MANY_REQUESTS, "quota_reached"),
            ErrorKind::KeyUnavailable => {
                (StatusCode::INTERNAL_SERVER_ERROR, "key_version_unavailable")
            }
            ErrorKind::WrongKey => (StatusCode::INTERNAL_SERVER_ERROR, "wrong_key"),
            ErrorKind::Integrity => (StatusCode::INTERNAL_SERVER_ERROR, "integrity"),
            ErrorKind::Unavailable => {
                // The database could not be reached (no primary during a failover, a
                // network cut): a client retries, so 503 with Retry-After, not 500. The
                // driver's message stays in the server log.
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is unavailable; retry shortly (a write that was in flight may or may not have been made: retry it with check-and-set)",
                )
                .caused_by(error);
            }
            ErrorKind::Config | ErrorKind::Internal => {
                // Driver and configuration messages stay in the server log.
                return Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
                .caused_by(error);
            }
        };
        let problem = Self::new(status, reason, error.to_string());
        if status.is_server_error() {
            problem.caused_by(error)
        } else {
            problem
        }
    }
}

/// An error of the PocketBase-compatible API, rendered as [`ErrorBody`].
#[derive(Debug)]
pub struct ApiError(Problem);

/// The cause of a server error, carried from the handler to [`log_server_errors`] in the
/// response's extensions (and removed there: it never leaves the server).
#[derive(Clone, Debug)]
struct ErrorCause(String);

/// The access log: one line per request at `info` (target `strongroom::access`: method,
/// path without its query, status, microseconds), written after the response is made,
/// and for a server error its cause, once, at `error`. Handlers' own lines carry the
/// method and path through a `debug` span, which costs nothing at the default level.
/// Never a header, a query string or a body. `RUST_LOG=info,strongroom::access=off`
/// drops the per-request line and keeps every other.
pub(crate) async fn access_log(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use tracing::Instrument as _;
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let span = tracing::debug_span!("request", method = %method, path = %path);
    let mut response = next.run(request).instrument(span).await;
    let status = response.status().as_u16();
    if let Some(ErrorCause(cause)) = response.extensions_mut().remove::<ErrorCause>() {
        tracing::error!(%method, %path, status, error = %cause, "request failed");
    }
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::info!(target: "strongroom::access", %method, %path, status, micros, "request");
    response
}

impl ApiError {
    /// An error with a status, a message and a reason code.
    pub fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self(Problem::new(status, reason, message))
    }

    /// The same error with a named detail in its `data`.
    #[must_use]
    pub fn with_detail(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.0.details.push((name, value.into()));
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
        let Self(problem) = self;
        let mut data = serde_json::Map::new();
        data.insert("reason".into(), problem.reason.into());
        for (name, value) in &problem.details {
            data.insert((*name).into(), value.clone().into());
        }
        let body = ErrorBody {
            status: problem.status.as_u16(),
            message: problem.message.clone(),
            data,
        };
        problem.respond(axum::Json(body))
    }
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self(problem)
    }
}

/// The gateway's refusals (a path or method not allowed, a missing secret, an upstream
/// down) in the API's shape, with the secret's name in `data` when there is one.
impl From<strongroom_gateway::Refusal> for Problem {
    fn from(refusal: strongroom_gateway::Refusal) -> Self {
        let mut problem = Self::new(refusal.status, refusal.reason, refusal.message);
        if let Some(secret) = refusal.secret {
            problem.details.push(("secret", secret));
        }
        // An upstream down or slow is the upstream's failure (the gateway logs it); a
        // secret that could not be resolved is this server's.
        if problem.status == StatusCode::INTERNAL_SERVER_ERROR {
            let cause = problem.message.clone();
            problem.caused_by(cause)
        } else {
            problem
        }
    }
}

impl From<strongroom_gateway::Refusal> for ApiError {
    fn from(refusal: strongroom_gateway::Refusal) -> Self {
        Self(Problem::from(refusal))
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self(Problem::from(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database that can not be reached is a 503 with Retry-After on the native API and
    /// on `/v1`, never a 500, and the driver's message is not sent.
    #[test]
    fn an_unreachable_database_is_503_with_retry_after() {
        let error = || StoreError::Database("connection refused to 10.0.0.7:5432".into());
        let native = ApiError::from(Problem::from(error())).into_response();
        assert_eq!(native.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(native.headers()[axum::http::header::RETRY_AFTER], "1");
        let vault = crate::vault::VaultError::from(error()).into_response();
        assert_eq!(vault.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(vault.headers()[axum::http::header::RETRY_AFTER], "1");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let body = runtime
            .block_on(axum::body::to_bytes(native.into_body(), 1 << 16))
            .unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("10.0.0.7"));
    }
}
