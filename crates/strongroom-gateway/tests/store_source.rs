//! The store as a `SecretSource`: values through fallback, and every use of a call
//! audited as `gateway_read` in one transaction before any value is returned (nothing if
//! a name is missing).

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use strongroom_crypto::secrecy::ExposeSecret as _;
use strongroom_crypto::{Key, KeyRing};
use strongroom_gateway::{SecretSource, SourceError};
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
async fn the_store_audits_every_use_of_a_call_before_returning_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await.with_actor("billing-gateway");
    let values = store
        .resolve_all("default", "prod", &["API_KEY"])
        .await
        .unwrap();
    assert_eq!(values[0].expose_secret(), b"sk-1");
    assert_eq!(
        uses(&store).await,
        [("billing-gateway".into(), "global".into(), "API_KEY".into())]
    );
    // One missing name fails the call, and nothing of it is recorded.
    assert!(matches!(
        store.resolve_all("default", "prod", &["API_KEY", "MISSING"]).await,
        Err(SourceError::NotFound(name)) if name == "MISSING"
    ));
    assert_eq!(uses(&store).await.len(), 1, "a failed call used nothing");
    // Several names: one event each, under the caller's actor.
    let values = store
        .with_actor("app-token")
        .resolve_all("default", "global", &["API_KEY", "API_KEY"])
        .await
        .unwrap();
    assert_eq!(values.len(), 2);
    assert_eq!(uses(&store).await.len(), 3);
}
