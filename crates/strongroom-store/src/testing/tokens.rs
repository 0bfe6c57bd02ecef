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
        ..TokenRecord::default()
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

/// A token request with a name and space-separated scopes.
pub(super) fn request(name: &str, scopes: &str) -> crate::tokens::TokenRequest {
    crate::tokens::TokenRequest {
        name: name.into(),
        scopes: scopes
            .split(' ')
            .map(|s| Scope::parse(s).unwrap())
            .collect(),
        ..crate::tokens::TokenRequest::default()
    }
}

pub async fn tokens_expire_and_run_out_of_uses(h: &dyn Harness) {
    use crate::tokens::TokenRequest;
    use std::time::Duration;
    let store = open(h).await;
    let tokens = Tokens::new(&store, None).unwrap().with_actor("cli:tester");
    let works = |token: &str| {
        let (tokens, token) = (tokens.clone(), token.to_owned());
        async move { tokens.authenticate(&token).await.unwrap().is_some() }
    };

    // Expiry: works, then is refused like an unknown token.
    let (short_info, short) = tokens
        .create_with(
            TokenRequest {
                ttl: Some(Duration::from_millis(1500)),
                ..request("short", "default/dev:read")
            },
            None,
        )
        .await
        .unwrap();
    assert!(short_info.expires.is_some());
    assert_eq!(
        (short_info.creator.as_str(), short_info.method.as_str()),
        ("cli:tester", "token")
    );
    assert!(works(short.expose_secret()).await);
    // The accessor names the token and is never usable as it.
    assert!(!works(&short_info.accessor).await);
    assert!(!works(&format!("sr.{}.x", short_info.accessor)).await);
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert!(!works(short.expose_secret()).await, "expired");

    // Uses: counted in the row; the third use is refused.
    let (_, twice) = tokens
        .create_with(
            TokenRequest {
                num_uses: 2,
                ..request("twice", "default/dev:read")
            },
            None,
        )
        .await
        .unwrap();
    assert!(works(twice.expose_secret()).await);
    assert!(works(twice.expose_secret()).await);
    assert!(!works(twice.expose_secret()).await, "used up");
    let listed = tokens.list().await.unwrap();
    let twice_info = listed.iter().find(|t| t.name == "twice").unwrap();
    assert_eq!((twice_info.num_uses, twice_info.uses_left), (2, Some(0)));

    // A ttl over the max, a renewable token without a ttl: refused.
    for bad in [
        TokenRequest {
            ttl: Some(Duration::from_secs(7200)),
            max_ttl: Some(Duration::from_secs(3600)),
            ..request("bad1", "default/dev:read")
        },
        TokenRequest {
            renewable: true,
            ..request("bad2", "default/dev:read")
        },
    ] {
        assert!(matches!(
            tokens.create_with(bad, None).await,
            Err(StoreError::InvalidInput(_))
        ));
    }
}

