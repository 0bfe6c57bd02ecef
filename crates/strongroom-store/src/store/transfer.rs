//! Copy and move on the server: the value goes from one identity to another inside one
//! transaction, re-sealed under the target's context, and is never handed out. Each side
//! gets its own audit event (`copy_out`/`copy_in`, `move_out`/`move_in`).

use std::sync::Arc;

use secrecy::ExposeSecret as _;
use strongroom_crypto::secrecy;

use super::write::{apply_write, check_writer_key, event};
use super::{value_context, Store};
use crate::audit::Appender;
use crate::backend::AuditRecord;
use crate::model::now_ms;
use crate::Timestamp;
use crate::{Action, Expiry, Result, SecretId, SetRequest, StoreError, WriteOutcome};

impl Store {
    /// Copies the current value of exactly `from` (no fallback) to `to`, with its
    /// description, metadata, kind and expiry, as a new version of `to`. Refused when `to`
    /// exists unless `force`, and when `from` changes while it is copied.
    pub async fn copy(&self, from: &SecretId, to: &SecretId, force: bool) -> Result<WriteOutcome> {
        let (from, to) = self.transfer_ids(from, to)?;
        let Some(source) = self.open_current(&from, &from.env).await? else {
            return Err(StoreError::NotFound(from));
        };
        let request = SetRequest {
            value: source.value,
            description: Some(source.info.description),
            metadata: Some(source.info.metadata.unwrap_or(serde_json::Value::Null)),
            kind: Some(source.info.kind),
            expiry: source
                .info
                .expires_at
                .map_or(Expiry::Never, |at| Expiry::At(at.0)),
            expected_version: None,
        };
        let record = self.write_record(&to, request, Some(Action::CopyIn))?;
        let source_version = source.version;
        let (chain, writer_key, actor, now) = (
            Arc::clone(&self.inner.chain),
            self.inner.writer_key.clone(),
            self.actor.to_string(),
            now_ms(),
        );
        self.transact(move |tx| {
            Box::pin(async move {
                let mut audit = Appender::start_deferred(tx, &chain).await?;
                check_writer_key(tx, &writer_key, now).await?;
                match tx.lock_secret(&from).await? {
                    None => return Err(StoreError::NotFound(from)),
                    Some(row) if row.version != source_version => {
                        return Err(StoreError::conflict(
                            crate::ConflictKind::ChangedMeanwhile,
                            format!("{from} changed while it was being copied; try again"),
                        ))
                    }
                    Some(_) => {}
                }
                if !force && tx.lock_secret(&to).await?.is_some() {
                    return Err(exists(&to));
                }
                audit
                    .append(
                        tx,
                        &event(&actor, Action::CopyOut, &from, source_version, now),
                    )
                    .await?;
                apply_write(tx, &mut audit, record).await
            })
        })
        .await
    }

    /// Moves `from` to `to` with its whole history: every kept version is re-sealed under
    /// the target's identity and the active key (so a move between namespaces written
    /// under different key versions ends under one), and tied to the `move_in` event.
    /// Refused when `to` exists unless `force` (which deletes it first, audited).
    pub async fn move_to(
        &self,
        from: &SecretId,
        to: &SecretId,
        force: bool,
    ) -> Result<WriteOutcome> {
        let (from, to) = self.transfer_ids(from, to)?;
        let (chain, writer_key, actor, now, ring) = (
            Arc::clone(&self.inner.chain),
            self.inner.writer_key.clone(),
            self.actor.to_string(),
            now_ms(),
            Arc::clone(&self.inner.ring),
        );
        self.transact(move |tx| {
            Box::pin(async move {
                let mut audit = Appender::start_deferred(tx, &chain).await?;
                check_writer_key(tx, &writer_key, now).await?;
                let Some(row) = tx.lock_secret(&from).await? else {
                    return Err(StoreError::NotFound(from));
                };
                if let Some(existing) = tx.lock_secret(&to).await? {
                    if !force {
                        return Err(exists(&to));
                    }
                    tx.delete_secret(&existing).await?;
                    audit
                        .append(
                            tx,
                            &event(&actor, Action::Delete, &to, existing.version, now),
                        )
                        .await?;
                }
                let mut resealed = Vec::new();
                for crate::backend::PlacedVersion {
                    position,
                    row: kept,
                } in tx.versions_of(&row).await?
                {
                    if kept.value.value.is_empty() {
                        // Destroyed: nothing to re-seal; it moves as it is, erased.
                        resealed.push((position, kept.version, kept.value));
                        continue;
                    }
                    let plaintext = ring
                        .open(
                            &value_context(&from, &row.row_id, kept.version),
                            &kept.value.value,
                        )
                        .map_err(|e| StoreError::opening(&from, e))?;
                    let context = value_context(&to, &row.row_id, kept.version);
                    let stored = super::seal_stored(&ring, &context, plaintext.expose_secret())?;
                    resealed.push((position, kept.version, stored));
                }
                tx.rename_secret(&row, &to).await?;
                audit
                    .append(tx, &event(&actor, Action::MoveOut, &from, row.version, now))
                    .await?;
                let seq = audit
                    .append(
                        tx,
                        &AuditRecord {
                            time: Timestamp(now),
                            actor: actor.clone(),
                            action: Action::MoveIn,
                            id: to.clone(),
                            version: Some(row.version),
                            kek_version: Some(ring.active().version()),
                        },
                    )
                    .await?;
                for (position, version, stored) in resealed {
                    let tag = audit.tie_version(tx, &row, &to, version, seq)?;
                    tx.retie_version(position, &stored, seq, &tag).await?;
                }
                Ok(WriteOutcome {
                    id: row.row_id,
                    version: row.version,
                    created: true,
                })
            })
        })
        .await
    }

    /// Both identities, checked; refused when they are the same secret.
    fn transfer_ids(&self, from: &SecretId, to: &SecretId) -> Result<(SecretId, SecretId)> {
        let (from, to) = (self.normalize(from)?, self.normalize(to)?);
        crate::StoreConfig::check_key_segments(&to.key)?;
        if from == to {
            return Err(StoreError::InvalidInput(format!(
                "{from} is both the source and the target"
            )));
        }
        Ok((from, to))
    }
}

fn exists(to: &SecretId) -> StoreError {
    StoreError::conflict(
        crate::ConflictKind::TargetExists,
        format!("{to} already exists; overwrite it with --force (\"force\": true)"),
    )
}
