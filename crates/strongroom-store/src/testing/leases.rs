//! Leases: a sealed record that only the key opens (a row forged, or a record moved from
//! another lease, is refused); due work claimed by exactly one of several claimers; an
//! update is a compare-and-swap with its audit event.

use strongroom_crypto::secrecy::ExposeSecret as _;

use super::{open, Harness};
use crate::backend::LeaseRow;
use crate::{Action, AuditQuery, StoreError, Timestamp};

fn row(store: &crate::Store, id: &str, next_attempt: i64) -> LeaseRow {
    LeaseRow {
        id: id.to_owned(),
        issued: Timestamp(1_000),
        expires: Timestamp(2_000),
        state: "active".into(),
        attempts: 0,
        next_attempt: Timestamp(next_attempt),
        claimed_until: Timestamp(0),
        last_error: None,
        sealed: store
            .seal_lease(id, format!(r#"{{"username":"v-{id}"}}"#).as_bytes())
            .unwrap(),
    }
}

pub async fn leases_are_sealed_claimed_once_and_updated_by_compare_and_swap(h: &dyn Harness) {
    let store = open(h).await;
    assert!(
        !store.any_lease_due(Timestamp(5_000)).await.unwrap(),
        "no lease, nothing due"
    );
    let a = row(&store, "database/creds/app/a", 1_000);
    let b = row(&store, "database/creds/app/b", 1_500);
    let later = row(&store, "database/creds/app2/c", 9_000);
    for lease in [&a, &b, &later] {
        assert!(store.record_lease(lease.clone()).await.unwrap());
    }
    assert!(!store.any_lease_due(Timestamp(999)).await.unwrap());
    assert!(store.any_lease_due(Timestamp(1_000)).await.unwrap());
    assert!(
        !store.record_lease(a.clone()).await.unwrap(),
        "an id is recorded once"
    );
    let opened = store.open_lease(&a).unwrap();
    assert_eq!(
        opened.expose_secret(),
        br#"{"username":"v-database/creds/app/a"}"#
    );

    // A record moved from another lease, or written without the key: refused.
    let moved = LeaseRow {
        sealed: b.sealed.clone(),
        ..a.clone()
    };
    assert!(matches!(
        store.open_lease(&moved),
        Err(StoreError::Integrity(_))
    ));
    let forged = LeaseRow {
        sealed: br#"{"username":"postgres"}"#.to_vec(),
        ..a.clone()
    };
    assert!(store.open_lease(&forged).is_err());

    // A prefix is a prefix of ids (the caller makes it a path).
    let commits = store.stats().group_commits;
    let listed = store.lease_rows("database/creds/app/").await.unwrap();
    assert_eq!(listed.len(), 2);
    // Looking leases up and listing them are reads: nothing committed (a static role's
    // credentials are read through one on every request).
    assert_eq!(store.lease_row(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.lease_row("database/creds/none").await.unwrap(), None);
    assert!(!store.any_lease_due(Timestamp(0)).await.unwrap());
    assert_eq!(store.stats().group_commits, commits, "a lookup committed");

    // Due work: claimed by one of four concurrent claimers, each lease once.
    let claims = futures_claims(&store).await;
    let mut ids: Vec<String> = claims.into_iter().flatten().map(|r| r.id).collect();
    ids.sort();
    assert_eq!(ids, [a.id.clone(), b.id.clone()]);
    // Claimed: not due again until the claim passes.
    assert!(store
        .claim_due_leases(Timestamp(5_000), 10_000, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(!store.any_lease_due(Timestamp(5_000)).await.unwrap());

    // An update holds only against what it read; with an event, audited.
    let current = store.lease_row(&a.id).await.unwrap().unwrap();
    let revoked = LeaseRow {
        state: "revoked".into(),
        ..current.clone()
    };
    assert!(store
        .update_lease(current.clone(), revoked.clone(), Some(Action::LeaseRevoke))
        .await
        .unwrap());
    assert!(!store
        .update_lease(current, revoked, Some(Action::LeaseRevoke))
        .await
        .unwrap());
    let events = store
        .audit_all(AuditQuery {
            action: Some(Action::LeaseRevoke),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].key, a.id);
    // `later` is due once its time comes; a revoked lease never is (each of the three
    // revoked, whatever its times).
    assert!(!store.any_lease_due(Timestamp(8_999)).await.unwrap());
    assert!(store.any_lease_due(Timestamp(9_000)).await.unwrap());
    for id in [&b.id, &later.id] {
        let now = store.lease_row(id).await.unwrap().unwrap();
        let revoked = LeaseRow {
            state: "revoked".into(),
            ..now.clone()
        };
        assert!(store.update_lease(now, revoked, None).await.unwrap());
    }
    assert!(!store.any_lease_due(Timestamp(20_000)).await.unwrap());
}

async fn futures_claims(store: &crate::Store) -> Vec<Vec<LeaseRow>> {
    let mut handles = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            store
                .claim_due_leases(Timestamp(5_000), 10_000, 10)
                .await
                .unwrap()
        }));
    }
    let mut all = Vec::new();
    for handle in handles {
        all.push(handle.await.unwrap());
    }
    all
}
