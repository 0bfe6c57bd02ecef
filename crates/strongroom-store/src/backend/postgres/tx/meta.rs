//! Store-wide rows (settings, recorded keys) inside a PostgreSQL transaction.

use super::*;

#[async_trait]
impl MetaTx for PgTx<'_> {
    async fn meta(&mut self, name: &str) -> Result<Option<String>> {
        super::super::reads::meta(self.sent().await?, name).await
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

    async fn record_key(
        &mut self,
        version: u32,
        fingerprint: &str,
        now: Timestamp,
    ) -> Result<String> {
        if let Some((recorded_version, recorded)) = &self.recorded_key {
            // Recorded or read by an earlier write of this transaction, not undone since
            // (a row once recorded is never changed: another transaction can not move it).
            if *recorded_version == version {
                return Ok(recorded.clone());
            }
        }
        let now = now.unix_ms();
        // Insert and read back in one round trip (two statements: the read sees a row
        // another transaction committed while the insert waited on it).
        self.hold(
            "INSERT INTO strongroom_key_fingerprints (kek_version, fingerprint, recorded) VALUES ($1, $2, $3)
             ON CONFLICT (kek_version) DO NOTHING",
            vec![
                Box::new(i64::from(version)),
                Box::new(fingerprint.to_owned()),
                Box::new(now),
            ],
        );
        let recorded: String = self
            .cached()
            .query_one(
                "SELECT fingerprint FROM strongroom_key_fingerprints WHERE kek_version = $1",
                &[&i64::from(version)],
            )
            .await
            .map_err(db)?
            .get(0);
        self.recorded_key = Some((version, recorded.clone()));
        Ok(recorded)
    }
}
