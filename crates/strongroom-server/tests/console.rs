//! The web console (`/_/`) and the routes it stands on (`/api/session`, `/api/tokens`,
//! `/api/audit/verify`, audit filters): the attacks first (framing, injected markup,
//! scripts from elsewhere, tokens reaching storage or other routes, scoped tokens managing
//! tokens), then every page in a real browser (Chromium through WebDriver).

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

use serde_json::{json, Value};
use strongroom_server::Surfaces;
use strongroom_store::{Action, AuditQuery, SecretId, SetRequest};

const ADMIN: &str = "console-admin-token-0123456789";
const HOSTILE: &str = r#"<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>"#;

use common::Server;

async fn start(surfaces: Surfaces) -> Server {
    common::start_sqlite(ADMIN, 7, surfaces).await
}

impl Server {
    async fn set(&self, env: &str, key: &str, value: &str, description: &str) {
        self.store
            .set(
                &SecretId::new("default", env, key),
                SetRequest {
                    description: Some(description.into()),
                    ..SetRequest::value(value)
                },
            )
            .await
            .unwrap();
    }
}

/// Every module of the console, as one text for the checks below.
const SCRIPTS: [&str; 4] = [
    include_str!("../console/console.js"),
    include_str!("../console/lib.js"),
    include_str!("../console/grid.js"),
    include_str!("../console/detail.js"),
];
const INDEX: &str = include_str!("../console/index.html");

