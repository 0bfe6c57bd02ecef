//! Settings sealed under the key: the configuration of auth methods (their roles, keys
//! and bindings), kept in the meta table as envelopes bound to their names. A database
//! writer without the key can neither read nor forge one: a role, a key or a binding the
//! server honours was written with the key. Each write is an `auth_config` audit event.
//!
//! Limit (as for token rows): a database writer who kept an old sealed value can put it
//! back under the same name (a deleted role, restored); the `auth_config` event of its
//! deletion stays in the audit chain.

use std::sync::Arc;

use base64::Engine as _;
use strongroom_crypto::secrecy::SecretSlice;
use strongroom_crypto::Context;

use super::write::check_writer_key;
use super::Store;
use crate::audit::Appender;
use crate::backend::AuditRecord;
use crate::model::now_ms;
use crate::{Action, Result, SecretId, StoreError, Timestamp};

/// The meta name of the sealed setting `name`.
pub(super) fn meta_name(name: &str) -> String {
    format!("sealed:{name}")
}

/// The context a sealed setting is bound to: its name.
pub(super) fn context(name: &str) -> Context {
    Context::new("sealed-setting").with(name)
}

impl Store {
    /// The sealed setting `name` (opened), or `None` when there is none.
    ///
    /// # Errors
    /// A value that does not open under the key ([`StoreError::Integrity`]: written
    /// without the key, or moved from another name), or the database failing.
    pub async fn sealed_setting(&self, name: &str) -> Result<Option<SecretSlice<u8>>> {
        let Some(stored) = self.inner.backend.meta(&meta_name(name)).await? else {
            return Ok(None);
        };
        let id = SecretId::new("", "sealed-setting", name);
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(stored)
            .map_err(|_| StoreError::Integrity(id.clone()))?;
        self.inner
            .ring
            .open(&context(name), &sealed)
            .map(Some)
            .map_err(|e| StoreError::opening(&id, e))
    }

    /// Writes (`Some`) or removes (`None`) the sealed setting `name`, with an
    /// `auth_config` event naming it, in one transaction.
    ///
    /// # Errors
    /// The database failing, the key not the one that wrote the database.
    pub async fn set_sealed_setting(&self, name: &str, value: Option<&[u8]>) -> Result<()> {
        let stored = value
            .map(|plaintext| self.inner.ring.seal(&context(name), plaintext))
            .transpose()?
            .map(|sealed| base64::engine::general_purpose::STANDARD.encode(sealed));
        let meta = meta_name(name);
        let chain = Arc::clone(&self.inner.chain);
        let writer_key = self.inner.writer_key.clone();
        let kek = self.inner.ring.active().version();
        let event = AuditRecord {
            time: Timestamp(now_ms()),
            actor: self.actor.to_string(),
            action: Action::AuthConfig,
            id: SecretId::new("", "", name),
            version: None,
            kek_version: Some(kek),
        };
        self.transact(move |tx| {
            Box::pin(async move {
                let mut audit = Appender::start(tx, &chain).await?;
                check_writer_key(tx, &writer_key, event.time.unix_ms()).await?;
                tx.set_meta(&meta, stored.as_deref()).await?;
                audit.append(tx, &event).await?;
                Ok(())
            })
        })
        .await
    }
}
