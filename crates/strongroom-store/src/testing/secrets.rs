//! Values, fallback, attributes, lists, history, namespaces.

use super::*;

pub async fn set_then_get(h: &dyn Harness) {
    let store = open(h).await;
    let outcome = store
        .set(&id("prod", "API_KEY"), SetRequest::value("sk-123"))
        .await
        .unwrap();
    assert!(outcome.created);
    assert_eq!(outcome.version, 1);
    assert_eq!(outcome.id.len(), 15);
    let secret = store
        .get(&id("prod", "API_KEY"))
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    assert_eq!(secret.value.expose_secret(), b"sk-123");
    assert_eq!(
        (secret.id.env.as_str(), secret.requested_env.as_str()),
        ("prod", "prod")
    );
    // Binary values round-trip byte for byte.
    let bytes: Vec<u8> = (0..=255).collect();
    store
        .set(&id("prod", "BIN"), SetRequest::value(bytes.clone()))
        .await
        .unwrap();
    assert_eq!(
        store
            .get(&id("prod", "BIN"))
            .await
            .unwrap()
            .commit()
            .await
            .unwrap()
            .value
            .expose_secret(),
        bytes.as_slice()
    );
}

pub async fn fallback_default_chain(h: &dyn Harness) {
    let store = open(h).await;
    set(&store, "global", "DB", "global-db").await;
    let secret = store
        .get(&id("prod", "DB"))
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    assert_eq!(secret.value.expose_secret(), b"global-db");
    assert_eq!(secret.id.env, "global", "the result says which env served");
    assert_eq!(secret.requested_env, "prod");
    set(&store, "prod", "DB", "prod-db").await;
    assert_eq!(value(&store, "prod", "DB").await, "prod-db");
    assert_eq!(value(&store, "staging", "DB").await, "global-db");
    assert!(matches!(
        store.get_exact(&id("staging", "DB")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.get(&id("prod", "NOPE")).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn configurable_chain(h: &dyn Harness) {
    let config = StoreConfig {
        fallback: StoreConfig::parse_fallback("prod-eu=prod>global").unwrap(),
        ..StoreConfig::default()
    };
    let store = open_with(h, &[(1, 0x11)], config).await.unwrap();
    set(&store, "global", "A", "g").await;
    set(&store, "prod", "A", "p").await;
    assert_eq!(
        store.get(&id("prod-eu", "A")).await.unwrap().id().env,
        "prod"
    );
    set(&store, "prod-eu", "A", "e").await;
    assert_eq!(value(&store, "prod-eu", "A").await, "e");
    set(&store, "global", "B", "g").await;
    assert_eq!(
        store.get(&id("prod-eu", "B")).await.unwrap().id().env,
        "global"
    );
}

pub async fn isolation_off_uses_default_env(h: &dyn Harness) {
    let config = StoreConfig {
        env_isolation: false,
        ..StoreConfig::default()
    };
    let store = open_with(h, &[(1, 0x11)], config).await.unwrap();
    set(&store, "prod", "K", "v").await;
    let secret = store
        .get(&id("staging", "K"))
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    assert_eq!(secret.id.env, "global");
    let listed = store.list(ListQuery::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].env, "global");
}

pub async fn overwrite_keeps_omitted_attributes(h: &dyn Harness) {
    let store = open(h).await;
    let key = id("global", "TOKEN");
    store
        .set(
            &key,
            SetRequest {
                description: Some("the token".into()),
                metadata: Some(serde_json::json!({"owner": "ops"})),
                kind: Some("api_key".into()),
                expiry: Expiry::In(Duration::from_secs(3600)),
                ..SetRequest::value("one")
            },
        )
        .await
        .unwrap();
    let outcome = store.set(&key, SetRequest::value("two")).await.unwrap();
    assert!(!outcome.created);
    assert_eq!(outcome.version, 2);
    let secret = store.get(&key).await.unwrap().commit().await.unwrap();
    assert_eq!(secret.value.expose_secret(), b"two");
    assert_eq!(secret.info.description, "the token");
    assert_eq!(
        secret.info.metadata,
        Some(serde_json::json!({"owner": "ops"}))
    );
    assert_eq!(secret.info.kind, "api_key");
    assert!(secret.info.expires_at.is_some());
    store
        .set(
            &key,
            SetRequest {
                expiry: Expiry::Never,
                ..SetRequest::value("three")
            },
        )
        .await
        .unwrap();
    assert!(store.get(&key).await.unwrap().info().expires_at.is_none());
}

pub async fn get_or_default_and_has(h: &dyn Harness) {
    let store = open(h).await;
    assert_eq!(
        store
            .get_or(&id("prod", "X"), b"fallback")
            .await
            .unwrap()
            .expose_secret(),
        b"fallback"
    );
    assert!(!store.has(&id("prod", "X")).await.unwrap());
    set(&store, "global", "X", "real").await;
    assert!(store.has(&id("prod", "X")).await.unwrap());
    assert_eq!(
        store
            .get_or(&id("prod", "X"), b"fallback")
            .await
            .unwrap()
            .expose_secret(),
        b"real"
    );
    store
        .set(
            &id("global", "OLD"),
            SetRequest {
                expiry: Expiry::At(1_000),
                ..SetRequest::value("v")
            },
        )
        .await
        .unwrap();
    assert!(!store.has(&id("global", "OLD")).await.unwrap());
    assert!(matches!(
        store.get_or(&id("global", "OLD"), b"d").await,
        Err(StoreError::Expired { .. })
    ));
}

pub async fn update_meta_leaves_value(h: &dyn Harness) {
    let store = open(h).await;
    set(&store, "global", "K", "v1").await;
    let info = store
        .update_meta(
            &id("global", "K"),
            MetaUpdate {
                description: Some("described".into()),
                metadata: Some(serde_json::json!({"rotate": "monthly"})),
                expiry: Expiry::In(Duration::from_secs(60)),
                ..MetaUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(info.version, 1, "no new version");
    assert_eq!(info.description, "described");
    assert_eq!(value(&store, "global", "K").await, "v1");
    assert_eq!(store.history(&id("global", "K")).await.unwrap().len(), 1);
    assert!(matches!(
        store
            .update_meta(&id("global", "MISSING"), MetaUpdate::default())
            .await,
        Err(StoreError::NotFound(_))
    ));
    let events = store
        .audit(AuditQuery {
            key: Some("K".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let newest_change = events
        .items
        .iter()
        .find(|e| e.action != Action::Read)
        .unwrap();
    assert_eq!(newest_change.action, Action::MetadataUpdate);
}

pub async fn delete_removes_everything(h: &dyn Harness) {
    let store = open(h).await;
    set(&store, "global", "K", "v1").await;
    set(&store, "global", "K", "v2").await;
    store.delete(&id("global", "K")).await.unwrap();
    assert!(matches!(
        store.get(&id("global", "K")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.history(&id("global", "K")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete(&id("global", "K")).await,
        Err(StoreError::NotFound(_))
    ));
    // Re-creating starts at version 1 again.
    store
        .set(&id("global", "K"), SetRequest::value("new"))
        .await
        .map(|o| assert_eq!(o.version, 1))
        .unwrap();
}

pub async fn list_is_masked_paginated_and_filtered(h: &dyn Harness) {
    let store = open(h).await;
    for i in 0..7 {
        set(
            &store,
            "prod",
            &format!("APP_{i}"),
            &format!("secret-value-{i}"),
        )
        .await;
    }
    set(&store, "global", "APP_0", "global-value").await;
    set(&store, "prod", "OTHER", "other-value").await;
    store
        .set(
            &id("prod", "APP_OLD"),
            SetRequest {
                expiry: Expiry::At(1_000),
                ..SetRequest::value("old")
            },
        )
        .await
        .unwrap();

    let all = store.list(ListQuery::default()).await.unwrap();
    assert_eq!(all.total, 10);
    let json = serde_json::to_string(&all).unwrap();
    assert!(
        !json.contains("secret-value") && !json.contains("global-value"),
        "no plaintext in list"
    );
    assert!(all.items.iter().all(|i| i.masked_value == crate::MASK));

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list(ListQuery {
                env: Some("prod".into()),
                prefix: Some("APP_".into()),
                limit: Some(3),
                cursor,
                ..ListQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(page.total, 8);
        seen.extend(page.items.iter().map(|i| i.key.clone()));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let mut expected: Vec<String> = (0..7).map(|i| format!("APP_{i}")).collect();
    expected.push("APP_OLD".into());
    expected.sort();
    assert_eq!(seen, expected, "every row once, in order");

    let expired = store
        .list(ListQuery {
            state: Some(State::Expired),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        expired
            .items
            .iter()
            .map(|i| i.key.as_str())
            .collect::<Vec<_>>(),
        ["APP_OLD"]
    );
    assert_eq!(expired.items[0].state, State::Expired);
    let active = store
        .list(ListQuery {
            state: Some(State::Active),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(active.total, 9);
    // `_` in a prefix is literal, not a wildcard.
    let literal = store
        .list(ListQuery {
            prefix: Some("APP_O".into()),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(literal.total, 1);
    let offset = store
        .list(ListQuery {
            limit: Some(2),
            offset: Some(8),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(offset.items.len(), 2);
}

pub async fn history_versions_and_rollback(h: &dyn Harness) {
    let config = StoreConfig {
        history_depth: 3,
        ..StoreConfig::default()
    };
    let store = open_with(h, &[(1, 0x11)], config).await.unwrap();
    let key = id("global", "K");
    for i in 1..=5 {
        set(&store, "global", "K", &format!("v{i}")).await;
    }
    let history = store.history(&key).await.unwrap();
    assert_eq!(
        history.iter().map(|v| v.version).collect::<Vec<_>>(),
        [5, 4, 3],
        "keeps the last 3"
    );
    assert!(history[0].current && !history[1].current);
    assert_eq!(
        store
            .get_version(&key, 4)
            .await
            .unwrap()
            .commit()
            .await
            .unwrap()
            .value
            .expose_secret(),
        b"v4"
    );
    assert!(matches!(
        store.get_version(&key, 1).await,
        Err(StoreError::VersionNotFound { version: 1, .. })
    ));
    let outcome = store.rollback(&key, 3).await.unwrap();
    assert_eq!(outcome.version, 6);
    assert_eq!(value(&store, "global", "K").await, "v3");
    let events = store
        .audit(AuditQuery {
            key: Some("K".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let newest_change = events
        .items
        .iter()
        .find(|e| e.action != Action::Read)
        .unwrap();
    assert_eq!(newest_change.action, Action::Rollback);
    assert_eq!(newest_change.version, Some(6));
}

pub async fn verify_without_decrypting(h: &dyn Harness) {
    let store = open(h).await;
    set(&store, "global", "PW", "hunter2").await;
    assert!(
        store.verify(&id("prod", "PW"), b"hunter2").await.unwrap(),
        "fallback applies"
    );
    assert!(!store.verify(&id("global", "PW"), b"hunter3").await.unwrap());
    assert!(!store.verify(&id("global", "PW"), b"").await.unwrap());
    assert!(matches!(
        store.verify(&id("global", "NONE"), b"x").await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn namespaces_are_separate(h: &dyn Harness) {
    let store = open(h).await;
    store
        .set(
            &SecretId::new("team-a", "global", "K"),
            SetRequest::value("a"),
        )
        .await
        .unwrap();
    store
        .set(
            &SecretId::new("team-b", "global", "K"),
            SetRequest::value("b"),
        )
        .await
        .unwrap();
    let a = store
        .get(&SecretId::new("team-a", "prod", "K"))
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    assert_eq!(a.value.expose_secret(), b"a");
    assert!(matches!(
        store.get(&id("global", "K")).await,
        Err(StoreError::NotFound(_))
    ));
    let listed = store
        .list(ListQuery {
            namespace: Some("team-b".into()),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.total, 1);
    // A ciphertext moved across namespaces does not open.
    let bytes = h
        .stored_value(&SecretId::new("team-b", "global", "K"))
        .await;
    h.overwrite_value(&SecretId::new("team-a", "global", "K"), bytes)
        .await;
    assert!(matches!(
        store.get(&SecretId::new("team-a", "global", "K")).await,
        Err(StoreError::Integrity(_))
    ));
}

pub async fn set_many_is_all_or_nothing(h: &dyn Harness) {
    let store = open(h).await;
    let good = vec![
        (id("global", "A"), SetRequest::value("a")),
        (id("prod", "B"), SetRequest::value("b")),
    ];
    let outcomes = store.set_many(good).await.unwrap();
    assert_eq!(outcomes.len(), 2);
    assert_eq!(value(&store, "prod", "B").await, "b");
    let mixed = vec![
        (id("global", "C"), SetRequest::value("c")),
        (id("global", "BAD KEY"), SetRequest::value("x")),
    ];
    assert!(matches!(
        store.set_many(mixed).await,
        Err(StoreError::InvalidName { .. })
    ));
    assert!(matches!(
        store.get(&id("global", "C")).await,
        Err(StoreError::NotFound(_))
    ));
    // The same key twice in one batch: both versions land in order.
    let twice = vec![
        (id("global", "A"), SetRequest::value("a2")),
        (id("global", "A"), SetRequest::value("a3")),
    ];
    let outcomes = store.set_many(twice).await.unwrap();
    assert_eq!(
        outcomes.iter().map(|o| o.version).collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(value(&store, "global", "A").await, "a3");
    // Keys out of order (a store writes them in key order): each outcome is still its
    // own item's, in the order given.
    let unordered = vec![
        (id("prod", "B"), SetRequest::value("b2")),
        (id("global", "Z"), SetRequest::value("z")),
        (id("global", "A"), SetRequest::value("a4")),
    ];
    let outcomes = store.set_many(unordered).await.unwrap();
    assert_eq!(
        outcomes
            .iter()
            .map(|o| (o.version, o.created))
            .collect::<Vec<_>>(),
        [(2, false), (1, true), (4, false)]
    );
}

pub async fn check_and_set_writes_only_at_the_expected_version(h: &dyn Harness) {
    let store = open(h).await;
    let key = id("prod", "CAS");
    let cas = |value: &str, expected: u32| SetRequest {
        expected_version: Some(expected),
        ..SetRequest::value(value)
    };
    assert!(matches!(
        store.set(&key, cas("never", 3)).await,
        Err(StoreError::Conflict {
            kind: crate::ConflictKind::CasMismatch,
            ..
        })
    ));
    assert!(
        matches!(store.get(&key).await, Err(StoreError::NotFound(_))),
        "nothing created"
    );
    assert_eq!(store.set(&key, cas("first", 0)).await.unwrap().version, 1);
    for stale in [0, 2] {
        assert!(matches!(
            store.set(&key, cas("stale", stale)).await,
            Err(StoreError::Conflict {
                kind: crate::ConflictKind::CasMismatch,
                ..
            })
        ));
    }
    assert_eq!(
        store.history(&key).await.unwrap().len(),
        1,
        "nothing written"
    );
    assert_eq!(value(&store, "prod", "CAS").await, "first");
    assert_eq!(store.set(&key, cas("second", 1)).await.unwrap().version, 2);
    assert_eq!(value(&store, "prod", "CAS").await, "second");
}

pub async fn info_is_one_identitys_listed_attributes(h: &dyn Harness) {
    let store = open(h).await;
    set(&store, "global", "DB", "global-db").await;
    set(&store, "prod", "DB/replica", "replica").await;
    // Exactly that identity: no fallback to `global`, no key that merely starts with it.
    assert!(store.info(&id("prod", "DB")).await.unwrap().is_none());
    set(&store, "prod", "DB", "prod-db").await;
    let events_before = store.audit(AuditQuery::default()).await.unwrap().total;
    let info = store.info(&id("prod", "DB")).await.unwrap().unwrap();
    // Reading attributes is not a read of the value: nothing is audited.
    let events_after = store.audit(AuditQuery::default()).await.unwrap().total;
    assert_eq!(events_before, events_after);
    let listed = store
        .list(ListQuery {
            env: Some("prod".into()),
            ..ListQuery::default()
        })
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|i| i.key == "DB")
        .unwrap();
    assert_eq!(
        serde_json::to_value(&info).unwrap(),
        serde_json::to_value(&listed).unwrap()
    );
    assert_eq!(info.masked_value, crate::model::MASK, "never the value");
}
