//! Deploy locks: which value of each secret an env serves now, and the means to read
//! exactly those values later (`strongroom lock`, `strongroom run --lock`).
//!
//! A lock entry holds the key, the env that served it (after fallback), the version and
//! a keyed hash of the value (HMAC under a subkey of the active KEK, bound to
//! `(namespace, env, key)`): no plaintext, and nothing a reader without the key ring can
//! test guesses against. The hash pins the value; the version is where to look first. So a
//! lock made on one database holds on another with the same keys and values (a teammate's
//! `file import` of the repository file, a restored backup), where version numbers and row
//! ids differ. Making a lock opens each value inside the store and hands none out (like
//! `verify`), so it records no read.

use secrecy::ExposeSecret as _;
use strongroom_crypto::{secrecy, Context, KeyedHash};

use super::{PendingRead, Store};
use crate::{Result, SecretId, StoreError};

/// One secret of a deploy lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockEntry {
    /// The key (the variable's name).
    pub key: String,
    /// The env that served it (the locked env, or one it falls back to).
    pub env: String,
    /// The version served.
    pub version: u32,
    /// The keyed hash of its value, stored form (`0x03 | kek_version | mac`).
    pub hash: Vec<u8>,
}

/// What [`Store::lock_env`] pins: one entry per key the env serves, and the keys left
/// out because their serving secret is expired, deleted or destroyed.
#[derive(Debug, Clone)]
pub struct EnvLock {
    /// Per key: the serving env, version and keyed hash, sorted by key.
    pub entries: Vec<LockEntry>,
    /// The keys that can not be pinned.
    pub left_out: Vec<crate::LeftOut>,
}

impl Store {
    /// What `env` serves now, after fallback (the keys starting with `prefix`, if given):
    /// per key, the serving env, version and the keyed hash of its value, sorted by key.
    /// A key whose serving secret is expired, deleted or destroyed is left out and named
    /// in the second list, as [`Store::resolve_env`] does.
    pub async fn lock_env(
        &self,
        namespace: Option<&str>,
        env: Option<&str>,
        prefix: Option<&str>,
    ) -> Result<EnvLock> {
        let probe = self.secret_id(namespace, env, "_")?;
        let chain = self.chain(&probe);
        let keys = self.keys_in_chain(&probe.namespace, &chain, prefix).await?;
        let mut entries = Vec::with_capacity(keys.len());
        let mut left_out = Vec::new();
        for key in keys {
            for chain_env in &chain {
                let id = SecretId::new(&probe.namespace, chain_env, &key);
                // Expired, deleted, destroyed: left out, as a read of the env would.
                let current = match self.open_current(&id, &probe.env).await {
                    Ok(Some(current)) => current,
                    Ok(None) => continue,
                    Err(e) => {
                        left_out.push(crate::LeftOut::of(e)?);
                        break;
                    }
                };
                let hash = self
                    .inner
                    .ring
                    .keyed_hash(&lock_context(&id), current.value.expose_secret());
                entries.push(LockEntry {
                    key,
                    env: chain_env.clone(),
                    version: current.version,
                    hash: hash.to_bytes(),
                });
                break;
            }
        }
        Ok(EnvLock { entries, left_out })
    }

    /// The locked value of `entry`, in `namespace`, as a read to commit: the version the
    /// entry names if it holds the locked value, else the newest kept version that does.
    /// Refused when none does (the value moved on and history no longer keeps it, the
    /// lock was edited) or the secret is gone.
    pub async fn get_locked(&self, namespace: &str, entry: &LockEntry) -> Result<PendingRead> {
        let id = self.normalize(&SecretId::new(namespace, &entry.env, &entry.key))?;
        let hash = KeyedHash::from_bytes(&entry.hash).map_err(|_| {
            StoreError::InvalidInput(format!("the lock's hash of {} is malformed", entry.key))
        })?;
        let context = lock_context(&id);
        let mut candidates = vec![entry.version];
        for kept in self.history(&id).await? {
            if kept.version != entry.version {
                candidates.push(kept.version);
            }
        }
        for version in candidates {
            let read = match self.get_version(&id, version).await {
                Ok(read) => read,
                Err(StoreError::VersionNotFound { .. } | StoreError::VersionUnavailable { .. }) => {
                    continue
                }
                Err(e) => return Err(e),
            };
            let value = read.secret.value.expose_secret();
            if self.inner.ring.verify_keyed_hash(&context, value, &hash)? {
                return Ok(read);
            }
        }
        Err(StoreError::conflict(
            crate::ConflictKind::LockMoved,
            format!(
                "no kept version of {id} holds the locked value (it moved on beyond the kept \
                 history, or the lock was edited)"
            ),
        ))
    }
}

impl Store {
    /// Whether the current value of `entry`'s key in its env is the locked value (hashes
    /// made under different key versions are compared by value, not by bytes).
    pub async fn lock_entry_is_current(&self, namespace: &str, entry: &LockEntry) -> Result<bool> {
        let id = self.normalize(&SecretId::new(namespace, &entry.env, &entry.key))?;
        let hash = KeyedHash::from_bytes(&entry.hash).map_err(|_| {
            StoreError::InvalidInput(format!("the lock's hash of {} is malformed", entry.key))
        })?;
        let Some(current) = self.open_current(&id, &id.env).await? else {
            return Ok(false);
        };
        Ok(self.inner.ring.verify_keyed_hash(
            &lock_context(&id),
            current.value.expose_secret(),
            &hash,
        )?)
    }
}

/// What a lock's keyed hash is bound to: the serving identity, not a row or version.
fn lock_context(id: &SecretId) -> Context {
    Context::new("deploy-lock")
        .with(&id.namespace)
        .with(&id.env)
        .with(&id.key)
}
