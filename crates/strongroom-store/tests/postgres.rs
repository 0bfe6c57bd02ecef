//! The behaviour suite on PostgreSQL, against a real server.
//!
//! `cargo xtask ci` starts a throw-away server and sets `STRONGROOM_TEST_POSTGRES_URL`
//! (a superuser URL); each test gets a fresh database. Without that variable these tests
//! fail, unless `STRONGROOM_SKIP_POSTGRES=1` is set explicitly.

// Tests: a panic is the failure report; harness makers are async for every backend.
#![allow(clippy::unwrap_used, clippy::unused_async)]
#![cfg(feature = "postgres")]

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use strongroom_crypto::secrecy::ExposeSecret as _;
use strongroom_store::backend::postgres::{PostgresBackend, PostgresOptions, ReadCacheConfig};
use strongroom_store::backend::Backend;
use strongroom_store::SecretId;

struct PostgresHarness {
    url: String,
    client: tokio_postgres::Client,
}

async fn postgres() -> Option<PostgresHarness> {
    let url = common::fresh_postgres_database().await?;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    Some(PostgresHarness { url, client })
}

const CURRENT_VALUE: &str = "FROM strongroom.strongroom_secret_versions v JOIN strongroom.strongroom_secrets s ON s.sid = v.sid AND s.version = v.version
     WHERE s.namespace = $1 AND s.env = $2 AND s.key = $3";

