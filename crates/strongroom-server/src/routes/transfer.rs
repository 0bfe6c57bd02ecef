//! Copy and move on the server: `POST /api/secrets/{key}/copy` and `…/move`. The value is
//! re-sealed inside the store and never returned.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use strongroom_store::tokens::{Capability, Principal};
use strongroom_store::{SecretId, Store};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::secrets::TargetQuery;
use super::{missing, require, store, ApiResult};
use crate::extract::{ApiJson, ApiQuery, Caller};
use crate::{ApiError, AppState};

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
    state: State<AppState>,
    caller: Caller,
    key: Path<String>,
    query: ApiQuery<TargetQuery>,
    body: ApiJson<TransferRequest>,
) -> ApiResult<Json<Transferred>> {
    transfer(state, caller, key, query, body, false).await
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
    state: State<AppState>,
    caller: Caller,
    key: Path<String>,
    query: ApiQuery<TargetQuery>,
    body: ApiJson<TransferRequest>,
) -> ApiResult<Json<Transferred>> {
    transfer(state, caller, key, query, body, true).await
}

async fn transfer(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(key): Path<String>,
    ApiQuery(query): ApiQuery<TargetQuery>,
    ApiJson(body): ApiJson<TransferRequest>,
    moving: bool,
) -> ApiResult<Json<Transferred>> {
    let store = store(&state)?.with_actor(&caller.actor());
    let from = store.secret_id(query.namespace.as_deref(), query.env.as_deref(), &key)?;
    let to = store.secret_id(
        Some(body.to_namespace.as_deref().unwrap_or(&from.namespace)),
        Some(body.to_env.as_deref().unwrap_or(&from.env)),
        body.to_key.as_deref().unwrap_or(&from.key),
    )?;
    authorize_transfer(&store, &caller, &from, &to, moving, body.force)?;
    let outcome = if moving {
        store.move_to(&from, &to, body.force).await?
    } else {
        store.copy(&from, &to, body.force).await?
    };
    let message = format!("{} {from} to {to}", if moving { "moved" } else { "copied" });
    Ok(Json(Transferred {
        from: from.into(),
        to: to.into(),
        version: outcome.version,
        message,
    }))
}

/// The capabilities a copy or move needs: `read` at the source, or `use` alone when the
/// target is out of the caller's reach (it may neither read nor use the target, directly
/// or through an env that falls back to it), so a value the caller may not read never
/// becomes readable or usable elsewhere by it (docs/api.md, "Copy and move"); `write` at
/// the target; a move also deletes the source, and a forced move the target's history.
fn authorize_transfer(
    store: &Store,
    caller: &Principal,
    from: &SecretId,
    to: &SecretId,
    moving: bool,
    force: bool,
) -> ApiResult<()> {
    if !caller.may(Capability::Read, &from.namespace, &from.env) {
        if !caller.may(Capability::Use, &from.namespace, &from.env) {
            return Err(missing(
                Capability::Read,
                &format!("{}/{} (or `use`)", from.namespace, from.env),
            ));
        }
        let chain = |env: &str| store.config().chain(env);
        let in_reach = [Capability::Read, Capability::Use]
            .into_iter()
            .any(|cap| caller.reaches(cap, &to.namespace, &to.env, chain));
        if in_reach {
            return Err(ApiError::forbidden(format!(
                "this token lacks the `read` capability on {}/{}: with `use` alone a value \
                 may go only where this token can neither read nor use it, and it may reach \
                 {}/{}",
                from.namespace, from.env, to.namespace, to.env
            )));
        }
    }
    require(caller, Capability::Write, &to.namespace, &to.env)?;
    if moving {
        require(caller, Capability::Delete, &from.namespace, &from.env)?;
        if force {
            require(caller, Capability::Delete, &to.namespace, &to.env)?;
        }
    }
    Ok(())
}
