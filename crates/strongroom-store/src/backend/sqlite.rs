//! The embedded SQLite backend: one file, WAL, busy timeout, `synchronous = FULL`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use rusqlite_migration::{Migrations, M};

use super::{
    Anchor, AuditChain, AuditRecord, Backend, Change, LegacyVersion, ListFilter, MetaRecord,
    Resealer, RotationCandidate, RotationUpdate, SealSlot, StoredInfo, StoredSecret, StoredValue,
    StoredVersion, TokenRecord, VersionTie, WriteRecord,
};
use crate::{Action, AuditEvent, AuditQuery, Result, SecretId, State, StoreError, WriteOutcome};

/// Schema migrations, applied in order at open. Append, never edit.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r"
    CREATE TABLE meta (
        name  TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;

    -- The fingerprint of every KEK that has written, so a wrong key is caught at open.
    CREATE TABLE key_fingerprints (
        kek_version INTEGER PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        recorded    INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE secrets (
        sid         INTEGER PRIMARY KEY,
        row_id      TEXT NOT NULL UNIQUE,
        namespace   TEXT NOT NULL,
        env         TEXT NOT NULL,
        key         TEXT NOT NULL,
        version     INTEGER NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        metadata    TEXT,
        kind        TEXT NOT NULL DEFAULT 'generic',
        expires_at  INTEGER,
        created     INTEGER NOT NULL,
        updated     INTEGER NOT NULL,
        UNIQUE (namespace, env, key)
    ) STRICT;
    CREATE INDEX secrets_expiry ON secrets (expires_at) WHERE expires_at IS NOT NULL;

    -- Every kept version, the current one included. Values are envelopes (0x01).
    CREATE TABLE secret_versions (
        vid         INTEGER PRIMARY KEY,
        sid         INTEGER NOT NULL REFERENCES secrets (sid) ON DELETE CASCADE,
        version     INTEGER NOT NULL,
        value       BLOB NOT NULL,
        value_hash  BLOB NOT NULL,
        kek_version INTEGER NOT NULL,
        created     INTEGER NOT NULL,
        actor       TEXT NOT NULL,
        UNIQUE (sid, version)
    ) STRICT;
    CREATE INDEX secret_versions_kek ON secret_versions (kek_version, vid);

    CREATE TABLE audit_events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        time        INTEGER NOT NULL,
        actor       TEXT NOT NULL,
        action      TEXT NOT NULL,
        namespace   TEXT NOT NULL,
        env         TEXT NOT NULL,
        key         TEXT NOT NULL,
        version     INTEGER,
        kek_version INTEGER
    ) STRICT;
    CREATE INDEX audit_events_key ON audit_events (namespace, key, id);
    CREATE INDEX audit_events_time ON audit_events (time);

    -- Audit events are append-only: no update, and deletes only through retention
    -- cleanup, which runs in a transaction that first sets the `retention` marker.
    CREATE TABLE audit_retention (active INTEGER NOT NULL) STRICT;
    CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
    CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    WHEN NOT EXISTS (SELECT 1 FROM audit_retention)
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
    ",
    // 2: API tokens, stored hashed.
    r"
    CREATE TABLE api_tokens (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        secret_hash BLOB NOT NULL,
        superuser   INTEGER NOT NULL,
        scopes      TEXT NOT NULL,
        created     INTEGER NOT NULL,
        revoked     INTEGER
    ) STRICT;
    ",
    // 3: the tamper-evident audit chain: each event's keyed link to the previous one.
    "ALTER TABLE audit_events ADD COLUMN link BLOB;",
    // 4: every event linked under the key, its sequence number in the link; each version
    // tied to the event that wrote it; values bound to their version. The events of an
    // older database are set aside here and appended again to the keyed chain by the
    // store at its next open (it holds the key; this migration does not).
    r"
    ALTER TABLE secret_versions ADD COLUMN audit_seq INTEGER;
    ALTER TABLE secret_versions ADD COLUMN audit_tag BLOB;
    CREATE TABLE audit_events_legacy (
        id          INTEGER PRIMARY KEY,
        time        INTEGER NOT NULL,
        actor       TEXT NOT NULL,
        action      TEXT NOT NULL,
        namespace   TEXT NOT NULL,
        env         TEXT NOT NULL,
        key         TEXT NOT NULL,
        version     INTEGER,
        kek_version INTEGER
    ) STRICT;
    INSERT INTO audit_events_legacy
        SELECT id, time, actor, action, namespace, env, key, version, kek_version FROM audit_events;
    INSERT INTO audit_retention (active) VALUES (1);
    DELETE FROM audit_events;
    DELETE FROM audit_retention;
    DELETE FROM meta WHERE name = 'audit_anchor';
    ",
];

/// The SQL of every migration, oldest first (for upgrade tests).
#[doc(hidden)]
pub fn migrations() -> &'static [&'static str] {
    MIGRATIONS
}

/// The newest schema version this build knows.
pub fn schema_version() -> usize {
    MIGRATIONS.len()
}

