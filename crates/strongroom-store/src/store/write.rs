//! Writes: what a value write, an attribute change, a delete and expiry cleanup do inside
//! their transaction (the rules every backend shares).

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret as _;
use strongroom_crypto::secrecy;

use super::{value_context, Store};
use crate::audit::{Appender, RingChain};
use crate::backend::{AuditRecord, Change, Changes, NewVersion, StoredValue, WriteTx};
use crate::model::{now_ms, Timestamp};
use crate::{
    Action, Expiry, MetaUpdate, Result, SecretId, SecretInfo, SetRequest, StoreError, WriteOutcome,
};

/// Seals a write's value for the row and version the transaction chose.
type Sealer = Box<dyn FnOnce(&str, u32) -> Result<StoredValue> + Send>;

/// A checked value write, not yet applied.
pub(super) struct WriteRecord {
    id: SecretId,
    seal: Sealer,
    changes: Changes,
    now: i64,
    actor: String,
    history_depth: u32,
    /// The event's action when it is not a plain create or update (rollback, copy).
    action: Option<Action>,
    /// Check-and-set: the version the secret must be at (0: absent).
    expected_version: Option<u32>,
    new_row_id: String,
}

/// The writing key: `(version, fingerprint)`.
pub(super) type WriterKey = (u32, String);

/// Records the writing key's fingerprint, or refuses the write if the database knows
/// another one under the same version (a write under the wrong key never lands).
pub(super) async fn check_writer_key(
    tx: &mut dyn WriteTx,
    key: &WriterKey,
    now: i64,
) -> Result<()> {
    let recorded = tx.record_key(key.0, &key.1, Timestamp(now)).await?;
    if recorded == key.1 {
        Ok(())
    } else {
        Err(StoreError::WrongKey {
            version: key.0,
            configured: key.1.clone(),
            recorded,
        })
    }
}

/// A value write inside the transaction: the secret row (created, or its version bumped),
/// the audit event, the version row tied to that event, and history trimming.
pub(super) async fn apply_write(
    tx: &mut dyn WriteTx,
    audit: &mut Appender,
    record: WriteRecord,
) -> Result<WriteOutcome> {
    let upserted = tx
        .upsert_secret(
            &record.id,
            &record.new_row_id,
            &record.changes,
            Timestamp(record.now),
        )
        .await?;
    let row = upserted.row;
    let settings = if upserted.created {
        crate::backend::SecretSettings::default()
    } else {
        tx.settings_of(&row).await?
    };
    if settings.cas_required && record.expected_version.is_none() && record.action.is_none() {
        return Err(StoreError::conflict(
            crate::ConflictKind::CasRequired,
            format!(
                "check-and-set is required for {}: give the version you expect (`--cas N`, \
                 \"cas\", options.cas)",
                record.id
            ),
        ));
    }
    if let Some(expected) = record.expected_version {
        let was = if upserted.created { 0 } else { row.version - 1 };
        if was != expected {
            // Returning the error rolls the whole transaction back: nothing is written.
            return Err(StoreError::conflict(
                crate::ConflictKind::CasMismatch,
                format!(
                    "check-and-set: {} is at version {was}, not {expected}",
                    record.id
                ),
            ));
        }
    }
    let value = (record.seal)(&row.row_id, row.version)?;
    let action = match record.action {
        Some(action) => action,
        None if upserted.created => Action::Create,
        None => Action::Update,
    };
    let seq = audit
        .append(
            tx,
            &AuditRecord {
                time: Timestamp(record.now),
                actor: record.actor.clone(),
                action,
                id: record.id.clone(),
                version: Some(row.version),
                kek_version: Some(value.kek_version),
            },
        )
        .await?;
    let tag = audit.tie_version(tx, &row, &record.id, row.version, seq)?;
    // History is trimmed with the insert (only versions older than the new one go), so a
    // backend can do both in one statement.
    let depth = settings.max_versions.unwrap_or(record.history_depth);
    tx.insert_version(NewVersion {
        row: &row,
        value: &value,
        created: Timestamp(record.now),
        actor: &record.actor,
        audit_seq: seq,
        audit_tag: &tag,
        trim_through: i64::from(row.version) - i64::from(depth.max(1)),
    })
    .await?;
    Ok(WriteOutcome {
        id: row.row_id,
        version: row.version,
        created: upserted.created,
    })
}

