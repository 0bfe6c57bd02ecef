//! `auth/token/…`: Vault's token API over Strongroom's tokens, which are identities (an
//! accessor, an expiry and a maximum, renewal, a use count, the token they were made
//! under). Auth methods (`auth/jwt`, `auth/kubernetes`, `auth/approle`) arrive as modules
//! beside this one, each with its own `routes()`.
//!
//! A token made here is a child of the calling token: it reaches nothing its parent does
//! not, never outlives it, and is revoked with it. Without a `ttl` it lives Vault's
//! default of 768 hours (a client never gets a permanent token by omission).

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::{extract::State, Json, Router};
use serde_json::{json, Value};
use strongroom_crypto::secrecy::ExposeSecret as _;
use strongroom_store::tokens::{accessor_of, Principal, Scope, TokenInfo, TokenRequest, Tokens};
use strongroom_store::{StoreError, Timestamp};

use super::super::{envelope, time, unsupported, VaultBody, VaultCaller, VaultError, VaultResult};
use crate::AppState;

/// Vault's default token ttl (`default_lease_ttl`, 768 h), for a token made without one.
const DEFAULT_TTL: Duration = Duration::from_secs(768 * 3600);

/// `/v1/auth/token/…`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/auth/token/create",
            post(create).put(create).fallback(unsupported),
        )
        .route(
            "/auth/token/lookup-self",
            get(lookup_self).post(lookup_self).fallback(unsupported),
        )
        .route(
            "/auth/token/lookup",
            post(lookup).get(lookup).fallback(unsupported),
        )
        .route(
            "/auth/token/lookup-accessor",
            post(lookup_accessor).fallback(unsupported),
        )
        .route(
            "/auth/token/renew-self",
            post(renew_self).put(renew_self).fallback(unsupported),
        )
        .route(
            "/auth/token/renew",
            post(renew).put(renew).fallback(unsupported),
        )
        .route(
            "/auth/token/renew-accessor",
            post(renew_accessor)
                .put(renew_accessor)
                .fallback(unsupported),
        )
        .route(
            "/auth/token/revoke-self",
            post(revoke_self).put(revoke_self).fallback(unsupported),
        )
        .route(
            "/auth/token/revoke",
            post(revoke).put(revoke).fallback(unsupported),
        )
        .route("/auth/token/accessors", axum::routing::any(list_accessors))
        .route(
            "/auth/token/revoke-accessor",
            post(revoke_accessor)
                .put(revoke_accessor)
                .fallback(unsupported),
        )
}

/// A token's scopes as Vault policies (`root` for a superuser).
fn policies_of(superuser: bool, scopes: &[String]) -> Vec<String> {
    if superuser {
        vec!["root".into()]
    } else {
        scopes.to_vec()
    }
}

/// The tokens, acting as the caller (its name is the actor of token events).
fn tokens_for(state: &AppState, caller: &Principal) -> Tokens {
    state.tokens.with_actor(&caller.actor())
}

/// A Vault duration: `3s`, `90m`, `12h`, `30d`, or a number of seconds (as a number or a
/// string); `None` when absent, empty or zero.
pub(crate) fn duration(body: &Value, field: &str) -> VaultResult<Option<Duration>> {
    let invalid = || {
        VaultError::bad_request(format!(
            "invalid {field}: expected a duration such as 30m, 12h or 3600"
        ))
    };
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let secs = n.as_u64().ok_or_else(invalid)?;
            Ok((secs > 0).then(|| Duration::from_secs(secs)))
        }
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => {
            let text = text.trim();
            let parsed = match text.parse::<u64>() {
                Ok(secs) => Duration::from_secs(secs),
                Err(_) => strongroom_store::parse_duration(text).map_err(|_| invalid())?,
            };
            Ok((!parsed.is_zero()).then_some(parsed))
        }
        Some(_) => Err(invalid()),
    }
}

/// Vault's `policies`: a list, or one string (hvac joins lists with commas): split at each
/// comma that starts a new scope (text holding `/`), so `default/prod:read,list,default/dev:read`
/// is two scopes.
pub(super) fn policies(body: &Value) -> VaultResult<Vec<String>> {
    let items: Vec<String> = match body.get("policies") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| VaultError::bad_request("policies: expected strings"))?,
        Some(Value::String(text)) => vec![text.clone()],
        Some(_) => return Err(VaultError::bad_request("policies: expected a list")),
    };
    let mut scopes: Vec<String> = Vec::new();
    for item in items {
        for piece in item.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match scopes.last_mut() {
                Some(last) if !piece.contains('/') && last.contains(':') => {
                    last.push(',');
                    last.push_str(piece);
                }
                _ => scopes.push(piece.to_owned()),
            }
        }
    }
    // Vault's `default` policy is every token's: nothing to add here.
    scopes.retain(|s| s != "default");
    Ok(scopes)
}

