//! The web console at `/_/`: six files embedded in the binary (no JavaScript toolchain,
//! nothing fetched from another origin), served with a strict Content-Security-Policy.
//! The console signs in with an API token and calls `/api` like any client, so scopes,
//! capabilities and the audit apply unchanged (docs/console.md).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::AppState;

/// Scripts, styles and connections from this origin only; no inline script or style, no
/// plugins, no framing, no form posts elsewhere, no `<base>` tricks.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

const INDEX: &str = include_str!("../console/index.html");
/// The ES modules, by file name: the entry point and the three it imports.
const SCRIPTS: [(&str, &str); 4] = [
    ("console.js", include_str!("../console/console.js")),
    ("lib.js", include_str!("../console/lib.js")),
    ("grid.js", include_str!("../console/grid.js")),
    ("detail.js", include_str!("../console/detail.js")),
];
const STYLE: &str = include_str!("../console/console.css");

/// `GET /_/` and its assets; `/_` redirects to `/_/`.
pub(crate) fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for (name, script) in SCRIPTS {
        router = router.route(
            &format!("/_/{name}"),
            get(move || async move { asset(script, "text/javascript; charset=utf-8") }),
        );
    }
    router
        .route("/_", get(|| async { Redirect::permanent("/_/") }))
        .route(
            "/_/",
            get(|| async { asset(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/_/console.css",
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), payment=()",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
