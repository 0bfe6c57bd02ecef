//! API tokens: created once, stored hashed, checked in constant time, revoked at once.
//!
//! A token reads `sr.<id>.<secret>`: `id` is 12 public hex characters used to find the
//! row; `secret` is 32 random bytes (base64url). The database keeps SHA-256(secret) only —
//! the secret has 256 bits of entropy, so a slow password hash adds nothing. Every request
//! looks the token up again, so a revocation takes effect at once in every process that
//! shares the database.

use std::sync::Arc;

use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use strongroom_crypto::secrecy::{ExposeSecret as _, SecretString};
use subtle::ConstantTimeEq as _;

use crate::backend::{Backend, TokenRecord};
use crate::model::{now_ms, Timestamp};
use crate::{Result, StoreError};

/// One thing a scope may allow in its `namespace/env`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Names and metadata: the list (masked), a secret's history (no values).
    List,
    /// Values: the plaintext of a read.
    Read,
    /// New values: set, update, rollback.
    Write,
    /// Deleting a secret.
    Delete,
    /// The gateway may inject the value into a request; it is never returned.
    Use,
}

impl Capability {
    /// Every capability, in canonical order.
    pub const ALL: [Self; 5] = [Self::List, Self::Read, Self::Write, Self::Delete, Self::Use];

