//! The group-commit primitive: items wait in one queue, and whichever caller gets a turn
//! commits every item waiting at that moment as one shared future.
//!
//! No background task (the store runs on any executor): the first caller to find a turn
//! free takes every item waiting at that moment and makes their commit one shared future,
//! which it hands to every waiter of the batch; callers that arrive during a commit queue
//! up, and the next caller with a turn commits them together, so a batch grows with the
//! load and is one item when there is none. The commit belongs to the batch, not to the
//! caller that started it: every waiter drives the same future, and the turn is released
//! by the commit itself when it ends, so a caller going away (its client gone, a timeout)
//! changes nothing for the others in its batch, who are answered with their real outcome.
//!
//! **Lanes.** A backend whose transactions can run side by side (PostgreSQL) gets more
//! than one turn (`Backend::commit_lanes`): while one group waits on its round trips,
//! another runs. An item says whether it may share the database with other groups
//! ([`Shareable`]); one that may not is only ever taken by the first lane, whose group
//! then waits for every other lane to be idle and holds them all while it runs, so it runs
//! alone in this process. Only the first lane's group ever waits for other lanes, so no
//! two groups wait on each other; and while it waits no new group starts on another lane
//! ([`Closing`]), so it waits for the groups already running and no longer (the lanes'
//! locks are not fair: a stream of new groups could otherwise keep them from it). What
//! makes an item shareable is the store's rule (`store/batch.rs`).

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use futures_channel::oneshot;
use futures_util::future::{select, BoxFuture, Either, FutureExt as _, Shared};
use futures_util::lock::Mutex as AsyncMutex;

use crate::{Result, StoreError};

/// Whether an item may be committed beside other groups of the same process.
pub(super) trait Shareable {
    /// `false`: only the first lane takes it, and its group runs alone.
    fn shareable(&self) -> bool;
}

/// Items waiting for the next group commit, and the turns to commit them.
pub(super) struct GroupCommit<I, O> {
    waiting: Mutex<Vec<(I, oneshot::Sender<Ticket<O>>)>>,
    /// One per lane, each held by a running commit (owned by its shared future, not by a
    /// caller). Lane 0 takes every item; the others take shareable items only.
    turns: Vec<Arc<AsyncMutex<()>>>,
    /// How many of the lanes new groups may take (the rest finish what they run).
    in_use: std::sync::atomic::AtomicUsize,
    /// Groups that hold the first lane and wait for the others to run alone: while there
    /// is one, no new group starts on another lane (see [`Closing`]).
    closing: Arc<std::sync::atomic::AtomicUsize>,
}

impl<I, O> Default for GroupCommit<I, O> {
    fn default() -> Self {
        Self::with_lanes(1)
    }
}

/// The turns a running commit holds (released when dropped): its own, and (for a group
/// that must run alone) every other lane's.
type Turns = Vec<futures_util::lock::OwnedMutexGuard<()>>;

impl<I, O> GroupCommit<I, O> {
    /// A group commit with `lanes` turns (at least one).
    pub(super) fn with_lanes(lanes: usize) -> Self {
        Self {
            waiting: Mutex::new(Vec::new()),
            turns: (0..lanes.max(1))
                .map(|_| Arc::new(AsyncMutex::new(())))
                .collect(),
            in_use: std::sync::atomic::AtomicUsize::new(lanes.max(1)),
            closing: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }
    }

