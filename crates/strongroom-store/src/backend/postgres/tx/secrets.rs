//! Secret rows inside a PostgreSQL transaction.

use super::*;

#[async_trait]
impl SecretTx for PgTx<'_> {
    async fn upsert_secret(
        &mut self,
        id: &SecretId,
        new_row_id: &str,
        changes: &Changes,
        now: Timestamp,
    ) -> Result<UpsertedSecret> {
        let now = now.unix_ms();
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
                 RETURNING sid, row_id, version, (xmax = 0) AS created,
                     (SELECT max_versions FROM strongroom_secret_settings t WHERE t.sid = s.sid),
                     (SELECT cas_required FROM strongroom_secret_settings t WHERE t.sid = s.sid)",
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
        // The secret's own settings came with the row: the write asks for them next.
        self.upserted_settings = Some((
            row.get(0),
            SecretSettings {
                max_versions: row.get::<_, Option<i64>>(4).map(u32_of),
                cas_required: row.get::<_, Option<bool>>(5).unwrap_or(false),
            },
        ));
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
        now: Timestamp,
    ) -> Result<StoredInfo> {
        let now = now.unix_ms();
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

    async fn settings_of(&mut self, row: &SecretRow) -> Result<SecretSettings> {
        if let Some((sid, settings)) = self.upserted_settings.take() {
            if sid == row.sid {
                return Ok(settings);
            }
        }
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
        self.upserted_settings = None;
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

    async fn expired_secrets(&mut self, before: Timestamp) -> Result<Vec<SecretRow>> {
        let before = before.unix_ms();
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
}
