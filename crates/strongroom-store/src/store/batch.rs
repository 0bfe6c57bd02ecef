//! Group commit. Read events and writes wait in one queue and share one transaction (one
//! flush, one chain lock on PostgreSQL). Read events: concurrent reads' events are
//! appended first, and each reader waits for the commit that covers its own events before
//! its value is handed out. Writes: concurrent write transactions then run one after
//! another, each in a savepoint of its own (a failing write undoes only itself), and each
//! caller is answered after the commit that makes its write durable.
//!
//! No background task (the store runs on any executor): the first caller to find the turn
//! free takes every item waiting at that moment and makes their commit one shared future,
//! which it hands to every waiter of the batch; callers that arrive during a commit queue
//! up, and the next caller with the turn commits them together, so a batch grows with the
//! load and is one item when there is none. The commit belongs to the batch, not to the
//! caller that started it: every waiter drives the same future, and the turn is released
//! by the commit itself when it ends, so a caller going away (its client gone, a timeout)
//! changes nothing for the others in its batch, who are answered with their real outcome.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use futures_channel::oneshot;
use futures_util::future::{select, BoxFuture, Either, FutureExt as _, Shared};
use futures_util::lock::Mutex as AsyncMutex;

use super::Store;
use crate::audit::Appender;
use crate::backend::{AuditRecord, TxWork, WriteTx};
use crate::{Result, StoreError};

/// Items waiting for the next group commit, and the turn to commit them.
pub(super) struct GroupCommit<I, O> {
    waiting: Mutex<Vec<(I, oneshot::Sender<Ticket<O>>)>>,
    /// Held by the running commit (owned by its shared future, not by a caller).
    turn: Arc<AsyncMutex<()>>,
}

impl<I, O> Default for GroupCommit<I, O> {
    fn default() -> Self {
        Self {
            waiting: Mutex::new(Vec::new()),
            turn: Arc::new(AsyncMutex::new(())),
        }
    }
}

/// The outcomes of one group commit, one slot per item, each taken by its waiter.
type Outcomes<O> = Arc<Mutex<Vec<Option<Result<O>>>>>;

/// One group commit, shared by every waiter of its batch: whichever of them is polled
/// drives it.
type SharedCommit<O> = Shared<BoxFuture<'static, Outcomes<O>>>;

/// A waiter's place in a group commit.
struct Ticket<O> {
    commit: SharedCommit<O>,
    index: usize,
}

impl<O> Ticket<O> {
    /// Drives the shared commit (with the other waiters) and takes this item's outcome.
    async fn outcome(self) -> Result<O> {
        let outcomes = self.commit.await;
        let mine = outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(self.index)
            .and_then(Option::take);
        mine.unwrap_or_else(|| {
            Err(StoreError::Defect(
                "a group commit left an item without its outcome",
            ))
        })
    }
}

/// What waits for the next group commit.
pub(super) enum Queued {
    /// The events of one read.
    ReadEvents(Vec<AuditRecord>),
    /// One write transaction's work.
    Write(TxWork),
}

/// Reads' events and writes, committed with everything else waiting at the same time
/// (a write's work leaves its own result where its caller reads it).
pub(super) type Commits = GroupCommit<Queued, ()>;

impl<I, O: Send + 'static> GroupCommit<I, O> {
    /// Queues `item` and returns its own outcome once a commit covering it has run.
    /// Whichever caller gets the turn calls `commit` with every item queued at that moment;
    /// it returns one outcome per item, in order. A caller answered by another's commit
    /// never waits for the turn, so it never queues behind newer callers; and a commit
    /// runs to its end while any caller of its batch still waits, whoever started it.
    pub(super) async fn submit<F, C>(&self, item: I, commit: C) -> Result<O>
    where
        C: FnOnce(Vec<I>) -> F,
        F: Future<Output = Vec<Result<O>>> + Send + 'static,
    {
        let (done, ticket) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((item, done));
        let ticket = match select(ticket, Arc::clone(&self.turn).lock_owned()).await {
            Either::Left((ticket, _)) => ticket,
            Either::Right((turn, ticket)) => {
                let batch = std::mem::take(
                    &mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner),
                );
                if batch.is_empty() {
                    // Our item went with an earlier commit; its ticket is on the way.
                    drop(turn);
                } else {
                    let (items, waiters): (Vec<I>, Vec<_>) = batch.into_iter().unzip();
                    let work = commit(items);
                    let shared: SharedCommit<O> = async move {
                        let outcomes = work.await;
                        // The next batch may start only once this one is over.
                        drop(turn);
                        Arc::new(Mutex::new(outcomes.into_iter().map(Some).collect()))
                    }
                    .boxed()
                    .shared();
                    for (index, waiter) in waiters.into_iter().enumerate() {
                        let commit = shared.clone();
                        let _ = waiter.send(Ticket { commit, index });
                    }
                }
                ticket.await
            }
        };
        match ticket {
            Ok(ticket) => ticket.outcome().await,
            Err(canceled) => answered(Err(canceled)),
        }
    }
}

