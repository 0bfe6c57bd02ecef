//! The KV version 2 engine: `/v1/{mount}/data|metadata|config/{env}/{key}`.
//!
//! Mount `secret` is namespace `default`; any other mount is the namespace of its name.
//! A path is `{env}/{key}`, the key may hold `/`. Data `{"value": V}` is the plain secret
//! `V`; any other map is stored whole as JSON, with kind [`MAP_KIND`], and read back whole.

use axum::http::StatusCode;
use axum::response::IntoResponse as _;
use serde_json::{json, Map, Value};
use strongroom_crypto::secrecy::ExposeSecret as _;
use strongroom_store::tokens::Capability;
use strongroom_store::{Action, SecretId, SecretInfo, SetRequest, StoreError};

use axum::extract::{Path, State};
use axum::http::Method;
use axum::routing::{any, MethodRouter};
use axum::Router;
use strongroom_store::tokens::Principal;

use super::{envelope, time, KvParams, KvTarget, VaultBody, VaultCaller, VaultError, VaultResult};
use crate::authz::{Delete, Grant, List, Read, Scoped, Write};
use crate::AppState;

/// The kind that marks a value written through `/v1` as a whole JSON map.
mod metadata;

use metadata::refuse_version_expiry;

pub(crate) const MAP_KIND: &str = "kv-map";

/// `/v1/{mount}/{operation}[/{path}]` of the KV engine: each operation registered once,
/// with and without a path (`metadata/` lists a mount's root), any method (Vault's `LIST`
/// is not one axum routes by), the methods it serves matched in its handler.
pub(super) fn routes() -> Router<AppState> {
    let mut router = Router::new().route("/{mount}/config", any(config));
    for (operation, handler) in [
        ("data", any(data)),
        ("metadata", any(metadata)),
        ("delete", change_route("delete")),
        ("undelete", change_route("undelete")),
        ("destroy", change_route("destroy")),
    ] {
        router = router
            .route(&format!("/{{mount}}/{operation}"), handler.clone())
            .route(&format!("/{{mount}}/{operation}/"), handler.clone())
            .route(&format!("/{{mount}}/{operation}/{{*path}}"), handler);
    }
    router
}

/// A known operation asked with a method it does not serve.
fn unsupported_operation() -> VaultError {
    VaultError::new(StatusCode::METHOD_NOT_ALLOWED, "unsupported operation")
}

/// The KV context of a request: the store as the caller may use it, in the mount's
/// namespace (`secret` is `default`). A mount that is no namespace is no path at all.
fn open<'a>(state: &'a AppState, caller: &'a Principal, target: KvTarget) -> VaultResult<Kv<'a>> {
    let secrets = state.store.as_ref().ok_or_else(|| {
        VaultError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "secrets are disabled: no master key is configured",
        )
    })?;
    let KvTarget { mount, path } = target;
    let namespace = if mount == "secret" {
        "default".to_owned()
    } else {
        mount
    };
    // `sys` and `auth` are the other engines' roots, never a KV mount.
    if matches!(namespace.as_str(), "sys" | "auth")
        || secrets.config().check_namespace(&namespace).is_err()
    {
        return Err(VaultError::unsupported_path());
    }
    Ok(Kv {
        scoped: secrets.caller(caller),
        namespace,
        path,
    })
}

/// `data/{path}`: read (`GET`, `?version=`), write (`POST`, `PUT`), delete the current
/// version (`DELETE`), merge-patch (`PATCH`).
async fn data(
    State(state): State<AppState>,
    params: KvParams,
    VaultCaller(caller): VaultCaller,
    target: KvTarget,
    method: Method,
    body: VaultBody,
) -> VaultResult {
    let kv = open(&state, &caller, target)?;
    match method {
        Method::GET => kv.read(params.version).await,
        Method::POST | Method::PUT => kv.write(&body.json()?).await,
        Method::DELETE => kv.change_versions("delete", None).await,
        // JSON merge patch (`vault kv patch`, the Go client's `KVv2.Patch`).
        Method::PATCH => kv.patch(&body.json()?).await,
        _ => Err(unsupported_operation()),
    }
}

