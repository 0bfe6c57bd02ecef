//! The KV version 2 engine: `/v1/{mount}/data|metadata|config/{env}/{key}`.
//!
//! Mount `secret` is namespace `default`; any other mount is the namespace of its name.
//! A path is `{env}/{key}`, the key may hold `/`. Data `{"value": V}` is the plain secret
//! `V`; any other map is stored whole as JSON, with kind [`MAP_KIND`], and read back whole.

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::IntoResponse as _;
use serde_json::{json, Map, Value};
use strongroom_crypto::secrecy::ExposeSecret as _;
use strongroom_store::tokens::{Capability, Principal};
use strongroom_store::{Action, ListQuery, SecretId, SecretInfo, SetRequest, Store, StoreError};

use super::{caller, envelope, json_body, time, VaultError, VaultRequest, VaultResult};
use crate::AppState;

/// The kind that marks a value written through `/v1` as a whole JSON map.
mod metadata;

use metadata::refuse_version_expiry;

pub(crate) const MAP_KIND: &str = "kv-map";

/// `/v1/{mount}/…` of the KV engine.
pub(super) async fn kv(
    state: &AppState,
    headers: &HeaderMap,
    request: &VaultRequest,
) -> VaultResult {
    let caller = caller(state, headers).await?;
    let store = state.store.as_ref().ok_or_else(|| {
        VaultError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "secrets are disabled: no master key is configured",
        )
    })?;
    let mount = request.segments[0].as_str();
    let namespace = if mount == "secret" { "default" } else { mount };
    if store.config().check_namespace(namespace).is_err() {
        return Err(VaultError::unsupported_path());
    }
    let store = store.with_actor(&caller.actor());
    let kv = Kv {
        store: &store,
        caller: &caller,
        namespace,
        path: request.segments.get(2..).unwrap_or_default().join("/"),
    };
    let operation = request.segments.get(1).map(String::as_str);
    match (operation, &request.method) {
        (Some("metadata"), _) if request.list => kv.list().await,
        (Some("data"), &Method::GET) => kv.read(request.version).await,
        (Some("data"), &Method::POST | &Method::PUT) => kv.write(&json_body(request)?).await,
        (Some("metadata"), &Method::GET) => kv.metadata().await,
        (Some("metadata"), &Method::POST | &Method::PUT) => {
            kv.update_metadata(&json_body(request)?).await
        }
        (Some("metadata"), &Method::DELETE) => kv.delete_all().await,
        (Some("config"), &Method::GET) => Ok(envelope(json!({
            "cas_required": false,
            "delete_version_after": "0s",
            "max_versions": store.config().history_depth,
        }))),
        (Some("config"), &Method::POST | &Method::PUT) => {
            // Engine-wide: a superuser's, as Vault's `sys`-level settings are an operator's.
            if !caller.superuser {
                return Err(VaultError::permission_denied());
            }
            check_settings(&json_body(request)?, store.config().history_depth)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (Some("data"), &Method::DELETE) => kv.change_versions("delete", None).await,
        (Some(operation @ ("delete" | "undelete" | "destroy")), &Method::POST | &Method::PUT) => {
            kv.change_versions(operation, Some(&json_body(request)?))
                .await
        }
        // JSON merge patch (`vault kv patch`, the Go client's `KVv2.Patch`).
        (Some("data"), &Method::PATCH) => kv.patch(&json_body(request)?).await,
        (Some("metadata"), &Method::PATCH) => kv.patch_metadata(&json_body(request)?).await,
        (Some("data" | "metadata" | "config" | "delete" | "undelete" | "destroy"), _) => Err(
            VaultError::new(StatusCode::METHOD_NOT_ALLOWED, "unsupported operation"),
        ),
        _ => Err(VaultError::unsupported_path()),
    }
}

/// One KV request's context.
struct Kv<'a> {
    store: &'a Store,
    caller: &'a Principal,
    namespace: &'a str,
    /// The path after the operation: `{env}/{key}` (or a listing prefix).
    path: String,
}

