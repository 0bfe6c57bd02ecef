//! Row operations inside a PostgreSQL transaction.

use async_trait::async_trait;
use deadpool_postgres::{GenericClient as _, Transaction};
use tokio_postgres::Row;

use super::cached::Cached;
use super::reads::{id_at, info_from_row, value_at};
use super::{db, AUDIT_LOCK};
use crate::backend::rows::{legacy_action, u32_of};
use crate::backend::sql::INFO_COLUMNS;
use crate::backend::{
    AuditRecord, Changes, NewVersion, SecretRow, SecretSettings, StoredInfo, StoredValue,
    TokenRecord, UpsertedSecret, VersionChange, VersionRow, VersionTie, WriteTx,
};
use crate::{AuditEvent, Result, SecretId};

/// What a transaction changed, for the read cache.
#[derive(Debug)]
pub(super) enum Touched {
    /// No secret.
    Nothing,
    /// These secrets.
    Secrets(Vec<SecretId>),
    /// Version rows found by position (rotation, re-sealing): anything.
    Anything,
}

impl Touched {
    fn secret(&mut self, id: &SecretId) {
        match self {
            Self::Nothing => *self = Self::Secrets(vec![id.clone()]),
            Self::Secrets(ids) => ids.push(id.clone()),
            Self::Anything => {}
        }
    }
}

/// An open transaction and what it touched.
pub(super) struct PgTx<'a> {
    tx: Transaction<'a>,
    touched: Touched,
}

impl<'a> PgTx<'a> {
    pub(super) fn new(tx: Transaction<'a>) -> Self {
        Self {
            tx,
            touched: Touched::Nothing,
        }
    }

    pub(super) fn into_parts(self) -> (Transaction<'a>, Touched) {
        (self.tx, self.touched)
    }

    /// The transaction, its statements through the connection's statement cache.
    fn cached(&self) -> Cached<'_, Transaction<'a>> {
        Cached(&self.tx)
    }

    /// Version rows matching `filter` (over `v`, the version, and `s`, its secret), with
    /// their positions, in position order.
    async fn version_rows(
        &self,
        filter: &str,
        values: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<(i64, VersionRow)>> {
        let rows = self
            .cached()
            .query(
                &format!(
                    "SELECT v.vid, s.row_id, s.namespace, s.env, s.key, v.version, v.value, v.value_hash, v.kek_version
                     FROM strongroom_secret_versions v JOIN strongroom_secrets s ON s.sid = v.sid
                     WHERE {filter} ORDER BY v.vid"
                ),
                values,
            )
            .await
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    VersionRow {
                        row_id: r.get(1),
                        id: id_at(r, 2),
                        version: u32_of(r.get(5)),
                        value: value_at(r, 6),
                    },
                )
            })
            .collect())
    }
}

fn secret_row(r: &Row) -> SecretRow {
    SecretRow {
        sid: r.get(0),
        row_id: r.get(1),
        id: id_at(r, 2),
        version: u32_of(r.get(5)),
    }
}

const ROW_COLUMNS: &str = "sid, row_id, namespace, env, key, version";

