//! The PocketBase-compatible simple format: `base64(nonce || ciphertext || tag)`.
//!
//! AES-256-GCM directly under the 32-byte master key, a 12-byte random nonce, a 16-byte
//! tag, no associated data, standard padded base64. This is exactly what Go's
//! `cipher.NewGCM(aes.NewCipher(key)).Seal(nonce, nonce, plaintext, nil)` produces, so
//! values move between PocketBase's secrets plugin and Strongroom in both directions.
//!
//! It has no format byte and no context binding: it is an interchange format for
//! import and export, never what the Strongroom store writes.

use aes_gcm::aead::AeadInPlace as _;
use aes_gcm::{KeyInit as _, Nonce, Tag};

use crate::format::Aes256GcmEnc;
use base64::Engine as _;
use secrecy::SecretSlice;

use crate::format::{NONCE_LEN, TAG_LEN};
use crate::{random, Error, Key, Result};

/// Seals `plaintext` under `key` in the simple format.
pub fn seal(key: &Key, plaintext: &[u8]) -> Result<String> {
    let mut buf = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    buf.resize(NONCE_LEN, 0);
    random::fill(&mut buf)?;
    buf.extend_from_slice(plaintext);
    let (nonce, body) = buf.split_at_mut(NONCE_LEN);
    let tag = Aes256GcmEnc::new(key.expose().into())
        .encrypt_in_place_detached(Nonce::from_slice(nonce), &[], body)
        .map_err(|_| Error::Integrity)?;
    buf.extend_from_slice(&tag);
    Ok(base64::engine::general_purpose::STANDARD.encode(&buf))
}

/// Opens a simple-format value sealed under `key`.
pub fn open(key: &Key, sealed: &str) -> Result<SecretSlice<u8>> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(sealed.trim())
        .map_err(|_| Error::Malformed {
            what: "simple-format value (expected standard padded base64)",
        })?;
    if raw.len() < NONCE_LEN + TAG_LEN {
        return Err(Error::Truncated {
            format: "simple-format value",
            needed: NONCE_LEN + TAG_LEN,
            got: raw.len(),
        });
    }
    let (nonce, rest) = raw.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut plaintext = ciphertext.to_vec();
    Aes256GcmEnc::new(key.expose().into())
        .decrypt_in_place_detached(
            Nonce::from_slice(nonce),
            &[],
            &mut plaintext,
            Tag::from_slice(tag),
        )
        .map_err(|_| Error::Integrity)?;
    Ok(SecretSlice::from(plaintext))
}
