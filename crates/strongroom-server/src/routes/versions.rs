//! Version history and rollback.

use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::secrets::TargetQuery;
use super::ApiResult;
use crate::extract::{ApiJson, SecretRequest};
use crate::AppState;

/// `/api/secrets/{key}/history` and `/api/secrets/{key}/rollback`.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(history))
        .routes(routes!(rollback))
}

/// One kept version.
#[derive(Serialize, ToSchema)]
pub(crate) struct VersionItem {
    version: u32,
    kek_version: u32,
    /// RFC 3339.
    created: String,
    actor: String,
    current: bool,
    /// RFC 3339 time it was soft-deleted (`strongroom rm --version`), or null.
    deleted: Option<String>,
    /// Its sealed bytes were destroyed for good.
    destroyed: bool,
}

/// `{"items": [...]}`, newest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct HistoryResponse {
    items: Vec<VersionItem>,
}

/// A secret's kept versions (no values), newest first.
#[utoipa::path(get, path = "/api/secrets/{key}/history", tag = "versions", params(("key" = String, Path, description = "The secret's key", pattern = r"^[A-Za-z0-9_.-]{1,256}$"), TargetQuery),
    responses((status = 200, body = HistoryResponse), (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn history(request: SecretRequest) -> ApiResult<Json<HistoryResponse>> {
    let scoped = request.scoped();
    let id = request.id()?;
    let items = scoped
        .list(&id)?
        .history()
        .await?
        .into_iter()
        .map(|v| VersionItem {
            version: v.version,
            kek_version: v.kek_version,
            created: v.created.to_string(),
            actor: v.actor,
            current: v.current,
            deleted: v.deleted.map(|t| t.to_string()),
            destroyed: v.destroyed,
        })
        .collect();
    Ok(Json(HistoryResponse { items }))
}

/// Body of a rollback.
#[derive(Deserialize, ToSchema)]
pub(crate) struct RollbackRequest {
    /// The kept version to make current again.
    #[schema(minimum = 1)]
    version: u32,
    /// Environment (else `?env=`, else the default env).
    #[schema(pattern = r"^[a-z0-9_-]{1,64}$")]
    env: Option<String>,
}

/// `{"key", "env", "version", "message"}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct RolledBack {
    key: String,
    env: String,
    /// The new current version.
    version: u32,
    message: String,
}

/// Makes a kept version current again, as a new version.
#[utoipa::path(post, path = "/api/secrets/{key}/rollback", tag = "versions", params(("key" = String, Path, description = "The secret's key", pattern = r"^[A-Za-z0-9_.-]{1,256}$"), TargetQuery),
    request_body = RollbackRequest,
    responses((status = 200, body = RolledBack), (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 413, body = crate::ErrorBody),
        (status = 415, body = crate::ErrorBody), (status = 500, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn rollback(
    request: SecretRequest,
    ApiJson(body): ApiJson<RollbackRequest>,
) -> ApiResult<Json<RolledBack>> {
    let scoped = request.scoped();
    let id = request.id_in(body.env.as_deref())?;
    let outcome = scoped.write(&id)?.rollback(body.version).await?;
    Ok(Json(RolledBack {
        key: id.key,
        env: id.env,
        version: outcome.version,
        message: format!("rolled back to version {}", body.version),
    }))
}
