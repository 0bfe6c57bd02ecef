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
    /// The public handle that looks the token up or revokes it; never usable as the token.
    pub accessor: String,
    /// When it stops working (`None`: never).
    pub expires: Option<Timestamp>,
    /// The latest it may be renewed to (`None`: no limit).
    pub max_expires: Option<Timestamp>,
    /// Its period in seconds (what a renewal without an increment adds; 0: none).
    pub ttl_seconds: u64,
    /// Whether it may be renewed.
    pub renewable: bool,
    /// Uses it may make (0: unlimited).
    pub num_uses: u32,
    /// Uses left (`None`: unlimited).
    pub uses_left: Option<u32>,
    /// Who made it (`cli:USER`, `token:NAME`, an auth method's role).
    pub creator: String,
    /// How it was issued (`token`, or an auth method).
    pub method: String,
    /// The accessor of the token it was made under, if any.
    pub parent_accessor: Option<String>,
}

impl TokenInfo {
    /// Seconds until it expires at `now` (0 when it never does: Vault's `ttl` of a token
    /// without one).
    pub fn ttl_at(&self, now: Timestamp) -> u64 {
        self.expires.map_or(0, |at| {
            u64::try_from(at.unix_ms().saturating_sub(now.unix_ms()) / 1000).unwrap_or(0)
        })
    }

    /// Whether it works at `now`: not revoked, not expired, uses left.
    pub fn usable_at(&self, now: Timestamp) -> bool {
        self.revoked.is_none()
            && self.expires.is_none_or(|at| at > now)
            && self.uses_left != Some(0)
    }
}

/// What a new token may do and for how long.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    /// Its name (unique ignoring case; 1-64 of `A-Z a-z 0-9 _ . -`).
    pub name: String,
    /// A superuser (no scopes) or scoped (at least one scope).
    pub superuser: bool,
    /// What it reaches.
    pub scopes: Vec<Scope>,
    /// It expires this long after creation (`None`: at `max_ttl`, else never).
    pub ttl: Option<std::time::Duration>,
    /// No renewal takes it past this long after creation (`None`: no limit).
    pub max_ttl: Option<std::time::Duration>,
    /// Uses it may make (0: unlimited); each use is one more write.
    pub num_uses: u32,
    /// Whether it may be renewed (it then needs a `ttl`).
    pub renewable: bool,
    /// How it is issued (`token`, or an auth method's name).
    pub method: String,
}

/// The public accessor of the token with public id `id`: a hash of the id, so it names
/// the token without being usable as it (the token's secret is not derived from it).
pub fn accessor_of(id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"strongroom.token-accessor.v1\0");
    hasher.update(id.as_bytes());
    hex::encode(&hasher.finalize()[..12])
}

