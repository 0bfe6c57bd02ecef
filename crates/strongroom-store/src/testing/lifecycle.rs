//! Errors, limits, keys, rotation, expiry.

use super::*;

pub async fn distinct_read_errors(h: &dyn Harness) {
    let store = open(h).await;
    assert!(matches!(
        store.get(&id("global", "NONE")).await,
        Err(StoreError::NotFound(_))
    ));
    store
        .set(
            &id("global", "EXP"),
            SetRequest {
                expiry: Expiry::At(1_000),
                ..SetRequest::value("v")
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        store.get(&id("global", "EXP")).await,
        Err(StoreError::Expired { .. })
    ));
    // Expired is reported, not hidden by fallback.
    assert!(matches!(
        store.get(&id("prod", "EXP")).await,
        Err(StoreError::Expired { .. })
    ));

    // Integrity: altered bytes, and a ciphertext moved to another row.
    set(&store, "global", "A", "value-a").await;
    set(&store, "global", "B", "value-b").await;
    let mut bytes = h.stored_value(&id("global", "A")).await;
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    h.overwrite_value(&id("global", "A"), bytes).await;
    assert!(matches!(
        store.get(&id("global", "A")).await,
        Err(StoreError::Integrity(_))
    ));
    let moved = h.stored_value(&id("global", "B")).await;
    h.overwrite_value(&id("global", "A"), moved).await;
    assert!(matches!(
        store.get(&id("global", "A")).await,
        Err(StoreError::Integrity(_))
    ));

    // Key version unavailable: another process wrote under KEK 2, which this one lacks.
    let newer = open_with(h, &[(2, 0x22), (1, 0x11)], StoreConfig::default())
        .await
        .unwrap();
    set(&newer, "global", "NEW", "v").await;
    assert!(matches!(
        store.get(&id("global", "NEW")).await,
        Err(StoreError::KeyVersionUnavailable { version: 2, .. })
    ));
}

pub async fn limits_reject_and_write_nothing(h: &dyn Harness) {
    let mut config = StoreConfig::default();
    config.limits.max_value_size = 16;
    config.limits.max_key_len = 8;
    let store = open_with(h, &[(1, 0x11)], config).await.unwrap();
    let bad_ids = [
        SecretId::new("default", "global", "TOOLONGKEY"),
        SecretId::new("default", "global", "BAD KEY"),
        SecretId::new("default", "global", ""),
        SecretId::new("default", "Prod", "K"),
        SecretId::new("Default", "global", "K"),
        SecretId::new("default", "global", "K\u{e9}"),
    ];
    for bad in &bad_ids {
        assert!(
            matches!(
                store.set(bad, SetRequest::value("v")).await,
                Err(StoreError::InvalidName { .. })
            ),
            "{bad}"
        );
    }
    let too_big = store
        .set(&id("global", "K"), SetRequest::value(vec![b'x'; 17]))
        .await;
    assert!(matches!(
        too_big,
        Err(StoreError::ValueTooLarge { size: 17, max: 16 })
    ));
    // One rule for empty values, whatever the surface: refused.
    let empty = store
        .set(&id("global", "K"), SetRequest::value(Vec::new()))
        .await;
    assert!(
        matches!(empty, Err(StoreError::InvalidInput(ref why)) if why.contains("empty")),
        "{empty:?}"
    );
    let many = store
        .set_many(vec![
            (id("global", "A"), SetRequest::value("a")),
            (id("global", "B"), SetRequest::value("")),
        ])
        .await;
    assert!(many.is_err(), "a batch with an empty value writes nothing");
    assert!(!store.has(&id("global", "A")).await.unwrap());
    let bad_meta = store
        .set(
            &id("global", "K"),
            SetRequest {
                metadata: Some(serde_json::json!([1])),
                ..SetRequest::value("v")
            },
        )
        .await;
    assert!(matches!(bad_meta, Err(StoreError::InvalidInput(_))));
    assert_eq!(store.list(ListQuery::default()).await.unwrap().total, 0);
    assert_eq!(audit_count(&store).await, 0);
    store
        .set(&id("global", "K"), SetRequest::value(vec![b'x'; 16]))
        .await
        .unwrap();
}

pub async fn wrong_key_is_caught_at_open_and_at_write(h: &dyn Harness) {
    // Two handles opened on an empty database, with different keys under version 1.
    let right = open(h).await;
    let wrong = open_with(h, &[(1, 0x99)], StoreConfig::default())
        .await
        .unwrap();
    set(&right, "global", "K", "v").await;
    // The wrong key can never write once the right one has.
    assert!(matches!(
        wrong.set(&id("global", "K2"), SetRequest::value("x")).await,
        Err(StoreError::WrongKey { .. })
    ));
    assert!(matches!(
        wrong.rotate(RotateOptions::default(), |_| {}).await,
        Err(StoreError::WrongKey { .. })
    ));
    // And is refused at open, naming both fingerprints.
    let err = open_with(h, &[(1, 0x99)], StoreConfig::default())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, StoreError::WrongKey { version: 1, .. }),
        "{message}"
    );
    assert!(
        message.contains(&key(0x11).fingerprint().to_string())
            && message.contains(&key(0x99).fingerprint().to_string())
    );
    // A ring lacking version 1 is refused at open.
    let err = open_with(h, &[(2, 0x22)], StoreConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::MissingKeyVersions { versions } if versions[0].0 == 1),
        "{err}"
    );
    assert_eq!(value(&right, "global", "K").await, "v");
}

