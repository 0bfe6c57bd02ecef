//! The handlers. Each checks the caller's scope against the namespace and env it touches
//! (after defaults and isolation are applied), then calls the store as the caller.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use strongroom_crypto::secrecy::ExposeSecret as _;
use strongroom_store::tokens::Principal;
use strongroom_store::{AuditQuery, ListQuery, MetaUpdate, SecretId, SetRequest, Store};
use utoipa::{IntoParams, ToSchema};

use crate::extract::{ApiJson, ApiQuery, Caller};
use crate::{ApiError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/openapi.json", get(openapi_json))
        .route("/api/secrets", get(list_secrets).post(create_secret))
        .route(
            "/api/secrets/{key}",
            get(get_secret).put(update_secret).delete(delete_secret),
        )
        .route("/api/secrets/{key}/history", get(history))
        .route("/api/secrets/{key}/rollback", axum::routing::post(rollback))
        .route("/api/audit", get(audit))
        .route("/api/rotation", get(rotation))
        .route(
            "/gateway/{route}",
            axum::routing::any(crate::gateway::forward_root),
        )
        .route(
            "/gateway/{route}/{*rest}",
            axum::routing::any(crate::gateway::forward),
        )
}

type ApiResult<T> = Result<T, ApiError>;

/// The store, or 503 when the server runs without a master key.
fn store(state: &AppState) -> ApiResult<&Store> {
    state.store.as_ref().ok_or_else(ApiError::disabled)
}

/// Resolves the identity (defaults, isolation, name checks) and checks the scope.
fn authorize(
    store: &Store,
    caller: &Principal,
    namespace: Option<&str>,
    env: Option<&str>,
    key: &str,
) -> ApiResult<SecretId> {
    let id = store.secret_id(namespace, env, key)?;
    if caller.covers(&id.namespace, &id.env) {
        Ok(id)
    } else {
        Err(ApiError::forbidden(format!(
            "this token does not cover {}/{}",
            id.namespace, id.env
        )))
    }
}

fn superuser(caller: &Principal) -> ApiResult<()> {
    if caller.superuser {
        Ok(())
    } else {
        Err(ApiError::forbidden("this route needs a superuser token"))
    }
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

/// Query of the namespace (default `default`).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct NamespaceQuery {
    /// Namespace (default `default`).
    #[param(pattern = r"^[a-z0-9_-]{1,64}$")]
    namespace: Option<String>,
}

/// `env` and `namespace` query parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TargetQuery {
    /// Environment (default: the server's default env). Reads fall back along its chain.
    #[param(pattern = r"^[a-z0-9_-]{1,64}$")]
    env: Option<String>,
    /// Namespace (default `default`).
    #[param(pattern = r"^[a-z0-9_-]{1,64}$")]
    namespace: Option<String>,
}

/// Body of `POST /api/secrets`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateSecret {
    /// The secret's key: up to 256 bytes of `A-Z a-z 0-9 _ . - /`.
    #[schema(pattern = r"^[A-Za-z0-9_./-]{1,256}$")]
    key: String,
    /// The value (text, at most `STRONGROOM_MAX_VALUE_SIZE` bytes, default 4096).
    #[schema(max_length = 4096)]
    value: String,
    /// Environment (default: the server's default env).
    #[schema(pattern = r"^[a-z0-9_-]{1,64}$")]
    env: Option<String>,
    /// Description.
    #[schema(max_length = 1024)]
    description: Option<String>,
}

/// `{"key", "env", "message"}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct Saved {
    key: String,
    env: String,
    message: String,
}

