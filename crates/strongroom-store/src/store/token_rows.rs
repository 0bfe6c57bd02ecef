//! Token rows under the key: every write of a token row carries its keyed tag and an
//! audit event, in one transaction (docs/security.md, "Forged token rows").

use std::sync::Arc;

use super::write::check_writer_key;
use super::Store;
use crate::audit::Appender;
use crate::backend::{AuditRecord, TokenRecord};
use crate::model::now_ms;
use crate::tokens::record::{self, RowCheck};
use crate::Timestamp;
use crate::{Action, AuditQuery, Result, SecretId, StoreError};

/// The meta entry recording that the rows from before keyed tags were tagged (once).
const TOKENS_TAGGED_META: &str = "token_tags";

/// A token row that is refused: its public id, its name as stored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenProblem {
    /// Public id (12 hex characters).
    pub id: String,
    /// Name as stored (a forged row's name is whatever its writer chose).
    pub name: String,
    /// Why the row is refused.
    pub why: String,
}

impl core::fmt::Display for TokenProblem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "token {:?} (id {}): {}", self.name, self.id, self.why)
    }
}

/// What inserting a token row did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenInsert {
    /// Inserted, with its events.
    Inserted,
    /// The name (case-insensitively) or id is taken: nothing written.
    NameTaken,
    /// The login's credential no longer held what it was expected to: nothing written.
    CredentialChanged,
}

/// The audit record of a token event: the token's name in the key field.
fn token_event(actor: &str, action: Action, name: &str, now: i64, kek: u32) -> AuditRecord {
    AuditRecord {
        time: Timestamp(now),
        actor: actor.to_owned(),
        action,
        id: SecretId::new("", "", name),
        version: None,
        kek_version: Some(kek),
    }
}

impl Store {
    /// Whether `record`'s tag matches it under this store's keys.
    pub(crate) fn token_row_check(&self, record: &TokenRecord) -> RowCheck {
        record::check(&self.inner.ring, record)
    }

    /// Inserts a new token row, tagged, with its `token_create` event, after the login's
    /// writes when it is a login's token (its `login` event, the credential it spends),
    /// all in one transaction: a refusal (a quota reached, the name taken, the credential
    /// spent meanwhile) writes nothing and spends nothing.
    pub(crate) async fn insert_token_row(
        &self,
        mut record: TokenRecord,
        caps: Vec<crate::tokens::LiveCap>,
        login: Option<super::logins::PreparedLogin>,
    ) -> Result<TokenInsert> {
        record.tag = Some(record::tag(&self.inner.ring, &record));
        let chain = Arc::clone(&self.inner.chain);
        let writer_key = self.inner.writer_key.clone();
        let actor = self.actor.to_string();
        let kek = self.inner.ring.active().version();
        self.transact(move |tx| {
            Box::pin(async move {
                // The log's lock first: creations are serialised, so two names that
                // differ only in case can not both pass the check.
                let mut audit = Appender::start(tx, &chain).await?;
                check_writer_key(tx, &writer_key, record.created.unix_ms()).await?;
                // Under the lock, so the last place under a cap is taken once.
                for cap in caps.iter().filter(|cap| cap.applies_to(&record)) {
                    let live = tx
                        .count_live_tokens(
                            cap.method.as_deref(),
                            cap.creator.as_deref(),
                            record.created,
                        )
                        .await?;
                    if live >= cap.max {
                        return Err(StoreError::QuotaReached {
                            quota: cap.name.clone(),
                            max: cap.max,
                        });
                    }
                }
                if let Some(login) = &login {
                    if !login.apply(tx, &mut audit).await? {
                        // Nothing written yet.
                        return Ok(TokenInsert::CredentialChanged);
                    }
                }
                if !tx.insert_token(&record).await? {
                    return Ok(TokenInsert::NameTaken);
                }
                let event = token_event(
                    &actor,
                    Action::TokenCreate,
                    &record.name,
                    record.created.unix_ms(),
                    kek,
                );
                audit.append(tx, &event).await?;
                Ok(TokenInsert::Inserted)
            })
        })
        .await
    }

    /// Writes each `(old, new)` pair of token rows (the fields that change after
    /// creation: revocation, expiry, uses), re-tagged, each with an `action` event when
    /// one is given, in one transaction; each write is a compare-and-swap against `old`,
    /// and the transaction writes nothing unless every row still held its `old` fields.
    /// A row whose tag does not match keeps its (failing) tag: no write makes a forged
    /// row's fields valid. Returns false when a row changed meanwhile.
    pub(crate) async fn rewrite_token_rows(
        &self,
        rows: Vec<(TokenRecord, TokenRecord)>,
        action: Option<Action>,
    ) -> Result<bool> {
        let rows: Vec<(TokenRecord, TokenRecord)> = rows
            .into_iter()
            .map(|(old, mut new)| {
                new.tag = if self.token_row_check(&old) == RowCheck::Intact {
                    Some(record::tag(&self.inner.ring, &new))
                } else {
                    old.tag.clone()
                };
                (old, new)
            })
            .collect();
        let chain = Arc::clone(&self.inner.chain);
        let actor = self.actor.to_string();
        let kek = self.inner.ring.active().version();
        let now = now_ms();
        self.transact(move |tx| {
            Box::pin(async move {
                let mut audit = match action {
                    Some(_) => Some(Appender::start(tx, &chain).await?),
                    None => None,
                };
                for (old, new) in &rows {
                    if !tx.update_token(old, new).await? {
                        // Changed meanwhile: roll the whole transaction back.
                        return Err(StoreError::conflict(
                            crate::ConflictKind::ChangedMeanwhile,
                            "a token changed meanwhile",
                        ));
                    }
                    if let (Some(audit), Some(action)) = (audit.as_mut(), action) {
                        let event = token_event(&actor, action, &new.name, now, kek);
                        audit.append(tx, &event).await?;
                    }
                }
                Ok(true)
            })
        })
        .await
        .or_else(|e| match e.conflict_kind() {
            Some(crate::ConflictKind::ChangedMeanwhile) => Ok(false),
            _ => Err(e),
        })
    }