/// Applies `records` in one transaction: all land, or none does.
async fn write_all(
    tx: &mut dyn WriteTx,
    chain: Arc<RingChain>,
    writer_key: WriterKey,
    records: Vec<WriteRecord>,
) -> Result<Vec<WriteOutcome>> {
    let Some(now) = records.first().map(|r| r.now) else {
        return Ok(Vec::new());
    };
    // The chain's lock is taken at the end of the transaction where the backend defers.
    let mut audit = Appender::start_deferred(tx, &chain).await?;
    check_writer_key(tx, &writer_key, now).await?;
    // Secrets in key order (a stable sort: one key's writes keep their order), as every
    // group commit takes them, so a write of several secrets and another process's group
    // never lock two rows in opposite orders; outcomes come back in the order given.
    let mut records: Vec<(usize, WriteRecord)> = records.into_iter().enumerate().collect();
    records.sort_by(|(_, a), (_, b)| {
        (&a.id.namespace, &a.id.env, &a.id.key).cmp(&(&b.id.namespace, &b.id.env, &b.id.key))
    });
    let mut outcomes: Vec<Option<WriteOutcome>> = records.iter().map(|_| None).collect();
    for (place, record) in records {
        outcomes[place] = Some(apply_write(tx, &mut audit, record).await?);
    }
    outcomes
        .into_iter()
        .map(|outcome| outcome.ok_or(StoreError::Defect("a write of several lost its outcome")))
        .collect()
}

/// An event about a secret that carries no value (a delete, an attribute change, ...).
pub(super) fn event(
    actor: &str,
    action: Action,
    id: &SecretId,
    version: u32,
    now: i64,
) -> AuditRecord {
    AuditRecord {
        time: Timestamp(now),
        actor: actor.to_owned(),
        action,
        id: id.clone(),
        version: Some(version),
        kek_version: None,
    }
}

impl Store {
    /// Creates or replaces a secret's value (a new version). Omitted attributes keep their
    /// current values. Nothing is written if any check fails.
    pub async fn set(&self, id: &SecretId, request: SetRequest) -> Result<WriteOutcome> {
        let id = self.normalize(id)?;
        crate::StoreConfig::check_key_segments(&id.key)?;
        self.set_normalized(&id, request).await
    }

    /// One value write of an identity already normalized (and, but for the test hook,
    /// checked against the key grammar).
    async fn set_normalized(&self, id: &SecretId, request: SetRequest) -> Result<WriteOutcome> {
        let mut outcomes = self
            .apply(vec![self.write_record(id, request, None)?])
            .await?;
        outcomes
            .pop()
            .ok_or_else(|| StoreError::Defect("a write reported no outcome"))
    }

    /// Sets several secrets in one transaction: all land, or (on any error) none does.
    pub async fn set_many(&self, items: Vec<(SecretId, SetRequest)>) -> Result<Vec<WriteOutcome>> {
        let records = items
            .into_iter()
            .map(|(id, request)| {
                let id = self.normalize(&id)?;
                crate::StoreConfig::check_key_segments(&id.key)?;
                self.write_record(&id, request, None)
            })
            .collect::<Result<Vec<_>>>()?;
        self.apply(records).await
    }

