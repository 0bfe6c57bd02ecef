//! The gateway mounted on the server: `ANY /gateway/{route}/{*rest}`.
//!
//! The caller needs a token with the `use` capability on the route's namespace and env,
//! so the gateway is no open relay, and a `use`-only token injects what it can not read. The client's own `Authorization` is never forwarded.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse as _, Response};

use crate::extract::Caller;
use crate::{ApiError, AppState};

/// `/gateway/{route}`, `/gateway/{route}/` and `/gateway/{route}/{*rest}`, any method.
/// (Undocumented in the OpenAPI document: their shape is the upstream's.)
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .route("/gateway/{route}", axum::routing::any(forward_root))
        // An empty rest (`/gateway/svc/`) is the upstream's `/`, not a 404.
        .route("/gateway/{route}/", axum::routing::any(forward_root))
        .route("/gateway/{route}/{*rest}", axum::routing::any(forward))
}

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
    proxy(&state, &caller, &route, method, &uri, &headers, body).await
}

/// `ANY /gateway/{route}/{*rest}`.
pub(crate) async fn forward(
    state: State<AppState>,
    caller: Caller,
    Path((route, _rest)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    proxy(&state, &caller, &route, method, &uri, &headers, body).await
}

#[allow(clippy::too_many_arguments)] // the parts of one request
async fn proxy(
    state: &AppState,
    Caller(caller): &Caller,
    route: &str,
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
    // No store (no key): 503 after the token and the route were checked.
    let Some(secrets) = &state.store else {
        return ApiError::disabled().into_response();
    };
    // `use`, and only `use`: the route's env chain is its configuration, so a value that
    // falls back to `global` is injected under the route's env's capability.
    let scoped = secrets.caller(caller);
    let source = match scoped.use_env(&route.namespace, &route.env, &route.name) {
        Ok(source) => source,
        Err(denied) => return ApiError::from(denied).into_response(),
    };
    // The raw path after the route segment, by position (percent-encoding kept): never
    // found by searching the path for the route's name, which a client can repeat later.
    let Some(raw_rest) = raw_rest(uri.path()) else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_path",
            "malformed gateway path",
        )
        .into_response();
    };
    // Every injected secret is a `gateway_read` audit event under the token's name. The
    // route's env chain is the route's configuration (docs/api.md), not the caller's scope.
    let started = std::time::Instant::now();
    let response = match gateway
        .forward_with(source, route, method, raw_rest, uri.query(), headers, body)
        .await
    {
        Ok(response) => response,
        Err(refusal) => ApiError::from(refusal).into_response(),
    };
    if let Some(metrics) = &state.metrics {
        // The route's configured name: configuration, never a secret or a client path.
        metrics.gateway_request(
            &route.name,
            started.elapsed().as_secs_f64(),
            response.status(),
        );
    }
    response
}

/// The raw path after `/gateway/{route}` in `path` (as sent, percent-encoding kept), taken
/// by position: everything after the first `/` that follows the route segment, with that
/// `/`; empty when the request names the route only.
fn raw_rest(path: &str) -> Option<&str> {
    let after_mount = path.strip_prefix("/gateway/")?;
    Some(match after_mount.find('/') {
        Some(slash) => &after_mount[slash..],
        None => "",
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn the_rest_is_taken_by_position() {
        assert_eq!(
            super::raw_rest("/gateway/opena%69/gateway/openai@attacker.example/x"),
            Some("/gateway/openai@attacker.example/x")
        );
        assert_eq!(super::raw_rest("/gateway/svc"), Some(""));
        assert_eq!(super::raw_rest("/gateway/svc/"), Some("/"));
        assert_eq!(super::raw_rest("/other"), None);
    }
}
