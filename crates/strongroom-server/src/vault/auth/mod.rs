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

mod approle;
mod jwt;
mod keys;
mod kubernetes;
mod token;

pub(crate) use jwt::string_list;
pub(crate) use token::duration;

/// The setting that lists the enabled methods: `{"jwt/": {"type": "jwt", ...}}`.
const MOUNTS: &str = "auth/mounts";

/// The methods that can be enabled.
const METHODS: &[&str] = &["jwt", "kubernetes", "approle"];

/// `auth/token/…`, `sys/auth`, and the routes of every method.
pub(super) fn routes() -> Router<AppState> {
    use axum::routing::post;
    Router::new()
        .merge(token::routes())
        .route(
            "/auth/{path}/config",
            get(read_config)
                .post(write_config)
                .put(write_config)
                .fallback(unsupported),
        )
        .route(
            "/auth/{path}/role/{name}",
            get(read_role)
                .post(write_role)
                .put(write_role)
                .delete(delete_role)
                .fallback(unsupported),
        )
        .route("/auth/{path}/role", axum::routing::any(list_roles))
        .route(
            "/auth/{path}/role/{name}/role-id",
            get(approle::read_role_id).fallback(unsupported),
        )
        .route(
            "/auth/{path}/role/{name}/secret-id",
            post(approle::new_secret_id)
                .put(approle::new_secret_id)
                .fallback(unsupported),
        )
        .route(
            "/auth/{path}/login",
            post(login).put(login).fallback(unsupported),
        )
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
        settings.set(&setting(&path), None).await?;
        settings
            .set(&approle::secret_ids_setting(&path), None)
            .await?;
        state
            .tokens
            .with_actor(&caller.actor())
            .revoke_issued_by(&path)
            .await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The sealed setting of the method at `path`: `{"config": {...}, "roles": {...}}`.
pub(super) fn setting(path: &str) -> String {
    format!("auth/{path}")
}

/// The method's stored setting, for a superuser to read or change (404 when no method is
/// enabled at `path`).
pub(super) async fn stored(
    state: &AppState,
    caller: &strongroom_store::tokens::Principal,
    path: &str,
) -> VaultResult<Map<String, Value>> {
    if method_at(state, path).await?.is_none() || path == "token" {
        return Err(VaultError::unsupported_path());
    }
    let settings = super::secrets(state)?.caller(caller).auth_settings()?;
    Ok(match settings.get(&setting(path)).await? {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    })
}

/// Writes the method's setting (an `auth_config` event); the keys its configuration names
/// are dropped from the cache (no other method's).
pub(super) async fn save(
    state: &AppState,
    caller: &strongroom_store::tokens::Principal,
    path: &str,
    value: Map<String, Value>,
) -> VaultResult<()> {
    let settings = super::secrets(state)?.caller(caller).auth_settings()?;
    let config = value.get("config").cloned();
    settings
        .set(&setting(path), Some(&Value::Object(value)))
        .await?;
    if let Some(config) = config {
        keys::forget_keys_of(&config);
    }
    Ok(())
}

/// The role `role` of the method at `path` as it is now (`None`: the method or the role
/// is gone), for renewing a token it issued.
pub(super) async fn login_role(
    state: &AppState,
    path: &str,
    role: &str,
) -> VaultResult<Option<Value>> {
    if method_at(state, path).await?.is_none() {
        return Ok(None);
    }
    let all = super::secrets(state)?.logins().get(&setting(path)).await?;
    Ok(all.and_then(|all| all.get("roles").and_then(|r| r.get(role)).cloned()))
}

/// A role's `token_policies` as scopes (a list, or hvac's comma-joined string).
pub(super) fn role_scopes(role: &Value) -> VaultResult<Vec<strongroom_store::tokens::Scope>> {
    token::policies(
        &json!({"policies": role.get("token_policies").cloned().unwrap_or(Value::Null)}),
    )?
    .iter()
    .map(|s| strongroom_store::tokens::Scope::parse(s))
    .collect::<Result<Vec<_>, strongroom_store::StoreError>>()
    .map_err(VaultError::from)
}

/// What a login adds to the token it issues: the `auth` block's metadata, and the
/// credential it spends (a single-use secret ID) in the token's own transaction (with the
/// `login` event every login writes there).
pub(super) struct LoginExtras {
    /// Shown in the answer's `auth.metadata`.
    pub(super) metadata: Map<String, Value>,
    /// Spent with the token's creation, or not at all.
    pub(super) spend: Option<strongroom_store::CredentialSpend>,
}

impl LoginExtras {
    /// Metadata only: a login that spends nothing.
    pub(super) fn metadata(metadata: Map<String, Value>) -> Self {
        Self {
            metadata,
            spend: None,
        }
    }
}

/// Issues the token a login through `path` gets under the role `role_name` (`role`: its
/// scopes, ttls and use count), named from `display`, made by `path:role_name`: Vault's
/// `auth` block. The `login` event, and the credential the login spends
/// (`extras.spend`), are written with the token or not at all (a quota's refusal writes
/// and spends nothing); `None`, nothing written, when the credential was spent or changed
/// meanwhile.
#[allow(clippy::too_many_arguments)] // a login's parts, each named at the call
pub(super) async fn issue_login_token(
    state: &AppState,
    path: &str,
    role_name: &str,
    display: &str,
    role: &Value,
    peer: std::net::IpAddr,
    extras: LoginExtras,
) -> VaultResult<Option<Response>> {
    use strongroom_crypto::secrecy::ExposeSecret as _;
    if !peer_within(role, peer)? {
        return Err(VaultError::bad_request(
            "the client address is outside the role's token_bound_cidrs",
        ));
    }
    let ttl = token::duration(role, "token_ttl")?;
    let request = strongroom_store::tokens::TokenRequest {
        name: jwt::token_name(display)?,
        superuser: false,
        scopes: role_scopes(role)?,
        ttl,
        max_ttl: token::duration(role, "token_max_ttl")?,
        num_uses: role
            .get("token_num_uses")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        renewable: ttl.is_some(),
        method: path.to_owned(),
        bound_cidrs: approle::cidrs(role.get("token_bound_cidrs"))?,
    };
    if request.scopes.is_empty() {
        return Err(VaultError::bad_request(
            "the role has no token_policies: a token would reach nothing",
        ));
    }
    let login = strongroom_store::Login {
        method: path.to_owned(),
        role: role_name.to_owned(),
        spend: extras.spend,
    };
    let actor = format!("{path}:{role_name}");
    let Some((info, token)) =
        super::quotas::create_capped_login(state, &actor, request, login).await?
    else {
        return Ok(None);
    };
    let mut answer = token::auth_json(&info, token.expose_secret());
    if let Some(shown) = answer["auth"]["metadata"].as_object_mut() {
        shown.extend(extras.metadata);
    }
    Ok(Some(Json(answer).into_response()))
}

/// Whether `peer` may log in under `role`: inside one of its `token_bound_cidrs`, or the
/// role binds none.
pub(super) fn peer_within(role: &Value, peer: std::net::IpAddr) -> VaultResult<bool> {
    let bound: Vec<String> = approle::cidrs(role.get("token_bound_cidrs"))?
        .iter()
        .map(ToString::to_string)
        .collect();
    Ok(bound.is_empty() || strongroom_store::tokens::within(&bound, peer))
}

/// The non-empty string `fields` of a configuration body, nothing else of it.
pub(super) fn non_empty_strings(body: &Value, fields: &[&str]) -> Map<String, Value> {
    fields
        .iter()
        .filter_map(|field| {
            body.get(*field)
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
                .map(|text| ((*field).to_owned(), Value::String(text.to_owned())))
        })
        .collect()
}

/// A role name: `A-Za-z0-9_.-`, at most 128.
fn check_role_name(name: &str) -> VaultResult<()> {
    super::check_plain_name(name, 128, "invalid role name")
}

/// `POST auth/{path}/role/{name}`: merged with the stored role (Vault's older `policies`,
/// `ttl`, `max_ttl`, `num_uses` taken as the `token_` ones), then checked by its method.
async fn write_role(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path((path, name)): Path<(String, String)>,
    body: VaultBody,
) -> VaultResult {
    check_role_name(&name)?;
    let Value::Object(update) = body.json()? else {
        return Err(VaultError::bad_request("expected a JSON object"));
    };
    let kind = method_at(&state, &path).await?;
    let mut all = stored(&state, &caller, &path).await?;
    let mut roles = match all.remove("roles") {
        Some(Value::Object(roles)) => roles,
        _ => Map::new(),
    };
    let mut role = match roles.remove(&name) {
        Some(Value::Object(role)) => role,
        _ => Map::new(),
    };
    for (old, new) in [
        ("policies", "token_policies"),
        ("ttl", "token_ttl"),
        ("max_ttl", "token_max_ttl"),
        ("num_uses", "token_num_uses"),
    ] {
        if let Some(value) = update.get(old) {
            role.insert(new.into(), value.clone());
        }
    }
    role.extend(update);
    // Stored as a list whatever the spelling (hvac comma-joins lists), as Vault answers.
    let bound = approle::cidrs(role.get("token_bound_cidrs"))?;
    if role.contains_key("token_bound_cidrs") {
        let bound: Vec<String> = bound.iter().map(ToString::to_string).collect();
        role.insert("token_bound_cidrs".into(), json!(bound));
    }
    match kind.as_deref() {
        Some("jwt") => jwt::check_role(&Value::Object(role.clone()))?,
        Some("kubernetes") => kubernetes::check_role(&Value::Object(role.clone()))?,
        Some("approle") => approle::prepare_role(&mut role)?,
        _ => return Err(VaultError::unsupported_path()),
    }
    roles.insert(name, Value::Object(role));
    all.insert("roles".into(), Value::Object(roles));
    save(&state, &caller, &path, all).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST auth/{path}/config`: the method at `path` checks it.
async fn write_config(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(path): Path<String>,
    body: VaultBody,
) -> VaultResult {
    match method_at(&state, &path).await?.as_deref() {
        Some("jwt") => jwt::write_config(State(state), VaultCaller(caller), Path(path), body).await,
        Some("kubernetes") => {
            let config = kubernetes::check_config(&body.json()?)?;
            let mut all = stored(&state, &caller, &path).await?;
            all.insert("config".into(), Value::Object(config));
            save(&state, &caller, &path, all).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(VaultError::unsupported_path()),
    }
}

/// `GET auth/{path}/config` (secrets in it, `token_reviewer_jwt`, are never shown).
async fn read_config(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(path): Path<String>,
) -> VaultResult {
    let all = stored(&state, &caller, &path).await?;
    let mut config = all.get("config").cloned().unwrap_or_else(|| json!({}));
    if let Some(map) = config.as_object_mut() {
        if map.remove("token_reviewer_jwt").is_some() {
            map.insert("token_reviewer_jwt_set".into(), Value::Bool(true));
        }
    }
    Ok(data(config))
}

/// `GET auth/{path}/role/{name}`.
async fn read_role(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path((path, name)): Path<(String, String)>,
) -> VaultResult {
    let all = stored(&state, &caller, &path).await?;
    let role = all
        .get("roles")
        .and_then(|r| r.get(&name))
        .cloned()
        .ok_or_else(VaultError::not_found)?;
    Ok(data(role))
}

/// `DELETE auth/{path}/role/{name}`; 204.
async fn delete_role(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path((path, name)): Path<(String, String)>,
) -> VaultResult {
    let mut all = stored(&state, &caller, &path).await?;
    if let Some(Value::Object(roles)) = all.get_mut("roles") {
        roles.remove(&name);
    }
    save(&state, &caller, &path, all).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `LIST auth/{path}/role`.
async fn list_roles(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(path): Path<String>,
) -> VaultResult {
    let all = stored(&state, &caller, &path).await?;
    let keys: Vec<String> = all
        .get("roles")
        .and_then(Value::as_object)
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default();
    if keys.is_empty() {
        return Err(VaultError::not_found());
    }
    Ok(data(json!({ "keys": keys })))
}

/// `POST auth/{path}/login`: the method at `path` decides (no token needed).
async fn login(
    State(state): State<AppState>,
    Path(path): Path<String>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    body: VaultBody,
) -> VaultResult {
    let body = body.json()?;
    match method_at(&state, &path).await?.as_deref() {
        Some("jwt") => jwt::login(&state, &path, &body, peer.ip()).await,
        Some("kubernetes") => kubernetes::login(&state, &path, &body, peer.ip()).await,
        Some("approle") => approle::login(&state, &path, &body, peer.ip()).await,
        _ => Err(VaultError::unsupported_path()),
    }
}

/// A response with Vault's envelope around `data`.
fn data(value: Value) -> Response {
    super::envelope(value)
}