/// A unique token name from Vault's `display_name` (not unique: clients send `token`).
fn name_from(display_name: Option<&str>) -> VaultResult<String> {
    let base: String = display_name
        .unwrap_or("token")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let base = if base.is_empty() {
        "token".to_owned()
    } else {
        base
    };
    let mut random = [0u8; 4];
    getrandom::getrandom(&mut random)
        .map_err(|_| VaultError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?;
    Ok(format!("{base}-{}", hex::encode(random)))
}

/// `POST auth/token/create`: a child of the calling token.
async fn create(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    body: VaultBody,
) -> VaultResult {
    let body = body.json()?;
    if body.get("id").is_some_and(|v| !v.is_null()) {
        return Err(VaultError::bad_request(
            "choosing a token's id is not supported: tokens are random",
        ));
    }
    if body.get("role_name").is_some_and(|v| !v.is_null()) {
        return Err(VaultError::bad_request("token roles are not supported"));
    }
    let orphan = body
        .get("no_parent")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if orphan && !caller.superuser {
        return Err(VaultError::permission_denied());
    }
    let asked = policies(&body)?;
    let (superuser, scopes) = if asked.iter().any(|p| p == "root") {
        if asked.len() > 1 {
            return Err(VaultError::bad_request("root is a policy of its own"));
        }
        (true, Vec::new())
    } else if asked.is_empty() {
        // As Vault: a child without policies has its parent's.
        (caller.superuser, caller.scopes.clone())
    } else {
        let parsed = asked
            .iter()
            .map(|s| Scope::parse(s))
            .collect::<Result<Vec<_>, StoreError>>()?;
        (false, parsed)
    };
    let ttl = duration(&body, "ttl")?.or(Some(DEFAULT_TTL));
    let max_ttl = duration(&body, "explicit_max_ttl")?;
    let num_uses = match body.get("num_uses") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| VaultError::bad_request("num_uses: expected a whole number"))?,
    };
    let request = TokenRequest {
        bound_cidrs: Vec::new(),
        name: name_from(body.get("display_name").and_then(Value::as_str))?,
        superuser,
        scopes,
        // A ttl over an explicit max is the max (Vault caps it the same way).
        ttl: match (ttl, max_ttl) {
            (Some(t), Some(m)) => Some(t.min(m)),
            (t, _) => t,
        },
        max_ttl,
        num_uses,
        renewable: body
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        method: "token".into(),
    };
    let parent = (!orphan).then_some(&caller);
    let (info, token) =
        super::super::quotas::create_capped(&state, &caller.actor(), request, parent).await?;
    Ok(auth_block(&info, token.expose_secret()))
}

/// Vault's answer carrying a token: the `auth` block.
pub(super) fn auth_block(info: &TokenInfo, client_token: &str) -> Response {
    Json(auth_json(info, client_token)).into_response()
}

