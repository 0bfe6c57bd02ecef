//! The metadata side of the KV engine: `GET|POST|PUT|PATCH|DELETE metadata/{path}` and
//! listing. Metadata written before a secret's first value is kept (as Vault keeps it)
//! and taken by that first write.

use axum::http::StatusCode;
use axum::response::IntoResponse as _;
use serde_json::{json, Map, Value};
use strongroom_store::{MetaUpdate, StoreError};

use super::{custom_metadata, Kv};
use crate::vault::{envelope, time, VaultError, VaultResult};

impl Kv<'_> {
    /// `GET metadata/{path}`: the secret's versions and attributes, no value.
    pub(super) async fn metadata(&self) -> VaultResult {
        let id = self.id()?;
        let grant = self.listing(&id)?;
        let Some(info) = grant.info().await? else {
            // Metadata written before any data: Vault shows it with no versions.
            let pending = grant
                .pending_attributes()
                .await?
                .ok_or_else(VaultError::not_found)?;
            return Ok(envelope(json!({
                "cas_required": pending.get("cas_required").and_then(Value::as_bool).unwrap_or(false),
                "created_time": "",
                "current_version": 0,
                "custom_metadata": pending.get("custom_metadata").cloned().unwrap_or(Value::Null),
                "delete_version_after": "0s",
                "max_versions": pending.get("max_versions").and_then(Value::as_u64).unwrap_or(0),
                "oldest_version": 0,
                "updated_time": "",
                "versions": {},
            })));
        };
        let history = grant.history().await?;
        let versions: Map<String, Value> = history
            .iter()
            .map(|v| {
                (
                    v.version.to_string(),
                    json!({
                        "created_time": time(v.created),
                        "deletion_time": v.deleted.map(time).unwrap_or_default(),
                        "destroyed": v.destroyed,
                    }),
                )
            })
            .collect();
        let oldest = history
            .iter()
            .map(|v| v.version)
            .min()
            .unwrap_or(info.version);
        let settings = grant.settings().await?;
        Ok(envelope(json!({
            "cas_required": settings.cas_required,
            "created_time": time(info.created),
            "current_version": info.version,
            "custom_metadata": custom_metadata(&info),
            "delete_version_after": "0s",
            // 0 in Vault's words: the engine's setting.
            "max_versions": settings.max_versions.unwrap_or(0),
            "oldest_version": oldest,
            "updated_time": time(info.updated),
            "versions": versions,
        })))
    }

    /// `POST|PUT metadata/{path}`: `custom_metadata` (string to string) is kept with the
    /// secret, `max_versions` and `cas_required` are the secret's own settings;
    /// `delete_version_after` is refused (versions do not expire here). The secret's
    /// data must exist first.
    pub(super) async fn update_metadata(&self, body: &Value) -> VaultResult {
        self.write_metadata(body, false).await
    }

    /// `PATCH metadata/{path}`: as a write, but `custom_metadata` is merged into the
    /// current one (a `null` value removes that key), as JSON merge patch does.
    pub(super) async fn patch_metadata(&self, body: &Value) -> VaultResult {
        self.write_metadata(body, true).await
    }

    /// A metadata write or patch. Before the secret's first value, the attributes are
    /// kept and applied by that first write (Vault accepts metadata first).
    async fn write_metadata(&self, body: &Value, merge: bool) -> VaultResult {
        let id = self.id()?;
        let grant = self.writing(&id)?;
        refuse_version_expiry(body)?;
        // `"custom_metadata": null` (the Go client's PutMetadata without any) changes
        // nothing, as in Vault.
        let custom = body.get("custom_metadata").filter(|c| !c.is_null());
        if let Some(custom) = custom {
            let valid = custom
                .as_object()
                .is_some_and(|m| m.values().all(|v| v.is_string() || (merge && v.is_null())));
            if !valid {
                return Err(VaultError::bad_request(
                    "custom_metadata must map strings to strings",
                ));
            }
        }
        if grant.info().await?.is_none() {
            let mut pending = match grant.pending_attributes().await? {
                Some(Value::Object(map)) => map,
                _ => Map::new(),
            };
            for field in ["max_versions", "cas_required"] {
                if let Some(value) = body.get(field).filter(|v| !v.is_null()) {
                    pending.insert(field.into(), value.clone());
                }
            }
            if let Some(custom) = custom {
                let merged = merged_custom(pending.get("custom_metadata"), custom, merge)?;
                pending.insert("custom_metadata".into(), merged);
            }
            grant
                .set_pending_attributes(Some(&Value::Object(pending)))
                .await?;
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        let max_versions = match body.get("max_versions") {
            None | Some(Value::Null) => None,
            Some(m) => Some(
                m.as_u64()
                    .and_then(|m| u32::try_from(m).ok())
                    .ok_or_else(|| VaultError::bad_request("invalid max_versions"))?,
            ),
        };
        let cas_required = match body.get("cas_required") {
            None | Some(Value::Null) => None,
            Some(c) => Some(
                c.as_bool()
                    .ok_or_else(|| VaultError::bad_request("invalid cas_required"))?,
            ),
        };
        // The labels are checked before anything is written: a refused write changes
        // nothing, settings included.
        let metadata = match custom {
            Some(custom) => {
                let info = grant.info().await?.ok_or_else(data_first)?;
                let mut metadata = match info.metadata {
                    Some(Value::Object(map)) => map,
                    _ => Map::new(),
                };
                let merged = merged_custom(metadata.get("custom_metadata"), custom, merge)?;
                metadata.insert("custom_metadata".into(), merged);
                Some(metadata)
            }
            None => None,
        };
        if max_versions.is_some() || cas_required.is_some() {
            let current = match grant.settings().await {
                Ok(current) => current,
                Err(StoreError::NotFound(_)) => return Err(data_first()),
                Err(e) => return Err(e.into()),
            };
            let settings = strongroom_store::SecretSettings {
                max_versions: max_versions.map_or(current.max_versions, Some),
                cas_required: cas_required.unwrap_or(current.cas_required),
            };
            grant.set_settings(settings).await?;
        }
        if let Some(metadata) = metadata {
            grant
                .update_meta(MetaUpdate {
                    metadata: Some(Value::Object(metadata)),
                    ..MetaUpdate::default()
                })
                .await?;
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    /// `DELETE metadata/{path}`: the secret and every version (204, also when absent).
    pub(super) async fn delete_all(&self) -> VaultResult {
        let id = self.id()?;
        let grant = self.deleting(&id)?;
        if grant.pending_attributes().await?.is_some() {
            grant.clear_pending_attributes().await?;
        }
        match grant.delete().await {
            Ok(()) | Err(StoreError::NotFound(_)) => Ok(StatusCode::NO_CONTENT.into_response()),
            Err(e) => Err(e.into()),
        }
    }

    /// `LIST metadata/{path}` (or `GET …?list=true`): envs at the mount's root, keys in
    /// an env, and key prefixes holding `/` as folders ending in `/`.
    pub(super) async fn list(&self) -> VaultResult {
        let path = self.path.trim_end_matches('/');
        let mut keys = std::collections::BTreeSet::new();
        if path.is_empty() {
            for env in self.scoped.listable_envs(&self.namespace).await? {
                keys.insert(format!("{env}/"));
            }
        } else {
            let (env, prefix) = match path.split_once('/') {
                Some((env, prefix)) => (env, format!("{prefix}/")),
                None => (path, String::new()),
            };
            let listing = self.scoped.list_env(&self.namespace, Some(env))?;
            for info in listing.all(&prefix).await? {
                let rest = &info.key[prefix.len()..];
                keys.insert(match rest.find('/') {
                    Some(slash) => rest[..=slash].to_owned(),
                    None => rest.to_owned(),
                });
            }
        }
        if keys.is_empty() {
            return Err(VaultError::not_found());
        }
        Ok(envelope(json!({ "keys": keys })))
    }
}

/// `delete_version_after` other than `0s`: refused, versions do not expire here.
pub(super) fn refuse_version_expiry(body: &Value) -> VaultResult<()> {
    if body
        .get("delete_version_after")
        .and_then(Value::as_str)
        .is_some_and(|d| !matches!(d, "" | "0s"))
    {
        return Err(VaultError::bad_request(
            "delete_version_after is not supported",
        ));
    }
    Ok(())
}

/// Metadata written before the secret's data: Vault keeps it; Strongroom needs the
/// secret first.
fn data_first() -> VaultError {
    VaultError::new(
        StatusCode::NOT_FOUND,
        "write the secret's data before its metadata",
    )
}

/// `custom` over `current`: replaced whole, or merged (a `null` value removes its key);
/// 400 when the result breaks Vault's limits (the same rule as `/api`'s settings).
fn merged_custom(current: Option<&Value>, custom: &Value, merge: bool) -> VaultResult<Value> {
    let mut map = match (merge, current) {
        (true, Some(Value::Object(map))) => map.clone(),
        _ => Map::new(),
    };
    if let Value::Object(changes) = custom {
        for (key, value) in changes {
            if value.is_null() {
                map.remove(key);
            } else {
                map.insert(key.clone(), value.clone());
            }
        }
    }
    let labels = map
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str().unwrap_or_default()));
    if let Some(fault) = crate::routes::lifecycle::custom_metadata_fault(map.len(), labels) {
        return Err(VaultError::bad_request(fault));
    }
    Ok(Value::Object(map))
}
