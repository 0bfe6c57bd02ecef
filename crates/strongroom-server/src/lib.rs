//! # strongroom-server
//!
//! The HTTP API of Strongroom as an `axum` [`Router`]: PocketBase-compatible
//! `/api/secrets` routes, bearer tokens scoped to `namespace/env`, an audit event for
//! every plaintext read, version history, rollback, audit events, rotation status,
//! health, and an OpenAPI document generated from the handlers (`utoipa`).
//!
//! Routes and JSON shapes are documented in `docs/api.md`.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod authz;
mod connections;
mod console;
mod error;
mod extract;
mod gateway;
mod metrics;
mod openapi;
mod routes;
mod tls;
mod vault;

use std::time::Duration;

use strongroom_store::tokens::Tokens;

pub use authz::Secrets;
pub use axum::Router;
pub use connections::ConnectionLimits;
pub use console::CONTENT_SECURITY_POLICY;
pub use error::{ApiError, ErrorBody, Problem};
pub use metrics::Metrics;
pub use openapi::openapi;
pub use tls::{serve_tls, Tls};
pub use vault::operator_request;

/// Shared state of every request.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Token authentication (works without a master key).
    pub tokens: Tokens,
    /// The secrets store, reachable by handlers only through a caller ([`Secrets`]:
    /// authorization as a type); `None` when no master key is configured, in which case
    /// every secrets route answers 503 after authentication. `Some(store.into())`.
    pub store: Option<Secrets>,
    /// The gateway's routes, mounted under `/gateway/{route}/...`; `None` when no gateway
    /// configuration is given.
    pub gateway: Option<std::sync::Arc<strongroom_gateway::Gateway>>,
    /// Prometheus metrics (`GET /metrics`); `None` when off.
    pub metrics: Option<std::sync::Arc<Metrics>>,
}

/// Limits of the HTTP layer.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request body in bytes (413 beyond).
    pub max_body: usize,
    /// Longest time a request may take (408 beyond).
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: 64 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Parts of the HTTP surface that can be turned off.
#[derive(Clone, Copy, Debug)]
pub struct Surfaces {
    /// The web console at `/_/` (`serve --no-console` turns it off). On by default.
    pub console: bool,
}

impl Default for Surfaces {
    fn default() -> Self {
        Self { console: true }
    }
}

/// The router with every route (the console included), body limit, timeout and request
/// logging.
pub fn router(state: AppState, limits: Limits) -> Router {
    router_with(state, limits, Surfaces::default())
}

/// [`router`] with only the given [`Surfaces`].
///
/// The router starts the lease sweeper of this server instance (dynamic credentials end
/// on time; see `vault/database`), on the current Tokio runtime.
pub fn router_with(state: AppState, limits: Limits, surfaces: Surfaces) -> Router {
    vault::database::leases::spawn_sweeper(state.clone());
    let mut routes = routes::router()
        .merge(vault::routes())
        .route("/metrics", axum::routing::get(metrics::scrape_with_token));
    if surfaces.console {
        routes = routes.merge(console::routes());
    }
    if let Some(metrics) = &state.metrics {
        routes = routes.route_layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            metrics::track_requests,
        ));
    }
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::from_fn(api_response_headers))
        .layer(axum::extract::DefaultBodyLimit::max(limits.max_body))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(axum::middleware::from_fn(error::access_log))
}

/// Every error is JSON: an unknown path is a 404 in the API's error shape.
async fn not_found() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        "no such route (see /api/openapi.json)",
    )
}

/// A known path with a method it does not serve: 405 in the API's error shape.
async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not serve that method (see /api/openapi.json)",
    )
}

/// The router of a separate metrics address (`serve --metrics-bind`): `GET /metrics`
/// without a token. Bind it where only the scraper reaches.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics::scrape_open))
        .with_state(state)
}

/// Every `/api` and `/v1` response, errors included, is never cached (it may hold a secret value)
/// and never content-sniffed. Gateway responses are the upstream's own and pass as sent.
async fn api_response_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header::{HeaderValue, CACHE_CONTROL, X_CONTENT_TYPE_OPTIONS};
    let api = request.uri().path().starts_with("/api") || request.uri().path().starts_with("/v1/");
    let mut response = next.run(request).await;
    if api {
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    }
    response
}

/// Serves `router` on `listener` until `shutdown` completes, with the default
/// [`ConnectionLimits`]; in-flight requests get 30 seconds to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, ConnectionLimits::default(), shutdown).await
}

/// [`serve`] with explicit connection limits.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.into_std()?;
    let server = axum_server::from_tcp(listener).handle(shutdown_handle(shutdown));
    connections::limit(server, limits)
        .serve(router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .await
}

/// A handle that starts a graceful shutdown (30 s for in-flight requests) when `shutdown`
/// completes.
pub(crate) fn shutdown_handle(
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> axum_server::Handle {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(30)));
    });
    handle
}

/// The README's examples, compiled and run as a downstream crate would (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The TCP peer's address of a request (`None` when the server was not started with
/// connect info: a token bound to networks is then refused). Forwarded headers are never
/// trusted for it.
pub(crate) fn peer_ip(parts: &axum::http::request::Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip())
}