/// Creates or replaces a secret (upsert; a new version when it exists).
#[utoipa::path(post, path = "/api/secrets", tag = "secrets", params(NamespaceQuery), request_body = CreateSecret,
    responses((status = 200, body = Saved), (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 413, body = crate::ErrorBody), (status = 415, body = crate::ErrorBody),
        (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<NamespaceQuery>,
    ApiJson(body): ApiJson<CreateSecret>,
) -> ApiResult<Json<Saved>> {
    let store = store(&state)?;
    let id = authorize(
        store,
        &caller,
        query.namespace.as_deref(),
        body.env.as_deref(),
        &body.key,
    )?;
    let request = SetRequest {
        description: body.description,
        ..SetRequest::value(body.value)
    };
    store.with_actor(&caller.actor()).set(&id, request).await?;
    Ok(Json(Saved {
        key: id.key,
        env: id.env,
        message: "secret saved".into(),
    }))
}

/// List query parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Only this environment.
    #[param(pattern = r"^[a-z0-9_-]{1,64}$")]
    env: Option<String>,
    /// Only keys starting with this prefix.
    prefix: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1)]
    page: Option<u32>,
    /// Items per page, 1 to 500 (default 30).
    #[serde(rename = "perPage")]
    #[param(minimum = 1, maximum = 500)]
    per_page: Option<u32>,
    /// Namespace (default `default`).
    #[param(pattern = r"^[a-z0-9_-]{1,64}$")]
    namespace: Option<String>,
}

/// One listed secret: never its value.
#[derive(Serialize, ToSchema)]
pub(crate) struct ListItem {
    id: String,
    key: String,
    /// Always `********`: reveals no character of the value.
    masked_value: String,
    env: String,
    description: String,
    /// RFC 3339.
    created: String,
    /// RFC 3339.
    updated: String,
}

/// `{"items": [...], "total": N}`; `items` is `[]`, never `null`.
#[derive(Serialize, ToSchema)]
pub(crate) struct ListResponse {
    items: Vec<ListItem>,
    total: u64,
}