/// `metadata/{path}`: list (`LIST`, `?list=true`), read, write, patch, delete all.
async fn metadata(
    State(state): State<AppState>,
    params: KvParams,
    VaultCaller(caller): VaultCaller,
    target: KvTarget,
    method: Method,
    body: VaultBody,
) -> VaultResult {
    let kv = open(&state, &caller, target)?;
    if params.list {
        return kv.list().await;
    }
    match method {
        Method::GET => kv.metadata().await,
        Method::POST | Method::PUT => kv.update_metadata(&body.json()?).await,
        Method::PATCH => kv.patch_metadata(&body.json()?).await,
        Method::DELETE => kv.delete_all().await,
        _ => Err(unsupported_operation()),
    }
}

/// The route of `delete|undelete|destroy/{path}` with `{"versions": [...]}`.
fn change_route(operation: &'static str) -> MethodRouter<AppState> {
    any(
        move |State(state): State<AppState>,
              VaultCaller(caller): VaultCaller,
              target: KvTarget,
              method: Method,
              body: VaultBody| async move {
            change(&state, &caller, target, &method, &body, operation).await
        },
    )
}

/// `POST|PUT delete|undelete|destroy/{path}`: 204.
async fn change(
    state: &AppState,
    caller: &Principal,
    target: KvTarget,
    method: &Method,
    body: &VaultBody,
    operation: &str,
) -> VaultResult {
    let kv = open(state, caller, target)?;
    match *method {
        Method::POST | Method::PUT => kv.change_versions(operation, Some(&body.json()?)).await,
        _ => Err(unsupported_operation()),
    }
}

/// `config`: the engine's settings (read by anyone who may use the mount; changed by a
/// superuser only, as Vault's `sys`-level settings are an operator's).
async fn config(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(mount): Path<String>,
    method: Method,
    body: VaultBody,
) -> VaultResult {
    let kv = open(
        &state,
        &caller,
        KvTarget {
            mount,
            path: String::new(),
        },
    )?;
    let depth = kv.scoped.config().history_depth;
    match method {
        Method::GET => Ok(envelope(json!({
            "cas_required": false,
            "delete_version_after": "0s",
            "max_versions": depth,
        }))),
        Method::POST | Method::PUT => {
            if !caller.superuser {
                return Err(VaultError::permission_denied());
            }
            check_settings(&body.json()?, depth)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(unsupported_operation()),
    }
}

/// One KV request's context: the store as its caller may use it.
struct Kv<'a> {
    scoped: Scoped<'a>,
    namespace: String,
    /// The path after the operation: `{env}/{key}` (or a listing prefix).
    path: String,
}

