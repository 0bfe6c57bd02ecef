//! Row operations inside a write transaction on the writer connection. SQLite's
//! `BEGIN IMMEDIATE` holds the database's write lock for the whole transaction, so the
//! "locks" of [`WriteTx`] are already held.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::db;
use super::reads::{id_at, info_from_row, value_at};
use crate::backend::rows::{legacy_action, u32_of};
use crate::backend::sql::INFO_COLUMNS;
use crate::backend::{
    AuditRecord, AuditTx, ChainHead, Changes, LinkedEvent, MetaTx, NewVersion, PlacedVersion,
    SecretRow, SecretSettings, SecretTx, StoredInfo, StoredValue, TiePage, UpsertedSecret,
    VersionChange, VersionRow, VersionTx, WriteTx,
};
use crate::{Result, SecretId, StoreError, Timestamp};

/// The writer connection inside `BEGIN IMMEDIATE`.
pub(super) struct SqliteTx<'c> {
    // `&mut`: a shared `&Connection` is not `Send`, and the work's future must be.
    conn: &'c mut Connection,
}

impl<'c> SqliteTx<'c> {
    pub(super) fn new(conn: &'c mut Connection) -> Self {
        Self { conn }
    }

    fn execute(&self, sql: &str, values: impl rusqlite::Params) -> Result<usize> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(values))
            .map_err(db)
    }

    /// Version rows matching `filter` (over `v`, the version, and `s`, its secret), with
    /// their positions, in position order.
    fn version_rows(
        &self,
        filter: &str,
        values: impl rusqlite::Params,
    ) -> Result<Vec<PlacedVersion>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT v.vid, s.row_id, s.namespace, s.env, s.key, v.version, v.value, v.value_hash, v.kek_version
                 FROM secret_versions v JOIN secrets s ON s.sid = v.sid
                 WHERE {filter} ORDER BY v.vid"
            ))
            .map_err(db)?;
        let rows = stmt
            .query_map(values, |r| {
                Ok(PlacedVersion {
                    position: r.get(0)?,
                    row: VersionRow {
                        row_id: r.get(1)?,
                        id: id_at(r, 2)?,
                        version: u32_of(r.get(5)?),
                        value: value_at(r, 6)?,
                    },
                })
            })
            .map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)
    }

    /// Applies `changes` (and `version`, when given) to row `sid`.
    fn apply(&self, sid: i64, version: Option<u32>, changes: &Changes, now: i64) -> Result<()> {
        let keep = |set: bool| i64::from(!set);
        let (set_description, description) = changes.description.split();
        let (set_metadata, metadata) = changes.metadata.split();
        let (set_kind, kind) = changes.kind.split();
        let (set_expiry, expires_at) = changes.expires_at.split();
        self.execute(
            "UPDATE secrets SET updated = ?2, version = coalesce(?3, version),
                 description = CASE WHEN ?4 THEN description ELSE ?5 END,
                 metadata = CASE WHEN ?6 THEN metadata ELSE ?7 END,
                 kind = CASE WHEN ?8 THEN kind ELSE ?9 END,
                 expires_at = CASE WHEN ?10 THEN expires_at ELSE ?11 END
             WHERE sid = ?1",
            params![
                sid,
                now,
                version,
                keep(set_description),
                description,
                keep(set_metadata),
                metadata,
                keep(set_kind),
                kind,
                keep(set_expiry),
                expires_at
            ],
        )
        .map(drop)
    }
}

fn secret_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SecretRow> {
    Ok(SecretRow {
        sid: r.get(0)?,
        row_id: r.get(1)?,
        id: id_at(r, 2)?,
        version: u32_of(r.get(5)?),
    })
}

const ROW_COLUMNS: &str = "sid, row_id, namespace, env, key, version";

#[async_trait]
impl WriteTx for SqliteTx<'_> {
    async fn savepoint(&mut self) -> Result<bool> {
        super::run_cached(self.conn, "SAVEPOINT strongroom_write")?;
        Ok(true)
    }

    async fn savepoint_end(&mut self, keep: bool) -> Result<()> {
        if keep {
            return super::run_cached(self.conn, "RELEASE strongroom_write");
        }
        self.conn
            .execute_batch("ROLLBACK TO strongroom_write; RELEASE strongroom_write")
            .map_err(db)
    }
}

