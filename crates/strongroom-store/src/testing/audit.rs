//! The audit trail and its tamper evidence.

use super::*;

pub async fn audit_records_every_change_without_values(h: &dyn Harness) {
    let store = open(h).await;
    let key = id("prod", "AUD");
    set(&store, "prod", "AUD", "audit-plaintext-1").await;
    set(&store, "prod", "AUD", "audit-plaintext-2").await;
    store
        .update_meta(
            &key,
            MetaUpdate {
                description: Some("d".into()),
                ..MetaUpdate::default()
            },
        )
        .await
        .unwrap();
    store.rollback(&key, 1).await.unwrap();
    store.get(&key).await.unwrap().commit().await.unwrap();
    store.delete(&key).await.unwrap();
    let page = store
        .audit(AuditQuery {
            key: Some("AUD".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let actions: Vec<Action> = page.items.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            Action::Delete,
            Action::Read,
            Action::Rollback,
            Action::MetadataUpdate,
            Action::Update,
            Action::Create
        ]
    );
    assert!(page
        .items
        .iter()
        .all(|e| e.actor == "tester" && e.env == "prod" && e.namespace == "default"));
    assert_eq!(page.items[5].kek_version, Some(1));
    let json = serde_json::to_string(&page).unwrap();
    assert!(!json.contains("audit-plaintext"));
    // Paging and filters.
    let first = store
        .audit(AuditQuery {
            limit: Some(2),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let before = first.next_cursor.unwrap().parse().unwrap();
    let second = store
        .audit(AuditQuery {
            limit: Some(2),
            before_id: Some(before),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(second.items.iter().all(|e| e.id < before));
    let creates = store
        .audit(AuditQuery {
            action: Some(Action::Create),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(creates.items.len(), 1);
    // Actor and time filters (what the console's audit view asks for).
    set(
        &store.with_actor("someone-else"),
        "prod",
        "OTHER_ACTOR",
        "v",
    )
    .await;
    let by_actor = store
        .audit(AuditQuery {
            actor: Some("someone-else".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_actor.items.len(), 1);
    assert_eq!(by_actor.items[0].key, "OTHER_ACTOR");
    let newest = by_actor.items[0].time.unix_ms();
    let at_or_after = |since_ms, until_ms| {
        store.audit(AuditQuery {
            since_ms,
            until_ms,
            ..AuditQuery::default()
        })
    };
    let since = at_or_after(Some(newest), None).await.unwrap();
    assert!(since.items.iter().all(|e| e.time.unix_ms() >= newest));
    assert!(since.items.iter().any(|e| e.key == "OTHER_ACTOR"));
    let until = at_or_after(None, Some(newest)).await.unwrap();
    assert!(until.items.iter().all(|e| e.time.unix_ms() < newest));
    assert!(until.items.iter().all(|e| e.key != "OTHER_ACTOR"));
}

pub async fn audit_chain_detects_tampering(h: &dyn Harness) {
    let store = open(h).await;
    // Retention first: removing old events keeps the rest verifiable (anchor).
    for i in 0..3 {
        set(&store, "global", &format!("OLD{i}"), "v").await;
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(
        store
            .cleanup_events(Duration::from_millis(15))
            .await
            .unwrap(),
        3
    );
    for i in 0..5 {
        set(&store, "global", &format!("K{i}"), "v").await;
    }
    let intact = store.verify_audit().await.unwrap();
    assert_eq!((intact.events, intact.broken_at.clone()), (5, None));
    let ids: Vec<i64> = store
        .audit_all(AuditQuery::default())
        .await
        .unwrap()
        .iter()
        .rev()
        .map(|e| e.id)
        .collect();

    h.tamper_audit(AuditTamper::SetActor(ids[2], "mallory"))
        .await;
    assert_eq!(
        store.verify_audit().await.unwrap().broken_at.map(|b| b.0),
        Some(ids[2]),
        "an edit"
    );
    h.tamper_audit(AuditTamper::SetActor(ids[2], "tester"))
        .await;
    assert_eq!(
        store.verify_audit().await.unwrap().broken_at,
        None,
        "restored"
    );

    h.tamper_audit(AuditTamper::Swap(ids[1], ids[2])).await;
    assert_eq!(
        store.verify_audit().await.unwrap().broken_at.map(|b| b.0),
        Some(ids[1]),
        "a reordering"
    );
    h.tamper_audit(AuditTamper::Swap(ids[1], ids[2])).await;
    assert_eq!(store.verify_audit().await.unwrap().broken_at, None);

    h.tamper_audit(AuditTamper::Delete(ids[3])).await;
    assert_eq!(
        store.verify_audit().await.unwrap().broken_at.map(|b| b.0),
        Some(ids[4]),
        "a deletion"
    );
}

/// The reported attack: with write access to the database and no key, delete the anchor
/// and set every link to NULL, then edit an event. Verification used to say "intact".
pub async fn audit_links_can_not_be_stripped(h: &dyn Harness) {
    let store = open(h).await;
    set(&store, "global", "A", "a").await;
    set(&store, "global", "B", "b").await;
    assert_eq!(store.verify_audit().await.unwrap().broken_at, None);
    h.tamper_audit(AuditTamper::StripLinks).await;
    let result = store.verify_audit().await.unwrap();
    assert_eq!(
        result.broken_at.as_ref().map(|b| b.0),
        Some(1),
        "{result:?}"
    );
    assert!(broken_reason(&result).contains("no chain link"));
    // Appending afterwards does not start a fresh valid chain.
    set(&store, "global", "C", "c").await;
    assert!(store.verify_audit().await.unwrap().broken_at.is_some());
}

/// Deleting the newest events, or all of them, is detected while secrets exist (each
/// version is tied to the event that wrote it); removing only trailing reads is caught
/// against a checkpoint kept elsewhere.
pub async fn audit_truncation_is_detected(h: &dyn Harness) {
    let store = open(h).await;
    set(&store, "global", "A", "a").await;
    set(&store, "global", "B", "b").await;
    let read = store.get(&id("global", "B")).await.unwrap();
    let checkpoint = store.audit_checkpoint().await.unwrap();
    assert_eq!(checkpoint.seq, 2);
    read.commit().await.unwrap();
    let intact = store.verify_audit_against(&checkpoint).await.unwrap();
    assert_eq!((intact.events, intact.broken_at.clone()), (3, None));
    assert_eq!(intact.versions, 2);
    // A forged checkpoint is refused.
    let mut forged = checkpoint.clone();
    forged.seq = 1;
    assert!(matches!(
        store.verify_audit_against(&forged).await,
        Err(StoreError::AuditIntegrity(_))
    ));

    // Remove the trailing read: the log alone can not tell, the checkpoint still can not
    // (it predates the read) -- but remove the write before it and both see it.
    h.tamper_audit(AuditTamper::DeleteFrom(3)).await;
    assert_eq!(store.verify_audit().await.unwrap().broken_at, None);
    h.tamper_audit(AuditTamper::DeleteFrom(2)).await;
    let result = store.verify_audit().await.unwrap();
    assert!(
        broken_reason(&result).contains("cut short"),
        "the tail: {result:?}"
    );
    let against = store.verify_audit_against(&checkpoint).await.unwrap();
    assert!(against.broken_at.is_some(), "{against:?}");
    h.tamper_audit(AuditTamper::DeleteAll).await;
    let result = store.verify_audit().await.unwrap();
    assert_eq!(result.events, 0);
    assert!(
        broken_reason(&result).contains("missing"),
        "an empty log while secrets exist: {result:?}"
    );
}

/// The retention anchor and the version ties are keyed: forging either is detected.
pub async fn audit_anchor_and_ties_are_keyed(h: &dyn Harness) {
    let store = open(h).await;
    set(&store, "global", "OLD", "v").await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(
        store
            .cleanup_events(Duration::from_millis(15))
            .await
            .unwrap(),
        1
    );
    set(&store, "global", "NEW", "v").await;
    let intact = store.verify_audit().await.unwrap();
    assert_eq!(intact.broken_at, None, "{intact:?}");
    assert_eq!(intact.head.as_ref().map(|h| h.0), Some(2));
    let checkpoint = store.audit_checkpoint().await.unwrap();

    h.tamper_audit(AuditTamper::RetargetTies).await;
    let result = store.verify_audit().await.unwrap();
    assert!(broken_reason(&result).contains("altered"), "{result:?}");

    h.tamper_audit(AuditTamper::ForgeAnchor(5)).await;
    let result = store.verify_audit().await.unwrap();
    assert!(broken_reason(&result).contains("anchor"), "{result:?}");
    let against = store.verify_audit_against(&checkpoint).await.unwrap();
    assert!(against.broken_at.is_some());
}

/// Retention deletes by sequence number: after the clock steps back, an event written
/// later but stamped earlier is not deleted ahead of a younger one, and the chain holds.
pub async fn retention_cuts_by_sequence(h: &dyn Harness) {
    let writer = open(h).await;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let event = |time: i64, key: &str| crate::backend::AuditRecord {
        time: crate::Timestamp(time),
        actor: "tester".into(),
        action: Action::Read,
        id: id("global", key),
        version: Some(1),
        kek_version: Some(1),
    };
    let day = 86_400_000;
    writer
        .append_read_events(vec![
            event(now - 10 * day, "OLD"),
            event(now, "YOUNG"),
            event(now - 20 * day, "STEPPED_BACK"),
        ])
        .await
        .unwrap();
    let store = open(h).await;
    let removed = store
        .cleanup_events(Duration::from_secs(86_400))
        .await
        .unwrap();
    assert_eq!(removed, 1, "only the run of old events at the start");
    let left: Vec<String> = store
        .audit_all(AuditQuery::default())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(left, ["STEPPED_BACK", "YOUNG"]);
    assert_eq!(store.verify_audit().await.unwrap().broken_at, None);
}

/// A sealed value copied over another version's row (a database writer "un-rotating" a
/// leaked credential), or into a re-created secret, does not open.
pub async fn values_are_bound_to_their_version(h: &dyn Harness) {
    let store = open(h).await;
    set(&store, "global", "KEY", "leaked-v1").await;
    let v1 = h.stored_value(&id("global", "KEY")).await;
    set(&store, "global", "KEY", "rotated-v2").await;
    h.overwrite_value(&id("global", "KEY"), v1.clone()).await;
    assert!(matches!(
        store.get(&id("global", "KEY")).await,
        Err(StoreError::Integrity(_))
    ));
    assert!(!store
        .verify(&id("global", "KEY"), b"leaked-v1")
        .await
        .unwrap_or(false));
    // Delete and re-create: the same version number, another secret id.
    store.delete(&id("global", "KEY")).await.unwrap();
    set(&store, "global", "KEY", "fresh").await;
    h.overwrite_value(&id("global", "KEY"), v1).await;
    assert!(matches!(
        store.get(&id("global", "KEY")).await,
        Err(StoreError::Integrity(_))
    ));
}

/// A read hands out nothing and records nothing until it is committed; committing
/// records exactly one `read` event with the handle's actor, before the value is returned.
pub async fn reads_are_audited_only_when_committed(h: &dyn Harness) {
    let store = open(h).await;
    set(&store, "global", "K", "v").await;
    let reads = |store: Store| async move {
        store
            .audit(AuditQuery {
                action: Some(Action::Read),
                ..AuditQuery::default()
            })
            .await
            .unwrap()
            .items
    };
    let pending = store.get(&id("prod", "K")).await.unwrap();
    assert_eq!(
        (pending.id().env.as_str(), pending.version()),
        ("global", 1)
    );
    drop(pending);
    assert!(reads(store.clone()).await.is_empty(), "abandoned: no event");
    let secret = store
        .with_actor("reader")
        .get(&id("prod", "K"))
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    assert_eq!(secret.value.expose_secret(), b"v");
    let events = reads(store.clone()).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].actor.as_str(), events[0].env.as_str()),
        ("reader", "global")
    );
    // A batch is one transaction: every read, or none.
    let batch = vec![
        store.get(&id("prod", "K")).await.unwrap(),
        store.get_exact(&id("global", "K")).await.unwrap(),
    ];
    let secrets = store
        .commit_reads(batch, Action::GatewayRead)
        .await
        .unwrap();
    assert_eq!(secrets.len(), 2);
    assert!(matches!(
        store.commit_reads(Vec::new(), Action::Delete).await,
        Err(StoreError::InvalidInput(_))
    ));
}

/// Rotation re-keys the chain (links, ties and the retention anchor) under the new key,
/// so `verify_audit` still works once the old key is retired; a chain that does not
/// verify is refused, not laundered under the new key.
pub async fn audit_chain_survives_key_retirement(h: &dyn Harness) {
    let old = open(h).await;
    for i in 0..3 {
        set(&old, "global", &format!("OLD{i}"), "v").await;
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(
        old.cleanup_events(Duration::from_millis(15)).await.unwrap(),
        3
    );
    for i in 0..4 {
        set(&old, "global", &format!("K{i}"), "v").await;
    }
    let before = old.audit_checkpoint().await.unwrap();
    let both = open_with(h, &[(2, 0x22), (1, 0x11)], StoreConfig::default())
        .await
        .unwrap();

    // A chain edited without the key is not re-keyed, and nothing is written.
    let first = both.audit_all(AuditQuery::default()).await.unwrap();
    let edited = first[1].id;
    h.tamper_audit(AuditTamper::SetActor(edited, "mallory"))
        .await;
    let refused = both.rotate(RotateOptions::default(), |_| {}).await;
    assert!(
        matches!(refused, Err(StoreError::AuditIntegrity(ref why)) if why.contains("not re-keyed")),
        "{refused:?}"
    );
    assert_eq!(
        both.verify_audit().await.unwrap().broken_at.map(|b| b.0),
        Some(edited),
        "the edit is still reported under the old key"
    );
    h.tamper_audit(AuditTamper::SetActor(edited, "tester"))
        .await;

    both.rotate(RotateOptions::default(), |_| {}).await.unwrap();
    assert_eq!(
        both.rekey_audit_chain().await.unwrap(),
        crate::Rekeyed::default(),
        "a second re-key writes nothing"
    );
    let new_only = open_with(h, &[(2, 0x22)], StoreConfig::default())
        .await
        .unwrap()
        .with_actor("tester");
    let verified = new_only.verify_audit().await.unwrap();
    assert_eq!(verified.broken_at, None, "verifiable without the old key");
    assert!(
        verified.events >= 4 && verified.versions == 7,
        "{verified:?}"
    );
    // A checkpoint from before the re-key says so, rather than "rewritten".
    let stale = new_only.verify_audit_against(&before).await;
    assert!(
        matches!(stale, Err(StoreError::InvalidInput(ref why)) if why.contains("re-keyed")),
        "{stale:?}"
    );
    let fresh = new_only.audit_checkpoint().await.unwrap();
    assert_eq!(
        new_only
            .verify_audit_against(&fresh)
            .await
            .unwrap()
            .broken_at,
        None
    );
    // After the re-key, tampering is detected under the new key.
    set(&new_only, "global", "K0", "w").await;
    h.tamper_audit(AuditTamper::SetActor(edited, "mallory"))
        .await;
    assert_eq!(
        new_only
            .verify_audit()
            .await
            .unwrap()
            .broken_at
            .map(|b| b.0),
        Some(edited)
    );
}
