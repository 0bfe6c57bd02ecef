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
use crate::store::TokenInsert;
use crate::{Result, Store, StoreError};
use request::{check_request, lifetimes, ms_of};

mod lifetime;
pub(crate) mod record;
mod request;
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
    /// The networks it works from (CIDR blocks; empty: anywhere).
    pub bound_cidrs: Vec<String>,
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
    /// The networks it works from (empty: anywhere; a child of a bound token keeps its
    /// parent's when it names none).
    pub bound_cidrs: Vec<ipnet::IpNet>,
}

/// Whether `ip` is inside one of the stored CIDR blocks `cidrs`.
pub fn within(cidrs: &[String], ip: std::net::IpAddr) -> bool {
    // An IPv4 peer reached over an IPv6 socket (`::ffff:a.b.c.d`) is that IPv4 address.
    let ip = match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 @ std::net::IpAddr::V4(_) => v4,
    };
    cidrs
        .iter()
        .filter_map(|c| c.parse::<ipnet::IpNet>().ok())
        .any(|net| net.contains(&ip))
}

/// A cap on live tokens (Vault's lease-count quota): at most `max` live tokens issued
/// through `method` (every method when `None`) by `creator` (an auth method's
/// `path:role`; every creator when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCap {
    /// The quota's name, for the refusal and for metrics.
    pub name: String,
    /// The issuing method it counts (`token`, or an auth method's path).
    pub method: Option<String>,
    /// The creator it counts (`path:role` for a login role).
    pub creator: Option<String>,
    /// The most live tokens it allows.
    pub max: u64,
}

impl LiveCap {
    /// Whether a new token of `record` counts under this cap.
    pub(crate) fn applies_to(&self, record: &TokenRecord) -> bool {
        self.method.as_ref().is_none_or(|m| *m == record.method)
            && self.creator.as_ref().is_none_or(|c| *c == record.creator)
    }

    /// Whether the listed token `info` counts under this cap.
    pub fn counts(&self, info: &TokenInfo) -> bool {
        self.method.as_ref().is_none_or(|m| *m == info.method)
            && self.creator.as_ref().is_none_or(|c| *c == info.creator)
    }
}

/// The public accessor of the token with public id `id`: a hash of the id, so it names
/// the token without being usable as it (the token's secret is not derived from it).
pub fn accessor_of(id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"strongroom.token-accessor.v1\0");
    hasher.update(id.as_bytes());
    hex::encode(&hasher.finalize()[..12])
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
        self.create_within(request, parent, &[]).await
    }

    /// [`Tokens::create_with`], refused with [`StoreError::QuotaReached`] when one of
    /// `caps` that applies to the new token already counts `max` live tokens (counted in
    /// the creating transaction, under the audit log's lock).
    pub async fn create_within(
        &self,
        request: TokenRequest,
        parent: Option<&Principal>,
        caps: &[LiveCap],
    ) -> Result<(TokenInfo, SecretString)> {
        self.create_with_login(request, parent, caps, None)
            .await?
            .ok_or(StoreError::Defect(
                "a token made without a credential to spend found one spent",
            ))
    }

    /// [`Tokens::create_within`] for a login's token: the `login` event appended, the
    /// credential it spends (a single-use secret ID) spent and the token made in one
    /// transaction, so a refusal (a quota reached, a bad request) writes and spends
    /// nothing, and a crash can not leave a token without its login. `None`, nothing
    /// written, when the credential no longer held what was expected (spent by a racing
    /// login, or changed).
    ///
    /// # Errors
    /// As [`Tokens::create_within`].
    pub async fn create_for_login(
        &self,
        request: TokenRequest,
        parent: Option<&Principal>,
        caps: &[LiveCap],
        login: crate::Login,
    ) -> Result<Option<(TokenInfo, SecretString)>> {
        self.create_with_login(request, parent, caps, Some(login))
            .await
    }

    /// The creation both of the above run.
    async fn create_with_login(
        &self,
        request: TokenRequest,
        parent: Option<&Principal>,
        caps: &[LiveCap],
        login: Option<crate::Login>,
    ) -> Result<Option<(TokenInfo, SecretString)>> {
        check_request(&request)?;
        let store = self.keyed()?;
        let now = now_ms();
        let (ttl, max_ttl) = lifetimes(&request)?;
        let mut max_expires = max_ttl.map(|ms| Timestamp(now.saturating_add(ms)));
        let mut expires = ttl
            .map(|ms| Timestamp(now.saturating_add(ms)))
            .or(max_expires);
        let mut parent_id = None;
        let mut bound_cidrs: Vec<String> = request
            .bound_cidrs
            .iter()
            .map(|net| net.trunc().to_string())
            .collect();
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
                if bound_cidrs.is_empty() {
                    bound_cidrs = record.bound_cidrs;
                }
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
            bound_cidrs,
            tag: None,
        };
        let login = login.map(|login| store.prepare_login(login)).transpose()?;
        match store
            .insert_token_row(record.clone(), caps.to_vec(), login)
            .await?
        {
            TokenInsert::Inserted => Ok(Some((
                info_of(record, true),
                SecretString::from(format!("sr.{id}.{secret}")),
            ))),
            TokenInsert::CredentialChanged => Ok(None),
            TokenInsert::NameTaken => Err(StoreError::conflict(
                crate::ConflictKind::NameTaken,
                format!(
                    "a token named {:?} already exists (names are compared case-insensitively)",
                    record.name
                ),
            )),
        }
    }

    fn info(&self, record: TokenRecord) -> TokenInfo {
        let intact = self
            .store
            .as_ref()
            .is_some_and(|s| s.token_row_check(&record) == record::RowCheck::Intact);
        info_of(record, intact)
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
        self.authenticate_from(presented, None).await
    }

    /// [`Tokens::authenticate`] for a request from `peer`: a token bound to networks
    /// works only from a peer inside one of them (never when the peer is unknown), and a
    /// refused request spends none of its uses.
    pub async fn authenticate_from(
        &self,
        presented: &str,
        peer: Option<std::net::IpAddr>,
    ) -> Result<Option<Principal>> {
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
        if !record.bound_cidrs.is_empty() && !peer.is_some_and(|ip| within(&record.bound_cidrs, ip))
        {
            return Ok(None);
        }
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
        bound_cidrs: record.bound_cidrs,
        id: record.id,
        name: record.name,
        superuser: record.superuser,
        scopes: record.scopes,
        created: record.created,
        revoked: record.revoked,
        intact,
    }
}
