//! Group commit: concurrent reads and writes share commits without losing an event,
//! a write, or a write's own failure.

use super::*;

/// A check-and-set write of `key` in `prod` at version 99, which it is not at: refused
/// with a conflict, writing nothing.
async fn write_at_wrong_version(store: &Store, key: &str, i: usize) -> crate::Result<()> {
    store
        .set(
            &id("prod", key),
            SetRequest {
                expected_version: Some(99),
                ..SetRequest::value(format!("never-{i}"))
            },
        )
        .await
        .map(drop)
}

/// Concurrent reads share group commits: each read still has exactly one durable event
/// under its own actor, written before its value is handed out, the chain verifies, and
/// fewer transactions than reads were needed.
pub async fn concurrent_reads_are_group_committed(h: &dyn Harness) {
    let store = open(h).await;
    set(&store, "prod", "GROUPED", "grouped-value").await;
    let before = store.stats();
    let reads = (0..64).map(|i| {
        let reader = store.with_actor(&format!("reader-{i}"));
        async move {
            let secret = reader
                .get(&id("prod", "GROUPED"))
                .await
                .unwrap()
                .commit()
                .await
                .unwrap();
            // Handed out only now: its event is already durable.
            assert_eq!(secret.value.expose_secret(), b"grouped-value");
        }
    });
    futures_util::future::join_all(reads).await;
    let events = store
        .audit_all(AuditQuery {
            key: Some("GROUPED".into()),
            action: Some(Action::Read),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let mut actors: Vec<String> = events.into_iter().map(|e| e.actor).collect();
    actors.sort();
    let mut expected: Vec<String> = (0..64).map(|i| format!("reader-{i}")).collect();
    expected.sort();
    assert_eq!(actors, expected, "one event per read, under its own actor");
    let after = store.stats();
    let commits = after.read_event_commits - before.read_event_commits;
    let grouped = after.read_events - before.read_events;
    assert_eq!(grouped, 64);
    assert!(commits < 64, "64 concurrent reads took {commits} commits");
    assert!(store.verify_audit().await.unwrap().broken_at.is_none());
}

/// Concurrent writes share group commits, each in a savepoint of its own: a write that
/// fails (here a check-and-set at a wrong version) undoes only itself, every other write
/// in the same transaction is stored with its event, and the chain verifies.
pub async fn concurrent_writes_are_group_committed_and_fail_alone(h: &dyn Harness) {
    let store = open(h).await;
    set(&store, "prod", "CAS_TARGET", "first").await;
    let before = store.stats();
    let writes = (0..32).map(|i| {
        let writer = store.with_actor(&format!("writer-{i}"));
        async move {
            if i % 4 == 0 {
                write_at_wrong_version(&writer, "CAS_TARGET", i).await
            } else {
                writer
                    .set(
                        &id("prod", &format!("GROUPED_{i}")),
                        SetRequest::value(format!("value-{i}")),
                    )
                    .await
                    .map(drop)
            }
        }
    });
    let outcomes = futures_util::future::join_all(writes).await;
    for (i, outcome) in outcomes.into_iter().enumerate() {
        if i % 4 == 0 {
            assert!(
                matches!(outcome, Err(StoreError::Conflict { .. })),
                "write {i}: {outcome:?}"
            );
        } else {
            outcome.unwrap();
            let stored = store
                .get(&id("prod", &format!("GROUPED_{i}")))
                .await
                .unwrap()
                .commit()
                .await
                .unwrap();
            assert_eq!(
                stored.value.expose_secret(),
                format!("value-{i}").as_bytes()
            );
        }
    }
    let target = store
        .get(&id("prod", "CAS_TARGET"))
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    assert_eq!(target.value.expose_secret(), b"first");
    assert_eq!(target.version, 1, "the refused writes left nothing behind");
    let creates = store
        .audit_all(AuditQuery {
            action: Some(Action::Create),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    for i in (0..32).filter(|i| i % 4 != 0) {
        let key = format!("GROUPED_{i}");
        let actor = format!("writer-{i}");
        assert_eq!(
            creates
                .iter()
                .filter(|e| e.key == key && e.actor == actor)
                .count(),
            1,
            "{key}: one create event under its writer"
        );
    }
    let after = store.stats();
    assert!(after.writes - before.writes >= 32);
    assert!(
        after.write_commits - before.write_commits < after.writes - before.writes,
        "32 concurrent writes took as many commits"
    );
    assert!(store.verify_audit().await.unwrap().broken_at.is_none());
}

/// Reads and writes waiting at the same time share commits: each read's event is durable
/// before its value is handed out, a write that fails (a check-and-set at a wrong version)
/// undoes only itself and never the reads' events or the other writes beside it, and the
/// chain verifies.
pub async fn reads_and_writes_share_commits_and_fail_alone(h: &dyn Harness) {
    let store = open(h).await;
    set(&store, "prod", "SHARED", "shared-value").await;
    let before = store.stats();
    let requests = (0..48).map(|i| {
        let caller = store.with_actor(&format!("caller-{i}"));
        async move {
            match i % 3 {
                0 => {
                    let secret = caller
                        .get(&id("prod", "SHARED"))
                        .await
                        .unwrap()
                        .commit()
                        .await
                        .unwrap();
                    assert_eq!(secret.value.expose_secret(), b"shared-value");
                    Ok(())
                }
                1 => caller
                    .set(
                        &id("prod", &format!("MIXED_{i}")),
                        SetRequest::value(format!("value-{i}")),
                    )
                    .await
                    .map(drop),
                _ => write_at_wrong_version(&caller, "SHARED", i).await,
            }
        }
    });
    let outcomes = futures_util::future::join_all(requests).await;
    for (i, outcome) in outcomes.into_iter().enumerate() {
        if i % 3 == 2 {
            assert!(
                matches!(outcome, Err(StoreError::Conflict { .. })),
                "request {i}: {outcome:?}"
            );
        } else {
            outcome.unwrap();
        }
    }
    let events = store.audit_all(AuditQuery::default()).await.unwrap();
    for i in 0..48 {
        let actor = format!("caller-{i}");
        let mine: Vec<_> = events.iter().filter(|e| e.actor == actor).collect();
        match i % 3 {
            0 => assert!(
                mine.len() == 1 && mine[0].action == Action::Read && mine[0].key == "SHARED",
                "{actor}: one read event, got {mine:?}"
            ),
            1 => assert!(
                mine.len() == 1
                    && mine[0].action == Action::Create
                    && mine[0].key == format!("MIXED_{i}"),
                "{actor}: one create event, got {mine:?}"
            ),
            _ => assert!(mine.is_empty(), "{actor}: a refused write left {mine:?}"),
        }
    }
    let shared = store
        .get(&id("prod", "SHARED"))
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    assert_eq!(shared.version, 1, "the refused writes left nothing behind");
    let after = store.stats();
    let commits = after.group_commits - before.group_commits;
    assert!(
        commits < 48,
        "48 concurrent requests took {commits} commits"
    );
    assert!(store.verify_audit().await.unwrap().broken_at.is_none());
}

/// One secret written by many writers at once while it keeps two versions: its writes
/// share group commits, a later write of a group trims an earlier one's version before
/// the group's events are appended (on a backend that appends at the end), a failing
/// write among them takes back only its own event, and every kept version is tied to
/// its own event: the chain and the ties verify, and each acknowledged write has one
/// event whose version is the one it wrote.
pub async fn one_secret_written_many_times_at_once_keeps_every_tie(h: &dyn Harness) {
    let store = open(h).await;
    set(&store, "prod", "HOT", "v0").await;
    store
        .set_settings(
            &id("prod", "HOT"),
            crate::SecretSettings {
                max_versions: Some(2),
                cas_required: false,
            },
        )
        .await
        .unwrap();
    let writes = (0..40).map(|i| {
        let writer = store.with_actor(&format!("hot-{i}"));
        async move {
            if i % 5 == 0 {
                write_at_wrong_version(&writer, "HOT", i).await.map(|()| 0)
            } else {
                writer
                    .set(&id("prod", "HOT"), SetRequest::value(format!("v{i}")))
                    .await
                    .map(|outcome| outcome.version)
            }
        }
    });
    let outcomes = futures_util::future::join_all(writes).await;
    let mut written = Vec::new();
    for (i, outcome) in outcomes.into_iter().enumerate() {
        if i % 5 == 0 {
            assert!(
                matches!(outcome, Err(StoreError::Conflict { .. })),
                "write {i}: {outcome:?}"
            );
        } else {
            written.push((format!("hot-{i}"), outcome.unwrap()));
        }
    }
    let updates = store
        .audit_all(AuditQuery {
            key: Some("HOT".into()),
            action: Some(Action::Update),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        updates.len(),
        written.len(),
        "one event per acknowledged write"
    );
    for (actor, version) in &written {
        assert!(
            updates
                .iter()
                .any(|e| &e.actor == actor && e.version == Some(*version)),
            "{actor}'s write of version {version} has no event"
        );
    }
    let history = store.history(&id("prod", "HOT")).await.unwrap();
    assert_eq!(history.len(), 2, "two versions kept");
    assert_eq!(history[0].version, 33, "32 writes after the first");
    let report = store.verify_audit().await.unwrap();
    assert!(report.broken_at.is_none(), "{report:?}");
    assert!(
        report.versions >= 2,
        "the kept versions' ties were checked: {report:?}"
    );
}

/// A backend's savepoints keep or undo exactly what their write did, whatever it sent or
/// held back: a savepoint whose write ran no statement, one whose only statement (a
/// history trim, which a backend may hold back to send with the next statement) is undone,
/// one whose trim is kept, and a trim undone after a kept one. Only the kept trim is
/// stored once the transaction commits.
pub async fn savepoints_keep_or_undo_exactly_their_own_statements(h: &dyn Harness) {
    let store = open(h).await;
    for value in ["v1", "v2", "v3", "v4"] {
        set(&store, "prod", "TRIMMED", value).await;
    }
    let backend = h.backend().await;
    let target = id("prod", "TRIMMED");
    let supported = Arc::new(std::sync::Mutex::new(true));
    let seen = Arc::clone(&supported);
    backend
        .transaction(Box::new(move |tx| {
            Box::pin(async move {
                let row = tx.lock_secret(&target).await?.expect("the secret exists");
                if !tx.savepoint().await? {
                    *seen.lock().unwrap() = false;
                    return Ok(());
                }
                // No statement at all, undone; then kept.
                tx.savepoint_end(false).await?;
                tx.savepoint().await?;
                tx.savepoint_end(true).await?;
                // A trim alone, undone.
                tx.savepoint().await?;
                tx.trim_versions(&row, 2).await?;
                tx.savepoint_end(false).await?;
                // A trim alone, kept.
                tx.savepoint().await?;
                tx.trim_versions(&row, 1).await?;
                tx.savepoint_end(true).await?;
                // A deeper trim, undone after the kept one.
                tx.savepoint().await?;
                tx.trim_versions(&row, 3).await?;
                tx.savepoint_end(false).await
            })
        }))
        .await
        .unwrap();
    if !*supported.lock().unwrap() {
        return;
    }
    let history = backend
        .history(&id("prod", "TRIMMED"))
        .await
        .unwrap()
        .unwrap();
    let kept: Vec<u32> = history.versions.iter().map(|v| v.version).collect();
    assert_eq!(
        kept,
        vec![4, 3, 2],
        "only the kept trim (version 1) is stored"
    );
}

/// Attack: many writers at once on a few secrets, in every order, beside settings changes
/// and version deletions (work that may lock any row). Where a backend runs several group
/// commits at once (PostgreSQL's lanes), two groups writing the same secrets in opposite
/// orders would deadlock and fail every write of one group; groups take secret rows in
/// one order and the other work runs alone, so every write lands, each with its event,
/// and the chain verifies.
pub async fn concurrent_groups_never_deadlock_on_secret_rows(h: &dyn Harness) {
    let store = open(h).await;
    let keys = ["ROW_A", "ROW_B", "ROW_C"];
    for key in keys {
        set(&store, "prod", key, "v0").await;
    }
    // Sixteen writers at once, each writing one key after another: half walk the keys one
    // way, half the other, so groups formed from them hold keys in both orders.
    let writers = (0..16usize).map(|w| {
        let store = store.with_actor(&format!("w-{w}"));
        async move {
            let mut failures = Vec::new();
            for round in 0..60usize {
                let at = (w + round) % keys.len();
                let key = if w % 2 == 0 {
                    keys[at]
                } else {
                    keys[keys.len() - 1 - at]
                };
                let outcome = if round % 10 == 9 {
                    store
                        .set_settings(
                            &id("prod", key),
                            crate::SecretSettings {
                                max_versions: Some(50),
                                cas_required: false,
                            },
                        )
                        .await
                } else {
                    store
                        .set(
                            &id("prod", key),
                            SetRequest::value(format!("v-{w}-{round}")),
                        )
                        .await
                        .map(drop)
                };
                if let Err(e) = outcome {
                    failures.push(format!("writer {w}, round {round}: {e}"));
                }
            }
            failures
        }
    });
    let failures: Vec<String> = futures_util::future::join_all(writers)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    let report = store.verify_audit().await.unwrap();
    assert!(report.broken_at.is_none(), "{report:?}");
    let updates = store
        .audit_all(AuditQuery {
            action: Some(Action::Update),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(updates.len(), 16 * 54, "one event per write");
}

/// Attack on a backend that remembers, within a transaction, which key it recorded (so a
/// group's writes check the writing key once): the record made inside a write that was
/// then undone is undone with it. A later write of the same transaction must record the
/// key again, or the key version stays unrecorded and another key could claim it.
pub async fn a_key_recorded_in_an_undone_write_is_recorded_again(h: &dyn Harness) {
    let backend = h.backend().await;
    let supported = Arc::new(std::sync::Mutex::new(true));
    let seen = Arc::clone(&supported);
    backend
        .transaction(Box::new(move |tx| {
            Box::pin(async move {
                if !tx.savepoint().await? {
                    *seen.lock().unwrap() = false;
                    return Ok(());
                }
                let first = tx.record_key(4242, "fp-first", crate::Timestamp(1)).await?;
                assert_eq!(first, "fp-first");
                tx.savepoint_end(false).await?;
                tx.savepoint().await?;
                let again = tx.record_key(4242, "fp-first", crate::Timestamp(2)).await?;
                assert_eq!(again, "fp-first");
                tx.savepoint_end(true).await
            })
        }))
        .await
        .unwrap();
    if !*supported.lock().unwrap() {
        return;
    }
    let other = Arc::new(std::sync::Mutex::new(String::new()));
    let answer = Arc::clone(&other);
    backend
        .transaction(Box::new(move |tx| {
            Box::pin(async move {
                let recorded = tx.record_key(4242, "fp-other", crate::Timestamp(3)).await?;
                *answer.lock().unwrap() = recorded;
                Ok(())
            })
        }))
        .await
        .unwrap();
    assert_eq!(
        *other.lock().unwrap(),
        "fp-first",
        "the kept write's record of the key is stored; another key can not claim its version"
    );
}
