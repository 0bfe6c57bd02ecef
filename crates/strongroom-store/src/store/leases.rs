//! Leases on dynamic credentials (docs/dynamic-credentials.md): rows whose plain columns
//! schedule the work and whose sealed record — under the key, bound to the lease's id —
//! is the lease (the connection its revocation uses, the login's name, the statements,
//! the real times). A row written without the key does not open, so a database writer can
//! not make the server run statements of its choosing; it can at most delay or hurry the
//! work, which the sweeper's full scan corrects.
//!
//! A lease is recorded (`pending`) before its login is made, activated once it is, and
//! kept until the login is dropped (`revoked`): a crash between the two leaves a pending
//! lease that the sweeper revokes. Issuing, renewing and revoking are audit events
//! (`lease_issue`, `lease_renew`, `lease_revoke`, the key field holding the lease id).

use std::sync::Arc;

use strongroom_crypto::secrecy::SecretSlice;
use strongroom_crypto::Context;

use super::write::check_writer_key;
use super::Store;
use crate::audit::Appender;
use crate::backend::{AuditRecord, LeaseRow};
use crate::model::now_ms;
use crate::{Action, Result, SecretId, StoreError, Timestamp};

/// The context a lease's record is sealed under: its id.
fn context(id: &str) -> Context {
    Context::new("lease").with(id)
}

impl Store {
    /// Seals a lease's record for the row `id`.
    ///
    /// # Errors
    /// No randomness.
    pub fn seal_lease(&self, id: &str, record: &[u8]) -> Result<Vec<u8>> {
        Ok(self.inner.ring.seal(&context(id), record)?)
    }

    /// Opens a lease row's record.
    ///
    /// # Errors
    /// [`StoreError::Integrity`] for a record written without the key or moved from another
    /// lease; [`StoreError::KeyVersionUnavailable`] when its key is not configured.
    pub fn open_lease(&self, row: &LeaseRow) -> Result<SecretSlice<u8>> {
        self.inner
            .ring
            .open(&context(&row.id), &row.sealed)
            .map_err(|e| StoreError::opening(&SecretId::new("", "lease", &row.id), e))
    }

    /// Records a new lease row (its `sealed` from [`Store::seal_lease`]); false when the id
    /// is taken.
    ///
    /// # Errors
    /// The database failing.
    pub async fn record_lease(&self, row: LeaseRow) -> Result<bool> {
        self.transact(move |tx| Box::pin(async move { tx.insert_lease(&row).await }))
            .await
    }

    /// Writes `new` over a lease that still holds `expected`, with an `action` event when
    /// one is given, in one transaction; false (nothing written) when it changed meanwhile.
    ///
    /// # Errors
    /// The database failing, the key not the one that wrote the database.
    pub async fn update_lease(
        &self,
        expected: LeaseRow,
        new: LeaseRow,
        action: Option<Action>,
    ) -> Result<bool> {
        let chain = Arc::clone(&self.inner.chain);
        let writer_key = self.inner.writer_key.clone();
        let kek = self.inner.ring.active().version();
        let actor = self.actor.to_string();
        self.transact(move |tx| {
            Box::pin(async move {
                let Some(action) = action else {
                    return tx.update_lease(&expected, &new).await;
                };
                let mut audit = Appender::start(tx, &chain).await?;
                let time = now_ms();
                check_writer_key(tx, &writer_key, time).await?;
                if !tx.update_lease(&expected, &new).await? {
                    return Ok(false);
                }
                let event = AuditRecord {
                    time: Timestamp(time),
                    actor,
                    action,
                    id: SecretId::new("", "lease", &new.id),
                    version: None,
                    kek_version: Some(kek),
                };
                audit.append(tx, &event).await?;
                Ok(true)
            })
        })
        .await
    }

    /// The lease row `id`.
    ///
    /// # Errors
    /// The database failing.
    pub async fn lease_row(&self, id: &str) -> Result<Option<LeaseRow>> {
        self.inner.backend.lease_row(id).await
    }

    /// The lease rows whose id starts with `prefix` (revoked ones included), in id order.
    ///
    /// # Errors
    /// The database failing.
    pub async fn lease_rows(&self, prefix: &str) -> Result<Vec<LeaseRow>> {
        self.inner.backend.lease_rows(prefix).await
    }

    /// Whether any lease's work is due at `now`: a read, so a sweeper with nothing to do
    /// writes nothing (then [`Store::claim_due_leases`] claims under a write).
    ///
    /// # Errors
    /// The database failing.
    pub async fn any_lease_due(&self, now: Timestamp) -> Result<bool> {
        self.inner.backend.any_lease_due(now).await
    }

    /// Claims up to `limit` leases whose work is due at `now` for `claim_ms`: each is
    /// returned to one caller only, whichever of several server instances asks (a claim is
    /// a compare-and-swap in the same transaction as the read).
    ///
    /// # Errors
    /// The database failing.
    pub async fn claim_due_leases(
        &self,
        now: Timestamp,
        claim_ms: i64,
        limit: u32,
    ) -> Result<Vec<LeaseRow>> {
        self.transact(move |tx| {
            Box::pin(async move {
                let mut claimed = Vec::new();
                for row in tx.due_leases(now, limit).await? {
                    let mut mine = row.clone();
                    mine.claimed_until = Timestamp(now.unix_ms().saturating_add(claim_ms));
                    if tx.update_lease(&row, &mine).await? {
                        claimed.push(mine);
                    }
                }
                Ok(claimed)
            })
        })
        .await
    }
}
