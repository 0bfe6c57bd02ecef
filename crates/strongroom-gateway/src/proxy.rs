//! The streaming reverse proxy (feature `proxy`).
//!
//! Request and response bodies stream in both directions (server-sent events pass
//! through event by event). Hop-by-hop headers (RFC 9110 §7.6.1, and any listed in
//! `Connection`), `Host`, `Content-Length` and the client's `Authorization` (its token
//! to the gateway) are never forwarded. Only the route's configured templates are
//! expanded: whatever the client sends — headers, path, query, body — passes as literal
//! text. Authentication and scope checks belong to the caller (the server mounts this
//! behind its token check), so the gateway is never an open relay.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::Response;
use futures_util::TryStreamExt as _;

use crate::config::{GatewayConfig, Route};
use crate::resolve::{resolve_headers, ResolveError};
use crate::source::SecretSource;
use crate::upstream::RequestPath;

/// Headers that describe one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Request headers that ask an upstream (or a framework in front of it) to use another
/// method or path than the request line's, which would get around a route's `methods`
/// and `paths` allowlists: never forwarded.
const OVERRIDES: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-forwarded-prefix",
];

/// The proxy: routes, a secret source and one HTTP client.
pub struct Gateway {
    config: GatewayConfig,
    source: Arc<dyn SecretSource>,
    client: reqwest::Client,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("routes", &self.config.routes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why the gateway answered a request itself instead of with the upstream's response:
/// data, which the server renders in its own error shape (the gateway writes no JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status to answer.
    pub status: StatusCode,
    /// A stable reason code (`path_not_allowed`, `missing_secret`, `upstream_timeout`, ...).
    pub reason: &'static str,
    /// One sentence for the client, naming the route (never a value).
    pub message: String,
    /// The secret's name, when one was missing or unsafe to inject.
    pub secret: Option<String>,
}

impl Refusal {
    fn new(status: StatusCode, reason: &'static str, message: String) -> Self {
        Self {
            status,
            reason,
            message,
            secret: None,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

impl Gateway {
    /// A gateway over `config`, resolving secrets from `source`.
    pub fn new(
        config: GatewayConfig,
        source: Arc<dyn SecretSource>,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            config,
            source,
            client,
        })
    }

    /// The route called `name`.
    pub fn route(&self, name: &str) -> Option<&Route> {
        self.config.routes.get(name)
    }

    /// Forwards one request to `route`'s upstream: `rest` is the raw path after the route
    /// segment, taken by position from the request line (percent-encoding kept; with its
    /// leading `/`, or empty) and `query` the raw query string.
    pub async fn forward(
        &self,
        route: &Route,
        method: Method,
        rest: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Response, Refusal> {
        self.forward_with(
            self.source.as_ref(),
            route,
            method,
            rest,
            query,
            headers,
            body,
        )
        .await
    }

    /// Like [`Gateway::forward`], resolving this request's templates from `source` (the
    /// server passes the store with the calling token's name as its actor: one
    /// transaction records the request's uses before any value is rendered or sent).
    #[allow(clippy::too_many_arguments)] // the parts of one request, and its source
    pub async fn forward_with(
        &self,
        source: &dyn SecretSource,
        route: &Route,
        method: Method,
        rest: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Response, Refusal> {
        // The path and method are checked before any secret is resolved or used: a
        // refused request reads nothing, records nothing and sends nothing.
        let url = target(route, &method, rest, query)?;
        let injected = match resolve_headers(route, source).await {
            Ok(injected) => injected,
            Err(e @ (ResolveError::Missing(_) | ResolveError::Unsafe(_))) => {
                let reason = if matches!(e, ResolveError::Missing(_)) {
                    "missing_secret"
                } else {
                    "unsafe_secret"
                };
                return Err(Refusal {
                    secret: e.secret().map(str::to_owned),
                    ..Refusal::new(
                        StatusCode::BAD_GATEWAY,
                        reason,
                        format!("route {}: {e}", route.name),
                    )
                });
            }
            Err(e) => {
                return Err(Refusal::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "secret_unavailable",
                    format!("route {}: {e}", route.name),
                ))
            }
        };
        let mut outgoing = forwardable(headers);
        outgoing.remove(axum::http::header::AUTHORIZATION);
        for name in OVERRIDES {
            outgoing.remove(*name);
        }
        for (name, value) in injected {
            outgoing.insert(name, value);
        }
        let mut request = self
            .client
            .request(method, url)
            .headers(outgoing)
            .timeout(Duration::from_secs(route.timeout_seconds));
        // Stream a body only when the client sent one (a GET stays a plain GET).
        let has_body = headers.contains_key(axum::http::header::TRANSFER_ENCODING)
            || headers
                .get(axum::http::header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0");
        if has_body {
            let stream = body.into_data_stream().map_err(std::io::Error::other);
            request = request.body(reqwest::Body::wrap_stream(stream));
        }
        let upstream = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => {
                return Err(Refusal::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream_timeout",
                    format!("route {}: the upstream did not answer in time", route.name),
                ))
            }
            Err(e) => {
                tracing::warn!(route = %route.name, error = %e.without_url(), "upstream request failed");
                return Err(Refusal::new(
                    StatusCode::BAD_GATEWAY,
                    "upstream_error",
                    format!("route {}: the upstream could not be reached", route.name),
                ));
            }
        };
        let status = upstream.status();
        let response_headers = forwardable(upstream.headers());
        let mut response = Response::new(Body::from_stream(upstream.bytes_stream()));
        *response.status_mut() = status;
        *response.headers_mut() = response_headers;
        Ok(response)
    }
}

/// The upstream URL of a request to `route`, or the refusal: 400 for a path that could
/// leave the route's base (dot segments, backslashes, encoded slashes), 405 for a method
/// and 403 for a path the route does not allow.
fn target(
    route: &Route,
    method: &Method,
    rest: &str,
    query: Option<&str>,
) -> Result<reqwest::Url, Refusal> {
    if !route.allows_method(method) {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("route {}: method {method} is not allowed", route.name),
        ));
    }
    let path = RequestPath::parse(rest).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "bad_path",
            format!("route {}: {e}", route.name),
        )
    })?;
    if !route.allows_path(&path) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "path_not_allowed",
            format!("route {}: this path is not allowed", route.name),
        ));
    }
    route.upstream.join(&path, query).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "bad_path",
            format!("route {}: {e}", route.name),
        )
    })
}

/// `headers` minus hop-by-hop headers, those named in `Connection`, `Host` and
/// `Content-Length` (the body is re-framed).
fn forwardable(headers: &HeaderMap) -> HeaderMap {
    let listed: Vec<HeaderName> = headers
        .get_all(axum::http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let drop = HOP_BY_HOP.contains(&name.as_str())
            || listed.contains(name)
            || *name == axum::http::header::HOST
            || *name == axum::http::header::CONTENT_LENGTH;
        if !drop {
            out.append(name.clone(), value.clone());
        }
    }
    out
}
