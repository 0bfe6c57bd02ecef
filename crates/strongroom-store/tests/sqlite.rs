//! The behaviour suite on SQLite, and what is particular to the SQLite file.

// Tests: a panic is the failure report; harness makers are async for every backend.
#![allow(clippy::unwrap_used, clippy::unused_async)]

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use strongroom_crypto::secrecy::ExposeSecret as _;
use strongroom_store::backend::sqlite::SqliteBackend;
use strongroom_store::backend::Backend;
use strongroom_store::{Action, AuditQuery, SecretId, StoreConfig};

struct SqliteHarness {
    dir: tempfile::TempDir,
}

impl SqliteHarness {
    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("strongroom.db")
    }
    fn raw(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path()).unwrap()
    }
}

async fn sqlite() -> SqliteHarness {
    SqliteHarness {
        dir: tempfile::tempdir().unwrap(),
    }
}

const CURRENT_VALUE: &str =
    "FROM secret_versions v JOIN secrets s ON s.sid = v.sid AND s.version = v.version
     WHERE s.namespace = ?1 AND s.env = ?2 AND s.key = ?3";

#[async_trait]
impl strongroom_store::testing::Harness for SqliteHarness {
    async fn backend(&self) -> Arc<dyn Backend> {
        Arc::new(SqliteBackend::open(self.path()).unwrap())
    }
    async fn overwrite_value(&self, id: &SecretId, bytes: Vec<u8>) {
        let n = self
            .raw()
            .execute(
                &format!("UPDATE secret_versions SET value = ?4 WHERE vid = (SELECT v.vid {CURRENT_VALUE})"),
                rusqlite::params![id.namespace, id.env, id.key, bytes],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    async fn tamper_audit(&self, tamper: strongroom_store::testing::AuditTamper) {
        let conn = self.raw();
        conn.execute_batch("DROP TRIGGER IF EXISTS audit_events_no_update; DROP TRIGGER IF EXISTS audit_events_no_delete;").unwrap();
        let columns = "time, actor, action, namespace, env, key, version, kek_version, link";
        match tamper {
            strongroom_store::testing::AuditTamper::SetActor(id, actor) => {
                conn.execute(
                    "UPDATE audit_events SET actor = ?2 WHERE id = ?1",
                    rusqlite::params![id, actor],
                )
                .unwrap();
            }
            strongroom_store::testing::AuditTamper::Delete(id) => {
                conn.execute("DELETE FROM audit_events WHERE id = ?1", [id])
                    .unwrap();
            }
            strongroom_store::testing::AuditTamper::StripLinks => {
                conn.execute_batch(
                    "DELETE FROM meta WHERE name = 'audit_anchor'; UPDATE audit_events SET link = NULL;",
                )
                .unwrap();
            }
            strongroom_store::testing::AuditTamper::DeleteFrom(id) => {
                conn.execute("DELETE FROM audit_events WHERE id >= ?1", [id])
                    .unwrap();
            }
            strongroom_store::testing::AuditTamper::DeleteAll => {
                conn.execute_batch(
                    "DELETE FROM meta WHERE name = 'audit_anchor'; DELETE FROM audit_events;",
                )
                .unwrap();
            }
            strongroom_store::testing::AuditTamper::RetargetTies => {
                conn.execute("UPDATE secret_versions SET audit_seq = 0", [])
                    .unwrap();
            }
            strongroom_store::testing::AuditTamper::ForgeAnchor(seq) => {
                conn.execute(
                    "INSERT INTO meta (name, value) VALUES ('audit_anchor', ?1)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    [format!("{seq}:{}:{}", "ab".repeat(40), "cd".repeat(40))],
                )
                .unwrap();
            }
            strongroom_store::testing::AuditTamper::Swap(a, b) => {
                conn.execute_batch(&format!(
                    "CREATE TEMP TABLE swap AS SELECT * FROM audit_events WHERE id IN ({a}, {b});
                     UPDATE audit_events SET ({columns}) = (SELECT {columns} FROM swap WHERE id = {b}) WHERE id = {a};
                     UPDATE audit_events SET ({columns}) = (SELECT {columns} FROM swap WHERE id = {a}) WHERE id = {b};
                     DROP TABLE swap;"
                ))
                .unwrap();
            }
        }
    }
    async fn stored_value(&self, id: &SecretId) -> Vec<u8> {
        self.raw()
            .query_row(
                &format!("SELECT v.value {CURRENT_VALUE}"),
                rusqlite::params![id.namespace, id.env, id.key],
                |r| r.get(0),
            )
            .unwrap()
    }
}

/// The harness, for the conformance suite (always available).
async fn sqlite_harness() -> Option<SqliteHarness> {
    Some(sqlite().await)
}

strongroom_store::backend_conformance_suite!(sqlite_harness);

#[test]
fn migrations_apply_to_an_empty_file_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    std::fs::write(&path, b"").unwrap();
    drop(SqliteBackend::open(&path).unwrap());
    drop(SqliteBackend::open(&path).unwrap());
    let version: usize = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, strongroom_store::backend::sqlite::schema_version());
}

