//! The behaviour suite: one set of tests, run against every backend through the
//! `Backend` trait. A backend's test file provides a `Harness` and invokes
//! `behaviour_suite!`.

#![allow(clippy::unwrap_used, dead_code)] // tests: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::ExposeSecret as _;
use strongroom_crypto::{secrecy, Key, KeyRing};
use strongroom_store::backend::Backend;
use strongroom_store::{
    Action, AuditQuery, Expiry, KeySource, ListQuery, MetaUpdate, RotateOptions, SecretId,
    SetRequest, State, Store, StoreConfig, StoreError,
};

/// What a backend's tests provide.
#[async_trait]
pub trait Harness: Send + Sync {
    /// A new connection to this harness's one database (each call: a fresh handle, the
    /// same data, as a second process would see it).
    async fn backend(&self) -> Arc<dyn Backend>;
    /// Overwrites the stored bytes of the current value of `id` with `bytes`.
    async fn overwrite_value(&self, id: &SecretId, bytes: Vec<u8>);
    /// The stored bytes of the current value of `id`.
    async fn stored_value(&self, id: &SecretId) -> Vec<u8>;
    /// Tampers with the audit table directly, as someone with database access could
    /// (triggers disabled first).
    async fn tamper_audit(&self, tamper: AuditTamper);
}

/// A direct change to audit rows.
#[derive(Debug, Clone, Copy)]
pub enum AuditTamper {
    /// Set the actor of event `id`.
    SetActor(i64, &'static str),
    /// Swap every column but the id of two events.
    Swap(i64, i64),
    /// Delete event `id`.
    Delete(i64),
    /// The reported attack: delete the retention anchor and set every link to NULL.
    StripLinks,
    /// Delete every event from `id` on (the tail).
    DeleteFrom(i64),
    /// Delete every event and the anchor.
    DeleteAll,
    /// Point every version's tie at sequence number 0 ("removed by retention").
    RetargetTies,
    /// Store an anchor at sequence `seq` with a made-up link and tag.
    ForgeAnchor(i64),
}

/// A fresh, empty database on the PostgreSQL test server (`STRONGROOM_TEST_POSTGRES_URL`);
/// `None` only when `STRONGROOM_SKIP_POSTGRES` is set explicitly.
#[cfg(feature = "postgres")]
pub async fn fresh_postgres_database() -> Option<String> {
    let Ok(server) = std::env::var("STRONGROOM_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("STRONGROOM_SKIP_POSTGRES").is_some(),
            "STRONGROOM_TEST_POSTGRES_URL is not set: run `cargo xtask ci` (it starts a PostgreSQL server), \
             or set STRONGROOM_SKIP_POSTGRES=1 to skip the PostgreSQL tests explicitly"
        );
        eprintln!("STRONGROOM_SKIP_POSTGRES is set: skipping a PostgreSQL test");
        return None;
    };
    let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut random = [0u8; 8];
    getrandom::getrandom(&mut random).unwrap();
    let name = format!("sr_test_{}", hex::encode(random));
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (base, _) = server.rsplit_once('/').unwrap();
    Some(format!("{base}/{name}"))
}

pub fn key(byte: u8) -> Key {
    Key::from_bytes(&[byte; 32])
}

pub fn ring(keys: &[(u32, u8)]) -> KeyRing {
    let keys: Vec<(u32, Key)> = keys.iter().map(|(v, b)| (*v, key(*b))).collect();
    KeyRing::new(keys.iter().map(|(v, k)| (*v, k))).unwrap()
}

pub async fn open_with(
    h: &dyn Harness,
    keys: &[(u32, u8)],
    config: StoreConfig,
) -> Result<Store, StoreError> {
    Store::open(h.backend().await, KeySource::Ring(ring(keys)), config).await
}

pub async fn open(h: &dyn Harness) -> Store {
    open_with(h, &[(1, 0x11)], StoreConfig::default())
        .await
        .unwrap()
        .with_actor("tester")
}

pub fn id(env: &str, key: &str) -> SecretId {
    SecretId::new("default", env, key)
}

pub async fn set(store: &Store, env: &str, key: &str, value: &str) {
    store
        .set(&id(env, key), SetRequest::value(value))
        .await
        .unwrap();
}

pub async fn value(store: &Store, env: &str, key: &str) -> String {
    let secret = store.get(&id(env, key)).await.unwrap();
    String::from_utf8(secret.value.expose_secret().to_vec()).unwrap()
}

