//! A faithful subset of HashiCorp Vault's HTTP API under `/v1/`, so Vault's clients (hvac,
//! node-vault, the `vault` CLI, the External Secrets Operator, consul-template) work
//! unchanged. The contract is Vault's own documentation; what is served and what is not
//! is listed in `docs/vault-compat.md`.
//!
//! Everything under `/v1/` answers in Vault's shapes: `{"errors": [...]}` for failures
//! (never a 500 for a path it does not know), the response envelope for successes. Tokens
//! are Strongroom's own (`X-Vault-Token` or `Authorization: Bearer`), with the same
//! scopes and capabilities as the native API; every value read is a `vault_read` audit
//! event under the token's name.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use strongroom_store::tokens::Principal;
use strongroom_store::{ConflictKind, ErrorKind, StoreError};

use crate::{AppState, Problem};

mod auth;
pub(crate) mod database;
mod extract;
mod kv;
pub(crate) mod quotas;
mod sys;

pub(crate) use extract::{KvParams, KvTarget, VaultBody, VaultCaller};

/// `/v1/…`: the engines' routers side by side (`sys`, `auth/token`, KV), each path and
/// method registered once with typed extractors; whatever none of them serves answers in
/// Vault's shape (never axum's bare 404 or 405). A new engine (a database engine, an auth
/// method) is one more module with its own `routes()` merged here.
pub(crate) fn routes() -> axum::Router<AppState> {
    let v1 = axum::Router::new()
        .merge(sys::routes())
        .merge(auth::routes())
        .merge(kv::routes())
        .merge(quotas::routes())
        .merge(database::routes())
        .fallback(unsupported)
        .layer(axum::middleware::from_fn(one_spelling));
    axum::Router::new().nest("/v1", v1)
}

/// One `/v1` request made in this process by `operator` (the key's holder at the command
/// line: `strongroom auth …`), through the same handlers, checks and audit events as over
/// HTTP but with no token: its status and JSON body (`null` when empty).
pub async fn operator_request(
    state: AppState,
    operator: Principal,
    method: axum::http::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    use tower::ServiceExt as _;
    let mut request = axum::http::Request::builder()
        .method(method)
        .uri(format!("/v1/{}", path.trim_start_matches('/')))
        .header(axum::http::header::CONTENT_TYPE, "application/json");
    if let Some(extensions) = request.extensions_mut() {
        extensions.insert(extract::OperatorCall(operator));
        extensions.insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            0,
        ))));
    }
    let body = body.map_or_else(String::new, |b| b.to_string());
    let Ok(request) = request.body(axum::body::Body::from(body)) else {
        return (StatusCode::BAD_REQUEST, json!({"errors": ["invalid path"]}));
    };
    let response = match routes().with_state(state).oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A name an operator gives (a role, a quota): 1 to `max` of `A-Za-z0-9_.-`, else 400
/// `invalid` (it becomes part of a setting's name and of audit events).
pub(crate) fn check_plain_name(name: &str, max: usize, invalid: &str) -> VaultResult<()> {
    if name.is_empty()
        || name.len() > max
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(VaultError::bad_request(invalid));
    }
    Ok(())
}

/// The secrets, or Vault's 503 when the server runs without a master key.
pub(crate) fn secrets(state: &AppState) -> VaultResult<&crate::authz::Secrets> {
    state.store.as_ref().ok_or_else(|| {
        VaultError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "secrets are disabled: no master key is configured",
        )
    })
}

/// A Vault-shaped failure: status and `{"errors": [...]}`, rendered from the same
/// [`Problem`] as every surface (its cause goes to the log layer, never to the client).
#[derive(Debug)]
pub(crate) struct VaultError {
    status: StatusCode,
    errors: Vec<String>,
    problem: Option<Box<Problem>>,
}

impl VaultError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            errors: vec![message.into()],
            problem: None,
        }
    }

    /// Vault's answer to a missing or refused token, and to a missing capability.
    pub(crate) fn permission_denied() -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission denied")
    }

    /// Vault's answer to a secret or version that is not there: 404 with no errors.
    pub(crate) fn not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            errors: Vec::new(),
            problem: None,
        }
    }

    pub(crate) fn unsupported_path() -> Self {
        Self::new(StatusCode::NOT_FOUND, "unsupported path")
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for VaultError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "errors": self.errors }));
        match self.problem {
            Some(problem) => (*problem).respond_as(self.status, body),
            None => (self.status, body).into_response(),
        }
    }
}

