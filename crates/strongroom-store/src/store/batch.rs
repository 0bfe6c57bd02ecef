//! Group commit. Read events and writes wait in one queue and share one transaction (one
//! flush, one chain lock on PostgreSQL). Read events: concurrent reads' events are
//! appended first, and each reader waits for the commit that covers its own events before
//! its value is handed out. Writes: concurrent write transactions then run one after
//! another, each in a savepoint of its own (a failing write undoes only itself), and each
//! caller is answered after the commit that makes its write durable.
//!
//! The queue, its turns and lanes are `store/group.rs`; this module says what is queued
//! and how one group is committed. Where groups run side by side (PostgreSQL's lanes),
//! they must not deadlock on row locks:
//! - a write that names the one secret it touches ([`Footprint::Secret`]: a value write)
//!   is shareable; each group runs its writes in key order, so every group takes secret
//!   rows in one order, and the chain's lock last;
//! - any other write ([`Footprint::Any`]: tokens, leases, settings, versions, rotation,
//!   several secrets) runs in a group alone in this process;
//! - read events take no row lock.
//!
//! Processes sharing one database can still meet on row locks (PostgreSQL then fails one
//! of the two transactions after `deadlock_timeout`); `docs/scaling.md` says when.

use std::sync::Arc;

use super::group::{GroupCommit, Shareable};
use super::Store;
use crate::audit::Appender;
use crate::backend::{AuditRecord, TxWork, WriteTx};
use crate::{Result, SecretId, StoreError};

/// What waits for the next group commit.
pub(super) enum Queued {
    /// The events of one read.
    ReadEvents(Vec<AuditRecord>),
    /// One write transaction's work, and the rows it may lock.
    Write(TxWork, Footprint),
}

/// The rows a write transaction may lock (besides the chain's lock, always taken last).
#[derive(Debug, Clone)]
pub(crate) enum Footprint {
    /// One secret's rows (its row, its versions, its settings) and the writing key's
    /// fingerprint row, in that order.
    Secret(SecretId),
    /// Anything.
    Any,
}

impl Shareable for Queued {
    fn shareable(&self) -> bool {
        !matches!(self, Self::Write(_, Footprint::Any))
    }
}

/// Reads' events and writes, committed with everything else waiting at the same time
/// (a write's work leaves its own result where its caller reads it).
pub(super) type Commits = GroupCommit<Queued, ()>;

/// `n` answers of a batch's failure: the first keeps the error itself, the others share
/// it (an error is not `Clone`), so each keeps its kind and source.
fn failed_all<O>(n: usize, error: StoreError) -> Vec<Result<O>> {
    let shared = std::sync::Arc::new(error);
    (0..n)
        .map(|_| Err(StoreError::Shared(std::sync::Arc::clone(&shared))))
        .collect()
}

impl Store {
    /// Appends one read's events durably in a group commit; returns once the transaction
    /// holding them has committed (or failed: then no read in that batch hands a value out).
    pub(crate) async fn append_read_events(&self, records: Vec<AuditRecord>) -> Result<()> {
        self.inner
            .commits
            .submit(Queued::ReadEvents(records), |items| {
                let store = self.clone();
                async move { store.commit_group(items).await }
            })
            .await
            .map(drop)
    }

    /// Runs one write transaction's work in a group commit; returns its own outcome once
    /// the transaction holding it has committed (a failure of the commit itself fails
    /// every write in it, and none of them is stored). `footprint` says which rows it
    /// may lock (see the module's lanes).
    pub(super) async fn run_write(&self, work: TxWork, footprint: Footprint) -> Result<()> {
        self.inner
            .commits
            .submit(Queued::Write(work, footprint), |items| {
                let store = self.clone();
                async move { store.commit_group(items).await }
            })
            .await
    }

    /// Commits one group ([`Store::commit_one_group`]), then chooses how many lanes the
    /// next groups may take: one while another process appends to the chain too (its
    /// lock is then shared, and fewer, larger groups take it less often: with three
    /// instances, one lane each served more than two, `performance.md`), all of the
    /// backend's otherwise.
    async fn commit_group(&self, items: Vec<Queued>) -> Vec<Result<()>> {
        let outcomes = self.commit_one_group(items).await;
        let lanes = if self.inner.chain.sharing.shared() {
            1
        } else {
            self.inner.backend.commit_lanes()
        };
        self.inner.commits.use_lanes(lanes);
        outcomes
    }

