//! Copy and move on the server: `POST /api/secrets/{key}/copy` and `…/move`. The value is
//! re-sealed inside the store and never returned.

use axum::Json;
use serde::{Deserialize, Serialize};
use strongroom_store::SecretId;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::secrets::TargetQuery;
use super::ApiResult;
use crate::extract::{ApiJson, SecretRequest};
use crate::AppState;

/// `/api/secrets/{key}/copy` and `/api/secrets/{key}/move`.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(copy_secret))
        .routes(routes!(move_secret))
}

/// Where a copy or move goes; each omitted part is the source's.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransferRequest {
    /// Target key (default: the source's).
    #[schema(pattern = r"^[A-Za-z0-9_./-]{1,256}$")]
    to_key: Option<String>,
    /// Target env (default: the source's).
    #[schema(pattern = r"^[a-z0-9_-]{1,64}$")]
    to_env: Option<String>,
    /// Target namespace (default: the source's).
    #[schema(pattern = r"^[a-z0-9_-]{1,64}$")]
    to_namespace: Option<String>,
    /// Overwrite an existing target (default false: 409).
    #[serde(default)]
    force: bool,
}

/// A secret's identity.
#[derive(Serialize, ToSchema)]
pub(crate) struct Identity {
    namespace: String,
    env: String,
    key: String,
}

impl From<SecretId> for Identity {
    fn from(id: SecretId) -> Self {
        Self {
            namespace: id.namespace,
            env: id.env,
            key: id.key,
        }
    }
}

/// `{"from", "to", "version", "message"}`: never the value.
#[derive(Serialize, ToSchema)]
pub(crate) struct Transferred {
    from: Identity,
    to: Identity,
    /// The target's current version.
    version: u32,
    message: String,
}

/// Copies a secret's current value (exactly the source env, no fallback) to another key,
/// env or namespace, re-sealed there. Needs `read` on the source (or `use`, into a place
/// the caller can neither read nor use) and `write` on the target; the value is never
/// returned.
#[utoipa::path(post, path = "/api/secrets/{key}/copy", tag = "secrets", params(("key" = String, Path, description = "The source key", pattern = r"^[A-Za-z0-9_.-]{1,256}$"), TargetQuery),
    request_body = TransferRequest,
    responses((status = 200, body = Transferred), (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 409, body = crate::ErrorBody),
        (status = 410, body = crate::ErrorBody), (status = 413, body = crate::ErrorBody), (status = 415, body = crate::ErrorBody),
        (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn copy_secret(
    request: SecretRequest,
    body: ApiJson<TransferRequest>,
) -> ApiResult<Json<Transferred>> {
    transfer(request, body, false).await
}

/// Moves (renames) a secret with its history to another key, env or namespace. Needs
/// `read` (or `use`, as for a copy) and `delete` on the source, and `write` on the target (and `delete`
/// there too with `force`); the value is never returned.
#[utoipa::path(post, path = "/api/secrets/{key}/move", tag = "secrets", params(("key" = String, Path, description = "The source key", pattern = r"^[A-Za-z0-9_.-]{1,256}$"), TargetQuery),
    request_body = TransferRequest,
    responses((status = 200, body = Transferred), (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 409, body = crate::ErrorBody),
        (status = 413, body = crate::ErrorBody), (status = 415, body = crate::ErrorBody), (status = 500, body = crate::ErrorBody),
        (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn move_secret(
    request: SecretRequest,
    body: ApiJson<TransferRequest>,
) -> ApiResult<Json<Transferred>> {
    transfer(request, body, true).await
}

async fn transfer(
    request: SecretRequest,
    ApiJson(body): ApiJson<TransferRequest>,
    moving: bool,
) -> ApiResult<Json<Transferred>> {
    let scoped = request.scoped();
    let from = request.id()?;
    let to = scoped.secret_id(
        Some(body.to_namespace.as_deref().unwrap_or(&from.namespace)),
        Some(body.to_env.as_deref().unwrap_or(&from.env)),
        body.to_key.as_deref().unwrap_or(&from.key),
    )?;
    let granted = scoped.transfer(&from, &to, moving, body.force)?;
    let outcome = if moving {
        granted.move_to().await?
    } else {
        granted.copy().await?
    };
    let message = format!("{} {from} to {to}", if moving { "moved" } else { "copied" });
    Ok(Json(Transferred {
        from: from.into(),
        to: to.into(),
        version: outcome.version,
        message,
    }))
}
