//! The gateway mounted on the server: `ANY /gateway/{route}/{*rest}`.
//!
//! The caller needs a token whose scope covers the route's namespace and env, so the
//! gateway is no open relay. The client's own `Authorization` is never forwarded.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse as _, Response};

use crate::extract::Caller;
use crate::{ApiError, AppState};

/// `ANY /gateway/{route}`.
pub(crate) async fn forward_root(
    state: State<AppState>,
    caller: Caller,
    Path(route): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    proxy(&state, &caller, &route, "", method, &uri, &headers, body).await
}

/// `ANY /gateway/{route}/{*rest}`.
pub(crate) async fn forward(
    state: State<AppState>,
    caller: Caller,
    Path((route, rest)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    proxy(
        &state,
        &caller,
        &route,
        &format!("/{rest}"),
        method,
        &uri,
        &headers,
        body,
    )
    .await
}

#[allow(clippy::too_many_arguments)] // the parts of one request
async fn proxy(
    state: &AppState,
    Caller(caller): &Caller,
    route: &str,
    rest: &str,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let Some(gateway) = &state.gateway else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no gateway routes are configured",
        )
        .into_response();
    };
    let Some(route) = gateway.route(route) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no gateway route named {route:?}"),
        )
        .into_response();
    };
    if !caller.covers(&route.namespace, &route.env) {
        return ApiError::forbidden(format!(
            "this token does not cover {}/{} (gateway route {})",
            route.namespace, route.env, route.name
        ))
        .into_response();
    }
    // The raw path after the route name, as the client sent it (percent-encoding kept).
    let raw_rest = uri
        .path()
        .split_once(&format!("/gateway/{}", route.name))
        .map_or(rest, |(_, after)| after);
    // Every injected secret is a `gateway_read` audit event under the token's name. The
    // route's env chain is the route's configuration (docs/api.md), not the caller's scope.
    let Some(store) = &state.store else {
        return ApiError::disabled().into_response();
    };
    let source = strongroom_gateway::RequestSource::new(store.with_actor(&caller.name));
    gateway
        .forward_with(&source, route, method, raw_rest, uri.query(), headers, body)
        .await
}
