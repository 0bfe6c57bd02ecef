//! `auth/…` and `sys/auth`: how a caller gets a token. `token` (token self-service and
//! child tokens) is always mounted; other methods are enabled at a path through
//! `sys/auth` (Vault's `POST /v1/sys/auth/{path}` with `{"type": "jwt"}`), each one a
//! module here with its own routes. Their configuration and roles are sealed settings
//! (`authz::AuthSettings`): a database writer without the key can not add a role, a key or a
//! binding the server would honour.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::{unsupported, VaultBody, VaultCaller, VaultError, VaultResult};
use crate::AppState;

mod jwt;
mod token;

/// The setting that lists the enabled methods: `{"jwt/": {"type": "jwt", ...}}`.
const MOUNTS: &str = "auth/mounts";

/// The methods that can be enabled.
const METHODS: &[&str] = &["jwt"];

/// `auth/token/…`, `sys/auth`, and the routes of every method.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .merge(token::routes())
        .merge(jwt::routes())
        .route("/sys/auth", get(list_methods).fallback(unsupported))
        .route(
            "/sys/auth/{path}",
            axum::routing::post(enable)
                .put(enable)
                .delete(disable)
                .fallback(unsupported),
        )
}

/// The enabled methods (`path/` → description), `token/` always first.
async fn mounts(state: &AppState) -> VaultResult<Map<String, Value>> {
    let mut mounts = Map::new();
    mounts.insert(
        "token/".into(),
        json!({"type": "token", "accessor": "auth_token_strongroom", "description": "token based credentials", "local": false, "seal_wrap": false, "config": {"default_lease_ttl": 0, "max_lease_ttl": 0}, "options": null}),
    );
    if let Some(secrets) = &state.store {
        if let Some(Value::Object(stored)) = secrets.logins().get(MOUNTS).await? {
            mounts.extend(stored);
        }
    }
    Ok(mounts)
}

/// The type of the method enabled at `path`, if any.
pub(super) async fn method_at(state: &AppState, path: &str) -> VaultResult<Option<String>> {
    Ok(mounts(state)
        .await?
        .get(&format!("{path}/"))
        .and_then(|m| m.get("type"))
        .and_then(Value::as_str)
        .map(str::to_owned))
}

/// `GET sys/auth`.
async fn list_methods(State(state): State<AppState>, VaultCaller(_): VaultCaller) -> VaultResult {
    let mounts = Value::Object(mounts(&state).await?);
    let mut body = mounts.clone();
    body["data"] = mounts;
    Ok(Json(body).into_response())
}

/// A method path: a name, as a mount path is (no `/`: one segment).
fn check_path(path: &str) -> VaultResult<()> {
    if path.is_empty()
        || path.len() > 64
        || !path
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(VaultError::bad_request("invalid auth path"));
    }
    Ok(())
}

/// `POST sys/auth/{path}` `{"type": "jwt"}` (a superuser's).
async fn enable(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(path): Path<String>,
    body: VaultBody,
) -> VaultResult {
    check_path(&path)?;
    let body = body.json()?;
    let kind = body.get("type").and_then(Value::as_str).unwrap_or_default();
    if !METHODS.contains(&kind) {
        return Err(VaultError::bad_request(format!(
            "unsupported auth method type {kind:?} (supported: {})",
            METHODS.join(", ")
        )));
    }
    let secrets = super::secrets(&state)?;
    let settings = secrets.caller(&caller).auth_settings()?;
    let mut stored = match settings.get(MOUNTS).await? {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let key = format!("{path}/");
    if path == "token" || stored.contains_key(&key) {
        return Err(VaultError::bad_request(format!(
            "path is already in use at {key}"
        )));
    }
    stored.insert(
        key,
        json!({"type": kind, "accessor": format!("auth_{kind}_{path}"), "description": body.get("description").and_then(Value::as_str).unwrap_or_default(), "local": false, "seal_wrap": false, "config": {"default_lease_ttl": 0, "max_lease_ttl": 0}, "options": null}),
    );
    settings.set(MOUNTS, Some(&Value::Object(stored))).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE sys/auth/{path}`: its configuration and roles go, and every token it issued
/// stops working (revoked).
async fn disable(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(path): Path<String>,
) -> VaultResult {
    check_path(&path)?;
    let secrets = super::secrets(&state)?;
    let settings = secrets.caller(&caller).auth_settings()?;
    let mut stored = match settings.get(MOUNTS).await? {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    if stored.remove(&format!("{path}/")).is_some() {
        settings.set(MOUNTS, Some(&Value::Object(stored))).await?;
        settings.set(&format!("auth/{path}"), None).await?;
        state
            .tokens
            .with_actor(&caller.actor())
            .revoke_issued_by(&path)
            .await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A response with Vault's envelope around `data`.
fn data(value: Value) -> Response {
    super::envelope(value)
}
