//! The key × env grid of a namespace (`GET /api/grid`): one row per key, one cell per
//! env the token may list, each saying what a read of that key in that env would find:
//! the env's own value (`set`, `expired`, `deleted`), another env's through
//! the fallback chain (`fallback`), or nothing (`missing`). Never a value.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use strongroom_store::{SecretInfo, State as SecretState, StoreConfig};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{secrets_of, ApiResult};
use crate::extract::{ApiQuery, Caller};
use crate::AppState;

/// `/api/grid`.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(grid))
}

/// Grid query parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct GridParams {
    /// Namespace (default `default`).
    #[param(pattern = r"^[a-z0-9_-]{1,64}$")]
    namespace: Option<String>,
    /// Only keys starting with this prefix.
    prefix: Option<String>,
    /// Page of keys, from 1.
    #[param(minimum = 1)]
    page: Option<u32>,
    /// Keys per page, 1 to 500 (default 50).
    #[serde(rename = "perPage")]
    #[param(minimum = 1, maximum = 500)]
    per_page: Option<u32>,
}

/// What a read of one key in one env finds.
#[derive(Serialize, ToSchema)]
pub(crate) struct GridCell {
    env: String,
    /// `set`, `expired`, `deleted` (the env's own secret, in that state; a destroyed
    /// current version is `deleted`),
    /// `fallback` (none of its own; `from` serves it) or `missing`.
    state: &'static str,
    /// The env whose secret a read falls back to (only with `fallback`).
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    /// The serving secret's current version (absent when `missing`).
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    /// RFC 3339: when the serving secret last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    updated: Option<String>,
    /// RFC 3339: when the serving secret expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
}

/// One key and its cells, in the order of `envs`.
#[derive(Serialize, ToSchema)]
pub(crate) struct GridRow {
    key: String,
    cells: Vec<GridCell>,
}

/// `{"envs": [...], "items": [...], "total": N}`: `total` counts keys.
#[derive(Serialize, ToSchema)]
pub(crate) struct GridResponse {
    envs: Vec<String>,
    items: Vec<GridRow>,
    total: u64,
}

/// The key × env grid of a namespace, one page of keys, ordered by key. The columns are
/// the envs the token may list that hold secrets or are named by the fallback chains; an
/// env the token may not list is not a column and never serves a fallback here.
#[utoipa::path(get, path = "/api/grid", tag = "secrets", params(GridParams),
    responses((status = 200, body = GridResponse), (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn grid(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<GridParams>,
) -> ApiResult<Json<GridResponse>> {
    let scoped = secrets_of(&state)?.caller(&caller);
    let namespace = params.namespace.unwrap_or_else(|| "default".into());
    let config = scoped.config();
    config.check_namespace(&namespace)?;
    let (offset, limit) = super::secrets::page_window(params.page, params.per_page, 50)?;
    let prefix = params.prefix.unwrap_or_default();
    // One scan of the namespace: every secret in the envs the token may list, by env.
    let mut held: BTreeMap<String, BTreeMap<String, SecretInfo>> = scoped
        .listable_secrets(&namespace, &prefix)
        .await?
        .into_iter()
        .map(|(env, secrets)| {
            (
                env,
                secrets.into_iter().map(|s| (s.key.clone(), s)).collect(),
            )
        })
        .collect();
    // Envs the chains name are columns too (empty ones), where the token may list them.
    let named = std::iter::once(&config.default_env).chain(
        config
            .fallback
            .iter()
            .flat_map(|(env, chain)| std::iter::once(env).chain(chain)),
    );
    for env in named {
        if scoped.list_env(&namespace, Some(env)).is_ok() {
            held.entry(env.clone()).or_default();
        }
    }
    let keys: BTreeSet<&String> = held.values().flat_map(BTreeMap::keys).collect();
    let total = u64::try_from(keys.len()).unwrap_or(u64::MAX);
    let items = keys
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|key| GridRow {
            key: key.clone(),
            cells: held
                .keys()
                .map(|env| cell(env, key, &read_chain(config, env), &held))
                .collect(),
        })
        .collect();
    Ok(Json(GridResponse {
        envs: held.keys().cloned().collect(),
        items,
        total,
    }))
}

/// The envs a read of `env` tries, in order (only `env` itself with isolation off).
pub(crate) fn read_chain(config: &StoreConfig, env: &str) -> Vec<String> {
    if config.env_isolation {
        config.chain(env)
    } else {
        vec![env.to_owned()]
    }
}

/// What a read of `key` in `env` finds: the first env of the chain holding the key (its
/// own secret shadows a fallback whatever its state, as a read does).
fn cell(
    env: &str,
    key: &str,
    chain: &[String],
    held: &BTreeMap<String, BTreeMap<String, SecretInfo>>,
) -> GridCell {
    let serving = chain
        .iter()
        .find_map(|link| held.get(link).and_then(|secrets| secrets.get(key)));
    let Some(info) = serving else {
        return GridCell {
            env: env.to_owned(),
            state: "missing",
            from: None,
            version: None,
            updated: None,
            expires: None,
        };
    };
    let own = info.env == env;
    GridCell {
        env: env.to_owned(),
        state: match (own, info.state) {
            (false, _) => "fallback",
            (true, SecretState::Active) => "set",
            (true, other) => super::secrets::shown_state(other),
        },
        from: (!own).then(|| info.env.clone()),
        version: Some(info.version),
        updated: Some(info.updated.to_string()),
        expires: info.expires_at.map(|t| t.to_string()),
    }
}
