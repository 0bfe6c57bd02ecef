//! Identity limits a server enforces on every token it issues, against a real server on
//! loopback and a real SQLite file: lease-count quotas (caps on live tokens, driven by
//! hvac unmodified) and tokens bound to networks (`token_bound_cidrs`, checked against the
//! TCP peer: the test connects from two loopback addresses).

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

use serde_json::{json, Value};
use strongroom_crypto::secrecy::ExposeSecret as _;

const ADMIN: &str = "identity-admin-token-0123456789";

/// Lease-count quotas cap live tokens per role and globally: 429 past the cap (hvac's
/// RateLimitExceeded), nothing written, a raced cap taken exactly, shown in `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_count_quotas_cap_live_tokens() {
    let server =
        common::start_sqlite_with(ADMIN, 9, strongroom_server::Surfaces::default(), true).await;
    common::python_suite(
        "quota_suite.py",
        &server.base,
        ADMIN,
        "quota: every check passed",
    );
}

/// A client that connects from `source` (any 127.0.0.0/8 address is loopback on Linux).
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn call(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method.parse().unwrap(), format!("{base}{path}"));
    if let Some(token) = token {
        request = request.header("X-Vault-Token", token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The status of `lookup-self` with `token` from each client: `(inside, outside)`.
async fn lookup_from(
    inside: &reqwest::Client,
    outside: &reqwest::Client,
    base: &str,
    token: &str,
) -> (u16, u16) {
    let path = "/v1/auth/token/lookup-self";
    (
        call(inside, base, "GET", path, Some(token), None).await.0,
        call(outside, base, "GET", path, Some(token), None).await.0,
    )
}

/// `token_bound_cidrs`: a login from outside the role's networks is refused before its
/// secret id is spent; the token works only from inside them, on every surface (the Vault
/// API, the native API); a child token keeps its parent's binding; the CLI binds too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_bound_to_networks_work_only_from_inside_them() {
    let server = common::start_sqlite(ADMIN, 9, strongroom_server::Surfaces::default()).await;
    let base = server.base.as_str();
    let inside = client_from("127.0.0.2");
    let outside = client_from("127.0.0.1");
    let admin = |method: &'static str, path: &'static str, body: Value| {
        let client = outside.clone();
        async move { call(&client, base, method, path, Some(ADMIN), Some(body)).await }
    };
    assert_eq!(
        admin("POST", "/v1/sys/auth/approle", json!({"type": "approle"}))
            .await
            .0,
        204
    );
    // An unparseable binding is refused at write.
    let (status, _) = admin(
        "POST",
        "/v1/auth/approle/role/bound",
        json!({"token_policies": ["default/dev:read"], "token_bound_cidrs": ["10.0.0.0/33"]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        admin(
            "POST",
            "/v1/auth/approle/role/bound",
            json!({"token_policies": ["default/dev:read"], "token_ttl": "10m", "token_bound_cidrs": ["127.0.0.2/32"], "secret_id_num_uses": 1}),
        )
        .await
        .0,
        204
    );
    let (_, role_id) = call(
        &outside,
        base,
        "GET",
        "/v1/auth/approle/role/bound/role-id",
        Some(ADMIN),
        None,
    )
    .await;
    let role_id = role_id["data"]["role_id"].as_str().unwrap().to_owned();
    let (_, made) = admin("POST", "/v1/auth/approle/role/bound/secret-id", json!({})).await;
    let secret_id = made["data"]["secret_id"].as_str().unwrap().to_owned();
    let login = json!({"role_id": role_id, "secret_id": secret_id});

    // From outside: refused like any failure, and the single-use secret id is not spent.
    let (status, body) = call(
        &outside,
        base,
        "POST",
        "/v1/auth/approle/login",
        None,
        Some(login.clone()),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string().contains("invalid role or secret ID"),
        "{body}"
    );
    let (status, body) = call(
        &inside,
        base,
        "POST",
        "/v1/auth/approle/login",
        None,
        Some(login),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["auth"]["client_token"].as_str().unwrap().to_owned();

    // The token works from inside only: the Vault API and the native API.
    let (status, me) = call(
        &inside,
        base,
        "GET",
        "/v1/auth/token/lookup-self",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(me["data"]["bound_cidrs"], json!(["127.0.0.2/32"]));
    assert_eq!(
        call(
            &outside,
            base,
            "GET",
            "/v1/auth/token/lookup-self",
            Some(&token),
            None
        )
        .await
        .0,
        403
    );
    let native = |client: &reqwest::Client| {
        client
            .get(format!("{base}/api/secrets/MISSING?env=dev"))
            .bearer_auth(&token)
            .send()
    };
    // Inside: authenticated (the secret is not there); outside: not authenticated.
    assert_eq!(native(&inside).await.unwrap().status().as_u16(), 404);
    assert_eq!(native(&outside).await.unwrap().status().as_u16(), 401);

    // A child token keeps the binding.
    let (status, child) = call(
        &inside,
        base,
        "POST",
        "/v1/auth/token/create",
        Some(&token),
        Some(json!({"policies": ["default/dev:read"], "ttl": "5m"})),
    )
    .await;
    assert_eq!(status, 200, "{child}");
    let child = child["auth"]["client_token"].as_str().unwrap().to_owned();
    assert_eq!(
        lookup_from(&inside, &outside, base, &child).await,
        (200, 403)
    );

    // A token bound through the store (as `strongroom token create --bound-cidr` does).
    let (_, bound) = server
        .tokens
        .create_with(
            strongroom_store::tokens::TokenRequest {
                name: "bound-cli".into(),
                scopes: vec![strongroom_store::tokens::Scope::parse("default/dev:read").unwrap()],
                bound_cidrs: vec!["127.0.0.2/32".parse().unwrap()],
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    let bound = bound.expose_secret().to_owned();
    assert_eq!(
        lookup_from(&inside, &outside, base, &bound).await,
        (200, 403)
    );
}

/// A login is one durable commit: its token, its `login` event and (AppRole) the secret
/// ID's use together. (A jwt login recorded its event in a second commit after the
/// token's: a crash between left a token with no login, and every login paid two flushes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_is_one_commit_with_its_token_and_its_login_event() {
    let server =
        common::start_sqlite_with(ADMIN, 9, strongroom_server::Surfaces::default(), false).await;
    let client = reqwest::Client::new();
    let base = server.base.as_str();
    let admin = Some(ADMIN);
    // A jwt method with one key of our own (ES256, PEM), and a role.
    let key = rcgen::KeyPair::generate().unwrap();
    for (path, body) in [
        ("/v1/sys/auth/jwt", json!({"type": "jwt"})),
        (
            "/v1/auth/jwt/config",
            json!({"jwt_validation_pubkeys": [key.public_key_pem()], "bound_issuer": "https://issuer.example"}),
        ),
        (
            "/v1/auth/jwt/role/deploy",
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": ["strongroom"],
                   "token_policies": ["default/prod:read"], "token_ttl": "10m"}),
        ),
        ("/v1/sys/auth/approle", json!({"type": "approle"})),
        (
            "/v1/auth/approle/role/app",
            json!({"token_policies": ["default/prod:read"], "secret_id_num_uses": 2}),
        ),
    ] {
        let (status, answer) = call(&client, base, "POST", path, admin, Some(body)).await;
        assert!(status < 300, "{path}: {status} {answer}");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": "https://issuer.example", "aud": "strongroom", "sub": "ci-job",
                        "iat": now, "nbf": now, "exp": now + 300});
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap(),
    )
    .unwrap();
    let (_, role_id) = call(
        &client,
        base,
        "GET",
        "/v1/auth/approle/role/app/role-id",
        admin,
        None,
    )
    .await;
    let (_, secret_id) = call(
        &client,
        base,
        "POST",
        "/v1/auth/approle/role/app/secret-id",
        admin,
        None,
    )
    .await;
    let logins = [
        (
            "/v1/auth/jwt/login",
            json!({"role": "deploy", "jwt": jwt}),
            ("jwt", "deploy"),
        ),
        (
            "/v1/auth/approle/login",
            json!({"role_id": role_id["data"]["role_id"], "secret_id": secret_id["data"]["secret_id"]}),
            ("approle", "app"),
        ),
    ];
    for (path, body, (method, role)) in logins {
        let before = server.store.stats();
        let (status, answer) = call(&client, base, "POST", path, None, Some(body)).await;
        assert_eq!(status, 200, "{path}: {answer}");
        let after = server.store.stats();
        assert_eq!(
            after.group_commits - before.group_commits,
            1,
            "{path}: a login took more than one commit"
        );
        let events = server
            .store
            .audit_all(strongroom_store::AuditQuery {
                action: Some(strongroom_store::Action::Login),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            events.iter().any(|e| e.env == method && e.key == role),
            "{path}: no login event"
        );
    }
}
