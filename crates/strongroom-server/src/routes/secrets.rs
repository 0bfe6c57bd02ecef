//! Secrets: create, list, read (audited), update, delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use strongroom_crypto::secrecy::ExposeSecret as _;
use strongroom_store::{parse_duration, Expiry, ListQuery, MetaUpdate, SetRequest};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{secrets_of, ApiResult};
pub(crate) use crate::extract::TargetQuery;
use crate::extract::{ApiJson, ApiQuery, Caller, SecretRequest};
use crate::{ApiError, AppState};

/// `/api/secrets` and `/api/secrets/{key}`.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_secrets, create_secret))
        .routes(routes!(get_secret, update_secret, delete_secret))
}

/// Query of the namespace (default `default`).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct NamespaceQuery {
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
    /// Check-and-set: write only if the secret is at this version now (0: only if it does
    /// not exist); otherwise 409 and nothing is written.
    #[schema(minimum = 0)]
    cas: Option<u32>,
    /// Expires this long from now (`30m`, `12h`, `90d`, `1w`); omitted: never.
    ttl: Option<String>,
}

/// A `ttl` text as an expiry; 400 for anything but a positive duration.
fn expiry_of(ttl: Option<&str>) -> ApiResult<Expiry> {
    match ttl {
        None => Ok(Expiry::Keep),
        Some(text) => match parse_duration(text) {
            Ok(duration) if !duration.is_zero() => Ok(Expiry::In(duration)),
            _ => Err(ApiError::bad_request(
                "ttl: expected a duration such as 30m, 12h, 90d or 1w",
            )),
        },
    }
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
        (status = 403, body = crate::ErrorBody), (status = 409, body = crate::ErrorBody), (status = 413, body = crate::ErrorBody),
        (status = 415, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<NamespaceQuery>,
    ApiJson(body): ApiJson<CreateSecret>,
) -> ApiResult<Json<Saved>> {
    let scoped = secrets_of(&state)?.caller(&caller);
    let id = scoped.secret_id(query.namespace.as_deref(), body.env.as_deref(), &body.key)?;
    let request = SetRequest {
        description: body.description,
        expected_version: body.cas,
        expiry: expiry_of(body.ttl.as_deref())?,
        ..SetRequest::value(body.value)
    };
    scoped.write(&id)?.set(request).await?;
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
    /// Also `version`, `state` and `expires` per item.
    details: Option<bool>,
    /// What `env` serves (needs `env`): its own secrets and, for each key it does not
    /// hold, the one of the first env of its fallback chain that does (among the envs the
    /// token may list), ordered by key and paged on the server; each item's `env` is where
    /// it comes from.
    served: Option<bool>,
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
    /// The current version (only with `?details=true`: the default shape is
    /// PocketBase's, field for field).
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    /// `active`, `expired` or `deleted` (the current version soft-deleted or destroyed;
    /// the history tells which), only with `?details=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    /// RFC 3339, null when it never expires (only with `?details=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    #[allow(clippy::option_option)] // absent without `details`; null: never expires
    expires: Option<Option<String>>,
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
    let scoped = secrets_of(&state)?.caller(&caller);
    let namespace = params.namespace.unwrap_or_else(|| "default".into());
    scoped.config().check_namespace(&namespace)?;
    let env = match params.env {
        Some(env) => Some(scoped.secret_id(Some(&namespace), Some(&env), "_")?.env),
        None => None,
    };
    let listing = scoped.list_env(&namespace, env.as_deref())?;
    let details = params.details.unwrap_or(false);
    let (offset, limit) = page_window(params.page, params.per_page, 30)?;
    let listed = if params.served.unwrap_or(false) {
        let env = env.ok_or_else(|| ApiError::bad_request("served needs env"))?;
        served(&scoped, &namespace, &env, params.prefix, offset, limit).await?
    } else {
        listing
            .page(ListQuery {
                prefix: params.prefix,
                limit: Some(limit),
                offset: Some(offset),
                ..ListQuery::default()
            })
            .await?
    };
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
            version: details.then_some(i.version),
            state: details.then(|| shown_state(i.state).to_owned()),
            expires: details.then(|| i.expires_at.map(|t| t.to_string())),
        })
        .collect();
    Ok(Json(ListResponse {
        items,
        total: listed.total,
    }))
}

