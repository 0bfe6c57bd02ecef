//! Version rows inside a PostgreSQL transaction.

use super::*;

#[async_trait]
impl VersionTx for PgTx<'_> {
    async fn versions_of(&mut self, row: &SecretRow) -> Result<Vec<PlacedVersion>> {
        self.version_rows("v.sid = $1", &[&row.sid]).await
    }

    async fn change_version(
        &mut self,
        row: &SecretRow,
        version: u32,
        change: VersionChange,
        now: Timestamp,
    ) -> Result<bool> {
        let now = now.unix_ms();
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

    async fn insert_version(&mut self, v: NewVersion<'_>) -> Result<()> {
        // One statement with the history's trim (the trim only deletes versions older than
        // this one, so neither part sees the other's row). No answer to wait for: it rides
        // with the next statement (in a group, the next write's first, or the commit).
        // Its error fails that statement, and a kept write's failing later fails the whole
        // transaction (`tx/mod.rs`).
        self.hold(
            "WITH trimmed AS (
                 DELETE FROM strongroom_secret_versions WHERE sid = $1 AND version <= $10)
             INSERT INTO strongroom_secret_versions (sid, version, value, value_hash, kek_version, created, actor, audit_seq, audit_tag)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            vec![
                Box::new(v.row.sid),
                Box::new(i64::from(v.row.version)),
                Box::new(v.value.value.clone()),
                Box::new(v.value.value_hash.clone()),
                Box::new(i64::from(v.value.kek_version)),
                Box::new(v.created),
                Box::new(v.actor.to_owned()),
                Box::new(v.audit_seq),
                Box::new(v.audit_tag.to_vec()),
                Box::new(v.trim_through),
            ],
        );
        Ok(())
    }

    async fn trim_versions(&mut self, row: &SecretRow, through: i64) -> Result<()> {
        // No answer to wait for: it rides with the write's next statement.
        self.hold(
            "DELETE FROM strongroom_secret_versions WHERE sid = $1 AND version <= $2",
            vec![Box::new(row.sid), Box::new(through)],
        );
        Ok(())
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

    async fn untied_versions(&mut self) -> Result<Vec<PlacedVersion>> {
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

    async fn version_ties(&mut self, after: i64, limit: usize) -> Result<TiePage> {
        super::super::reads::version_ties(self.sent().await?, after, limit).await
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
}