pub async fn child_tokens_stay_within_their_parent_and_are_revoked_with_it(h: &dyn Harness) {
    use crate::tokens::TokenRequest;
    use std::time::Duration;
    let store = open(h).await;
    let tokens = Tokens::new(&store, None).unwrap().with_actor("cli:tester");
    let works = |token: &str| {
        let (tokens, token) = (tokens.clone(), token.to_owned());
        async move { tokens.authenticate(&token).await.unwrap().is_some() }
    };
    // Children: within the parent's scopes, never a superuser under a scoped parent,
    // never outliving it.
    let (parent_info, parent) = tokens
        .create_with(
            TokenRequest {
                ttl: Some(Duration::from_secs(3600)),
                max_ttl: Some(Duration::from_secs(7200)),
                renewable: true,
                ..request("parent", "default/*:read,list")
            },
            None,
        )
        .await
        .unwrap();
    let parent = tokens
        .authenticate(parent.expose_secret())
        .await
        .unwrap()
        .unwrap();
    for wider in [
        request("wider1", "default/dev:read,write"),
        request("wider2", "other/dev:read"),
        request("wider3", "*/dev:read"),
        TokenRequest {
            name: "wider4".into(),
            superuser: true,
            ..TokenRequest::default()
        },
    ] {
        let name = wider.name.clone();
        assert!(
            matches!(
                tokens.create_with(wider, Some(&parent)).await,
                Err(StoreError::InvalidInput(_))
            ),
            "{name} must be refused"
        );
    }
    let (child_info, child) = tokens
        .create_with(
            TokenRequest {
                ttl: Some(Duration::from_secs(36_000)),
                ..request("child", "default/dev:read")
            },
            Some(&parent),
        )
        .await
        .unwrap();
    assert!(
        child_info.expires <= parent_info.max_expires,
        "capped by the parent"
    );
    assert_eq!(
        child_info.parent_accessor.as_deref(),
        Some(parent_info.accessor.as_str())
    );
    let child = tokens
        .authenticate(child.expose_secret())
        .await
        .unwrap()
        .unwrap();
    let (_, grandchild) = tokens
        .create_with(request("grandchild", "default/dev:read"), Some(&child))
        .await
        .unwrap();
    assert!(works(grandchild.expose_secret()).await);

    // By accessor: a token sees those made under it; nobody else's.
    assert!(tokens
        .lookup_accessor(&child_info.accessor, &parent)
        .await
        .unwrap()
        .is_some());
    assert!(tokens
        .lookup_accessor(&parent_info.accessor, &child)
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        tokens.revoke_accessor(&parent_info.accessor, &child).await,
        Err(StoreError::TokenNotFound { .. })
    ));

    // Renewal: capped at the max; a token that is not renewable moves nothing.
    let renewed = tokens
        .renew_self(&parent, Some(Duration::from_secs(36_000)))
        .await
        .unwrap();
    assert_eq!(renewed.expires, parent_info.max_expires);
    assert!(matches!(
        tokens.renew_self(&child, None).await,
        Err(StoreError::InvalidInput(_))
    ));

    // Revoking the parent revokes what was made under it, at any depth.
    tokens.revoke("parent").await.unwrap();
    assert!(
        !works(grandchild.expose_secret()).await,
        "grandchild revoked with its parent"
    );
    let revoked = token_events(&store, Action::TokenRevoke).await;
    for name in ["parent", "child", "grandchild"] {
        assert!(
            revoked.iter().any(|n| n == name),
            "{name} revoked, audited: {revoked:?}"
        );
    }
    assert_eq!(token_events(&store, Action::TokenRenew).await, ["parent"]);
}

pub async fn a_token_identity_edited_without_the_key_is_refused(h: &dyn Harness) {
    use crate::tokens::TokenRequest;
    use std::time::Duration;
    let store = open(h).await;
    let tokens = Tokens::new(&store, None).unwrap().with_actor("cli:tester");
    let works = |token: &str| {
        let (tokens, token) = (tokens.clone(), token.to_owned());
        async move { tokens.authenticate(&token).await.unwrap().is_some() }
    };
    // A database writer without the key clears an expiry or a use count: refused.
    let (_, edited) = tokens
        .create_with(
            TokenRequest {
                name: "edited".into(),
                scopes: vec![Scope::parse("default/dev:read").unwrap()],
                ttl: Some(Duration::from_secs(3600)),
                num_uses: 5,
                ..TokenRequest::default()
            },
            None,
        )
        .await
        .unwrap();
    assert!(works(edited.expose_secret()).await);
    let backend = h.backend().await;
    let row = backend
        .tokens()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.name == "edited")
        .unwrap();
    for forged in [
        TokenRecord {
            expires: None,
            ..row.clone()
        },
        TokenRecord {
            uses: 0,
            ..row.clone()
        },
        TokenRecord {
            expires: None,
            max_expires: None,
            ttl_ms: 0,
            num_uses: 0,
            uses: 0,
            creator: String::new(),
            method: String::new(),
            ..row.clone()
        },
    ] {
        let (old, new) = (
            backend
                .tokens()
                .await
                .unwrap()
                .into_iter()
                .find(|r| r.name == "edited")
                .unwrap(),
            forged,
        );
        let written = crate::store::in_transaction(backend.as_ref(), move |tx| {
            Box::pin(async move { tx.update_token(&old, &new).await })
        })
        .await
        .unwrap();
        assert!(written);
        assert!(
            !works(edited.expose_secret()).await,
            "a row edited without the key"
        );
    }
}