/// `(offset, limit)` of a `page` (from 1) of `per_page` items (1 to 500, else
/// `default`); 400 for anything else.
pub(crate) fn page_window(
    page: Option<u32>,
    per_page: Option<u32>,
    default: u32,
) -> ApiResult<(usize, usize)> {
    let per_page = per_page.unwrap_or(default);
    let page = page.unwrap_or(1);
    if !(1..=500).contains(&per_page) || page == 0 {
        return Err(ApiError::bad_request(
            "page starts at 1; perPage must be 1 to 500",
        ));
    }
    let offset = usize::try_from(u64::from(page - 1) * u64::from(per_page)).unwrap_or(usize::MAX);
    Ok((offset, per_page as usize))
}

/// A secret's state as the API lists it: `active`, `expired` or `deleted` (a destroyed
/// current version is unreadable as a deleted one is; the history tells them apart).
pub(crate) fn shown_state(state: strongroom_store::State) -> &'static str {
    match state {
        strongroom_store::State::Destroyed => "deleted",
        other => other.as_str(),
    }
}

/// What `env` serves, one page of it: every key of its chain's envs the caller may list,
/// each from the first env of the chain that holds it (the env's own secret shadows a
/// fallback whatever its state, as a read does).
async fn served(
    scoped: &crate::authz::Scoped<'_>,
    namespace: &str,
    env: &str,
    prefix: Option<String>,
    offset: usize,
    limit: usize,
) -> ApiResult<strongroom_store::Page<strongroom_store::SecretInfo>> {
    let chain = super::grid::read_chain(scoped.config(), env);
    let mut by_key = std::collections::BTreeMap::new();
    for link in &chain {
        // The requested env was checked by the caller; the others are left out unless
        // the token may list them (a fallback it can not see is not shown).
        let Ok(listing) = scoped.list_env(namespace, Some(link)) else {
            continue;
        };
        for item in listing.all(prefix.as_deref().unwrap_or_default()).await? {
            by_key.entry(item.key.clone()).or_insert(item);
        }
    }
    let total = u64::try_from(by_key.len()).unwrap_or(u64::MAX);
    Ok(strongroom_store::Page {
        items: by_key.into_values().skip(offset).take(limit).collect(),
        total,
        next_cursor: None,
    })
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
pub(crate) async fn get_secret(request: SecretRequest) -> ApiResult<Json<SecretValue>> {
    let scoped = request.scoped();
    let id = request.id()?;
    // No audit event, no value: committing the read records it before the value exists
    // here (a value that is not text is then refused, the read still recorded).
    let secret = scoped.read(&id)?.get_in_scope().await?.commit().await?;
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
    /// Expires this long from now (`30m`, `12h`, `90d`, `1w`); omitted keeps the expiry.
    ttl: Option<String>,
}

/// Updates a secret's value and/or description. With a `value` on a missing key, creates it.
#[utoipa::path(put, path = "/api/secrets/{key}", tag = "secrets", params(("key" = String, Path, description = "The secret's key", pattern = r"^[A-Za-z0-9_.-]{1,256}$"), TargetQuery),
    request_body = UpdateSecret,
    responses((status = 200, body = Saved), (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 413, body = crate::ErrorBody),
        (status = 415, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn update_secret(
    request: SecretRequest,
    ApiJson(body): ApiJson<UpdateSecret>,
) -> ApiResult<Json<Saved>> {
    let scoped = request.scoped();
    let id = request.id_in(body.env.as_deref())?;
    let grant = scoped.write(&id)?;
    let expiry = expiry_of(body.ttl.as_deref())?;
    let created = match (body.value, body.description) {
        (Some(value), description) => {
            grant
                .set(SetRequest {
                    description,
                    expiry,
                    ..SetRequest::value(value)
                })
                .await?
                .created
        }
        (None, description) if description.is_some() || body.ttl.is_some() => {
            grant
                .update_meta(MetaUpdate {
                    description,
                    expiry,
                    ..MetaUpdate::default()
                })
                .await?;
            false
        }
        (None, _) => {
            return Err(ApiError::bad_request(
                "nothing to update: give a value, a description and/or a ttl",
            ))
        }
    };
    Ok(Json(Saved {
        key: id.key,
        env: id.env,
        message: if created {
            "secret created"
        } else {
            "secret updated"
        }
        .into(),
    }))
}

/// Deletes a secret and its versions.
#[utoipa::path(delete, path = "/api/secrets/{key}", tag = "secrets", params(("key" = String, Path, description = "The secret's key", pattern = r"^[A-Za-z0-9_.-]{1,256}$"), TargetQuery),
    responses((status = 204, description = "Deleted"), (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn delete_secret(request: SecretRequest) -> ApiResult<impl IntoResponse> {
    let scoped = request.scoped();
    let id = request.id()?;
    scoped.delete(&id)?.delete().await?;
    Ok(StatusCode::NO_CONTENT)
}
