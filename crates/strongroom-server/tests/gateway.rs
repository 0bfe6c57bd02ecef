//! The gateway with a real upstream on loopback that records what it receives.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

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
    let (base, tokens, dir) = start_gateway(
        config,
        &[
            ("global", "OPENAI_API_KEY", "sk-upstream-123"),
            ("prod", "ORG", "org-prod"),
            ("global", "BAD", "evil\r\nX-Injected: 1"),
        ],
    )
    .await;
    Setup {
        base,
        log,
        tokens,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

/// A real server on loopback with `config`'s routes, over a fresh SQLite store holding
/// `secrets` (`(env, key, value)`): its base URL, its tokens, and the directory to keep.
async fn start_gateway(
    config: GatewayConfig,
    secrets: &[(&str, &str, &str)],
) -> (String, Tokens, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(SqliteBackend::open(dir.path().join("gw.db")).unwrap());
    let store = Store::open(
        backend,
        KeySource::Ring(KeyRing::single(&Key::from_bytes(&[3; 32]))),
        StoreConfig::default(),
    )
    .await
    .unwrap();
    let tokens = Tokens::new(&store, Some(&SecretString::from(ADMIN))).unwrap();
    for (env, key, value) in secrets {
        store
            .set(
                &SecretId::new("default", *env, *key),
                SetRequest::value(*value),
            )
            .await
            .unwrap();
    }
    let gateway = Gateway::new(config, Arc::new(store.clone())).unwrap();
    let state = AppState {
        tokens: tokens.clone(),
        store: Some(store.into()),
        gateway: Some(Arc::new(gateway)),
        metrics: Some(Arc::new(strongroom_server::Metrics::new())),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(strongroom_server::serve(
        listener,
        strongroom_server::router(state, Limits::default()),
        std::future::pending(),
    ));
    (base, tokens, dir)
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
async fn the_route_alone_and_an_empty_rest_reach_the_upstream_root() {
    let s = setup().await;
    for (path, expected) in [("/gateway/echo/", "/"), ("/gateway/echo/?x=1", "/?x=1")] {
        let response = s
            .client
            .get(format!("{}{path}", s.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.text().await.unwrap(), "upstream says hi");
        let seen = s.log.lock().unwrap().pop().unwrap();
        assert_eq!(seen.uri, expected, "{path}");
        assert_eq!(seen.headers["x-api-key"], "Bearer sk-upstream-123");
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
    // The missing secret's request recorded nothing; the unsafe one was opened for the
    // request (its use committed before the header was built), so its read is on record.
    let reads = gateway_reads(&s).await;
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0].2, "BAD");
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
            (
                "token:prod-app".into(),
                "global".into(),
                "OPENAI_API_KEY".into()
            ),
            ("token:prod-app".into(), "prod".into(), "ORG".into()),
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

/// Sends `method path` exactly as written (no client-side normalisation of `..` or
/// escapes) and returns the status code and body.
async fn raw_request(base: &str, method: &str, path: &str, token: &str) -> (u16, String) {
    common::raw_request(
        base,
        method,
        path,
        &format!("Authorization: Bearer {token}"),
    )
    .await
}

/// The attacks of the adversarial review, against a real server: a repeated route name
/// that used to steer the credential to another host, dot segments in every spelling
/// that used to escape the route's base path, and methods or paths a route does not
/// allow. Nothing reaches the attacker; refused requests send nothing and use nothing.
#[tokio::test]
async fn the_upstream_can_not_be_steered_to_another_host_or_path() {
    let (attacker, attacker_log) = upstream().await;
    let (upstream, log) = upstream().await;
    let attacker_host = attacker.trim_start_matches("http://");
    let config = GatewayConfig::from_toml(&format!(
        r#"
[[routes]]
name = "openai"
upstream = "{upstream}/base"
[routes.headers]
Authorization = "Bearer {{secret.OPENAI_API_KEY}}"

[[routes]]
name = "ro"
upstream = "{upstream}/ro"
methods = ["GET"]
paths = ["/v1/models"]
[routes.headers]
Authorization = "Bearer {{secret.OPENAI_API_KEY}}"
"#
    ))
    .unwrap();
    let (base, tokens, _dir) =
        start_gateway(config, &[("global", "OPENAI_API_KEY", "sk-upstream-123")]).await;
    let (_, scoped) = tokens
        .create(
            "route-user",
            false,
            &[Scope::parse("default/global").unwrap()],
        )
        .await
        .unwrap();
    let token = scoped.expose_secret().to_owned();

    // 1. The route name spelled with an escape, and the real name repeated later with the
    // attacker's host glued on: the rest is taken by position and stays on the upstream.
    let (status, _) = raw_request(
        &base,
        "GET",
        &format!("/gateway/opena%69/gateway/openai@{attacker_host}/x"),
        &token,
    )
    .await;
    assert_eq!(status, 200);
    let seen = log.lock().unwrap().pop().unwrap();
    assert_eq!(
        seen.uri,
        format!("/base/gateway/openai@{attacker_host}/x"),
        "forwarded under the base path, on the configured host"
    );
    // 2. Dot segments and their spellings, backslashes and encoded slashes: 400, nothing sent.
    for path in [
        "/gateway/openai/../../admin",
        "/gateway/openai/..",
        "/gateway/openai/%2e%2e/%2e%2e/admin",
        "/gateway/openai/%2E%2E/admin",
        "/gateway/openai/.%2e/admin",
        "/gateway/openai/%252e%252e/admin",
        "/gateway/openai/x/%2e",
        "/gateway/openai/..%5cadmin",
        "/gateway/openai/a%2f..%2fadmin",
        "/gateway/openai/a\\..\\admin",
    ] {
        let (status, body) = raw_request(&base, "GET", path, &token).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(!body.contains("sk-upstream-123"));
    }
    // 3. Methods and paths outside the route's allowlists; TRACE never.
    for (method, path, expected) in [
        ("POST", "/gateway/ro/v1/models", 405),
        ("TRACE", "/gateway/openai/x", 405),
        ("GET", "/gateway/ro/v1/admin", 403),
        ("GET", "/gateway/ro/v1/modelsx", 403),
        ("GET", "/gateway/ro/v1/models/gpt", 200),
    ] {
        let (status, body) = raw_request(&base, method, path, &token).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
    }
    let seen = log.lock().unwrap().pop().unwrap();
    assert_eq!(seen.uri, "/ro/v1/models/gpt");
    // Method and path override headers (which some frameworks honour) do not travel.
    let response = reqwest::Client::new()
        .get(format!("{base}/gateway/ro/v1/models"))
        .bearer_auth(&token)
        .header("X-HTTP-Method-Override", "DELETE")
        .header("X-Original-URL", "/admin")
        .header("X-Rewrite-URL", "/admin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = log.lock().unwrap().pop().unwrap();
    for name in ["x-http-method-override", "x-original-url", "x-rewrite-url"] {
        assert!(seen.headers.get(name).is_none(), "{name} was forwarded");
    }

    assert!(
        log.lock().unwrap().is_empty(),
        "refused requests sent nothing"
    );
    assert!(
        attacker_log.lock().unwrap().is_empty(),
        "nothing ever reached the attacker"
    );
    // Three requests were forwarded; each used the one secret once. Refusals used nothing.
    let audit = store_gateway_reads(&base).await;
    assert_eq!(audit, 3, "one gateway_read per forwarded request");
}

async fn store_gateway_reads(base: &str) -> usize {
    let audit: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/audit?action=gateway_read"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    audit["items"].as_array().unwrap().len()
}

/// Use without reveal: a `use`-only token makes the gateway inject the key (here from
/// `global`, by the route's fallback) while no route returns the key to it; a token that
/// may read but not use can not call the gateway. The audit names the token.
#[tokio::test]
async fn a_use_only_token_injects_a_key_it_can_never_read() {
    let s = setup().await;
    let (_, agent) = s
        .tokens
        .create(
            "ai-agent",
            false,
            &[Scope::parse("default/prod:use").unwrap()],
        )
        .await
        .unwrap();
    let agent = agent.expose_secret().to_owned();
    let response = s
        .client
        .get(format!("{}/gateway/echo/v1/chat", s.base))
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = s.log.lock().unwrap().pop().unwrap();
    assert_eq!(
        seen.headers.get("x-api-key").and_then(|v| v.to_str().ok()),
        Some("Bearer sk-upstream-123"),
        "the global value was injected through the prod route"
    );
    // Nothing returns the value (or even its name list) to the agent.
    for (method, path) in [
        ("GET", "/api/secrets/OPENAI_API_KEY?env=prod"),
        ("GET", "/api/secrets/OPENAI_API_KEY?env=global"),
        ("GET", "/api/secrets/ORG?env=prod"),
        ("GET", "/api/secrets?env=prod"),
        ("GET", "/api/secrets/ORG/history?env=prod"),
        ("GET", "/api/audit"),
    ] {
        let response = s
            .client
            .request(method.parse().unwrap(), format!("{}{path}", s.base))
            .bearer_auth(&agent)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert!(!body.contains("sk-upstream-123") && !body.contains("org-prod"));
    }
    // A token that may read prod (and global) but not use them is refused by the gateway,
    // with the capability named.
    let (_, reader) = s
        .tokens
        .create(
            "reader",
            false,
            &[
                Scope::parse("default/prod:read,list").unwrap(),
                Scope::parse("default/global:read").unwrap(),
            ],
        )
        .await
        .unwrap();
    let response = s
        .client
        .get(format!("{}/gateway/echo/v1/chat", s.base))
        .bearer_auth(reader.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("use"));
    assert!(s.log.lock().unwrap().is_empty(), "nothing was forwarded");
    assert_eq!(
        gateway_reads(&s).await,
        [
            (
                "token:ai-agent".into(),
                "global".into(),
                "OPENAI_API_KEY".into()
            ),
            ("token:ai-agent".into(), "prod".into(), "ORG".into()),
        ]
    );
}

/// Tokens as identities on the gateway and `/metrics`: an expired token and a used-up one
/// get exactly what an unknown token gets (401, the same body), and a refused request
/// spends no use.
#[tokio::test]
async fn expired_and_used_up_tokens_are_refused_like_unknown_ones() {
    use strongroom_store::tokens::TokenRequest;
    let s = setup().await;
    let make = |name: &str, ttl: Option<Duration>, uses: u32| {
        let tokens = s.tokens.clone();
        let name = name.to_owned();
        async move {
            let (_, secret) = tokens
                .create_with(
                    TokenRequest {
                        name,
                        superuser: true,
                        ttl,
                        num_uses: uses,
                        ..TokenRequest::default()
                    },
                    None,
                )
                .await
                .unwrap();
            secret.expose_secret().to_owned()
        }
    };
    let brief = make("brief", Some(Duration::from_secs(1)), 0).await;
    let once = make("once", None, 1).await;
    let call = |path: &str, token: &str| {
        s.client
            .get(format!("{}{path}", s.base))
            .bearer_auth(token)
            .send()
    };
    let unknown = call("/gateway/echo/x", "sr.000000000000.unknown")
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    let unknown_body = unknown.text().await.unwrap();
    assert_eq!(call("/gateway/echo/x", &once).await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for token in [&brief, &once] {
        for path in ["/gateway/echo/x", "/metrics", "/api/secrets?env=prod"] {
            let refused = call(path, token).await.unwrap();
            assert_eq!(refused.status(), 401, "{path}");
            if path.starts_with("/gateway") {
                assert_eq!(refused.text().await.unwrap(), unknown_body, "{path}");
            }
        }
    }
    assert!(
        s.log.lock().unwrap().len() <= 1,
        "a refused token reached the upstream"
    );
}
