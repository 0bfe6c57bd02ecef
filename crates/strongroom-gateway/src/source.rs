//! Where secret values come from.

use async_trait::async_trait;
use strongroom_crypto::secrecy::SecretSlice;

/// Why a secret could not be resolved. Names, never values.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// No such secret for the route's namespace and env (after fallback).
    #[error("secret {0} not found")]
    NotFound(String),
    /// The source failed (expired, integrity, database): the message names no value.
    #[error("secret {name} could not be read: {reason}")]
    Unavailable {
        /// The secret's key.
        name: String,
        /// Why.
        reason: String,
    },
}

/// A source of secret values: the Strongroom store, or anything else.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The values of `names` in `namespace`/`env`, in order. Implementations apply their
    /// own fallback (the store's env chain) and never fall back to the process
    /// environment. It fails as a whole; a source that audits records every use in one
    /// step before it returns any value (and records nothing when a name is missing).
    async fn resolve_all(
        &self,
        namespace: &str,
        env: &str,
        names: &[&str],
    ) -> Result<Vec<SecretSlice<u8>>, SourceError>;
}

#[cfg(feature = "store")]
fn unavailable(name: &str, error: &strongroom_store::StoreError) -> SourceError {
    SourceError::Unavailable {
        name: name.to_owned(),
        reason: error.to_string(),
    }
}

/// The store, through its fallback chain. The uses of one call are `gateway_read` audit
/// events with the handle's actor (give it the caller's name with
/// [`Store::with_actor`](strongroom_store::Store::with_actor)), written in one
/// transaction before any value is returned: if they can not be written, no value is
/// used. A missing secret fails the call before anything is recorded.
#[cfg(feature = "store")]
#[async_trait]
impl SecretSource for strongroom_store::Store {
    async fn resolve_all(
        &self,
        namespace: &str,
        env: &str,
        names: &[&str],
    ) -> Result<Vec<SecretSlice<u8>>, SourceError> {
        let mut reads = Vec::with_capacity(names.len());
        for name in names {
            let id = self
                .secret_id(Some(namespace), Some(env), name)
                .map_err(|e| unavailable(name, &e))?;
            reads.push(self.get(&id).await.map_err(|e| match e {
                strongroom_store::StoreError::NotFound(_) => {
                    SourceError::NotFound((*name).to_owned())
                }
                other => unavailable(name, &other),
            })?);
        }
        let secrets = self
            .commit_reads(reads, strongroom_store::Action::GatewayRead)
            .await
            .map_err(|e| SourceError::Unavailable {
                name: names.join(", "),
                reason: format!("the audit events of their use could not be written: {e}"),
            })?;
        Ok(secrets.into_iter().map(|secret| secret.value).collect())
    }
}
