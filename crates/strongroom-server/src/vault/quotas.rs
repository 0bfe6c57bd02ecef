//! `sys/quotas/lease-count/{name}`: Vault's lease-count quotas, caps on the tokens that
//! are live at once (not revoked, not expired, uses left), global, per auth method or per
//! login role. A creation over a cap answers 429 and nothing is written; the count is
//! taken in the creating transaction under the audit log's lock, so two logins can not
//! both take the last place. Quotas are a sealed setting (a database writer without the
//! key can not lift one); `/metrics` shows each quota's maximum, its live count and its
//! refusals.
//!
//! `path` is `""` (every token the server issues), `auth/{method}/` (or
//! `auth/{method}/login`: the tokens that method's logins make; `auth/token/` for child
//! tokens), and `role` narrows a method's quota to one role. Tokens made at the command
//! line by the key's holder are not capped.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse as _;
use axum::routing::{any, get};
use axum::Router;
use serde_json::{json, Map, Value};
use strongroom_crypto::secrecy::SecretString;
use strongroom_store::tokens::{LiveCap, Principal, TokenInfo, TokenRequest};
use strongroom_store::StoreError;

use super::{envelope, unsupported, VaultBody, VaultCaller, VaultError, VaultResult};
use crate::AppState;

/// The sealed setting holding every quota: `{"name": {"path": .., "role": .., "max_leases": n}}`.
const QUOTAS: &str = "quotas/lease-count";

/// The routes of `sys/quotas/lease-count`.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/sys/quotas/lease-count", any(list))
        .route(
            "/sys/quotas/lease-count/{name}",
            get(read)
                .post(write)
                .put(write)
                .delete(delete)
                .fallback(unsupported),
        )
}

/// Every stored quota (a superuser's read through `caller`, or a login's when `None`).
async fn stored(state: &AppState, caller: Option<&Principal>) -> VaultResult<Map<String, Value>> {
    let secrets = super::secrets(state)?;
    let value = match caller {
        Some(caller) => secrets.caller(caller).auth_settings()?.get(QUOTAS).await?,
        None => secrets.logins().get(QUOTAS).await?,
    };
    Ok(match value {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    })
}

/// A quota name: `A-Za-z0-9_.-`, at most 64.
fn check_name(name: &str) -> VaultResult<()> {
    super::check_plain_name(name, 64, "invalid quota name")
}

/// The cap a quota sets: which tokens it counts and how many.
fn cap_of(name: &str, quota: &Value) -> VaultResult<LiveCap> {
    let path = quota
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let role = quota
        .get("role")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty());
    let max = match quota.get("max_leases") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .filter(|n| *n > 0)
    .ok_or_else(|| VaultError::bad_request("max_leases must be a whole number above 0"))?;
    let method = if path.is_empty() {
        None
    } else {
        let rest = path
            .strip_prefix("auth/")
            .map(|rest| rest.strip_suffix("/login").unwrap_or(rest))
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|m| {
                !m.is_empty()
                    && m.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                    })
            })
            .ok_or_else(|| {
                VaultError::bad_request(
                    "path must be empty (every token) or an auth method's (auth/approle/)",
                )
            })?;
        Some(rest.to_owned())
    };
    let creator = match (role, &method) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(VaultError::bad_request(
                "a quota with a role needs the auth method's path",
            ))
        }
        (Some(role), Some(method)) => Some(format!("{method}:{role}")),
    };
    Ok(LiveCap {
        name: name.to_owned(),
        method,
        creator,
        max,
    })
}