/// Lists secrets, masked, ordered by env then key.
#[utoipa::path(get, path = "/api/secrets", tag = "secrets", params(ListParams),
    responses((status = 200, body = ListResponse), (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_secrets(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<ListResponse>> {
    let store = store(&state)?;
    let namespace = params.namespace.unwrap_or_else(|| "default".into());
    store.config().check_namespace(&namespace)?;
    let env = match params.env {
        Some(env) => {
            let env = store.secret_id(Some(&namespace), Some(&env), "_")?.env;
            if !caller.covers(&namespace, &env) {
                return Err(ApiError::forbidden(format!(
                    "this token does not cover {namespace}/{env}"
                )));
            }
            Some(env)
        }
        None if caller.covers_all_envs(&namespace) => None,
        None => {
            return Err(ApiError::forbidden(
                "this token covers only some envs: pass ?env= for one it covers",
            ))
        }
    };
    let per_page = params.per_page.unwrap_or(30);
    let page = params.page.unwrap_or(1);
    if !(1..=500).contains(&per_page) || page == 0 {
        return Err(ApiError::bad_request(
            "page starts at 1; perPage must be 1 to 500",
        ));
    }
    let offset = usize::try_from(u64::from(page - 1) * u64::from(per_page)).unwrap_or(usize::MAX);
    let listed = store
        .list(ListQuery {
            namespace: Some(namespace),
            env,
            prefix: params.prefix,
            limit: Some(per_page as usize),
            offset: Some(offset),
            ..ListQuery::default()
        })
        .await?;
    let items = listed
        .items
        .into_iter()
        .map(|i| ListItem {
            id: i.id,
            key: i.key,
            masked_value: i.masked_value,
            env: i.env,
            description: i.description,
            created: i.created.to_string(),
            updated: i.updated.to_string(),
        })
        .collect();
    Ok(Json(ListResponse {
        items,
        total: listed.total,
    }))
}

/// `{"key", "value", "env"}`: `env` is the env that served (after fallback).
#[derive(Serialize, ToSchema)]
pub(crate) struct SecretValue {
    key: String,
    value: String,
    env: String,
}

/// Reads a secret's value (fallback applies, within the token's scope). Every read is an
/// audit event with the token's name as actor.
#[utoipa::path(get, path = "/api/secrets/{key}", tag = "secrets", params(("key" = String, Path, description = "The secret's key", pattern = r"^[A-Za-z0-9_.-]{1,256}$"), TargetQuery),
    responses((status = 200, body = SecretValue), (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 410, body = crate::ErrorBody),
        (status = 422, body = crate::ErrorBody), (status = 500, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(key): Path<String>,
    ApiQuery(query): ApiQuery<TargetQuery>,
) -> ApiResult<Json<SecretValue>> {
    let store = store(&state)?.with_actor(&caller.actor());
    let id = authorize(
        &store,
        &caller,
        query.namespace.as_deref(),
        query.env.as_deref(),
        &key,
    )?;
    // No audit event, no value: committing the read records it before the value exists
    // here (a value that is not text is then refused, the read still recorded).
    let secret = store
        .get_within(&id, |env| caller.covers(&id.namespace, env))
        .await?
        .commit()
        .await?;
    let value = std::str::from_utf8(secret.value.expose_secret())
        .map_err(|_| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "binary_value",
                "the value is not UTF-8 text; read it with `strongroom get`",
            )
        })?
        .to_owned();
    Ok(Json(SecretValue {
        key: secret.id.key,
        value,
        env: secret.id.env,
    }))
}

/// Body of `PUT /api/secrets/{key}`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct UpdateSecret {
    /// New value; creates the secret when it does not exist.
    #[schema(max_length = 4096)]
    value: Option<String>,
    /// New description; omitted keeps the current one.
    #[schema(max_length = 1024)]
    description: Option<String>,
    /// Environment (else `?env=`, else the default env).
    #[schema(pattern = r"^[a-z0-9_-]{1,64}$")]
    env: Option<String>,
}

/// Updates a secret's value and/or description. With a `value` on a missing key, creates it.
#[utoipa::path(put, path = "/api/secrets/{key}", tag = "secrets", params(("key" = String, Path, description = "The secret's key", pattern = r"^[A-Za-z0-9_.-]{1,256}$"), TargetQuery),
    request_body = UpdateSecret,
    responses((status = 200, body = Saved), (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 413, body = crate::ErrorBody),
        (status = 415, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn update_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(key): Path<String>,
    ApiQuery(query): ApiQuery<TargetQuery>,
    ApiJson(body): ApiJson<UpdateSecret>,
) -> ApiResult<Json<Saved>> {
    let store = store(&state)?.with_actor(&caller.actor());
    let env = body.env.as_deref().or(query.env.as_deref());
    let id = authorize(&store, &caller, query.namespace.as_deref(), env, &key)?;
    match (body.value, body.description) {
        (Some(value), description) => {
            store
                .set(
                    &id,
                    SetRequest {
                        description,
                        ..SetRequest::value(value)
                    },
                )
                .await?;
        }
        (None, Some(description)) => {
            store
                .update_meta(
                    &id,
                    MetaUpdate {
                        description: Some(description),
                        ..MetaUpdate::default()
                    },
                )
                .await?;
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "nothing to update: give a value and/or a description",
            ))
        }
    }
    Ok(Json(Saved {
        key: id.key,
        env: id.env,
        message: "secret updated".into(),
    }))
}

