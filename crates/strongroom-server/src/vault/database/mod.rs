//! Vault's database secrets engine at the mount `database` (PostgreSQL): connections,
//! roles, dynamic logins under leases, and `sys/leases`. The mount needs no enabling.
//!
//! - `database/config/{name}`: a connection (its password sealed like a secret, never
//!   returned), verified on write; `allowed_roles` empty means none, `*` any.
//! - `database/roles/{name}`: creation, revocation and renew statements, `default_ttl`,
//!   `max_ttl`.
//! - `database/creds/{role}`: a login made at once, under a lease that is recorded before
//!   the login is made (so a crash between the two leaves nothing nobody will drop).
//! - Leases end on time: a sweeper in every server instance claims due leases (each by one
//!   instance) and drops their logins, retrying with capped backoff while the database is
//!   unreachable (`leases.rs`).
//!
//! Configuration is a superuser's (sealed settings, `auth_config` events); reading creds
//! needs `read` on namespace `database`, env `creds`, key `{role}` (`database/creds/app:read`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse as _;
use axum::routing::{any, get};
use axum::Router;
use serde_json::{json, Map, Value};

use super::{envelope, unsupported, VaultBody, VaultCaller, VaultError, VaultResult};
use crate::AppState;

mod creds;
pub(crate) mod leases;
mod pg;
mod pool;
mod statics;

/// The routes of `database/…` and `sys/leases/…`.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/database/config/{name}",
            get(read_config)
                .post(write_config)
                .put(write_config)
                .delete(delete_config)
                .fallback(unsupported),
        )
        .route("/database/config", any(list_configs))
        .route(
            "/database/rotate-root/{name}",
            axum::routing::post(rotate_root)
                .put(rotate_root)
                .fallback(unsupported),
        )
        .route(
            "/database/roles/{name}",
            get(read_role)
                .post(write_role)
                .put(write_role)
                .delete(delete_role)
                .fallback(unsupported),
        )
        .route("/database/roles", any(list_roles))
        .route(
            "/database/creds/{role}",
            get(creds::issue).fallback(unsupported),
        )
        .merge(leases::routes())
        .merge(statics::routes())
}

/// The sealed setting of a connection or a role.
fn setting(kind: &str, name: &str) -> String {
    format!("database/{kind}/{name}")
}

/// The setting listing the names of `kind` (`config`, `roles`).
fn index(kind: &str) -> String {
    format!("database/{kind}")
}

/// A connection or role name: `A-Za-z0-9_.-`, at most 64.
fn check_name(name: &str) -> VaultResult<()> {
    super::check_plain_name(name, 64, "invalid name")
}

/// Reads a setting as a superuser.
async fn stored(
    state: &AppState,
    caller: &strongroom_store::tokens::Principal,
    name: &str,
) -> VaultResult<Option<Value>> {
    let settings = super::secrets(state)?.caller(caller).auth_settings()?;
    Ok(settings.get(name).await?)
}