/// A SQLite database file.
pub struct SqliteBackend {
    conn: Mutex<Connection>,
    path: PathBuf,
    chain: super::ChainSlot,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// An audit event from the columns `id, time, actor, action, namespace, env, key, version,
/// kek_version` (in that order).
fn audit_event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEvent> {
    let action: String = r.get(3)?;
    Ok(AuditEvent {
        id: r.get(0)?,
        time: crate::model::Timestamp(r.get(1)?),
        actor: r.get(2)?,
        action: Action::parse(&action).unwrap_or(Action::Read),
        namespace: r.get(4)?,
        env: r.get(5)?,
        key: r.get(6)?,
        version: r.get::<_, Option<i64>>(7)?.map(u32_of),
        kek_version: r.get::<_, Option<i64>>(8)?.map(u32_of),
    })
}

impl SqliteBackend {
    /// Opens (or creates, mode 0600) the database at `path` and applies migrations.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let existed = path.exists();
        let mut conn = Connection::open(&path).map_err(|e| {
            StoreError::Database(format!(
                "cannot open SQLite database {}: {e}",
                path.display()
            ))
        })?;
        if !existed {
            restrict_permissions(&path)?;
        }
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            path,
            chain: super::ChainSlot::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Copies the live database to `destination` with SQLite's online backup API,
    /// consistent even while other processes write.
    pub fn backup_to(&self, destination: impl AsRef<Path>) -> Result<()> {
        let conn = self.lock();
        let mut target = Connection::open(destination.as_ref()).map_err(db)?;
        restrict_permissions(destination.as_ref())?;
        let backup = rusqlite::backup::Backup::new(&conn, &mut target).map_err(db)?;
        backup
            .run_to_completion(256, std::time::Duration::from_millis(5), None)
            .map_err(db)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock can not leave a transaction open (rusqlite
        // rolls back on drop), so a poisoned lock is safe to reuse.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` in an immediate (write-locking) transaction.
    fn write_tx<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let out = f(&tx)?;
        tx.commit().map_err(db)?;
        Ok(out)
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let known = schema_version();
    let current: usize = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(db)?;
    if current > known {
        return Err(StoreError::Database(format!(
            "the database schema is version {current}, newer than this build understands \
             ({known}); upgrade strongroom"
        )));
    }
    let migrations = Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect());
    migrations
        .to_latest(conn)
        .map_err(|e| StoreError::Database(format!("schema migration failed: {e}")))
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
        StoreError::Database(format!(
            "cannot restrict permissions of {}: {e}",
            path.display()
        ))
    })
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) -> Result<()> {
    Ok(())
}

#[allow(clippy::needless_pass_by_value)] // shaped for `map_err(db)`
fn db(error: rusqlite::Error) -> StoreError {
    StoreError::driver(error)
}

fn u32_of(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Columns read by `info_from_row`, prefixed by table alias `s`.
const INFO_COLUMNS: &str =
    "s.row_id, s.namespace, s.env, s.key, s.version, v.kek_version, s.description, \
     s.metadata, s.kind, s.expires_at, s.created, s.updated";

fn info_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredInfo> {
    Ok(StoredInfo {
        row_id: row.get(0)?,
        id: SecretId::new(
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
        ),
        version: u32_of(row.get(4)?),
        kek_version: u32_of(row.get(5)?),
        description: row.get(6)?,
        metadata: row.get(7)?,
        kind: row.get(8)?,
        expires_at: row.get(9)?,
        created: row.get(10)?,
        updated: row.get(11)?,
    })
}

fn sid_of(tx: &Connection, id: &SecretId) -> Result<Option<(i64, u32)>> {
    tx.prepare_cached(
        "SELECT sid, version FROM secrets WHERE namespace = ?1 AND env = ?2 AND key = ?3",
    )
    .and_then(|mut s| {
        s.query_row(params![id.namespace, id.env, id.key], |r| {
            Ok((r.get(0)?, u32_of(r.get(1)?)))
        })
        .optional()
    })
    .map_err(db)
}

/// The retention anchor, if any (a malformed one is an error: it is never ignored).
fn anchor(tx: &Connection) -> Result<Option<Anchor>> {
    let text: Option<String> = tx
        .prepare_cached("SELECT value FROM meta WHERE name = ?1")
        .and_then(|mut s| s.query_row([Anchor::META], |r| r.get(0)).optional())
        .map_err(db)?;
    text.map(|t| {
        Anchor::decode(&t)
            .ok_or_else(|| StoreError::AuditIntegrity("the retention anchor is malformed".into()))
    })
    .transpose()
}

/// Appends an audit event at the next sequence number, linked to the previous event (or
/// the retention anchor) under the key. Runs inside the caller's write transaction, so
/// the previous link can not change underneath. Returns the event's sequence number.
fn insert_audit(tx: &Connection, chain: &dyn AuditChain, record: &AuditRecord) -> Result<i64> {
    let last: Option<(i64, Option<Vec<u8>>)> = tx
        .prepare_cached("SELECT id, link FROM audit_events ORDER BY id DESC LIMIT 1")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(db)?;
    let (previous_seq, previous_link) = match last {
        Some((seq, link)) => (seq, link),
        None => anchor(tx)?.map_or((0, None), |a| (a.seq, Some(a.link))),
    };
    let seq = previous_seq + 1;
    let link = chain.link(previous_link.as_deref(), seq, record);
    tx.prepare_cached(
        "INSERT INTO audit_events (id, time, actor, action, namespace, env, key, version, kek_version, link)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            seq,
            record.time,
            record.actor,
            record.action.as_str(),
            record.id.namespace,
            record.id.env,
            record.id.key,
            record.version,
            record.kek_version,
            link
        ])
    })
    .map_err(db)?;
    Ok(seq)
}

