//! `sys/…`: what Vault's clients ask before and around KV requests.
//!
//! The `vault` CLI, consul-template and envconsul first ask `sys/internal/ui/mounts/{path}`
//! which KV version a mount is (a 404 makes them fall back to KV v1 silently), so every
//! mount answers `type: kv`, `options.version: "2"`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{envelope, unsupported, VaultCaller, VaultError, VaultResult};
use crate::AppState;

/// The Vault version these answers follow.
const VAULT_VERSION: &str = "1.15.0+strongroom";

/// `/v1/sys/…`: health and seal status without a token (as Vault's), the mount
/// descriptions with one. Any other method on these paths is Vault's "unsupported path".
pub(super) fn routes() -> Router<AppState> {
    let mount = || get(mount).fallback(unsupported);
    Router::new()
        .route("/sys/health", get(health).fallback(unsupported))
        .route("/sys/seal-status", get(seal_status).fallback(unsupported))
        .route("/sys/mounts", get(mounts).fallback(unsupported))
        .route("/sys/mounts/{mount}", mount())
        .route("/sys/mounts/{mount}/tune", get(tune).fallback(unsupported))
        // The preflight of the `vault` CLI and consul-template.
        .route("/sys/internal/ui/mounts/{mount}", mount())
        .route("/sys/internal/ui/mounts/{mount}/{*rest}", mount())
        .route("/sys/mounts-all/{mount}", mount())
        .route("/sys/mounts-all/{mount}/{*rest}", mount())
}

/// `GET /v1/sys/health` (and `HEAD`).
async fn health() -> Response {
    Json(json!({
        "initialized": true,
        "sealed": false,
        "standby": false,
        "performance_standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
        "version": VAULT_VERSION,
        "cluster_name": "strongroom",
    }))
    .into_response()
}

/// `GET /v1/sys/seal-status`.
async fn seal_status() -> Response {
    Json(json!({
        "type": "shamir",
        "initialized": true,
        "sealed": false,
        "t": 1,
        "n": 1,
        "progress": 0,
        "nonce": "",
        "version": VAULT_VERSION,
        "migration": false,
        "recovery_seal": false,
        "storage_type": "strongroom",
    }))
    .into_response()
}

/// The mount a `sys` path names (and anything after it, which the preflight adds).
#[derive(serde::Deserialize)]
struct MountPath {
    mount: String,
}

/// `GET sys/mounts/{mount}`, `sys/internal/ui/mounts/{mount}/…`, `sys/mounts-all/{mount}/…`
/// (`Sys().GetMount`, the CLI's preflight).
async fn mount(
    State(state): State<AppState>,
    VaultCaller(_): VaultCaller,
    Path(MountPath { mount }): Path<MountPath>,
) -> VaultResult {
    let mount = mount_entry(&state, &mount).ok_or_else(VaultError::unsupported_path)?;
    Ok(envelope(mount))
}

/// `GET sys/mounts/{mount}/tune` (`Sys().MountConfig`).
async fn tune(
    State(state): State<AppState>,
    VaultCaller(_): VaultCaller,
    Path(MountPath { mount }): Path<MountPath>,
) -> VaultResult {
    mount_entry(&state, &mount).ok_or_else(VaultError::unsupported_path)?;
    Ok(envelope(json!({
        "default_lease_ttl": 0,
        "max_lease_ttl": 0,
        "force_no_cache": false,
        "description": "",
        "options": {"version": "2"},
    })))
}

/// `GET sys/mounts`.
async fn mounts(State(state): State<AppState>, VaultCaller(_): VaultCaller) -> Response {
    let secret = mount_entry(&state, "secret").unwrap_or(Value::Null);
    let mounts = json!({ "secret/": secret });
    let mut body = mounts.clone();
    body["data"] = mounts;
    Json(body).into_response()
}

/// A KV v2 mount's description, when `mount` is one (`secret` or a valid namespace).
pub(super) fn mount_entry(state: &AppState, mount: &str) -> Option<Value> {
    let namespace = if mount == "secret" { "default" } else { mount };
    let store = state.store.as_ref()?;
    store.config().check_namespace(namespace).ok()?;
    Some(json!({
        "path": format!("{mount}/"),
        "type": "kv",
        "description": format!("Strongroom namespace {namespace}"),
        "accessor": format!("kv_strongroom_{namespace}"),
        "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false},
        "options": {"version": "2"},
        "local": false,
        "seal_wrap": false,
        "external_entropy_access": false,
        "uuid": "",
    }))
}
