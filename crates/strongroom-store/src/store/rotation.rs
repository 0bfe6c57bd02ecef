//! Key rotation: batched, resumable re-wrapping of every stored value under the active
//! key, each batch one transaction with its cursor.

use std::sync::Arc;

use secrecy::ExposeSecret as _;
use strongroom_crypto::secrecy;

use super::write::check_writer_key;
use super::{value_context, Store};
use crate::audit::Appender;
use crate::backend::{AuditRecord, StoredValue};
use crate::model::now_ms;
use crate::Timestamp;
use crate::{Action, Result, RotationProgress, RotationStatus, StoreError};

/// Options of a key rotation.
#[derive(Debug, Clone, Copy)]
pub struct RotateOptions {
    /// Only re-wrap values on this KEK version.
    pub from_version: Option<u32>,
    /// Values per transaction.
    pub batch_size: usize,
    /// Stop after this many batches; the saved cursor lets the next run continue.
    pub max_batches: Option<usize>,
}

impl Default for RotateOptions {
    fn default() -> Self {
        Self {
            from_version: None,
            batch_size: 500,
            max_batches: None,
        }
    }
}

/// A re-wrapped version, applied only if the stored bytes are still `expected`.
pub(crate) struct RotationUpdate {
    pub(crate) position: i64,
    pub(crate) id: crate::SecretId,
    pub(crate) version: u32,
    pub(crate) expected: Vec<u8>,
    pub(crate) new: StoredValue,
}

impl Store {
    /// Re-wraps every stored value (current and kept versions) that is not under the
    /// active KEK, in batches. Each batch is one transaction that also saves a cursor, so
    /// an interrupted rotation resumes where it stopped. Each value is replaced only if
    /// its stored bytes are unchanged (compare-and-swap), so a concurrent write is never
    /// lost. The keyed hash used by `verify` is recomputed under the active KEK. When
    /// every batch is done, the audit chain is re-keyed ([`Store::rekey_audit_chain`]).
    pub async fn rotate(
        &self,
        options: RotateOptions,
        mut progress: impl FnMut(&RotationProgress) + Send,
    ) -> Result<RotationProgress> {
        let ring = &self.inner.ring;
        let backend = &self.inner.backend;
        let target = ring.active().version();
        let from_tag = options
            .from_version
            .map_or_else(|| "any".to_owned(), |v| v.to_string());
        let mut cursor = backend
            .meta(CURSOR)
            .await?
            .and_then(|c| parse_cursor(&c, target, &from_tag))
            .unwrap_or(0);
        let mut state = RotationProgress {
            target_version: target,
            rotated: 0,
            skipped: 0,
            total: backend
                .count_rotation_candidates(target, options.from_version)
                .await?,
        };
        progress(&state);
        let batch_size = options.batch_size.clamp(1, 10_000);
        let mut batches = 0;
        loop {
            if options.max_batches.is_some_and(|max| batches >= max) {
                // Interrupted on purpose: keep the cursor for the next run.
                return Ok(state);
            }
            batches += 1;
            let batch = backend
                .rotation_candidates(target, options.from_version, cursor, batch_size)
                .await?;
            let Some(last) = batch.last() else { break };
            cursor = last.position;
            let mut updates = Vec::with_capacity(batch.len());
            for candidate in batch {
                let context = value_context(&candidate.id, &candidate.row_id, candidate.version);
                let opening = |e| StoreError::opening(&candidate.id, e);
                let plaintext = ring
                    .open(&context, &candidate.value.value)
                    .map_err(opening)?;
                let Some(rewrapped) = ring
                    .rewrap(&context, &candidate.value.value)
                    .map_err(opening)?
                else {
                    continue;
                };
                updates.push(RotationUpdate {
                    position: candidate.position,
                    new: StoredValue {
                        value: rewrapped,
                        value_hash: ring
                            .keyed_hash(&context, plaintext.expose_secret())
                            .to_bytes(),
                        kek_version: target,
                    },
                    id: candidate.id,
                    version: candidate.version,
                    expected: candidate.value.value,
                });
            }
            let attempted = updates.len() as u64;
            let applied = self
                .apply_rotation(updates, Some(format!("{target}:{from_tag}:{cursor}")))
                .await?;
            state.rotated += applied;
            state.skipped += attempted - applied;
            progress(&state);
        }
        self.apply_rotation(Vec::new(), None).await?;
        // Every value is under the active key now; so is the audit chain after this.
        self.rekey_audit_chain().await?;
        self.retag_tokens().await?;
        Ok(state)
    }

    /// Values per KEK version, and whether a rotation is pending.
    pub async fn rotation_status(&self) -> Result<RotationStatus> {
        Ok(RotationStatus {
            active_version: self.inner.ring.active().version(),
            by_version: self.inner.backend.rotation_status().await?,
            pending_cursor: self.inner.backend.meta(CURSOR).await?,
        })
    }

    /// Applies re-wraps whose stored bytes are unchanged (compare-and-swap), each with a
    /// `rotate` event, and saves `cursor` (or clears it), in one transaction. Returns how
    /// many applied.
    pub(crate) async fn apply_rotation(
        &self,
        updates: Vec<RotationUpdate>,
        cursor: Option<String>,
    ) -> Result<u64> {
        let chain = Arc::clone(&self.inner.chain);
        let writer_key = self.inner.writer_key.clone();
        let (actor, now) = (self.actor.to_string(), now_ms());
        self.transact(move |tx| {
            Box::pin(async move {
                let mut audit = Appender::start_deferred(tx, &chain).await?;
                check_writer_key(tx, &writer_key, now).await?;
                let mut applied = 0;
                for update in &updates {
                    if tx
                        .swap_version_value(update.position, &update.expected, &update.new)
                        .await?
                    {
                        applied += 1;
                        let record = AuditRecord {
                            time: Timestamp(now),
                            actor: actor.clone(),
                            action: Action::Rotate,
                            id: update.id.clone(),
                            version: Some(update.version),
                            kek_version: Some(update.new.kek_version),
                        };
                        audit.append(tx, &record).await?;
                    }
                }
                tx.set_meta(CURSOR, cursor.as_deref()).await?;
                Ok(applied)
            })
        })
        .await
    }
}

/// The meta entry holding an interrupted rotation's cursor.
const CURSOR: &str = "rotation_cursor";

fn parse_cursor(text: &str, target: u32, from_tag: &str) -> Option<i64> {
    let mut parts = text.splitn(3, ':');
    let (t, f, position) = (parts.next()?, parts.next()?, parts.next()?);
    (t == target.to_string() && f == from_tag)
        .then(|| position.parse().ok())
        .flatten()
}