#[async_trait]
impl strongroom_store::testing::Harness for PostgresHarness {
    async fn backend(&self) -> Arc<dyn Backend> {
        Arc::new(
            PostgresBackend::connect(&self.url, 4, "strongroom")
                .await
                .unwrap(),
        )
    }
    async fn overwrite_value(&self, id: &SecretId, bytes: Vec<u8>) {
        // Make sure the schema exists before touching it directly.
        drop(self.backend().await);
        let n = self
            .client
            .execute(
                &format!("UPDATE strongroom.strongroom_secret_versions SET value = $4 WHERE vid = (SELECT v.vid {CURRENT_VALUE})"),
                &[&id.namespace, &id.env, &id.key, &bytes],
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    async fn tamper_audit(&self, tamper: strongroom_store::testing::AuditTamper) {
        let table = "strongroom.strongroom_audit_events";
        let columns = "time, actor, action, namespace, env, key, version, kek_version, link";
        self.client
            .batch_execute(&format!("ALTER TABLE {table} DISABLE TRIGGER USER"))
            .await
            .unwrap();
        match tamper {
            strongroom_store::testing::AuditTamper::SetActor(id, actor) => {
                self.client
                    .execute(
                        &format!("UPDATE {table} SET actor = $2 WHERE id = $1"),
                        &[&id, &actor],
                    )
                    .await
                    .unwrap();
            }
            strongroom_store::testing::AuditTamper::Delete(id) => {
                self.client
                    .execute(&format!("DELETE FROM {table} WHERE id = $1"), &[&id])
                    .await
                    .unwrap();
            }
            strongroom_store::testing::AuditTamper::StripLinks => {
                self.client
                    .batch_execute(&format!(
                        "DELETE FROM strongroom.strongroom_meta WHERE name = 'audit_anchor'; UPDATE {table} SET link = NULL;"
                    ))
                    .await
                    .unwrap();
            }
            strongroom_store::testing::AuditTamper::DeleteFrom(id) => {
                self.client
                    .execute(&format!("DELETE FROM {table} WHERE id >= $1"), &[&id])
                    .await
                    .unwrap();
            }
            strongroom_store::testing::AuditTamper::DeleteAll => {
                self.client
                    .batch_execute(&format!(
                        "DELETE FROM strongroom.strongroom_meta WHERE name = 'audit_anchor'; DELETE FROM {table};"
                    ))
                    .await
                    .unwrap();
            }
            strongroom_store::testing::AuditTamper::RetargetTies => {
                self.client
                    .batch_execute("UPDATE strongroom.strongroom_secret_versions SET audit_seq = 0")
                    .await
                    .unwrap();
            }
            strongroom_store::testing::AuditTamper::ForgeAnchor(seq) => {
                self.client
                    .execute(
                        "INSERT INTO strongroom.strongroom_meta (name, value) VALUES ('audit_anchor', $1)
                         ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                        &[&format!("{seq}:{}:{}", "ab".repeat(40), "cd".repeat(40))],
                    )
                    .await
                    .unwrap();
            }
            strongroom_store::testing::AuditTamper::Swap(a, b) => {
                self.client
                    .batch_execute(&format!(
                        "CREATE TEMP TABLE swap AS SELECT * FROM {table} WHERE id IN ({a}, {b});
                         UPDATE {table} SET ({columns}) = (SELECT {columns} FROM swap WHERE id = {b}) WHERE id = {a};
                         UPDATE {table} SET ({columns}) = (SELECT {columns} FROM swap WHERE id = {a}) WHERE id = {b};
                         DROP TABLE swap;"
                    ))
                    .await
                    .unwrap();
            }
        }
        self.client
            .batch_execute(&format!("ALTER TABLE {table} ENABLE TRIGGER USER"))
            .await
            .unwrap();
    }
    async fn stored_value(&self, id: &SecretId) -> Vec<u8> {
        self.client
            .query_one(
                &format!("SELECT v.value {CURRENT_VALUE}"),
                &[&id.namespace, &id.env, &id.key],
            )
            .await
            .unwrap()
            .get(0)
    }
}

strongroom_store::backend_conformance_suite!(postgres);

/// The same suite with the read cache on: one cached backend serves every handle (so the
/// suite's "next read" expectations hold without waiting for a notification), and direct
/// SQL changes wait until the notification has reached the cache.
mod with_read_cache {
    use super::*;

    pub(super) struct CachedHarness {
        inner: PostgresHarness,
        shared: tokio::sync::OnceCell<Arc<PostgresBackend>>,
    }

    pub(super) async fn cached() -> Option<CachedHarness> {
        Some(CachedHarness {
            inner: postgres().await?,
            shared: tokio::sync::OnceCell::new(),
        })
    }

    impl CachedHarness {
        async fn shared(&self) -> Arc<PostgresBackend> {
            self.shared
                .get_or_init(|| async { Arc::new(cached_backend(&self.inner.url).await) })
                .await
                .clone()
        }
    }

    #[async_trait]
    impl strongroom_store::testing::Harness for CachedHarness {
        async fn backend(&self) -> Arc<dyn Backend> {
            self.shared().await
        }
        async fn overwrite_value(&self, id: &SecretId, bytes: Vec<u8>) {
            let backend = self.shared().await;
            let seen = invalidations(&backend);
            self.inner.overwrite_value(id, bytes).await;
            wait_for_invalidation(&backend, seen).await;
        }
        async fn tamper_audit(&self, tamper: strongroom_store::testing::AuditTamper) {
            self.inner.tamper_audit(tamper).await;
        }
        async fn stored_value(&self, id: &SecretId) -> Vec<u8> {
            self.inner.stored_value(id).await
        }
    }

    strongroom_store::backend_conformance_suite!(cached);
}

/// A backend on `url` with the read cache on, its listener connected.
async fn cached_backend(url: &str) -> PostgresBackend {
    let backend = PostgresBackend::open(
        url,
        &PostgresOptions {
            max_connections: 4,
            read_cache: Some(ReadCacheConfig::default()),
            ..PostgresOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(backend.read_cache_stats().unwrap().live, "listener not up");
    backend
}

fn invalidations(backend: &PostgresBackend) -> u64 {
    backend.read_cache_stats().unwrap().invalidations
}

/// Waits (at most 10 s) until `backend` has received an invalidation after `seen`.
async fn wait_for_invalidation(backend: &PostgresBackend, seen: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while invalidations(backend) <= seen {
        assert!(
            std::time::Instant::now() < deadline,
            "no change notification reached the cache"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn two_processes_opening_a_fresh_database_at_once_migrate_it_once() {
    let Some(url) = common::fresh_postgres_database().await else {
        return;
    };
    let opens: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                PostgresBackend::connect(&url, 1, "strongroom")
                    .await
                    .map(drop)
            })
        })
        .collect();
    for open in opens {
        open.await.unwrap().unwrap();
    }
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT version FROM strongroom.strongroom_schema_version",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
}

#[tokio::test]
async fn audit_events_are_append_only_in_the_database() {
    let Some(harness) = postgres().await else {
        return;
    };
    let store = common::open(&harness).await;
    common::set(&store, "global", "K", "v").await;
    assert!(harness
        .client
        .execute(
            "UPDATE strongroom.strongroom_audit_events SET actor = 'x'",
            &[]
        )
        .await
        .is_err());
    assert!(harness
        .client
        .execute("DELETE FROM strongroom.strongroom_audit_events", &[])
        .await
        .is_err());
}

#[tokio::test]
async fn independent_stores_live_side_by_side_in_schemas() {
    let Some(url) = common::fresh_postgres_database().await else {
        return;
    };
    let open = |schema: &'static str, byte: u8| {
        let url = url.clone();
        async move {
            let backend = Arc::new(PostgresBackend::connect(&url, 2, schema).await.unwrap());
            strongroom_store::Store::open(
                backend,
                strongroom_store::KeySource::Ring(common::ring(&[(1, byte)])),
                strongroom_store::StoreConfig::default(),
            )
            .await
        }
    };
    let team_a = open("team_a", 0xa1).await.unwrap();
    let team_b = open("team_b", 0xb2).await.unwrap();
    common::set(&team_a, "global", "K", "a-value").await;
    common::set(&team_b, "global", "K", "b-value").await;
    assert_eq!(common::value(&team_a, "global", "K").await, "a-value");
    assert_eq!(common::value(&team_b, "global", "K").await, "b-value");
    assert_eq!(
        team_a
            .list(strongroom_store::ListQuery::default())
            .await
            .unwrap()
            .total,
        1
    );
    // Each schema knows its own key: B's key is refused in A's schema.
    assert!(matches!(
        open("team_a", 0xb2).await,
        Err(strongroom_store::StoreError::WrongKey { .. })
    ));
    assert!(PostgresBackend::connect(&url, 1, "Bad-Schema")
        .await
        .is_err());
}

/// Two stores on one database, as two processes: `writer` without a cache, `reader` with.
async fn writer_and_cached_reader(
    harness: &PostgresHarness,
) -> (
    strongroom_store::Store,
    strongroom_store::Store,
    Arc<PostgresBackend>,
) {
    let open = |backend: Arc<dyn Backend>| async move {
        strongroom_store::Store::open(
            backend,
            strongroom_store::KeySource::Ring(common::ring(&[(1, 0x11)])),
            strongroom_store::StoreConfig::default(),
        )
        .await
        .unwrap()
    };
    let writer = open(strongroom_store::testing::Harness::backend(harness).await).await;
    let cached = Arc::new(cached_backend(&harness.url).await);
    let reader = open(cached.clone()).await;
    (writer, reader, cached)
}

fn description(read: &strongroom_store::PendingRead) -> &str {
    &read.info().description
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_cache_sees_another_process_write_update_and_delete() {
    let Some(harness) = postgres().await else {
        return;
    };
    let (writer, reader, cached) = writer_and_cached_reader(&harness).await;
    let seen = invalidations(&cached);
    common::set(&writer, "global", "K", "v1").await;
    wait_for_invalidation(&cached, seen).await;
    assert_eq!(common::value(&reader, "global", "K").await, "v1");
    assert_eq!(common::value(&reader, "global", "K").await, "v1");
    let stats = cached.read_cache_stats().unwrap();
    assert!(
        stats.hits >= 1,
        "the second read is served from the cache: {stats:?}"
    );

    for (step, change) in ["update", "delete", "create"].into_iter().enumerate() {
        let seen = invalidations(&cached);
        match change {
            "update" => common::set(&writer, "global", "K", "v2").await,
            "delete" => writer.delete(&common::id("global", "K")).await.unwrap(),
            _ => common::set(&writer, "global", "K", "v3").await,
        }
        wait_for_invalidation(&cached, seen).await;
        let read = reader.get(&common::id("global", "K")).await;
        match step {
            0 => assert_eq!(
                read.unwrap().commit().await.unwrap().value.expose_secret(),
                b"v2".as_slice()
            ),
            1 => assert!(
                matches!(read, Err(strongroom_store::StoreError::NotFound(_))),
                "{:?} {:?}",
                read.as_ref().map(strongroom_store::PendingRead::version),
                cached.read_cache_stats()
            ),
            _ => assert_eq!(
                read.unwrap().commit().await.unwrap().value.expose_secret(),
                b"v3".as_slice()
            ),
        }
    }
    // "Not found" is cached too (fallback probes), and a create elsewhere clears it.
    assert!(reader.get(&common::id("prod", "NEW")).await.is_err());
    let seen = invalidations(&cached);
    common::set(&writer, "global", "NEW", "fallback").await;
    wait_for_invalidation(&cached, seen).await;
    assert_eq!(common::value(&reader, "prod", "NEW").await, "fallback");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_cache_is_invalidated_by_hand_written_sql_through_triggers() {
    let Some(harness) = postgres().await else {
        return;
    };
    let (writer, reader, cached) = writer_and_cached_reader(&harness).await;
    let seen = invalidations(&cached);
    common::set(&writer, "global", "K", "v").await;
    wait_for_invalidation(&cached, seen).await;
    let id = common::id("global", "K");
    assert_eq!(description(&reader.get(&id).await.unwrap()), "");
    let seen = invalidations(&cached);
    harness
        .client
        .execute(
            "UPDATE strongroom.strongroom_secrets SET description = 'set by SQL' WHERE key = 'K'",
            &[],
        )
        .await
        .unwrap();
    wait_for_invalidation(&cached, seen).await;
    assert_eq!(description(&reader.get(&id).await.unwrap()), "set by SQL");

    // With triggers bypassed (a superuser's replica role), the cache keeps serving what it
    // read: proof that reads come from it, and why the docs say not to do this.
    harness
        .client
        .batch_execute(
            "SET session_replication_role = replica;
             UPDATE strongroom.strongroom_secrets SET description = 'silent' WHERE key = 'K';
             SET session_replication_role = origin;",
        )
        .await
        .unwrap();
    assert_eq!(description(&writer.get(&id).await.unwrap()), "silent");
    assert_eq!(description(&reader.get(&id).await.unwrap()), "set by SQL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_cache_is_bypassed_while_its_listener_is_down_and_recovers() {
    let Some(harness) = postgres().await else {
        return;
    };
    let (writer, reader, cached) = writer_and_cached_reader(&harness).await;
    common::set(&writer, "global", "K", "before").await;
    assert_eq!(common::value(&reader, "global", "K").await, "before");
    let killed = harness
        .client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(killed, 1, "one listening connection");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while cached.read_cache_stats().unwrap().live {
        assert!(std::time::Instant::now() < deadline, "loss not noticed");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    // While no notification can arrive, a write elsewhere is still seen at once.
    common::set(&writer, "global", "K", "during").await;
    assert_eq!(common::value(&reader, "global", "K").await, "during");
    while !cached.read_cache_stats().unwrap().live {
        assert!(
            std::time::Instant::now() < deadline,
            "listener not reconnected"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(common::value(&reader, "global", "K").await, "during");
    let seen = invalidations(&cached);
    common::set(&writer, "global", "K", "after").await;
    wait_for_invalidation(&cached, seen).await;
    assert_eq!(common::value(&reader, "global", "K").await, "after");
}

/// TLS to the test server (`cargo xtask ci` gives it a certificate from a throw-away CA,
/// `STRONGROOM_TEST_POSTGRES_CA`).
#[cfg(feature = "postgres-tls")]
mod tls {
    use super::*;

    fn ca_file() -> std::path::PathBuf {
        std::env::var_os("STRONGROOM_TEST_POSTGRES_CA")
            .expect("STRONGROOM_TEST_POSTGRES_CA is not set: the server `cargo xtask ci` starts provides it")
            .into()
    }

    /// `url` with `params` appended to its query.
    fn with(url: &str, params: &str) -> String {
        format!("{url}?{params}")
    }

    async fn open(
        url: &str,
        ca_file: Option<std::path::PathBuf>,
    ) -> strongroom_store::Result<PostgresBackend> {
        PostgresBackend::open(
            url,
            &PostgresOptions {
                max_connections: 2,
                read_cache: Some(ReadCacheConfig::default()),
                ca_file,
                ..PostgresOptions::default()
            },
        )
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sslmode_require_uses_verified_tls_for_every_connection() {
        let Some(harness) = postgres().await else {
            return;
        };
        let backend = open(&with(&harness.url, "sslmode=require"), Some(ca_file()))
            .await
            .unwrap();
        assert!(
            backend.read_cache_stats().unwrap().live,
            "the listener is up over TLS"
        );
        let store = strongroom_store::Store::open(
            Arc::new(backend),
            strongroom_store::KeySource::Ring(common::ring(&[(1, 0x11)])),
            strongroom_store::StoreConfig::default(),
        )
        .await
        .unwrap();
        common::set(&store, "global", "K", "over tls").await;
        assert_eq!(common::value(&store, "global", "K").await, "over tls");
        let row = harness
            .client
            .query_one(
                "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
                 FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
                 WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        let (tls, plain): (i64, i64) = (row.get(0), row.get(1));
        assert!(tls >= 2, "a pooled connection and the listener: {tls}");
        assert_eq!(plain, 0, "no plaintext connection besides the test's own");
    }

    #[tokio::test]
    async fn an_unverifiable_server_is_refused() {
        let Some(harness) = postgres().await else {
            return;
        };
        // The throw-away CA is not among the Mozilla roots.
        let error = open(&with(&harness.url, "sslmode=require"), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("certificate"), "{error}");
        // The right CA, the wrong host name.
        let (_, rest) = harness.url.split_once('@').unwrap();
        let (_, port_db) = rest.split_once(':').unwrap();
        let wrong =
            format!("postgres://postgres@db.invalid:{port_db}?hostaddr=127.0.0.1&sslmode=require");
        let error = open(&wrong, Some(ca_file())).await.unwrap_err().to_string();
        assert!(error.contains("certificate"), "{error}");
    }

    #[tokio::test]
    async fn tls_settings_that_cannot_work_are_refused_before_connecting() {
        let Some(harness) = postgres().await else {
            return;
        };
        // A CA file without sslmode=require would silently protect nothing.
        let error = open(&harness.url, Some(ca_file()))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("sslmode=require"), "{error}");
        let missing = std::path::PathBuf::from("/nonexistent/ca.pem");
        let error = open(&with(&harness.url, "sslmode=require"), Some(missing))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("STRONGROOM_PG_CA_FILE"), "{error}");
    }
}

/// A database written by the last release before schema 4 (`pg_dump --inserts` of what
/// that release's CLI wrote; tests/fixtures/README.md): after the upgrade every value
/// reads back, under its version-bound context, and the whole log verifies.
#[tokio::test]
async fn a_database_written_by_the_previous_release_upgrades_resealed_and_chained() {
    let Some(harness) = postgres().await else {
        return;
    };
    let dump = include_str!("fixtures/schema3.pg.sql");
    harness.client.batch_execute(dump).await.unwrap();
    let old_events: i64 = harness
        .client
        .query_one(
            "SELECT count(*) FROM strongroom.strongroom_audit_events",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let store = common::open_with(
        &harness,
        &[(2, 0x22), (1, 0x11)],
        strongroom_store::StoreConfig::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        common::value(&store, "prod", "DATABASE_URL").await,
        "postgres://prod-v2"
    );
    assert_eq!(
        common::value(&store, "global", "DATABASE_URL").await,
        "postgres://global"
    );
    let v1 = store
        .get_version(&common::id("prod", "DATABASE_URL"), 1)
        .await
        .unwrap()
        .commit()
        .await
        .unwrap()
        .value;
    assert_eq!(v1.expose_secret(), b"postgres://prod-v1");
    let verified = store.verify_audit().await.unwrap();
    assert_eq!(verified.broken_at, None, "{verified:?}");
    let versions: i64 = harness
        .client
        .query_one(
            "SELECT count(*) FROM strongroom.strongroom_secret_versions",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // Every old event kept, one reseal per version, and the three reads just committed.
    assert_eq!(
        i64::try_from(verified.events).unwrap(),
        old_events + versions + 3
    );
    // Appends continue the chain after the upgrade.
    common::set(&store, "global", "AFTER", "x").await;
    assert_eq!(store.verify_audit().await.unwrap().broken_at, None);
}

/// Attack on the shorter critical section: a group commit takes the chain's lock last
/// (after its row locks); an operation of another process that took the lock first and
/// a row lock after would deadlock with it (PostgreSQL then aborts one: an error, a
/// second's stall). Two processes hammer one secret, one writing values, the other
/// changing its metadata, settings and versions, soft-deleting and undeleting: nothing
/// fails, and the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_secret_never_deadlock_on_the_chain_lock() {
    let Some(harness) = postgres().await else {
        return;
    };
    let (first, second, _) = writer_and_cached_reader(&harness).await;
    let id = SecretId::new("default", "prod", "CONTENDED");
    first
        .set(&id, strongroom_store::SetRequest::value("v0"))
        .await
        .unwrap();
    let writes = (0..60).map(|i| {
        let store = first.with_actor(&format!("writer-{i}"));
        let id = id.clone();
        async move {
            store
                .set(&id, strongroom_store::SetRequest::value(format!("v{i}")))
                .await
                .map(drop)
        }
    });
    let meddling = (0..60).map(|i| {
        let store = second.with_actor(&format!("changer-{i}"));
        let id = id.clone();
        async move {
            match i % 3 {
                0 => store
                    .update_meta(
                        &id,
                        strongroom_store::MetaUpdate {
                            description: Some(format!("d{i}")),
                            ..strongroom_store::MetaUpdate::default()
                        },
                    )
                    .await
                    .map(drop),
                1 => {
                    store
                        .set_settings(
                            &id,
                            strongroom_store::SecretSettings {
                                max_versions: Some(5 + i % 4),
                                cas_required: false,
                            },
                        )
                        .await
                }
                _ => store.history(&id).await.map(drop),
            }
        }
    });
    let (written, meddled) = tokio::join!(
        futures_util::future::join_all(writes),
        futures_util::future::join_all(meddling)
    );
    for outcome in written.into_iter().chain(meddled) {
        outcome.unwrap();
    }
    let report = first.verify_audit().await.unwrap();
    assert!(report.broken_at.is_none(), "{report:?}");
}

/// Attack on the commit that carries held statements: a group's events go out with its
/// `COMMIT` in one round trip, so a failing event insert (here an event at a sequence
/// number the log already has, as a row written by someone else would make it) must fail
/// the transaction, with nothing of it stored, and leave the pooled connection usable
/// (not stuck in an open or aborted transaction).
#[tokio::test]
async fn a_held_statement_that_fails_at_the_commit_stores_nothing() {
    let Some(harness) = postgres().await else {
        return;
    };
    let store = common::open(&harness).await;
    common::set(&store, "global", "K", "v").await;
    let events = || {
        count(
            &harness.client,
            "SELECT count(*) FROM strongroom.strongroom_audit_events",
            None,
        )
    };
    let before = events().await;
    let backend = strongroom_store::testing::Harness::backend(&harness).await;
    let failed = backend
        .transaction(Box::new(|tx| {
            Box::pin(async move {
                tx.set_meta("held-probe", Some("written")).await?;
                let record = strongroom_store::backend::AuditRecord {
                    time: strongroom_store::Timestamp(0),
                    actor: "attacker".into(),
                    action: strongroom_store::Action::Read,
                    id: SecretId::new("default", "global", "K"),
                    version: Some(1),
                    kek_version: Some(1),
                };
                // Sequence 1 exists: the insert fails on the primary key.
                tx.insert_events(&[strongroom_store::backend::NewEvent {
                    seq: 1,
                    record: &record,
                    link: vec![0; 32],
                }])
                .await
            })
        }))
        .await;
    assert!(
        failed.is_err(),
        "the commit carried a failing insert: {failed:?}"
    );
    assert_eq!(events().await, before, "no event stored");
    assert_eq!(
        backend.meta("held-probe").await.unwrap(),
        None,
        "nothing stored"
    );
    // Every pooled connection still works: more transactions than the pool holds.
    for i in 0..8 {
        common::set(&store, "global", &format!("AFTER_{i}"), "v").await;
        backend
            .transaction(Box::new(move |tx| {
                Box::pin(async move { tx.set_meta("held-probe-after", Some(&i.to_string())).await })
            }))
            .await
            .unwrap();
    }
    assert_eq!(
        backend.meta("held-probe-after").await.unwrap().as_deref(),
        Some("7")
    );
}

/// Attack on statements that ride past their savepoint: a grouped write's version row is
/// held after its savepoint is kept and goes out with the next write's first statement.
/// If that row then fails, the kept savepoint was never released, and undoing "the next
/// write" (a rollback to the savepoint of the same name) would undo the kept write while
/// its caller was told it landed. The whole transaction must fail instead, with nothing of
/// it stored, and the pooled connection stay usable.
#[tokio::test]
async fn a_kept_write_whose_held_row_fails_later_fails_the_whole_group() {
    let Some(harness) = postgres().await else {
        return;
    };
    let store = common::open(&harness).await;
    common::set(&store, "global", "CARRIED", "v").await;
    let sid: i64 = harness
        .client
        .query_one(
            "SELECT sid FROM strongroom.strongroom_secrets WHERE key = 'CARRIED'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let backend = strongroom_store::testing::Harness::backend(&harness).await;
    let kept = std::sync::Arc::new(std::sync::Mutex::new(None));
    let told = std::sync::Arc::clone(&kept);
    let failed = backend
        .transaction(Box::new(move |tx| {
            Box::pin(async move {
                assert!(tx.savepoint().await?);
                tx.set_meta("carried-probe", Some("kept")).await?;
                let row = strongroom_store::backend::SecretRow {
                    sid,
                    row_id: "carried".into(),
                    id: SecretId::new("default", "global", "CARRIED"),
                    version: 1,
                };
                let value = strongroom_store::backend::StoredValue {
                    value: vec![1],
                    value_hash: vec![2],
                    kek_version: 1,
                };
                // Version 1 exists: the insert fails on (sid, version) when it goes out.
                let inserted = tx
                    .insert_version(strongroom_store::backend::NewVersion {
                        row: &row,
                        value: &value,
                        created: strongroom_store::Timestamp(0),
                        actor: "attacker",
                        audit_seq: 0,
                        audit_tag: &[0; 32],
                        trim_through: 0,
                    })
                    .await;
                let ended = tx.savepoint_end(inserted.is_ok()).await;
                *told.lock().unwrap() = Some(inserted.is_ok() && ended.is_ok());
                ended?;
                inserted?;
                // The next write: its first statement carries the failing row.
                assert!(tx.savepoint().await?);
                let next = tx.set_meta("carried-probe-next", Some("x")).await;
                tx.savepoint_end(next.is_ok()).await
            })
        }))
        .await;
    let meta = backend.meta("carried-probe").await.unwrap();
    if *kept.lock().unwrap() == Some(true) {
        // The first write was told it landed: then it must be stored, or nothing was.
        assert!(
            failed.is_err() || meta.as_deref() == Some("kept"),
            "a write told it landed was undone by the next one's rollback: {failed:?}"
        );
    }
    assert!(
        failed.is_err(),
        "the failing row was not reported: {failed:?}"
    );
    assert_eq!(meta, None, "nothing of the failed transaction is stored");
    assert_eq!(backend.meta("carried-probe-next").await.unwrap(), None);
    for i in 0..8 {
        common::set(&store, "global", &format!("CARRIED_{i}"), "v").await;
    }
}

/// Two processes appending to one audit chain share its lock: each finds the other's
/// events at the head it reads and then commits one group at a time (fewer, larger groups
/// taking the shared lock less often); a process appending alone keeps the backend's two
/// lanes. Reported as `commit_lanes` (`/metrics`: `group_commit_lanes`).
#[tokio::test]
async fn a_store_that_shares_the_chain_commits_one_group_at_a_time() {
    let Some(harness) = postgres().await else {
        return;
    };
    let (first, second, _) = writer_and_cached_reader(&harness).await;
    let id = |key: &str| SecretId::new("default", "prod", key);
    let write = |store: &strongroom_store::Store, key: &'static str| {
        let store = store.clone();
        async move {
            store
                .set(&id(key), strongroom_store::SetRequest::value("v"))
                .await
                .unwrap();
        }
    };
    // Alone: every head `first` reads is its own.
    for key in ["A1", "A2", "A3"] {
        write(&first, key).await;
    }
    assert_eq!(first.stats().commit_lanes, 2, "alone on the chain");
    // `second` appends once (it has no append of its own to compare yet), then `first`,
    // then `second` again: it finds `first`'s event at the head.
    write(&second, "B1").await;
    write(&first, "A4").await;
    assert_eq!(first.stats().commit_lanes, 1, "first found second's event");
    write(&second, "B2").await;
    assert_eq!(second.stats().commit_lanes, 1, "second found first's event");
    let verified = first.verify_audit().await.unwrap();
    assert_eq!(verified.broken_at, None);
}

/// Attack with a row someone else wrote: since schema 13 no foreign key stops a database
/// writer from adding a version row of no secret, here under a key version the store has
/// never had. Such a row is never read, and must not count anywhere either: the store
/// still opens (it would refuse, asking for key version 77), and rotation counts only
/// versions of secrets.
#[tokio::test]
async fn a_version_row_of_no_secret_is_ignored_everywhere() {
    let Some(harness) = postgres().await else {
        return;
    };
    let store = common::open(&harness).await;
    common::set(&store, "global", "REAL", "v").await;
    harness
        .client
        .execute(
            "INSERT INTO strongroom.strongroom_secret_versions
                 (sid, version, value, value_hash, kek_version, created, actor)
             VALUES (987654321, 1, '\\x00', '\\x00', 77, 0, 'attacker')",
            &[],
        )
        .await
        .unwrap();
    drop(store);
    let reopened = common::open(&harness).await;
    let status = reopened.rotation_status().await.unwrap();
    assert!(
        status
            .by_version
            .iter()
            .all(|usage| usage.kek_version != 77),
        "{status:?}"
    );
    assert_eq!(common::value(&reopened, "global", "REAL").await, "v");
}

/// The count `sql` answers (its one parameter `key`, when given).
async fn count(client: &tokio_postgres::Client, sql: &str, key: Option<&str>) -> i64 {
    let row = match key {
        Some(key) => client.query_one(sql, &[&key]).await,
        None => client.query_one(sql, &[]).await,
    };
    row.unwrap().get(0)
}

/// Deleting a secret deletes every version row (its ciphertexts) with it: since schema 13
/// by a trigger, not a foreign key's cascade. Counted in the table itself, where an orphan
/// left behind would sit unseen (reads join the secret row).
#[tokio::test]
async fn deleting_a_secret_leaves_none_of_its_version_rows() {
    let Some(harness) = postgres().await else {
        return;
    };
    let store = common::open(&harness).await;
    for value in ["v1", "v2", "v3"] {
        common::set(&store, "global", "GONE", value).await;
    }
    common::set(&store, "global", "KEPT", "v").await;
    let client = &harness.client;
    let versions_of = |key: &'static str| {
        count(
            client,
            "SELECT count(*) FROM strongroom.strongroom_secret_versions v
             WHERE v.sid IN (SELECT sid FROM strongroom.strongroom_secrets WHERE key = $1)",
            Some(key),
        )
    };
    let all = || {
        count(
            client,
            "SELECT count(*) FROM strongroom.strongroom_secret_versions",
            None,
        )
    };
    assert_eq!(versions_of("GONE").await, 3);
    let all_before = all().await;
    store
        .delete(&SecretId::new("default", "global", "GONE"))
        .await
        .unwrap();
    assert_eq!(
        all().await,
        all_before - 3,
        "every version of the deleted secret is gone"
    );
    let orphans = count(
        client,
        "SELECT count(*) FROM strongroom.strongroom_secret_versions v
         WHERE NOT EXISTS (SELECT 1 FROM strongroom.strongroom_secrets s WHERE s.sid = v.sid)",
        None,
    );
    assert_eq!(orphans.await, 0);
    assert_eq!(versions_of("KEPT").await, 1, "other secrets keep theirs");
}

/// Attack on a transaction cancelled midway (a request's future dropped after its `BEGIN`
/// and the chain's lock went out): the pooled connection must not go back to the pool
/// inside that transaction (the next user would run in it, or wait forever on the lock).
/// It is closed instead: the server ends the transaction and releases the lock, and every
/// later transaction runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_cancelled_midway_leaves_no_connection_inside_it() {
    let Some(harness) = postgres().await else {
        return;
    };
    let store = common::open(&harness).await;
    common::set(&store, "global", "K", "v").await;
    let backend = strongroom_store::testing::Harness::backend(&harness).await;
    let (locked, is_locked) = tokio::sync::oneshot::channel::<()>();
    let stuck = backend.transaction(Box::new(move |tx| {
        Box::pin(async move {
            tx.set_meta("cancelled-probe", Some("never")).await?;
            tx.lock_audit_head().await?;
            let _ = locked.send(());
            std::future::pending::<()>().await;
            Ok(())
        })
    }));
    let waited = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        tokio::select! {
            _ = stuck => unreachable!("the work never ends"),
            _ = is_locked => {}
        }
    })
    .await;
    assert!(waited.is_ok(), "the transaction took the lock");
    // The future is gone. The lock is free again, and no connection of ours is left
    // inside a transaction.
    for i in 0..8 {
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            common::set(&store, "global", &format!("AFTER_{i}"), "v"),
        )
        .await
        .expect("a write after the cancelled transaction does not wait on its lock");
        backend
            .transaction(Box::new(move |tx| {
                Box::pin(async move { tx.set_meta("after-probe", Some(&i.to_string())).await })
            }))
            .await
            .unwrap();
    }
    assert_eq!(backend.meta("cancelled-probe").await.unwrap(), None);
    assert_eq!(
        backend.meta("after-probe").await.unwrap().as_deref(),
        Some("7")
    );
    let inside: i64 = harness
        .client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(inside, 0, "no connection left inside a transaction");
}