/// Records the writer's key fingerprint, or refuses the write if the database knows
/// another fingerprint under the same version.
fn check_writer_key(
    tx: &Connection,
    (version, fingerprint): &(u32, String),
    now: i64,
) -> Result<()> {
    let recorded: Option<String> = tx
        .prepare_cached("SELECT fingerprint FROM key_fingerprints WHERE kek_version = ?1")
        .and_then(|mut s| s.query_row([version], |r| r.get(0)).optional())
        .map_err(db)?;
    match recorded {
        Some(recorded) if &recorded == fingerprint => Ok(()),
        Some(recorded) => Err(StoreError::WrongKey {
            version: *version,
            configured: fingerprint.clone(),
            recorded,
        }),
        None => tx
            .execute(
                "INSERT INTO key_fingerprints (kek_version, fingerprint, recorded) VALUES (?1, ?2, ?3)",
                params![version, fingerprint, now],
            )
            .map(drop)
            .map_err(db),
    }
}

/// Adds `column = ?N` to an UPDATE when the change sets a value.
fn apply_change<T: rusqlite::ToSql + 'static>(
    sets: &mut Vec<String>,
    values: &mut Vec<Box<dyn rusqlite::ToSql>>,
    column: &str,
    change: Change<T>,
) {
    if let Change::Set(value) = change {
        values.push(Box::new(value));
        sets.push(format!("{column} = ?{}", values.len()));
    }
}

/// Sets `updated`, optionally `version`, and the attributes a change sets, on one row.
fn update_secret_row(
    tx: &Connection,
    sid: i64,
    version: Option<u32>,
    now: i64,
    [description, kind]: [&Change<String>; 2],
    metadata: &Change<Option<String>>,
    expires_at: &Change<Option<i64>>,
) -> Result<()> {
    let mut sets = vec!["updated = ?1".to_owned()];
    let mut values: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(now)];
    apply_change(
        &mut sets,
        &mut values,
        "version",
        version.map_or(Change::Keep, Change::Set),
    );
    apply_change(&mut sets, &mut values, "description", description.clone());
    apply_change(&mut sets, &mut values, "kind", kind.clone());
    apply_change(&mut sets, &mut values, "metadata", metadata.clone());
    apply_change(&mut sets, &mut values, "expires_at", expires_at.clone());
    values.push(Box::new(sid));
    let sql = format!(
        "UPDATE secrets SET {} WHERE sid = ?{}",
        sets.join(", "),
        values.len()
    );
    tx.execute(
        &sql,
        rusqlite::params_from_iter(values.iter().map(AsRef::as_ref)),
    )
    .map(drop)
    .map_err(db)
}

/// Inserts a new secret row at version 1; returns its `sid`.
fn insert_secret_row(tx: &Connection, record: &WriteRecord) -> Result<i64> {
    let set_or = |change: &Change<String>, default: &str| match change {
        Change::Set(v) => v.clone(),
        Change::Keep => default.to_owned(),
    };
    let flatten = |change: &Change<Option<String>>| match change {
        Change::Set(v) => v.clone(),
        Change::Keep => None,
    };
    tx.prepare_cached(
        "INSERT INTO secrets (row_id, namespace, env, key, version, description, metadata, kind,
                              expires_at, created, updated)
         VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8, ?9, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            record.new_row_id,
            record.id.namespace,
            record.id.env,
            record.id.key,
            set_or(&record.description, ""),
            flatten(&record.metadata),
            set_or(&record.kind, "generic"),
            match record.expires_at {
                Change::Set(e) => e,
                Change::Keep => None,
            },
            record.now
        ])
    })
    .map_err(db)?;
    Ok(tx.last_insert_rowid())
}

