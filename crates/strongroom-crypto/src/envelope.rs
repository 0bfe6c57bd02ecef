//! Envelope encryption: a fresh data key (DEK) per value, wrapped under the active KEK.
//!
//! Layout (format `0x01`), all integers big-endian:
//!
//! ```text
//! 0x01 | kek_version:4 | dek_nonce:12 | wrapped_dek:32 | dek_tag:16 | nonce:12 | ct:n | tag:16
//! ```
//!
//! The DEK is wrapped with AES-256-GCM under the KEK's `dek-wrap` subkey, with associated
//! data `"strongroom.dek.v1" || 0x01 || kek_version || context`. The value is encrypted with
//! AES-256-GCM under the DEK, with associated data `"strongroom.value.v1" || 0x01 ||
//! context`: the KEK version is not part of it, so a re-wrap leaves the value's ciphertext
//! untouched.

use aes_gcm::aead::AeadInPlace as _;
use aes_gcm::{KeyInit as _, Nonce, Tag};

use crate::format::Aes256GcmEnc;
use secrecy::SecretSlice;
use zeroize::Zeroizing;

use crate::format::{self, Format, HEADER_LEN, NONCE_LEN, TAG_LEN};
use crate::{random, Context, Error, Kek, KeyRing, Result};

const DEK_LABEL: &[u8] = b"strongroom.dek.v1";
const VALUE_LABEL: &[u8] = b"strongroom.value.v1";
const DEK_LEN: usize = 32;
const DEK_NONCE_AT: usize = HEADER_LEN;
const WRAPPED_AT: usize = DEK_NONCE_AT + NONCE_LEN;
const VALUE_NONCE_AT: usize = WRAPPED_AT + DEK_LEN + TAG_LEN;
const VALUE_CT_AT: usize = VALUE_NONCE_AT + NONCE_LEN;

impl KeyRing {
    /// Seals `plaintext` for `context` under a fresh DEK wrapped by the active KEK.
    pub fn seal(&self, context: &Context, plaintext: &[u8]) -> Result<Vec<u8>> {
        // One call to the OS for the DEK and both nonces.
        let mut random_bytes = Zeroizing::new([0u8; DEK_LEN + 2 * NONCE_LEN]);
        random::fill(random_bytes.as_mut_slice())?;
        let (dek, nonces) = random_bytes.split_at(DEK_LEN);
        let (dek_nonce, value_nonce) = nonces.split_at(NONCE_LEN);

        let kek = self.active();
        let mut out = Vec::with_capacity(format::ENVELOPE_OVERHEAD + plaintext.len());
        format::write_header(&mut out, Format::Envelope, kek.version());
        out.extend_from_slice(dek_nonce);
        out.extend_from_slice(dek);
        wrap(kek, &mut out, context)?;

        out.extend_from_slice(value_nonce);
        out.extend_from_slice(plaintext);
        let dek_cipher = Aes256GcmEnc::new(dek.into());
        let tag = format::with_aad(VALUE_LABEL, &[Format::Envelope.byte()], context, |aad| {
            dek_cipher.encrypt_in_place_detached(
                Nonce::from_slice(value_nonce),
                aad,
                &mut out[VALUE_CT_AT..],
            )
        })
        .map_err(|_| Error::Integrity)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens a value sealed by [`KeyRing::seal`] for the same `context`.
    ///
    /// Errors: [`Error::KeyVersionUnavailable`] if the ring lacks the value's KEK,
    /// [`Error::Integrity`] if anything was altered or the context differs.
    pub fn open(&self, context: &Context, sealed: &[u8]) -> Result<SecretSlice<u8>> {
        let kek = self.get(format::header(sealed, Format::Envelope)?)?;
        let dek = unwrap(kek, sealed, context)?;

        let body = &sealed[VALUE_CT_AT..];
        let (ciphertext, tag) = body.split_at(body.len() - TAG_LEN);
        let mut plaintext = ciphertext.to_vec();
        let dek_cipher = Aes256GcmEnc::new(dek.as_slice().into());
        format::with_aad(VALUE_LABEL, &[Format::Envelope.byte()], context, |aad| {
            dek_cipher.decrypt_in_place_detached(
                Nonce::from_slice(&sealed[VALUE_NONCE_AT..VALUE_CT_AT]),
                aad,
                &mut plaintext,
                Tag::from_slice(tag),
            )
        })
        .map_err(|_| Error::Integrity)?;
        Ok(SecretSlice::from(plaintext))
    }

    /// Re-wraps the DEK of `sealed` under the active KEK. The value's nonce and ciphertext
    /// are copied unchanged. Returns `None` when the value already uses the active KEK.
    pub fn rewrap(&self, context: &Context, sealed: &[u8]) -> Result<Option<Vec<u8>>> {
        let version = format::header(sealed, Format::Envelope)?;
        let active = self.active();
        if version == active.version() {
            return Ok(None);
        }
        let dek = unwrap(self.get(version)?, sealed, context)?;

        let mut dek_nonce = [0u8; NONCE_LEN];
        random::fill(&mut dek_nonce)?;
        let mut out = Vec::with_capacity(sealed.len());
        format::write_header(&mut out, Format::Envelope, active.version());
        out.extend_from_slice(&dek_nonce);
        out.extend_from_slice(dek.as_slice());
        wrap(active, &mut out, context)?;
        out.extend_from_slice(&sealed[VALUE_NONCE_AT..]);
        Ok(Some(out))
    }
}

/// Encrypts the DEK just appended to `out` (after header and DEK nonce) and appends its tag.
fn wrap(kek: &Kek, out: &mut Vec<u8>, context: &Context) -> Result<()> {
    let (head, dek) = out.split_at_mut(WRAPPED_AT);
    let tag = format::with_aad(DEK_LABEL, &head[..HEADER_LEN], context, |aad| {
        kek.wrap
            .encrypt_in_place_detached(Nonce::from_slice(&head[DEK_NONCE_AT..]), aad, dek)
    })
    .map_err(|_| Error::Integrity)?;
    out.extend_from_slice(&tag);
    Ok(())
}

/// Authenticates and decrypts the wrapped DEK of a sealed envelope.
fn unwrap(kek: &Kek, sealed: &[u8], context: &Context) -> Result<Zeroizing<[u8; DEK_LEN]>> {
    let mut dek = Zeroizing::new([0u8; DEK_LEN]);
    dek.copy_from_slice(&sealed[WRAPPED_AT..WRAPPED_AT + DEK_LEN]);
    format::with_aad(DEK_LABEL, &sealed[..HEADER_LEN], context, |aad| {
        kek.wrap.decrypt_in_place_detached(
            Nonce::from_slice(&sealed[DEK_NONCE_AT..WRAPPED_AT]),
            aad,
            dek.as_mut_slice(),
            Tag::from_slice(&sealed[WRAPPED_AT + DEK_LEN..VALUE_NONCE_AT]),
        )
    })
    .map_err(|_| Error::Integrity)?;
    Ok(dek)
}
