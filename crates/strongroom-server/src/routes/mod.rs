//! The handlers, one module per resource, each with its `routes()`. Each handler checks
//! the caller's scope against the namespace and env it touches (after defaults and
//! isolation are applied), then calls the store as the caller.

use axum::Router;
use strongroom_store::tokens::{Capability, Principal};
use strongroom_store::{SecretId, Store};
use utoipa_axum::router::OpenApiRouter;

use crate::{ApiError, AppState};

pub(crate) mod audit;
pub(crate) mod lifecycle;
pub(crate) mod secrets;
pub(crate) mod system;
pub(crate) mod tokens;
pub(crate) mod transfer;
pub(crate) mod versions;

/// Every route of the API and the gateway. Each handler is registered once: the same
/// registration routes it and documents it in the OpenAPI document.
pub(crate) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .merge(system::routes())
        .merge(secrets::routes())
        .merge(versions::routes())
        .merge(transfer::routes())
        .merge(lifecycle::routes())
        .merge(audit::routes())
        .merge(tokens::routes())
        .merge(crate::gateway::routes())
}

/// The router of [`api`].
pub(crate) fn router() -> Router<AppState> {
    api().split_for_parts().0
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// The store, or 503 when the server runs without a master key.
pub(crate) fn store(state: &AppState) -> ApiResult<&Store> {
    state.store.as_ref().ok_or_else(ApiError::disabled)
}

/// Resolves the identity (defaults, isolation, name checks) and checks that the caller
/// may do `capability` there.
pub(crate) fn authorize(
    store: &Store,
    caller: &Principal,
    capability: Capability,
    namespace: Option<&str>,
    env: Option<&str>,
    key: &str,
) -> ApiResult<SecretId> {
    let id = store.secret_id(namespace, env, key)?;
    require(caller, capability, &id.namespace, &id.env)?;
    Ok(id)
}

/// 403 naming the capability unless the caller may do `capability` on `namespace`/`env`.
pub(crate) fn require(
    caller: &Principal,
    capability: Capability,
    namespace: &str,
    env: &str,
) -> ApiResult<()> {
    if caller.may(capability, namespace, env) {
        Ok(())
    } else {
        Err(missing(capability, &format!("{namespace}/{env}")))
    }
}

/// The 403 of a missing capability: names the capability and the place, nothing else.
pub(crate) fn missing(capability: Capability, place: &str) -> ApiError {
    ApiError::forbidden(format!(
        "this token lacks the `{capability}` capability on {place}"
    ))
}

pub(crate) fn superuser(caller: &Principal) -> ApiResult<()> {
    if caller.superuser {
        Ok(())
    } else {
        Err(ApiError::forbidden("this route needs a superuser token"))
    }
}