/// The stored setting `name` (a superuser's read) with the `fields` of `update` written
/// over it: a write merges, as Vault's do.
async fn merged(
    state: &AppState,
    caller: &strongroom_store::tokens::Principal,
    name: &str,
    update: &Map<String, Value>,
    fields: &[&str],
) -> VaultResult<Map<String, Value>> {
    let mut stored = match stored(state, caller, name).await? {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    for field in fields {
        if let Some(value) = update.get(*field) {
            stored.insert((*field).to_owned(), value.clone());
        }
    }
    Ok(stored)
}

/// Writes (or removes) a setting as a superuser, and keeps the index of its kind.
async fn save(
    state: &AppState,
    caller: &strongroom_store::tokens::Principal,
    kind: &str,
    name: &str,
    value: Option<Value>,
) -> VaultResult<()> {
    let settings = super::secrets(state)?.caller(caller).auth_settings()?;
    let mut names: Vec<String> = settings
        .get(&index(kind))
        .await?
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    names.retain(|n| n != name);
    if value.is_some() {
        names.push(name.to_owned());
        names.sort();
    }
    settings.set(&setting(kind, name), value.as_ref()).await?;
    settings.set(&index(kind), Some(&json!(names))).await?;
    Ok(())
}

/// `POST database/config/{name}`: a PostgreSQL connection, merged with the stored one;
/// verified (`verify_connection`, default true) before it is kept.
async fn write_config(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(name): Path<String>,
    body: VaultBody,
) -> VaultResult {
    check_name(&name)?;
    let Value::Object(update) = body.json()? else {
        return Err(VaultError::bad_request("expected a JSON object"));
    };
    // Vault's options this engine does not implement are refused, never ignored: a name
    // or password made another way than the operator asked would be a surprise.
    for field in ["username_template", "password_policy"] {
        if update.get(field).is_some_and(|v| !v.is_null() && v != "") {
            return Err(VaultError::bad_request(format!(
                "{field} is not supported: names are v-{{token}}-{{role}}-{{random}}-{{time}} \
                 (at most 63 bytes) and passwords 32 characters of A-Za-z0-9 \
                 (docs/dynamic-credentials.md)"
            )));
        }
    }
    let mut config = merged(
        &state,
        &caller,
        &setting("config", &name),
        &update,
        &[
            "plugin_name",
            "connection_url",
            "username",
            "password",
            "allowed_roles",
            "root_rotation_statements",
            "max_open_connections",
        ],
    )
    .await?;
    match config.get("plugin_name").and_then(Value::as_str) {
        Some("postgresql-database-plugin") => {}
        _ => {
            return Err(VaultError::bad_request(
                "plugin_name must be postgresql-database-plugin",
            ))
        }
    }
    let roles = super::auth::string_list(config.get("allowed_roles"));
    config.insert("allowed_roles".into(), json!(roles));
    let config = Value::Object(config);
    let connection = pg::Connection::from_value(&config)
        .ok_or_else(|| VaultError::bad_request("connection_url is required"))?;
    let verify = update
        .get("verify_connection")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if verify {
        let client = connection.connect().await.map_err(|e| {
            VaultError::bad_request(format!("the connection could not be verified: {}", e.0))
        })?;
        client.simple_query("SELECT 1").await.map_err(|_| {
            VaultError::bad_request("the connection could not be verified: SELECT 1 failed")
        })?;
    }
    save(&state, &caller, "config", &name, Some(config)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST database/rotate-root/{name}`: a new password for the connection's login, set in
/// PostgreSQL (`ALTER ROLE … PASSWORD`, or the connection's `root_rotation_statements`)
/// and then kept sealed: afterwards only Strongroom knows it. Should the store fail
/// between the two, the connection's old password no longer works (the error says so).
async fn rotate_root(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(name): Path<String>,
) -> VaultResult {
    let mut config = stored(&state, &caller, &setting("config", &name))
        .await?
        .ok_or_else(VaultError::not_found)?;
    let connection = pg::Connection::from_value(&config)
        .ok_or_else(|| VaultError::bad_request("the connection has no connection_url"))?;
    if connection.username.is_empty() {
        return Err(VaultError::bad_request(
            "the connection has no username to rotate",
        ));
    }
    let password = pg::new_password().map_err(|e| VaultError::bad_request(e.0))?;
    let statements = pg::statements(config.get("root_rotation_statements"));
    pg::rotate_password(&connection, &statements, &password)
        .await
        .map_err(|e| {
            VaultError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the password was not changed: {}", e.0),
            )
        })?;
    {
        use strongroom_crypto::secrecy::ExposeSecret as _;
        config["password"] = Value::String(password.expose_secret().to_owned());
    }
    save(&state, &caller, "config", &name, Some(config))
        .await
        .map_err(|_| {
            VaultError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the login's password was changed but could not be stored: set a new one by hand and write the connection again",
            )
        })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET database/config/{name}`: never the password.
async fn read_config(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(name): Path<String>,
) -> VaultResult {
    let mut config = stored(&state, &caller, &setting("config", &name))
        .await?
        .ok_or_else(VaultError::not_found)?;
    let url = config["connection_url"].clone();
    if let Some(map) = config.as_object_mut() {
        map.remove("password");
        map.insert(
            "connection_details".into(),
            json!({"connection_url": url, "username": map.get("username").cloned()}),
        );
    }
    Ok(envelope(config))
}

/// `DELETE database/config/{name}`: the leases made through it keep what their
/// revocation needs.
async fn delete_config(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(name): Path<String>,
) -> VaultResult {
    stored(&state, &caller, &setting("config", &name)).await?;
    save(&state, &caller, "config", &name, None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `LIST database/config`.
async fn list_configs(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
) -> VaultResult {
    list(&state, &caller, "config").await
}

/// `LIST database/roles`.
async fn list_roles(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
) -> VaultResult {
    list(&state, &caller, "roles").await
}

async fn list(
    state: &AppState,
    caller: &strongroom_store::tokens::Principal,
    kind: &str,
) -> VaultResult {
    let names: Vec<String> = stored(state, caller, &index(kind))
        .await?
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    if names.is_empty() {
        return Err(VaultError::not_found());
    }
    Ok(envelope(json!({ "keys": names })))
}

/// `POST database/roles/{name}`: `db_name`, `creation_statements` (required),
/// `revocation_statements`, `renew_statements`, `default_ttl`, `max_ttl`.
async fn write_role(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(name): Path<String>,
    body: VaultBody,
) -> VaultResult {
    check_name(&name)?;
    let Value::Object(update) = body.json()? else {
        return Err(VaultError::bad_request("expected a JSON object"));
    };
    let mut role = merged(
        &state,
        &caller,
        &setting("roles", &name),
        &update,
        &[
            "db_name",
            "creation_statements",
            "revocation_statements",
            "renew_statements",
            "default_ttl",
            "max_ttl",
        ],
    )
    .await?;
    for field in [
        "creation_statements",
        "revocation_statements",
        "renew_statements",
    ] {
        let list = pg::statements(role.get(field));
        role.insert(field.into(), json!(list));
    }
    let role = Value::Object(role);
    if role["db_name"].as_str().is_none_or(str::is_empty) {
        return Err(VaultError::bad_request("db_name is required"));
    }
    if role["creation_statements"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        return Err(VaultError::bad_request("creation_statements are required"));
    }
    let (ttl, max) = creds::ttls(&role)?;
    if let (Some(ttl), Some(max)) = (ttl, max) {
        if ttl > max {
            return Err(VaultError::bad_request(
                "default_ttl is longer than max_ttl",
            ));
        }
    }
    save(&state, &caller, "roles", &name, Some(role)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET database/roles/{name}`.
async fn read_role(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(name): Path<String>,
) -> VaultResult {
    let role = stored(&state, &caller, &setting("roles", &name))
        .await?
        .ok_or_else(VaultError::not_found)?;
    Ok(envelope(role))
}

/// `DELETE database/roles/{name}`: its leases keep what their revocation needs.
async fn delete_role(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(name): Path<String>,
) -> VaultResult {
    stored(&state, &caller, &setting("roles", &name)).await?;
    save(&state, &caller, "roles", &name, None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
