//! Dynamic PostgreSQL credentials (`database/…`, `sys/leases/…`) against a real server on
//! loopback and the real PostgreSQL that `cargo xtask ci` starts: driven by hvac
//! unmodified, every issued login used with psycopg under password authentication.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

const ADMIN: &str = "database-admin-token-0123456789";

/// The test PostgreSQL's URL (`cargo xtask ci` sets it), or `None` when the run skips
/// PostgreSQL on purpose.
fn postgres_url() -> Option<String> {
    match std::env::var("STRONGROOM_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var_os("STRONGROOM_SKIP_POSTGRES").is_some(),
                "STRONGROOM_TEST_POSTGRES_URL is not set: run `cargo xtask ci`, or set STRONGROOM_SKIP_POSTGRES=1"
            );
            None
        }
    }
}

/// Connections, roles, creds that work at once with their password, lookup, renewal
/// capped by max_ttl with VALID UNTIL moved, revocation of a login that owns a table and
/// holds a session, expiry enforced by the server, failing statements that leave nothing,
/// allowed_roles, per-role authorisation, revoke-prefix as a path, hostile names; every
/// issue and revocation audited without a password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_logins_live_exactly_as_long_as_their_leases() {
    let Some(pg) = postgres_url() else {
        return;
    };
    let server =
        common::start_sqlite_with(ADMIN, 9, strongroom_server::Surfaces::default(), true).await;
    let path = format!(
        "{}/tests/clients/database_suite.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = tokio::process::Command::new("python3")
        .args([path.as_str(), &server.base, ADMIN, &pg])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("database: every check passed"),
        "database_suite.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Issued and revoked leases are audit events that name the lease, never a password.
    let events = server
        .store
        .audit_all(strongroom_store::AuditQuery::default())
        .await
        .unwrap();
    let issued = events
        .iter()
        .filter(|e| e.action == strongroom_store::Action::LeaseIssue)
        .count();
    let revoked = events
        .iter()
        .filter(|e| e.action == strongroom_store::Action::LeaseRevoke)
        .count();
    // app, owner, short, the scoped token's, the short-lived and the revoked token's, the
    // flaky database's, the other app login: each issued once and revoked once (the
    // failing role's lease was never issued).
    // Then twelve at once, and the off-UTC, rotated-root, forced and stranded ones.
    assert_eq!((issued, revoked), (24, 24));
    assert!(events
        .iter()
        .filter(|e| e.action == strongroom_store::Action::LeaseIssue)
        .all(|e| e.key.starts_with("database/creds/")));
}