/// Every quota as a cap (for a creation; a stored quota that no longer parses caps
/// nothing rather than everything, and is refused when written). None without a key.
pub(crate) async fn live_caps(state: &AppState) -> strongroom_store::Result<Vec<LiveCap>> {
    let Some(secrets) = &state.store else {
        return Ok(Vec::new());
    };
    let quotas = match secrets.logins().get(QUOTAS).await? {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    Ok(quotas
        .iter()
        .filter_map(|(name, quota)| cap_of(name, quota).ok())
        .collect())
}

/// Creates a token under every quota, whichever surface asks (`/v1` logins and child
/// tokens, `/api/tokens`): a cap reached is [`StoreError::QuotaReached`] (429 on every
/// surface), counted in `/metrics`.
pub(crate) async fn create_capped(
    state: &AppState,
    actor: &str,
    request: TokenRequest,
    parent: Option<&Principal>,
) -> strongroom_store::Result<(TokenInfo, SecretString)> {
    let caps = live_caps(state).await?;
    let created = state
        .tokens
        .with_actor(actor)
        .create_within(request, parent, &caps)
        .await;
    counted(state, created)
}

/// What a creation that spends nothing made: always something (a refusal is an error), so
/// `None` is a defect.
pub(crate) fn spent_nothing<T>(made: Option<T>) -> strongroom_store::Result<T> {
    made.ok_or(StoreError::Defect(
        "a token made without a credential to spend found one spent",
    ))
}

/// [`create_capped`] for a login's token: its `login` event and the credential it spends
/// written with the token, or (a quota reached, any refusal) not at all. `None`, nothing
/// written, when the credential was spent or changed meanwhile.
pub(crate) async fn create_capped_login(
    state: &AppState,
    actor: &str,
    request: TokenRequest,
    login: strongroom_store::Login,
) -> strongroom_store::Result<Option<(TokenInfo, SecretString)>> {
    let caps = live_caps(state).await?;
    let created = state
        .tokens
        .with_actor(actor)
        .create_for_login(request, None, &caps, login)
        .await;
    counted(state, created)
}

/// `created`, with a quota's refusal counted in `/metrics`.
fn counted<T>(
    state: &AppState,
    created: strongroom_store::Result<T>,
) -> strongroom_store::Result<T> {
    if let (Err(StoreError::QuotaReached { quota, .. }), Some(metrics)) = (&created, &state.metrics)
    {
        metrics.quota_refused(quota);
    }
    created
}

/// `POST sys/quotas/lease-count/{name}` `{path, role, max_leases}` (a superuser's); a
/// write merges with the stored quota.
async fn write(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(name): Path<String>,
    body: VaultBody,
) -> VaultResult {
    check_name(&name)?;
    let Value::Object(update) = body.json()? else {
        return Err(VaultError::bad_request("expected a JSON object"));
    };
    let mut all = stored(&state, Some(&caller)).await?;
    let mut quota = match all.remove(&name) {
        Some(Value::Object(quota)) => quota,
        _ => Map::new(),
    };
    for field in ["path", "role", "max_leases"] {
        if let Some(value) = update.get(field) {
            quota.insert(field.into(), value.clone());
        }
    }
    let quota = Value::Object(quota);
    cap_of(&name, &quota)?;
    all.insert(name, quota);
    let settings = super::secrets(&state)?.caller(&caller).auth_settings()?;
    settings.set(QUOTAS, Some(&Value::Object(all))).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET sys/quotas/lease-count/{name}`.
async fn read(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(name): Path<String>,
) -> VaultResult {
    let all = stored(&state, Some(&caller)).await?;
    let quota = all.get(&name).ok_or_else(VaultError::not_found)?;
    let cap = cap_of(&name, quota)?;
    Ok(envelope(json!({
        "name": name,
        "type": "lease-count",
        "path": quota.get("path").cloned().unwrap_or(json!("")),
        "role": quota.get("role").cloned().unwrap_or(json!("")),
        "max_leases": cap.max,
        "inheritable": false,
    })))
}

/// `DELETE sys/quotas/lease-count/{name}`; 204.
async fn delete(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(name): Path<String>,
) -> VaultResult {
    let mut all = stored(&state, Some(&caller)).await?;
    if all.remove(&name).is_some() {
        let settings = super::secrets(&state)?.caller(&caller).auth_settings()?;
        settings.set(QUOTAS, Some(&Value::Object(all))).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `LIST sys/quotas/lease-count`.
async fn list(State(state): State<AppState>, VaultCaller(caller): VaultCaller) -> VaultResult {
    let all = stored(&state, Some(&caller)).await?;
    if all.is_empty() {
        return Err(VaultError::not_found());
    }
    let keys: Vec<&String> = all.keys().collect();
    Ok(envelope(json!({ "keys": keys })))
}

/// The quotas for `/metrics`: `(name, cap)` of each that parses.
pub(crate) async fn caps_for_metrics(state: &AppState) -> Vec<LiveCap> {
    live_caps(state).await.unwrap_or_default()
}
