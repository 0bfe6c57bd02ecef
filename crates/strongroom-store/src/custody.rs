//! Key custody: a key ring the database holds wrapped, opened by a custodian that never
//! lets the wrapping key out (an HSM over PKCS#11 today; a cloud KMS would be another).
//!
//! A custodian is a small trait ([`KeyCustodian`]): wrap a ring's spec, unwrap it, draw a
//! new key from its own random number generator. Everything else (where the wrapped ring
//! is kept, the compare-and-swap that keeps two processes from losing each other's new
//! key, the refusal to overwrite a ring) is here, once, through the store's transaction
//! door: a custodian never reads or writes a row.

use strongroom_crypto::secrecy::{ExposeSecret as _, SecretString};
use strongroom_crypto::{Key, KeyRing};

use crate::backend::Backend;
use crate::{ConflictKind, KeySource, Result, StoreError};

/// Holds the key that wraps the ring; the ring's keys are only ever in memory, unwrapped.
pub trait KeyCustodian {
    /// The meta row that keeps this custodian's wrapped ring (e.g. `pkcs11_wrapped_ring`).
    fn meta_name(&self) -> &'static str;

    /// The command that stores a first wrapped ring, for messages (`strongroom init --pkcs11`).
    fn init_command(&self) -> &'static str;

    /// Readies the custodian to wrap a first ring (an HSM creates its wrapping key).
    ///
    /// # Errors
    /// [`StoreError::KeyCustody`] when the custodian refuses.
    fn prepare(&self) -> Result<()> {
        Ok(())
    }

    /// `ring_spec` (`VERSION:KEY,…`) sealed by the custodian, in its stored form.
    ///
    /// # Errors
    /// [`StoreError::KeyCustody`] when the custodian refuses or has no wrapping key.
    fn wrap(&self, ring_spec: &SecretString) -> Result<String>;

    /// The ring spec sealed in `stored`.
    ///
    /// # Errors
    /// [`StoreError::KeyCustody`] when `stored` is malformed or another key sealed it.
    fn unwrap(&self, stored: &str) -> Result<SecretString>;

    /// A new master key from the custodian's random number generator.
    ///
    /// # Errors
    /// [`StoreError::KeyCustody`] when the custodian refuses.
    fn generate_key(&self) -> Result<Key>;
}

fn custody_error(message: String) -> StoreError {
    StoreError::KeyCustody(message)
}

/// The wrapped ring `custodian` keeps in `backend`, or the error that says how to make one.
async fn stored_ring(custodian: &dyn KeyCustodian, backend: &dyn Backend) -> Result<String> {
    let name = custodian.meta_name();
    backend.meta(name).await?.ok_or_else(|| {
        custody_error(format!(
            "this database holds no wrapped key ring ({name}); run `{}` first",
            custodian.init_command()
        ))
    })
}

/// The ring in `stored`, unwrapped by `custodian`.
fn unwrapped(custodian: &dyn KeyCustodian, stored: &str) -> Result<KeyRing> {
    let spec = custodian.unwrap(stored)?;
    KeyRing::parse_spec(spec.expose_secret()).map_err(|_| {
        custody_error(format!(
            "the wrapped key ring in the database ({}) is malformed",
            custodian.meta_name()
        ))
    })
}

/// The key source of a database whose ring `custodian` keeps.
///
/// # Errors
/// No wrapped ring stored, or the custodian does not open it.
pub async fn key_source(custodian: &dyn KeyCustodian, backend: &dyn Backend) -> Result<KeySource> {
    let stored = stored_ring(custodian, backend).await?;
    unwrapped(custodian, &stored).map(KeySource::Ring)
}

/// `strongroom rotate --new-key`: a new ring version from the custodian's generator,
/// first (active) in the ring, which is re-wrapped and replaced only if no other process
/// replaced it meanwhile (compare-and-swap). Returns the new version.
///
/// # Errors
/// No wrapped ring stored, the custodian refuses, or another process changed the ring
/// meanwhile ([`ConflictKind::ChangedMeanwhile`]; nothing was changed).
pub async fn add_key(custodian: &dyn KeyCustodian, backend: &dyn Backend) -> Result<u32> {
    let stored = stored_ring(custodian, backend).await?;
    let spec = custodian.unwrap(&stored)?;
    let ring = unwrapped(custodian, &stored)?;
    let version = ring
        .keks()
        .map(strongroom_crypto::Kek::version)
        .max()
        .unwrap_or(0)
        + 1;
    let key = custodian.generate_key()?;
    let extended = SecretString::from(format!(
        "{version}:{},{}",
        key.to_hex().expose_secret(),
        spec.expose_secret()
    ));
    let blob = custodian.wrap(&extended)?;
    let name = custodian.meta_name();
    let replaced = crate::store::in_transaction(backend, move |tx| {
        Box::pin(async move {
            let current = tx.meta(name).await?;
            let unchanged = current.as_deref() == Some(stored.as_str());
            if unchanged {
                tx.set_meta(name, Some(&blob)).await?;
            }
            Ok(unchanged)
        })
    })
    .await?;
    if !replaced {
        return Err(StoreError::conflict(
            ConflictKind::ChangedMeanwhile,
            "another process changed the wrapped key ring meanwhile; nothing was changed, run again",
        ));
    }
    Ok(version)
}

/// Stores a first ring (one key from the custodian's generator), wrapped; refuses to
/// overwrite a ring. Returns its version (1).
///
/// # Errors
/// A ring is stored already ([`ConflictKind::TargetExists`]), or the custodian refuses.
pub async fn init(custodian: &dyn KeyCustodian, backend: &dyn Backend) -> Result<u32> {
    let name = custodian.meta_name();
    if backend.meta(name).await?.is_some() {
        return Err(StoreError::conflict(
            ConflictKind::TargetExists,
            format!("this database already holds a wrapped key ring ({name}); nothing was changed"),
        ));
    }
    custodian.prepare()?;
    let first = custodian.generate_key()?;
    let spec = SecretString::from(format!("1:{}", first.to_hex().expose_secret()));
    let blob = custodian.wrap(&spec)?;
    let inserted = crate::store::in_transaction(backend, move |tx| {
        Box::pin(async move {
            let kept = tx.init_meta(name, &blob).await?;
            Ok(kept == blob)
        })
    })
    .await?;
    if !inserted {
        return Err(StoreError::conflict(
            ConflictKind::ChangedMeanwhile,
            "another process stored a wrapped key ring first; nothing was changed",
        ));
    }
    Ok(1)
}
