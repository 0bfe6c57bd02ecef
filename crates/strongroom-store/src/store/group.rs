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
//! two groups wait on each other. What makes an item shareable is the store's rule
//! (`store/batch.rs`).

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
        let (done, ticket) = oneshot::channel();
        // An item that must run alone waits for the first lane only.
        let lanes = if item.shareable() {
            self.lanes_in_use()
        } else {
            1
        };
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((item, done));
        let turn = futures_util::future::select_all(self.turns.iter().take(lanes).enumerate().map(
            |(lane, turn)| {
                Arc::clone(turn)
                    .lock_owned()
                    .map(move |g| (lane, g))
                    .boxed()
            },
        ))
        .map(|(won, _, _)| won);
        let ticket = match select(ticket, turn).await {
            Either::Left((ticket, _)) => ticket,
            Either::Right(((lane, turn), ticket)) => {
                let batch = self.take_batch(lane == 0);
                let alone = batch.iter().any(|(item, _)| !item.shareable());
                if batch.is_empty() {
                    // Our item went with an earlier commit; its ticket is on the way.
                    drop(turn);
                } else {
                    let (items, waiters): (Vec<I>, Vec<_>) = batch.into_iter().unzip();
                    let work = commit(items);
                    let others = alone.then(|| self.lanes_after_first());
                    let shared: SharedCommit<O> = async move {
                        // A group that must run alone waits for the other lanes first.
                        let turns = match others {
                            Some(others) => others.hold(turn).await,
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
                ticket.await
            }
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
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;
    use std::time::Duration;

    use futures_channel::oneshot;
    use futures_util::StreamExt as _;

    use super::{GroupCommit, Shareable};
    use crate::Result;

    impl Shareable for u32 {
        fn shareable(&self) -> bool {
            true
        }
    }

    /// A test item: its name, and whether it may share the database with other groups.
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Item(&'static str, bool);

    impl Shareable for Item {
        fn shareable(&self) -> bool {
            self.1
        }
    }

    /// What the commits of a test saw: which groups ran, and how many at once.
    #[derive(Default)]
    struct Seen {
        running: std::sync::atomic::AtomicUsize,
        started: std::sync::Mutex<Vec<(Vec<&'static str>, usize)>>,
        finished: std::sync::Mutex<Vec<&'static str>>,
    }

    /// Submits `item` on `group` in a task; its commit (if it gets the turn) records what
    /// it saw in `seen` and waits for `gate` (when given) before it ends.
    fn submit(
        group: &Arc<GroupCommit<Item, &'static str>>,
        seen: &Arc<Seen>,
        item: Item,
        gate: Option<oneshot::Receiver<()>>,
    ) -> tokio::task::JoinHandle<Result<&'static str>> {
        let (group, seen) = (Arc::clone(group), Arc::clone(seen));
        tokio::spawn(async move {
            group
                .submit(item, move |items| {
                    let names: Vec<&'static str> = items.iter().map(|i| i.0).collect();
                    async move {
                        use std::sync::atomic::Ordering::SeqCst;
                        let now = seen.running.fetch_add(1, SeqCst) + 1;
                        seen.started.lock().unwrap().push((names.clone(), now));
                        if let Some(gate) = gate {
                            let _ = gate.await;
                        }
                        seen.running.fetch_sub(1, SeqCst);
                        seen.finished.lock().unwrap().extend(&names);
                        names.into_iter().map(Ok).collect::<Vec<Result<&str>>>()
                    }
                })
                .await
        })
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    fn started(seen: &Seen) -> Vec<(Vec<&'static str>, usize)> {
        seen.started.lock().unwrap().clone()
    }

    /// With two lanes of which one is in use (another process shares the chain), a second
    /// group waits for the first instead of running beside it.
    #[tokio::test]
    async fn a_lane_out_of_use_takes_no_new_group() {
        let group = Arc::new(GroupCommit::with_lanes(2));
        group.use_lanes(1);
        assert_eq!(group.lanes_in_use(), 1);
        let seen = Arc::new(Seen::default());
        let (open_first, first_gate) = oneshot::channel();
        let first = submit(&group, &seen, Item("first", true), Some(first_gate));
        settle().await;
        let second = submit(&group, &seen, Item("second", true), None);
        settle().await;
        assert_eq!(
            started(&seen).len(),
            1,
            "the second group waits for the lane"
        );
        open_first.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), "first");
        assert_eq!(second.await.unwrap().unwrap(), "second");
        assert_eq!(
            started(&seen),
            vec![(vec!["first"], 1), (vec!["second"], 1)]
        );
        group.use_lanes(9);
        assert_eq!(group.lanes_in_use(), 2, "never more lanes than there are");
    }

    /// With two lanes, a second group commits while the first still runs.
    #[tokio::test]
    async fn two_lanes_commit_two_groups_at_once() {
        let group = Arc::new(GroupCommit::with_lanes(2));
        let seen = Arc::new(Seen::default());
        let (open_first, first_gate) = oneshot::channel();
        let first = submit(&group, &seen, Item("first", true), Some(first_gate));
        settle().await;
        let second = submit(&group, &seen, Item("second", true), None);
        assert_eq!(second.await.unwrap().unwrap(), "second");
        assert_eq!(
            started(&seen),
            vec![(vec!["first"], 1), (vec!["second"], 2)],
            "the second group ran beside the first"
        );
        open_first.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), "first");
    }

    /// Attack: work that must run alone (it may lock any row) never runs beside another
    /// group: it waits until every lane is idle, and no group starts beside it until it
    /// ends. Meanwhile a shareable item that arrives later is not held behind it.
    #[tokio::test]
    async fn a_group_that_must_run_alone_never_runs_beside_another() {
        let group = Arc::new(GroupCommit::with_lanes(2));
        let seen = Arc::new(Seen::default());
        let (open_a, gate_a) = oneshot::channel();
        let (open_b, gate_b) = oneshot::channel();
        let (open_x, gate_x) = oneshot::channel();
        let a = submit(&group, &seen, Item("a", true), Some(gate_a));
        settle().await;
        let b = submit(&group, &seen, Item("b", true), Some(gate_b));
        settle().await;
        let x = submit(&group, &seen, Item("x", false), Some(gate_x));
        settle().await;
        assert_eq!(started(&seen).len(), 2, "x waits while both lanes are busy");
        // The first lane frees: x takes it, and still waits for the other lane.
        open_a.send(()).unwrap();
        assert_eq!(a.await.unwrap().unwrap(), "a");
        settle().await;
        assert_eq!(started(&seen).len(), 2, "x waits for the second lane too");
        // A shareable item arriving now finds the second lane busy (b) and queues; once b
        // ends, x holds both lanes and runs alone, and c runs after it.
        let c = submit(&group, &seen, Item("c", true), None);
        settle().await;
        open_b.send(()).unwrap();
        assert_eq!(b.await.unwrap().unwrap(), "b");
        settle().await;
        assert!(
            started(&seen).iter().any(|(names, _)| names.contains(&"x")),
            "x ran once b ended"
        );
        open_x.send(()).unwrap();
        assert_eq!(x.await.unwrap().unwrap(), "x");
        assert_eq!(c.await.unwrap().unwrap(), "c");
        // x started with nothing beside it, and nothing started beside it.
        let all = started(&seen);
        let from_x = all
            .iter()
            .position(|(names, _)| names.contains(&"x"))
            .unwrap();
        for (names, at_once) in &all[from_x..] {
            assert_eq!(*at_once, 1, "{names:?} ran beside another group: {all:?}");
        }
    }

    /// A shareable item is not held behind one that must run alone: while the first lane
    /// is busy and the lone item waits for it, a shareable item commits on the second lane
    /// without taking the lone one with it.
    #[tokio::test]
    async fn a_shareable_item_passes_one_that_waits_to_run_alone() {
        let group = Arc::new(GroupCommit::with_lanes(2));
        let seen = Arc::new(Seen::default());
        let (open_a, gate_a) = oneshot::channel();
        let a = submit(&group, &seen, Item("a", true), Some(gate_a));
        settle().await;
        let x = submit(&group, &seen, Item("x", false), None);
        settle().await;
        let s = submit(&group, &seen, Item("s", true), None);
        assert_eq!(s.await.unwrap().unwrap(), "s");
        assert_eq!(
            started(&seen),
            vec![(vec!["a"], 1), (vec!["s"], 2)],
            "s committed alone on the second lane; x still waits"
        );
        open_a.send(()).unwrap();
        assert_eq!(a.await.unwrap().unwrap(), "a");
        assert_eq!(x.await.unwrap().unwrap(), "x");
        assert_eq!(started(&seen).last(), Some(&(vec!["x"], 1)));
    }

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
