//! What a login writes with the token it issues, in the token's own transaction: its
//! `login` event, and the credential it spends (a single-use secret ID) when it spends
//! one. A refusal (a quota reached, the credential spent by a racing login) writes none of
//! it, and a crash can not leave a token without its login.

use std::sync::Arc;

use base64::Engine as _;
use strongroom_crypto::secrecy::SecretSlice;
use strongroom_crypto::Context;

use super::sealed_settings::{context, meta_name};
use super::Store;
use crate::audit::Appender;
use crate::backend::{AuditRecord, WriteTx};
use crate::model::now_ms;
use crate::{Action, Result, SecretId, Timestamp};

/// A login through an auth method: the `login` event its token's creation carries, and
/// the credential it spends, if any.
#[derive(Debug)]
pub struct Login {
    /// The auth method's path (the `login` event's env).
    pub method: String,
    /// The role (the `login` event's key).
    pub role: String,
    /// The credential spent with the token, or `None`.
    pub spend: Option<CredentialSpend>,
}

/// A credential kept in a sealed setting that a login spends (a single-use secret ID: its
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
}

/// A [`Login`] ready to apply inside a write transaction.
pub(crate) struct PreparedLogin {
    event: AuditRecord,
    spend: Option<PreparedSpend>,
}

/// A [`CredentialSpend`] with its replacement sealed.
struct PreparedSpend {
    meta: String,
    context: Context,
    ring: Arc<strongroom_crypto::KeyRing>,
    expected: SecretSlice<u8>,
    sealed: Option<String>,
}

impl Store {
    /// `login` ready to apply inside a transaction: its `login` event made, the
    /// replacement of the credential it spends sealed.
    pub(crate) fn prepare_login(&self, login: Login) -> Result<PreparedLogin> {
        let spend = login
            .spend
            .map(|spend| {
                use strongroom_crypto::secrecy::ExposeSecret as _;
                let sealed = spend
                    .replacement
                    .map(|plaintext| {
                        self.inner
                            .ring
                            .seal(&context(&spend.setting), plaintext.expose_secret())
                    })
                    .transpose()?
                    .map(|sealed| base64::engine::general_purpose::STANDARD.encode(sealed));
                Ok::<_, crate::StoreError>(PreparedSpend {
                    meta: meta_name(&spend.setting),
                    context: context(&spend.setting),
                    ring: Arc::clone(&self.inner.ring),
                    expected: spend.expected,
                    sealed,
                })
            })
            .transpose()?;
        Ok(PreparedLogin {
            event: AuditRecord {
                time: Timestamp(now_ms()),
                actor: self.actor.to_string(),
                action: Action::Login,
                id: SecretId::new("", &login.method, &login.role),
                version: None,
                kek_version: None,
            },
            spend,
        })
    }
}

impl PreparedLogin {
    /// Spends the credential (while its setting still holds what was expected) and
    /// appends the `login` event; false, nothing written, when the credential no longer
    /// holds what was expected. The caller holds the chain's lock (`audit` was started in
    /// this transaction).
    pub(crate) async fn apply(&self, tx: &mut dyn WriteTx, audit: &mut Appender) -> Result<bool> {
        if let Some(spend) = &self.spend {
            use strongroom_crypto::secrecy::ExposeSecret as _;
            let current = tx.meta(&spend.meta).await?;
            let still = current
                .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
                .and_then(|sealed| spend.ring.open(&spend.context, &sealed).ok())
                .is_some_and(|plain| plain.expose_secret() == spend.expected.expose_secret());
            if !still {
                return Ok(false);
            }
            tx.set_meta(&spend.meta, spend.sealed.as_deref()).await?;
        }
        audit.append(tx, &self.event).await?;
        Ok(true)
    }
}
