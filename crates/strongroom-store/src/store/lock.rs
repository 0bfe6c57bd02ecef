//! Deploy locks: which version of each secret an env serves now, and the means to read
//! exactly those versions later (`strongroom lock`, `strongroom run --lock`).
//!
//! A lock entry holds the key, the env that served it (after fallback), the version and
//! that version's stored keyed hash (HMAC under a subkey of the KEK, bound to the
//! secret's identity, random row id and version): no plaintext, and nothing a reader
//! without the key ring can test guesses against. Making a lock decrypts nothing.

use secrecy::ExposeSecret as _;
use strongroom_crypto::{secrecy, KeyedHash};

use super::{value_context, PendingRead, Store};
use crate::model::{format_time, now_ms};
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
    /// That version's keyed hash, stored form (`0x03 | kek_version | mac`).
    pub hash: Vec<u8>,
}

impl Store {
    /// What `env` serves now, after fallback (the keys starting with `prefix`, if given):
    /// per key, the serving env, version and keyed hash, sorted by key. An expired value
    /// is [`StoreError::Expired`], as a read would be.
    pub async fn lock_env(
        &self,
        namespace: Option<&str>,
        env: Option<&str>,
        prefix: Option<&str>,
    ) -> Result<Vec<LockEntry>> {
        let probe = self.secret_id(namespace, env, "_")?;
        let chain = self.chain(&probe);
        let keys = self.keys_in_chain(&probe.namespace, &chain, prefix).await?;
        let now = now_ms();
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            for chain_env in &chain {
                let id = SecretId::new(&probe.namespace, chain_env, &key);
                let Some(stored) = self.inner.backend.fetch(&id).await? else {
                    continue;
                };
                if let Some(at) = stored.info.expires_at.filter(|at| *at <= now) {
                    return Err(StoreError::Expired {
                        id,
                        expired_at: format_time(at),
                    });
                }
                entries.push(LockEntry {
                    key,
                    env: chain_env.clone(),
                    version: stored.info.version,
                    hash: stored.value.value_hash,
                });
                break;
            }
        }
        Ok(entries)
    }

    /// Exactly the version `entry` names, in `namespace`, as a read to commit; refused
    /// when that version is gone (trimmed, deleted, the secret re-created) or its value
    /// does not match the entry's hash.
    pub async fn get_locked(&self, namespace: &str, entry: &LockEntry) -> Result<PendingRead> {
        let id = self.normalize(&SecretId::new(namespace, &entry.env, &entry.key))?;
        let hash = KeyedHash::from_bytes(&entry.hash).map_err(|_| {
            StoreError::InvalidInput(format!("the lock's hash of {} is malformed", entry.key))
        })?;
        let read = self.get_version(&id, entry.version).await?;
        let Some(current) = self.inner.backend.fetch(&id).await? else {
            return Err(StoreError::NotFound(id));
        };
        let context = value_context(&id, &current.info.row_id, entry.version);
        let matches = self.inner.ring.verify_keyed_hash(
            &context,
            read.secret.value.expose_secret(),
            &hash,
        )?;
        if matches {
            Ok(read)
        } else {
            Err(StoreError::Conflict(format!(
                "{}/{}/{} version {} is not the value that was locked (the secret was \
                 deleted and made again, or the lock was edited)",
                id.namespace, id.env, id.key, entry.version
            )))
        }
    }
}
