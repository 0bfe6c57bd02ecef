//! Who the caller is (`GET /api/session`, any token) and token management
//! (`/api/tokens`, superuser tokens): what the console and scripts need without a shell
//! on the server.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use strongroom_crypto::secrecy::ExposeSecret as _;
use strongroom_store::tokens::{Scope, TokenInfo};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{superuser, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::AppState;

/// `/api/session` and `/api/tokens`.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(session))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// The caller's own token and the envs a read falls back along.
#[derive(Serialize, ToSchema)]
pub(crate) struct Session {
    /// The token's name (the audit actor is `token:NAME`).
    name: String,
    superuser: bool,
    /// `namespace/env:capabilities`, as `token list` shows them (empty for a superuser).
    scopes: Vec<String>,
    /// The env used when none is given, and the end of every fallback chain.
    default_env: String,
    /// Configured chains: env → the envs a read tries after it. Other envs fall back to
    /// `default_env`.
    fallback: BTreeMap<String, Vec<String>>,
}

/// The caller's token: name, superuser or scopes, and the fallback chains. Never a secret.
#[utoipa::path(get, path = "/api/session", tag = "tokens",
    responses((status = 200, body = Session), (status = 401, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn session(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<Session>> {
    let (default_env, fallback) = match &state.store {
        Some(store) => (
            store.config().default_env.clone(),
            store.config().fallback.clone().into_iter().collect(),
        ),
        None => ("global".to_owned(), BTreeMap::new()),
    };
    Ok(Json(Session {
        scopes: caller.scopes.iter().map(ToString::to_string).collect(),
        name: caller.name,
        superuser: caller.superuser,
        default_env,
        fallback,
    }))
}

/// One token: never its secret.
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenItem {
    id: String,
    name: String,
    superuser: bool,
    scopes: Vec<String>,
    /// RFC 3339.
    created: String,
    /// RFC 3339; null while the token works.
    revoked: Option<String>,
    /// Whether the row's keyed tag matches; false: the row was written without the key
    /// and every request with it is refused (`strongroom doctor` says why).
    intact: bool,
    /// The public handle that looks the token up or revokes it; never usable as it.
    accessor: String,
    /// RFC 3339; null: it never expires.
    expires: Option<String>,
    /// Uses left; null: unlimited.
    uses_left: Option<u32>,
    /// How it was issued: `token`, or the path of the auth method that logged it in.
    method: String,
}

impl From<TokenInfo> for TokenItem {
    fn from(info: TokenInfo) -> Self {
        Self {
            id: info.id,
            name: info.name,
            superuser: info.superuser,
            scopes: info.scopes,
            created: info.created.to_string(),
            revoked: info.revoked.map(|t| t.to_string()),
            intact: info.intact,
            accessor: info.accessor,
            expires: info.expires.map(|t| t.to_string()),
            uses_left: info.uses_left,
            method: info.method,
        }
    }
}

/// `{"items": [...]}`, revoked tokens included.
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenList {
    items: Vec<TokenItem>,
}

/// Every stored token, revoked ones included; never a secret (superuser tokens only).
#[utoipa::path(get, path = "/api/tokens", tag = "tokens",
    responses((status = 200, body = TokenList), (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<TokenList>> {
    superuser(&caller)?;
    let items = state.tokens.list().await?;
    Ok(Json(TokenList {
        items: items.into_iter().map(TokenItem::from).collect(),
    }))
}

/// Body of `POST /api/tokens`: a superuser, or at least one scope.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateToken {
    /// 1-64 characters of `A-Z a-z 0-9 _ . -`; `admin`, `cli` and `library` are reserved.
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    name: String,
    #[serde(default)]
    superuser: bool,
    /// `namespace/env[:capability,...]`, either part may be `*`.
    #[serde(default)]
    scopes: Vec<String>,
}

/// The new token: the only time its secret is shown.
#[derive(Serialize, ToSchema)]
pub(crate) struct CreatedToken {
    id: String,
    name: String,
    /// `sr.<id>.<secret>`: shown once, stored only as a hash.
    token: String,
}

/// Creates a token and shows its secret once (superuser tokens only).
#[utoipa::path(post, path = "/api/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 200, body = CreatedToken), (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 409, body = crate::ErrorBody), (status = 415, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<CreateToken>,
) -> ApiResult<Json<CreatedToken>> {
    superuser(&caller)?;
    let scopes = body
        .scopes
        .iter()
        .map(|text| Scope::parse(text))
        .collect::<Result<Vec<_>, _>>()?;
    // Under the lease-count quotas like every other token the server issues.
    let request = strongroom_store::tokens::TokenRequest {
        name: body.name.clone(),
        superuser: body.superuser,
        scopes,
        ..strongroom_store::tokens::TokenRequest::default()
    };
    let (info, secret) =
        crate::vault::quotas::create_capped(&state, &caller.actor(), request, None).await?;
    Ok(Json(CreatedToken {
        id: info.id,
        name: info.name,
        token: secret.expose_secret().to_owned(),
    }))
}

/// Revokes the token named `name`; it stops working on the next request in every process
/// (superuser tokens only; 404 when no active token has that name).
#[utoipa::path(delete, path = "/api/tokens/{name}", tag = "tokens",
    params(("name" = String, Path, description = "The token's name")),
    responses((status = 204, description = "Revoked"), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    superuser(&caller)?;
    // No active token of that name is the store's `TokenNotFound`: 404.
    state
        .tokens
        .with_actor(&caller.actor())
        .revoke(&name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