#[test]
fn a_newer_schema_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = SqliteBackend::open(&path).unwrap_err().to_string();
    assert!(err.contains("newer than this build"), "{err}");
}

#[cfg(unix)]
#[test]
fn a_new_database_file_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private.db");
    drop(SqliteBackend::open(&path).unwrap());
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn audit_events_are_append_only_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    drop(SqliteBackend::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO audit_events (time, actor, action, namespace, env, key) VALUES (1, 'a', 'create', 'default', 'global', 'K')",
        [],
    )
    .unwrap();
    assert!(conn
        .execute("UPDATE audit_events SET actor = 'b'", [])
        .is_err());
    assert!(conn.execute("DELETE FROM audit_events", []).is_err());
}

#[tokio::test]
async fn online_backup_restores_every_secret() {
    let harness = sqlite().await;
    let store = common::open(&harness).await;
    common::set(&store, "global", "A", "alpha").await;
    common::set(&store, "prod", "B", "beta").await;
    let backup = harness.dir.path().join("backup.db");
    SqliteBackend::open(harness.path())
        .unwrap()
        .backup_to(&backup)
        .await
        .unwrap();
    let restored = SqliteHarness {
        dir: tempfile::tempdir().unwrap(),
    };
    std::fs::copy(&backup, restored.path()).unwrap();
    let store = common::open(&restored).await;
    assert_eq!(common::value(&store, "global", "A").await, "alpha");
    assert_eq!(common::value(&store, "prod", "B").await, "beta");
}

/// A database written by the last release before schema 4 (tests/fixtures/README.md
/// says how it was made): values sealed under the old `(namespace, env, key)` context,
/// events linked without sequence numbers, key 1 rotated to key 2.
fn schema3_fixture(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("strongroom.db");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema3.db"),
        &path,
    )
    .unwrap();
    path
}

/// What the fixture holds, read back after the upgrade.
async fn assert_fixture_data(store: &strongroom_store::Store, from: &str) {
    assert_eq!(
        common::value(store, "global", "DATABASE_URL").await,
        "postgres://global",
        "{from}"
    );
    assert_eq!(
        common::value(store, "prod", "DATABASE_URL").await,
        "postgres://prod-v2",
        "{from}"
    );
    let old = store
        .get_version(&common::id("prod", "DATABASE_URL"), 1)
        .await
        .unwrap()
        .commit()
        .await
        .unwrap()
        .value;
    assert_eq!(old.expose_secret(), b"postgres://prod-v1", "{from}");
    assert!(store
        .verify(&common::id("global", "STRIPE_KEY"), b"sk-live-123")
        .await
        .unwrap());
}

