//! Group commit of audit events for reads: concurrent reads' events are appended by one
//! caller in one transaction (one flush, one chain lock on PostgreSQL), and each reader
//! waits for the commit that covers its own events before its value is handed out.
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
use crate::backend::AuditRecord;
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
