//! The store as a `SecretSource`: values through fallback, and every use audited as
//! `gateway_read` — at once for the shared `Store`, together at `commit_uses` for a
//! per-request `RequestSource` (nothing if the request never gets that far).

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use strongroom_crypto::secrecy::ExposeSecret as _;
use strongroom_crypto::{Key, KeyRing};
use strongroom_gateway::{RequestSource, SecretSource, SourceError};
use strongroom_store::backend::sqlite::SqliteBackend;
use strongroom_store::{Action, AuditQuery, KeySource, SecretId, SetRequest, Store, StoreConfig};

async fn store(dir: &std::path::Path) -> Store {
    let backend = Arc::new(SqliteBackend::open(dir.join("gw.db")).unwrap());
    let ring = KeyRing::single(&Key::from_bytes(&[7; 32]));
    let store = Store::open(backend, KeySource::Ring(ring), StoreConfig::default())
        .await
        .unwrap();
    store
        .set(
            &SecretId::new("default", "global", "API_KEY"),
            SetRequest::value("sk-1"),
        )
        .await
        .unwrap();
    store
}

/// `(actor, env, key)` of every `gateway_read` event.
async fn uses(store: &Store) -> Vec<(String, String, String)> {
    let page = store
        .audit(AuditQuery {
            action: Some(Action::GatewayRead),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    page.items
        .into_iter()
        .map(|e| (e.actor, e.env, e.key))
        .collect()
}

#[tokio::test]
async fn a_shared_store_audits_each_use_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await.with_actor("billing-gateway");
    let value = store.resolve("default", "prod", "API_KEY").await.unwrap();
    assert_eq!(value.expose_secret(), b"sk-1");
    assert_eq!(
        uses(&store).await,
        [("billing-gateway".into(), "global".into(), "API_KEY".into())]
    );
    assert!(matches!(
        store.resolve("default", "prod", "MISSING").await,
        Err(SourceError::NotFound(name)) if name == "MISSING"
    ));
    assert_eq!(uses(&store).await.len(), 1, "a missing secret is no use");
}

#[tokio::test]
async fn a_request_source_records_uses_only_when_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;

    let abandoned = RequestSource::new(store.with_actor("app-token"));
    abandoned
        .resolve("default", "prod", "API_KEY")
        .await
        .unwrap();
    drop(abandoned);
    assert!(uses(&store).await.is_empty(), "never committed, never used");

    let request = RequestSource::new(store.with_actor("app-token"));
    request.resolve("default", "prod", "API_KEY").await.unwrap();
    request
        .resolve("default", "global", "API_KEY")
        .await
        .unwrap();
    assert!(uses(&store).await.is_empty());
    request.commit_uses().await.unwrap();
    assert_eq!(
        uses(&store).await,
        [
            ("app-token".into(), "global".into(), "API_KEY".into()),
            ("app-token".into(), "global".into(), "API_KEY".into())
        ]
    );
    request.commit_uses().await.unwrap();
    assert_eq!(uses(&store).await.len(), 2, "each use is recorded once");
}
