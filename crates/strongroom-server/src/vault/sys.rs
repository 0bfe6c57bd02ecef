//! `sys/…` and `auth/token/…`: what Vault's clients ask before and around KV requests.
//!
//! The `vault` CLI, consul-template and envconsul first ask `sys/internal/ui/mounts/{path}`
//! which KV version a mount is (a 404 makes them fall back to KV v1 silently), so every
//! mount answers `type: kv`, `options.version: "2"`.

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::IntoResponse as _;
use axum::Json;
use serde_json::{json, Value};

use super::{caller, envelope, VaultError, VaultRequest, VaultResult};
use crate::AppState;

/// The Vault version these answers follow.
const VAULT_VERSION: &str = "1.15.0+strongroom";

/// `/v1/sys/…`.
pub(super) async fn sys(
    state: &AppState,
    headers: &HeaderMap,
    request: &VaultRequest,
) -> VaultResult {
    let parts: Vec<&str> = request.segments[1..].iter().map(String::as_str).collect();
    // Health and seal status answer without a token, as Vault's do.
    match (parts.as_slice(), &request.method) {
        (["health"], &Method::GET | &Method::HEAD) => {
            return Ok(Json(json!({
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
            .into_response())
        }
        (["seal-status"], &Method::GET) => {
            return Ok(Json(json!({
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
            .into_response())
        }
        _ => {}
    }
    caller(state, headers).await?;
    match (parts.as_slice(), &request.method) {
        // The preflight of the `vault` CLI and consul-template, and `Sys().GetMount`.
        (
            ["internal", "ui", "mounts", mount, ..] | ["mounts-all", mount, ..] | ["mounts", mount],
            &Method::GET,
        ) => {
            let mount = mount_entry(state, mount).ok_or_else(VaultError::unsupported_path)?;
            Ok(envelope(mount))
        }
        // `Sys().MountConfig`: the mount's tune.
        (["mounts", mount, "tune"], &Method::GET) => {
            mount_entry(state, mount).ok_or_else(VaultError::unsupported_path)?;
            Ok(envelope(json!({
                "default_lease_ttl": 0,
                "max_lease_ttl": 0,
                "force_no_cache": false,
                "description": "",
                "options": {"version": "2"},
            })))
        }
        (["mounts"], &Method::GET) => {
            let secret = mount_entry(state, "secret").unwrap_or(Value::Null);
            let mounts = json!({ "secret/": secret });
            let mut body = mounts.clone();
            body["data"] = mounts;
            Ok(Json(body).into_response())
        }
        _ => Err(VaultError::unsupported_path()),
    }
}

/// A KV v2 mount's description, when `mount` is one (`secret` or a valid namespace).
fn mount_entry(state: &AppState, mount: &str) -> Option<Value> {
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

/// `/v1/auth/token/lookup-self`, `renew-self`, `revoke-self`.
pub(super) async fn auth(
    state: &AppState,
    headers: &HeaderMap,
    request: &VaultRequest,
) -> VaultResult {
    let caller = caller(state, headers).await?;
    let parts: Vec<&str> = request.segments[1..].iter().map(String::as_str).collect();
    let policies: Vec<String> = if caller.superuser {
        vec!["root".into()]
    } else {
        caller.scopes.iter().map(ToString::to_string).collect()
    };
    match (parts.as_slice(), &request.method) {
        (["token", "lookup-self"], &Method::GET | &Method::POST) => Ok(envelope(json!({
            "accessor": "",
            "creation_time": 0,
            "creation_ttl": 0,
            "display_name": format!("token-{}", caller.name),
            "entity_id": "",
            "expire_time": null,
            "explicit_max_ttl": 0,
            // Never the token itself: the caller has it, a log of this answer must not.
            "id": "",
            "meta": {"strongroom_token": caller.name},
            "num_uses": 0,
            "orphan": true,
            "path": "auth/token/create",
            "policies": policies,
            "renewable": false,
            "ttl": 0,
            "type": "service",
        }))),
        (["token", "renew-self"], &Method::POST | &Method::PUT) => Ok(Json(json!({
            "request_id": "",
            "lease_id": "",
            "renewable": false,
            "lease_duration": 0,
            "data": null,
            "wrap_info": null,
            "warnings": ["Strongroom tokens do not expire; nothing to renew"],
            "auth": {
                "client_token": "",
                "accessor": "",
                "policies": policies,
                "token_policies": policies,
                "metadata": null,
                "lease_duration": 0,
                "renewable": false,
                "entity_id": "",
                "token_type": "service",
                "orphan": true,
            },
        }))
        .into_response()),
        (["token", "revoke-self"], &Method::POST | &Method::PUT) => {
            if caller.name == "admin" && caller.superuser {
                return Err(VaultError::bad_request(
                    "the bootstrap admin token is STRONGROOM_ADMIN_TOKEN; unset it to revoke it",
                ));
            }
            state
                .tokens
                .with_actor(&caller.actor())
                .revoke(&caller.name)
                .await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(VaultError::unsupported_path()),
    }
}