#[async_trait]
impl MetaTx for SqliteTx<'_> {
    async fn meta(&mut self, name: &str) -> Result<Option<String>> {
        super::reads::meta(self.conn, name)
    }

    async fn init_meta(&mut self, name: &str, value: &str) -> Result<String> {
        self.execute(
            "INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            [name, value],
        )?;
        super::reads::meta(self.conn, name)?
            .ok_or_else(|| StoreError::Defect("a setting vanished inside its transaction"))
    }

    async fn set_meta(&mut self, name: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(value) => self.execute(
                "INSERT INTO meta (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [name, value],
            ),
            None => self.execute("DELETE FROM meta WHERE name = ?1", [name]),
        }
        .map(drop)
    }

    async fn record_key(
        &mut self,
        version: u32,
        fingerprint: &str,
        now: Timestamp,
    ) -> Result<String> {
        let now = now.unix_ms();
        self.execute(
            "INSERT INTO key_fingerprints (kek_version, fingerprint, recorded) VALUES (?1, ?2, ?3)
             ON CONFLICT (kek_version) DO NOTHING",
            params![version, fingerprint, now],
        )?;
        self.conn
            .query_row(
                "SELECT fingerprint FROM key_fingerprints WHERE kek_version = ?1",
                [version],
                |r| r.get(0),
            )
            .map_err(db)
    }
}

#[async_trait]
impl SecretTx for SqliteTx<'_> {
    async fn upsert_secret(
        &mut self,
        id: &SecretId,
        new_row_id: &str,
        changes: &Changes,
        now: Timestamp,
    ) -> Result<UpsertedSecret> {
        let now = now.unix_ms();
        if let Some(row) = self.lock_secret(id).await? {
            let version = row.version.checked_add(1).ok_or_else(|| {
                StoreError::InvalidInput("the secret has reached the last version number".into())
            })?;
            self.apply(row.sid, Some(version), changes, now)?;
            return Ok(UpsertedSecret {
                row: SecretRow { version, ..row },
                created: false,
            });
        }
        self.execute(
            "INSERT INTO secrets (row_id, namespace, env, key, version, description, metadata, kind,
                                  expires_at, created, updated)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8, ?9, ?9)",
            params![
                new_row_id,
                id.namespace,
                id.env,
                id.key,
                changes.description.or(String::new()),
                changes.metadata.or(None),
                changes.kind.or("generic".to_owned()),
                changes.expires_at.or(None),
                now
            ],
        )?;
        Ok(UpsertedSecret {
            row: SecretRow {
                sid: self.conn.last_insert_rowid(),
                row_id: new_row_id.to_owned(),
                id: id.clone(),
                version: 1,
            },
            created: true,
        })
    }

    async fn lock_secret(&mut self, id: &SecretId) -> Result<Option<SecretRow>> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM secrets WHERE namespace = ?1 AND env = ?2 AND key = ?3"
            ))
            .and_then(|mut s| {
                s.query_row(params![id.namespace, id.env, id.key], secret_row)
                    .optional()
            })
            .map_err(db)
    }

    async fn update_secret(
        &mut self,
        row: &SecretRow,
        changes: &Changes,
        now: Timestamp,
    ) -> Result<StoredInfo> {
        let now = now.unix_ms();
        self.apply(row.sid, None, changes, now)?;
        self.conn
            .query_row(
                &format!(
                    "SELECT {INFO_COLUMNS} FROM secrets s
                     JOIN secret_versions v ON v.sid = s.sid AND v.version = s.version WHERE s.sid = ?1"
                ),
                [row.sid],
                info_from_row,
            )
            .map_err(db)
    }

    async fn delete_secret(&mut self, row: &SecretRow) -> Result<()> {
        self.execute("DELETE FROM secrets WHERE sid = ?1", [row.sid])
            .map(drop)
    }

    async fn rename_secret(&mut self, row: &SecretRow, to: &SecretId) -> Result<()> {
        self.execute(
            "UPDATE secrets SET namespace = ?1, env = ?2, key = ?3 WHERE sid = ?4",
            params![to.namespace, to.env, to.key, row.sid],
        )
        .map(drop)
    }

    async fn settings_of(&mut self, row: &SecretRow) -> Result<SecretSettings> {
        self.conn
            .prepare_cached("SELECT max_versions, cas_required FROM secret_settings WHERE sid = ?1")
            .and_then(|mut s| {
                s.query_row([row.sid], |r| {
                    Ok(SecretSettings {
                        max_versions: r.get::<_, Option<i64>>(0)?.map(u32_of),
                        cas_required: r.get(1)?,
                    })
                })
                .optional()
            })
            .map(Option::unwrap_or_default)
            .map_err(db)
    }

    async fn set_settings(&mut self, row: &SecretRow, settings: SecretSettings) -> Result<()> {
        if settings == SecretSettings::default() {
            return self
                .execute("DELETE FROM secret_settings WHERE sid = ?1", [row.sid])
                .map(drop);
        }
        self.execute(
            "INSERT INTO secret_settings (sid, max_versions, cas_required) VALUES (?1, ?2, ?3)
             ON CONFLICT (sid) DO UPDATE SET max_versions = excluded.max_versions,
                                             cas_required = excluded.cas_required",
            params![row.sid, settings.max_versions, settings.cas_required],
        )
        .map(drop)
    }

    async fn expired_secrets(&mut self, before: Timestamp) -> Result<Vec<SecretRow>> {
        let before = before.unix_ms();
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {ROW_COLUMNS} FROM secrets WHERE expires_at IS NOT NULL AND expires_at < ?1 ORDER BY sid"
            ))
            .map_err(db)?;
        let rows = stmt.query_map([before], secret_row).map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)
    }
}