impl Kv<'_> {
    /// The secret the path names (a name: the grants below authorize).
    fn id(&self) -> VaultResult<SecretId> {
        let (env, key) = self
            .path
            .split_once('/')
            .filter(|(env, key)| !env.is_empty() && !key.is_empty())
            .ok_or_else(|| VaultError::bad_request("expected a path {env}/{key}"))?;
        self.scoped
            .secret_id(Some(&self.namespace), Some(env), key)
            .map_err(VaultError::from)
    }

    fn reading(&self, id: &SecretId) -> VaultResult<Grant<'_, Read>> {
        Ok(self.scoped.read(id)?)
    }

    fn writing(&self, id: &SecretId) -> VaultResult<Grant<'_, Write>> {
        Ok(self.scoped.write(id)?)
    }

    fn deleting(&self, id: &SecretId) -> VaultResult<Grant<'_, Delete>> {
        Ok(self.scoped.delete(id)?)
    }

    fn listing(&self, id: &SecretId) -> VaultResult<Grant<'_, List>> {
        Ok(self.scoped.list(id)?)
    }

    /// A version's metadata as this caller may see it: `custom_metadata` is metadata,
    /// which is `list`'s, so a token without `list` there (a write-only or read-only
    /// token) gets `null` in its place.
    fn version_metadata(
        &self,
        info: &SecretInfo,
        created: impl core::fmt::Display,
        version: u32,
    ) -> Value {
        let mut body = version_metadata(info, created, version);
        if !self
            .scoped
            .may(Capability::List, &self.namespace, &info.env, &info.key)
        {
            body["custom_metadata"] = Value::Null;
        }
        body
    }

    /// `GET data/{path}[?version=N]`: exactly that env (a Vault path names one place, so
    /// no fallback), the read recorded as `vault_read` before the value is sent.
    async fn read(&self, version: Option<u32>) -> VaultResult {
        let id = self.id()?;
        let grant = self.reading(&id)?;
        let read = match version {
            Some(version) => grant.get_version(version).await,
            None => grant.get_exact().await,
        };
        let read = match read {
            Ok(read) => read,
            // As Vault: a deleted or destroyed version is 404 with its metadata (hvac's
            // `raise_on_deleted_version=False` reads `deletion_time` from it).
            Err(StoreError::VersionUnavailable { version, .. }) => {
                return self.unavailable(&grant, version).await
            }
            Err(e) => return Err(e.into()),
        };
        let info = read.info().clone();
        let mut secrets = self
            .scoped
            .commit_reads(vec![read], Action::VaultRead)
            .await?;
        let secret = secrets.pop().ok_or_else(VaultError::not_found)?;
        // A map written through `/v1` comes back whole; anything else (a native write,
        // also one that replaced a map's value without changing its kind) is `{"value"}`.
        let map = (info.kind == MAP_KIND)
            .then(|| {
                serde_json::from_slice::<Map<String, Value>>(secret.value.expose_secret()).ok()
            })
            .flatten();
        let data = match map {
            Some(map) => Value::Object(map),
            None => {
                let text = std::str::from_utf8(secret.value.expose_secret()).map_err(|_| {
                    VaultError::bad_request(
                        "the value is not UTF-8 text; read it with `strongroom get`",
                    )
                })?;
                json!({ "value": text })
            }
        };
        let created = version_created(&grant, secret.version).await?;
        Ok(envelope(json!({
            "data": data,
            "metadata": self.version_metadata(&info, created, secret.version),
        })))
    }

    /// The 404 of a deleted or destroyed version: Vault's envelope, `data: null`, and the
    /// version's metadata.
    async fn unavailable(&self, grant: &Grant<'_, Read>, version: u32) -> VaultResult {
        let info = grant.info().await?.ok_or_else(VaultError::not_found)?;
        let kept = grant.history().await?;
        let Some(kept) = kept.iter().find(|v| v.version == version) else {
            return Err(VaultError::not_found());
        };
        let mut body = self.version_metadata(&info, time(kept.created), version);
        body["deletion_time"] = json!(kept.deleted.map(time).unwrap_or_default());
        body["destroyed"] = json!(kept.destroyed);
        let mut response = envelope(json!({ "data": null, "metadata": body }));
        *response.status_mut() = StatusCode::NOT_FOUND;
        Ok(response)
    }

    /// `DELETE data/{path}` (the current version), `POST delete|undelete|destroy/{path}`
    /// with `{"versions": [...]}`: 204.
    async fn change_versions(&self, operation: &str, body: Option<&Value>) -> VaultResult {
        let id = self.id()?;
        // Undeleting is a write; deleting and destroying need `delete`.
        match operation {
            "undelete" => {
                let grant = self.writing(&id)?;
                if let Some(versions) = versions_to_change(&grant, body).await? {
                    grant.undelete_versions(&versions).await?;
                }
            }
            "destroy" => {
                let grant = self.deleting(&id)?;
                if let Some(versions) = versions_to_change(&grant, body).await? {
                    grant.destroy_versions(&versions).await?;
                }
            }
            _ => {
                let grant = self.deleting(&id)?;
                if let Some(versions) = versions_to_change(&grant, body).await? {
                    grant.delete_versions(&versions).await?;
                }
            }
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    /// `POST|PUT data/{path}` with `{"data": {...}, "options": {"cas": N}}`.
    async fn write(&self, body: &Value) -> VaultResult {
        let id = self.id()?;
        let grant = self.writing(&id)?;
        let data = body
            .get("data")
            .and_then(Value::as_object)
            .ok_or_else(|| VaultError::bad_request("no data provided"))?;
        let cas = cas_of(body)?;
        let current = grant.info().await?;
        self.store_data(&grant, current.as_ref(), data, cas).await
    }

    /// Writes `data` as the new version of `id` (at version `cas`, when given) and answers
    /// with its version metadata. The first write takes the attributes written before it.
    async fn store_data(
        &self,
        grant: &Grant<'_, Write>,
        current: Option<&SecretInfo>,
        data: &Map<String, Value>,
        cas: Option<u32>,
    ) -> VaultResult {
        let was_map = current.is_some_and(|i| i.kind == MAP_KIND);
        let (value, kind) = match data.get("value").and_then(Value::as_str) {
            Some(plain) if data.len() == 1 => (
                plain.as_bytes().to_vec(),
                was_map.then(|| "generic".to_owned()),
            ),
            _ => (
                serde_json::to_vec(data).map_err(|_| VaultError::bad_request("invalid data"))?,
                Some(MAP_KIND.to_owned()),
            ),
        };
        let pending = match current {
            None => grant.pending_attributes().await?,
            Some(_) => None,
        };
        let metadata = pending
            .as_ref()
            .and_then(|p| p.get("custom_metadata"))
            .map(|custom| json!({ "custom_metadata": custom }));
        let outcome = grant
            .set(SetRequest {
                kind,
                metadata,
                expected_version: cas,
                ..SetRequest::value(value)
            })
            .await?;
        if let Some(pending) = pending {
            let max_versions = pending
                .get("max_versions")
                .and_then(Value::as_u64)
                .and_then(|m| u32::try_from(m).ok());
            let cas_required = pending.get("cas_required").and_then(Value::as_bool);
            if max_versions.is_some() || cas_required.is_some() {
                let settings = strongroom_store::SecretSettings {
                    max_versions,
                    cas_required: cas_required.unwrap_or(false),
                };
                grant.set_settings(settings).await?;
            }
            grant.set_pending_attributes(None).await?;
        }
        let info = grant.info().await?.ok_or_else(VaultError::not_found)?;
        Ok(envelope(self.version_metadata(
            &info,
            info.updated,
            outcome.version,
        )))
    }

    /// `PATCH data/{path}` (JSON merge patch, RFC 7396): the current data with each given
    /// field replaced, and each `null` field removed. Needs `read` and `write` (the server
    /// reads the current value to merge it, recorded as `vault_read`; it is not returned);
    /// the write is at the version read (or `options.cas`), so a concurrent write is
    /// never lost. A secret that does not exist is 404, as in Vault.
    async fn patch(&self, body: &Value) -> VaultResult {
        let id = self.id()?;
        let writer = self.writing(&id)?;
        let reader = self.reading(&id)?;
        let changes = body
            .get("data")
            .and_then(Value::as_object)
            .ok_or_else(|| VaultError::bad_request("no data provided"))?;
        let cas = cas_of(body)?;
        let read = match reader.get_exact().await {
            Ok(read) => read,
            Err(StoreError::NotFound(_)) => return Err(VaultError::not_found()),
            Err(e) => return Err(e.into()),
        };
        let mut secrets = self
            .scoped
            .commit_reads(vec![read], Action::VaultRead)
            .await?;
        let secret = secrets.pop().ok_or_else(VaultError::not_found)?;
        let mut data = if secret.info.kind == MAP_KIND {
            serde_json::from_slice::<Map<String, Value>>(secret.value.expose_secret())
                .map_err(|_| VaultError::bad_request("the stored data is not a JSON map"))?
        } else {
            let text = std::str::from_utf8(secret.value.expose_secret()).map_err(|_| {
                VaultError::bad_request("the value is not UTF-8 text; it can not be patched")
            })?;
            let mut map = Map::new();
            map.insert("value".into(), Value::String(text.to_owned()));
            map
        };
        for (field, value) in changes {
            if value.is_null() {
                data.remove(field);
            } else {
                data.insert(field.clone(), value.clone());
            }
        }
        let expected = cas.unwrap_or(secret.version);
        self.store_data(&writer, Some(&secret.info), &data, Some(expected))
            .await
    }
}

/// When `version` of the granted secret was written.
async fn version_created<C>(grant: &Grant<'_, C>, version: u32) -> VaultResult<String> {
    let history = grant.history().await?;
    Ok(history
        .iter()
        .find(|v| v.version == version)
        .map(|v| time(v.created))
        .unwrap_or_default())
}

/// The versions a delete, undelete or destroy names that the secret keeps (Vault ignores
/// the others); `DELETE data/{path}` (no body) names the latest. `None`: nothing to do.
async fn versions_to_change<C>(
    grant: &Grant<'_, C>,
    body: Option<&Value>,
) -> VaultResult<Option<Vec<u32>>> {
    let versions: Vec<u32> = match body {
        None => match grant.info().await? {
            Some(info) => vec![info.version],
            None => return Ok(None),
        },
        Some(body) => body
            .get("versions")
            .and_then(version_list)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| VaultError::bad_request("no version number provided"))?,
    };
    let kept: Vec<u32> = match grant.history().await {
        Ok(history) => history.iter().map(|v| v.version).collect(),
        Err(StoreError::NotFound(_)) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let versions: Vec<u32> = versions.into_iter().filter(|v| kept.contains(v)).collect();
    Ok((!versions.is_empty()).then_some(versions))
}

/// The engine-wide settings a config write may name: accepted when they are
/// the server's (`max_versions` is `STRONGROOM_HISTORY_DEPTH`, no `cas_required`, no
/// `delete_version_after`), refused otherwise: the engine's settings are the server's
/// configuration (per-secret settings go to `metadata/{path}`).
fn check_settings(body: &Value, depth: u32) -> VaultResult<()> {
    if body
        .get("max_versions")
        .and_then(Value::as_u64)
        .is_some_and(|m| m != 0 && m != u64::from(depth))
    {
        return Err(VaultError::bad_request(format!(
            "max_versions is the server's STRONGROOM_HISTORY_DEPTH ({depth}) here"
        )));
    }
    if body.get("cas_required").and_then(Value::as_bool) == Some(true) {
        return Err(VaultError::bad_request("cas_required is not supported"));
    }
    refuse_version_expiry(body)
}

/// A write's `options.cas`: the version the secret must be at (`None`: no check).
fn cas_of(body: &Value) -> VaultResult<Option<u32>> {
    match body.pointer("/options/cas") {
        None | Some(Value::Null) => Ok(None),
        Some(cas) => cas
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .map(Some)
            .ok_or_else(|| VaultError::bad_request("invalid cas")),
    }
}

/// Version numbers as Vault accepts them: numbers, numeric strings (the Go client and the
/// `vault` CLI send `["1"]`), or one comma-separated string (`"1,2"`).
fn version_list(value: &Value) -> Option<Vec<u32>> {
    let one = |v: &Value| match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match value {
        Value::Array(items) => items.iter().map(one).collect(),
        Value::String(text) => text
            .split(',')
            .map(|part| part.trim().parse().ok())
            .collect(),
        Value::Number(_) => one(value).map(|v| vec![v]),
        _ => None,
    }
}

/// The `custom_metadata` kept in the secret's metadata, or `null`.
fn custom_metadata(info: &SecretInfo) -> Value {
    info.metadata
        .as_ref()
        .and_then(|m| m.get("custom_metadata"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// A version's metadata as Vault's `data.metadata` (and a write's `data`).
fn version_metadata(info: &SecretInfo, created: impl core::fmt::Display, version: u32) -> Value {
    json!({
        "created_time": created.to_string(),
        "custom_metadata": custom_metadata(info),
        "deletion_time": "",
        "destroyed": false,
        "version": version,
    })
}