#[tokio::test]
async fn a_database_written_by_the_previous_release_upgrades_resealed_and_chained() {
    let harness = sqlite().await;
    schema3_fixture(harness.dir.path());
    let before: i64 = harness
        .raw()
        .query_row("SELECT count(*) FROM audit_events", [], |r| r.get(0))
        .unwrap();
    let store = common::open_with(&harness, &[(2, 0x22), (1, 0x11)], StoreConfig::default())
        .await
        .unwrap();
    let verified = store.verify_audit().await.unwrap();
    assert_eq!(verified.broken_at, None, "{verified:?}");
    let reseals = store
        .audit_all(AuditQuery {
            action: Some(Action::Reseal),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let versions: i64 = harness
        .raw()
        .query_row("SELECT count(*) FROM secret_versions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        i64::try_from(reseals.len()).unwrap(),
        versions,
        "one reseal event per version"
    );
    assert_eq!(
        i64::try_from(verified.events).unwrap(),
        before + versions,
        "every old event kept, in the keyed chain"
    );
    // Opening again finds nothing pending: no new event but the fixture check's reads.
    drop(store);
    let again = common::open_with(&harness, &[(2, 0x22), (1, 0x11)], StoreConfig::default())
        .await
        .unwrap();
    assert_eq!(again.verify_audit().await.unwrap().events, verified.events);
    assert_fixture_data(&again, "schema 3").await;
    // Without key 1 (values re-sealed under key 2 only) it still opens and reads.
    drop(again);
    let only_two = common::open_with(&harness, &[(2, 0x22)], StoreConfig::default())
        .await
        .unwrap();
    assert_fixture_data(&only_two, "key 2 only").await;
}

#[tokio::test]
async fn a_database_at_each_older_schema_version_upgrades_with_its_data() {
    let migrations = strongroom_store::backend::sqlite::migrations();
    for version in 1..4 {
        let harness = sqlite().await;
        let source = harness.dir.path().join("source.db");
        std::fs::rename(schema3_fixture(harness.dir.path()), &source).unwrap();
        // Build the database as that older release left it, with the fixture's rows.
        let conn = rusqlite::Connection::open(harness.path()).unwrap();
        for sql in &migrations[..version] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", version).unwrap();
        conn.execute("ATTACH DATABASE ?1 AS source", [source.to_str().unwrap()])
            .unwrap();
        for table in ["meta", "key_fingerprints", "secrets", "secret_versions"] {
            let columns: Vec<String> = conn
                .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let columns = columns.join(", ");
            conn.execute(
                &format!(
                    "INSERT INTO main.{table} ({columns}) SELECT {columns} FROM source.{table}"
                ),
                [],
            )
            .unwrap();
        }
        conn.execute("DETACH DATABASE source", []).unwrap();
        drop(conn);

        let store = common::open_with(&harness, &[(2, 0x22), (1, 0x11)], StoreConfig::default())
            .await
            .unwrap();
        assert_fixture_data(&store, &format!("schema {version}")).await;
        assert_eq!(store.verify_audit().await.unwrap().broken_at, None);
        let upgraded: usize = harness
            .raw()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(upgraded, migrations.len());
    }
}

#[tokio::test]
async fn errors_have_kinds_and_a_duplicate_token_name_is_a_conflict() {
    use strongroom_store::tokens::Tokens;
    use strongroom_store::{ErrorKind, StoreError};
    let harness = sqlite().await;
    let store = common::open(&harness).await;
    let tokens = Tokens::new(&store, None).unwrap();
    tokens.create("ci", true, &[]).await.unwrap();
    let again = tokens.create("ci", true, &[]).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Conflict, "{again}");
    let missing = store.get(&common::id("global", "NOPE")).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    let invalid = store
        .get(&common::id("global", "bad key"))
        .await
        .unwrap_err();
    assert_eq!(invalid.kind(), ErrorKind::Invalid);
    assert_eq!(
        StoreError::AuditIntegrity("x".into()).kind(),
        ErrorKind::Integrity
    );
}

/// A backup taken while a writer keeps writing is one consistent snapshot: every write
/// acknowledged before the backup began is in it, its audit chain verifies, every value
/// opens; restored into an empty database it reads the same. A restore into a database
/// that holds data is refused by the check the CLI runs first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_holds_every_acknowledged_write_and_restores() {
    let harness = sqlite().await;
    let store = common::open(&harness).await;
    let acked = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (store, acked, stop) = (store.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                common::set(&store, "global", &format!("K{}", n % 7), &n.to_string()).await;
                acked.store(n, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    while acked.load(std::sync::atomic::Ordering::SeqCst) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before = acked.load(std::sync::atomic::Ordering::SeqCst);
    let copy = harness.dir.path().join("backup.db");
    let backend = SqliteBackend::open(harness.path()).unwrap();
    backend.backup_to(&copy).await.unwrap();
    assert!(
        backend.backup_to(&copy).await.is_err(),
        "an existing file is never overwritten"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // Every write acknowledged before the backup began is there (or a later one of it).
    let restored = SqliteHarness {
        dir: tempfile::tempdir().unwrap(),
    };
    let target = SqliteBackend::open(restored.path()).unwrap();
    assert!(strongroom_store::is_empty(&target).await.unwrap());
    target.restore_from(&copy).await.unwrap();
    assert!(
        !strongroom_store::is_empty(&target).await.unwrap(),
        "a restored database is not empty"
    );
    drop(target);
    let store = common::open(&restored).await;
    assert_eq!(store.verify_audit().await.unwrap().broken_at, None);
    assert!(store.check_values().await.unwrap().opened >= 7);
    for n in before.saturating_sub(6)..=before {
        let seen: u64 = common::value(&store, "global", &format!("K{}", n % 7))
            .await
            .parse()
            .unwrap();
        assert!(
            seen >= n,
            "K{}: the backup lost write {n} (has {seen})",
            n % 7
        );
    }
}

/// A closed database is one complete file: the last connection to close (the writer's)
/// checkpoints the WAL, so copying the file alone copies every write.
#[tokio::test]
async fn closing_leaves_one_complete_file() {
    let harness = sqlite().await;
    let store = common::open(&harness).await;
    for n in 0..50 {
        common::set(&store, "global", &format!("K{n}"), "v").await;
    }
    drop(store);
    let wal = harness.path().with_extension("db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "the WAL was checkpointed on close"
    );
    let copy = SqliteHarness {
        dir: tempfile::tempdir().unwrap(),
    };
    std::fs::copy(harness.path(), copy.path()).unwrap();
    let store = common::open(&copy).await;
    assert_eq!(common::value(&store, "global", "K49").await, "v");
}

/// The whole behaviour suite again, every key ring handed over by a real HSM (SoftHSM2,
/// installed by `cargo xtask ci`): wrapped by a non-extractable key in the token, then
/// unwrapped by it, as `strongroom` does at start with `STRONGROOM_PKCS11_*`.
#[cfg(feature = "pkcs11")]
mod through_pkcs11 {
    use std::sync::{Arc, Mutex, OnceLock};

    use async_trait::async_trait;
    use strongroom_crypto::secrecy::SecretString;
    use strongroom_store::backend::Backend;
    use strongroom_store::pkcs11::{Config, Hsm};
    use strongroom_store::testing::{AuditTamper, Harness};
    use strongroom_store::{KeyRing, SecretId};

    const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

    /// One token for this test process (a PKCS#11 module is initialised once per process).
    fn hsm() -> Option<&'static Mutex<Hsm>> {
        static HSM: OnceLock<Option<Mutex<Hsm>>> = OnceLock::new();
        HSM.get_or_init(|| {
            if !std::path::Path::new(MODULE).exists() {
                assert!(
                    std::env::var_os("STRONGROOM_SKIP_PKCS11").is_some(),
                    "SoftHSM2 is not installed: run `cargo xtask ci` (it installs it), or set STRONGROOM_SKIP_PKCS11=1"
                );
                return None;
            }
            let dir = std::env::temp_dir().join(format!("strongroom-softhsm-{}", std::process::id()));
            let tokens = dir.join("tokens");
            std::fs::create_dir_all(&tokens).unwrap();
            let conf = dir.join("softhsm2.conf");
            std::fs::write(
                &conf,
                format!("directories.tokendir = {}\nobjectstore.backend = file\n", tokens.display()),
            )
            .unwrap();
            let made = std::process::Command::new("softhsm2-util")
                .args(["--init-token", "--free", "--label", "suite", "--pin", "1234", "--so-pin", "5678"])
                .env("SOFTHSM2_CONF", &conf)
                .output()
                .unwrap();
            assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
            std::env::set_var("SOFTHSM2_CONF", &conf);
            let hsm = Hsm::open(&Config {
                module: MODULE.into(),
                token: "suite".into(),
                pin: SecretString::from("1234".to_owned()),
                pin_origin: "the test's PIN".into(),
                key_label: "suite-ring".into(),
            })
            .unwrap();
            hsm.ensure_wrapping_key().unwrap();
            Some(Mutex::new(hsm))
        })
        .as_ref()
    }

    struct Pkcs11Harness(super::SqliteHarness);

    #[async_trait]
    impl Harness for Pkcs11Harness {
        async fn backend(&self) -> Arc<dyn Backend> {
            self.0.backend().await
        }
        async fn overwrite_value(&self, id: &SecretId, bytes: Vec<u8>) {
            self.0.overwrite_value(id, bytes).await;
        }
        async fn stored_value(&self, id: &SecretId) -> Vec<u8> {
            self.0.stored_value(id).await
        }
        async fn tamper_audit(&self, tamper: AuditTamper) {
            self.0.tamper_audit(tamper).await;
        }
        fn ring(&self, keys: &[(u32, u8)]) -> KeyRing {
            let spec: Vec<String> = keys
                .iter()
                .map(|(version, byte)| format!("{version}:{}", hex::encode([*byte; 32])))
                .collect();
            let hsm = hsm().unwrap().lock().unwrap();
            let stored = hsm.wrap(&SecretString::from(spec.join(","))).unwrap();
            hsm.unwrap_ring(&stored).unwrap()
        }
    }

    async fn harness() -> Option<Pkcs11Harness> {
        hsm()?;
        Some(Pkcs11Harness(super::sqlite().await))
    }

    strongroom_store::backend_conformance_suite!(harness);
}
