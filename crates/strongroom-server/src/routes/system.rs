//! Health and the OpenAPI document (no authentication).

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// `/api/health`, `/api/openapi.json`.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(openapi_json))
}

/// `{"status": "ok"}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok` when the server answers.
    status: &'static str,
}

/// Liveness; no authentication.
#[utoipa::path(get, path = "/api/health", tag = "meta", responses((status = 200, body = Health)))]
pub(crate) async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// This API's OpenAPI document, generated from the handlers; no authentication.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta", responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
pub(crate) async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi())
}

/// Readiness: the database answers, the keys fit it, and (PostgreSQL with a read cache)
/// the cache listens; 503 `not_ready` with `data.part` naming what failed. No
/// authentication; nothing about secrets is said.
#[utoipa::path(get, path = "/api/ready", tag = "meta", responses((status = 200, body = Health), (status = 503, body = crate::ErrorBody)))]
pub(crate) async fn ready(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<Json<Health>, crate::ApiError> {
    let not_ready = |part: &'static str, why: String| {
        crate::ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("not ready: {part}: {why}"),
        )
        .with_detail("part", part)
    };
    state
        .tokens
        .ping()
        .await
        .map_err(|_| not_ready("database", "the database does not answer".into()))?;
    let Some(store) = &state.store else {
        return Err(not_ready("key", "no master key is configured".into()));
    };
    store
        .check_ready()
        .await
        .map_err(|(part, why)| not_ready(part, why))?;
    Ok(Json(Health { status: "ok" }))
}