/// A value write inside an open transaction: the secret row, its version row, history
/// trimming and the audit event.
fn write_record(
    tx: &Connection,
    chain: &dyn AuditChain,
    record: &WriteRecord,
) -> Result<WriteOutcome> {
    let existing = sid_of(tx, &record.id)?;
    let (sid, version, created, row_id) = if let Some((sid, current)) = existing {
        let version = current.checked_add(1).ok_or_else(|| {
            StoreError::InvalidInput("the secret has reached the last version number".into())
        })?;
        update_secret_row(
            tx,
            sid,
            Some(version),
            record.now,
            [&record.description, &record.kind],
            &record.metadata,
            &record.expires_at,
        )?;
        let row_id: String = tx
            .query_row("SELECT row_id FROM secrets WHERE sid = ?1", [sid], |r| {
                r.get(0)
            })
            .map_err(db)?;
        (sid, version, false, row_id)
    } else {
        (
            insert_secret_row(tx, record)?,
            1,
            true,
            record.new_row_id.clone(),
        )
    };
    let value = (record.seal)(SealSlot {
        row_id: &row_id,
        version,
    })?;
    let action = record.action(created);
    let seq = insert_audit(
        tx,
        chain,
        &AuditRecord {
            time: record.now,
            actor: record.actor.clone(),
            action,
            id: record.id.clone(),
            version: Some(version),
            kek_version: Some(value.kek_version),
        },
    )?;
    tx.prepare_cached(
        "INSERT INTO secret_versions (sid, version, value, value_hash, kek_version, created, actor, audit_seq, audit_tag)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            sid,
            version,
            value.value,
            value.value_hash,
            value.kek_version,
            record.now,
            record.actor,
            seq,
            chain.version_tag(&row_id, &record.id, version, seq),
        ])
    })
    .map_err(db)?;
    tx.prepare_cached("DELETE FROM secret_versions WHERE sid = ?1 AND version <= ?2")
        .and_then(|mut s| {
            s.execute(params![
                sid,
                i64::from(version) - i64::from(record.history_depth.max(1))
            ])
        })
        .map_err(db)?;
    Ok(WriteOutcome {
        id: row_id,
        version,
        created,
    })
}

/// The events the schema-4 migration set aside, oldest first.
fn legacy_events(tx: &Connection) -> Result<Vec<AuditRecord>> {
    let mut stmt = tx
        .prepare(
            "SELECT time, actor, action, namespace, env, key, version, kek_version
             FROM audit_events_legacy ORDER BY id",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                SecretId::new(
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ),
                r.get::<_, Option<u32>>(6)?,
                r.get::<_, Option<u32>>(7)?,
            ))
        })
        .map_err(db)?;
    let mut events = Vec::new();
    for row in rows {
        let (time, actor, action, id, version, kek_version) = row.map_err(db)?;
        let action = Action::parse(&action).ok_or_else(|| {
            StoreError::AuditIntegrity(format!(
                "a legacy audit event has an unknown action {action:?}"
            ))
        })?;
        events.push(AuditRecord {
            time,
            actor,
            action,
            id,
            version,
            kek_version,
        });
    }
    Ok(events)
}

/// Versions not yet tied to an audit event (written before schema 4), with their rows.
fn legacy_versions(tx: &Connection) -> Result<Vec<(i64, LegacyVersion)>> {
    let mut stmt = tx
        .prepare(
            "SELECT v.vid, s.row_id, s.namespace, s.env, s.key, v.version, v.value, v.value_hash, v.kek_version
             FROM secret_versions v JOIN secrets s ON s.sid = v.sid
             WHERE v.audit_tag IS NULL ORDER BY v.vid",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                LegacyVersion {
                    row_id: r.get(1)?,
                    id: SecretId::new(
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ),
                    version: u32_of(r.get(5)?),
                    value: StoredValue {
                        value: r.get(6)?,
                        value_hash: r.get(7)?,
                        kek_version: u32_of(r.get(8)?),
                    },
                },
            ))
        })
        .map_err(db)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db)
}