pub async fn sealed_settings_written_without_the_key_are_refused(h: &dyn Harness) {
    use strongroom_crypto::secrecy::ExposeSecret as _;
    let store = open(h).await.with_actor("cli:tester");
    store
        .set_sealed_setting("auth/jwt", Some(br#"{"roles":{}}"#))
        .await
        .unwrap();
    let read = store.sealed_setting("auth/jwt").await.unwrap().unwrap();
    assert_eq!(read.expose_secret(), br#"{"roles":{}}"#);
    assert_eq!(token_events(&store, Action::AuthConfig).await, ["auth/jwt"]);
    // The stored form holds no plaintext.
    let backend = h.backend().await;
    let stored = backend.meta("sealed:auth/jwt").await.unwrap().unwrap();
    assert!(!stored.contains("roles"));
    // A database writer without the key: a value of its own, or one moved from another
    // name, is refused (never honoured).
    store
        .set_sealed_setting("auth/other", Some(br#"{"roles":{"x":{}}}"#))
        .await
        .unwrap();
    let moved = backend.meta("sealed:auth/other").await.unwrap().unwrap();
    for forged in [
        "AQAAAAE=".to_owned(),
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            b"{\"roles\":{\"evil\":{}}}",
        ),
        moved,
    ] {
        crate::store::in_transaction(backend.as_ref(), move |tx| {
            Box::pin(async move { tx.set_meta("sealed:auth/jwt", Some(&forged)).await })
        })
        .await
        .unwrap();
        assert!(matches!(
            store.sealed_setting("auth/jwt").await,
            Err(StoreError::Integrity(_))
        ));
    }
    // Removing it is audited too.
    store.set_sealed_setting("auth/jwt", None).await.unwrap();
    assert!(store.sealed_setting("auth/jwt").await.unwrap().is_none());
}

pub async fn live_token_caps_count_in_the_creating_transaction(h: &dyn Harness) {
    use crate::tokens::{LiveCap, TokenRequest};
    let store = open(h).await;
    let tokens = Tokens::new(&store, None).unwrap().with_actor("approle:ci");
    let cap = |method: Option<&str>, creator: Option<&str>, max| LiveCap {
        name: "cap".into(),
        method: method.map(str::to_owned),
        creator: creator.map(str::to_owned),
        max,
    };
    let make = |name: &str, method: &str| TokenRequest {
        method: method.into(),
        ..request(name, "default/dev:read")
    };
    let role_cap = [cap(Some("approle"), Some("approle:ci"), 2)];
    let (first, _) = tokens
        .create_within(make("a1", "approle"), None, &role_cap)
        .await
        .unwrap();
    tokens
        .create_within(make("a2", "approle"), None, &role_cap)
        .await
        .unwrap();
    // The third is refused and writes nothing.
    let before = tokens.list().await.unwrap().len();
    assert!(matches!(
        tokens
            .create_within(make("a3", "approle"), None, &role_cap)
            .await,
        Err(StoreError::QuotaReached { max: 2, .. })
    ));
    assert_eq!(tokens.list().await.unwrap().len(), before);
    // Another method is not counted by this cap; a global one counts every token.
    tokens
        .create_within(make("j1", "jwt"), None, &role_cap)
        .await
        .unwrap();
    assert!(matches!(
        tokens
            .create_within(make("j2", "jwt"), None, &[cap(None, None, 3)])
            .await,
        Err(StoreError::QuotaReached { .. })
    ));
    // An ended token frees its place.
    tokens.revoke(&first.name).await.unwrap();
    tokens
        .create_within(make("a3", "approle"), None, &role_cap)
        .await
        .unwrap();
}
