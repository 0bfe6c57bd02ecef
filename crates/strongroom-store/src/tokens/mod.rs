//! API tokens: created once, stored hashed, checked in constant time, revoked at once,
//! and every row authenticated under the key.
//!
//! A token reads `sr.<id>.<secret>`: `id` is 12 public hex characters used to find the
//! row; `secret` is 32 random bytes (base64url). The database keeps SHA-256(secret) only —
//! the secret has 256 bits of entropy, so a slow password hash adds nothing. Every request
//! looks the token up again, so a revocation takes effect at once in every process that
//! shares the database.
//!
//! Every row carries a keyed tag over all its fields (docs/format.md, "Token rows"): anyone who can write
//! the database but lacks the key can not mint a token, widen one, make one a superuser or
//! revive a revoked one; such a row is refused like an unknown token. So tokens are
//! checked with the store's keys ([`Tokens::new`]); without keys only the bootstrap
//! admin token works ([`Tokens::admin_only`]).

use std::sync::Arc;

use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use strongroom_crypto::secrecy::{ExposeSecret as _, SecretString};
use subtle::ConstantTimeEq as _;

use crate::backend::{Backend, TokenRecord};
use crate::model::{now_ms, Timestamp};
use crate::{Result, Store, StoreError};

pub(crate) mod record;
mod scope;

pub use scope::{Capabilities, Capability, Principal, Scope};

/// A token as listed: never its secret.
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    /// Public id.
    pub id: String,
    /// Name (unique, compared case-insensitively).
    pub name: String,
    /// Superuser or scoped.
    pub superuser: bool,
    /// Scopes, `namespace/env[:caps]`.
    pub scopes: Vec<String>,
    /// Created.
    pub created: Timestamp,
    /// Revoked, if it was.
    pub revoked: Option<Timestamp>,
    /// Whether the row's keyed tag matches (false: the row is refused; `doctor` says why).
    /// Always false when listed without keys.
    pub intact: bool,
}

/// Token management and authentication.
#[derive(Clone)]
pub struct Tokens {
    backend: Arc<dyn Backend>,
    admin_hash: Option<[u8; 32]>,
    /// The store whose keys authenticate token rows (and whose audit log records token
    /// events); without one, stored tokens are refused.
    store: Option<Store>,
}

