//! Token rows under the key: the upgrade tags rows from before tags once, audited; a row
//! inserted untagged later is refused even when the upgrade's marker is removed; rotation
//! re-tags rows so tokens survive the retirement of the old key; names are unique
//! case-insensitively.

use sha2::{Digest as _, Sha256};
use strongroom_crypto::secrecy::ExposeSecret as _;

use super::{open, open_with, Harness};
use crate::backend::TokenRecord;
use crate::tokens::{Scope, Tokens};
use crate::{Action, AuditQuery, RotateOptions, StoreConfig, StoreError};

/// A token row as a version before keyed tags wrote it (or as an attacker inserts one):
/// no tag. Returns the bearer token it stands for.
async fn insert_untagged(h: &dyn Harness, id: &str, name: &str, superuser: bool) -> String {
    let secret = format!("secret-of-{name}");
    let record = TokenRecord {
        id: id.to_owned(),
        name: name.to_owned(),
        secret_hash: Sha256::digest(secret.as_bytes()).to_vec(),
        superuser,
        scopes: if superuser {
            Vec::new()
        } else {
            vec!["default/dev:read".into()]
        },
        created: crate::Timestamp(1_700_000_000_000),
        revoked: None,
        tag: None,
    };
    let backend = h.backend().await;
    let inserted = crate::store::in_transaction(backend.as_ref(), move |tx| {
        Box::pin(async move { tx.insert_token(&record).await })
    })
    .await
    .unwrap();
    assert!(inserted);
    format!("sr.{id}.{secret}")
}

async fn token_events(store: &crate::Store, action: Action) -> Vec<String> {
    store
        .audit(AuditQuery {
            action: Some(action),
            limit: Some(1000),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.key)
        .collect()
}

pub async fn token_rows_from_before_tags_are_tagged_once_and_forged_ones_refused(h: &dyn Harness) {
    // Before the first open with the key (an upgraded database): two legacy rows.
    let legacy = insert_untagged(h, "0000000000a1", "legacy-ci", false).await;
    let legacy_admin = insert_untagged(h, "0000000000a2", "legacy-admin", true).await;
    let store = open(h).await;
    let tokens = Tokens::new(&store, None).unwrap();
    let principal = tokens.authenticate(&legacy).await.unwrap().unwrap();
    assert_eq!(
        (principal.name.as_str(), principal.superuser),
        ("legacy-ci", false)
    );
    assert!(
        tokens
            .authenticate(&legacy_admin)
            .await
            .unwrap()
            .unwrap()
            .superuser
    );
    let mut tagged = token_events(&store, Action::TokenTag).await;
    tagged.sort();
    assert_eq!(tagged, ["legacy-admin", "legacy-ci"]);
    assert!(store.token_problems().await.unwrap().is_empty());
    // After the upgrade: an untagged row is refused and named, not tagged at the next
    // open, even with the upgrade's marker removed by the same attacker.
    let forged = insert_untagged(h, "0000000000f1", "forged", true).await;
    assert!(tokens.authenticate(&forged).await.unwrap().is_none());
    let backend = h.backend().await;
    crate::store::in_transaction(backend.as_ref(), |tx| {
        Box::pin(async move { tx.set_meta("token_tags", None).await })
    })
    .await
    .unwrap();
    let reopened = open(h).await;
    let tokens = Tokens::new(&reopened, None).unwrap();
    assert!(tokens.authenticate(&forged).await.unwrap().is_none());
    assert!(tokens.authenticate(&legacy).await.unwrap().is_some());
    let problems = reopened.token_problems().await.unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        (problems[0].id.as_str(), problems[0].name.as_str()),
        ("0000000000f1", "forged")
    );
    assert_eq!(token_events(&reopened, Action::TokenTag).await.len(), 2);
    // Without keys, stored tokens are refused and can not be made.
    let keyless = Tokens::admin_only(h.backend().await, None).unwrap();
    assert!(keyless.authenticate(&legacy).await.unwrap().is_none());
    assert!(matches!(
        keyless.create("new", true, &[]).await,
        Err(StoreError::Config(_))
    ));
}

pub async fn token_names_are_unique_ignoring_case_and_survive_rotation(h: &dyn Harness) {
    let store = open(h).await;
    let tokens = Tokens::new(&store, None).unwrap();
    let (_, agent) = tokens
        .create("agent", false, &[Scope::parse("default/dev:read").unwrap()])
        .await
        .unwrap();
    for twin in ["Agent", "AGENT"] {
        let taken = tokens.create(twin, true, &[]).await.unwrap_err();
        assert_eq!(taken.kind(), crate::ErrorKind::Conflict, "{taken}");
    }
    assert_eq!(tokens.list().await.unwrap().len(), 1);
    assert_eq!(token_events(&store, Action::TokenCreate).await, ["agent"]);
    // Rotate to key 2, then retire key 1: the token still authenticates.
    let both = open_with(h, &[(2, 0x22), (1, 0x11)], StoreConfig::default())
        .await
        .unwrap();
    both.rotate(RotateOptions::default(), |_| {}).await.unwrap();
    let only_new = open_with(h, &[(2, 0x22)], StoreConfig::default())
        .await
        .unwrap();
    let tokens = Tokens::new(&only_new, None).unwrap();
    let agent = agent.expose_secret().to_owned();
    assert_eq!(
        tokens.authenticate(&agent).await.unwrap().unwrap().name,
        "agent"
    );
    // Revoking by another case of the name revokes it; the revocation is audited.
    tokens.revoke("AGENT").await.unwrap();
    assert!(tokens.authenticate(&agent).await.unwrap().is_none());
    assert_eq!(
        token_events(&only_new, Action::TokenRevoke).await,
        ["agent"]
    );
}
