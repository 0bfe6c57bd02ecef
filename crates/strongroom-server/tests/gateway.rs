//! The gateway with a real upstream on loopback that records what it receives.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::IntoResponse;
use futures_util::StreamExt as _;
use strongroom_crypto::secrecy::{ExposeSecret as _, SecretString};
use strongroom_crypto::{Key, KeyRing};
use strongroom_gateway::{Gateway, GatewayConfig};
use strongroom_server::{AppState, Limits};
use strongroom_store::backend::sqlite::SqliteBackend;
use strongroom_store::tokens::{Scope, Tokens};
use strongroom_store::{KeySource, SecretId, SetRequest, Store, StoreConfig};

const ADMIN: &str = "gateway-admin-token-0123456789";

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    uri: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// An upstream that records every request; `/sse` streams three events 300 ms apart and
/// `/slow` answers after 3 s.
async fn upstream() -> (String, Log) {
    let log: Log = Arc::default();
    let recorder = log.clone();
    let app = axum::Router::new()
        .route(
            "/sse",
            axum::routing::get(|| async {
                let events = futures_util::stream::iter(0..3).then(|i| async move {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    Ok::<_, std::io::Error>(Bytes::from(format!("data: event {i}\n\n")))
                });
                (
                    [("content-type", "text/event-stream")],
                    axum::body::Body::from_stream(events),
                )
            }),
        )
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
        .fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let recorder = recorder.clone();
                async move {
                    recorder.lock().unwrap().push(Seen {
                        method,
                        uri: uri.to_string(),
                        headers,
                        body: body.to_vec(),
                    });
                    (
                        [("x-upstream", "yes"), ("connection", "close")],
                        "upstream says hi",
                    )
                        .into_response()
                }
            },
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, log)
}