    /// Lets new groups take `lanes` lanes (at least one, at most as many as there are).
    pub(super) fn use_lanes(&self, lanes: usize) {
        self.in_use.store(
            lanes.clamp(1, self.turns.len()),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// How many lanes new groups may take.
    pub(super) fn lanes_in_use(&self) -> usize {
        self.in_use.load(std::sync::atomic::Ordering::Relaxed)
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

impl<I: Shareable, O: Send + 'static> GroupCommit<I, O> {
    /// Queues `item` and returns its own outcome once a commit covering it has run.
    /// Whichever caller gets a turn calls `commit` with the items queued at that moment
    /// (every one on the first lane; the shareable ones on the others); a group holding an
    /// item that is not shareable runs its commit only once it also holds every other
    /// lane. `commit` returns one outcome per item, in order. A caller
    /// answered by another's commit never waits for a turn, so it never queues behind newer
    /// callers; and a commit runs to its end while any caller of its batch still waits,
    /// whoever started it.
    pub(super) async fn submit<F, C>(&self, item: I, commit: C) -> Result<O>
    where
        C: FnOnce(Vec<I>) -> F,
        F: Future<Output = Vec<Result<O>>> + Send + 'static,
        I: Send + 'static,
    {
        let (done, mut ticket) = oneshot::channel();
        // An item that must run alone waits for the first lane only.
        let mut lanes = if item.shareable() {
            self.lanes_in_use()
        } else {
            1
        };
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((item, done));
        let ticket = loop {
            if self.is_closing() {
                lanes = 1;
            }
            let turn =
                futures_util::future::select_all(self.turns.iter().take(lanes).enumerate().map(
                    |(lane, turn)| {
                        Arc::clone(turn)
                            .lock_owned()
                            .map(move |g| (lane, g))
                            .boxed()
                    },
                ))
                .map(|(won, _, _)| won);
            let (lane, turn) = match select(ticket, turn).await {
                Either::Left((ticket, _)) => break ticket,
                Either::Right((won, waiting)) => {
                    ticket = waiting;
                    won
                }
            };
            if lane != 0 && self.is_closing() {
                // A group waits to run alone: leave it this lane, and wait for the first.
                drop(turn);
                continue;
            }
            let batch = self.take_batch(lane == 0);
            let alone = batch.iter().any(|(item, _)| !item.shareable());
            if batch.is_empty() {
                // Our item went with an earlier commit; its ticket is on the way.
                drop(turn);
            } else {
                let (items, waiters): (Vec<I>, Vec<_>) = batch.into_iter().unzip();
                let work = commit(items);
                // Closed to new groups on the other lanes until it holds them all.
                let others = alone.then(|| (self.lanes_after_first(), self.close()));
                let shared: SharedCommit<O> = async move {
                    // A group that must run alone waits for the other lanes first.
                    let turns = match others {
                        Some((others, closing)) => {
                            let turns = others.hold(turn).await;
                            drop(closing);
                            turns
                        }
                        None => vec![turn],
                    };
                    let outcomes = work.await;
                    // The next batch (of these lanes) may start only once this one is over.
                    drop(turns);
                    Arc::new(Mutex::new(outcomes.into_iter().map(Some).collect()))
                }
                .boxed()
                .shared();
                for (index, waiter) in waiters.into_iter().enumerate() {
                    let commit = shared.clone();
                    let _ = waiter.send(Ticket { commit, index });
                }
            }
            break ticket.await;
        };
        match ticket {
            Ok(ticket) => ticket.outcome().await,
            Err(canceled) => answered(Err(canceled)),
        }
    }
}

impl<I: Shareable, O> GroupCommit<I, O> {
    /// The items to commit now: all of them on the first lane, the shareable ones on the
    /// others (the rest wait for the first lane).
    fn take_batch(&self, first_lane: bool) -> Vec<(I, oneshot::Sender<Ticket<O>>)> {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if first_lane {
            return std::mem::take(&mut *waiting);
        }
        let (shareable, alone): (Vec<_>, Vec<_>) = std::mem::take(&mut *waiting)
            .into_iter()
            .partition(|(item, _)| item.shareable());
        *waiting = alone;
        shareable
    }

    /// The lanes a group that runs alone must wait for (all but the first), as a handle
    /// its commit can own.
    fn lanes_after_first(&self) -> OtherLanes {
        OtherLanes(self.turns.iter().skip(1).map(Arc::clone).collect())
    }
    /// Whether a group waits to run alone (no new group may start on another lane).
    fn is_closing(&self) -> bool {
        self.closing.load(std::sync::atomic::Ordering::Acquire) > 0
    }

    /// Closes the lanes after the first to new groups until the handle is dropped.
    fn close(&self) -> Closing {
        self.closing
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Closing(Arc::clone(&self.closing))
    }
}

/// While alive, a group holding the first lane waits for the others so as to run alone: a
/// caller that wins another lane leaves it (and waits for the first), and new callers wait
/// for the first lane only. Without it a stream of shareable groups kept taking the other
/// lanes from the waiting group (the lock is not fair), and everything queued behind the
/// lone group waited with it: up to seconds under load, whenever the lease sweeper ran.
/// Dropped once the group holds every lane (or when the group itself is dropped).
struct Closing(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Closing {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Every lane but the first.
struct OtherLanes(Vec<Arc<AsyncMutex<()>>>);

impl OtherLanes {
    /// Waits until each is idle and holds it, with the first lane's `turn`. Only the first
    /// lane's group ever waits for other lanes, so no two groups wait on each other.
    async fn hold(self, first: futures_util::lock::OwnedMutexGuard<()>) -> Turns {
        let mut held = vec![first];
        for turn in self.0 {
            held.push(turn.lock_owned().await);
        }
        held
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

#[cfg(test)]
mod tests;
