//! Group commit. Read events: concurrent reads' events are appended by one caller in one
//! transaction (one flush, one chain lock on PostgreSQL), and each reader waits for the
//! commit that covers its own events before its value is handed out. Writes: concurrent
//! write transactions run one after another inside one transaction, each in a savepoint
//! of its own (a failing write undoes only itself), and each caller is answered after the
//! commit that makes its write durable.
//!
//! No background task: the first caller to find the flush free becomes the leader, takes
//! every event waiting at that moment, commits them, and answers each waiter. Callers that
//! arrive during a flush queue up, and the next leader commits them together; so a batch
//! grows with the load and is one event when there is none.

use std::sync::{Mutex, PoisonError};

use futures_channel::oneshot;
use futures_util::future::{select, Either};
use futures_util::lock::Mutex as AsyncMutex;

use super::Store;
use crate::backend::{AuditRecord, TxOutput, TxWork, WriteTx};
use crate::{Result, StoreError};

/// Events waiting for the next group commit, and the turn to commit them.
#[derive(Default)]
pub(super) struct EventBatcher {
    waiting: Mutex<Vec<Waiter>>,
    flush: AsyncMutex<()>,
}

struct Waiter {
    records: Vec<AuditRecord>,
    done: oneshot::Sender<Result<()>>,
}

impl EventBatcher {
    /// Appends `records` durably in a group commit; returns once the transaction holding
    /// them has committed (or failed: then no caller in that batch may hand a value out).
    pub(super) async fn append(&self, store: &Store, records: Vec<AuditRecord>) -> Result<()> {
        let (done, committed) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Waiter { records, done });
        // Either another caller's commit answers us first (then we never wait for the
        // turn: a follower must not queue behind newer leaders), or we get the turn and
        // commit everything waiting, ours included unless a leader already took it.
        let committed = match select(committed, self.flush.lock()).await {
            Either::Left((answer, _)) => return answered(answer),
            Either::Right((turn, committed)) => {
                self.commit_waiting(store).await;
                drop(turn);
                committed
            }
        };
        answered(committed.await)
    }

    /// Takes every waiting caller's events and appends them in one transaction, then
    /// answers each caller.
    async fn commit_waiting(&self, store: &Store) {
        let batch =
            std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner));
        if batch.is_empty() {
            return;
        }
        let (records, waiters): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|w| (w.records, w.done)).unzip();
        let events: Vec<AuditRecord> = records.into_iter().flatten().collect();
        let count = events.len() as u64;
        let outcome = store.append_events_now(events).await;
        store.count_batch(count);
        for waiter in waiters {
            let answer = match &outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Database(format!(
                    "the audit events of this read could not be written: {e}"
                ))),
            };
            let _ = waiter.send(answer);
        }
    }
}

/// A waiter's answer; a dropped sender means the committing caller was cancelled
/// mid-commit, so the events' fate is unknown and nothing may be handed out.
fn answered(answer: std::result::Result<Result<()>, oneshot::Canceled>) -> Result<()> {
    answer.map_err(|_| {
        StoreError::Database(
            "the audit commit covering this read was interrupted; nothing was handed out".into(),
        )
    })?
}

/// Write transactions waiting for the next group commit, and the turn to commit them.
#[derive(Default)]
pub(super) struct WriteBatcher {
    waiting: Mutex<Vec<WriteWaiter>>,
    flush: AsyncMutex<()>,
}

struct WriteWaiter {
    work: TxWork,
    done: oneshot::Sender<Result<TxOutput>>,
}

/// Each write's own outcome inside a group commit.
type Outcomes = Vec<Result<TxOutput>>;

impl WriteBatcher {
    /// Runs `work` in a group commit; returns its own outcome once the transaction holding
    /// it has committed (an error of the commit itself fails every write in it).
    pub(super) async fn run(&self, store: &Store, work: TxWork) -> Result<TxOutput> {
        let (done, committed) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(WriteWaiter { work, done });
        let committed = match select(committed, self.flush.lock()).await {
            Either::Left((answer, _)) => return written(answer),
            Either::Right((turn, committed)) => {
                self.commit_waiting(store).await;
                drop(turn);
                committed
            }
        };
        written(committed.await)
    }

    async fn commit_waiting(&self, store: &Store) {
        let batch =
            std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner));
        let (works, waiters): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|w| (w.work, w.done)).unzip();
        match works.len() {
            0 => {}
            1 => {
                let work = works.into_iter().next().unwrap_or_else(|| unreachable!());
                let outcome = store.inner.backend.transaction(work).await;
                store.count_write_batch(1);
                if let Some(waiter) = waiters.into_iter().next() {
                    let _ = waiter.send(outcome);
                }
            }
            n => {
                store.count_write_batch(n as u64);
                let grouped: TxWork = Box::new(move |tx| Box::pin(run_each(tx, works)));
                match store.inner.backend.transaction(grouped).await {
                    Ok(outcomes) => match outcomes.downcast::<Outcomes>() {
                        Ok(outcomes) => {
                            for (waiter, outcome) in waiters.into_iter().zip(*outcomes) {
                                let _ = waiter.send(outcome);
                            }
                        }
                        Err(_) => fail_all(waiters, "a group commit returned an unexpected type (a defect)"),
                    },
                    Err(e) => fail_all(waiters, &format!("the group commit holding this write failed, nothing of it was written: {e}")),
                }
            }
        }
    }
}

/// Runs each write in a savepoint of its own inside the shared transaction. Without
/// savepoint support the first write's failure would undo the others, so the backend must
/// have them (every bundled backend does); one that does not fails the batch cleanly.
async fn run_each(tx: &mut dyn WriteTx, works: Vec<TxWork>) -> Result<TxOutput> {
    let mut outcomes: Outcomes = Vec::with_capacity(works.len());
    for work in works {
        if !tx.savepoint().await? {
            return Err(StoreError::Database(
                "this backend can not group writes (no savepoints)".into(),
            ));
        }
        let outcome = work(&mut *tx).await;
        tx.savepoint_end(outcome.is_ok()).await?;
        outcomes.push(outcome);
    }
    Ok(Box::new(outcomes))
}

fn fail_all(waiters: Vec<oneshot::Sender<Result<TxOutput>>>, why: &str) {
    for waiter in waiters {
        let _ = waiter.send(Err(StoreError::Database(why.to_owned())));
    }
}

fn written(answer: std::result::Result<Result<TxOutput>, oneshot::Canceled>) -> Result<TxOutput> {
    answer.map_err(|_| {
        StoreError::Database(
            "the group commit holding this write was interrupted; it may or may not be written"
                .into(),
        )
    })?
}
