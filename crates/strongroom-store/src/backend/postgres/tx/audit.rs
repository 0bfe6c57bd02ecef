//! The audit log inside a PostgreSQL transaction.

use super::*;

#[async_trait]
impl AuditTx for PgTx<'_> {
    async fn lock_audit_head(&mut self) -> Result<Option<ChainHead>> {
        // The lock and the head in one round trip: the server reads the head once the
        // lock is granted.
        self.hold(
            "SELECT pg_advisory_xact_lock($1)",
            vec![Box::new(AUDIT_LOCK)],
        );
        let head = self
            .cached()
            .query_opt(
                "SELECT id, link FROM strongroom_audit_events ORDER BY id DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(db)?;
        // Held until the transaction ends (the first grant counts; savepoints re-ask).
        self.locked_at.get_or_insert_with(std::time::Instant::now);
        Ok(head.map(|r| ChainHead {
            seq: r.get(0),
            link: r.get(1),
        }))
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

    async fn insert_events(&mut self, events: &[NewEvent<'_>]) -> Result<()> {
        // One statement however many events the group commit carries, held back to ride
        // with the next one (the re-tie of the group's versions, or the commit's flush):
        // the chain's lock is then held one round trip less.
        let owned = |f: fn(&AuditRecord) -> &str| -> Vec<String> {
            events.iter().map(|e| f(e.record).to_owned()).collect()
        };
        let ids: Vec<i64> = events.iter().map(|e| e.seq).collect();
        let times: Vec<i64> = events.iter().map(|e| e.record.time.unix_ms()).collect();
        let versions: Vec<Option<i64>> = events
            .iter()
            .map(|e| e.record.version.map(i64::from))
            .collect();
        let kek_versions: Vec<Option<i64>> = events
            .iter()
            .map(|e| e.record.kek_version.map(i64::from))
            .collect();
        let links: Vec<Vec<u8>> = events.iter().map(|e| e.link.clone()).collect();
        self.hold(
            "INSERT INTO strongroom_audit_events (id, time, actor, action, namespace, env, key, version, kek_version, link)
             SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                                  $6::TEXT[], $7::TEXT[], $8::BIGINT[], $9::BIGINT[], $10::BYTEA[])",
            vec![
                Box::new(ids),
                Box::new(times),
                Box::new(owned(|r| &r.actor)),
                Box::new(owned(|r| r.action.as_str())),
                Box::new(owned(|r| &r.id.namespace)),
                Box::new(owned(|r| &r.id.env)),
                Box::new(owned(|r| &r.id.key)),
                Box::new(versions),
                Box::new(kek_versions),
                Box::new(links),
            ],
        );
        Ok(())
    }

    async fn audit_links(&mut self, after: i64, limit: usize) -> Result<Vec<LinkedEvent>> {
        super::super::reads::audit_links(self.sent().await?, after, limit).await
    }

    async fn relink_event(&mut self, seq: i64, link: &[u8]) -> Result<()> {
        // The append-only trigger lets a link change through only while this is set.
        self.sent()
            .await?
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
        self.sent()
            .await?
            .batch_execute("SET LOCAL strongroom.rekey = 'off'")
            .await
            .map_err(db)
    }

    async fn first_event_since(&mut self, time: Timestamp) -> Result<Option<i64>> {
        let time = time.unix_ms();
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

    async fn event_at_or_before(&mut self, seq: i64) -> Result<Option<ChainHead>> {
        Ok(self
            .cached()
            .query_opt(
                "SELECT id, link FROM strongroom_audit_events WHERE id <= $1 ORDER BY id DESC LIMIT 1",
                &[&seq],
            )
            .await
            .map_err(db)?
            .map(|r| ChainHead {
                seq: r.get(0),
                link: r.get(1),
            }))
    }

    async fn delete_events_through(&mut self, seq: i64) -> Result<u64> {
        // The append-only trigger lets deletes through only while this setting is on.
        self.sent()
            .await?
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
        self.sent()
            .await?
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
}