#[tokio::test]
async fn the_console_is_served_with_a_strict_policy_and_nothing_else_under_it() {
    let server = start(Surfaces::default()).await;
    for (path, content_type) in [
        ("/_/", "text/html; charset=utf-8"),
        ("/_/console.js", "text/javascript; charset=utf-8"),
        ("/_/lib.js", "text/javascript; charset=utf-8"),
        ("/_/grid.js", "text/javascript; charset=utf-8"),
        ("/_/detail.js", "text/javascript; charset=utf-8"),
        ("/_/console.css", "text/css; charset=utf-8"),
    ] {
        let response = server
            .client
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(header("content-type"), content_type);
        let csp = header("content-security-policy");
        assert_eq!(csp, strongroom_server::CONTENT_SECURITY_POLICY);
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "connect-src 'self'",
        ] {
            assert!(csp.contains(directive), "{directive} in {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("referrer-policy"), "no-referrer");
        assert_eq!(header("x-frame-options"), "DENY");
        assert_eq!(header("cache-control"), "no-store");
    }
    // `/_` leads to the console; anything else under `/_/` is the API's JSON 404, and no
    // spelling of a dot segment reaches a file.
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/_", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 308);
    assert_eq!(response.headers()["location"], "/_/");
    for path in [
        "/_/index.html",
        "/_/../Cargo.toml",
        "/_/%2e%2e/Cargo.toml",
        "/_/..%2fCargo.toml",
        "/_/console.js/",
        "/_//etc/passwd",
        "/_/console.js%00.css",
    ] {
        let (status, body) = common_raw(&server.base, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("not_found"), "{path}: {body}");
    }
    // Only GET.
    let (status, _) = server.call("POST", "/_/", ADMIN, None).await;
    assert_eq!(status, 405);
}

/// A GET with the path sent byte for byte (no client-side normalisation).
async fn common_raw(base: &str, path: &str) -> (u16, String) {
    common::raw_request(base, "GET", path, "Accept: */*").await
}

#[tokio::test]
async fn no_console_turns_it_off() {
    let server = start(Surfaces { console: false }).await;
    for path in ["/_/", "/_/console.js", "/_"] {
        let (status, body) = common_raw(&server.base, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("not_found"), "{path}");
    }
    let (status, _) = server.call("GET", "/api/session", ADMIN, None).await;
    assert_eq!(status, 200, "the API stays");
}

/// The console's own code: no inline script or style (the policy would block it anyway),
/// nothing from another origin, no HTML built from strings, no persistent token storage.
#[test]
fn the_console_code_renders_text_only_and_keeps_the_token_in_the_tab() {
    let script = SCRIPTS.concat();
    let script = script.as_str();
    for forbidden in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "localStorage",
        "document.cookie",
        "http://",
        "https://",
        "setAttribute(\"on",
    ] {
        assert!(
            !script.contains(forbidden),
            "the console's scripts must not use {forbidden}"
        );
    }
    assert!(script.contains("sessionStorage.removeItem"));
    assert!(script.contains("textContent"));
    // Attribute names the element helper sets: handlers only through addEventListener.
    assert!(script.contains("if (name.startsWith(\"on\")) node.addEventListener"));
    let lower = INDEX.to_ascii_lowercase();
    assert_eq!(
        lower.matches("<script").count(),
        1,
        "one external module, no inline script"
    );
    assert!(lower.contains(r#"<script type="module" src="/_/console.js"></script>"#));
    assert!(!lower.contains(" style="), "no inline style");
    for handler in [
        " onclick",
        " onload",
        " onerror",
        " onsubmit",
        "javascript:",
    ] {
        assert!(!lower.contains(handler), "{handler} in index.html");
    }
    for external in ["http://", "https://", "//cdn", "@import"] {
        assert!(!lower.contains(external), "{external} in index.html");
    }
    // Every test hook of the contract is present, in the page or made by the script.
    for hook in [
        "token",
        "sign-in",
        "error",
        "secret-row",
        "masked",
        "reveal",
        "value",
        "new-secret",
        "key-input",
        "value-input",
        "env-input",
        "save",
        "history",
        "rollback",
        "audit-row",
        "chain-status",
        "token-row",
        "grid",
        "grid-cell",
        "detail",
        "confirm",
        "confirm-yes",
        "cancel",
        "delete",
        "revoke",
        "next-page",
        "notice",
        "loading",
    ] {
        let quoted = format!("\"{hook}\"");
        assert!(
            INDEX.contains(&format!("data-testid={quoted}")) || script.contains(&quoted),
            "data-testid {hook}"
        );
    }
}

#[tokio::test]
async fn session_and_token_routes_answer_only_whom_they_should() {
    let server = start(Surfaces::default()).await;
    let scoped = server.token("reader", "default/prod:list,read").await;
    // Who am I: the caller's own name and scopes, never a secret.
    let (status, me) = server.call("GET", "/api/session", &scoped, None).await;
    assert_eq!(status, 200);
    assert_eq!(me["name"], "reader");
    assert_eq!(me["superuser"], false);
    assert_eq!(me["scopes"], json!(["default/prod:list,read"]));
    assert_eq!(me["default_env"], "global");
    assert!(!me.to_string().contains(&scoped[10..]));
    let (status, _) = server
        .call("GET", "/api/session", "sr.bad.token", None)
        .await;
    assert_eq!(status, 401);
    // A scoped token manages no tokens: not list, not create (least of all a superuser),
    // not revoke (not even itself through this route).
    for (method, path, body) in [
        ("GET", "/api/tokens", None),
        (
            "POST",
            "/api/tokens",
            Some(json!({"name": "escalated", "superuser": true})),
        ),
        ("DELETE", "/api/tokens/reader", None),
        ("GET", "/api/audit/verify", None),
    ] {
        let (status, body) = server.call(method, path, &scoped, body).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
    }
    assert!(server
        .tokens
        .list()
        .await
        .unwrap()
        .iter()
        .all(|t| t.name != "escalated"));
    // A superuser creates one: the secret once, then only its hash is kept.
    let (status, created) = server
        .call(
            "POST",
            "/api/tokens",
            ADMIN,
            Some(json!({"name": "ci", "scopes": ["default/staging:list"]})),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let secret = created["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(&format!("sr.{}.", created["id"].as_str().unwrap())));
    let (status, listed) = server.call("GET", "/api/tokens", ADMIN, None).await;
    assert_eq!(status, 200);
    let text = listed.to_string();
    assert!(!text.contains(secret.rsplit('.').next().unwrap()));
    let ci = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap();
    assert_eq!(ci["scopes"], json!(["default/staging:list"]));
    assert_eq!(ci["revoked"], Value::Null);
    let (status, _) = server.call("GET", "/api/session", &secret, None).await;
    assert_eq!(status, 200, "the new token works");
    // Bad input: one clear error, nothing created.
    for body in [
        json!({"name": "admin", "superuser": true}),
        json!({"name": "cli", "scopes": ["default/prod"]}),
        json!({"name": "x:y", "scopes": ["default/prod"]}),
        json!({"name": "noscope"}),
        json!({"name": "both", "superuser": true, "scopes": ["default/prod"]}),
        json!({"name": "badscope", "scopes": ["default/prod:reveal"]}),
        json!({"name": "badscope2", "scopes": ["../etc"]}),
        json!({"name": "extra", "scopes": ["default/prod"], "admin": true}),
    ] {
        let (status, answer) = server
            .call("POST", "/api/tokens", ADMIN, Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {answer}");
    }
    let (status, _) = server
        .call(
            "POST",
            "/api/tokens",
            ADMIN,
            Some(json!({"name": "ci", "scopes": ["default/prod"]})),
        )
        .await;
    assert_eq!(status, 409, "names are unique");
    assert_eq!(server.tokens.list().await.unwrap().len(), 2);
    // Revoke: at once; a second time, or an unknown or bootstrap name, is 404.
    let (status, _) = server.call("DELETE", "/api/tokens/ci", ADMIN, None).await;
    assert_eq!(status, 204);
    let (status, _) = server.call("GET", "/api/session", &secret, None).await;
    assert_eq!(status, 401, "revoked tokens stop at once");
    for name in ["ci", "nobody", "admin", "..%2Freader"] {
        let (status, _) = server
            .call("DELETE", &format!("/api/tokens/{name}"), ADMIN, None)
            .await;
        assert_eq!(status, 404, "{name}");
    }
    let (status, _) = server.call("GET", "/api/session", &scoped, None).await;
    assert_eq!(status, 200, "other tokens untouched");
}

#[tokio::test]
async fn audit_filters_and_chain_status_for_the_console() {
    let server = start(Surfaces::default()).await;
    let reader = server.token("reader", "default/prod:list,read").await;
    server.set("prod", "DB_URL", "postgres://x", "db").await;
    let (status, _) = server
        .call("GET", "/api/secrets/DB_URL?env=prod", &reader, None)
        .await;
    assert_eq!(status, 200);
    let (status, page) = server
        .call(
            "GET",
            "/api/audit?actor=token:reader&action=read",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["key"], "DB_URL");
    let time = items[0]["time"].as_str().unwrap().to_owned();
    let (_, since) = server
        .call("GET", &format!("/api/audit?since={time}"), ADMIN, None)
        .await;
    assert!(since["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "read"));
    let (_, until) = server
        .call("GET", &format!("/api/audit?until={time}"), ADMIN, None)
        .await;
    assert!(until["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["action"] != "read"));
    for bad in ["since=yesterday", "until=2026-13-01T00:00:00Z", "since=%00"] {
        let (status, body) = server
            .call("GET", &format!("/api/audit?{bad}"), ADMIN, None)
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(!body.to_string().contains("yesterday"), "no input echoed");
    }
    let (status, report) = server.call("GET", "/api/audit/verify", ADMIN, None).await;
    assert_eq!(status, 200);
    assert_eq!(report["intact"], true);
    assert_eq!(report["broken_at"], Value::Null);
    // The write, the read, and the reader token's creation (a `token_create` event).
    assert_eq!(report["events"], 3);
    // The list shows version, state and expiry for the console's columns.
    server
        .call(
            "POST",
            "/api/secrets",
            ADMIN,
            Some(json!({"key": "SHORT", "value": "v", "env": "prod", "ttl": "1h"})),
        )
        .await;
    let (_, listed) = server
        .call("GET", "/api/secrets?env=prod&details=true", ADMIN, None)
        .await;
    let short = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == "SHORT")
        .unwrap()
        .clone();
    assert_eq!(short["version"], 1);
    assert_eq!(short["state"], "active");
    assert!(short["expires"].as_str().unwrap().ends_with('Z'));
    // Without `details`, PocketBase's shape, field for field.
    let (_, plain) = server
        .call("GET", "/api/secrets?env=prod", ADMIN, None)
        .await;
    assert!(plain["items"][0].get("version").is_none(), "{plain}");
    for ttl in ["0s", "soon", "-1h"] {
        let (status, _) = server
            .call(
                "POST",
                "/api/secrets",
                ADMIN,
                Some(json!({"key": "BADTTL", "value": "v", "env": "prod", "ttl": ttl})),
            )
            .await;
        assert_eq!(status, 400, "{ttl}");
    }
    let (_, listed) = server
        .call("GET", "/api/secrets?env=prod&prefix=BADTTL", ADMIN, None)
        .await;
    assert_eq!(listed["total"], 0, "nothing written");
}

/// Where Chromium and its driver are (Debian's `chromium` and `chromium-driver`, which
/// `cargo xtask ci` installs). Outside CI, `STRONGROOM_SKIP_BROWSER=1` skips the browser
/// test on a machine without them.
fn browser_present() -> bool {
    let present = std::path::Path::new("/usr/bin/chromium").exists()
        && std::path::Path::new("/usr/bin/chromedriver").exists();
    if !present && std::env::var_os("STRONGROOM_SKIP_BROWSER").is_some() {
        eprintln!("skipped: no Chromium here and STRONGROOM_SKIP_BROWSER is set");
        return false;
    }
    assert!(
        present,
        "the console test needs /usr/bin/chromium and /usr/bin/chromedriver (Debian's \
         chromium and chromium-driver; `cargo xtask ci` installs them), or \
         STRONGROOM_SKIP_BROWSER=1"
    );
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_works_in_a_real_browser() {
    if !browser_present() {
        return;
    }
    let server = start(Surfaces::default()).await;
    server
        .set(
            "prod",
            "DB_URL",
            "postgres://prod-db/app",
            "the app's database",
        )
        .await;
    server.set("prod", "HOSTILE", "harmless", HOSTILE).await;
    server
        .set(
            "global",
            "SHARED_URL",
            "https://shared.example",
            "shared by every env",
        )
        .await;
    for i in 0..30 {
        server
            .set("staging", &format!("PAGED_{i:02}"), "v", "")
            .await;
    }
    // Namespace `team`: qa overrides thirty keys of global (past the first page) and
    // falls back to global for one more.
    for (env, key) in (0..30)
        .flat_map(|i| {
            [
                ("qa", format!("OVR_{i:02}")),
                ("global", format!("OVR_{i:02}")),
            ]
        })
        .chain([("global", "ZZ_ONLY_GLOBAL".to_owned())])
    {
        server
            .store
            .set(&SecretId::new("team", env, key), SetRequest::value("v"))
            .await
            .unwrap();
    }
    server
        .set(
            "prod",
            "PEM",
            "-----BEGIN KEY-----\nline two\n-----END KEY-----",
            "",
        )
        .await;
    // Expired, and a secret with two versions (for single-version delete and destroy).
    server
        .store
        .set(
            &SecretId::new("default", "prod", "OLD"),
            SetRequest {
                expiry: strongroom_store::Expiry::At(1_000),
                ..SetRequest::value("old")
            },
        )
        .await
        .unwrap();
    server.set("prod", "ROTATED", "first", "").await;
    server.set("prod", "ROTATED", "second", "").await;
    server
        .store
        .set(
            &SecretId::new("payments", "prod", "INVOICE_KEY"),
            SetRequest::value("inv"),
        )
        .await
        .unwrap();
    let (status, _) = server
        .call(
            "POST",
            "/v1/sys/auth/approle",
            ADMIN,
            Some(json!({"type": "approle", "description": "CI machines"})),
        )
        .await;
    assert_eq!(status, 204);
    let scoped = server.token("prod-reader", "default/prod:list,read").await;
    let namespace_wide = server.token("payments-team", "payments/*:list,read").await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/console_suite.py"
    );
    // Fresh screenshots go under the target directory, never into the repository's docs:
    // a test leaves the working tree as it found it (copy them to docs/console/ to
    // refresh the documentation's pictures).
    let screenshots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let base = server.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .env("CONSOLE_URL", base)
            .env("ADMIN_TOKEN", ADMIN)
            .env("SCOPED_TOKEN", scoped)
            .env("NAMESPACE_TOKEN", namespace_wide)
            .env("HOSTILE_DESCRIPTION", HOSTILE)
            .env("SCREENSHOTS", screenshots)
            .output()
            .expect("python3 with selenium (cargo xtask ci installs it)")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "console suite failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // What the browser did is in the store and the audit log, under the token's name.
    let reads = server
        .store
        .audit_all(AuditQuery {
            action: Some(Action::Read),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let read = |actor: &str, env: &str, key: &str| {
        reads
            .iter()
            .filter(|e| e.actor == actor && e.env == env && e.key == key)
            .count()
    };
    assert_eq!(
        read("token:admin", "prod", "DB_URL"),
        3,
        "the panel's reveal, the list's reveal and the copy were audited"
    );
    assert_eq!(
        read("token:admin", "global", "SHARED_URL"),
        1,
        "the fallback read (through prod)"
    );
    let labels = server
        .store
        .info(&SecretId::new("default", "prod", "DB_URL"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        labels.metadata.unwrap()["custom_metadata"],
        json!({"owner": "payments-team", "ticket": "OPS-12"}),
        "the labels saved from the panel"
    );
    assert_eq!(
        read("token:prod-reader", "prod", "DB_URL"),
        1,
        "the scoped reveal"
    );
    let history = server
        .store
        .audit_all(AuditQuery {
            key: Some("NEW_KEY".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let actions: Vec<Action> = history.iter().rev().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            Action::Create,
            Action::Update,
            Action::Rollback,
            Action::Read,
            Action::Delete
        ]
    );
    assert!(history.iter().all(|e| e.actor == "token:admin"));
    let made = server
        .tokens
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == "console-made")
        .unwrap();
    assert!(made.revoked.is_some());
    assert!(server
        .store
        .verify_audit()
        .await
        .unwrap()
        .broken_at
        .is_none());
}