/// A missing capability: Vault's 403 "permission denied" (it names nothing).
impl From<crate::authz::Denied> for VaultError {
    fn from(_: crate::authz::Denied) -> Self {
        Self::permission_denied()
    }
}

impl From<StoreError> for VaultError {
    fn from(error: StoreError) -> Self {
        Self::from(Problem::from(error))
    }
}

/// Vault's words for a problem: its kind decides, one arm per kind and no catch-all.
impl From<Problem> for VaultError {
    fn from(problem: Problem) -> Self {
        let mut rendered = match problem.kind {
            Some(ErrorKind::NotFound | ErrorKind::Gone) => Self::not_found(),
            // Vault's words for check-and-set; the other conflicts say what they are.
            Some(ErrorKind::Conflict) => match problem.conflict {
                Some(ConflictKind::CasMismatch) | None => {
                    Self::bad_request("check-and-set parameter did not match the current version")
                }
                Some(ConflictKind::CasRequired) => {
                    Self::bad_request("check-and-set parameter required for this call")
                }
                Some(
                    ConflictKind::NameTaken
                    | ConflictKind::TargetExists
                    | ConflictKind::ChangedMeanwhile
                    | ConflictKind::LockMoved,
                ) => Self::bad_request(problem.message.clone()),
            },
            Some(ErrorKind::Invalid) => Self::bad_request(problem.message.clone()),
            // Vault's lease-count quota answer.
            Some(ErrorKind::Limited) => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, problem.message.clone())
            }
            Some(ErrorKind::Unavailable) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is unavailable",
            ),
            Some(
                ErrorKind::Config
                | ErrorKind::WrongKey
                | ErrorKind::KeyUnavailable
                | ErrorKind::Integrity
                | ErrorKind::Internal,
            ) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
            // Not a store error: the problem's own status and message.
            None => Self::new(problem.status, problem.message.clone()),
        };
        rendered.problem = Some(Box::new(problem));
        rendered
    }
}

pub(crate) type VaultResult<T = Response> = Result<T, VaultError>;

/// Vault's response envelope around `data`.
pub(crate) fn envelope(data: Value) -> Response {
    let mut body = json!({
        "request_id": request_id(),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "wrap_info": null,
        "warnings": null,
        "auth": null,
        "mount_type": "kv",
    });
    if let Value::Object(fields) = &mut body {
        fields.insert("data".into(), data);
    }
    Json(body).into_response()
}

/// A random request id in UUID form (Vault's clients log it; nothing depends on it).
fn request_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        return String::new();
    }
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Refuses, for every `/v1` route, a path that could be spelled two ways: key names are
/// `A-Za-z0-9_./-`, so an escape (`%`, `\\`) is refused rather than decoded, and no dot
/// segment or empty segment (but a listing's trailing `/`) is taken: a path names one
/// place, spelled one way.
async fn one_spelling(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    // Inside `/v1`'s router: the path after `/v1`.
    let path = request.uri().path();
    let path = path.strip_prefix('/').unwrap_or(path);
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    if path.contains('%')
        || path.contains('\\')
        || trimmed
            .split('/')
            .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return VaultError::bad_request("invalid path").into_response();
    }
    next.run(request).await
}

/// Any path or method no engine serves: Vault's 404 "unsupported path", after the token
/// is checked (as Vault does, so an unauthenticated caller learns nothing of the routes).
pub(crate) async fn unsupported(VaultCaller(_): VaultCaller) -> VaultError {
    VaultError::unsupported_path()
}

/// The caller of a Vault request: `X-Vault-Token`, else `Authorization: Bearer`. A
/// missing or unknown token is Vault's 403 "permission denied".
pub(crate) async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
) -> VaultResult<Principal> {
    let presented = headers
        .get("x-vault-token")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(VaultError::permission_denied)?;
    match state.tokens.authenticate_from(presented, peer).await {
        Ok(Some(principal)) => Ok(principal),
        Ok(None) => Err(VaultError::permission_denied()),
        Err(e) => Err(e.into()),
    }
}

/// An RFC 3339 time as Vault writes it.
pub(crate) fn time(timestamp: strongroom_store::Timestamp) -> String {
    timestamp.to_string()
}
