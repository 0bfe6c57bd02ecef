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
    /// The value of `name` in `namespace`/`env`. Implementations apply their own fallback
    /// (the store's env chain) and never fall back to the process environment.
    async fn resolve(
        &self,
        namespace: &str,
        env: &str,
        name: &str,
    ) -> Result<SecretSlice<u8>, SourceError>;
}

#[cfg(feature = "store")]
#[async_trait]
impl SecretSource for strongroom_store::Store {
    async fn resolve(
        &self,
        namespace: &str,
        env: &str,
        name: &str,
    ) -> Result<SecretSlice<u8>, SourceError> {
        let id = self
            .secret_id(Some(namespace), Some(env), name)
            .map_err(|e| SourceError::Unavailable {
                name: name.to_owned(),
                reason: e.to_string(),
            })?;
        match self.get(&id).await {
            Ok(secret) => Ok(secret.value),
            Err(strongroom_store::StoreError::NotFound(_)) => {
                Err(SourceError::NotFound(name.to_owned()))
            }
            Err(e) => Err(SourceError::Unavailable {
                name: name.to_owned(),
                reason: e.to_string(),
            }),
        }
    }
}
