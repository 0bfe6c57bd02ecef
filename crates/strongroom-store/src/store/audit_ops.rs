//! The audit trail: queries, verification, checkpoints, retention, and finishing the
//! schema-4 upgrade of an older database.

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret as _;
use strongroom_crypto::secrecy;

use super::write::check_writer_key;
use super::{value_context, Store};
use crate::audit::{self, Appender, AuditVerification, Checkpoint};
use crate::backend::{AuditRecord, StoredValue, VersionRow};
use crate::model::now_ms;
use crate::Timestamp;
use crate::{Action, AuditEvent, AuditQuery, Page, Result, StoreError};

impl Store {
    /// Audit events, newest first; page on with `before_id` = the last event's id.
    pub async fn audit(&self, query: AuditQuery) -> Result<Page<AuditEvent>> {
        let limit = query.limit.unwrap_or(100).clamp(1, 1000);
        let items = self.inner.backend.audit_events(&query, limit).await?;
        let next_cursor = (items.len() == limit)
            .then(|| items.last().map(|e| e.id.to_string()))
            .flatten();
        Ok(Page {
            total: items.len() as u64,
            items,
            next_cursor,
        })
    }

    /// Every audit event matching `query`, newest first, paging through all of them.
    pub async fn audit_all(&self, mut query: AuditQuery) -> Result<Vec<AuditEvent>> {
        query.limit = Some(1000);
        let mut events = Vec::new();
        loop {
            let page = self.audit(query.clone()).await?;
            events.extend(page.items);
            match page.next_cursor.and_then(|c| c.parse().ok()) {
                Some(before) => query.before_id = Some(before),
                None => return Ok(events),
            }
        }
    }

    /// Verifies the audit log: walks the chain from the retention anchor (or the first
    /// event) and reports the first event whose link, sequence number or presence does
    /// not match; then checks that every stored version is tied to the event that wrote
    /// it, so an emptied or shortened log is detected while secrets exist. (Removing only
    /// the newest read events is detectable against a [`Store::audit_checkpoint`].)
    pub async fn verify_audit(&self) -> Result<AuditVerification> {
        audit::verify(self.inner.backend.as_ref(), &self.inner.chain).await
    }

    /// Re-keys the audit chain under the active key after checking it under the keys
    /// that made it, so `verify_audit` keeps working once older keys are retired;
    /// [`Store::rotate`] calls it when it finishes. Refused (nothing written) when the
    /// chain does not verify; idempotent.
    pub async fn rekey_audit_chain(&self) -> Result<audit::Rekeyed> {
        let chain = Arc::clone(&self.inner.chain);
        let now = now_ms();
        self.transact(move |tx| Box::pin(async move { audit::rekey(tx, &chain, now).await }))
            .await
    }

    /// A keyed checkpoint of the audit log's head, to keep outside the database; fails
    /// when the log does not verify.
    pub async fn audit_checkpoint(&self) -> Result<Checkpoint> {
        audit::checkpoint(self.inner.backend.as_ref(), &self.inner.chain).await
    }

    /// Like [`Store::verify_audit`], and also that everything up to `checkpoint` is still
    /// there, unchanged (or was removed by retention, as the keyed anchor shows).
    pub async fn verify_audit_against(&self, checkpoint: &Checkpoint) -> Result<AuditVerification> {
        audit::verify_against(self.inner.backend.as_ref(), &self.inner.chain, checkpoint).await
    }

    /// Deletes audit events older than `retention`, by sequence number (see
    /// docs/security.md, "Audit chain"), leaving a keyed anchor. Returns how many.
    pub async fn cleanup_events(&self, retention: Duration) -> Result<u64> {
        let before =
            now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
        let chain = Arc::clone(&self.inner.chain);
        self.transact(move |tx| {
            Box::pin(async move { audit::cut_before(tx, &chain, before).await })
        })
        .await
    }

    /// Finishes the schema-4 upgrade of an older database, in one transaction: its audit
    /// events are appended again to the keyed chain (times, actors and fields unchanged),
    /// and every value is re-sealed under its version-bound context with a `reseal` event
    /// it is tied to. Nothing happens when nothing is pending; an interrupted upgrade is
    /// rolled back and runs again at the next open. Returns how many were re-sealed.
    pub(super) async fn upgrade_legacy(&self) -> Result<u64> {
        let ring = Arc::clone(&self.inner.ring);
        let chain = Arc::clone(&self.inner.chain);
        let writer_key = self.inner.writer_key.clone();
        let (actor, now) = (self.actor.to_string(), now_ms());
        self.transact(move |tx| {
            Box::pin(async move {
                // The lock first: a second process upgrading at once waits, then finds
                // nothing pending.
                let mut audit = Appender::start(tx, &chain).await?;
                let events = tx.legacy_events().await?;
                let untied = tx.untied_versions().await?;
                if events.is_empty() && untied.is_empty() {
                    return Ok(0);
                }
                check_writer_key(tx, &writer_key, now).await?;
                for event in &events {
                    audit.append(tx, event).await?;
                }
                for crate::backend::PlacedVersion {
                    position,
                    row: legacy,
                } in &untied
                {
                    let sealed = reseal(&ring, legacy)?;
                    let seq = audit
                        .append(
                            tx,
                            &AuditRecord {
                                time: Timestamp(now),
                                actor: actor.clone(),
                                action: Action::Reseal,
                                id: legacy.id.clone(),
                                version: Some(legacy.version),
                                kek_version: Some(sealed.kek_version),
                            },
                        )
                        .await?;
                    let tag = audit.tie(&legacy.row_id, &legacy.id, legacy.version, seq);
                    tx.retie_version(*position, &sealed, seq, &tag).await?;
                }
                tx.clear_legacy_events().await?;
                Ok(untied.len() as u64)
            })
        })
        .await
    }
}

/// Opens a value sealed under the old `(namespace, env, key)` context and seals it under
/// its version-bound context.
fn reseal(ring: &strongroom_crypto::KeyRing, legacy: &VersionRow) -> Result<StoredValue> {
    let plaintext = ring
        .open(&legacy.id.context(), &legacy.value.value)
        .map_err(|e| StoreError::opening(&legacy.id, e))?;
    let context = value_context(&legacy.id, &legacy.row_id, legacy.version);
    super::seal_stored(ring, &context, plaintext.expose_secret())
}
