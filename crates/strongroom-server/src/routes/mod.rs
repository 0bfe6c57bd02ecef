//! The handlers, one module per resource, each with its `routes()`. A handler reaches the
//! store only as its caller (`Secrets::caller`), through a door that checks the capability
//! the operation needs (`authz.rs`), after defaults and isolation are applied to the name.

use axum::Router;
use strongroom_store::tokens::Principal;
use utoipa_axum::router::OpenApiRouter;

use crate::{ApiError, AppState, Secrets};

pub(crate) mod audit;
pub(crate) mod grid;
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
        .merge(grid::routes())
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

/// The secrets, or 503 when the server runs without a master key. Handlers reach the
/// store only through [`Secrets::caller`] (authorization as a type, `authz.rs`).
pub(crate) fn secrets_of(state: &AppState) -> ApiResult<&Secrets> {
    state.store.as_ref().ok_or_else(ApiError::disabled)
}

pub(crate) fn superuser(caller: &Principal) -> ApiResult<()> {
    if caller.superuser {
        Ok(())
    } else {
        Err(ApiError::forbidden("this route needs a superuser token"))
    }
}
