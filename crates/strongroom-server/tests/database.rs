//! Dynamic PostgreSQL credentials (`database/…`, `sys/leases/…`) against a real server on
//! loopback and the real PostgreSQL that `cargo xtask ci` starts: driven by hvac
//! unmodified, every issued login used with psycopg under password authentication.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

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
    // Then twelve at once, and the off-UTC, rotated-root and forced ones.
    assert_eq!((issued, revoked), (23, 23));
    assert!(events
        .iter()
        .filter(|e| e.action == strongroom_store::Action::LeaseIssue)
        .all(|e| e.key.starts_with("database/creds/")));
}