/// A waiter without a ticket: every caller of its batch went away before the commit was
/// handed out (a defect, or the whole batch cancelled), so the outcome is unknown and the
/// caller must act as if it failed.
fn answered<O>(answer: std::result::Result<Result<O>, oneshot::Canceled>) -> Result<O> {
    answer.map_err(|_| {
        StoreError::Database(
            "the group commit covering this request was interrupted; nothing was handed out, \
             and a write may or may not be stored"
                .into(),
        )
    })?
}

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
    /// every write in it, and none of them is stored).
    pub(super) async fn run_write(&self, work: TxWork) -> Result<()> {
        self.inner
            .commits
            .submit(Queued::Write(work), |items| {
                let store = self.clone();
                async move { store.commit_group(items).await }
            })
            .await
    }

    /// Commits one group: the reads' events first, then each write in its own savepoint,
    /// all in one transaction. One outcome per item, in order.
    async fn commit_group(&self, items: Vec<Queued>) -> Vec<Result<()>> {
        let n = items.len();
        let mut events = Vec::new();
        let mut works = Vec::new();
        // For each item, in order: whether it is a write (writes' outcomes come back in order).
        let mut is_write = Vec::with_capacity(n);
        for item in items {
            is_write.push(matches!(item, Queued::Write(_)));
            match item {
                Queued::ReadEvents(records) => events.extend(records),
                Queued::Write(work) => works.push(work),
            }
        }
        self.count_group_commit(events.len() as u64, works.len() as u64);
        let mut writes = match self.commit_events_and_writes(events, works).await {
            Ok(writes) => writes.into_iter(),
            // The whole group rolled back: nothing of it was written.
            Err(e) => return failed_all(n, e),
        };
        is_write
            .into_iter()
            .map(|write| {
                if !write {
                    return Ok(());
                }
                writes.next().unwrap_or_else(|| {
                    Err(StoreError::Defect(
                        "a write lost its outcome in a group commit",
                    ))
                })
            })
            .collect()
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;
    use std::time::Duration;

    use futures_channel::oneshot;
    use futures_util::StreamExt as _;

    use super::GroupCommit;
    use crate::Result;

    /// Attack (third round): the leading request of a group commit is dropped mid-commit
    /// (its client went away, or the 30 s timeout cut it). The commit is the batch's, not
    /// the leader's: it runs to its end, and the request that waited in the same batch is
    /// told its real outcome, never "may or may not be written".
    #[tokio::test]
    async fn dropping_the_leading_request_mid_commit_changes_nothing_for_the_others() {
        let group: Arc<GroupCommit<u32, u32>> = Arc::new(GroupCommit::default());
        // Hold the turn with a first commit so that two requests queue together.
        let (first_started, first_running) = oneshot::channel::<()>();
        let (release_first, first_gate) = oneshot::channel::<()>();
        let first = {
            let group = Arc::clone(&group);
            tokio::spawn(async move {
                group
                    .submit(0, move |items| {
                        let _ = first_started.send(());
                        async move {
                            let _ = first_gate.await;
                            items.into_iter().map(Ok).collect::<Vec<Result<u32>>>()
                        }
                    })
                    .await
            })
        };
        first_running.await.unwrap();
        // Two requests queue behind it; whichever takes the turn commits both, and its
        // commit waits at a gate; then that leader is dropped.
        let (release_batch, batch_gate) = oneshot::channel::<()>();
        let batch_gate = Arc::new(std::sync::Mutex::new(Some(batch_gate)));
        let (batch_started, batch_running) = futures_channel::mpsc::unbounded::<u32>();
        let make = |item: u32| {
            let group = Arc::clone(&group);
            let gate = Arc::clone(&batch_gate);
            let started = batch_started.clone();
            tokio::spawn(async move {
                group
                    .submit(item, move |items| {
                        let gate = gate.lock().unwrap().take();
                        let _ = started.unbounded_send(item);
                        async move {
                            if let Some(gate) = gate {
                                let _ = gate.await;
                            }
                            items
                                .into_iter()
                                .map(|i| Ok(i * 100))
                                .collect::<Vec<Result<u32>>>()
                        }
                    })
                    .await
            })
        };
        let mut requests = vec![(1, make(1)), (2, make(2))];
        tokio::time::sleep(Duration::from_millis(50)).await;
        release_first.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 0);
        // One of the two leads the commit of both; it says which. Drop it mid-commit.
        let mut batch_running = batch_running;
        let leader = batch_running.next().await.unwrap();
        let position = requests
            .iter()
            .position(|(item, _)| *item == leader)
            .unwrap();
        let (_, leading) = requests.remove(position);
        leading.abort();
        let _ = leading.await;
        release_batch.send(()).unwrap();
        let (item, other) = requests.pop().unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), other)
            .await
            .expect("the batch's other request is answered")
            .unwrap();
        assert_eq!(answer.unwrap(), item * 100);
    }
}
