//! A secret's single versions and own settings: soft delete, undelete and destroy of
//! versions, and `max_versions` / `cas_required` (the same as `strongroom rm --version`,
//! `undelete`, `destroy`, `settings`, and Vault's KV v2 under `/v1`).

use axum::extract::Path;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use strongroom_store::{MetaUpdate, SecretInfo, SecretSettings};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::secrets::TargetQuery;
use super::ApiResult;
use crate::extract::{ApiJson, SecretRequest};
use crate::{ApiError, AppState};

/// `/api/secrets/{key}/versions/{action}` and `/api/secrets/{key}/settings`.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(change_versions))
        .routes(routes!(read_settings, write_settings))
}

/// `{"versions": [N, ...]}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VersionsRequest {
    /// The version numbers.
    #[schema(min_items = 1)]
    versions: Vec<u32>,
}

/// `{"key", "env", "changed": [N, ...]}`: the versions whose state changed.
#[derive(Serialize, ToSchema)]
pub(crate) struct VersionsChanged {
    key: String,
    env: String,
    changed: Vec<u32>,
}

/// Soft-deletes (`delete`), undeletes (`undelete`) or destroys (`destroy`) single
/// versions. A deleted version is kept sealed and read by nobody (410) until undeleted; a
/// destroyed one has its sealed bytes erased for good. Needs `delete` (`write` to undelete).
#[utoipa::path(post, path = "/api/secrets/{key}/versions/{action}", tag = "versions",
    params(("key" = String, Path, description = "The secret's key", pattern = r"^[A-Za-z0-9_.-]{1,256}$"),
        ("action" = String, Path, description = "delete, undelete or destroy", pattern = r"^(delete|undelete|destroy)$"), TargetQuery),
    request_body = VersionsRequest,
    responses((status = 200, body = VersionsChanged), (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 413, body = crate::ErrorBody),
        (status = 415, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn change_versions(
    request: SecretRequest,
    Path((_key, action)): Path<(String, String)>,
    ApiJson(body): ApiJson<VersionsRequest>,
) -> ApiResult<Json<VersionsChanged>> {
    if !matches!(action.as_str(), "delete" | "undelete" | "destroy") {
        return Err(ApiError::bad_request(
            "the action is delete, undelete or destroy",
        ));
    }
    if body.versions.is_empty() {
        return Err(ApiError::bad_request("give at least one version"));
    }
    let scoped = request.scoped();
    let id = request.id()?;
    // Deleting and destroying need `delete`; undeleting is a write.
    let changed = match action.as_str() {
        "delete" => scoped.delete(&id)?.delete_versions(&body.versions).await?,
        "undelete" => scoped.write(&id)?.undelete_versions(&body.versions).await?,
        _ => scoped.delete(&id)?.destroy_versions(&body.versions).await?,
    };
    Ok(Json(VersionsChanged {
        key: id.key,
        env: id.env,
        changed,
    }))
}

/// A secret's own settings.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    /// Versions kept for this secret; 0 or absent: the server's history depth.
    #[serde(default)]
    max_versions: Option<u32>,
    /// Whether every value write must give `"cas"`.
    #[serde(default)]
    cas_required: Option<bool>,
    /// Labels kept with the secret, never secret (Vault's `custom_metadata`): at most 64,
    /// names up to 128 bytes, values up to 512. A write replaces them all; absent keeps.
    #[serde(default)]
    custom_metadata: Option<BTreeMap<String, String>>,
}

impl Settings {
    /// The settings as answered: `max_versions` is the number actually kept.
    fn shown(settings: SecretSettings, history_depth: u32, info: Option<&SecretInfo>) -> Self {
        let custom = info
            .and_then(|i| i.metadata.as_ref())
            .and_then(|m| m.get("custom_metadata"))
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .unwrap_or_default();
        Self {
            max_versions: Some(settings.max_versions.unwrap_or(history_depth)),
            cas_required: Some(settings.cas_required),
            custom_metadata: Some(custom),
        }
    }
}

/// Vault's limits on `custom_metadata` (at most 64 labels, names of 1 to 128 bytes,
/// values up to 512), one rule for `/api` and `/v1`: what breaks it, in words.
pub(crate) fn custom_metadata_fault<'a>(
    count: usize,
    mut labels: impl Iterator<Item = (&'a str, &'a str)>,
) -> Option<&'static str> {
    if count > 64 {
        return Some("custom_metadata: at most 64 entries");
    }
    labels
        .any(|(name, value)| name.is_empty() || name.len() > 128 || value.len() > 512)
        .then_some("custom_metadata: names of 1 to 128 bytes, values up to 512 bytes")
}

fn check_custom(custom: &BTreeMap<String, String>) -> ApiResult<()> {
    let labels = custom.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    match custom_metadata_fault(custom.len(), labels) {
        Some(fault) => Err(ApiError::bad_request(fault)),
        None => Ok(()),
    }
}

/// A secret's own settings (needs `list`).
#[utoipa::path(get, path = "/api/secrets/{key}/settings", tag = "versions",
    params(("key" = String, Path, description = "The secret's key", pattern = r"^[A-Za-z0-9_.-]{1,256}$"), TargetQuery),
    responses((status = 200, body = Settings), (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn read_settings(request: SecretRequest) -> ApiResult<Json<Settings>> {
    let scoped = request.scoped();
    let id = request.id()?;
    let grant = scoped.list(&id)?;
    let settings = grant.settings().await?;
    let info = grant.info().await?;
    Ok(Json(Settings::shown(
        settings,
        scoped.config().history_depth,
        info.as_ref(),
    )))
}

/// Changes a secret's own settings; omitted fields keep theirs (needs `write`).
#[utoipa::path(put, path = "/api/secrets/{key}/settings", tag = "versions",
    params(("key" = String, Path, description = "The secret's key", pattern = r"^[A-Za-z0-9_.-]{1,256}$"), TargetQuery),
    request_body = Settings,
    responses((status = 200, body = Settings), (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 413, body = crate::ErrorBody),
        (status = 415, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn write_settings(
    request: SecretRequest,
    ApiJson(body): ApiJson<Settings>,
) -> ApiResult<Json<Settings>> {
    let scoped = request.scoped();
    let id = request.id()?;
    let grant = scoped.write(&id)?;
    if let Some(custom) = &body.custom_metadata {
        check_custom(custom)?;
    }
    let current = grant.settings().await?;
    let settings = SecretSettings {
        max_versions: match body.max_versions {
            Some(0) => None,
            Some(max) => Some(max),
            None => current.max_versions,
        },
        cas_required: body.cas_required.unwrap_or(current.cas_required),
    };
    if settings != current {
        grant.set_settings(settings).await?;
    }
    let mut info = grant.info().await?;
    if let (Some(custom), Some(secret)) = (body.custom_metadata, info.as_mut()) {
        let mut metadata = match secret.metadata.take() {
            Some(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        metadata.insert("custom_metadata".into(), serde_json::json!(custom));
        let metadata = serde_json::Value::Object(metadata);
        grant
            .update_meta(MetaUpdate {
                metadata: Some(metadata.clone()),
                ..MetaUpdate::default()
            })
            .await?;
        secret.metadata = Some(metadata);
    }
    Ok(Json(Settings::shown(
        settings,
        scoped.config().history_depth,
        info.as_ref(),
    )))
}