    /// Commits one group: the reads' events first, then each write in its own savepoint,
    /// in key order (writes of one key in the order they came), all in one transaction.
    /// One outcome per item, in order.
    async fn commit_one_group(&self, items: Vec<Queued>) -> Vec<Result<()>> {
        let n = items.len();
        let mut events = Vec::new();
        // Each write with its place among the items.
        let mut writes: Vec<(usize, TxWork, Footprint)> = Vec::new();
        for (place, item) in items.into_iter().enumerate() {
            match item {
                Queued::ReadEvents(records) => events.extend(records),
                Queued::Write(work, footprint) => writes.push((place, work, footprint)),
            }
        }
        // One order of secret rows for every group (a stable sort: a key's writes keep
        // their order, so its versions are numbered as they came).
        writes.sort_by(|(_, _, a), (_, _, b)| a.order_key().cmp(&b.order_key()));
        self.count_group_commit(events.len() as u64, writes.len() as u64);
        let (places, works): (Vec<usize>, Vec<TxWork>) = writes
            .into_iter()
            .map(|(place, work, _)| (place, work))
            .unzip();
        let mut outcomes: Vec<Result<()>> = (0..n).map(|_| Ok(())).collect();
        let ran = match self.commit_events_and_writes(events, works).await {
            Ok(ran) => ran,
            // The whole group rolled back: nothing of it was written.
            Err(e) => return failed_all(n, e),
        };
        if ran.len() != places.len() {
            return failed_all(
                n,
                StoreError::Defect("a write lost its outcome in a group commit"),
            );
        }
        for (place, outcome) in places.into_iter().zip(ran) {
            outcomes[place] = outcome;
        }
        outcomes
    }

    /// One transaction: `events` appended, then each of `works` in a savepoint of its own.
    /// `Err` when the transaction did not commit (nothing of it is stored); otherwise each
    /// write's own outcome, in order.
    async fn commit_events_and_writes(
        &self,
        events: Vec<AuditRecord>,
        works: Vec<TxWork>,
    ) -> Result<Vec<Result<()>>> {
        let chain = Arc::clone(&self.inner.chain);
        if events.is_empty() && works.len() == 1 {
            // One write alone needs no savepoint.
            let mut works = works;
            return Ok(match works.pop() {
                Some(work) => vec![self.inner.backend.transaction(deferring(work, chain)).await],
                None => Vec::new(),
            });
        }
        let (grouped, result) = super::with_result(move |tx| {
            Box::pin(async move {
                // Every append of the group waits for its end (where the backend defers):
                // the chain's lock is then held from the last write to the commit only.
                tx.defer_audit();
                if !events.is_empty() {
                    let mut audit = Appender::start_deferred(tx, &chain).await?;
                    audit.append_all(tx, &events).await?;
                }
                let ran = run_each(tx, works).await?;
                crate::audit::flush_deferred(tx, &chain).await?;
                Ok(ran)
            })
        });
        self.inner.backend.transaction(grouped).await?;
        match result.take()? {
            Grouped::Ran(outcomes) => Ok(outcomes),
            // A backend without savepoints: the events are committed; each write runs in a
            // transaction of its own.
            Grouped::NotRun(works) => {
                let mut outcomes = Vec::with_capacity(works.len());
                for work in works {
                    outcomes.push(self.inner.backend.transaction(work).await);
                }
                Ok(outcomes)
            }
        }
    }
}

impl Footprint {
    /// Where a write sorts in its group: secrets by identity; anything else (which runs
    /// with no other group) first.
    fn order_key(&self) -> Option<(&str, &str, &str)> {
        match self {
            Self::Secret(id) => Some((&id.namespace, &id.env, &id.key)),
            Self::Any => None,
        }
    }
}

/// `work`, its audit appends held back to its end where the backend offers it, then
/// appended in one go (the chain's lock held from there to the commit only).
fn deferring(work: TxWork, chain: Arc<crate::audit::RingChain>) -> TxWork {
    Box::new(move |tx| {
        Box::pin(async move {
            tx.defer_audit();
            work(&mut *tx).await?;
            crate::audit::flush_deferred(tx, &chain).await
        })
    })
}

/// What the shared transaction of a group of writes did.
enum Grouped {
    /// Each write ran in its own savepoint: its outcome, in order.
    Ran(Vec<Result<()>>),
    /// The backend has no savepoints: nothing ran, the writes come back to run alone.
    NotRun(Vec<TxWork>),
}

/// Runs each write in a savepoint of its own inside the shared transaction, so a failing
/// write undoes only itself. A backend without savepoints gets the writes back unrun.
async fn run_each(tx: &mut dyn WriteTx, works: Vec<TxWork>) -> Result<Grouped> {
    let mut outcomes: Vec<Result<()>> = Vec::with_capacity(works.len());
    let mut works = works.into_iter();
    while let Some(work) = works.next() {
        if !tx.savepoint().await? {
            if outcomes.is_empty() {
                let unrun: Vec<TxWork> = std::iter::once(work).chain(works).collect();
                return Ok(Grouped::NotRun(unrun));
            }
            return Err(StoreError::Defect(
                "a backend stopped offering savepoints inside a transaction",
            ));
        }
        let outcome = work(&mut *tx).await;
        tx.savepoint_end(outcome.is_ok()).await?;
        outcomes.push(outcome);
    }
    Ok(Grouped::Ran(outcomes))
}