    /// The capability's name in scope text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::List => "list",
            Self::Read => "read",
            Self::Write => "write",
            Self::Delete => "delete",
            Self::Use => "use",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl core::fmt::Display for Capability {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Capability`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Capabilities(u8);

impl Capabilities {
    /// All five: what a scope without a `:` list allows (its meaning before capabilities).
    pub const ALL: Self = Self(0b1_1111);

    /// Whether `capability` is in the set.
    pub fn contains(self, capability: Capability) -> bool {
        self.0 & capability.bit() != 0
    }

    /// The capabilities in the set, in canonical order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

impl FromIterator<Capability> for Capabilities {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |bits, c| bits | c.bit()))
    }
}

/// What a token may reach and do: `namespace/env` (each part a name or `*`), optionally
/// followed by `:cap,cap,…`. Without capabilities a scope allows all five.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Namespace or `*`.
    pub namespace: String,
    /// Env or `*`.
    pub env: String,
    /// What the scope allows there.
    pub capabilities: Capabilities,
}

impl Scope {
    /// Parses `namespace/env` or `namespace/env:cap,cap,…` (caps from `list`, `read`,
    /// `write`, `delete`, `use`; lower case, comma-separated, none empty).
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = || {
            StoreError::InvalidInput(format!(
                "scope {text:?}: expected NAMESPACE/ENV[:CAP,...], each part a-z 0-9 _ - or *, \
                 capabilities from list, read, write, delete, use"
            ))
        };
        let (place, capabilities) = match text.trim().split_once(':') {
            Some((place, list)) => {
                let mut parsed = Vec::new();
                for name in list.split(',') {
                    parsed.push(Capability::parse(name).ok_or_else(invalid)?);
                }
                (place, parsed.into_iter().collect())
            }
            None => (text.trim(), Capabilities::ALL),
        };
        let (namespace, env) = place.split_once('/').ok_or_else(invalid)?;
        let ok = |part: &str| {
            part == "*"
                || (!part.is_empty()
                    && part.len() <= 64
                    && part.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                    }))
        };
        if !ok(namespace) || !ok(env) {
            return Err(invalid());
        }
        Ok(Self {
            namespace: namespace.to_owned(),
            env: env.to_owned(),
            capabilities,
        })
    }

    /// Whether this scope allows `capability` on `namespace`/`env`.
    pub fn allows(&self, capability: Capability, namespace: &str, env: &str) -> bool {
        self.capabilities.contains(capability)
            && (self.namespace == "*" || self.namespace == namespace)
            && (self.env == "*" || self.env == env)
    }

    /// Whether this scope allows `capability` in every env of `namespace`.
    pub fn allows_in_all_envs(&self, capability: Capability, namespace: &str) -> bool {
        self.capabilities.contains(capability)
            && (self.namespace == "*" || self.namespace == namespace)
            && self.env == "*"
    }
}

impl core::fmt::Display for Scope {
    /// `namespace/env`, then `:caps` in canonical order unless all five (the old form).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.env)?;
        if self.capabilities != Capabilities::ALL {
            let names: Vec<&str> = self.capabilities.iter().map(Capability::as_str).collect();
            write!(f, ":{}", names.join(","))?;
        }
        Ok(())
    }
}

/// Who is calling: a token's name and what it may reach.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's name (the audit actor).
    pub name: String,
    /// Superusers reach everything.
    pub superuser: bool,
    /// What a non-superuser reaches.
    pub scopes: Vec<Scope>,
}

impl Principal {
    /// The audit actor of this principal's requests: `token:NAME`, never to be confused
    /// with the CLI's `cli:USER` or an embedding program's `library`.
    pub fn actor(&self) -> String {
        format!("token:{}", self.name)
    }

    /// Whether this principal may do `capability` on `namespace`/`env`.
    pub fn may(&self, capability: Capability, namespace: &str, env: &str) -> bool {
        self.superuser
            || self
                .scopes
                .iter()
                .any(|s| s.allows(capability, namespace, env))
    }

    /// Whether `capability` reaches the values of `env` in `namespace` from any env this
    /// principal holds it on: `env` itself, or an env whose fallback chain (`chain`, the
    /// envs a read of an env visits) passes through `env`. A gateway route's `use` and a
    /// read both follow the chain, so this is where a value stored at `env` could surface.
    pub fn reaches(
        &self,
        capability: Capability,
        namespace: &str,
        env: &str,
        chain: impl Fn(&str) -> Vec<String>,
    ) -> bool {
        self.may(capability, namespace, env)
            || self.scopes.iter().any(|s| {
                s.capabilities.contains(capability)
                    && (s.namespace == "*" || s.namespace == namespace)
                    && chain(&s.env).iter().any(|e| e == env)
            })
    }

    /// Whether this principal may do `capability` in every env of `namespace`.
    pub fn may_in_all_envs(&self, capability: Capability, namespace: &str) -> bool {
        self.superuser
            || self
                .scopes
                .iter()
                .any(|s| s.allows_in_all_envs(capability, namespace))
    }
}

/// A token as listed: never its secret.
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    /// Public id.
    pub id: String,
    /// Name (unique).
    pub name: String,
    /// Superuser or scoped.
    pub superuser: bool,
    /// Scopes, `namespace/env`.
    pub scopes: Vec<String>,
    /// Created.
    pub created: Timestamp,
    /// Revoked, if it was.
    pub revoked: Option<Timestamp>,
}

/// Token management and authentication over a backend (no master key needed).
#[derive(Clone)]
pub struct Tokens {
    backend: Arc<dyn Backend>,
    admin_hash: Option<[u8; 32]>,
}

impl core::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tokens")
            .field("admin_token", &self.admin_hash.map(|_| "[REDACTED]"))
            .finish_non_exhaustive()
    }
}

/// Token names that would pose as other actors in the audit log.
pub const RESERVED_NAMES: &[&str] = &["admin", "cli", "library"];

/// Shortest accepted `STRONGROOM_ADMIN_TOKEN`.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

impl Tokens {
    /// Tokens stored in `backend`, plus an optional bootstrap superuser token (named
    /// `admin`, from `STRONGROOM_ADMIN_TOKEN`).
    pub fn new(backend: Arc<dyn Backend>, admin_token: Option<&SecretString>) -> Result<Self> {
        let admin_hash = match admin_token {
            Some(token) if token.expose_secret().len() < MIN_ADMIN_TOKEN_LEN => {
                return Err(StoreError::Config(format!(
                    "STRONGROOM_ADMIN_TOKEN: expected at least {MIN_ADMIN_TOKEN_LEN} characters"
                )))
            }
            Some(token) => Some(sha256(token.expose_secret().as_bytes())),
            None => None,
        };
        Ok(Self {
            backend,
            admin_hash,
        })
    }

    /// Creates a token and returns it: the only time its secret is shown.
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
            created: now_ms(),
            revoked: None,
        };
        let stored = record.clone();
        let inserted = crate::store::in_transaction(self.backend.as_ref(), move |tx| {
            Box::pin(async move { tx.insert_token(&stored).await })
        })
        .await?;
        if !inserted {
            return Err(StoreError::Conflict(format!(
                "a token named {name:?} already exists"
            )));
        }
        Ok((
            info_of(record),
            SecretString::from(format!("sr.{id}.{secret}")),
        ))
    }

    /// One round trip to the database (readiness).
    pub async fn ping(&self) -> Result<()> {
        self.backend.ping().await
    }

    /// Every token, revoked ones included.
    pub async fn list(&self) -> Result<Vec<TokenInfo>> {
        Ok(self
            .backend
            .tokens()
            .await?
            .into_iter()
            .map(info_of)
            .collect())
    }

    /// Revokes the token named `name`; it stops working at once.
    pub async fn revoke(&self, name: &str) -> Result<()> {
        let (target, now) = (name.to_owned(), now_ms());
        let revoked = crate::store::in_transaction(self.backend.as_ref(), move |tx| {
            Box::pin(async move { tx.revoke_token(&target, now).await })
        })
        .await?;
        if revoked {
            Ok(())
        } else {
            Err(StoreError::InvalidInput(format!(
                "no active token named {name:?}"
            )))
        }
    }

    /// The principal a presented bearer token stands for, or `None`. Comparisons of the
    /// secret are constant-time.
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
        let Some(record) = self.backend.token_by_id(id).await? else {
            return Ok(None);
        };
        let matches: bool = sha256(secret.as_bytes())
            .ct_eq(record.secret_hash.as_slice())
            .into();
        if !matches || record.revoked.is_some() {
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

fn info_of(record: TokenRecord) -> TokenInfo {
    TokenInfo {
        id: record.id,
        name: record.name,
        superuser: record.superuser,
        scopes: record.scopes,
        created: Timestamp(record.created),
        revoked: record.revoked.map(Timestamp),
    }
}
