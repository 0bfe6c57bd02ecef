use super::*;

/// The value of exactly version `version` of `id`, read and committed.
async fn version_value(store: &Store, id: &SecretId, version: u32) -> Vec<u8> {
    let read = store.get_version(id, version).await.unwrap();
    read.commit().await.unwrap().value.expose_secret().to_vec()
}

/// The actions recorded for `key`, oldest first, reads left out.
async fn actions(store: &Store, key: &str) -> Vec<(Action, String, Option<u32>)> {
    let mut events = store
        .audit_all(AuditQuery {
            key: Some(key.into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    events.sort_by_key(|e| e.id);
    events
        .into_iter()
        .filter(|e| !e.action.is_plaintext_use())
        .map(|e| (e.action, e.env, e.version))
        .collect()
}

pub async fn copy_reseals_under_the_target_and_audits_each_side(h: &dyn Harness) {
    let store = open(h).await;
    let source = id("prod", "API");
    let target = id("staging", "API");
    set(&store, "prod", "API", "value-one").await;
    store
        .set(
            &source,
            SetRequest {
                description: Some("the API key".into()),
                ..SetRequest::value("value-two")
            },
        )
        .await
        .unwrap();
    let copied = store.copy(&source, &target, false).await.unwrap();
    assert_eq!(copied.version, 1);
    assert_eq!(value(&store, "staging", "API").await, "value-two");
    assert_eq!(
        value(&store, "prod", "API").await,
        "value-two",
        "the source stays"
    );
    let listed = store
        .list(ListQuery {
            env: Some("staging".into()),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.items[0].description, "the API key");
    // Sealed under the target's own context: not the source's bytes.
    assert_ne!(h.stored_value(&target).await, h.stored_value(&source).await);
    // Exists: refused (nothing written) unless forced.
    let refused = store.copy(&source, &target, false).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Conflict {
                kind: crate::ConflictKind::TargetExists,
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(store.copy(&source, &target, true).await.unwrap().version, 2);
    assert!(matches!(
        store.copy(&source, &source, true).await,
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        store.copy(&id("prod", "MISSING"), &target, true).await,
        Err(StoreError::NotFound(_))
    ));
    // One event per side and per copy, no read: the value was never handed out.
    let events = actions(&store, "API").await;
    let copy_events: Vec<_> = events
        .iter()
        .filter(|(a, _, _)| matches!(a, Action::CopyOut | Action::CopyIn))
        .cloned()
        .collect();
    assert_eq!(
        copy_events,
        [
            (Action::CopyOut, "prod".to_owned(), Some(2)),
            (Action::CopyIn, "staging".to_owned(), Some(1)),
            (Action::CopyOut, "prod".to_owned(), Some(2)),
            (Action::CopyIn, "staging".to_owned(), Some(2)),
        ]
    );
    let verified = store.verify_audit().await.unwrap();
    assert_eq!(verified.broken_at, None, "{verified:?}");
}

pub async fn move_keeps_history_rewraps_and_verifies(h: &dyn Harness) {
    // Written under key 1 in one namespace; moved under key 2 into another.
    let old = open(h).await;
    let source = id("prod", "DB");
    for v in ["db-one", "db-two", "db-three"] {
        set(&old, "prod", "DB", v).await;
    }
    let store = open_with(h, &[(2, 0x22), (1, 0x11)], StoreConfig::default())
        .await
        .unwrap()
        .with_actor("mover");
    let target = SecretId::new("billing", "prod", "DATABASE_URL");
    // A taken target refuses, and nothing moves.
    set(&store, "prod", "TAKEN", "taken-value").await;
    let taken = id("prod", "TAKEN");
    assert!(matches!(
        store.move_to(&source, &taken, false).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(value(&store, "prod", "DB").await, "db-three");
    assert_eq!(value(&store, "prod", "TAKEN").await, "taken-value");

    let moved = store.move_to(&source, &target, false).await.unwrap();
    assert_eq!(moved.version, 3);
    assert!(matches!(
        store.get(&source).await,
        Err(StoreError::NotFound(_))
    ));
    let history = store.history(&target).await.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|v| (v.version, v.kek_version))
            .collect::<Vec<_>>(),
        [(3, 2), (2, 2), (1, 2)],
        "every kept version came along, re-wrapped under the active key"
    );
    for (version, expected) in [(1, "db-one"), (2, "db-two"), (3, "db-three")] {
        assert_eq!(
            version_value(&store, &target, version).await,
            expected.as_bytes()
        );
    }
    let verified = store.verify_audit().await.unwrap();
    assert_eq!(verified.broken_at, None, "{verified:?}");
    // Rollback works on the carried history, and the old key is no longer needed.
    store.rollback(&target, 1).await.unwrap();
    let new_only = open_with(h, &[(2, 0x22)], StoreConfig::default())
        .await
        .unwrap();
    let read = new_only.get(&target).await.unwrap().commit().await.unwrap();
    assert_eq!(read.value.expose_secret(), b"db-one");
    let out: Vec<_> = actions(&store, "DB")
        .await
        .into_iter()
        .filter(|(a, _, _)| *a == Action::MoveOut)
        .collect();
    assert_eq!(out, [(Action::MoveOut, "prod".to_owned(), Some(3))]);
    // Forced onto an existing secret: the target is deleted first (audited), then moved.
    let forced = store.move_to(&taken, &target, true).await.unwrap();
    assert_eq!(forced.version, 1);
    let read = store.get(&target).await.unwrap().commit().await.unwrap();
    assert_eq!(read.value.expose_secret(), b"taken-value");
    assert!(store.history(&target).await.unwrap().len() == 1);
    let verified = store.verify_audit().await.unwrap();
    assert_eq!(verified.broken_at, None, "{verified:?}");
}

pub async fn deploy_locks_pin_values_not_rows(h: &dyn Harness) {
    let store = open(h).await;
    set(&store, "prod", "API", "api-locked").await;
    set(&store, "global", "SHARED", "shared-locked").await;
    let lock = store
        .lock_env(None, Some("prod"), None)
        .await
        .unwrap()
        .entries;
    assert_eq!(
        lock.iter()
            .map(|e| (e.key.as_str(), e.env.as_str(), e.version))
            .collect::<Vec<_>>(),
        [("API", "prod", 1), ("SHARED", "global", 1)]
    );
    set(&store, "prod", "API", "api-newer").await;
    let read = store.get_locked("default", &lock[0]).await.unwrap();
    assert_eq!(
        read.commit().await.unwrap().value.expose_secret(),
        b"api-locked"
    );
    // Another row with the locked value (deleted, made again): the value decides.
    store.delete(&id("global", "SHARED")).await.unwrap();
    set(&store, "global", "SHARED", "shared-locked").await;
    let read = store.get_locked("default", &lock[1]).await.unwrap();
    assert_eq!(
        read.commit().await.unwrap().value.expose_secret(),
        b"shared-locked"
    );
    // Another value under the locked version number: refused.
    store.delete(&id("prod", "API")).await.unwrap();
    set(&store, "prod", "API", "api-imposter").await;
    assert!(matches!(
        store.get_locked("default", &lock[0]).await,
        Err(StoreError::Conflict { .. })
    ));
    // A lock made before the key rotated still checks while the old key is in the ring.
    let rotated = open_with(h, &[(2, 0x22), (1, 0x11)], StoreConfig::default())
        .await
        .unwrap();
    rotated
        .rotate(RotateOptions::default(), |_| {})
        .await
        .unwrap();
    assert!(rotated.get_locked("default", &lock[1]).await.is_ok());
}

pub async fn versions_soft_delete_undelete_and_destroy(h: &dyn Harness) {
    let store = open(h).await;
    let key = id("prod", "VERSIONED");
    for v in ["first-value", "second-value", "third-value"] {
        set(&store, "prod", "VERSIONED", v).await;
    }
    // Soft-delete the current version: no read returns it, no fallback either.
    assert_eq!(store.delete_versions(&key, &[3]).await.unwrap(), [3]);
    assert!(matches!(
        store.get(&key).await,
        Err(StoreError::VersionUnavailable {
            version: 3,
            destroyed: false,
            ..
        })
    ));
    assert!(matches!(
        store.get_version(&key, 3).await,
        Err(StoreError::VersionUnavailable { .. })
    ));
    assert!(
        store.delete_versions(&key, &[3]).await.unwrap().is_empty(),
        "idempotent"
    );
    let history = store.history(&key).await.unwrap();
    assert!(history[0].deleted.is_some() && !history[0].destroyed);
    // Undelete: readable again, the same value.
    assert_eq!(store.undelete_versions(&key, &[3]).await.unwrap(), [3]);
    assert_eq!(value(&store, "prod", "VERSIONED").await, "third-value");
    // Destroy an older version: its sealed bytes are gone, rollback to it refused.
    let before = store.history(&key).await.unwrap().len();
    assert_eq!(store.destroy_versions(&key, &[1]).await.unwrap(), [1]);
    assert!(matches!(
        store.get_version(&key, 1).await,
        Err(StoreError::VersionUnavailable {
            destroyed: true,
            ..
        })
    ));
    assert!(
        store
            .undelete_versions(&key, &[1])
            .await
            .unwrap()
            .is_empty(),
        "destroyed is for good"
    );
    assert!(store.rollback(&key, 1).await.is_err());
    assert_eq!(
        store.history(&key).await.unwrap().len(),
        before,
        "kept, marked"
    );
    // A version that is not kept: refused, nothing changes.
    assert!(matches!(
        store.delete_versions(&key, &[2, 9]).await,
        Err(StoreError::VersionNotFound { version: 9, .. })
    ));
    assert_eq!(version_value(&store, &key, 2).await, b"second-value");
    // Every change is audited, the chain verifies, values still open (destroyed skipped),
    // rotation and a move step over the destroyed version.
    let actions: Vec<Action> = actions(&store, "VERSIONED")
        .await
        .into_iter()
        .map(|(a, _, _)| a)
        .collect();
    for expected in [
        Action::VersionDelete,
        Action::VersionUndelete,
        Action::VersionDestroy,
    ] {
        assert!(actions.contains(&expected), "{expected:?} in {actions:?}");
    }
    assert_eq!(store.verify_audit().await.unwrap().broken_at, None);
    store.check_values().await.unwrap();
    let rotated = open_with(h, &[(2, 0x22), (1, 0x11)], StoreConfig::default())
        .await
        .unwrap();
    rotated
        .rotate(RotateOptions::default(), |_| {})
        .await
        .unwrap();
    let moved = SecretId::new("default", "prod", "VERSIONED_MOVED");
    rotated.move_to(&key, &moved, false).await.unwrap();
    assert_eq!(version_value(&rotated, &moved, 2).await, b"second-value");
    assert!(rotated
        .history(&moved)
        .await
        .unwrap()
        .iter()
        .any(|v| v.version == 1 && v.destroyed));
    assert_eq!(rotated.verify_audit().await.unwrap().broken_at, None);
}

pub async fn per_secret_max_versions_and_cas_required(h: &dyn Harness) {
    let store = open(h).await;
    let key = id("prod", "SETTINGS");
    set(&store, "prod", "SETTINGS", "value-1").await;
    assert_eq!(
        store.settings(&key).await.unwrap(),
        crate::SecretSettings::default()
    );
    store
        .set_settings(
            &key,
            crate::SecretSettings {
                max_versions: Some(2),
                cas_required: true,
            },
        )
        .await
        .unwrap();
    // A write without the expected version is refused, nothing written.
    assert!(matches!(
        store.set(&key, SetRequest::value("no-cas")).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.history(&key).await.unwrap().len(), 1);
    for (version, value) in [(1, "value-2"), (2, "value-3"), (3, "value-4")] {
        let request = SetRequest {
            expected_version: Some(version),
            ..SetRequest::value(value)
        };
        store.set(&key, request).await.unwrap();
    }
    // Two versions kept for this secret (the server keeps 10 for others).
    let kept: Vec<u32> = store
        .history(&key)
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(kept, [4, 3]);
    // Back to the defaults: writes without a version land again.
    store
        .set_settings(&key, crate::SecretSettings::default())
        .await
        .unwrap();
    store.set(&key, SetRequest::value("value-5")).await.unwrap();
    assert_eq!(value(&store, "prod", "SETTINGS").await, "value-5");
    assert!(matches!(
        store.settings(&id("prod", "MISSING")).await,
        Err(StoreError::NotFound(_))
    ));
}