impl core::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tokens")
            .field("admin_token", &self.admin_hash.map(|_| "[REDACTED]"))
            .field("keyed", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

/// Token names that would pose as other actors in the audit log.
pub const RESERVED_NAMES: &[&str] = &["admin", "cli", "library"];

/// Shortest accepted `STRONGROOM_ADMIN_TOKEN`.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

fn admin_hash(admin_token: Option<&SecretString>) -> Result<Option<[u8; 32]>> {
    match admin_token {
        Some(token) if token.expose_secret().len() < MIN_ADMIN_TOKEN_LEN => {
            Err(StoreError::Config(format!(
                "STRONGROOM_ADMIN_TOKEN: expected at least {MIN_ADMIN_TOKEN_LEN} characters"
            )))
        }
        Some(token) => Ok(Some(sha256(token.expose_secret().as_bytes()))),
        None => Ok(None),
    }
}

impl Tokens {
    /// Tokens stored in `store`'s database, authenticated under its keys, plus an optional
    /// bootstrap superuser token (named `admin`, from `STRONGROOM_ADMIN_TOKEN`). Token
    /// events are audited as the store's actor ([`Tokens::with_actor`]).
    ///
    /// # Errors
    /// An admin token shorter than [`MIN_ADMIN_TOKEN_LEN`].
    pub fn new(store: &Store, admin_token: Option<&SecretString>) -> Result<Self> {
        Ok(Self {
            backend: store.backend_handle(),
            admin_hash: admin_hash(admin_token)?,
            store: Some(store.clone()),
        })
    }

    /// Without keys: only the bootstrap admin token authenticates; every stored token is
    /// refused (its row can not be checked) and creating or revoking one is an error.
    ///
    /// # Errors
    /// An admin token shorter than [`MIN_ADMIN_TOKEN_LEN`].
    pub fn admin_only(
        backend: Arc<dyn Backend>,
        admin_token: Option<&SecretString>,
    ) -> Result<Self> {
        Ok(Self {
            backend,
            admin_hash: admin_hash(admin_token)?,
            store: None,
        })
    }

    /// The same tokens, recording `actor` in the audit events of token writes.
    #[must_use]
    pub fn with_actor(&self, actor: &str) -> Self {
        Self {
            store: self.store.as_ref().map(|s| s.with_actor(actor)),
            ..self.clone()
        }
    }

    fn keyed(&self) -> Result<&Store> {
        self.store.as_ref().ok_or_else(crate::store::keyless)
    }

    /// Creates a token and returns it: the only time its secret is shown. Its row is
    /// tagged under the key and a `token_create` event is audited, in one transaction.
    ///
    /// # Errors
    /// A malformed, reserved or taken name (names are unique case-insensitively), a
    /// superuser with scopes or a scoped token without any, no keys.
    pub async fn create(
        &self,
        name: &str,
        superuser: bool,
        scopes: &[Scope],
    ) -> Result<(TokenInfo, SecretString)> {
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        {
            return Err(StoreError::InvalidInput(
                "token name: expected 1-64 characters of A-Z a-z 0-9 _ . -".into(),
            ));
        }
        if RESERVED_NAMES.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(StoreError::InvalidInput(format!(
                "token name {name:?} is reserved (admin is STRONGROOM_ADMIN_TOKEN; cli and \
                 library are audit actors of their own)"
            )));
        }
        if superuser != scopes.is_empty() {
            return Err(StoreError::InvalidInput(
                "a token is either --superuser or has at least one --scope".into(),
            ));
        }
        let store = self.keyed()?;
        let mut random = [0u8; 38];
        getrandom::getrandom(&mut random)
            .map_err(|_| StoreError::Crypto(strongroom_crypto::Error::Random))?;
        let id = hex::encode(&random[..6]);
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&random[6..]);
        let record = TokenRecord {
            id: id.clone(),
            name: name.to_owned(),
            secret_hash: sha256(secret.as_bytes()).to_vec(),
            superuser,
            scopes: scopes.iter().map(ToString::to_string).collect(),
            created: Timestamp(now_ms()),
            revoked: None,
            tag: None,
        };
        if !store.insert_token_row(record.clone()).await? {
            return Err(StoreError::conflict(
                crate::ConflictKind::NameTaken,
                format!(
                    "a token named {name:?} already exists (names are compared case-insensitively)"
                ),
            ));
        }
        Ok((
            info_of(record, true),
            SecretString::from(format!("sr.{id}.{secret}")),
        ))
    }

    /// One round trip to the database (readiness).
    pub async fn ping(&self) -> Result<()> {
        self.backend.ping().await
    }

    /// Every token, revoked ones included, each with whether its row is intact.
    pub async fn list(&self) -> Result<Vec<TokenInfo>> {
        Ok(self
            .backend
            .tokens()
            .await?
            .into_iter()
            .map(|record| {
                let intact = self
                    .store
                    .as_ref()
                    .is_some_and(|s| s.token_row_check(&record) == record::RowCheck::Intact);
                info_of(record, intact)
            })
            .collect())
    }

    /// Revokes the active token named `name` (an exact match first, else the one name
    /// equal to it ignoring ASCII case); it stops working at once. Audited.
    ///
    /// # Errors
    /// [`StoreError::TokenNotFound`] when no active token has that name; no keys.
    pub async fn revoke(&self, name: &str) -> Result<()> {
        let store = self.keyed()?;
        let active: Vec<TokenRecord> = self
            .backend
            .tokens()
            .await?
            .into_iter()
            .filter(|t| t.revoked.is_none() && t.name.eq_ignore_ascii_case(name))
            .collect();
        let target = match active.iter().position(|t| t.name == name) {
            Some(exact) => Some(active[exact].clone()),
            None if active.len() == 1 => active.into_iter().next(),
            None => None,
        };
        let revoked = match target {
            Some(record) => store.revoke_token_row(record, now_ms()).await?,
            None => false,
        };
        if revoked {
            Ok(())
        } else {
            Err(StoreError::TokenNotFound {
                name: name.to_owned(),
            })
        }
    }

    /// The principal a presented bearer token stands for, or `None`: unknown, revoked,
    /// or a row whose keyed tag does not match (`doctor` names such rows).
    /// Comparisons of the secret are constant-time.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Principal>> {
        if let Some(admin) = &self.admin_hash {
            if bool::from(sha256(presented.as_bytes()).ct_eq(admin)) {
                return Ok(Some(Principal {
                    name: "admin".into(),
                    superuser: true,
                    scopes: Vec::new(),
                }));
            }
        }
        let mut parts = presented.splitn(3, '.');
        let (Some("sr"), Some(id), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let Some(record) = self.backend.token_by_id(id).await? else {
            return Ok(None);
        };
        let matches: bool = sha256(secret.as_bytes())
            .ct_eq(record.secret_hash.as_slice())
            .into();
        if !matches || record.revoked.is_some() {
            return Ok(None);
        }
        if store.token_row_check(&record) != record::RowCheck::Intact {
            return Ok(None);
        }
        let scopes = record
            .scopes
            .iter()
            .filter_map(|s| Scope::parse(s).ok())
            .collect();
        Ok(Some(Principal {
            name: record.name,
            superuser: record.superuser,
            scopes,
        }))
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn info_of(record: TokenRecord, intact: bool) -> TokenInfo {
    TokenInfo {
        id: record.id,
        name: record.name,
        superuser: record.superuser,
        scopes: record.scopes,
        created: record.created,
        revoked: record.revoked,
        intact,
    }
}
