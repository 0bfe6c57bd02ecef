//! Logins: a login that spends a credential writes it, its `login` event and its token
//! in one transaction, or nothing.

use super::tokens::request;
use super::{open, Harness};
use crate::tokens::Tokens;
use crate::StoreError;

/// Attack: a login that spends a credential (a single-use secret id, kept in a sealed
/// setting) and is then refused its token (a quota reached) must not have spent it; a
/// credential spent meanwhile makes no token and writes nothing. A login's event is one
/// commit with its token.
pub async fn a_login_refused_its_token_spends_nothing(h: &dyn Harness) {
    use crate::tokens::{LiveCap, TokenRequest};
    use crate::{CredentialSpend, Login};
    use strongroom_crypto::secrecy::ExposeSecret as _;
    let store = open(h).await;
    let tokens = Tokens::new(&store, None).unwrap().with_actor("approle:ci");
    let cap = [LiveCap {
        name: "one".into(),
        method: Some("approle".into()),
        creator: Some("approle:ci".into()),
        max: 1,
    }];
    let make = |name: &str| TokenRequest {
        method: "approle".into(),
        ..request(name, "default/dev:read")
    };
    let spend = || Login {
        method: "approle".into(),
        role: "ci".into(),
        spend: Some(CredentialSpend {
            setting: "auth/approle/secret-id/x".into(),
            expected: b"uses=1".to_vec().into(),
            replacement: None,
        }),
    };
    let held = |store: crate::Store| async move {
        store
            .sealed_setting("auth/approle/secret-id/x")
            .await
            .unwrap()
            .map(|v| v.expose_secret().to_vec())
    };
    store
        .set_sealed_setting("auth/approle/secret-id/x", Some(b"uses=1"))
        .await
        .unwrap();
    let (first, _) = tokens
        .create_within(make("holder"), None, &cap)
        .await
        .unwrap();
    let logins = |store: crate::Store| async move {
        store
            .audit_all(crate::AuditQuery::default())
            .await
            .unwrap()
            .iter()
            .filter(|e| e.action == crate::Action::Login)
            .count()
    };
    // Refused by the cap, twice: the credential still holds its one use, no login event.
    for _ in 0..2 {
        assert!(matches!(
            tokens
                .create_for_login(make("refused"), None, &cap, spend())
                .await,
            Err(StoreError::QuotaReached { max: 1, .. })
        ));
        assert_eq!(held(store.clone()).await.as_deref(), Some(&b"uses=1"[..]));
    }
    assert_eq!(logins(store.clone()).await, 0);
    // A place frees: the login spends the use and gets its token, with its login event.
    tokens.revoke(&first.name).await.unwrap();
    let login = tokens
        .create_for_login(make("spender"), None, &cap, spend())
        .await
        .unwrap();
    assert!(login.is_some());
    assert_eq!(held(store.clone()).await, None, "the use was spent");
    assert_eq!(logins(store.clone()).await, 1);
    // Spent: the next login makes nothing and writes nothing.
    tokens.revoke("spender").await.unwrap();
    let before = tokens.list().await.unwrap().len();
    let again = tokens
        .create_for_login(make("again"), None, &cap, spend())
        .await
        .unwrap();
    assert!(again.is_none());
    assert_eq!(tokens.list().await.unwrap().len(), before);
    assert_eq!(logins(store.clone()).await, 1);
    // A login that spends nothing (jwt, kubernetes): its event and its token, one commit.
    let commits = store.stats().group_commits;
    let plain = Login {
        method: "jwt".into(),
        role: "deploy".into(),
        spend: None,
    };
    let issued = tokens
        .create_for_login(make("jwt-login"), None, &[], plain)
        .await
        .unwrap();
    assert!(issued.is_some());
    assert_eq!(store.stats().group_commits - commits, 1);
    assert_eq!(logins(store.clone()).await, 2);
}
