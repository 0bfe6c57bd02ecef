//! The group commit's queue, turns and lanes, on a real runtime.

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

/// Attack (found under load): work that must run alone (a lease sweep, a token's
/// creation) holds the first lane while it waits for the others. A stream of shareable
/// groups must not keep taking the other lanes from it meanwhile: everything queued
/// behind the lone group waits with it (up to seconds under the load tool's mixed load,
/// whenever the lease sweeper ran). Counted, not timed: how many groups start between
/// the lone group's making and its own start (at most one that had already won its lane
/// when the lone group was made).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_shareable_groups_does_not_starve_one_that_must_run_alone() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    let group: Arc<GroupCommit<Item, &'static str>> = Arc::new(GroupCommit::with_lanes(2));
    // Groups made so far; the lone group's number when made, and the count when it began.
    let made = Arc::new(AtomicUsize::new(0));
    let lone = Arc::new((AtomicUsize::new(usize::MAX), AtomicUsize::new(usize::MAX)));
    let stop = Arc::new(AtomicBool::new(false));
    let commit = |made: Arc<AtomicUsize>, lone: Arc<(AtomicUsize, AtomicUsize)>| {
        move |items: Vec<Item>| {
            let n = made.fetch_add(1, SeqCst);
            let alone = items.iter().any(|i| !i.1);
            if alone {
                lone.0.store(n, SeqCst);
            }
            async move {
                if alone {
                    lone.1.store(made.load(SeqCst), SeqCst);
                }
                for _ in 0..20 {
                    tokio::task::yield_now().await;
                }
                items.iter().map(|i| Ok(i.0)).collect::<Vec<Result<&str>>>()
            }
        }
    };
    let hogs: Vec<_> = (0..64)
        .map(|_| {
            let (group, made, lone, stop) = (
                Arc::clone(&group),
                Arc::clone(&made),
                Arc::clone(&lone),
                Arc::clone(&stop),
            );
            tokio::spawn(async move {
                for _ in 0..20_000 {
                    if stop.load(SeqCst) {
                        break;
                    }
                    let commit = commit(Arc::clone(&made), Arc::clone(&lone));
                    group.submit(Item("s", true), commit).await.unwrap();
                }
            })
        })
        .collect();
    for _ in 0..5 {
        while made.load(SeqCst) < 200 {
            tokio::task::yield_now().await;
        }
        let commit = commit(Arc::clone(&made), Arc::clone(&lone));
        assert_eq!(group.submit(Item("x", false), commit).await.unwrap(), "x");
        let (made_as, began_at) = (lone.0.load(SeqCst), lone.1.load(SeqCst));
        assert!(
            began_at - made_as - 1 <= 1,
            "{} groups were made while the lone group waited to run",
            began_at - made_as - 1
        );
        made.store(0, SeqCst);
    }
    stop.store(true, SeqCst);
    for hog in hogs {
        hog.await.unwrap();
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