#[async_trait]
impl VersionTx for SqliteTx<'_> {
    async fn versions_of(&mut self, row: &SecretRow) -> Result<Vec<PlacedVersion>> {
        self.version_rows("v.sid = ?1", [row.sid])
    }

    async fn change_version(
        &mut self,
        row: &SecretRow,
        version: u32,
        change: VersionChange,
        now: Timestamp,
    ) -> Result<bool> {
        let now = now.unix_ms();
        let changed = match change {
            VersionChange::Delete => self.execute(
                "UPDATE secret_versions SET deleted_at = ?1
                 WHERE sid = ?2 AND version = ?3 AND deleted_at IS NULL AND destroyed = FALSE",
                params![now, row.sid, version],
            )?,
            VersionChange::Undelete => self.execute(
                "UPDATE secret_versions SET deleted_at = NULL
                 WHERE sid = ?1 AND version = ?2 AND deleted_at IS NOT NULL AND destroyed = FALSE",
                params![row.sid, version],
            )?,
            VersionChange::Destroy => self.execute(
                "UPDATE secret_versions
                 SET destroyed = TRUE, value = ?1, value_hash = ?1, deleted_at = coalesce(deleted_at, ?2)
                 WHERE sid = ?3 AND version = ?4 AND destroyed = FALSE",
                params![Vec::<u8>::new(), now, row.sid, version],
            )?,
        };
        Ok(changed > 0)
    }

    async fn insert_version(&mut self, v: NewVersion<'_>) -> Result<()> {
        self.trim_versions(v.row, v.trim_through).await?;
        self.execute(
            "INSERT INTO secret_versions (sid, version, value, value_hash, kek_version, created, actor, audit_seq, audit_tag)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                v.row.sid,
                v.row.version,
                v.value.value,
                v.value.value_hash,
                v.value.kek_version,
                v.created,
                v.actor,
                v.audit_seq,
                v.audit_tag
            ],
        )
        .map(drop)
    }

    async fn trim_versions(&mut self, row: &SecretRow, through: i64) -> Result<()> {
        self.execute(
            "DELETE FROM secret_versions WHERE sid = ?1 AND version <= ?2",
            params![row.sid, through],
        )
        .map(drop)
    }

    async fn swap_version_value(
        &mut self,
        position: i64,
        expected: &[u8],
        new: &StoredValue,
    ) -> Result<bool> {
        self.execute(
            "UPDATE secret_versions SET value = ?1, value_hash = ?2, kek_version = ?3
             WHERE vid = ?4 AND value = ?5",
            params![
                new.value,
                new.value_hash,
                new.kek_version,
                position,
                expected
            ],
        )
        .map(|n| n == 1)
    }

    async fn untied_versions(&mut self) -> Result<Vec<PlacedVersion>> {
        self.version_rows("v.audit_tag IS NULL", [])
    }

    async fn retie_version(
        &mut self,
        position: i64,
        new: &StoredValue,
        seq: i64,
        tag: &[u8],
    ) -> Result<()> {
        self.execute(
            "UPDATE secret_versions SET value = ?1, value_hash = ?2, kek_version = ?3, audit_seq = ?4, audit_tag = ?5
             WHERE vid = ?6",
            params![new.value, new.value_hash, new.kek_version, seq, tag, position],
        )
        .map(drop)
    }

    async fn version_ties(&mut self, after: i64, limit: usize) -> Result<TiePage> {
        super::reads::version_ties(self.conn, after, limit)
    }

    async fn retag_version(&mut self, position: i64, tag: &[u8]) -> Result<()> {
        self.execute(
            "UPDATE secret_versions SET audit_tag = ?1 WHERE vid = ?2",
            params![tag, position],
        )
        .map(drop)
    }
}

