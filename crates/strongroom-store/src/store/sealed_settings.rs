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
use crate::backend::{AuditRecord, WriteTx};
use crate::model::now_ms;
use crate::{Action, Result, SecretId, StoreError, Timestamp};

/// The meta name of the sealed setting `name`.
fn meta_name(name: &str) -> String {
    format!("sealed:{name}")
}

/// The context a sealed setting is bound to: its name.
fn context(name: &str) -> Context {
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

    /// `spend` ready to apply inside a transaction: its replacement sealed, its `login`
    /// event made.
    pub(crate) fn prepare_spend(&self, spend: CredentialSpend) -> Result<PreparedSpend> {
        let sealed = spend
            .replacement
            .map(|plaintext| {
                use strongroom_crypto::secrecy::ExposeSecret as _;
                self.inner
                    .ring
                    .seal(&context(&spend.setting), plaintext.expose_secret())
            })
            .transpose()?
            .map(|sealed| base64::engine::general_purpose::STANDARD.encode(sealed));
        Ok(PreparedSpend {
            meta: meta_name(&spend.setting),
            context: context(&spend.setting),
            ring: Arc::clone(&self.inner.ring),
            expected: spend.expected,
            sealed,
            event: AuditRecord {
                time: Timestamp(now_ms()),
                actor: self.actor.to_string(),
                action: Action::Login,
                id: SecretId::new("", &spend.method, &spend.role),
                version: None,
                kek_version: None,
            },
        })
    }

    /// Records a login (`login`: the method's path as env, the role as key), outside any
    /// other write.
    ///
    /// # Errors
    /// The database failing.
    pub async fn record_login(&self, method: &str, role: &str) -> Result<()> {
        let record = AuditRecord {
            time: Timestamp(now_ms()),
            actor: self.actor.to_string(),
            action: Action::Login,
            id: SecretId::new("", method, role),
            version: None,
            kek_version: None,
        };
        self.append_read_events(vec![record]).await
    }
}

/// A login that spends a credential kept in a sealed setting (a single-use secret ID: its
/// remaining uses): the setting must still hold `expected` when the login is written, and
/// then holds `replacement` (or nothing). The plaintexts are secrets: redacted in `Debug`,
/// zeroized when dropped.
#[derive(Debug)]
pub struct CredentialSpend {
    /// The sealed setting's name.
    pub setting: String,
    /// The value it must still hold (plaintext).
    pub expected: SecretSlice<u8>,
    /// What it holds afterwards (plaintext); `None` removes it.
    pub replacement: Option<SecretSlice<u8>>,
    /// The auth method's path (the `login` event's env).
    pub method: String,
    /// The role (the `login` event's key).
    pub role: String,
}

/// A [`CredentialSpend`] ready to apply inside a write transaction.
pub(crate) struct PreparedSpend {
    meta: String,
    context: Context,
    ring: Arc<strongroom_crypto::KeyRing>,
    expected: SecretSlice<u8>,
    sealed: Option<String>,
    event: AuditRecord,
}

impl PreparedSpend {
    /// Spends the credential and appends the `login` event, while the setting still holds
    /// what was expected; false (nothing written) when it does not. The caller holds the
    /// chain's lock (`audit` was started in this transaction).
    pub(crate) async fn apply(&self, tx: &mut dyn WriteTx, audit: &mut Appender) -> Result<bool> {
        use strongroom_crypto::secrecy::ExposeSecret as _;
        let current = tx.meta(&self.meta).await?;
        let still = current
            .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
            .and_then(|sealed| self.ring.open(&self.context, &sealed).ok())
            .is_some_and(|plain| plain.expose_secret() == self.expected.expose_secret());
        if !still {
            return Ok(false);
        }
        tx.set_meta(&self.meta, self.sealed.as_deref()).await?;
        audit.append(tx, &self.event).await?;
        Ok(true)
    }
}
