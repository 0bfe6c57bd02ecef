//! The behaviour suite on SQLite, and what is particular to the SQLite file.

// Tests: a panic is the failure report; harness makers are async for every backend.
#![allow(clippy::unwrap_used, clippy::unused_async)]

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use strongroom_store::backend::sqlite::SqliteBackend;
use strongroom_store::backend::Backend;
use strongroom_store::SecretId;

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
impl common::Harness for SqliteHarness {
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
    async fn tamper_audit(&self, tamper: common::AuditTamper) {
        let conn = self.raw();
        conn.execute_batch("DROP TRIGGER IF EXISTS audit_events_no_update; DROP TRIGGER IF EXISTS audit_events_no_delete;").unwrap();
        let columns = "time, actor, action, namespace, env, key, version, kek_version, link";
        match tamper {
            common::AuditTamper::SetActor(id, actor) => {
                conn.execute(
                    "UPDATE audit_events SET actor = ?2 WHERE id = ?1",
                    rusqlite::params![id, actor],
                )
                .unwrap();
            }
            common::AuditTamper::Delete(id) => {
                conn.execute("DELETE FROM audit_events WHERE id = ?1", [id])
                    .unwrap();
            }
            common::AuditTamper::Swap(a, b) => {
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

behaviour_suite!(sqlite);

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
        .unwrap();
    let restored = SqliteHarness {
        dir: tempfile::tempdir().unwrap(),
    };
    std::fs::copy(&backup, restored.path()).unwrap();
    let store = common::open(&restored).await;
    assert_eq!(common::value(&store, "global", "A").await, "alpha");
    assert_eq!(common::value(&store, "prod", "B").await, "beta");
}

#[tokio::test]
async fn a_database_at_each_older_schema_version_upgrades_with_its_data() {
    let migrations = strongroom_store::backend::sqlite::migrations();
    for version in 1..migrations.len() {
        let harness = sqlite().await;
        {
            // Build the database as that older release left it, with one secret in it.
            let store = common::open(&harness).await;
            common::set(&store, "prod", "KEPT", "still-here").await;
        }
        let conn = harness.raw();
        // Roll the schema back to `version` by recreating it from the older migrations
        // and copying the data rows across.
        let old = harness.dir.path().join("old.db");
        let old_conn = rusqlite::Connection::open(&old).unwrap();
        for sql in &migrations[..version] {
            old_conn.execute_batch(sql).unwrap();
        }
        old_conn
            .pragma_update(None, "user_version", version)
            .unwrap();
        drop(old_conn);
        conn.execute("ATTACH DATABASE ?1 AS old", [old.to_str().unwrap()])
            .unwrap();
        for table in ["meta", "key_fingerprints", "secrets", "secret_versions"] {
            conn.execute(
                &format!("INSERT INTO old.{table} SELECT * FROM main.{table}"),
                [],
            )
            .unwrap();
        }
        conn.execute("DETACH DATABASE old", []).unwrap();
        drop(conn);
        std::fs::rename(&old, harness.path()).unwrap();
        let _ = std::fs::remove_file(harness.dir.path().join("strongroom.db-wal"));
        let _ = std::fs::remove_file(harness.dir.path().join("strongroom.db-shm"));

        let store = common::open(&harness).await;
        assert_eq!(
            common::value(&store, "prod", "KEPT").await,
            "still-here",
            "from schema {version}"
        );
        let upgraded: usize = harness
            .raw()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(upgraded, migrations.len());
    }
}
