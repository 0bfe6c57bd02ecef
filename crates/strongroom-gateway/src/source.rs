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

/// Reads through the store's fallback chain and records each use as a `gateway_read` audit
/// event with the store handle's actor, before the value is used.
#[cfg(feature = "store")]
async fn resolve_in_store(
    store: &strongroom_store::Store,
    namespace: &str,
    env: &str,
    name: &str,
) -> Result<SecretSlice<u8>, SourceError> {
    let unavailable = |e: strongroom_store::StoreError| SourceError::Unavailable {
        name: name.to_owned(),
        reason: e.to_string(),
    };
    let id = store
        .secret_id(Some(namespace), Some(env), name)
        .map_err(unavailable)?;
    let secret = match store.get(&id).await {
        Ok(secret) => secret,
        Err(strongroom_store::StoreError::NotFound(_)) => {
            return Err(SourceError::NotFound(name.to_owned()))
        }
        Err(e) => return Err(unavailable(e)),
    };
    store
        .record_access(&secret, strongroom_store::Action::GatewayRead)
        .await
        .map_err(unavailable)?;
    Ok(secret.value)
}

/// The store, through its fallback chain. Every use is a `gateway_read` audit event with
/// the handle's actor (the server gives it the calling token's name with
/// [`Store::with_actor`](strongroom_store::Store::with_actor)); if the event can not be
/// written, the secret is not used.
#[cfg(feature = "store")]
#[async_trait]
impl SecretSource for strongroom_store::Store {
    async fn resolve(
        &self,
        namespace: &str,
        env: &str,
        name: &str,
    ) -> Result<SecretSlice<u8>, SourceError> {
        resolve_in_store(self, namespace, env, name).await
    }
}