impl Kv<'_> {
    /// The secret the path names, after checking the caller may do `capability` there.
    fn secret(&self, capability: Capability) -> VaultResult<SecretId> {
        let (env, key) = self
            .path
            .split_once('/')
            .filter(|(env, key)| !env.is_empty() && !key.is_empty())
            .ok_or_else(|| VaultError::bad_request("expected a path {env}/{key}"))?;
        let id = self
            .store
            .secret_id(Some(self.namespace), Some(env), key)
            .map_err(VaultError::from)?;
        self.require(capability, &id.env)?;
        Ok(id)
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
        if !self.caller.may(Capability::List, self.namespace, &info.env) {
            body["custom_metadata"] = Value::Null;
        }
        body
    }

    fn require(&self, capability: Capability, env: &str) -> VaultResult<()> {
        if self.caller.may(capability, self.namespace, env) {
            Ok(())
        } else {
            Err(VaultError::permission_denied())
        }
    }

    /// `GET data/{path}[?version=N]`: exactly that env (a Vault path names one place, so
    /// no fallback), the read recorded as `vault_read` before the value is sent.
    async fn read(&self, version: Option<u32>) -> VaultResult {
        let id = self.secret(Capability::Read)?;
        let read = match version {
            Some(version) => self.store.get_version(&id, version).await,
            None => self.store.get_exact(&id).await,
        };
        let read = match read {
            Ok(read) => read,
            // As Vault: a deleted or destroyed version is 404 with its metadata (hvac's
            // `raise_on_deleted_version=False` reads `deletion_time` from it).
            Err(StoreError::VersionUnavailable { version, .. }) => {
                return self.unavailable(&id, version).await
            }
            Err(e) => return Err(e.into()),
        };
        let info = read.info().clone();
        let mut secrets = self
            .store
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
        let created = self.version_created(&id, secret.version).await?;
        Ok(envelope(json!({
            "data": data,
            "metadata": self.version_metadata(&info, created, secret.version),
        })))
    }

    /// The 404 of a deleted or destroyed version: Vault's envelope, `data: null`, and the
    /// version's metadata.
    async fn unavailable(&self, id: &SecretId, version: u32) -> VaultResult {
        let info = current_info(self.store, id)
            .await?
            .ok_or_else(VaultError::not_found)?;
        let kept = self.store.history(id).await?;
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
        let capability = if operation == "undelete" {
            Capability::Write
        } else {
            Capability::Delete
        };
        let id = self.secret(capability)?;
        let versions: Vec<u32> = match body {
            // `DELETE data/{path}`: the latest version.
            None => match current_info(self.store, &id).await? {
                Some(info) => vec![info.version],
                None => return Ok(StatusCode::NO_CONTENT.into_response()),
            },
            Some(body) => body
                .get("versions")
                .and_then(version_list)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| VaultError::bad_request("no version number provided"))?,
        };
        // Vault ignores versions it does not keep.
        let kept: Vec<u32> = match self.store.history(&id).await {
            Ok(history) => history.iter().map(|v| v.version).collect(),
            Err(StoreError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let versions: Vec<u32> = versions.into_iter().filter(|v| kept.contains(v)).collect();
        if versions.is_empty() {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        let changed = match operation {
            "undelete" => self.store.undelete_versions(&id, &versions).await,
            "destroy" => self.store.destroy_versions(&id, &versions).await,
            _ => self.store.delete_versions(&id, &versions).await,
        };
        changed?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    /// `POST|PUT data/{path}` with `{"data": {...}, "options": {"cas": N}}`.
    async fn write(&self, body: &Value) -> VaultResult {
        let id = self.secret(Capability::Write)?;
        let data = body
            .get("data")
            .and_then(Value::as_object)
            .ok_or_else(|| VaultError::bad_request("no data provided"))?;
        let cas = cas_of(body)?;
        let current = current_info(self.store, &id).await?;
        self.store_data(&id, current.as_ref(), data, cas).await
    }

    /// Writes `data` as the new version of `id` (at version `cas`, when given) and answers
    /// with its version metadata. The first write takes the attributes written before it.
    async fn store_data(
        &self,
        id: &SecretId,
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
            None => self.store.pending_attributes(id).await?,
            Some(_) => None,
        };
        let metadata = pending
            .as_ref()
            .and_then(|p| p.get("custom_metadata"))
            .map(|custom| json!({ "custom_metadata": custom }));
        let id = id.clone();
        let outcome = self
            .store
            .set(
                &id,
                SetRequest {
                    kind,
                    metadata,
                    expected_version: cas,
                    ..SetRequest::value(value)
                },
            )
            .await
            .map_err(|e| match e {
                // Vault's words when the secret requires check-and-set and none was given.
                StoreError::Conflict(_) if cas.is_none() => {
                    VaultError::bad_request("check-and-set parameter required for this call")
                }
                e => e.into(),
            })?;
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
                self.store.set_settings(&id, settings).await?;
            }
            self.store.set_pending_attributes(&id, None).await?;
        }
        let info = current_info(self.store, &id)
            .await?
            .ok_or_else(VaultError::not_found)?;
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
        let id = self.secret(Capability::Write)?;
        self.require(Capability::Read, &id.env)?;
        let changes = body
            .get("data")
            .and_then(Value::as_object)
            .ok_or_else(|| VaultError::bad_request("no data provided"))?;
        let cas = cas_of(body)?;
        let read = match self.store.get_exact(&id).await {
            Ok(read) => read,
            Err(StoreError::NotFound(_)) => return Err(VaultError::not_found()),
            Err(e) => return Err(e.into()),
        };
        let mut secrets = self
            .store
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
        self.store_data(&id, Some(&secret.info), &data, Some(expected))
            .await
    }

    /// When `version` of `id` was written.
    async fn version_created(&self, id: &SecretId, version: u32) -> VaultResult<String> {
        let history = self.store.history(id).await?;
        Ok(history
            .iter()
            .find(|v| v.version == version)
            .map(|v| time(v.created))
            .unwrap_or_default())
    }
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

/// The secret's attributes (no value), or `None` when it does not exist.
async fn current_info(store: &Store, id: &SecretId) -> VaultResult<Option<SecretInfo>> {
    // Listed by the key as prefix: the key itself sorts first among keys with that prefix.
    let page = store
        .list(ListQuery {
            namespace: Some(id.namespace.clone()),
            env: Some(id.env.clone()),
            prefix: Some(id.key.clone()),
            limit: Some(1),
            ..ListQuery::default()
        })
        .await?;
    Ok(page.items.into_iter().find(|i| i.key == id.key))
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
