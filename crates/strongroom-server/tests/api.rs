//! The HTTP API with a real server on a loopback port, a real SQLite file and a real HTTP
//! client: every route, every status code, the JSON shapes field by field, scopes,
//! revocation, audit of reads, and no plaintext in list responses or logs.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report; flows read top to bottom

use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::StatusCode;
use serde_json::{json, Value};
use strongroom_crypto::secrecy::{ExposeSecret as _, SecretString};
use strongroom_crypto::{Key, KeyRing};
use strongroom_server::{AppState, Limits};
use strongroom_store::backend::sqlite::SqliteBackend;
use strongroom_store::tokens::{Scope, Tokens};
use strongroom_store::{KeySource, SecretId, SetRequest, Store, StoreConfig};

const ADMIN: &str = "admin-token-for-tests-0123456789";

/// Everything the server logs, across the tests of this binary.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buffer
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Server {
    base: String,
    client: reqwest::Client,
    tokens: Tokens,
    store: Option<Store>,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start(with_key: bool, limits: Limits) -> Server {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(SqliteBackend::open(dir.path().join("api.db")).unwrap());
    let store = if with_key {
        let ring = KeyRing::single(&Key::from_bytes(&[7; 32]));
        Some(
            Store::open(
                backend.clone(),
                KeySource::Ring(ring),
                StoreConfig::default(),
            )
            .await
            .unwrap(),
        )
    } else {
        None
    };
    let admin = Some(&SecretString::from(ADMIN));
    let tokens = match &store {
        Some(store) => Tokens::new(store, admin).unwrap(),
        None => Tokens::admin_only(backend, admin).unwrap(),
    };
    let router = strongroom_server::router(
        AppState {
            tokens: tokens.clone(),
            store: store.clone().map(Into::into),
            gateway: None,
            metrics: Some(Arc::new(strongroom_server::Metrics::new())),
        },
        limits,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel();
    tokio::spawn(strongroom_server::serve(listener, router, async {
        let _ = stopped.await;
    }));
    Server {
        base,
        client: reqwest::Client::new(),
        tokens,
        store,
        dir,
        stop: Some(stop),
    }
}

impl Server {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, json)
    }

    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(method, path, Some(ADMIN), body).await
    }

    async fn scoped(&self, name: &str, scopes: &[&str]) -> String {
        let scopes: Vec<Scope> = scopes.iter().map(|s| Scope::parse(s).unwrap()).collect();
        let (_, token) = self.tokens.create(name, false, &scopes).await.unwrap();
        token.expose_secret().to_owned()
    }
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(keys(body), ["data", "message", "status"], "{body}");
    assert_eq!(body["status"], expected.as_u16());
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(body["data"].is_object());
}