    /// Test hook: a write as a release before the key grammar's segment rule made it
    /// (`a//b`, `/a`), so tests can hold a key only older databases have.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub async fn set_as_older_release(
        &self,
        id: &SecretId,
        request: SetRequest,
    ) -> Result<WriteOutcome> {
        let id = self.normalize(id)?;
        self.set_normalized(&id, request).await
    }

    /// Makes a kept version current again, as a new version (re-sealed under the active
    /// key), keeping description, metadata, kind and expiry. The old plaintext never
    /// leaves the store, so the rollback event is its only audit record.
    pub async fn rollback(&self, id: &SecretId, version: u32) -> Result<WriteOutcome> {
        let id = self.normalize(id)?;
        let value = self.open_version_unaudited(&id, version).await?;
        let record = self.write_record(
            &id,
            SetRequest {
                value,
                ..SetRequest::default()
            },
            Some(Action::Rollback),
        )?;
        let mut outcomes = self.apply(vec![record]).await?;
        outcomes
            .pop()
            .ok_or_else(|| StoreError::Defect("a write reported no outcome"))
    }

    async fn apply(&self, records: Vec<WriteRecord>) -> Result<Vec<WriteOutcome>> {
        let chain = Arc::clone(&self.inner.chain);
        let writer_key = self.inner.writer_key.clone();
        // One secret's write locks that secret's rows only; several, anything.
        let footprint = match records.as_slice() {
            [one] => super::batch::Footprint::Secret(one.id.clone()),
            _ => super::batch::Footprint::Any,
        };
        self.transact_on(footprint, move |tx| {
            Box::pin(write_all(tx, chain, writer_key, records))
        })
        .await
    }

    /// Writes `items` in one transaction as [`Store::set_many`] does, except that an empty
    /// value is kept, not refused: an import from PocketBase, whose plugin stores empty
    /// strings, carries every row it can decrypt exactly (the empty-value rule is for
    /// values people type).
    pub(crate) async fn set_many_keeping_empty(
        &self,
        items: Vec<(SecretId, SetRequest)>,
    ) -> Result<Vec<WriteOutcome>> {
        let records = items
            .into_iter()
            .map(|(id, request)| {
                let id = self.normalize(&id)?;
                crate::StoreConfig::check_key_segments(&id.key)?;
                self.write_record_with(&id, request, None, true)
            })
            .collect::<Result<Vec<_>>>()?;
        self.apply(records).await
    }

    /// Checks a write; nothing is written yet. The value is sealed inside the transaction,
    /// once its row id and version number are known.
    /// `action` is the event's action when not a plain create or update; such a write
    /// carries a value the store already held, so an empty one (legacy) is not refused.
    pub(super) fn write_record(
        &self,
        id: &SecretId,
        request: SetRequest,
        action: Option<Action>,
    ) -> Result<WriteRecord> {
        self.write_record_with(id, request, action, action.is_some())
    }

    /// [`Store::write_record`], with whether an empty value is accepted.
    fn write_record_with(
        &self,
        id: &SecretId,
        request: SetRequest,
        action: Option<Action>,
        empty_ok: bool,
    ) -> Result<WriteRecord> {
        let limits = &self.inner.config.limits;
        let size = request.value.expose_secret().len();
        if size == 0 && !empty_ok {
            return Err(StoreError::InvalidInput(EMPTY_VALUE.into()));
        }
        if size > limits.max_value_size {
            return Err(StoreError::ValueTooLarge {
                size,
                max: limits.max_value_size,
            });
        }
        let now = now_ms();
        let ring = Arc::clone(&self.inner.ring);
        let sealed_id = id.clone();
        let plaintext = request.value;
        let seal = move |row_id: &str, version: u32| -> Result<StoredValue> {
            let context = value_context(&sealed_id, row_id, version);
            super::seal_stored(&ring, &context, plaintext.expose_secret())
        };
        Ok(WriteRecord {
            id: id.clone(),
            changes: Changes {
                description: self.check_description(request.description)?,
                metadata: self.check_metadata(request.metadata)?,
                kind: self.check_kind(request.kind)?,
                expires_at: expiry_change(request.expiry, now)?,
            },
            seal: Box::new(seal),
            now,
            actor: self.actor.to_string(),
            history_depth: self.inner.config.history_depth,
            action,
            expected_version: request.expected_version,
            new_row_id: new_row_id()?,
        })
    }

    fn check_description(&self, description: Option<String>) -> Result<Change<String>> {
        let max = self.inner.config.limits.max_description_len;
        match description {
            Some(d) if d.len() > max => Err(StoreError::InvalidInput(format!(
                "description is {} bytes; the maximum is {max}",
                d.len()
            ))),
            Some(d) => Ok(Change::Set(d)),
            None => Ok(Change::Keep),
        }
    }

    fn check_metadata(
        &self,
        metadata: Option<serde_json::Value>,
    ) -> Result<Change<Option<String>>> {
        let Some(metadata) = metadata else {
            return Ok(Change::Keep);
        };
        if metadata.is_null() {
            return Ok(Change::Set(None));
        }
        if !metadata.is_object() {
            return Err(StoreError::InvalidInput(
                "metadata must be a JSON object".into(),
            ));
        }
        let text = metadata.to_string();
        let max = self.inner.config.limits.max_metadata_size;
        if text.len() > max {
            return Err(StoreError::InvalidInput(format!(
                "metadata is {} bytes; the maximum is {max}",
                text.len()
            )));
        }
        Ok(Change::Set(Some(text)))
    }

    fn check_kind(&self, kind: Option<String>) -> Result<Change<String>> {
        match kind {
            None => Ok(Change::Keep),
            Some(kind) => {
                self.inner.config.check_namespace(&kind).map_err(|_| {
                    StoreError::InvalidInput("kind must be 1-64 characters of a-z 0-9 _ -".into())
                })?;
                Ok(Change::Set(kind))
            }
        }
    }

    /// Changes description, metadata, kind or expiry without touching the value.
    pub async fn update_meta(&self, id: &SecretId, update: MetaUpdate) -> Result<SecretInfo> {
        let id = self.normalize(id)?;
        let now = now_ms();
        let changes = Changes {
            description: self.check_description(update.description)?,
            metadata: self.check_metadata(update.metadata)?,
            kind: self.check_kind(update.kind)?,
            expires_at: expiry_change(update.expiry, now)?,
        };
        let (chain, actor, target) = (
            Arc::clone(&self.inner.chain),
            self.actor.to_string(),
            id.clone(),
        );
        let info = self
            .transact(move |tx| {
                Box::pin(async move {
                    let mut audit = Appender::start_deferred(tx, &chain).await?;
                    let Some(row) = tx.lock_secret(&target).await? else {
                        return Ok(None);
                    };
                    let info = tx.update_secret(&row, &changes, Timestamp(now)).await?;
                    audit
                        .append(
                            tx,
                            &event(&actor, Action::MetadataUpdate, &target, row.version, now),
                        )
                        .await?;
                    Ok(Some(info))
                })
            })
            .await?;
        info.map(|i| super::read::info_of(i, now))
            .ok_or(StoreError::NotFound(id))
    }

    /// Deletes a secret and all its versions.
    pub async fn delete(&self, id: &SecretId) -> Result<()> {
        let id = self.normalize(id)?;
        let (chain, actor, target, now) = (
            Arc::clone(&self.inner.chain),
            self.actor.to_string(),
            id.clone(),
            now_ms(),
        );
        let deleted = self
            .transact(move |tx| {
                Box::pin(async move {
                    let mut audit = Appender::start_deferred(tx, &chain).await?;
                    let Some(row) = tx.lock_secret(&target).await? else {
                        return Ok(false);
                    };
                    tx.delete_secret(&row).await?;
                    audit
                        .append(
                            tx,
                            &event(&actor, Action::Delete, &target, row.version, now),
                        )
                        .await?;
                    Ok(true)
                })
            })
            .await?;
        if deleted {
            Ok(())
        } else {
            Err(StoreError::NotFound(id))
        }
    }

    /// Deletes secrets that expired more than `retention` ago, each with an
    /// `expired_cleanup` event. Returns how many.
    pub async fn cleanup_expired(&self, retention: Duration) -> Result<u64> {
        let now = now_ms();
        let before = now.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
        let (chain, actor) = (Arc::clone(&self.inner.chain), self.actor.to_string());
        self.transact(move |tx| {
            Box::pin(async move {
                let mut audit = Appender::start_deferred(tx, &chain).await?;
                let expired = tx.expired_secrets(Timestamp(before)).await?;
                for row in &expired {
                    tx.delete_secret(row).await?;
                    audit
                        .append(
                            tx,
                            &event(&actor, Action::ExpiredCleanup, &row.id, row.version, now),
                        )
                        .await?;
                }
                Ok(expired.len() as u64)
            })
        })
        .await
    }
}