#[async_trait]
impl WriteTx for PgTx<'_> {
    async fn savepoint(&mut self) -> Result<bool> {
        self.tx
            .batch_execute("SAVEPOINT strongroom_write")
            .await
            .map_err(db)?;
        Ok(true)
    }

    async fn savepoint_end(&mut self, keep: bool) -> Result<()> {
        let sql = if keep {
            "RELEASE SAVEPOINT strongroom_write"
        } else {
            "ROLLBACK TO SAVEPOINT strongroom_write; RELEASE SAVEPOINT strongroom_write"
        };
        self.tx.batch_execute(sql).await.map_err(db)
    }

    async fn meta(&mut self, name: &str) -> Result<Option<String>> {
        super::reads::meta(&self.tx, name).await
    }

    async fn init_meta(&mut self, name: &str, value: &str) -> Result<String> {
        self.cached()
            .execute(
                "INSERT INTO strongroom_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &value],
            )
            .await
            .map_err(db)?;
        let row = self
            .cached()
            .query_one(
                "SELECT value FROM strongroom_meta WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(db)?;
        Ok(row.get(0))
    }

    async fn set_meta(&mut self, name: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(value) => {
                self.cached()
                    .execute(
                        "INSERT INTO strongroom_meta (name, value) VALUES ($1, $2)
                         ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                        &[&name, &value],
                    )
                    .await
            }
            None => {
                self.cached()
                    .execute("DELETE FROM strongroom_meta WHERE name = $1", &[&name])
                    .await
            }
        }
        .map(drop)
        .map_err(db)
    }

    async fn record_key(&mut self, version: u32, fingerprint: &str, now: i64) -> Result<String> {
        self.cached()
            .execute(
                "INSERT INTO strongroom_key_fingerprints (kek_version, fingerprint, recorded) VALUES ($1, $2, $3)
                 ON CONFLICT (kek_version) DO NOTHING",
                &[&i64::from(version), &fingerprint, &now],
            )
            .await
            .map_err(db)?;
        Ok(self
            .cached()
            .query_one(
                "SELECT fingerprint FROM strongroom_key_fingerprints WHERE kek_version = $1",
                &[&i64::from(version)],
            )
            .await
            .map_err(db)?
            .get(0))
    }

    async fn upsert_secret(
        &mut self,
        id: &SecretId,
        new_row_id: &str,
        changes: &Changes,
        now: i64,
    ) -> Result<UpsertedSecret> {
        let (set_description, description) = changes.description.split();
        let (set_metadata, metadata) = changes.metadata.split();
        let (set_kind, kind) = changes.kind.split();
        let (set_expiry, expires_at) = changes.expires_at.split();
        let row = self
            .cached()
            .query_one(
                "INSERT INTO strongroom_secrets AS s
                     (row_id, namespace, env, key, version, description, metadata, kind, expires_at, created, updated)
                 VALUES ($1, $2, $3, $4, 1,
                         CASE WHEN $5::BOOLEAN THEN $6::TEXT ELSE '' END,
                         CASE WHEN $7::BOOLEAN THEN $8::TEXT ELSE NULL END,
                         CASE WHEN $9::BOOLEAN THEN $10::TEXT ELSE 'generic' END,
                         CASE WHEN $11::BOOLEAN THEN $12::BIGINT ELSE NULL END,
                         $13, $13)
                 ON CONFLICT (namespace, env, key) DO UPDATE SET
                     version = s.version + 1,
                     updated = EXCLUDED.updated,
                     description = CASE WHEN $5::BOOLEAN THEN $6::TEXT ELSE s.description END,
                     metadata = CASE WHEN $7::BOOLEAN THEN $8::TEXT ELSE s.metadata END,
                     kind = CASE WHEN $9::BOOLEAN THEN $10::TEXT ELSE s.kind END,
                     expires_at = CASE WHEN $11::BOOLEAN THEN $12::BIGINT ELSE s.expires_at END
                 RETURNING sid, row_id, version, (xmax = 0) AS created",
                &[
                    &new_row_id,
                    &id.namespace,
                    &id.env,
                    &id.key,
                    &set_description,
                    &description,
                    &set_metadata,
                    &metadata,
                    &set_kind,
                    &kind,
                    &set_expiry,
                    &expires_at,
                    &now,
                ],
            )
            .await
            .map_err(db)?;
        let version: i64 = row.get(2);
        let version = u32::try_from(version).map_err(|_| {
            crate::StoreError::InvalidInput("the secret has reached the last version number".into())
        })?;
        self.touched.secret(id);
        Ok(UpsertedSecret {
            row: SecretRow {
                sid: row.get(0),
                row_id: row.get(1),
                id: id.clone(),
                version,
            },
            created: row.get(3),
        })
    }

    async fn lock_secret(&mut self, id: &SecretId) -> Result<Option<SecretRow>> {
        Ok(self
            .cached()
            .query_opt(
                &format!(
                    "SELECT {ROW_COLUMNS} FROM strongroom_secrets
                     WHERE namespace = $1 AND env = $2 AND key = $3 FOR UPDATE"
                ),
                &[&id.namespace, &id.env, &id.key],
            )
            .await
            .map_err(db)?
            .as_ref()
            .map(secret_row))
    }

    async fn update_secret(
        &mut self,
        row: &SecretRow,
        changes: &Changes,
        now: i64,
    ) -> Result<StoredInfo> {
        let (set_description, description) = changes.description.split();
        let (set_metadata, metadata) = changes.metadata.split();
        let (set_kind, kind) = changes.kind.split();
        let (set_expiry, expires_at) = changes.expires_at.split();
        self.cached()
            .execute(
                "UPDATE strongroom_secrets SET updated = $2,
                     description = CASE WHEN $3::BOOLEAN THEN $4::TEXT ELSE description END,
                     metadata = CASE WHEN $5::BOOLEAN THEN $6::TEXT ELSE metadata END,
                     kind = CASE WHEN $7::BOOLEAN THEN $8::TEXT ELSE kind END,
                     expires_at = CASE WHEN $9::BOOLEAN THEN $10::BIGINT ELSE expires_at END
                 WHERE sid = $1",
                &[
                    &row.sid,
                    &now,
                    &set_description,
                    &description,
                    &set_metadata,
                    &metadata,
                    &set_kind,
                    &kind,
                    &set_expiry,
                    &expires_at,
                ],
            )
            .await
            .map_err(db)?;
        self.touched.secret(&row.id);
        let info = self
            .cached()
            .query_one(
                &format!(
                    "SELECT {INFO_COLUMNS} FROM strongroom_secrets s
                     JOIN strongroom_secret_versions v ON v.sid = s.sid AND v.version = s.version WHERE s.sid = $1"
                ),
                &[&row.sid],
            )
            .await
            .map_err(db)?;
        Ok(info_from_row(&info))
    }

    async fn delete_secret(&mut self, row: &SecretRow) -> Result<()> {
        self.cached()
            .execute("DELETE FROM strongroom_secrets WHERE sid = $1", &[&row.sid])
            .await
            .map_err(db)?;
        self.touched.secret(&row.id);
        Ok(())
    }

    async fn rename_secret(&mut self, row: &SecretRow, to: &SecretId) -> Result<()> {
        self.cached()
            .execute(
                "UPDATE strongroom_secrets SET namespace = $1, env = $2, key = $3 WHERE sid = $4",
                &[&to.namespace, &to.env, &to.key, &row.sid],
            )
            .await
            .map_err(db)?;
        self.touched.secret(&row.id);
        self.touched.secret(to);
        Ok(())
    }

    async fn versions_of(&mut self, row: &SecretRow) -> Result<Vec<(i64, VersionRow)>> {
        self.version_rows("v.sid = $1", &[&row.sid]).await
    }

    async fn settings_of(&mut self, row: &SecretRow) -> Result<SecretSettings> {
        let found = self
            .cached()
            .query_opt(
                "SELECT max_versions, cas_required FROM strongroom_secret_settings WHERE sid = $1",
                &[&row.sid],
            )
            .await
            .map_err(db)?;
        Ok(found
            .map(|r| SecretSettings {
                max_versions: r.get::<_, Option<i64>>(0).map(u32_of),
                cas_required: r.get(1),
            })
            .unwrap_or_default())
    }

    async fn set_settings(&mut self, row: &SecretRow, settings: SecretSettings) -> Result<()> {
        if settings == SecretSettings::default() {
            self.cached()
                .execute(
                    "DELETE FROM strongroom_secret_settings WHERE sid = $1",
                    &[&row.sid],
                )
                .await
                .map_err(db)?;
            return Ok(());
        }
        let max_versions = settings.max_versions.map(i64::from);
        self.cached()
            .execute(
                "INSERT INTO strongroom_secret_settings (sid, max_versions, cas_required) VALUES ($1, $2, $3)
                 ON CONFLICT (sid) DO UPDATE SET max_versions = EXCLUDED.max_versions,
                                                 cas_required = EXCLUDED.cas_required",
                &[&row.sid, &max_versions, &settings.cas_required],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn change_version(
        &mut self,
        row: &SecretRow,
        version: u32,
        change: VersionChange,
        now: i64,
    ) -> Result<bool> {
        let version = i64::from(version);
        let empty: &[u8] = &[];
        let changed = match change {
            VersionChange::Delete => {
                self.cached()
                    .execute(
                        "UPDATE strongroom_secret_versions SET deleted_at = $1
                         WHERE sid = $2 AND version = $3 AND deleted_at IS NULL AND destroyed = FALSE",
                        &[&now, &row.sid, &version],
                    )
                    .await
            }
            VersionChange::Undelete => {
                self.cached()
                    .execute(
                        "UPDATE strongroom_secret_versions SET deleted_at = NULL
                         WHERE sid = $1 AND version = $2 AND deleted_at IS NOT NULL AND destroyed = FALSE",
                        &[&row.sid, &version],
                    )
                    .await
            }
            VersionChange::Destroy => {
                self.cached()
                    .execute(
                        "UPDATE strongroom_secret_versions
                         SET destroyed = TRUE, value = $1, value_hash = $1,
                             deleted_at = coalesce(deleted_at, $2)
                         WHERE sid = $3 AND version = $4 AND destroyed = FALSE",
                        &[&empty, &now, &row.sid, &version],
                    )
                    .await
            }
        }
        .map_err(db)?;
        self.touched.secret(&row.id);
        Ok(changed > 0)
    }

    async fn expired_secrets(&mut self, before: i64) -> Result<Vec<SecretRow>> {
        let rows = self
            .cached()
            .query(
                &format!(
                    "SELECT {ROW_COLUMNS} FROM strongroom_secrets
                     WHERE expires_at IS NOT NULL AND expires_at < $1 ORDER BY sid FOR UPDATE"
                ),
                &[&before],
            )
            .await
            .map_err(db)?;
        Ok(rows.iter().map(secret_row).collect())
    }

    async fn insert_version(&mut self, v: NewVersion<'_>) -> Result<()> {
        self.cached()
            .execute(
                "INSERT INTO strongroom_secret_versions (sid, version, value, value_hash, kek_version, created, actor, audit_seq, audit_tag)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &v.row.sid,
                    &i64::from(v.row.version),
                    &v.value.value,
                    &v.value.value_hash,
                    &i64::from(v.value.kek_version),
                    &v.created,
                    &v.actor,
                    &v.audit_seq,
                    &v.audit_tag,
                ],
            )
            .await
            .map(drop)
            .map_err(db)
    }

    async fn trim_versions(&mut self, row: &SecretRow, through: i64) -> Result<()> {
        self.cached()
            .execute(
                "DELETE FROM strongroom_secret_versions WHERE sid = $1 AND version <= $2",
                &[&row.sid, &through],
            )
            .await
            .map(drop)
            .map_err(db)
    }

    async fn swap_version_value(
        &mut self,
        position: i64,
        expected: &[u8],
        new: &StoredValue,
    ) -> Result<bool> {
        let changed = self
            .cached()
            .execute(
                "UPDATE strongroom_secret_versions SET value = $1, value_hash = $2, kek_version = $3
                 WHERE vid = $4 AND value = $5",
                &[
                    &new.value,
                    &new.value_hash,
                    &i64::from(new.kek_version),
                    &position,
                    &expected,
                ],
            )
            .await
            .map_err(db)?;
        self.touched = Touched::Anything;
        Ok(changed == 1)
    }

    async fn untied_versions(&mut self) -> Result<Vec<(i64, VersionRow)>> {
        self.version_rows("v.audit_tag IS NULL", &[]).await
    }

    async fn retie_version(
        &mut self,
        position: i64,
        new: &StoredValue,
        seq: i64,
        tag: &[u8],
    ) -> Result<()> {
        self.cached()
            .execute(
                "UPDATE strongroom_secret_versions
                 SET value = $1, value_hash = $2, kek_version = $3, audit_seq = $4, audit_tag = $5
                 WHERE vid = $6",
                &[
                    &new.value,
                    &new.value_hash,
                    &i64::from(new.kek_version),
                    &seq,
                    &tag,
                    &position,
                ],
            )
            .await
            .map_err(db)?;
        self.touched = Touched::Anything;
        Ok(())
    }

    async fn lock_audit_head(&mut self) -> Result<Option<(i64, Option<Vec<u8>>)>> {
        self.cached()
            .execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
            .await
            .map_err(db)?;
        Ok(self
            .cached()
            .query_opt(
                "SELECT id, link FROM strongroom_audit_events ORDER BY id DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(db)?
            .map(|r| (r.get(0), r.get(1))))
    }

    async fn insert_event(&mut self, seq: i64, record: &AuditRecord, link: &[u8]) -> Result<()> {
        self.cached()
            .execute(
                "INSERT INTO strongroom_audit_events (id, time, actor, action, namespace, env, key, version, kek_version, link)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &seq,
                    &record.time,
                    &record.actor,
                    &record.action.as_str(),
                    &record.id.namespace,
                    &record.id.env,
                    &record.id.key,
                    &record.version.map(i64::from),
                    &record.kek_version.map(i64::from),
                    &link,
                ],
            )
            .await
            .map(drop)
            .map_err(db)
    }

    async fn insert_events(&mut self, events: &[(i64, &AuditRecord, Vec<u8>)]) -> Result<()> {
        // One statement, one round trip, however many events the group commit carries.
        let ids: Vec<i64> = events.iter().map(|(seq, _, _)| *seq).collect();
        let times: Vec<i64> = events.iter().map(|(_, r, _)| r.time).collect();
        let text = |f: fn(&AuditRecord) -> &str| -> Vec<&str> {
            events.iter().map(|(_, r, _)| f(r)).collect()
        };
        let (actors, actions) = (text(|r| &r.actor), text(|r| r.action.as_str()));
        let (namespaces, envs, keys) = (
            text(|r| &r.id.namespace),
            text(|r| &r.id.env),
            text(|r| &r.id.key),
        );
        let versions: Vec<Option<i64>> = events
            .iter()
            .map(|(_, r, _)| r.version.map(i64::from))
            .collect();
        let kek_versions: Vec<Option<i64>> = events
            .iter()
            .map(|(_, r, _)| r.kek_version.map(i64::from))
            .collect();
        let links: Vec<&[u8]> = events.iter().map(|(_, _, link)| link.as_slice()).collect();
        self.cached()
            .execute(
                "INSERT INTO strongroom_audit_events (id, time, actor, action, namespace, env, key, version, kek_version, link)
                 SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                                      $6::TEXT[], $7::TEXT[], $8::BIGINT[], $9::BIGINT[], $10::BYTEA[])",
                &[
                    &ids,
                    &times,
                    &actors,
                    &actions,
                    &namespaces,
                    &envs,
                    &keys,
                    &versions,
                    &kek_versions,
                    &links,
                ],
            )
            .await
            .map(drop)
            .map_err(db)
    }

    async fn audit_links(
        &mut self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(AuditEvent, Option<Vec<u8>>)>> {
        super::reads::audit_links(&self.tx, after, limit).await
    }

    async fn relink_event(&mut self, seq: i64, link: &[u8]) -> Result<()> {
        // The append-only trigger lets a link change through only while this is set.
        self.tx
            .batch_execute("SET LOCAL strongroom.rekey = 'on'")
            .await
            .map_err(db)?;
        self.cached()
            .execute(
                "UPDATE strongroom_audit_events SET link = $1 WHERE id = $2",
                &[&link, &seq],
            )
            .await
            .map_err(db)?;
        self.tx
            .batch_execute("SET LOCAL strongroom.rekey = 'off'")
            .await
            .map_err(db)
    }

    async fn version_ties(&mut self, after: i64, limit: usize) -> Result<(Vec<VersionTie>, i64)> {
        super::reads::version_ties(&self.tx, after, limit).await
    }

    async fn retag_version(&mut self, position: i64, tag: &[u8]) -> Result<()> {
        self.cached()
            .execute(
                "UPDATE strongroom_secret_versions SET audit_tag = $1 WHERE vid = $2",
                &[&tag, &position],
            )
            .await
            .map(drop)
            .map_err(db)
    }

    async fn first_event_since(&mut self, time: i64) -> Result<Option<i64>> {
        Ok(self
            .cached()
            .query_one(
                "SELECT min(id) FROM strongroom_audit_events WHERE time >= $1",
                &[&time],
            )
            .await
            .map_err(db)?
            .get(0))
    }

    async fn event_at_or_before(&mut self, seq: i64) -> Result<Option<(i64, Option<Vec<u8>>)>> {
        Ok(self
            .cached()
            .query_opt(
                "SELECT id, link FROM strongroom_audit_events WHERE id <= $1 ORDER BY id DESC LIMIT 1",
                &[&seq],
            )
            .await
            .map_err(db)?
            .map(|r| (r.get(0), r.get(1))))
    }

    async fn delete_events_through(&mut self, seq: i64) -> Result<u64> {
        // The append-only trigger lets deletes through only while this setting is on.
        self.tx
            .batch_execute("SET LOCAL strongroom.retention = 'on'")
            .await
            .map_err(db)?;
        let n = self
            .cached()
            .execute(
                "DELETE FROM strongroom_audit_events WHERE id <= $1",
                &[&seq],
            )
            .await
            .map_err(db)?;
        self.tx
            .batch_execute("SET LOCAL strongroom.retention = 'off'")
            .await
            .map_err(db)?;
        Ok(n)
    }

    async fn legacy_events(&mut self) -> Result<Vec<AuditRecord>> {
        let rows = self
            .cached()
            .query(
                "SELECT time, actor, action, namespace, env, key, version, kek_version
                 FROM strongroom_audit_events_legacy ORDER BY id",
                &[],
            )
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    time: r.get(0),
                    actor: r.get(1),
                    action: legacy_action(r.get(2))?,
                    id: id_at(r, 3),
                    version: r.get::<_, Option<i64>>(6).map(u32_of),
                    kek_version: r.get::<_, Option<i64>>(7).map(u32_of),
                })
            })
            .collect()
    }

    async fn clear_legacy_events(&mut self) -> Result<()> {
        self.cached()
            .execute("DELETE FROM strongroom_audit_events_legacy", &[])
            .await
            .map(drop)
            .map_err(db)
    }

    async fn insert_token(&mut self, token: &TokenRecord) -> Result<bool> {
        let scopes = serde_json::to_string(&token.scopes).map_err(db)?;
        let inserted = self
            .cached()
            .execute(
                "INSERT INTO strongroom_api_tokens (id, name, secret_hash, superuser, scopes, created, tag)
                 SELECT $1, $2, $3, $4, $5, $6, $7
                 WHERE NOT EXISTS
                     (SELECT 1 FROM strongroom_api_tokens WHERE lower(name) = lower($2))
                 ON CONFLICT DO NOTHING",
                &[
                    &token.id,
                    &token.name,
                    &token.secret_hash,
                    &token.superuser,
                    &scopes,
                    &token.created,
                    &token.tag,
                ],
            )
            .await
            .map_err(db)?;
        Ok(inserted == 1)
    }

    async fn update_token(
        &mut self,
        id: &str,
        expected: Option<i64>,
        revoked: Option<i64>,
        tag: &[u8],
    ) -> Result<bool> {
        let n = self
            .cached()
            .execute(
                "UPDATE strongroom_api_tokens SET revoked = $3, tag = $4
                 WHERE id = $1 AND revoked IS NOT DISTINCT FROM $2",
                &[&id, &expected, &revoked, &tag],
            )
            .await
            .map_err(db)?;
        Ok(n == 1)
    }
}