/// Three server instances over one PostgreSQL store, each with its sweeper, racing over the
/// same expired leases: every login is dropped, and each lease is revoked exactly once
/// (one `lease_revoke` event per lease).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_revoke_each_expired_lease_once() {
    use strongroom_crypto::secrecy::SecretString;
    use strongroom_crypto::{Key, KeyRing};
    let Some(pg) = postgres_url() else {
        return;
    };
    let (server, _) = pg.rsplit_once('/').unwrap();
    let suffix = format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let (store_db, target_db) = (
        format!("race_store_{suffix}"),
        format!("race_target_{suffix}"),
    );
    let (admin, connection) = tokio_postgres::connect(&pg, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    for db in [&store_db, &target_db] {
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
    }
    let key = Key::from_bytes(&[5; 32]);
    let mut bases = Vec::new();
    let mut stores = Vec::new();
    for _ in 0..3 {
        let backend = strongroom_store::open_backend(&format!("{server}/{store_db}"))
            .await
            .unwrap();
        let store = strongroom_store::Store::open(
            backend,
            strongroom_store::KeySource::Ring(KeyRing::single(&key)),
            strongroom_store::StoreConfig::default(),
        )
        .await
        .unwrap();
        let tokens =
            strongroom_store::tokens::Tokens::new(&store, Some(&SecretString::from(ADMIN)))
                .unwrap();
        let router = strongroom_server::router(
            strongroom_server::AppState {
                tokens,
                store: Some(store.clone().into()),
                gateway: None,
                metrics: None,
            },
            strongroom_server::Limits::default(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        bases.push(format!("http://{}", listener.local_addr().unwrap()));
        tokio::spawn(strongroom_server::serve(
            listener,
            router,
            std::future::pending(),
        ));
        stores.push(store);
    }
    let http = reqwest::Client::new();
    let host = server.split_once('@').unwrap().1;
    let send =
        |base: &str, method: reqwest::Method, path: &str, body: Option<serde_json::Value>| {
            let mut request = http
                .request(method, format!("{base}/v1/{path}"))
                .header("X-Vault-Token", ADMIN);
            if let Some(body) = body {
                request = request.json(&body);
            }
            request.send()
        };
    let configured = send(
        &bases[0],
        reqwest::Method::POST,
        "database/config/race",
        Some(serde_json::json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": format!("postgresql://{{{{username}}}}:{{{{password}}}}@{host}/{target_db}"),
            "username": "postgres", "password": "unused", "allowed_roles": "*",
        })),
    )
    .await
    .unwrap();
    assert_eq!(configured.status(), 204);
    let role = send(
        &bases[1],
        reqwest::Method::POST,
        "database/roles/brief",
        Some(serde_json::json!({
            "db_name": "race",
            "creation_statements": ["CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'"],
            "default_ttl": "2s", "max_ttl": "2s",
        })),
    )
    .await
    .unwrap();
    assert_eq!(role.status(), 204);
    let mut names = Vec::new();
    for i in 0..30 {
        let made: serde_json::Value = send(
            &bases[i % 3],
            reqwest::Method::GET,
            "database/creds/brief",
            None,
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        names.push(made["data"]["username"].as_str().unwrap().to_owned());
    }
    let (target, connection) =
        tokio_postgres::connect(&format!("{server}/{target_db}"), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let left = target
            .query_one(
                "SELECT count(*) FROM pg_roles WHERE rolname = ANY($1)",
                &[&names],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{left} logins outlived their leases"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let revocations = stores[0]
        .audit_all(strongroom_store::AuditQuery {
            action: Some(strongroom_store::Action::LeaseRevoke),
            ..strongroom_store::AuditQuery::default()
        })
        .await
        .unwrap();
    let mut ids: Vec<&str> = revocations.iter().map(|e| e.key.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        (revocations.len(), ids.len()),
        (30, 30),
        "each lease revoked exactly once"
    );
}

/// A server killed after recording a lease and making its login, before activating it,
/// leaves a pending lease: once its grace has passed, a sweeper drops the login (none is
/// left that nobody will revoke). The crash is simulated by putting a real lease back to
/// `pending` with its grace over, as the dead server left it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_made_before_a_crash_is_dropped_by_the_sweeper() {
    let Some(pg) = postgres_url() else {
        return;
    };
    let server = common::start_sqlite(ADMIN, 9, strongroom_server::Surfaces::default()).await;
    let (base, _) = pg.rsplit_once('/').unwrap();
    let host = base.split_once('@').unwrap().1;
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{}/v1/{path}", server.base))
            .header("X-Vault-Token", ADMIN)
            .json(&body)
            .send()
    };
    let written = post(
        "database/config/crash",
        serde_json::json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": format!("postgresql://{{{{username}}}}:{{{{password}}}}@{host}/postgres"),
            "username": "postgres", "password": "unused", "allowed_roles": "*",
        }),
    )
    .await
    .unwrap();
    assert_eq!(written.status(), 204);
    let written = post(
        "database/roles/crash",
        serde_json::json!({
            "db_name": "crash",
            "creation_statements": ["CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'"],
            "default_ttl": "1h",
        }),
    )
    .await
    .unwrap();
    assert_eq!(written.status(), 204);
    let made: serde_json::Value = http
        .get(format!("{}/v1/database/creds/crash", server.base))
        .header("X-Vault-Token", ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (lease, login) = (
        made["lease_id"].as_str().unwrap().to_owned(),
        made["data"]["username"].as_str().unwrap().to_owned(),
    );
    let row = server.store.lease_row(&lease).await.unwrap().unwrap();
    let left_by_the_crash = strongroom_store::backend::LeaseRow {
        state: "pending".into(),
        next_attempt: strongroom_store::Timestamp::now(),
        ..row.clone()
    };
    assert!(server
        .store
        .update_lease(row, left_by_the_crash, None)
        .await
        .unwrap());
    let (client, connection) = tokio_postgres::connect(&pg, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while client
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&login])
        .await
        .unwrap()
        .is_some()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "a login made before a crash was never dropped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let state = server.store.lease_row(&lease).await.unwrap().unwrap().state;
        if state == "revoked" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the lease is {state}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The lease sweeper looks once a second, and for leases whose token is gone every 10 s;
/// with nothing to do it only reads. (It claimed in a write transaction each second, and
/// listed the leases in one every 10 s: commits on an idle server, and on PostgreSQL
/// groups that must run alone, holding back the others.)
#[tokio::test]
async fn an_idle_server_with_no_lease_due_commits_nothing() {
    let server =
        common::start_sqlite_with(ADMIN, 9, strongroom_server::Surfaces::default(), false).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = server.store.stats();
    // Past the first look for orphans (10 s after the start).
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    let after = server.store.stats();
    assert_eq!(
        (after.group_commits, after.committed_transactions),
        (before.group_commits, before.committed_transactions),
        "an idle server committed"
    );
}