fn ms_of(duration: std::time::Duration) -> Result<i64> {
    i64::try_from(duration.as_millis())
        .ok()
        .filter(|ms| *ms > 0)
        .ok_or_else(|| StoreError::InvalidInput("a ttl must be longer than zero and finite".into()))
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

    /// Creates a token that never expires and returns it: the only time its secret is
    /// shown (see [`Tokens::create_with`]).
    ///
    /// # Errors
    /// As [`Tokens::create_with`].
    pub async fn create(
        &self,
        name: &str,
        superuser: bool,
        scopes: &[Scope],
    ) -> Result<(TokenInfo, SecretString)> {
        self.create_with(
            TokenRequest {
                name: name.to_owned(),
                superuser,
                scopes: scopes.to_vec(),
                ..TokenRequest::default()
            },
            None,
        )
        .await
    }

    /// Creates a token and returns it: the only time its secret is shown. Its row is
    /// tagged under the key and a `token_create` event is audited, in one transaction.
    /// Made under `parent` (a child token), it reaches nothing the parent does not, is a
    /// superuser only under a superuser, never outlives the parent, and is revoked with it.
    ///
    /// # Errors
    /// A malformed, reserved or taken name (names are unique case-insensitively), a
    /// superuser with scopes or a scoped token without any, a ttl over the max ttl, a
    /// renewable token without a ttl, a child wider than its parent, no keys.
    pub async fn create_with(
        &self,
        request: TokenRequest,
        parent: Option<&Principal>,
    ) -> Result<(TokenInfo, SecretString)> {
        check_request(&request)?;
        let store = self.keyed()?;
        let now = now_ms();
        let (ttl, max_ttl) = lifetimes(&request)?;
        let mut max_expires = max_ttl.map(|ms| Timestamp(now.saturating_add(ms)));
        let mut expires = ttl
            .map(|ms| Timestamp(now.saturating_add(ms)))
            .or(max_expires);
        let mut parent_id = None;
        if let Some(parent) = parent {
            if request.superuser && !parent.superuser {
                return Err(StoreError::InvalidInput(
                    "a child token can not be a superuser under a token that is not one".into(),
                ));
            }
            if let Some(wider) = request.scopes.iter().find(|s| !parent.covers(s)) {
                return Err(StoreError::InvalidInput(format!(
                    "scope {wider} reaches further than the token creating it"
                )));
            }
            // A child never outlives its parent.
            if let Some(id) = &parent.id {
                let record = self.backend.token_by_id(id).await?.ok_or_else(|| {
                    StoreError::TokenNotFound {
                        name: parent.name.clone(),
                    }
                })?;
                if let Some(end) = record.expires.into_iter().chain(record.max_expires).min() {
                    max_expires = Some(max_expires.map_or(end, |m| m.min(end)));
                    expires = Some(expires.map_or(end, |e| e.min(end)));
                }
                parent_id = Some(id.clone());
            }
        }
        let mut random = [0u8; 38];
        getrandom::getrandom(&mut random)
            .map_err(|_| StoreError::Crypto(strongroom_crypto::Error::Random))?;
        let id = hex::encode(&random[..6]);
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&random[6..]);
        let creator = store.actor_name().to_owned();
        let record = TokenRecord {
            id: id.clone(),
            name: request.name.clone(),
            secret_hash: sha256(secret.as_bytes()).to_vec(),
            superuser: request.superuser,
            scopes: request.scopes.iter().map(ToString::to_string).collect(),
            created: Timestamp(now),
            revoked: None,
            expires,
            max_expires,
            ttl_ms: ttl.unwrap_or(0),
            renewable: request.renewable,
            num_uses: request.num_uses,
            uses: 0,
            creator,
            method: if request.method.is_empty() {
                "token".to_owned()
            } else {
                request.method
            },
            parent: parent_id,
            tag: None,
        };
        if !store.insert_token_row(record.clone()).await? {
            return Err(StoreError::conflict(
                crate::ConflictKind::NameTaken,
                format!(
                    "a token named {:?} already exists (names are compared case-insensitively)",
                    record.name
                ),
            ));
        }
        Ok((
            info_of(record, true),
            SecretString::from(format!("sr.{id}.{secret}")),
        ))
    }

    /// The token `principal` authenticated as (`None` for the bootstrap admin token).
    ///
    /// # Errors
    /// When the database can not be read.
    pub async fn lookup_self(&self, principal: &Principal) -> Result<Option<TokenInfo>> {
        let Some(id) = &principal.id else {
            return Ok(None);
        };
        Ok(self.backend.token_by_id(id).await?.map(|r| self.info(r)))
    }

    /// The token with `accessor`, as `by` may see it: a superuser sees any, another token
    /// itself and those made under it. `None` for any other (no difference between "no such
    /// token" and "not yours").
    ///
    /// # Errors
    /// When the database can not be read.
    pub async fn lookup_accessor(
        &self,
        accessor: &str,
        by: &Principal,
    ) -> Result<Option<TokenInfo>> {
        Ok(self
            .record_by_accessor(accessor, by)
            .await?
            .map(|r| self.info(r)))
    }

    async fn record_by_accessor(
        &self,
        accessor: &str,
        by: &Principal,
    ) -> Result<Option<TokenRecord>> {
        let found = self
            .backend
            .tokens()
            .await?
            .into_iter()
            .find(|r| accessor_of(&r.id) == accessor);
        Ok(found.filter(|r| {
            by.superuser
                || by
                    .id
                    .as_ref()
                    .is_some_and(|id| *id == r.id || r.parent.as_ref() == Some(id))
        }))
    }

    fn info(&self, record: TokenRecord) -> TokenInfo {
        let intact = self
            .store
            .as_ref()
            .is_some_and(|s| s.token_row_check(&record) == record::RowCheck::Intact);
        info_of(record, intact)
    }

    /// Renews the token `principal` authenticated as: its expiry becomes now plus
    /// `increment` (else its own ttl), never past its max; audited as `token_renew`.
    /// Returns it as renewed.
    ///
    /// # Errors
    /// Not renewable (nothing moves), the bootstrap admin token, a concurrent change, no
    /// keys.
    pub async fn renew_self(
        &self,
        principal: &Principal,
        increment: Option<std::time::Duration>,
    ) -> Result<TokenInfo> {
        let record = match &principal.id {
            Some(id) => self.backend.token_by_id(id).await?,
            None => None,
        }
        .ok_or_else(|| {
            StoreError::InvalidInput(
                "this token has no row to renew (the bootstrap admin token)".into(),
            )
        })?;
        self.renew_record(record, increment).await
    }

    /// Renews the token with `accessor`, as `by` may (see [`Tokens::lookup_accessor`]).
    ///
    /// # Errors
    /// As [`Tokens::renew_self`]; [`StoreError::TokenNotFound`] when `by` may not see it.
    pub async fn renew_accessor(
        &self,
        accessor: &str,
        by: &Principal,
        increment: Option<std::time::Duration>,
    ) -> Result<TokenInfo> {
        let record = self
            .record_by_accessor(accessor, by)
            .await?
            .ok_or_else(|| StoreError::TokenNotFound {
                name: accessor.to_owned(),
            })?;
        self.renew_record(record, increment).await
    }

    async fn renew_record(
        &self,
        record: TokenRecord,
        increment: Option<std::time::Duration>,
    ) -> Result<TokenInfo> {
        let store = self.keyed()?;
        let now = now_ms();
        let info = self.info(record.clone());
        if !info.usable_at(Timestamp(now)) || !info.intact {
            return Err(StoreError::TokenNotFound { name: record.name });
        }
        if !record.renewable {
            return Err(StoreError::InvalidInput(
                "this token is not renewable; nothing was changed".into(),
            ));
        }
        let period = match increment {
            Some(increment) => ms_of(increment)?,
            None => record.ttl_ms,
        };
        let mut expires = Timestamp(now.saturating_add(period));
        if let Some(max) = record.max_expires {
            expires = expires.min(max);
        }
        let renewed = TokenRecord {
            expires: Some(expires),
            ..record.clone()
        };
        if !store
            .rewrite_token_rows(
                vec![(record, renewed.clone())],
                Some(crate::Action::TokenRenew),
            )
            .await?
        {
            return Err(StoreError::conflict(
                crate::ConflictKind::ChangedMeanwhile,
                "the token changed meanwhile; nothing was renewed, try again",
            ));
        }
        Ok(info_of(renewed, true))
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
            .map(|record| self.info(record))
            .collect())
    }

    /// Revokes the active token named `name` (an exact match first, else the one name
    /// equal to it ignoring ASCII case), and every token made under it; they stop working
    /// at once. Audited, one `token_revoke` each.
    ///
    /// # Errors
    /// [`StoreError::TokenNotFound`] when no active token has that name; no keys.
    pub async fn revoke(&self, name: &str) -> Result<()> {
        let all = self.backend.tokens().await?;
        let active: Vec<&TokenRecord> = all
            .iter()
            .filter(|t| t.revoked.is_none() && t.name.eq_ignore_ascii_case(name))
            .collect();
        let target = match active.iter().position(|t| t.name == name) {
            Some(exact) => Some(active[exact].clone()),
            None if active.len() == 1 => Some(active[0].clone()),
            None => None,
        };
        let revoked = match target {
            Some(record) => self.revoke_with_children(record, &all).await?,
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

    /// Revokes the token with `accessor` and the tokens made under it, as `by` may (a
    /// superuser any; another token those made under it).
    ///
    /// # Errors
    /// [`StoreError::TokenNotFound`] when there is none `by` may see, or it is revoked.
    pub async fn revoke_accessor(&self, accessor: &str, by: &Principal) -> Result<()> {
        let all = self.backend.tokens().await?;
        let revoked = match self.record_by_accessor(accessor, by).await? {
            Some(record) if record.revoked.is_none() => {
                self.revoke_with_children(record, &all).await?
            }
            _ => false,
        };
        if revoked {
            Ok(())
        } else {
            Err(StoreError::TokenNotFound {
                name: accessor.to_owned(),
            })
        }
    }

    /// Revokes every active token issued by the auth method at `method` (the method was
    /// disabled), with the tokens made under them. Returns how many it revoked.
    ///
    /// # Errors
    /// No keys; the database failing.
    pub async fn revoke_issued_by(&self, method: &str) -> Result<usize> {
        let mut revoked = 0;
        // One token (and its descendants) at a time, on a fresh read each time: a
        // descendant revoked with an earlier one is not revoked twice.
        for _ in 0..100_000 {
            let all = self.backend.tokens().await?;
            let Some(record) = all
                .iter()
                .find(|r| r.method == method && r.revoked.is_none())
                .cloned()
            else {
                break;
            };
            if self.revoke_with_children(record, &all).await? {
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// Revokes the token `principal` authenticated as, and the tokens made under it.
    ///
    /// # Errors
    /// [`StoreError::TokenNotFound`] for the bootstrap admin token (no row) or a token
    /// revoked meanwhile; no keys.
    pub async fn revoke_self(&self, principal: &Principal) -> Result<()> {
        let all = self.backend.tokens().await?;
        let record = all
            .iter()
            .find(|r| Some(&r.id) == principal.id.as_ref() && r.revoked.is_none())
            .cloned();
        let revoked = match record {
            Some(record) => self.revoke_with_children(record, &all).await?,
            None => false,
        };
        if revoked {
            Ok(())
        } else {
            Err(StoreError::TokenNotFound {
                name: principal.name.clone(),
            })
        }
    }

    /// Revokes `record` and every active token made under it (at any depth), in one
    /// transaction; false when one changed meanwhile (nothing is revoked then).
    async fn revoke_with_children(&self, record: TokenRecord, all: &[TokenRecord]) -> Result<bool> {
        let store = self.keyed()?;
        let now = Some(Timestamp(now_ms()));
        let mut doomed = vec![record];
        let mut next = 0;
        while next < doomed.len() {
            let id = doomed[next].id.clone();
            let children: Vec<TokenRecord> = all
                .iter()
                .filter(|r| r.parent.as_deref() == Some(id.as_str()) && r.revoked.is_none())
                .filter(|r| !doomed.iter().any(|d| d.id == r.id))
                .cloned()
                .collect();
            doomed.extend(children);
            next += 1;
        }
        let rows = doomed
            .into_iter()
            .map(|old| {
                let new = TokenRecord {
                    revoked: now,
                    ..old.clone()
                };
                (old, new)
            })
            .collect();
        store
            .rewrite_token_rows(rows, Some(crate::Action::TokenRevoke))
            .await
    }

    /// The stored token a presented bearer token is, when it works (known, intact, not
    /// revoked, expired or used up), without spending one of its uses: for looking a
    /// token up by the token itself. `None` for the bootstrap admin token.
    ///
    /// # Errors
    /// When the database can not be read.
    pub async fn peek(&self, presented: &str) -> Result<Option<TokenInfo>> {
        Ok(self
            .verified(presented)
            .await?
            .filter(|r| r.num_uses == 0 || r.uses < r.num_uses)
            .map(|r| info_of(r, true)))
    }

    /// The row a presented `sr.` token is, when its secret matches (constant time), its
    /// tag is intact, and it is neither revoked nor expired.
    async fn verified(&self, presented: &str) -> Result<Option<TokenRecord>> {
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
        // Expired: refused as an unknown token is.
        if record.expires.is_some_and(|at| at <= Timestamp(now_ms())) {
            return Ok(None);
        }
        Ok(Some(record))
    }

    /// The principal a presented bearer token stands for, or `None`: unknown, revoked,
    /// expired, used up, or a row whose keyed tag does not match (`doctor` names such
    /// rows). Comparisons of the secret are constant-time. A token with a use count
    /// spends one use here (one write).
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Principal>> {
        if let Some(admin) = &self.admin_hash {
            if bool::from(sha256(presented.as_bytes()).ct_eq(admin)) {
                return Ok(Some(Principal {
                    id: None,
                    name: "admin".into(),
                    superuser: true,
                    scopes: Vec::new(),
                }));
            }
        }
        let Some(record) = self.verified(presented).await? else {
            return Ok(None);
        };
        if let Some(store) = &self.store {
            if record.num_uses > 0 && !self.spend_use(store, record.clone()).await? {
                return Ok(None);
            }
        }
        let scopes = record
            .scopes
            .iter()
            .filter_map(|s| Scope::parse(s).ok())
            .collect();
        Ok(Some(Principal {
            id: Some(record.id),
            name: record.name,
            superuser: record.superuser,
            scopes,
        }))
    }
}

impl Tokens {
    /// Counts one use of a limited token (a compare-and-swap on its use count, so two
    /// requests racing for its last use do not both get it); false when none is left.
    async fn spend_use(&self, store: &Store, mut record: TokenRecord) -> Result<bool> {
        for _ in 0..3 {
            if record.uses >= record.num_uses || record.revoked.is_some() {
                return Ok(false);
            }
            let spent = TokenRecord {
                uses: record.uses + 1,
                ..record.clone()
            };
            if store
                .rewrite_token_rows(vec![(record.clone(), spent)], None)
                .await?
            {
                return Ok(true);
            }
            // Changed meanwhile (another use, a renewal): read it again.
            match self.backend.token_by_id(&record.id).await? {
                Some(fresh) if store.token_row_check(&fresh) == record::RowCheck::Intact => {
                    record = fresh;
                }
                _ => return Ok(false),
            }
        }
        Ok(false)
    }
}

/// The name and scope rules of a new token.
fn check_request(request: &TokenRequest) -> Result<()> {
    let name = request.name.as_str();
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
    if request.superuser != request.scopes.is_empty() {
        return Err(StoreError::InvalidInput(
            "a token is either --superuser or has at least one --scope".into(),
        ));
    }
    Ok(())
}

/// A new token's ttl and max ttl in ms, checked against each other.
fn lifetimes(request: &TokenRequest) -> Result<(Option<i64>, Option<i64>)> {
    let ttl = request.ttl.map(ms_of).transpose()?;
    let max_ttl = request.max_ttl.map(ms_of).transpose()?;
    if let (Some(ttl), Some(max)) = (ttl, max_ttl) {
        if ttl > max {
            return Err(StoreError::InvalidInput(
                "the ttl is longer than the max ttl".into(),
            ));
        }
    }
    if request.renewable && ttl.is_none() {
        return Err(StoreError::InvalidInput(
            "a renewable token needs a ttl (renewal extends it by its ttl)".into(),
        ));
    }
    Ok((ttl, max_ttl))
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn info_of(record: TokenRecord, intact: bool) -> TokenInfo {
    TokenInfo {
        accessor: accessor_of(&record.id),
        expires: record.expires,
        max_expires: record.max_expires,
        ttl_seconds: u64::try_from(record.ttl_ms / 1000).unwrap_or(0),
        renewable: record.renewable,
        num_uses: record.num_uses,
        uses_left: (record.num_uses > 0).then(|| record.num_uses.saturating_sub(record.uses)),
        creator: record.creator,
        method: record.method,
        parent_accessor: record.parent.as_deref().map(accessor_of),
        id: record.id,
        name: record.name,
        superuser: record.superuser,
        scopes: record.scopes,
        created: record.created,
        revoked: record.revoked,
        intact,
    }
}