    /// Every token row that is refused (untagged, edited, forged, or tagged under a key
    /// this store lacks), for `doctor`, `backup verify` and `restore`.
    ///
    /// # Errors
    /// When the database can not be read.
    pub async fn token_problems(&self) -> Result<Vec<TokenProblem>> {
        Ok(self
            .inner
            .backend
            .tokens()
            .await?
            .into_iter()
            .filter_map(|row| {
                self.token_row_check(&row)
                    .problem()
                    .map(|why| TokenProblem {
                        id: row.id,
                        name: row.name,
                        why,
                    })
            })
            .collect())
    }

    /// The upgrade to keyed token rows, at the first open with the key: tags every row
    /// from before tags (each a `token_tag` event), then records that it ran, so a row
    /// inserted without a tag later is refused, never tagged. It runs only while no token
    /// event is in the log and no row carries a tag (a database that ever tagged a row
    /// never runs it again, even with its marker removed). Returns how many rows it tagged.
    pub(super) async fn tag_legacy_tokens(&self) -> Result<u64> {
        let backend = &self.inner.backend;
        if backend.meta(TOKENS_TAGGED_META).await?.is_some() {
            return Ok(0);
        }
        let rows = backend.tokens().await?;
        let mut seen_before = rows.iter().any(|r| r.tag.is_some());
        for action in [Action::TokenCreate, Action::TokenRevoke, Action::TokenTag] {
            let query = AuditQuery {
                action: Some(action),
                ..AuditQuery::default()
            };
            seen_before |= !backend.audit_events(&query, 1).await?.is_empty();
        }
        let untagged: Vec<TokenRecord> = if seen_before {
            Vec::new()
        } else {
            rows.into_iter().filter(|r| r.tag.is_none()).collect()
        };
        let ring = Arc::clone(&self.inner.ring);
        let chain = Arc::clone(&self.inner.chain);
        let writer_key = self.inner.writer_key.clone();
        let (actor, now) = (self.actor.to_string(), now_ms());
        self.transact(move |tx| {
            Box::pin(async move {
                let mut audit = Appender::start(tx, &chain).await?;
                if tx.meta(TOKENS_TAGGED_META).await?.is_some() {
                    // Another process upgraded first.
                    return Ok(0);
                }
                if !untagged.is_empty() {
                    check_writer_key(tx, &writer_key, now).await?;
                }
                let kek = ring.active().version();
                for row in &untagged {
                    let tagged = TokenRecord {
                        tag: Some(record::tag(&ring, row)),
                        ..row.clone()
                    };
                    tx.update_token(row, &tagged).await?;
                    audit
                        .append(
                            tx,
                            &token_event(&actor, Action::TokenTag, &row.name, now, kek),
                        )
                        .await?;
                }
                tx.set_meta(TOKENS_TAGGED_META, Some("v1")).await?;
                Ok(untagged.len() as u64)
            })
        })
        .await
    }

    /// Re-tags every intact token row under the active key, so tokens keep working once
    /// older keys are retired; [`Store::rotate`] calls it when it finishes. Rows that are
    /// not intact are left as they are (refused), never laundered. Returns how many it
    /// re-tagged.
    ///
    /// # Errors
    /// When the database can not be read or written.
    pub async fn retag_tokens(&self) -> Result<u64> {
        let active = self.inner.ring.active().version();
        let stale: Vec<(TokenRecord, TokenRecord)> = self
            .inner
            .backend
            .tokens()
            .await?
            .into_iter()
            .filter(|row| {
                self.token_row_check(row) == RowCheck::Intact
                    && row
                        .tag
                        .as_deref()
                        .and_then(|t| strongroom_crypto::KeyedHash::from_bytes(t).ok())
                        .is_some_and(|t| t.kek_version() != active)
            })
            .map(|row| {
                let tagged = TokenRecord {
                    tag: Some(record::tag(&self.inner.ring, &row)),
                    ..row.clone()
                };
                (row, tagged)
            })
            .collect();
        if stale.is_empty() {
            return Ok(0);
        }
        self.transact(move |tx| {
            Box::pin(async move {
                for (row, tagged) in &stale {
                    tx.update_token(row, tagged).await?;
                }
                Ok(stale.len() as u64)
            })
        })
        .await
    }
}

/// The error of a token write without a key.
pub(crate) fn keyless() -> StoreError {
    StoreError::Config(
        "token rows are authenticated under the master key: set STRONGROOM_MASTER_KEY (or \
         another key source) to create or revoke tokens"
            .into(),
    )
}