pub(super) fn expiry_change(expiry: Expiry, now: i64) -> Result<Change<Option<Timestamp>>> {
    Ok(match expiry {
        Expiry::Keep => Change::Keep,
        Expiry::Never => Change::Set(None),
        Expiry::At(at) => Change::Set(Some(Timestamp(at))),
        Expiry::In(ttl) => {
            if ttl.is_zero() {
                return Err(StoreError::InvalidInput(
                    "ttl must be longer than zero".into(),
                ));
            }
            let ms = i64::try_from(ttl.as_millis())
                .ok()
                .and_then(|ms| now.checked_add(ms))
                .ok_or_else(|| StoreError::InvalidInput("ttl is too long".into()))?;
            Change::Set(Some(Timestamp(ms)))
        }
    })
}

/// A 15-character public row id of `[a-z0-9]`, as PocketBase uses.
fn new_row_id() -> Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 15];
    getrandom::getrandom(&mut bytes)
        .map_err(|_| StoreError::Crypto(strongroom_crypto::Error::Random))?;
    // 256 % 36 = 4: the bias of a plain modulo is irrelevant for an identifier.
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

/// Why an empty value is refused, on every surface (docs/cli.md, "Values").
pub(crate) const EMPTY_VALUE: &str =
    "the value is empty; an empty secret is refused everywhere (it is nearly always an unset \
     variable or a blank line), so store a placeholder if you mean one";
