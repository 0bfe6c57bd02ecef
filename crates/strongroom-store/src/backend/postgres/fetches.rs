//! Point reads that arrive together share one statement.
//!
//! Every audited read fetches one secret. Sent one by one, each fetch is a statement of
//! its own: a pooled connection, a round trip, and the server's parse-free but not
//! free bind, execute and reply. Under load most of PostgreSQL's time went there, not in
//! finding the row. A fetch that finds fewer than [`IN_FLIGHT`] batches running starts one
//! at once (a lone read waits for nobody); otherwise it joins the queue, and the next
//! batch to start takes the whole queue in one statement (`reads::fetch_many`), each
//! answer going back to the place that asked for it.
//!
//! A batch runs on a task of its own, so a caller that goes away (a dropped request)
//! strands nobody queued behind it; if the task ends without answering, its callers get
//! an error, never another caller's answer.

use std::sync::{Arc, Mutex, PoisonError};

use deadpool_postgres::Pool;
use tokio::sync::oneshot;

use super::reads;
use crate::backend::StoredSecret;
use crate::{Result, SecretId, StoreError};

/// How many batches of point reads one process runs at once.
pub(super) const IN_FLIGHT: usize = 2;

/// The most fetches one statement carries (a larger queue is split).
const MOST_PER_BATCH: usize = 256;

type Answer = oneshot::Sender<Result<Option<StoredSecret>>>;

/// The queue of point reads waiting for a batch.
#[derive(Default)]
pub(super) struct Fetches {
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    queue: Vec<(SecretId, Answer)>,
    running: usize,
}

impl Fetches {
    /// The current value of `id`, fetched in a batch with whatever reads arrive meanwhile.
    pub(super) async fn fetch(
        self: &Arc<Self>,
        pool: &Pool,
        id: &SecretId,
    ) -> Result<Option<StoredSecret>> {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut waiting = self.waiting();
            waiting.queue.push((id.clone(), answer));
            let start = waiting.running < IN_FLIGHT;
            if start {
                waiting.running += 1;
            }
            start
        };
        if start {
            tokio::spawn(Arc::clone(self).run(pool.clone()));
        }
        answered
            .await
            .map_err(|_| StoreError::Defect("a batched read ended without its answer"))?
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs batches until the queue is empty.
    async fn run(self: Arc<Self>, pool: Pool) {
        let mut running = Running {
            fetches: &self,
            counted: true,
        };
        loop {
            let batch: Vec<(SecretId, Answer)> = {
                let mut waiting = self.waiting();
                if waiting.queue.is_empty() {
                    // Counted out under the same lock that saw the queue empty: a read
                    // queued after this starts a batch of its own.
                    waiting.running = waiting.running.saturating_sub(1);
                    running.counted = false;
                    return;
                }
                let take = waiting.queue.len().min(MOST_PER_BATCH);
                let rest = waiting.queue.split_off(take);
                std::mem::replace(&mut waiting.queue, rest)
            };
            let (ids, answers): (Vec<SecretId>, Vec<Answer>) = batch.into_iter().unzip();
            match fetch_all(&pool, &ids).await {
                Ok(found) => {
                    for (answer, secret) in answers.into_iter().zip(found) {
                        // A caller that went away no longer waits: nothing to do.
                        let _ = answer.send(Ok(secret));
                    }
                }
                Err(e) => {
                    let shared = Arc::new(e);
                    for answer in answers {
                        let _ = answer.send(Err(StoreError::Shared(Arc::clone(&shared))));
                    }
                }
            }
        }
    }
}

/// A running batch task, counted out if it ends other than by finding the queue empty
/// (a panic, or the runtime shutting down): the reads still queued are then answered with
/// an error (their senders dropped) rather than left waiting for a task that no longer
/// runs.
struct Running<'a> {
    fetches: &'a Fetches,
    counted: bool,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if self.counted {
            let mut waiting = self.fetches.waiting();
            waiting.running = waiting.running.saturating_sub(1);
            waiting.queue.clear();
        }
    }
}

/// One statement for `ids` (the single-row statement for one).
async fn fetch_all(pool: &Pool, ids: &[SecretId]) -> Result<Vec<Option<StoredSecret>>> {
    let client = super::pooled(pool).await?;
    match ids {
        [one] => Ok(vec![reads::fetch(&client, one).await?]),
        many => reads::fetch_many(&client, many).await,
    }
}