/// Deletes a secret and its versions.
#[utoipa::path(delete, path = "/api/secrets/{key}", tag = "secrets", params(("key" = String, Path, description = "The secret's key", pattern = r"^[A-Za-z0-9_.-]{1,256}$"), TargetQuery),
    responses((status = 204, description = "Deleted"), (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn delete_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(key): Path<String>,
    ApiQuery(query): ApiQuery<TargetQuery>,
) -> ApiResult<impl IntoResponse> {
    let store = store(&state)?.with_actor(&caller.actor());
    let id = authorize(
        &store,
        &caller,
        query.namespace.as_deref(),
        query.env.as_deref(),
        &key,
    )?;
    store.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
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
pub(crate) async fn history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(key): Path<String>,
    ApiQuery(query): ApiQuery<TargetQuery>,
) -> ApiResult<Json<HistoryResponse>> {
    let store = store(&state)?;
    let id = authorize(
        store,
        &caller,
        query.namespace.as_deref(),
        query.env.as_deref(),
        &key,
    )?;
    let items = store
        .history(&id)
        .await?
        .into_iter()
        .map(|v| VersionItem {
            version: v.version,
            kek_version: v.kek_version,
            created: v.created.to_string(),
            actor: v.actor,
            current: v.current,
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
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(key): Path<String>,
    ApiQuery(query): ApiQuery<TargetQuery>,
    ApiJson(body): ApiJson<RollbackRequest>,
) -> ApiResult<Json<RolledBack>> {
    let store = store(&state)?.with_actor(&caller.actor());
    let env = body.env.as_deref().or(query.env.as_deref());
    let id = authorize(&store, &caller, query.namespace.as_deref(), env, &key)?;
    let outcome = store.rollback(&id, body.version).await?;
    Ok(Json(RolledBack {
        key: id.key,
        env: id.env,
        version: outcome.version,
        message: format!("rolled back to version {}", body.version),
    }))
}

/// Audit query parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditParams {
    /// Only this namespace.
    namespace: Option<String>,
    /// Only this env.
    env: Option<String>,
    /// Only this key.
    key: Option<String>,
    /// Only this action (`create`, `update`, `delete`, `rollback`, `rotate`,
    /// `metadata_update`, `expired_cleanup`, `read`, `gateway_read`).
    action: Option<String>,
    /// Events older than this id (the previous page's `next`).
    before: Option<i64>,
    /// Items per page, 1 to 1000 (default 100).
    #[serde(rename = "perPage")]
    #[param(minimum = 1, maximum = 1000)]
    per_page: Option<u32>,
}

/// One audit event; never a value.
#[derive(Serialize, ToSchema)]
pub(crate) struct Event {
    id: i64,
    /// RFC 3339.
    time: String,
    actor: String,
    action: String,
    namespace: String,
    env: String,
    key: String,
    version: Option<u32>,
    kek_version: Option<u32>,
}

/// `{"items": [...], "next": id|null}`, newest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditResponse {
    items: Vec<Event>,
    /// Pass as `before` for the next page; null on the last page.
    next: Option<i64>,
}

/// Audit events, newest first (superuser tokens only).
#[utoipa::path(get, path = "/api/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditResponse), (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn audit(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> ApiResult<Json<AuditResponse>> {
    superuser(&caller)?;
    let store = store(&state)?;
    let action = match params.action.as_deref() {
        Some(name) => Some(
            strongroom_store::Action::parse(name)
                .ok_or_else(|| ApiError::bad_request("unknown action"))?,
        ),
        None => None,
    };
    let per_page = params.per_page.unwrap_or(100);
    if !(1..=1000).contains(&per_page) {
        return Err(ApiError::bad_request("perPage must be 1 to 1000"));
    }
    let page = store
        .audit(AuditQuery {
            namespace: params.namespace,
            env: params.env,
            key: params.key,
            action,
            limit: Some(per_page as usize),
            before_id: params.before,
        })
        .await?;
    let next = page.next_cursor.and_then(|c| c.parse().ok());
    let items = page
        .items
        .into_iter()
        .map(|e| Event {
            id: e.id,
            time: e.time.to_string(),
            actor: e.actor,
            action: e.action.as_str().to_owned(),
            namespace: e.namespace,
            env: e.env,
            key: e.key,
            version: e.version,
            kek_version: e.kek_version,
        })
        .collect();
    Ok(Json(AuditResponse { items, next }))
}

/// Values on one KEK version.
#[derive(Serialize, ToSchema)]
pub(crate) struct KeyVersionCount {
    kek_version: u32,
    /// Current values under this version.
    current: u64,
    /// Older kept versions under this version.
    history: u64,
}

/// Rotation status.
#[derive(Serialize, ToSchema)]
pub(crate) struct RotationResponse {
    /// The active KEK version.
    active_version: u32,
    by_version: Vec<KeyVersionCount>,
    /// Whether an interrupted rotation left a cursor to resume from.
    pending: bool,
}

/// Values per KEK version (superuser tokens only).
#[utoipa::path(get, path = "/api/rotation", tag = "audit",
    responses((status = 200, body = RotationResponse), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn rotation(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<RotationResponse>> {
    superuser(&caller)?;
    let status = store(&state)?.rotation_status().await?;
    Ok(Json(RotationResponse {
        active_version: status.active_version,
        by_version: status
            .by_version
            .into_iter()
            .map(|(kek_version, current, history)| KeyVersionCount {
                kek_version,
                current,
                history,
            })
            .collect(),
        pending: status.pending_cursor.is_some(),
    }))
}
