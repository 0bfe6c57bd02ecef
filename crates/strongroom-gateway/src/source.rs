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

    /// Called once every secret of a request is resolved and checked, before anything is
    /// sent upstream: a source that audits uses records them here. An error stops the
    /// request (nothing is forwarded). The default does nothing.
    async fn commit_uses(&self) -> Result<(), SourceError> {
        Ok(())
    }
}

/// Reads through the store's fallback chain; `NotFound` names the secret, other failures
/// say why without a value.
#[cfg(feature = "store")]
async fn read_from_store(
    store: &strongroom_store::Store,
    namespace: &str,
    env: &str,
    name: &str,
) -> Result<strongroom_store::Secret, SourceError> {
    let id = store
        .secret_id(Some(namespace), Some(env), name)
        .map_err(|e| unavailable(name, &e))?;
    store.get(&id).await.map_err(|e| match e {
        strongroom_store::StoreError::NotFound(_) => SourceError::NotFound(name.to_owned()),
        other => unavailable(name, &other),
    })
}

#[cfg(feature = "store")]
fn unavailable(name: &str, error: &strongroom_store::StoreError) -> SourceError {
    SourceError::Unavailable {
        name: name.to_owned(),
        reason: error.to_string(),
    }
}

/// The store, through its fallback chain. Each use is a `gateway_read` audit event with
/// the handle's actor, written before the value is returned; if it can not be written, the
/// secret is not used. (The server uses a [`RequestSource`] per request instead: one
/// transaction for all of a request's events.)
#[cfg(feature = "store")]
#[async_trait]
impl SecretSource for strongroom_store::Store {
    async fn resolve(
        &self,
        namespace: &str,
        env: &str,
        name: &str,
    ) -> Result<SecretSlice<u8>, SourceError> {
        let secret = read_from_store(self, namespace, env, name).await?;
        self.record_access(&[secret.access()], strongroom_store::Action::GatewayRead)
            .await
            .map_err(|e| unavailable(name, &e))?;
        Ok(secret.value)
    }
}

/// The store as the source of **one** request's secrets: the uses are recorded together,
/// as `gateway_read` audit events with the handle's actor (give it the caller's name with
/// [`Store::with_actor`](strongroom_store::Store::with_actor)), in one transaction at
/// [`SecretSource::commit_uses`], just before the request is forwarded. A request refused
/// before that (a missing or unsafe secret) records nothing: no value was used.
#[cfg(feature = "store")]
pub struct RequestSource {
    store: strongroom_store::Store,
    uses: std::sync::Mutex<Vec<strongroom_store::Access>>,
}

#[cfg(feature = "store")]
impl RequestSource {
    /// A source for one request, reading from `store`.
    pub fn new(store: strongroom_store::Store) -> Self {
        Self {
            store,
            uses: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn uses(&self) -> std::sync::MutexGuard<'_, Vec<strongroom_store::Access>> {
        self.uses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(feature = "store")]
#[async_trait]
impl SecretSource for RequestSource {
    async fn resolve(
        &self,
        namespace: &str,
        env: &str,
        name: &str,
    ) -> Result<SecretSlice<u8>, SourceError> {
        let secret = read_from_store(&self.store, namespace, env, name).await?;
        self.uses().push(secret.access());
        Ok(secret.value)
    }

    async fn commit_uses(&self) -> Result<(), SourceError> {
        let uses = std::mem::take(&mut *self.uses());
        if uses.is_empty() {
            return Ok(());
        }
        self.store
            .record_access(&uses, strongroom_store::Action::GatewayRead)
            .await
            .map_err(|e| SourceError::Unavailable {
                name: uses
                    .iter()
                    .map(|u| u.id.key.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                reason: format!("the audit events of their use could not be written: {e}"),
            })
    }
}
