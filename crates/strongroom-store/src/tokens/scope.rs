//! What a token may do: capabilities, scopes and the principal a request runs as. Every
//! authorization decision is one of [`Principal`]'s methods.

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
/// narrowed to keys (`namespace/env/KEYGLOB`, `*` matching any run of characters, `/`
/// included), optionally followed by `:cap,cap,…`. Without capabilities a scope allows
/// all five.
///
/// A scope narrowed to keys grants its capabilities on the matching secrets only: what
/// acts on a whole env (listing it, a gateway route, the reach of a `use`-only copy)
/// needs a scope on the whole env.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Namespace or `*`.
    pub namespace: String,
    /// Env or `*`.
    pub env: String,
    /// The keys it is narrowed to (a glob), or `None`: every key.
    pub keys: Option<String>,
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
        let (namespace, rest) = place.split_once('/').ok_or_else(invalid)?;
        let (env, keys) = match rest.split_once('/') {
            Some((env, keys)) => (env, Some(keys)),
            None => (rest, None),
        };
        // A key glob: the key grammar's characters and `*` / `?`; `*` alone is every key.
        let keys = match keys {
            None | Some("*") => None,
            Some(glob)
                if !glob.is_empty()
                    && glob.len() <= 256
                    && glob
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-/*?".contains(&b))
                    && glob::Pattern::new(glob).is_ok() =>
            {
                Some(glob.to_owned())
            }
            Some(_) => return Err(invalid()),
        };
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
            keys,
            capabilities,
        })
    }

    /// Whether this scope allows `capability` on every key of `namespace`/`env` (a scope
    /// narrowed to keys never does).
    pub fn allows(&self, capability: Capability, namespace: &str, env: &str) -> bool {
        self.keys.is_none() && self.allows_place(capability, namespace, env)
    }

    /// Whether this scope allows `capability` on the secret `key` of `namespace`/`env`.
    pub fn allows_key(
        &self,
        capability: Capability,
        namespace: &str,
        env: &str,
        key: &str,
    ) -> bool {
        self.allows_place(capability, namespace, env)
            && self
                .keys
                .as_deref()
                .is_none_or(|glob| key_matches(glob, key))
    }

    fn allows_place(&self, capability: Capability, namespace: &str, env: &str) -> bool {
        self.capabilities.contains(capability)
            && (self.namespace == "*" || self.namespace == namespace)
            && (self.env == "*" || self.env == env)
    }

    /// Whether everything this scope allows, `outer` allows too (a child token's scope
    /// within its parent's).
    pub fn within(&self, outer: &Self) -> bool {
        (outer.namespace == "*" || outer.namespace == self.namespace)
            && (outer.env == "*" || outer.env == self.env)
            && match (&outer.keys, &self.keys) {
                (None, _) => true,
                (Some(_), None) => false,
                // The same glob, or one under a trailing-`*` prefix of it (`app/*` holds
                // `app/DB` and `app/x*`); anything else is refused.
                (Some(outer), Some(inner)) => {
                    outer == inner
                        || outer.strip_suffix('*').is_some_and(|prefix| {
                            !prefix.contains(['*', '?']) && inner.starts_with(prefix)
                        })
                }
            }
            && self
                .capabilities
                .iter()
                .all(|c| outer.capabilities.contains(c))
    }

    /// Whether this scope allows `capability` in every env of `namespace`.
    pub fn allows_in_all_envs(&self, capability: Capability, namespace: &str) -> bool {
        self.keys.is_none()
            && self.capabilities.contains(capability)
            && (self.namespace == "*" || self.namespace == namespace)
            && self.env == "*"
    }
}

impl core::fmt::Display for Scope {
    /// `namespace/env`, then `:caps` in canonical order unless all five (the old form).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.env)?;
        if let Some(keys) = &self.keys {
            write!(f, "/{keys}")?;
        }
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
    /// The token's public id (`None` for the bootstrap admin token, which has no row).
    pub id: Option<String>,
    /// The token's name (the audit actor).
    pub name: String,
    /// Superusers reach everything.
    pub superuser: bool,
    /// What a non-superuser reaches.
    pub scopes: Vec<Scope>,
}

impl Principal {
    /// The audit actor of this principal's requests: `token:NAME`, never to be confused
    /// with the CLI's `cli:USER` or an embedding program's `library`. A principal made in
    /// process for the key's holder is named by its actor (`cli:USER`: a token's name can
    /// never hold a `:`) and keeps it.
    pub fn actor(&self) -> String {
        if self.id.is_none() && self.name.contains(':') {
            self.name.clone()
        } else {
            format!("token:{}", self.name)
        }
    }

    /// Whether this principal may do `capability` on the secret `key` of
    /// `namespace`/`env`: a scope on the env, or one narrowed to keys that match.
    pub fn may_key(&self, capability: Capability, namespace: &str, env: &str, key: &str) -> bool {
        self.superuser
            || self
                .scopes
                .iter()
                .any(|s| s.allows_key(capability, namespace, env, key))
    }

    /// Whether this principal may do `capability` on every key of `namespace`/`env`.
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
        key: &str,
        chain: impl Fn(&str) -> Vec<String>,
    ) -> bool {
        self.may_key(capability, namespace, env, key)
            || self.scopes.iter().any(|s| {
                s.capabilities.contains(capability)
                    && (s.namespace == "*" || s.namespace == namespace)
                    && s.keys.as_deref().is_none_or(|glob| key_matches(glob, key))
                    && chain(&s.env).iter().any(|e| e == env)
            })
    }

    /// Whether a token with `scope` would reach nothing this principal does not: the
    /// test a child token's scopes pass (a superuser covers every scope).
    pub fn covers(&self, scope: &Scope) -> bool {
        self.superuser || self.scopes.iter().any(|outer| scope.within(outer))
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

/// Whether `key` matches the key glob `glob` (`*` any run of characters, `/` included;
/// `?` one character).
fn key_matches(glob: &str, key: &str) -> bool {
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: false,
        require_literal_leading_dot: false,
    };
    glob::Pattern::new(glob).is_ok_and(|pattern| pattern.matches_with(key, options))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn scopes_narrowed_to_keys_grant_only_the_matching_secrets() {
        let scope = Scope::parse("default/prod/app1/*:read").unwrap();
        assert_eq!(scope.keys.as_deref(), Some("app1/*"));
        assert_eq!(scope.to_string(), "default/prod/app1/*:read");
        assert!(scope.allows_key(Capability::Read, "default", "prod", "app1/DB"));
        assert!(scope.allows_key(Capability::Read, "default", "prod", "app1/x/y"));
        assert!(!scope.allows_key(Capability::Read, "default", "prod", "app2/DB"));
        assert!(!scope.allows_key(Capability::Read, "default", "prod", "APP1/DB"));
        assert!(!scope.allows_key(Capability::Write, "default", "prod", "app1/DB"));
        assert!(!scope.allows_key(Capability::Read, "default", "dev", "app1/DB"));
        // Never the whole env: listing it or a gateway route needs a scope on the env.
        assert!(!scope.allows(Capability::Read, "default", "prod"));
        assert!(!scope.allows_in_all_envs(Capability::Read, "default"));
        // The two-part form keeps its meaning; `*` as the key part is every key.
        let env = Scope::parse("default/prod:read").unwrap();
        assert!(env.keys.is_none() && env.allows(Capability::Read, "default", "prod"));
        assert!(Scope::parse("default/prod/*:read").unwrap().keys.is_none());
        // A glob that is no key pattern: refused.
        for bad in [
            "default/prod/:read",
            "default/prod/a b",
            "default/prod/[a",
            "default/prod/a:b:read",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_scope_within_another_never_reaches_further() {
        let outer = Scope::parse("default/prod/app1/*:read,list").unwrap();
        for inner in [
            "default/prod/app1/DB:read",
            "default/prod/app1/x*:list",
            "default/prod/app1/*:read",
        ] {
            assert!(Scope::parse(inner).unwrap().within(&outer), "{inner}");
        }
        for wider in [
            "default/prod:read",
            "default/prod/app2/DB:read",
            "default/prod/app*:read",
            "default/prod/app1/DB:write",
            "default/*/app1/DB:read",
        ] {
            assert!(!Scope::parse(wider).unwrap().within(&outer), "{wider}");
        }
        let env = Scope::parse("default/prod:read").unwrap();
        assert!(Scope::parse("default/prod/anything:read")
            .unwrap()
            .within(&env));
    }
}