#[tokio::test]
async fn health_and_openapi_need_no_token() {
    let server = start(true, Limits::default()).await;
    let (status, body) = server.call("GET", "/api/health", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, doc) = server.call("GET", "/api/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/secrets",
        "/api/secrets/{key}",
        "/api/secrets/{key}/history",
        "/api/secrets/{key}/rollback",
        "/api/audit",
        "/api/rotation",
        "/api/health",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn every_protected_route_answers_401_without_a_valid_token() {
    let server = start(true, Limits::default()).await;
    let routes = [
        ("GET", "/api/secrets"),
        ("POST", "/api/secrets"),
        ("GET", "/api/secrets/K"),
        ("PUT", "/api/secrets/K"),
        ("DELETE", "/api/secrets/K"),
        ("GET", "/api/secrets/K/history"),
        ("POST", "/api/secrets/K/rollback"),
        ("POST", "/api/secrets/K/copy"),
        ("POST", "/api/secrets/K/move"),
        ("POST", "/api/secrets/K/versions/delete"),
        ("GET", "/api/secrets/K/settings"),
        ("PUT", "/api/secrets/K/settings"),
        ("GET", "/api/audit"),
        ("GET", "/api/rotation"),
    ];
    for (method, path) in routes {
        for token in [None, Some("wrong"), Some("sr.0123456789ab.nope"), Some("")] {
            let (status, body) = server
                .call(
                    method,
                    path,
                    token,
                    Some(json!({"key": "K", "value": "v", "version": 1})),
                )
                .await;
            assert_error(status, &body, StatusCode::UNAUTHORIZED);
        }
    }
}

/// The requests PocketBase's secrets API documents, with the same response fields.
#[tokio::test]
async fn pocketbase_compatible_flow() {
    let server = start(true, Limits::default()).await;
    // Create.
    let (status, body) = server
        .admin(
            "POST",
            "/api/secrets",
            Some(json!({"key": "OPENAI_API_KEY", "value": "sk-test-1", "description": "OpenAI"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&body), ["env", "key", "message"]);
    assert_eq!(
        (body["key"].as_str(), body["env"].as_str()),
        (Some("OPENAI_API_KEY"), Some("global"))
    );
    server
        .admin(
            "POST",
            "/api/secrets",
            Some(json!({"key": "OPENAI_API_KEY", "value": "sk-prod", "env": "prod"})),
        )
        .await;

    // List: masked items with exactly the documented fields.
    let (status, body) = server.admin("GET", "/api/secrets", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&body), ["items", "total"]);
    assert_eq!(body["total"], 2);
    for item in body["items"].as_array().unwrap() {
        assert_eq!(
            keys(item),
            [
                "created",
                "description",
                "env",
                "id",
                "key",
                "masked_value",
                "updated"
            ]
        );
        assert_eq!(item["masked_value"], "********");
    }
    let text = body.to_string();
    assert!(!text.contains("sk-test-1") && !text.contains("sk-prod"));
    let (_, filtered) = server
        .admin(
            "GET",
            "/api/secrets?env=prod&prefix=OPENAI&page=1&perPage=10",
            None,
        )
        .await;
    assert_eq!(filtered["total"], 1);
    let (_, paged) = server
        .admin("GET", "/api/secrets?page=2&perPage=1", None)
        .await;
    assert_eq!(
        (
            paged["items"].as_array().unwrap().len(),
            paged["total"].as_u64()
        ),
        (1, Some(2))
    );

    // Get: {key, value, env}; fallback reports the env that served.
    let (status, body) = server
        .admin("GET", "/api/secrets/OPENAI_API_KEY", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"key": "OPENAI_API_KEY", "value": "sk-test-1", "env": "global"})
    );
    let (_, body) = server
        .admin("GET", "/api/secrets/OPENAI_API_KEY?env=staging", None)
        .await;
    assert_eq!(body["env"], "global");
    let (_, body) = server
        .admin("GET", "/api/secrets/OPENAI_API_KEY?env=prod", None)
        .await;
    assert_eq!(body["value"], "sk-prod");

    // Update: value only keeps the description (a documented difference from PocketBase).
    let (status, body) = server
        .admin(
            "PUT",
            "/api/secrets/OPENAI_API_KEY",
            Some(json!({"value": "sk-test-2"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&body), ["env", "key", "message"]);
    assert_eq!(body["message"], "secret updated");
    let (_, list) = server.admin("GET", "/api/secrets?env=global", None).await;
    assert_eq!(list["items"][0]["description"], "OpenAI");
    let (status, _) = server
        .admin(
            "PUT",
            "/api/secrets/OPENAI_API_KEY",
            Some(json!({"description": "renamed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = server
        .admin("GET", "/api/secrets/OPENAI_API_KEY", None)
        .await;
    assert_eq!(body["value"], "sk-test-2");
    // PUT with a value on a missing key creates it, as PocketBase does, and says so.
    let (status, body) = server
        .admin(
            "PUT",
            "/api/secrets/NEW_KEY?env=prod",
            Some(json!({"value": "new"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "secret created");
    let (status, body) = server
        .admin(
            "PUT",
            "/api/secrets/MISSING",
            Some(json!({"description": "d"})),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = server
        .admin("PUT", "/api/secrets/NEW_KEY", Some(json!({})))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);

    // Delete: 204, then 404.
    let response = server
        .client
        .delete(format!("{}/api/secrets/NEW_KEY?env=prod", server.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.text().await.unwrap().is_empty());
    let (status, body) = server
        .admin("DELETE", "/api/secrets/NEW_KEY?env=prod", None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = server
        .admin("GET", "/api/secrets/NEW_KEY?env=prod", None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(body["data"]["reason"], "not_found");

    // An empty list is [] (PocketBase answers null).
    let (_, body) = server
        .admin("GET", "/api/secrets?namespace=empty", None)
        .await;
    assert_eq!(body, json!({"items": [], "total": 0}));
}

#[tokio::test]
async fn bad_requests_get_one_clear_error() {
    let server = start(
        true,
        Limits {
            max_body: 8 * 1024,
            ..Limits::default()
        },
    )
    .await;
    let cases = [
        (
            json!({"key": "BAD KEY", "value": "v"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"key": "K", "value": "v", "env": "Prod"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"key": "K"}), StatusCode::BAD_REQUEST),
        (json!({"key": "K", "value": 42}), StatusCode::BAD_REQUEST),
        // Empty values are refused on every surface.
        (json!({"key": "K", "value": ""}), StatusCode::BAD_REQUEST),
        // Over the store's 4 KiB value limit, within the body limit.
        (
            json!({"key": "K", "value": "x".repeat(5000)}),
            StatusCode::BAD_REQUEST,
        ),
        // Over the 8 KiB body limit.
        (
            json!({"key": "K", "value": "x".repeat(9000)}),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (body, expected) in cases {
        let (status, response) = server.admin("POST", "/api/secrets", Some(body)).await;
        assert_error(status, &response, expected);
        assert!(
            !response.to_string().contains("42"),
            "errors never echo input"
        );
    }
    let response = server
        .client
        .post(format!("{}/api/secrets", server.base))
        .bearer_auth(ADMIN)
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = server
        .client
        .post(format!("{}/api/secrets", server.base))
        .bearer_auth(ADMIN)
        .body(r#"{"key":"K","value":"v"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, body) = server.admin("GET", "/api/secrets?perPage=0", None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = server.admin("GET", "/api/secrets?page=abc", None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (_, list) = server.admin("GET", "/api/secrets", None).await;
    assert_eq!(list["total"], 0, "nothing was written");
}

#[tokio::test]
async fn scoped_tokens_reach_only_what_they_cover() {
    let server = start(true, Limits::default()).await;
    server
        .admin(
            "POST",
            "/api/secrets",
            Some(json!({"key": "SHARED", "value": "global-only"})),
        )
        .await;
    server
        .admin(
            "POST",
            "/api/secrets",
            Some(json!({"key": "DB", "value": "global-db"})),
        )
        .await;
    server
        .admin(
            "POST",
            "/api/secrets",
            Some(json!({"key": "DB", "value": "prod-db", "env": "prod"})),
        )
        .await;
    let prod = server.scoped("prod-app", &["default/prod"]).await;

    let (status, body) = server
        .call("GET", "/api/secrets/DB?env=prod", Some(&prod), None)
        .await;
    assert_eq!(
        (status, body["value"].as_str()),
        (StatusCode::OK, Some("prod-db"))
    );
    // Fallback does not leave the scope: global is not covered, so SHARED is not found.
    let (status, body) = server
        .call("GET", "/api/secrets/SHARED?env=prod", Some(&prod), None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    assert!(!body.to_string().contains("global-only"));
    // Envs outside the scope are 403.
    for (method, path, payload) in [
        ("GET", "/api/secrets/DB", None),
        ("GET", "/api/secrets/DB?env=staging", None),
        (
            "POST",
            "/api/secrets",
            Some(json!({"key": "X", "value": "v"})),
        ),
        ("PUT", "/api/secrets/DB", Some(json!({"value": "v"}))),
        ("DELETE", "/api/secrets/DB", None),
        ("GET", "/api/secrets/DB/history", None),
        ("GET", "/api/secrets?env=global", None),
        ("GET", "/api/secrets", None),
        ("GET", "/api/secrets?namespace=other&env=prod", None),
        ("GET", "/api/audit", None),
        ("GET", "/api/rotation", None),
    ] {
        let (status, body) = server.call(method, path, Some(&prod), payload).await;
        assert_error(status, &body, StatusCode::FORBIDDEN);
    }
    let (status, _) = server
        .call(
            "POST",
            "/api/secrets",
            Some(&prod),
            Some(json!({"key": "X", "value": "v", "env": "prod"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = server
        .call("GET", "/api/secrets?env=prod", Some(&prod), None)
        .await;
    assert_eq!(list["total"], 2);
    // A token covering prod and global sees the fallback; one covering all envs lists all.
    let both = server
        .scoped("both", &["default/prod", "default/global"])
        .await;
    let (_, body) = server
        .call("GET", "/api/secrets/SHARED?env=prod", Some(&both), None)
        .await;
    assert_eq!(body["env"], "global");
    let all = server.scoped("all-envs", &["default/*"]).await;
    let (status, list) = server.call("GET", "/api/secrets", Some(&all), None).await;
    assert_eq!((status, list["total"].as_u64()), (StatusCode::OK, Some(4)));
}

#[tokio::test]
async fn revocation_takes_effect_at_once() {
    let server = start(true, Limits::default()).await;
    let token = server.scoped("short-lived", &["*/*"]).await;
    let (status, _) = server.call("GET", "/api/secrets", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    server.tokens.revoke("short-lived").await.unwrap();
    let (status, body) = server.call("GET", "/api/secrets", Some(&token), None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    // A token with a right id but a wrong secret is refused too.
    let other = server.scoped("other", &["*/*"]).await;
    let forged = format!("{}x", &other[..other.len() - 1]);
    let (status, _) = server
        .call("GET", "/api/secrets", Some(&forged), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_plaintext_read_is_audited_with_the_token_name() {
    let server = start(true, Limits::default()).await;
    server
        .admin(
            "POST",
            "/api/secrets",
            Some(json!({"key": "K", "value": "audited-value", "env": "prod"})),
        )
        .await;
    let reader = server.scoped("reader-app", &["default/prod"]).await;
    for _ in 0..3 {
        server
            .call("GET", "/api/secrets/K?env=prod", Some(&reader), None)
            .await;
    }
    let (status, body) = server.admin("GET", "/api/audit?action=read", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&body), ["items", "next"]);
    let reads = body["items"].as_array().unwrap();
    assert_eq!(reads.len(), 3);
    for event in reads {
        assert_eq!(
            keys(event),
            [
                "action",
                "actor",
                "env",
                "id",
                "kek_version",
                "key",
                "namespace",
                "time",
                "version"
            ]
        );
        assert_eq!(
            (
                event["actor"].as_str(),
                event["env"].as_str(),
                event["key"].as_str()
            ),
            (Some("token:reader-app"), Some("prod"), Some("K"))
        );
    }
    let (_, creates) = server.admin("GET", "/api/audit?action=create", None).await;
    assert_eq!(creates["items"][0]["actor"], "token:admin");
    let (_, page) = server.admin("GET", "/api/audit?perPage=2", None).await;
    let next = page["next"].as_i64().unwrap();
    let (_, rest) = server
        .admin("GET", &format!("/api/audit?perPage=2&before={next}"), None)
        .await;
    assert!(rest["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["id"].as_i64().unwrap() < next));
    assert!(!body.to_string().contains("audited-value"));
    let (status, body) = server.admin("GET", "/api/audit?action=explode", None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn history_rollback_and_rotation_status() {
    let server = start(true, Limits::default()).await;
    for value in ["v1", "v2", "v3"] {
        server
            .admin(
                "POST",
                "/api/secrets",
                Some(json!({"key": "K", "value": value})),
            )
            .await;
    }
    let (status, body) = server.admin("GET", "/api/secrets/K/history", None).await;
    assert_eq!(status, StatusCode::OK);
    let items = body["items"].as_array().unwrap();
    assert_eq!(
        items
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [3, 2, 1]
    );
    assert_eq!(
        keys(&items[0]),
        [
            "actor",
            "created",
            "current",
            "deleted",
            "destroyed",
            "kek_version",
            "version"
        ]
    );
    let (status, body) = server
        .admin(
            "POST",
            "/api/secrets/K/rollback",
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&body), ["env", "key", "message", "version"]);
    assert_eq!(body["version"], 4);
    let (_, body) = server.admin("GET", "/api/secrets/K", None).await;
    assert_eq!(body["value"], "v1");
    let (status, body) = server
        .admin(
            "POST",
            "/api/secrets/K/rollback",
            Some(json!({"version": 99})),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = server.admin("GET", "/api/rotation", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"active_version": 1, "by_version": [{"kek_version": 1, "current": 1, "history": 3}], "pending": false})
    );
}

#[tokio::test]
async fn expired_and_binary_values_have_their_own_answers() {
    let server = start(true, Limits::default()).await;
    let store = server.store.clone().unwrap();
    store
        .set(
            &SecretId::new("default", "global", "OLD"),
            SetRequest {
                expiry: strongroom_store::Expiry::At(1_000),
                ..SetRequest::value("v")
            },
        )
        .await
        .unwrap();
    store
        .set(
            &SecretId::new("default", "global", "BIN"),
            SetRequest::value(vec![0xff, 0xfe, 0x00]),
        )
        .await
        .unwrap();
    let (status, body) = server.admin("GET", "/api/secrets/OLD", None).await;
    assert_error(status, &body, StatusCode::GONE);
    assert_eq!(body["data"]["reason"], "expired");
    let (status, body) = server.admin("GET", "/api/secrets/BIN", None).await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn without_a_master_key_secrets_are_disabled_after_authentication() {
    let server = start(false, Limits::default()).await;
    let (status, body) = server.call("GET", "/api/secrets", None, None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = server.admin("GET", "/api/secrets", None).await;
    assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["data"]["reason"], "disabled");
    let (status, _) = server.call("GET", "/api/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn logs_hold_no_values_and_no_tokens() {
    let server = start(true, Limits::default()).await;
    let marker = "LOG-LEAK-MARKER-93c1";
    let token = server.scoped("logger", &["*/*"]).await;
    server
        .call(
            "POST",
            "/api/secrets",
            Some(&token),
            Some(json!({"key": "L", "value": marker})),
        )
        .await;
    server
        .call("GET", "/api/secrets/L", Some(&token), None)
        .await;
    server
        .call(
            "GET",
            "/api/secrets/L?env=secret-looking-query",
            Some(&token),
            None,
        )
        .await;
    server
        .call(
            "PUT",
            "/api/secrets/L",
            Some(&token),
            Some(json!({"value": format!("{marker}-2")})),
        )
        .await;
    let logs = String::from_utf8(logs().lock().unwrap().clone()).unwrap();
    assert!(logs.contains("/api/secrets/L"), "requests are logged");
    assert!(!logs.contains(marker), "a value reached the logs");
    assert!(
        !logs.contains(&token) && !logs.contains(ADMIN),
        "a token reached the logs"
    );
    std::io::stderr().flush().unwrap();
}

/// Every `/api` response (success, error, unauthenticated, unknown route) is `no-store`
/// and `nosniff`; tokens can not take the names of other audit actors.
#[tokio::test]
async fn api_responses_are_never_cached_and_actors_can_not_be_impersonated() {
    let server = start(true, Limits::default()).await;
    let (status, _) = server
        .admin(
            "POST",
            "/api/secrets",
            Some(json!({"key": "K", "value": "v"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for (path, token) in [
        ("/api/secrets/K", Some(ADMIN)),
        ("/api/secrets/K", None),
        ("/api/secrets/MISSING", Some(ADMIN)),
        ("/api/health", None),
        ("/api/nowhere", Some(ADMIN)),
    ] {
        let mut request = server.client.get(format!("{}{path}", server.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
    }
    for name in ["cli", "library", "admin", "CLI"] {
        let error = server
            .tokens
            .create(name, true, &[])
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("reserved"), "{name}: {error}");
    }
    assert!(server.tokens.create("cli:root", true, &[]).await.is_err());
}

/// SQLite work runs on its own threads: while another process holds the database's write
/// lock, writes queue behind it, and `/api/health` still answers at once. (When the writes
/// ran on the runtime's threads, two blocked writes stalled every other request until the
/// busy timeout failed them.) Asserted by order, not by time: health answers while every
/// write is still waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_while_a_long_write_transaction_holds_the_writer() {
    let server = start(true, Limits::default()).await;
    let reader = server.scoped("reader", &["default/prod"]).await;
    let holder = rusqlite::Connection::open(server.dir.path().join("api.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let writes: Vec<_> = (0..6)
        .map(|n| {
            let (client, base) = (server.client.clone(), server.base.clone());
            tokio::spawn(async move {
                client
                    .post(format!("{base}/api/secrets"))
                    .bearer_auth(ADMIN)
                    .json(&json!({"key": format!("K{n}"), "value": "v"}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    // Let the writes reach the server and queue behind the held lock.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, _) = server.call("GET", "/api/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    // Reads go on beside the held write lock: the token's lookup in the database (a point
    // read on the caller's thread) and the list (a scan on a reader thread).
    let (status, _) = server
        .call("GET", "/api/secrets?env=prod", Some(&reader), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        writes.iter().all(|w| !w.is_finished()),
        "health and a list answered while every write still waited for the lock"
    );
    holder.execute_batch("COMMIT").unwrap();
    for write in writes {
        assert!(write.await.unwrap().is_success());
    }
}

/// `/api/ready` says which part is not ready: no key configured, or a key whose
/// fingerprint no longer matches what the database recorded (as if another process
/// rewrote it); `/api/health` stays up either way.
#[tokio::test]
async fn ready_names_the_part_that_is_not_ready() {
    let server = start(true, Limits::default()).await;
    let (status, _) = server
        .admin(
            "POST",
            "/api/secrets",
            Some(json!({"key": "K", "value": "v"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the first write records the key's fingerprint"
    );
    let (status, body) = server.call("GET", "/api/ready", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let raw = rusqlite::Connection::open(server.dir.path().join("api.db")).unwrap();
    raw.execute("UPDATE key_fingerprints SET fingerprint = 'forged'", [])
        .unwrap();
    let (status, body) = server.call("GET", "/api/ready", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        (
            body["data"]["reason"].as_str(),
            body["data"]["part"].as_str()
        ),
        (Some("not_ready"), Some("key"))
    );
    let (status, _) = server.call("GET", "/api/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    raw.execute("DELETE FROM key_fingerprints", []).unwrap();

    // Another process rotates the shared database to a key this server lacks: every read
    // here would fail and its writes would land under the old key. Not ready.
    let (status, _) = server.call("GET", "/api/ready", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let other = Store::open(
        Arc::new(SqliteBackend::open(server.dir.path().join("api.db")).unwrap()),
        KeySource::Ring(
            KeyRing::new([
                (2, &Key::from_bytes(&[8; 32])),
                (1, &Key::from_bytes(&[7; 32])),
            ])
            .unwrap(),
        ),
        StoreConfig::default(),
    )
    .await
    .unwrap();
    other
        .rotate(strongroom_store::RotateOptions::default(), |_| {})
        .await
        .unwrap();
    let (status, body) = server.call("GET", "/api/ready", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["data"]["part"], "key");
    assert!(
        body["message"].as_str().unwrap().contains("version 2")
            || body["data"].to_string().contains("version 2"),
        "{body}"
    );

    let keyless = start(false, Limits::default()).await;
    let (status, body) = keyless.call("GET", "/api/ready", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["data"]["part"], "key");
}

/// `/metrics` needs a superuser token; what it serves parses with Prometheus's own Python
/// parser (OpenMetrics), counts requests by route template, and never carries a key name,
/// a value or a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_with_prometheus_and_never_name_a_secret() {
    let server = start(true, Limits::default()).await;
    let (status, _) = server
        .admin(
            "POST",
            "/api/secrets",
            Some(json!({"key": "PAYROLL_DB_PASSWORD", "value": "hunter2-value"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .admin("GET", "/api/secrets/PAYROLL_DB_PASSWORD", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server.call("GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let scoped = server.scoped("scraper", &["default/global"]).await;
    let (status, _) = server.call("GET", "/metrics", Some(&scoped), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let response = server
        .client
        .get(format!("{}/metrics", server.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    for secret in ["PAYROLL_DB_PASSWORD", "hunter2-value", ADMIN, &scoped] {
        assert!(!text.contains(secret), "{secret} in /metrics");
    }
    // Prometheus's parser: every family and sample, as a scraper sees them.
    let mut python = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, json
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.setdefault(s.name, []).append([s.labels, s.value])
print(json.dumps(out))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with prometheus_client (cargo xtask ci installs it)");
    python
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = python.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser refused /metrics:\n{text}"
    );
    let samples: Value = serde_json::from_slice(&output.stdout).unwrap();
    let requests = samples["strongroom_http_requests_total"]
        .as_array()
        .unwrap();
    assert!(
        requests
            .iter()
            .any(|s| s[0]["route"] == "/api/secrets/{key}"
                && s[0]["status"] == "200"
                && s[0]["method"] == "GET"),
        "{requests:?}"
    );
    assert!(
        samples["strongroom_audit_events_appended_total"][0][1]
            .as_f64()
            .unwrap()
            >= 2.0
    );
    assert!(samples["strongroom_store_transactions_total"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s[0]["outcome"] == "committed" && s[1].as_f64().unwrap() >= 2.0));
    assert!(samples["strongroom_http_request_duration_seconds_count"].is_array());
    assert!(samples["strongroom_token_lookups_total"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s[0]["outcome"] == "accepted"));
    // Tokens by state and issuing method (never a name): the scoped token is active.
    assert!(samples["strongroom_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s[0]["state"] == "active" && s[1].as_f64().unwrap() >= 1.0));
    assert!(samples["strongroom_stored_values"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s[0]["kek_version"] == "1" && s[0]["kind"] == "current" && s[1] == 1.0));
}

/// Every error is JSON in the API's shape, unknown paths and methods included.
#[tokio::test]
async fn unknown_paths_and_methods_answer_json() {
    let server = start(true, Limits::default()).await;
    let (status, body) = server.call("GET", "/api/nothing-here", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        (body["status"].as_u64(), body["data"]["reason"].as_str()),
        (Some(404), Some("not_found"))
    );
    let (status, body) = server.call("PATCH", "/api/health", None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["data"]["reason"], "method_not_allowed");
}

/// Each capability opens exactly its routes: a token lacking one gets 403 naming the
/// capability (never the value), and nothing is written or read on its behalf.
#[tokio::test]
async fn each_capability_opens_only_its_routes() {
    let server = start(true, Limits::default()).await;
    for (env, value) in [("global", "global-shared-value"), ("prod", "prod-db-value")] {
        let (status, _) = server
            .admin(
                "POST",
                "/api/secrets",
                Some(json!({"key": "DB", "value": value, "env": env})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let list_body = None;
    let set_body = Some(json!({"key": "DB", "value": "written-value", "env": "prod"}));
    let put_body = Some(json!({"value": "put-value"}));
    let rollback_body = Some(json!({"version": 1}));
    // (route, the capability it needs, the status it answers when allowed)
    let routes: [(&str, &str, Option<Value>, &str, StatusCode); 7] = [
        (
            "GET",
            "/api/secrets?env=prod",
            list_body.clone(),
            "list",
            StatusCode::OK,
        ),
        (
            "GET",
            "/api/secrets/DB/history?env=prod",
            list_body,
            "list",
            StatusCode::OK,
        ),
        (
            "GET",
            "/api/secrets/DB?env=prod",
            None,
            "read",
            StatusCode::OK,
        ),
        ("POST", "/api/secrets", set_body, "write", StatusCode::OK),
        (
            "PUT",
            "/api/secrets/DB?env=prod",
            put_body,
            "write",
            StatusCode::OK,
        ),
        (
            "POST",
            "/api/secrets/DB/rollback?env=prod",
            rollback_body,
            "write",
            StatusCode::OK,
        ),
        (
            "DELETE",
            "/api/secrets/DB?env=prod",
            None,
            "delete",
            StatusCode::NO_CONTENT,
        ),
    ];
    for capability in ["list", "read", "write", "delete", "use"] {
        let token = server
            .scoped(
                &format!("only-{capability}"),
                &[&format!("default/prod:{capability}")],
            )
            .await;
        for (method, path, body, needs, _) in &routes {
            if *needs == capability || *method == "DELETE" {
                continue; // the allowed calls run below, the delete last
            }
            let (status, answer) = server.call(method, path, Some(&token), body.clone()).await;
            assert_error(status, &answer, StatusCode::FORBIDDEN);
            let message = answer["message"].as_str().unwrap();
            assert!(
                message.contains(needs),
                "{capability} on {method} {path}: {message}"
            );
            assert!(!answer.to_string().contains("-value"), "{answer}");
        }
        if capability != "delete" {
            let (status, answer) = server
                .call("DELETE", "/api/secrets/DB?env=prod", Some(&token), None)
                .await;
            assert_error(status, &answer, StatusCode::FORBIDDEN);
            assert!(answer["message"].as_str().unwrap().contains("delete"));
        }
    }
    // Nothing above was written, read or deleted: the value is the first one, and the
    // only value reads in the audit are none (403s read nothing).
    let (_, body) = server.admin("GET", "/api/secrets/DB?env=prod", None).await;
    assert_eq!(body["value"], "prod-db-value");
    let (_, audit) = server.admin("GET", "/api/audit?action=read", None).await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "token:admin"),
        "{audit}"
    );
    // And each capability does what it names.
    for (n, (method, path, body, needs, allowed)) in routes.into_iter().enumerate() {
        let token = server
            .scoped(&format!("does-{n}"), &[&format!("default/prod:{needs}")])
            .await;
        let (status, answer) = server.call(method, path, Some(&token), body).await;
        assert_eq!(status, allowed, "{needs} on {method} {path}: {answer}");
        if needs == "list" {
            assert!(!answer.to_string().contains("-value"), "{answer}");
        }
    }
}

/// Capabilities follow the fallback: a read that falls back to `global` needs `read`
/// there too; `list` on `global` does not reveal its value.
#[tokio::test]
async fn a_fallback_read_needs_read_on_the_env_that_serves() {
    let server = start(true, Limits::default()).await;
    server
        .admin(
            "POST",
            "/api/secrets",
            Some(json!({"key": "SHARED", "value": "global-only-value"})),
        )
        .await;
    let listing = server
        .scoped("prod-reader", &["default/prod:read", "default/global:list"])
        .await;
    let (status, body) = server
        .call("GET", "/api/secrets/SHARED?env=prod", Some(&listing), None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    assert!(!body.to_string().contains("global-only-value"));
    let (status, list) = server
        .call("GET", "/api/secrets?env=global", Some(&listing), None)
        .await;
    assert_eq!((status, list["total"].as_u64()), (StatusCode::OK, Some(1)));
    assert_eq!(list["items"][0]["masked_value"], "********");
    let reading = server
        .scoped("both-reader", &["default/prod:read", "default/global:read"])
        .await;
    let (_, body) = server
        .call("GET", "/api/secrets/SHARED?env=prod", Some(&reading), None)
        .await;
    assert_eq!(
        (body["env"].as_str(), body["value"].as_str()),
        (Some("global"), Some("global-only-value"))
    );
    // Listing every env needs `list` on every env.
    let (status, body) = server
        .call("GET", "/api/secrets", Some(&reading), None)
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    let all = server.scoped("all-lister", &["default/*:list"]).await;
    let (status, list) = server.call("GET", "/api/secrets", Some(&all), None).await;
    assert_eq!((status, list["total"].as_u64()), (StatusCode::OK, Some(1)));
}

/// Scope text: capabilities parse strictly, print canonically, and a scope without them
/// keeps its old meaning (all five), so existing tokens keep working.
#[tokio::test]
async fn scope_capabilities_parse_strictly_and_old_scopes_keep_all_five() {
    for bad in [
        "default/prod:",
        "default/prod:reed",
        "default/prod:READ",
        "default/prod:read,",
        "default/prod:read;write",
        "default/prod:read write",
        "default/prod::read",
    ] {
        assert!(Scope::parse(bad).is_err(), "{bad} was accepted");
    }
    assert_eq!(
        Scope::parse("default/prod").unwrap().to_string(),
        "default/prod"
    );
    assert_eq!(
        Scope::parse("default/prod:write,read,read")
            .unwrap()
            .to_string(),
        "default/prod:read,write"
    );
    assert_eq!(
        Scope::parse("a/b:use,delete,write,read,list")
            .unwrap()
            .to_string(),
        "a/b"
    );
    let server = start(true, Limits::default()).await;
    let old = server.scoped("old-style", &["default/prod"]).await;
    for (method, path, body) in [
        (
            "POST",
            "/api/secrets",
            Some(json!({"key": "K", "value": "v1", "env": "prod"})),
        ),
        ("GET", "/api/secrets/K?env=prod", None),
        ("GET", "/api/secrets?env=prod", None),
        ("DELETE", "/api/secrets/K?env=prod", None),
    ] {
        let (status, answer) = server.call(method, path, Some(&old), body).await;
        assert!(status.is_success(), "{method} {path}: {answer}");
    }
    let listed = server.tokens.list().await.unwrap();
    let scopes: Vec<&str> = listed
        .iter()
        .find(|t| t.name == "old-style")
        .unwrap()
        .scopes
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(scopes, ["default/prod"]);
}

/// Copy and move on the server: the value never comes back; `read` or `use` on the source
/// and `write` on the target suffice for a copy (never `read` on the target); a move also
/// needs `delete` on the source. Refused calls change nothing.
#[tokio::test]
async fn copy_and_move_never_return_the_value_and_check_both_sides() {
    let server = start(true, Limits::default()).await;
    let (status, _) = server
        .admin(
            "POST",
            "/api/secrets",
            Some(json!({"key": "API", "value": "prod-api-value", "env": "prod"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let to_staging = json!({"to_env": "staging"});
    // A token that may only use prod and write staging copies, and sees no value.
    let mover = server
        .scoped("promoter", &["default/prod:use", "default/staging:write"])
        .await;
    let (status, body) = server
        .call(
            "POST",
            "/api/secrets/API/copy?env=prod",
            Some(&mover),
            Some(to_staging.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["to"],
        json!({"namespace": "default", "env": "staging", "key": "API"})
    );
    assert_eq!(body["version"], 1);
    assert!(!body.to_string().contains("prod-api-value"));
    // It can not read what it wrote, nor move (no delete on prod).
    let (status, _) = server
        .call("GET", "/api/secrets/API?env=staging", Some(&mover), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = server
        .call(
            "POST",
            "/api/secrets/API/move?env=prod",
            Some(&mover),
            Some(json!({"to_env": "dev"})),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    // Exists: 409 unless forced.
    let (status, body) = server
        .call(
            "POST",
            "/api/secrets/API/copy?env=prod",
            Some(&mover),
            Some(to_staging.clone()),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT);
    // Each missing side is refused, naming the capability; nothing is written.
    for (scopes, needs) in [
        (vec!["default/prod:list", "default/staging:write"], "read"),
        (vec!["default/prod:read", "default/staging:read"], "write"),
        (vec!["default/prod:read"], "write"),
    ] {
        let token = server
            .scoped(&format!("partial-{needs}-{}", scopes.len()), &scopes)
            .await;
        let (status, body) = server
            .call(
                "POST",
                "/api/secrets/API/copy?env=prod",
                Some(&token),
                Some(json!({"to_env": "qa", "force": true})),
            )
            .await;
        assert_error(status, &body, StatusCode::FORBIDDEN);
        assert!(body["message"].as_str().unwrap().contains(needs), "{body}");
    }
    let (_, qa) = server.admin("GET", "/api/secrets?env=qa", None).await;
    assert_eq!(qa["total"], 0);
    // A move with read, delete and target write renames, history and all.
    let renamer = server
        .scoped("renamer", &["default/prod:read,delete,write"])
        .await;
    let (status, body) = server
        .call(
            "POST",
            "/api/secrets/API/move?env=prod",
            Some(&renamer),
            Some(json!({"to_key": "API_KEY"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.to_string().contains("prod-api-value"));
    let (status, _) = server.admin("GET", "/api/secrets/API?env=prod", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = server
        .admin("GET", "/api/secrets/API_KEY?env=prod", None)
        .await;
    assert_eq!(body["value"], "prod-api-value");
    // Audited per side under the tokens' names; no read by the promoter.
    let (_, audit) = server.admin("GET", "/api/audit?limit=100", None).await;
    let seen: Vec<(String, String, String)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let field = |n: &str| e[n].as_str().unwrap_or_default().to_owned();
            (field("actor"), field("action"), field("env"))
        })
        .collect();
    for expected in [
        ("token:promoter", "copy_out", "prod"),
        ("token:promoter", "copy_in", "staging"),
        ("token:renamer", "move_out", "prod"),
        ("token:renamer", "move_in", "prod"),
    ] {
        let expected = (
            expected.0.to_owned(),
            expected.1.to_owned(),
            expected.2.to_owned(),
        );
        assert!(seen.contains(&expected), "{expected:?} in {seen:?}");
    }
    assert!(!seen
        .iter()
        .any(|(a, action, _)| a == "token:promoter" && action == "read"));
    let verified = server.store.as_ref().unwrap().verify_audit().await.unwrap();
    assert_eq!(verified.broken_at, None, "{verified:?}");
}

/// Attack (third round, finding 1): `use` is not `read` in disguise. A token that may only
/// use `prod` copies or moves `prod`'s value into a place it can read (or use, directly or
/// through fallback) and reads it there. Every such copy and move is refused (403, naming
/// the rule) and writes nothing; a use-only copy into a place the token can neither read
/// nor use still works (promotion without seeing).
#[tokio::test]
async fn a_use_only_token_never_copies_or_moves_a_value_into_its_own_reach() {
    let server = start(true, Limits::default()).await;
    server
        .admin(
            "POST",
            "/api/secrets",
            Some(json!({"key": "API_KEY", "value": "prod-only-value", "env": "prod"})),
        )
        .await;
    let attacks: [(&str, &[&str], &str, Value); 5] = [
        // The agent token of the report: use prod, read and write its scratch env.
        (
            "copy",
            &["default/prod:use", "default/dev:read,write"],
            "copy-reader",
            json!({"to_env": "dev"}),
        ),
        // The same with move (use and delete on the source).
        (
            "move",
            &["default/prod:use,delete", "default/dev:read,write"],
            "move-reader",
            json!({"to_env": "dev"}),
        ),
        // Into any other env the token may read.
        (
            "copy",
            &["default/prod:use", "default/prod2:read,write"],
            "rename-reader",
            json!({"to_env": "prod2"}),
        ),
        // Into an env the token may use through a gateway route of its own.
        (
            "copy",
            &["default/prod:use", "default/dev:use,write"],
            "copy-user",
            json!({"to_env": "dev"}),
        ),
        // Into `global`, which the token can not read or use there, but `dev` (which it
        // may use) falls back to it.
        (
            "copy",
            &[
                "default/prod:use",
                "default/global:write",
                "default/dev:use",
            ],
            "fallback-user",
            json!({"to_env": "global"}),
        ),
    ];
    for (verb, scopes, name, body) in attacks {
        let token = server.scoped(name, scopes).await;
        let (status, answer) = server
            .call(
                "POST",
                &format!("/api/secrets/API_KEY/{verb}?env=prod"),
                Some(&token),
                Some(body.clone()),
            )
            .await;
        assert_error(status, &answer, StatusCode::FORBIDDEN);
        assert!(
            answer["message"].as_str().unwrap().contains("`read`"),
            "{name}: {answer}"
        );
        let target = body["to_env"].as_str().unwrap();
        let (status, _) = server
            .admin("GET", &format!("/api/secrets/API_KEY?env={target}"), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{name} wrote into {target}");
    }
    // The source is untouched by the refused move.
    let (_, body) = server
        .admin("GET", "/api/secrets/API_KEY?env=prod", None)
        .await;
    assert_eq!(body["value"], "prod-only-value");
    // Promotion without seeing: use prod, write staging, neither read nor use staging.
    let promoter = server
        .scoped(
            "blind-promoter",
            &["default/prod:use", "default/staging:write,list"],
        )
        .await;
    let (status, body) = server
        .call(
            "POST",
            "/api/secrets/API_KEY/copy?env=prod",
            Some(&promoter),
            Some(json!({"to_env": "staging"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.to_string().contains("prod-only-value"));
}

/// Attack (third round, finding 2): anyone who can write the database mints tokens. With
/// write access to the live SQLite file and one narrow token of its own, the attacker
/// flips `superuser`, widens the scopes, inserts a row of its own (with the known hash,
/// and with another row's valid tag), and revives a revoked token. Every such row is
/// refused like an unknown token (401), and the token list marks it; putting the original
/// fields back makes the token work again (the tag covers the fields, not the file).
#[tokio::test]
async fn a_token_row_written_without_the_key_is_refused() {
    let server = start(true, Limits::default()).await;
    server
        .admin(
            "POST",
            "/api/secrets",
            Some(json!({"key": "API_KEY", "value": "prod-only-value", "env": "prod"})),
        )
        .await;
    let token = server.scoped("narrow", &["default/dev:list"]).await;
    let (id, secret) = {
        let mut parts = token.splitn(3, '.').skip(1);
        (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
        )
    };
    let db = rusqlite::Connection::open(server.dir.path().join("api.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let read_prod = |token: String| {
        let server = &server;
        async move {
            server
                .call("GET", "/api/secrets/API_KEY?env=prod", Some(&token), None)
                .await
        }
    };
    let (status, _) = server
        .call("GET", "/api/secrets?env=dev", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = read_prod(token.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Edits of the attacker's own row: each one is refused.
    for edit in [
        "UPDATE api_tokens SET superuser = 1, scopes = '[]' WHERE id = ?1",
        "UPDATE api_tokens SET scopes = '[\"*/*\"]' WHERE id = ?1",
        "UPDATE api_tokens SET scopes = '[\"default/dev:list\",\"default/prod:read\"]' WHERE id = ?1",
        "UPDATE api_tokens SET name = 'admin2', created = created + 1 WHERE id = ?1",
    ] {
        let original: (bool, String, String, i64) = db
            .query_row(
                "SELECT superuser, scopes, name, created FROM api_tokens WHERE id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        db.execute(edit, [&id]).unwrap();
        let (status, body) = read_prod(token.clone()).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED);
        assert!(!body.to_string().contains("prod-only-value"));
        db.execute(
            "UPDATE api_tokens SET superuser = ?2, scopes = ?3, name = ?4, created = ?5 WHERE id = ?1",
            rusqlite::params![id, original.0, original.1, original.2, original.3],
        )
        .unwrap();
        let (status, _) = server
            .call("GET", "/api/secrets?env=dev", Some(&token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "the original row works again after {edit}");
    }
    // A row of the attacker's own, with the hash of a secret it knows: untagged, then
    // with the narrow row's valid tag (the tag is bound to the id and every field).
    db.execute(
        "INSERT INTO api_tokens (id, name, secret_hash, superuser, scopes, created)
         SELECT 'aaaaaaaaaaaa', 'minted', secret_hash, 1, '[]', created FROM api_tokens WHERE id = ?1",
        [&id],
    )
    .unwrap();
    let minted = format!("sr.aaaaaaaaaaaa.{secret}");
    let (status, body) = read_prod(minted.clone()).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    db.execute(
        "UPDATE api_tokens SET tag = (SELECT tag FROM api_tokens WHERE id = ?1) WHERE id = 'aaaaaaaaaaaa'",
        [&id],
    )
    .unwrap();
    let (status, body) = read_prod(minted.clone()).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    // The list marks the forged row; the genuine ones are intact.
    let (_, list) = server.admin("GET", "/api/tokens", None).await;
    let mut intact: Vec<(String, bool)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["intact"].as_bool().unwrap(),
            )
        })
        .collect();
    intact.sort();
    assert_eq!(
        intact,
        [("minted".to_owned(), false), ("narrow".to_owned(), true)]
    );
    // Reviving a revoked token: refused.
    server.tokens.revoke("narrow").await.unwrap();
    let (status, _) = server
        .call("GET", "/api/secrets?env=dev", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    db.execute("UPDATE api_tokens SET revoked = NULL WHERE id = ?1", [&id])
        .unwrap();
    let (status, body) = server
        .call("GET", "/api/secrets?env=dev", Some(&token), None)
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    // Creation and revocation are audit events naming the token, never its secret.
    let (_, audit) = server.admin("GET", "/api/audit?limit=100", None).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["key"] == "narrow")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["token_revoke", "token_create"]);
    assert!(!audit.to_string().contains(&secret));
}

/// Attack (third round): keys named `.`, `..` or with empty segments were accepted by
/// `/api` but unreachable from `/v1` and the console. One grammar: every such write is
/// 400 on `/api` (create, update, copy target), and nothing is written.
#[tokio::test]
async fn keys_with_empty_or_dot_segments_are_refused_on_every_write() {
    let server = start(true, Limits::default()).await;
    server
        .admin(
            "POST",
            "/api/secrets",
            Some(json!({"key": "SOURCE", "value": "v"})),
        )
        .await;
    for bad in [".", "..", "a//b", "/a", "a/", "a/../b"] {
        let (status, body) = server
            .admin(
                "POST",
                "/api/secrets",
                Some(json!({"key": bad, "value": "v"})),
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
        let (status, body) = server
            .admin(
                "POST",
                "/api/secrets/SOURCE/copy",
                Some(json!({"to_key": bad})),
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
    let (_, list) = server.admin("GET", "/api/secrets", None).await;
    assert_eq!(list["total"], 1, "{list}");
}

/// Check-and-set on the native API: a stale `cas` is 409 and writes nothing.
#[tokio::test]
async fn a_stale_check_and_set_is_a_conflict_and_writes_nothing() {
    let server = start(true, Limits::default()).await;
    let write = |value: &'static str, cas: u32| json!({"key": "CAS_KEY", "value": value, "env": "prod", "cas": cas});
    let (status, _) = server
        .admin("POST", "/api/secrets", Some(write("one", 0)))
        .await;
    assert_eq!(status, StatusCode::OK);
    for stale in [0, 2] {
        let (status, body) = server
            .admin("POST", "/api/secrets", Some(write("lost", stale)))
            .await;
        assert_error(status, &body, StatusCode::CONFLICT);
    }
    let (_, body) = server
        .admin("GET", "/api/secrets/CAS_KEY?env=prod", None)
        .await;
    assert_eq!(body["value"], "one");
    let (status, _) = server
        .admin("POST", "/api/secrets", Some(write("two", 1)))
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// Single versions and a secret's own settings over the native API, each behind its
/// capability: a deleted version is 410 for everyone until undeleted, a destroyed one for
/// good; `cas_required` refuses a write without `cas`.
#[tokio::test]
async fn versions_and_settings_over_the_native_api() {
    let server = start(true, Limits::default()).await;
    for value in ["life-one", "life-two"] {
        server
            .admin(
                "POST",
                "/api/secrets",
                Some(json!({"key": "LIFE", "value": value, "env": "prod"})),
            )
            .await;
    }
    let reader = server
        .scoped("life-reader", &["default/prod:read,list"])
        .await;
    let (status, body) = server
        .call(
            "POST",
            "/api/secrets/LIFE/versions/delete?env=prod",
            Some(&reader),
            Some(json!({"versions": [2]})),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    assert!(body["message"].as_str().unwrap().contains("`delete`"));
    let (status, body) = server
        .admin(
            "POST",
            "/api/secrets/LIFE/versions/delete?env=prod",
            Some(json!({"versions": [2]})),
        )
        .await;
    assert_eq!(
        (status, &body["changed"]),
        (StatusCode::OK, &json!([2])),
        "{body}"
    );
    let (status, body) = server
        .call("GET", "/api/secrets/LIFE?env=prod", Some(&reader), None)
        .await;
    assert_error(status, &body, StatusCode::GONE);
    assert!(!body.to_string().contains("life-two"));
    let (_, body) = server
        .admin(
            "POST",
            "/api/secrets/LIFE/versions/undelete?env=prod",
            Some(json!({"versions": [2]})),
        )
        .await;
    assert_eq!(body["changed"], json!([2]));
    let (_, body) = server
        .call("GET", "/api/secrets/LIFE?env=prod", Some(&reader), None)
        .await;
    assert_eq!(body["value"], "life-two");
    let (_, body) = server
        .admin(
            "POST",
            "/api/secrets/LIFE/versions/destroy?env=prod",
            Some(json!({"versions": [1]})),
        )
        .await;
    assert_eq!(body["changed"], json!([1]));
    let (status, body) = server
        .admin(
            "POST",
            "/api/secrets/LIFE/versions/shred?env=prod",
            Some(json!({"versions": [1]})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (_, history) = server
        .admin("GET", "/api/secrets/LIFE/history?env=prod", None)
        .await;
    assert_eq!(history["items"][1]["destroyed"], true);
    // Settings: check-and-set required.
    let (status, body) = server
        .call(
            "PUT",
            "/api/secrets/LIFE/settings?env=prod",
            Some(&reader),
            Some(json!({"cas_required": true})),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = server
        .admin(
            "PUT",
            "/api/secrets/LIFE/settings?env=prod",
            Some(json!({"cas_required": true, "max_versions": 3})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"max_versions": 3, "cas_required": true, "custom_metadata": {}})
        )
    );
    let (_, body) = server
        .call(
            "GET",
            "/api/secrets/LIFE/settings?env=prod",
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(
        body,
        json!({"max_versions": 3, "cas_required": true, "custom_metadata": {}})
    );
    let (status, body) = server
        .admin(
            "POST",
            "/api/secrets",
            Some(json!({"key": "LIFE", "value": "no-cas", "env": "prod"})),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT);
    let (status, _) = server
        .admin(
            "POST",
            "/api/secrets",
            Some(json!({"key": "LIFE", "value": "life-three", "env": "prod", "cas": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// `GET /api/secrets?env=prod&served=true`: what prod serves, computed on the server over
/// every page: prod's own secrets shadow global's whatever the page (sixty overridden keys,
/// past the first page), global's others are there from global, ordered by key and paged
/// on the server; a token that may not list global sees only prod's.
#[tokio::test]
async fn the_served_listing_is_right_beyond_the_first_page() {
    let server = start(true, Limits::default()).await;
    let mut batch = Vec::new();
    for i in 0..60 {
        batch.push(json!({"key": format!("OVR_{i:02}"), "value": "prod", "env": "prod"}));
        batch.push(json!({"key": format!("OVR_{i:02}"), "value": "global", "env": "global"}));
    }
    for i in 0..5 {
        batch.push(json!({"key": format!("ZZ_GLOBAL_{i}"), "value": "g", "env": "global"}));
    }
    for item in batch {
        let (status, body) = server.admin("POST", "/api/secrets", Some(item)).await;
        assert!(status.is_success(), "{body}");
    }
    let mut seen = Vec::new();
    for page in 1..=3 {
        let (status, body) = server
            .admin(
                "GET",
                &format!("/api/secrets?env=prod&served=true&perPage=25&page={page}&details=true"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["total"], 65, "{body}");
        for item in body["items"].as_array().unwrap() {
            seen.push((
                item["key"].as_str().unwrap().to_owned(),
                item["env"].as_str().unwrap().to_owned(),
            ));
        }
    }
    assert_eq!(seen.len(), 65);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "ordered by key across pages");
    for (key, env) in &seen {
        let wanted = if key.starts_with("OVR_") {
            "prod"
        } else {
            "global"
        };
        assert_eq!(env, wanted, "{key} served from {env}");
    }
    // Without list on global: only prod's own.
    let token = server.scoped("prod-only", &["default/prod:list"]).await;
    let (status, body) = server
        .call(
            "GET",
            "/api/secrets?env=prod&served=true&perPage=500",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 60);
    // served needs an env.
    let (status, _) = server.admin("GET", "/api/secrets?served=true", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