/// Vault's `auth` answer for a token, as JSON (a login adds its metadata).
pub(super) fn auth_json(info: &TokenInfo, client_token: &str) -> Value {
    let now = Timestamp(now_ms());
    let policies = policies_of(info.superuser, &info.scopes);
    json!({
        "request_id": "",
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": null,
        "wrap_info": null,
        "warnings": null,
        "auth": {
            "client_token": client_token,
            "accessor": info.accessor,
            "policies": policies,
            "token_policies": policies,
            "metadata": {"strongroom_token": info.name},
            "lease_duration": info.ttl_at(now),
            "renewable": info.renewable,
            "entity_id": "",
            "token_type": "service",
            "orphan": info.parent_accessor.is_none(),
            "mfa_requirement": null,
            "num_uses": info.num_uses,
        },
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Vault's lookup data of a token (never the token itself: `id` is empty).
fn lookup_data(info: &TokenInfo) -> Value {
    let now = Timestamp(now_ms());
    let creation_ttl = info.expires.map_or(0, |at| {
        (at.unix_ms() - info.created.unix_ms()).max(0) / 1000
    });
    let explicit_max_ttl = info.max_expires.map_or(0, |at| {
        (at.unix_ms() - info.created.unix_ms()).max(0) / 1000
    });
    json!({
        "accessor": info.accessor,
        "bound_cidrs": info.bound_cidrs,
        "creation_time": info.created.unix_ms() / 1000,
        "creation_ttl": creation_ttl,
        "display_name": format!("token-{}", info.name),
        "entity_id": "",
        "expire_time": info.expires.map(time),
        "explicit_max_ttl": explicit_max_ttl,
        "id": "",
        "issue_time": time(info.created),
        "meta": {"strongroom_token": info.name, "creator": info.creator},
        "num_uses": info.uses_left.unwrap_or(0),
        "orphan": info.parent_accessor.is_none(),
        "path": if info.method == "token" { "auth/token/create".to_owned() } else { format!("auth/{}/login", info.method) },
        "policies": policies_of(info.superuser, &info.scopes),
        "renewable": info.renewable,
        "ttl": info.ttl_at(now),
        "type": "service",
    })
}

/// The bootstrap admin token's lookup: it has no row, never expires, is not renewable.
fn admin_data(caller: &Principal) -> Value {
    json!({
        "accessor": "",
        "creation_time": 0,
        "creation_ttl": 0,
        "display_name": format!("token-{}", caller.name),
        "entity_id": "",
        "expire_time": null,
        "explicit_max_ttl": 0,
        "id": "",
        "meta": {"strongroom_token": caller.name},
        "num_uses": 0,
        "orphan": true,
        "path": "auth/token/create",
        "policies": ["root"],
        "renewable": false,
        "ttl": 0,
        "type": "service",
    })
}

/// `auth/token/lookup-self`: the real values (ESO reads `ttl` and `expire_time`).
async fn lookup_self(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
) -> VaultResult {
    match state.tokens.lookup_self(&caller).await? {
        Some(info) => Ok(envelope(lookup_data(&info))),
        None => Ok(envelope(admin_data(&caller))),
    }
}

/// A field of the body that names a token or an accessor.
fn field<'a>(body: &'a Value, name: &str) -> VaultResult<&'a str> {
    body.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| VaultError::bad_request(format!("missing {name}")))
}

/// The token another token names (`{"token": …}`), as `by` may see it: its own, or one
/// made under it (a superuser: any). Looking a token up never spends one of its uses.
async fn named_token(state: &AppState, body: &Value, by: &Principal) -> VaultResult<TokenInfo> {
    let presented = field(body, "token")?;
    let info = state
        .tokens
        .peek(presented)
        .await?
        .filter(|info| {
            by.superuser
                || by.id.as_ref().is_some_and(|id| {
                    *id == info.id || info.parent_accessor.as_deref() == Some(&accessor_of(id))
                })
        })
        .ok_or_else(VaultError::permission_denied)?;
    Ok(info)
}

/// `auth/token/lookup` `{"token"}`.
async fn lookup(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    body: VaultBody,
) -> VaultResult {
    let info = named_token(&state, &body.json()?, &caller).await?;
    Ok(envelope(lookup_data(&info)))
}

/// `auth/token/lookup-accessor` `{"accessor"}`: a superuser's, or the creator's.
async fn lookup_accessor(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    body: VaultBody,
) -> VaultResult {
    let body = body.json()?;
    let info = state
        .tokens
        .lookup_accessor(field(&body, "accessor")?, &caller)
        .await?
        .ok_or_else(VaultError::permission_denied)?;
    Ok(envelope(lookup_data(&info)))
}

/// `LIST auth/token/accessors` (a superuser's): the accessors of the live tokens.
async fn list_accessors(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
) -> VaultResult {
    if !caller.superuser {
        return Err(VaultError::permission_denied());
    }
    let now = strongroom_store::Timestamp::now();
    let keys: Vec<String> = state
        .tokens
        .list()
        .await?
        .into_iter()
        .filter(|t| {
            t.intact
                && t.revoked.is_none()
                && t.expires.is_none_or(|at| at > now)
                && t.uses_left != Some(0)
        })
        .map(|t| t.accessor)
        .collect();
    Ok(envelope(json!({ "keys": keys })))
}

/// Vault's answer to a renewal: the `auth` block without the token.
fn renewed(info: &TokenInfo) -> Response {
    auth_block(info, "")
}