#[async_trait]
impl Backend for SqliteBackend {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn meta(&self, name: &str) -> Result<Option<String>> {
        self.lock()
            .query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db)
    }

    async fn init_meta(&self, name: &str, value: &str) -> Result<String> {
        self.write_tx(|tx| {
            tx.execute(
                "INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                [name, value],
            )
            .map_err(db)?;
            tx.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .map_err(db)
        })
    }

    async fn recorded_keys(&self) -> Result<Vec<(u32, String)>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT kek_version, fingerprint FROM key_fingerprints ORDER BY kek_version")
            .map_err(db)?;
        let rows = stmt
            .query_map([], |r| Ok((u32_of(r.get(0)?), r.get(1)?)))
            .map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)
    }

    async fn kek_versions_in_use(&self) -> Result<Vec<u32>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT DISTINCT kek_version FROM secret_versions ORDER BY kek_version")
            .map_err(db)?;
        let rows = stmt.query_map([], |r| Ok(u32_of(r.get(0)?))).map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)
    }

    async fn fetch(&self, id: &SecretId) -> Result<Option<StoredSecret>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {INFO_COLUMNS}, v.value, v.value_hash
                 FROM secrets s JOIN secret_versions v ON v.sid = s.sid AND v.version = s.version
                 WHERE s.namespace = ?1 AND s.env = ?2 AND s.key = ?3"
            ))
            .map_err(db)?;
        stmt.query_row(params![id.namespace, id.env, id.key], |row| {
            let info = info_from_row(row)?;
            let kek_version = info.kek_version;
            Ok(StoredSecret {
                info,
                value: StoredValue {
                    value: row.get(12)?,
                    value_hash: row.get(13)?,
                    kek_version,
                },
            })
        })
        .optional()
        .map_err(db)
    }

    async fn fetch_version(&self, id: &SecretId, version: u32) -> Result<Option<StoredValue>> {
        let conn = self.lock();
        conn.prepare_cached(
            "SELECT v.value, v.value_hash, v.kek_version
             FROM secrets s JOIN secret_versions v ON v.sid = s.sid
             WHERE s.namespace = ?1 AND s.env = ?2 AND s.key = ?3 AND v.version = ?4",
        )
        .and_then(|mut s| {
            s.query_row(params![id.namespace, id.env, id.key, version], |r| {
                Ok(StoredValue {
                    value: r.get(0)?,
                    value_hash: r.get(1)?,
                    kek_version: u32_of(r.get(2)?),
                })
            })
            .optional()
        })
        .map_err(db)
    }

    async fn history(&self, id: &SecretId) -> Result<Option<(u32, Vec<StoredVersion>)>> {
        let conn = self.lock();
        let Some((sid, current)) = sid_of(&conn, id)? else {
            return Ok(None);
        };
        let mut stmt = conn
            .prepare_cached(
                "SELECT version, kek_version, created, actor FROM secret_versions
                 WHERE sid = ?1 ORDER BY version DESC",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map([sid], |r| {
                Ok(StoredVersion {
                    version: u32_of(r.get(0)?),
                    kek_version: u32_of(r.get(1)?),
                    created: r.get(2)?,
                    actor: r.get(3)?,
                })
            })
            .map_err(db)?;
        Ok(Some((
            current,
            rows.collect::<rusqlite::Result<_>>().map_err(db)?,
        )))
    }

    async fn write(&self, record: WriteRecord) -> Result<WriteOutcome> {
        let chain = self.chain.required()?;
        self.write_tx(|tx| {
            check_writer_key(tx, &record.writer_key, record.now)?;
            write_record(tx, chain.as_ref(), &record)
        })
    }

    async fn write_many(&self, records: Vec<WriteRecord>) -> Result<Vec<WriteOutcome>> {
        let chain = self.chain.required()?;
        self.write_tx(|tx| {
            if let Some(first) = records.first() {
                check_writer_key(tx, &first.writer_key, first.now)?;
            }
            records
                .iter()
                .map(|record| write_record(tx, chain.as_ref(), record))
                .collect()
        })
    }

    async fn update_meta(&self, record: MetaRecord) -> Result<Option<StoredInfo>> {
        let chain = self.chain.required()?;
        self.write_tx(|tx| {
            let Some((sid, version)) = sid_of(tx, &record.id)? else {
                return Ok(None);
            };
            update_secret_row(
                tx,
                sid,
                None,
                record.now,
                [&record.description, &record.kind],
                &record.metadata,
                &record.expires_at,
            )?;
            let info = tx
                .query_row(
                    &format!(
                        "SELECT {INFO_COLUMNS} FROM secrets s
                         JOIN secret_versions v ON v.sid = s.sid AND v.version = s.version WHERE s.sid = ?1"
                    ),
                    [sid],
                    info_from_row,
                )
                .map_err(db)?;
            insert_audit(
                tx,
                chain.as_ref(),
                &AuditRecord {
                    time: record.now,
                    actor: record.actor.clone(),
                    action: Action::MetadataUpdate,
                    id: record.id.clone(),
                    version: Some(version),
                    kek_version: None,
                },
            )?;
            Ok(Some(info))
        })
    }

    async fn delete(&self, id: &SecretId, actor: &str, now: i64) -> Result<bool> {
        let chain = self.chain.required()?;
        self.write_tx(|tx| {
            let Some((sid, version)) = sid_of(tx, id)? else {
                return Ok(false);
            };
            tx.execute("DELETE FROM secrets WHERE sid = ?1", [sid])
                .map_err(db)?;
            insert_audit(
                tx,
                chain.as_ref(),
                &AuditRecord {
                    time: now,
                    actor: actor.to_owned(),
                    action: Action::Delete,
                    id: id.clone(),
                    version: Some(version),
                    kek_version: None,
                },
            )?;
            Ok(true)
        })
    }

    async fn list(&self, filter: &ListFilter) -> Result<(Vec<StoredInfo>, u64)> {
        let mut conditions = vec!["s.namespace = ?1".to_owned()];
        let mut values: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(filter.namespace.clone())];
        if let Some(env) = &filter.env {
            values.push(Box::new(env.clone()));
            conditions.push(format!("s.env = ?{}", values.len()));
        }
        if let Some(prefix) = &filter.prefix {
            values.push(Box::new(prefix.clone()));
            // substr comparison: LIKE would treat _ in keys as a wildcard.
            conditions.push(format!(
                "substr(s.key, 1, length(?{0})) = ?{0}",
                values.len()
            ));
        }
        match filter.state {
            Some(State::Expired) => {
                values.push(Box::new(filter.now));
                conditions.push(format!(
                    "s.expires_at IS NOT NULL AND s.expires_at <= ?{}",
                    values.len()
                ));
            }
            Some(State::Active) => {
                values.push(Box::new(filter.now));
                conditions.push(format!(
                    "(s.expires_at IS NULL OR s.expires_at > ?{})",
                    values.len()
                ));
            }
            None => {}
        }
        let base = conditions.join(" AND ");
        let conn = self.lock();
        let total: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM secrets s WHERE {base}"),
                rusqlite::params_from_iter(values.iter().map(AsRef::as_ref)),
                |r| r.get(0),
            )
            .map_err(db)?;
        let mut page_conditions = base;
        if let Some((env, key)) = &filter.after {
            values.push(Box::new(env.clone()));
            values.push(Box::new(key.clone()));
            let (e, k) = (values.len() - 1, values.len());
            let _ = write!(
                page_conditions,
                " AND (s.env > ?{e} OR (s.env = ?{e} AND s.key > ?{k}))"
            );
        }
        values.push(Box::new(i64::try_from(filter.limit).unwrap_or(i64::MAX)));
        let limit = values.len();
        values.push(Box::new(if filter.after.is_some() {
            0
        } else {
            i64::try_from(filter.offset).unwrap_or(0)
        }));
        let offset = values.len();
        let sql = format!(
            "SELECT {INFO_COLUMNS} FROM secrets s
             JOIN secret_versions v ON v.sid = s.sid AND v.version = s.version
             WHERE {page_conditions} ORDER BY s.env, s.key LIMIT ?{limit} OFFSET ?{offset}"
        );
        let mut stmt = conn.prepare(&sql).map_err(db)?;
        let rows = stmt
            .query_map(
                rusqlite::params_from_iter(values.iter().map(AsRef::as_ref)),
                info_from_row,
            )
            .map_err(db)?;
        let items = rows.collect::<rusqlite::Result<_>>().map_err(db)?;
        Ok((items, u64::try_from(total).unwrap_or(0)))
    }

    async fn audit_events(&self, query: &AuditQuery, limit: usize) -> Result<Vec<AuditEvent>> {
        let mut conditions = vec!["1 = 1".to_owned()];
        let mut values: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        let mut add = |column: &str, value: Box<dyn rusqlite::ToSql>, op: &str| {
            values.push(value);
            conditions.push(format!("{column} {op} ?{}", values.len()));
        };
        if let Some(ns) = &query.namespace {
            add("namespace", Box::new(ns.clone()), "=");
        }
        if let Some(env) = &query.env {
            add("env", Box::new(env.clone()), "=");
        }
        if let Some(key) = &query.key {
            add("key", Box::new(key.clone()), "=");
        }
        if let Some(action) = query.action {
            add("action", Box::new(action.as_str()), "=");
        }
        if let Some(before) = query.before_id {
            add("id", Box::new(before), "<");
        }
        values.push(Box::new(i64::try_from(limit).unwrap_or(i64::MAX)));
        let sql = format!(
            "SELECT id, time, actor, action, namespace, env, key, version, kek_version FROM audit_events
             WHERE {} ORDER BY id DESC LIMIT ?{}",
            conditions.join(" AND "),
            values.len()
        );
        let conn = self.lock();
        let mut stmt = conn.prepare(&sql).map_err(db)?;
        let rows = stmt
            .query_map(
                rusqlite::params_from_iter(values.iter().map(AsRef::as_ref)),
                audit_event_from_row,
            )
            .map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)
    }

    async fn append_audit(&self, records: Vec<AuditRecord>) -> Result<()> {
        let chain = self.chain.required()?;
        self.write_tx(|tx| {
            records
                .iter()
                .try_for_each(|record| insert_audit(tx, chain.as_ref(), record).map(drop))
        })
    }

    async fn rotation_candidates(
        &self,
        target: u32,
        from: Option<u32>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<RotationCandidate>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT v.vid, s.namespace, s.env, s.key, v.version, v.value, v.value_hash, v.kek_version, s.row_id
                 FROM secret_versions v JOIN secrets s ON s.sid = v.sid
                 WHERE v.kek_version != ?1 AND (?2 IS NULL OR v.kek_version = ?2) AND v.vid > ?3
                 ORDER BY v.vid LIMIT ?4",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map(
                params![
                    target,
                    from,
                    after,
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| {
                    Ok(RotationCandidate {
                        position: r.get(0)?,
                        id: SecretId::new(
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                        ),
                        row_id: r.get(8)?,
                        version: u32_of(r.get(4)?),
                        value: StoredValue {
                            value: r.get(5)?,
                            value_hash: r.get(6)?,
                            kek_version: u32_of(r.get(7)?),
                        },
                    })
                },
            )
            .map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)
    }

    async fn count_rotation_candidates(&self, target: u32, from: Option<u32>) -> Result<u64> {
        let n: i64 = self
            .lock()
            .query_row(
                "SELECT count(*) FROM secret_versions WHERE kek_version != ?1 AND (?2 IS NULL OR kek_version = ?2)",
                params![target, from],
                |r| r.get(0),
            )
            .map_err(db)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn apply_rotation(
        &self,
        updates: Vec<RotationUpdate>,
        writer_key: (u32, String),
        cursor: Option<String>,
        actor: &str,
        now: i64,
    ) -> Result<u64> {
        let chain = self.chain.required()?;
        self.write_tx(|tx| {
            check_writer_key(tx, &writer_key, now)?;
            let mut applied = 0;
            for update in &updates {
                let changed = tx
                    .prepare_cached(
                        "UPDATE secret_versions SET value = ?1, value_hash = ?2, kek_version = ?3
                         WHERE vid = ?4 AND value = ?5",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            update.new.value,
                            update.new.value_hash,
                            update.new.kek_version,
                            update.position,
                            update.expected
                        ])
                    })
                    .map_err(db)?;
                if changed == 1 {
                    applied += 1;
                    insert_audit(
                        tx,
                        chain.as_ref(),
                        &AuditRecord {
                            time: now,
                            actor: actor.to_owned(),
                            action: Action::Rotate,
                            id: update.id.clone(),
                            version: Some(update.version),
                            kek_version: Some(update.new.kek_version),
                        },
                    )?;
                }
            }
            match &cursor {
                Some(c) => tx.execute(
                    "INSERT INTO meta (name, value) VALUES ('rotation_cursor', ?1)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    [c],
                ),
                None => tx.execute("DELETE FROM meta WHERE name = 'rotation_cursor'", []),
            }
            .map_err(db)?;
            Ok(applied)
        })
    }

    async fn rotation_status(&self) -> Result<Vec<(u32, u64, u64)>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT v.kek_version,
                        sum(CASE WHEN v.version = s.version THEN 1 ELSE 0 END),
                        sum(CASE WHEN v.version = s.version THEN 0 ELSE 1 END)
                 FROM secret_versions v JOIN secrets s ON s.sid = v.sid
                 GROUP BY v.kek_version ORDER BY v.kek_version",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    u32_of(r.get(0)?),
                    u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                ))
            })
            .map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)
    }

    async fn cleanup_expired(&self, expired_before: i64, actor: &str, now: i64) -> Result<u64> {
        let chain = self.chain.required()?;
        self.write_tx(|tx| {
            let expired: Vec<(i64, SecretId, u32)> = {
                let mut stmt = tx
                    .prepare(
                        "SELECT sid, namespace, env, key, version FROM secrets
                         WHERE expires_at IS NOT NULL AND expires_at < ?1",
                    )
                    .map_err(db)?;
                let rows = stmt
                    .query_map([expired_before], |r| {
                        Ok((
                            r.get(0)?,
                            SecretId::new(
                                r.get::<_, String>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, String>(3)?,
                            ),
                            u32_of(r.get(4)?),
                        ))
                    })
                    .map_err(db)?;
                rows.collect::<rusqlite::Result<_>>().map_err(db)?
            };
            for (sid, id, version) in &expired {
                tx.execute("DELETE FROM secrets WHERE sid = ?1", [sid])
                    .map_err(db)?;
                insert_audit(
                    tx,
                    chain.as_ref(),
                    &AuditRecord {
                        time: now,
                        actor: actor.to_owned(),
                        action: Action::ExpiredCleanup,
                        id: id.clone(),
                        version: Some(*version),
                        kek_version: None,
                    },
                )?;
            }
            Ok(expired.len() as u64)
        })
    }

    async fn cleanup_events(&self, before: i64) -> Result<u64> {
        let chain = self.chain.required()?;
        self.write_tx(|tx| {
            // The longest run from the start of the log in which every event is old
            // enough: by sequence number, so a clock that stepped back can not make a
            // younger event go with it, and no gap is ever cut into the chain.
            let (first_young, last): (Option<i64>, Option<i64>) = tx
                .query_row(
                    "SELECT (SELECT min(id) FROM audit_events WHERE time >= ?1), (SELECT max(id) FROM audit_events)",
                    [before],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(db)?;
            let Some(cut) = first_young.map(|young| young - 1).or(last) else {
                return Ok(0);
            };
            let tail: Option<(i64, Option<Vec<u8>>)> = tx
                .query_row(
                    "SELECT id, link FROM audit_events WHERE id <= ?1 ORDER BY id DESC LIMIT 1",
                    [cut],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db)?;
            let Some((seq, link)) = tail else {
                return Ok(0);
            };
            let link = link.ok_or_else(|| {
                StoreError::AuditIntegrity("an audit event has no chain link; run `strongroom audit verify`".into())
            })?;
            let anchor = Anchor {
                seq,
                tag: chain.anchor_tag(seq, &link),
                link,
            };
            tx.execute(
                "INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [Anchor::META, &anchor.encode()],
            )
            .map_err(db)?;
            tx.execute("INSERT INTO audit_retention (active) VALUES (1)", [])
                .map_err(db)?;
            let n = tx
                .execute("DELETE FROM audit_events WHERE id <= ?1", [seq])
                .map_err(db)?;
            tx.execute("DELETE FROM audit_retention", []).map_err(db)?;
            Ok(n as u64)
        })
    }

    fn attach_audit_chain(&self, chain: std::sync::Arc<dyn AuditChain>) {
        self.chain.attach(chain);
    }

    async fn audit_links(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<(AuditEvent, Option<Vec<u8>>)>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, time, actor, action, namespace, env, key, version, kek_version, link FROM audit_events
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map(
                params![after_id, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| Ok((audit_event_from_row(r)?, r.get(9)?)),
            )
            .map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)
    }

    async fn audit_event_at(&self, seq: i64) -> Result<Option<(AuditEvent, Option<Vec<u8>>)>> {
        self.lock()
            .prepare_cached(
                "SELECT id, time, actor, action, namespace, env, key, version, kek_version, link FROM audit_events
                 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([seq], |r| Ok((audit_event_from_row(r)?, r.get(9)?)))
                    .optional()
            })
            .map_err(db)
    }

    async fn version_ties(&self, after: i64, limit: usize) -> Result<(Vec<VersionTie>, i64)> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT v.vid, s.row_id, s.namespace, s.env, s.key, v.version, v.audit_seq, v.audit_tag
                 FROM secret_versions v JOIN secrets s ON s.sid = v.sid
                 WHERE v.vid > ?1 ORDER BY v.vid LIMIT ?2",
            )
            .map_err(db)?;
        let mut last = after;
        let rows = stmt
            .query_map(
                params![after, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        VersionTie {
                            row_id: r.get(1)?,
                            id: SecretId::new(
                                r.get::<_, String>(2)?,
                                r.get::<_, String>(3)?,
                                r.get::<_, String>(4)?,
                            ),
                            version: u32_of(r.get(5)?),
                            audit_seq: r.get(6)?,
                            audit_tag: r.get(7)?,
                        },
                    ))
                },
            )
            .map_err(db)?;
        let mut ties = Vec::new();
        for row in rows {
            let (vid, tie) = row.map_err(db)?;
            last = vid;
            ties.push(tie);
        }
        Ok((ties, last))
    }

    async fn upgrade_legacy(
        &self,
        reseal: &Resealer,
        writer_key: (u32, String),
        actor: &str,
        now: i64,
    ) -> Result<u64> {
        let chain = self.chain.required()?;
        self.write_tx(|tx| {
            let events = legacy_events(tx)?;
            let legacy = legacy_versions(tx)?;
            if events.is_empty() && legacy.is_empty() {
                return Ok(0);
            }
            check_writer_key(tx, &writer_key, now)?;
            for event in &events {
                insert_audit(tx, chain.as_ref(), event)?;
            }
            for (vid, version) in &legacy {
                let sealed = reseal(version)?;
                let seq = insert_audit(
                    tx,
                    chain.as_ref(),
                    &AuditRecord {
                        time: now,
                        actor: actor.to_owned(),
                        action: Action::Reseal,
                        id: version.id.clone(),
                        version: Some(version.version),
                        kek_version: Some(sealed.kek_version),
                    },
                )?;
                tx.execute(
                    "UPDATE secret_versions SET value = ?1, value_hash = ?2, kek_version = ?3, audit_seq = ?4, audit_tag = ?5
                     WHERE vid = ?6",
                    params![
                        sealed.value,
                        sealed.value_hash,
                        sealed.kek_version,
                        seq,
                        chain.version_tag(&version.row_id, &version.id, version.version, seq),
                        vid
                    ],
                )
                .map_err(db)?;
            }
            tx.execute("DELETE FROM audit_events_legacy", []).map_err(db)?;
            Ok(legacy.len() as u64)
        })
    }

    async fn insert_token(&self, token: TokenRecord) -> Result<()> {
        self.write_tx(|tx| {
            let name_in_use: bool = tx
                .query_row("SELECT EXISTS (SELECT 1 FROM api_tokens WHERE name = ?1)", [&token.name], |r| r.get(0))
                .map_err(db)?;
            if name_in_use {
                return Err(StoreError::Conflict(format!("a token named {:?} already exists", token.name)));
            }
            let scopes = serde_json::to_string(&token.scopes).map_err(|e| StoreError::Database(e.to_string()))?;
            tx.execute(
                "INSERT INTO api_tokens (id, name, secret_hash, superuser, scopes, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![token.id, token.name, token.secret_hash, token.superuser, scopes, token.created],
            )
            .map(drop)
            .map_err(db)
        })
    }

    async fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>> {
        self.lock()
            .prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = ?1"
            ))
            .and_then(|mut s| s.query_row([id], token_from_row).optional())
            .map_err(db)
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created, name"
            ))
            .map_err(db)?;
        let rows = stmt.query_map([], token_from_row).map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)
    }

    async fn revoke_token(&self, name: &str, now: i64) -> Result<bool> {
        self.write_tx(|tx| {
            tx.execute(
                "UPDATE api_tokens SET revoked = ?2 WHERE name = ?1 AND revoked IS NULL",
                params![name, now],
            )
            .map(|n| n == 1)
            .map_err(db)
        })
    }
}

const TOKEN_COLUMNS: &str = "id, name, secret_hash, superuser, scopes, created, revoked";

fn token_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRecord> {
    let scopes: String = row.get(4)?;
    Ok(TokenRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        secret_hash: row.get(2)?,
        superuser: row.get(3)?,
        scopes: serde_json::from_str(&scopes).unwrap_or_default(),
        created: row.get(5)?,
        revoked: row.get(6)?,
    })
}