async fn audit_count(store: &Store) -> usize {
    store
        .audit(AuditQuery {
            limit: Some(1000),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .items
        .len()
}

pub async fn set_then_get(h: &dyn Harness) {
    let store = open(h).await;
    let outcome = store
        .set(&id("prod", "API_KEY"), SetRequest::value("sk-123"))
        .await
        .unwrap();
    assert!(outcome.created);
    assert_eq!(outcome.version, 1);
    assert_eq!(outcome.id.len(), 15);
    let secret = store.get(&id("prod", "API_KEY")).await.unwrap();
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
            .value
            .expose_secret(),
        bytes.as_slice()
    );
}

pub async fn fallback_default_chain(h: &dyn Harness) {
    let store = open(h).await;
    set(&store, "global", "DB", "global-db").await;
    let secret = store.get(&id("prod", "DB")).await.unwrap();
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
    assert_eq!(store.get(&id("prod-eu", "A")).await.unwrap().id.env, "prod");
    set(&store, "prod-eu", "A", "e").await;
    assert_eq!(value(&store, "prod-eu", "A").await, "e");
    set(&store, "global", "B", "g").await;
    assert_eq!(
        store.get(&id("prod-eu", "B")).await.unwrap().id.env,
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
    let secret = store.get(&id("staging", "K")).await.unwrap();
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
    let secret = store.get(&key).await.unwrap();
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
    assert!(store.get(&key).await.unwrap().info.expires_at.is_none());
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
    assert_eq!(events.items[0].action, Action::MetadataUpdate);
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
    assert!(all
        .items
        .iter()
        .all(|i| i.masked_value == strongroom_store::MASK));

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
        store.get_version(&key, 4).await.unwrap().expose_secret(),
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
    assert_eq!(events.items[0].action, Action::Rollback);
    assert_eq!(events.items[0].version, Some(6));
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
    let secret = store.get(&key).await.unwrap();
    store.record_read(&secret).await.unwrap();
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
}

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
    assert_eq!(status.by_version, vec![(2, 25, 1)]);
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
        vec![(2, 10, 0)]
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
        KeySource::Ring(ring(&[(2, 0x22), (1, 0x11)])),
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
    let update = strongroom_store::backend::RotationUpdate {
        position: stale.position,
        id: stale.id.clone(),
        version: stale.version,
        expected: stale.value.value.clone(),
        new: stale.value.clone(),
    };
    let fp = key(0x22).fingerprint().to_string();
    let applied = backend
        .apply_rotation(vec![update], (2, fp), None, "t", 0)
        .await
        .unwrap();
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

/// Expands to one `#[tokio::test]` per behaviour, each with a fresh harness from `$make`.
#[macro_export]
macro_rules! behaviour_suite {
    ($make:expr) => {
        $crate::behaviour_suite!(@tests $make;
            set_then_get, fallback_default_chain, configurable_chain, isolation_off_uses_default_env,
            overwrite_keeps_omitted_attributes, get_or_default_and_has, update_meta_leaves_value,
            delete_removes_everything, list_is_masked_paginated_and_filtered, history_versions_and_rollback,
            verify_without_decrypting, audit_records_every_change_without_values, distinct_read_errors,
            limits_reject_and_write_nothing, wrong_key_is_caught_at_open_and_at_write, rotation_rewraps_everything,
            rotation_resumes_from_its_cursor, rotation_never_loses_a_concurrent_write, cleanup_expired_and_old_events,
            namespaces_are_separate, set_many_is_all_or_nothing, audit_chain_detects_tampering,
            audit_links_can_not_be_stripped, audit_truncation_is_detected, audit_anchor_and_ties_are_keyed,
            retention_cuts_by_sequence, values_are_bound_to_their_version
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let harness = $make().await;
                common::$name(&harness).await;
            }
        )*
    };
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

fn broken_reason(v: &strongroom_store::AuditVerification) -> String {
    v.broken_at.clone().map(|b| b.1).unwrap_or_default()
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
    let secret = store.get(&id("global", "B")).await.unwrap();
    let checkpoint = store.audit_checkpoint().await.unwrap();
    assert_eq!(checkpoint.seq, 2);
    store.record_read(&secret).await.unwrap();
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
    let backend = h.backend().await;
    let _attached = Store::open(
        backend.clone(),
        KeySource::Ring(ring(&[(1, 0x11)])),
        StoreConfig::default(),
    )
    .await
    .unwrap();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let event = |time: i64, key: &str| strongroom_store::backend::AuditRecord {
        time,
        actor: "tester".into(),
        action: Action::Read,
        id: id("global", key),
        version: Some(1),
        kek_version: Some(1),
    };
    let day = 86_400_000;
    backend
        .append_audit(vec![
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