/// `auth/token/renew-self` `{"increment"}`: never past the max ttl (a shorter
/// `lease_duration` then, as Vault answers); a token that is not renewable moves nothing.
async fn renew_self(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    body: VaultBody,
) -> VaultResult {
    let increment = duration(&body.json()?, "increment")?;
    if caller.id.is_none() {
        // The bootstrap admin token has no row and never expires: nothing to renew.
        return Ok(admin_renewal());
    }
    let increment = match state.tokens.lookup_self(&caller).await? {
        Some(info) => login_increment(&state, &caller, &info, increment).await?,
        None => increment,
    };
    let info = tokens_for(&state, &caller)
        .renew_self(&caller, increment)
        .await?;
    Ok(renewed(&info))
}

/// A token an auth method issued renews under its role as the role is now: a role (or a
/// method) that was deleted ends the token (it is revoked, and the renewal refused), and
/// without an increment the role's current `token_ttl` is what it extends by.
async fn login_increment(
    state: &AppState,
    caller: &Principal,
    info: &TokenInfo,
    increment: Option<Duration>,
) -> VaultResult<Option<Duration>> {
    if info.method == "token" {
        return Ok(increment);
    }
    let role = match info.creator.split_once(':') {
        Some((path, role)) if path == info.method => super::login_role(state, path, role).await?,
        _ => None,
    };
    let Some(role) = role else {
        tokens_for(state, caller).revoke_self(caller).await?;
        return Err(VaultError::permission_denied());
    };
    Ok(increment.or(duration(&role, "token_ttl")?))
}

/// The renewal answer of the bootstrap admin token: it never expires.
fn admin_renewal() -> Response {
    Json(json!({
        "request_id": "",
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": null,
        "wrap_info": null,
        "warnings": ["the bootstrap admin token does not expire; nothing to renew"],
        "auth": {
            "client_token": "",
            "accessor": "",
            "policies": ["root"],
            "token_policies": ["root"],
            "metadata": null,
            "lease_duration": 0,
            "renewable": false,
            "entity_id": "",
            "token_type": "service",
            "orphan": true,
        },
    }))
    .into_response()
}

/// `auth/token/renew` `{"token", "increment"}`.
async fn renew(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    body: VaultBody,
) -> VaultResult {
    let body = body.json()?;
    let info = named_token(&state, &body, &caller).await?;
    let increment = duration(&body, "increment")?;
    let info = tokens_for(&state, &caller)
        .renew_accessor(&info.accessor, &caller, increment)
        .await
        .map_err(not_yours)?;
    Ok(renewed(&info))
}

/// `auth/token/renew-accessor` `{"accessor", "increment"}`.
async fn renew_accessor(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    body: VaultBody,
) -> VaultResult {
    let body = body.json()?;
    let increment = duration(&body, "increment")?;
    let info = tokens_for(&state, &caller)
        .renew_accessor(field(&body, "accessor")?, &caller, increment)
        .await
        .map_err(not_yours)?;
    Ok(renewed(&info))
}

/// A token the caller may not see answers as Vault does: permission denied.
fn not_yours(error: StoreError) -> VaultError {
    match error {
        StoreError::TokenNotFound { .. } => VaultError::permission_denied(),
        other => other.into(),
    }
}

/// `auth/token/revoke-self`: this token and the tokens made under it; 204.
async fn revoke_self(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
) -> VaultResult {
    if caller.id.is_none() {
        return Err(VaultError::bad_request(
            "the bootstrap admin token is STRONGROOM_ADMIN_TOKEN; unset it to revoke it",
        ));
    }
    tokens_for(&state, &caller).revoke_self(&caller).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `auth/token/revoke` `{"token"}`: 204.
async fn revoke(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    body: VaultBody,
) -> VaultResult {
    let info = named_token(&state, &body.json()?, &caller).await?;
    tokens_for(&state, &caller)
        .revoke_accessor(&info.accessor, &caller)
        .await
        .map_err(not_yours)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `auth/token/revoke-accessor` `{"accessor"}`: a superuser's, or the creator's; 204.
async fn revoke_accessor(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    body: VaultBody,
) -> VaultResult {
    let body = body.json()?;
    tokens_for(&state, &caller)
        .revoke_accessor(field(&body, "accessor")?, &caller)
        .await
        .map_err(not_yours)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