#[async_trait]
impl AuditTx for SqliteTx<'_> {
    async fn lock_audit_head(&mut self) -> Result<Option<ChainHead>> {
        self.conn
            .prepare_cached("SELECT id, link FROM audit_events ORDER BY id DESC LIMIT 1")
            .and_then(|mut s| s.query_row([], super::reads::chain_head).optional())
            .map_err(db)
    }

    async fn insert_event(&mut self, seq: i64, record: &AuditRecord, link: &[u8]) -> Result<()> {
        self.execute(
            "INSERT INTO audit_events (id, time, actor, action, namespace, env, key, version, kek_version, link)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
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
            ],
        )
        .map(drop)
    }

    async fn audit_links(&mut self, after: i64, limit: usize) -> Result<Vec<LinkedEvent>> {
        super::reads::audit_links(self.conn, after, limit)
    }

    async fn relink_event(&mut self, seq: i64, link: &[u8]) -> Result<()> {
        // The append-only trigger lets a link change through only while this is set.
        self.execute("INSERT INTO audit_rekey (active) VALUES (1)", [])?;
        self.execute(
            "UPDATE audit_events SET link = ?1 WHERE id = ?2",
            params![link, seq],
        )?;
        self.execute("DELETE FROM audit_rekey", []).map(drop)
    }

    async fn first_event_since(&mut self, time: Timestamp) -> Result<Option<i64>> {
        let time = time.unix_ms();
        self.conn
            .query_row(
                "SELECT min(id) FROM audit_events WHERE time >= ?1",
                [time],
                |r| r.get(0),
            )
            .map_err(db)
    }

    async fn event_at_or_before(&mut self, seq: i64) -> Result<Option<ChainHead>> {
        self.conn
            .query_row(
                "SELECT id, link FROM audit_events WHERE id <= ?1 ORDER BY id DESC LIMIT 1",
                [seq],
                super::reads::chain_head,
            )
            .optional()
            .map_err(db)
    }

    async fn delete_events_through(&mut self, seq: i64) -> Result<u64> {
        // The append-only trigger lets deletes through only while this marker is set.
        self.execute("INSERT INTO audit_retention (active) VALUES (1)", [])?;
        let n = self.execute("DELETE FROM audit_events WHERE id <= ?1", [seq])?;
        self.execute("DELETE FROM audit_retention", [])?;
        Ok(n as u64)
    }

    async fn legacy_events(&mut self) -> Result<Vec<AuditRecord>> {
        let mut stmt = self
            .conn
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
                    id_at(r, 3)?,
                    r.get::<_, Option<i64>>(6)?.map(u32_of),
                    r.get::<_, Option<i64>>(7)?.map(u32_of),
                ))
            })
            .map_err(db)?;
        let mut events = Vec::new();
        for row in rows {
            let (time, actor, action, id, version, kek_version) = row.map_err(db)?;
            events.push(AuditRecord {
                time: Timestamp(time),
                actor,
                action: legacy_action(&action)?,
                id,
                version,
                kek_version,
            });
        }
        Ok(events)
    }

    async fn clear_legacy_events(&mut self) -> Result<()> {
        self.execute("DELETE FROM audit_events_legacy", [])
            .map(drop)
    }
}

/// Token rows inside the transaction.
#[path = "tx_tokens.rs"]
mod tokens;

/// Lease rows inside the transaction.
#[path = "tx_leases.rs"]
pub(super) mod leases;