pub async fn rotation_rewraps_everything(h: &dyn Harness) {
    let old = open(h).await;
    for i in 0..25 {
        set(&old, "global", &format!("K{i}"), &format!("value-{i}")).await;
    }
    set(&old, "global", "K0", "value-0b").await; // a kept version too
    let both = open_with(h, &[(2, 0x22), (1, 0x11)], StoreConfig::default())
        .await
        .unwrap();
    let mut reports = Vec::new();
    let done = both
        .rotate(
            RotateOptions {
                batch_size: 10,
                ..RotateOptions::default()
            },
            |p| reports.push(*p),
        )
        .await
        .unwrap();
    assert_eq!((done.rotated, done.skipped, done.total), (26, 0, 26));
    assert!(reports.len() >= 3, "progress reported per batch");
    let status = both.rotation_status().await.unwrap();
    assert_eq!(status.by_version, vec![usage(2, 25, 1)]);
    assert!(status.pending_cursor.is_none());
    // The old key can now be removed.
    let new_only = open_with(h, &[(2, 0x22)], StoreConfig::default())
        .await
        .unwrap();
    assert_eq!(value(&new_only, "global", "K7").await, "value-7");
    assert_eq!(
        new_only
            .get_version(&id("global", "K0"), 1)
            .await
            .unwrap()
            .commit()
            .await
            .unwrap()
            .value
            .expose_secret(),
        b"value-0"
    );
    assert!(
        new_only
            .verify(&id("global", "K3"), b"value-3")
            .await
            .unwrap(),
        "keyed hash recomputed"
    );
    let rotations = new_only
        .audit(AuditQuery {
            action: Some(Action::Rotate),
            limit: Some(1000),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(rotations.items.len(), 26);
    assert!(rotations.items.iter().all(|e| e.kek_version == Some(2)));
}

pub async fn rotation_resumes_from_its_cursor(h: &dyn Harness) {
    let old = open(h).await;
    for i in 0..10 {
        set(&old, "global", &format!("K{i}"), "v").await;
    }
    let both = open_with(h, &[(2, 0x22), (1, 0x11)], StoreConfig::default())
        .await
        .unwrap();
    let partial = both
        .rotate(
            RotateOptions {
                batch_size: 3,
                max_batches: Some(2),
                ..RotateOptions::default()
            },
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(partial.rotated, 6);
    assert!(both
        .rotation_status()
        .await
        .unwrap()
        .pending_cursor
        .is_some());
    let rest = both
        .rotate(
            RotateOptions {
                batch_size: 3,
                ..RotateOptions::default()
            },
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!((rest.total, rest.rotated), (4, 4));
    assert_eq!(
        both.rotation_status().await.unwrap().by_version,
        vec![usage(2, 10, 0)]
    );
}

pub async fn rotation_never_loses_a_concurrent_write(h: &dyn Harness) {
    let config = StoreConfig {
        history_depth: 1,
        ..StoreConfig::default()
    };
    let old = open_with(h, &[(1, 0x11)], config.clone()).await.unwrap();
    set(&old, "global", "RACE", "before").await;
    let both = open_with(h, &[(2, 0x22), (1, 0x11)], config).await.unwrap();
    // The rotation reads its candidate (on a backend a store has attached its chain to)...
    let backend = h.backend().await;
    let _attached = Store::open(
        backend.clone(),
        KeySource::Ring(h.ring(&[(2, 0x22), (1, 0x11)])),
        StoreConfig::default(),
    )
    .await
    .unwrap();
    let candidates = backend.rotation_candidates(2, None, 0, 10).await.unwrap();
    assert_eq!(candidates.len(), 1);
    // ...a writer replaces the value meanwhile (history depth 1 drops the old row)...
    set(&old, "global", "RACE", "after").await;
    // ...and the stale re-wrap is refused by compare-and-swap.
    let stale = candidates.into_iter().next().unwrap();
    let update = crate::store::RotationUpdate {
        position: stale.position,
        id: stale.id.clone(),
        version: stale.version,
        expected: stale.value.value.clone(),
        new: stale.value.clone(),
    };
    let applied = both.apply_rotation(vec![update], None).await.unwrap();
    assert_eq!(applied, 0);
    assert_eq!(value(&both, "global", "RACE").await, "after");
}

pub async fn cleanup_expired_and_old_events(h: &dyn Harness) {
    let store = open(h).await;
    store
        .set(
            &id("global", "GONE"),
            SetRequest {
                expiry: Expiry::At(1_000),
                ..SetRequest::value("v")
            },
        )
        .await
        .unwrap();
    set(&store, "global", "KEEP", "v").await;
    assert_eq!(
        store
            .cleanup_expired(Duration::from_secs(30 * 86_400))
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        store.get(&id("global", "GONE")).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(value(&store, "global", "KEEP").await, "v");
    let events = store
        .audit(AuditQuery {
            action: Some(Action::ExpiredCleanup),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(events.items.len(), 1);
    // Events within retention stay; with zero retention they all go.
    assert_eq!(
        store
            .cleanup_events(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(store.cleanup_events(Duration::ZERO).await.unwrap() >= 3);
    assert_eq!(audit_count(&store).await, 0);
}

/// One key grammar: a write (set, a batch, the target of a copy or move) of a key with an
/// empty, `.` or `..` segment is refused and writes nothing; a key an older release wrote
/// stays readable, is listed by `malformed_keys` (for `doctor`) and is renamed by a move.
pub async fn keys_with_empty_or_dot_segments_are_refused_and_old_ones_renamed(h: &dyn Harness) {
    let store = open(h).await;
    set(&store, "dev", "app/DB_URL", "ok").await;
    for bad in [".", "..", "a//b", "/a", "a/", "a/./b", "a/../b"] {
        let refused = store
            .set(&id("dev", bad), SetRequest::value("v"))
            .await
            .unwrap_err();
        assert!(
            matches!(refused, StoreError::InvalidName { .. }),
            "{bad}: {refused}"
        );
        let batch = store
            .set_many(vec![
                (id("dev", "FINE"), SetRequest::value("v")),
                (id("dev", bad), SetRequest::value("v")),
            ])
            .await;
        assert!(batch.is_err(), "{bad}");
        let copy = store
            .copy(&id("dev", "app/DB_URL"), &id("dev", bad), false)
            .await;
        assert!(copy.is_err(), "{bad}");
    }
    assert!(!store.has(&id("dev", "FINE")).await.unwrap());
    assert!(store.malformed_keys().await.unwrap().is_empty());
    store
        .set_as_older_release(&id("dev", "legacy//name"), SetRequest::value("old"))
        .await
        .unwrap();
    assert_eq!(value(&store, "dev", "legacy//name").await, "old");
    assert_eq!(
        store.malformed_keys().await.unwrap(),
        [id("dev", "legacy//name")]
    );
    store
        .move_to(&id("dev", "legacy//name"), &id("dev", "legacy/name"), false)
        .await
        .unwrap();
    assert_eq!(value(&store, "dev", "legacy/name").await, "old");
    assert!(store.malformed_keys().await.unwrap().is_empty());
}

/// A secret's listed state is the state reads act on: a soft-deleted current version is
/// `deleted` (not `active`), a destroyed one `destroyed`, and the state filter agrees
/// (counts included).
pub async fn listed_states_are_the_states_reads_act_on(h: &dyn Harness) {
    let store = open(h).await;
    for key in ["LIVE", "SOFT", "ERASED"] {
        set(&store, "dev", key, "v").await;
    }
    store
        .delete_versions(&id("dev", "SOFT"), &[1])
        .await
        .unwrap();
    store
        .destroy_versions(&id("dev", "ERASED"), &[1])
        .await
        .unwrap();
    let listed = |state: Option<State>| {
        let store = store.clone();
        async move {
            let page = store
                .list(ListQuery {
                    env: Some("dev".into()),
                    state,
                    ..ListQuery::default()
                })
                .await
                .unwrap();
            let keys: Vec<(String, State)> =
                page.items.into_iter().map(|i| (i.key, i.state)).collect();
            (page.total, keys)
        }
    };
    let (total, all) = listed(None).await;
    assert_eq!(total, 3);
    assert!(all.contains(&("LIVE".into(), State::Active)), "{all:?}");
    assert!(all.contains(&("SOFT".into(), State::Deleted)), "{all:?}");
    assert!(
        all.contains(&("ERASED".into(), State::Destroyed)),
        "{all:?}"
    );
    for (state, key) in [
        (State::Active, "LIVE"),
        (State::Deleted, "SOFT"),
        (State::Destroyed, "ERASED"),
    ] {
        let (total, keys) = listed(Some(state)).await;
        assert_eq!((total, keys), (1, vec![(key.to_owned(), state)]));
    }
    let view = store.resolve_env(None, Some("dev"), None).await.unwrap();
    let left: Vec<(String, State)> = view
        .left_out
        .iter()
        .map(|l| (l.id.key.clone(), l.state))
        .collect();
    assert_eq!(
        left,
        [
            ("ERASED".into(), State::Destroyed),
            ("SOFT".into(), State::Deleted)
        ]
    );
    assert_eq!(view.reads.len(), 1);
    drop(store.commit_reads(view.reads, Action::Read).await.unwrap());
}

/// What `rotation_status` reports for one KEK version.
fn usage(kek_version: u32, current: u64, history: u64) -> crate::KekUsage {
    crate::KekUsage {
        kek_version,
        current,
        history,
    }
}
