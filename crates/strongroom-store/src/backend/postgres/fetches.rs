//! Point reads that arrive together share one statement.
//!
//! Every audited read fetches one secret, and every request with a stored token looks the
//! token up. Sent one by one, each is a statement of its own: a pooled connection, a round
//! trip, and the server's parse-free but not free bind, execute and reply. Under load most
//! of PostgreSQL's time went there, not in finding the row. A read that finds fewer than
//! [`IN_FLIGHT`] batches of its kind running starts one at once (a lone read waits for
//! nobody); otherwise it joins the queue, and the next batch to start takes the whole queue
//! in one statement ([`PointRead::read_all`]), each answer going back to the place that
//! asked for it.
//!
//! A batch runs on a task of its own, so a caller that goes away (a dropped request)
//! strands nobody queued behind it; if the task ends without answering, its callers get
//! an error, never another caller's answer.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use deadpool_postgres::Pool;
use tokio::sync::oneshot;

use super::reads;
use crate::backend::{StoredSecret, TokenRecord};
use crate::{Result, SecretId, StoreError};

/// How many batches of one kind of point read one process runs at once.
pub(super) const IN_FLIGHT: usize = 2;

/// The most reads one statement carries (a larger queue is split).
const MOST_PER_BATCH: usize = 256;

/// A kind of point read that can be batched: a row by its key, many keys in one statement.
pub(super) trait PointRead: Send + Sync + 'static {
    /// What names a row.
    type Key: Send + 'static;
    /// The row.
    type Row: Send + 'static;
    /// The row of each of `keys`, in order (`None`: no such row), in one statement.
    fn read_all(
        client: &deadpool_postgres::Client,
        keys: &[Self::Key],
    ) -> impl Future<Output = Result<Vec<Option<Self::Row>>>> + Send;
}

/// A secret's current value by its identity.
pub(super) struct Secrets;

impl PointRead for Secrets {
    type Key = SecretId;
    type Row = StoredSecret;
    async fn read_all(
        client: &deadpool_postgres::Client,
        ids: &[SecretId],
    ) -> Result<Vec<Option<StoredSecret>>> {
        match ids {
            [one] => Ok(vec![reads::fetch(client, one).await?]),
            many => reads::fetch_many(client, many).await,
        }
    }
}

/// A token's row by its public id.
pub(super) struct Tokens;

impl PointRead for Tokens {
    type Key = String;
    type Row = TokenRecord;
    async fn read_all(
        client: &deadpool_postgres::Client,
        ids: &[String],
    ) -> Result<Vec<Option<TokenRecord>>> {
        match ids {
            [one] => Ok(vec![reads::token_by_id(client, one).await?]),
            many => reads::tokens_by_ids(client, many).await,
        }
    }
}

type Answer<R> = oneshot::Sender<Result<Option<<R as PointRead>::Row>>>;

/// The queue of point reads of one kind waiting for a batch.
pub(super) struct Fetches<R: PointRead> {
    waiting: Mutex<Waiting<R>>,
}

impl<R: PointRead> Default for Fetches<R> {
    fn default() -> Self {
        Self {
            waiting: Mutex::new(Waiting {
                queue: Vec::new(),
                running: 0,
            }),
        }
    }
}

struct Waiting<R: PointRead> {
    queue: Vec<(R::Key, Answer<R>)>,
    running: usize,
}

impl<R: PointRead> Fetches<R> {
    /// The row of `key`, read in a batch with whatever reads of its kind arrive meanwhile.
    pub(super) async fn fetch(
        self: &Arc<Self>,
        pool: &Pool,
        key: R::Key,
    ) -> Result<Option<R::Row>> {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut waiting = self.waiting();
            waiting.queue.push((key, answer));
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

    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting<R>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs batches until the queue is empty.
    async fn run(self: Arc<Self>, pool: Pool) {
        let mut running = Running {
            fetches: &self,
            counted: true,
        };
        loop {
            let batch: Vec<(R::Key, Answer<R>)> = {
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
            let (keys, answers): (Vec<R::Key>, Vec<Answer<R>>) = batch.into_iter().unzip();
            let read = match super::pooled(&pool).await {
                Ok(client) => R::read_all(&client, &keys).await,
                Err(e) => Err(e),
            };
            match read {
                Ok(found) if found.len() == answers.len() => {
                    for (answer, row) in answers.into_iter().zip(found) {
                        // A caller that went away no longer waits: nothing to do.
                        let _ = answer.send(Ok(row));
                    }
                }
                outcome => {
                    let e = outcome.err().unwrap_or(StoreError::Defect(
                        "a batched read answered a different number of reads",
                    ));
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
struct Running<'a, R: PointRead> {
    fetches: &'a Fetches<R>,
    counted: bool,
}

impl<R: PointRead> Drop for Running<'_, R> {
    fn drop(&mut self) {
        if self.counted {
            let mut waiting = self.fetches.waiting();
            waiting.running = waiting.running.saturating_sub(1);
            waiting.queue.clear();
        }
    }
}
