//! The typed parts of a `/v1` request, each refusing in Vault's shape: the caller's token
//! ([`VaultCaller`]), the query Vault's KV routes take ([`KvParams`]), a KV route's mount
//! and path ([`KvTarget`]) and the body, parsed as JSON only by the operations that take
//! one ([`VaultBody`]).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde_json::{json, Value};
use strongroom_store::tokens::Principal;

use super::{caller, VaultError};
use crate::AppState;

/// The caller of a Vault request (`X-Vault-Token`, else `Authorization: Bearer`); a
/// missing or unknown token is Vault's 403 "permission denied".
pub(crate) struct VaultCaller(pub(crate) Principal);

impl FromRequestParts<AppState> for VaultCaller {
    type Rejection = VaultError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, VaultError> {
        if let Some(OperatorCall(operator)) = parts.extensions.get::<OperatorCall>() {
            return Ok(Self(operator.clone()));
        }
        caller(state, &parts.headers, crate::peer_ip(parts))
            .await
            .map(Self)
    }
}

/// The caller of an in-process request made by the key's holder at the command line
/// ([`super::operator_request`]): only code in this process can put it in a request's
/// extensions, never a client over the network.
#[derive(Clone)]
pub(crate) struct OperatorCall(pub(crate) Principal);

/// `?list=` and `?version=`, as Vault parses them.
pub(crate) struct KvParams {
    /// A listing: the `LIST` method, or `list` set to one of Go's true spellings.
    pub(crate) list: bool,
    /// The version asked for (`0` or empty: the current one).
    pub(crate) version: Option<u32>,
}

#[derive(serde::Deserialize)]
struct RawParams {
    list: Option<String>,
    version: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for KvParams {
    type Rejection = VaultError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, VaultError> {
        let Ok(Query(raw)) = Query::<RawParams>::from_request_parts(parts, state).await else {
            return Err(VaultError::bad_request("invalid query parameters"));
        };
        let version = match raw.version.as_deref() {
            None | Some("" | "0") => None,
            Some(v) => Some(
                v.parse::<u32>()
                    .map_err(|_| VaultError::bad_request("invalid version"))?,
            ),
        };
        Ok(Self {
            // Vault parses `list` as Go's booleans do: 1, t, T, true, TRUE, True.
            list: parts.method.as_str() == "LIST"
                || matches!(
                    raw.list.as_deref(),
                    Some("1" | "t" | "T" | "true" | "TRUE" | "True")
                ),
            version,
        })
    }
}

/// A KV route's mount and the path after its operation (`{env}/{key}`, a listing prefix,
/// or empty).
pub(crate) struct KvTarget {
    pub(crate) mount: String,
    pub(crate) path: String,
}

#[derive(serde::Deserialize)]
struct RawTarget {
    mount: String,
    #[serde(default)]
    path: String,
}

impl<S: Send + Sync> FromRequestParts<S> for KvTarget {
    type Rejection = VaultError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, VaultError> {
        let Path(raw) = Path::<RawTarget>::from_request_parts(parts, state)
            .await
            .map_err(|_| VaultError::bad_request("invalid path"))?;
        Ok(Self {
            mount: raw.mount,
            path: raw.path,
        })
    }
}

/// A request's body, parsed as JSON only by the operations that take one.
pub(crate) struct VaultBody(Bytes);

impl VaultBody {
    /// The JSON body of a write (`{}` when empty).
    pub(crate) fn json(&self) -> Result<Value, VaultError> {
        if self.0.is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_slice(&self.0)
            .map_err(|_| VaultError::bad_request("failed to parse JSON input"))
    }
}

impl<S: Send + Sync> FromRequest<S> for VaultBody {
    type Rejection = VaultError;

    async fn from_request(request: Request, state: &S) -> Result<Self, VaultError> {
        Bytes::from_request(request, state)
            .await
            .map(Self)
            .map_err(|_| VaultError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"))
    }
}