struct Setup {
    base: String,
    log: Log,
    tokens: Tokens,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let (upstream, log) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(SqliteBackend::open(dir.path().join("gw.db")).unwrap());
    let tokens = Tokens::new(backend.clone(), Some(&SecretString::from(ADMIN))).unwrap();
    let store = Store::open(
        backend,
        KeySource::Ring(KeyRing::single(&Key::from_bytes(&[3; 32]))),
        StoreConfig::default(),
    )
    .await
    .unwrap();
    for (env, key, value) in [
        ("global", "OPENAI_API_KEY", "sk-upstream-123"),
        ("prod", "ORG", "org-prod"),
        ("global", "BAD", "evil\r\nX-Injected: 1"),
    ] {
        store
            .set(
                &SecretId::new("default", env, key),
                SetRequest::value(value),
            )
            .await
            .unwrap();
    }
    let config = GatewayConfig::from_toml(&format!(
        r#"
[[routes]]
name = "echo"
upstream = "{upstream}"
env = "prod"
[routes.headers]
X-Api-Key = "Bearer {{secret.OPENAI_API_KEY}}"
X-Org = "{{secret.ORG}}-{{{{literal}}"

[[routes]]
name = "missing"
upstream = "{upstream}"
[routes.headers]
X-Api-Key = "{{secret.NOT_THERE}}"

[[routes]]
name = "unsafe"
upstream = "{upstream}"
[routes.headers]
X-Api-Key = "{{secret.BAD}}"

[[routes]]
name = "slow"
upstream = "{upstream}"
timeout_seconds = 1

[[routes]]
name = "down"
upstream = "http://127.0.0.1:9"
"#
    ))
    .unwrap();
    let gateway = Gateway::new(config, Arc::new(store.clone())).unwrap();
    let state = AppState {
        tokens: tokens.clone(),
        store: Some(store),
        gateway: Some(Arc::new(gateway)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(strongroom_server::serve(
        listener,
        strongroom_server::router(state, Limits::default()),
        std::future::pending(),
    ));
    Setup {
        base,
        log,
        tokens,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

#[tokio::test]
async fn injects_exact_headers_and_forwards_client_placeholders_literally() {
    let s = setup().await;
    let response = s
        .client
        .post(format!(
            "{}/gateway/echo/v1/chat?q=%7Bsecret.OPENAI_API_KEY%7D&x=1",
            s.base
        ))
        .bearer_auth(ADMIN)
        .header("X-Client", "{secret.OPENAI_API_KEY}")
        .header("X-Api-Key", "client-tries-to-set-it")
        .header("Connection", "keep-alive, X-Drop-Me")
        .header("X-Drop-Me", "1")
        .header("Proxy-Authorization", "Basic abc")
        .header("TE", "trailers")
        .body("{\"prompt\": \"{secret.OPENAI_API_KEY}\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-upstream"], "yes");
    assert!(
        response
            .headers()
            .get("connection")
            .is_none_or(|v| v != "close"),
        "hop-by-hop response headers are dropped"
    );
    assert_eq!(response.text().await.unwrap(), "upstream says hi");
    let seen = s.log.lock().unwrap().pop().unwrap();
    assert_eq!(seen.method, Method::POST);
    assert_eq!(
        seen.uri, "/v1/chat?q=%7Bsecret.OPENAI_API_KEY%7D&x=1",
        "path and query as sent"
    );
    assert_eq!(
        seen.headers["x-api-key"], "Bearer sk-upstream-123",
        "the configured template wins"
    );
    assert_eq!(seen.headers["x-org"], "org-prod-{literal}");
    assert_eq!(
        seen.headers["x-client"], "{secret.OPENAI_API_KEY}",
        "client placeholders are literal"
    );
    assert_eq!(seen.body, b"{\"prompt\": \"{secret.OPENAI_API_KEY}\"}");
    for dropped in ["authorization", "x-drop-me", "proxy-authorization", "te"] {
        assert!(
            seen.headers.get(dropped).is_none(),
            "{dropped} reached the upstream"
        );
    }
}

#[tokio::test]
async fn missing_or_unsafe_secrets_fail_before_anything_is_sent() {
    let s = setup().await;
    let response = s
        .client
        .get(format!("{}/gateway/missing/x", s.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["data"]["reason"], "missing_secret");
    assert_eq!(body["data"]["secret"], "NOT_THERE");
    let response = s
        .client
        .get(format!("{}/gateway/unsafe/x", s.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("unsafe_secret") && text.contains("BAD") && !text.contains("evil"),
        "{text}"
    );
    assert!(s.log.lock().unwrap().is_empty(), "nothing was forwarded");
    assert!(
        gateway_reads(&s).await.is_empty(),
        "a refused request used no value"
    );
}

/// `(actor, env, key)` of every `gateway_read` audit event, sorted.
async fn gateway_reads(s: &Setup) -> Vec<(String, String, String)> {
    let audit: serde_json::Value = s
        .client
        .get(format!("{}/api/audit?action=gateway_read", s.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!audit.to_string().contains("sk-upstream-123"));
    let mut used: Vec<(String, String, String)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let field = |name: &str| e[name].as_str().unwrap().to_owned();
            (field("actor"), field("env"), field("key"))
        })
        .collect();
    used.sort();
    used
}

#[tokio::test]
async fn the_gateway_is_no_open_relay() {
    let s = setup().await;
    let url = format!("{}/gateway/echo/anything", s.base);
    assert_eq!(s.client.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        s.client
            .get(&url)
            .bearer_auth("nope")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let (_, staging) = s
        .tokens
        .create(
            "staging-app",
            false,
            &[Scope::parse("default/staging").unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(
        s.client
            .get(&url)
            .bearer_auth(staging.expose_secret())
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let (_, prod) = s
        .tokens
        .create("prod-app", false, &[Scope::parse("default/prod").unwrap()])
        .await
        .unwrap();
    assert_eq!(
        s.client
            .get(&url)
            .bearer_auth(prod.expose_secret())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        s.client
            .get(format!("{}/gateway/nowhere/x", s.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(s.log.lock().unwrap().len(), 1);
    // Each injected secret of the one forwarded request is a `gateway_read` event under the
    // token's name, with the env that served it; refused requests used nothing.
    let used = gateway_reads(&s).await;
    assert_eq!(
        used,
        [
            ("prod-app".into(), "global".into(), "OPENAI_API_KEY".into()),
            ("prod-app".into(), "prod".into(), "ORG".into()),
        ]
    );
}

#[tokio::test]
async fn server_sent_events_stream_unbuffered() {
    let s = setup().await;
    let start = Instant::now();
    let response = s
        .client
        .get(format!("{}/gateway/echo/sse", s.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    let mut arrivals = Vec::new();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        arrivals.push(start.elapsed());
    }
    assert_eq!(text, "data: event 0\n\ndata: event 1\n\ndata: event 2\n\n");
    assert!(
        arrivals.len() >= 3,
        "events arrived one by one: {arrivals:?}"
    );
    assert!(
        arrivals[0] < Duration::from_millis(250),
        "the first event came before the upstream finished: {arrivals:?}"
    );
    assert!(*arrivals.last().unwrap() >= Duration::from_millis(550));
}

#[tokio::test]
async fn upstream_timeouts_and_failures_map_to_504_and_502() {
    let s = setup().await;
    let response = s
        .client
        .get(format!("{}/gateway/slow/slow", s.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    let response = s
        .client
        .get(format!("{}/gateway/down/x", s.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["data"]["reason"], "upstream_error");
}
