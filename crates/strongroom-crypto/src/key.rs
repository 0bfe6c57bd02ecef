//! 256-bit keys: parsing, generation, fingerprints.

use base64::Engine as _;
use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{random, Error, Result};

/// Length of every key in bytes (AES-256).
pub const KEY_LEN: usize = 32;

/// Salt of every HKDF extraction in Strongroom (a fixed, public domain label).
pub(crate) const HKDF_SALT: &[u8] = b"strongroom/v1";

/// A 256-bit secret key, zeroized on drop and redacted in `Debug`.
///
/// ```
/// use strongroom_crypto::Key;
/// let key = Key::parse(&"11".repeat(32)).unwrap();
/// let shown = format!("{key:?}");
/// assert!(shown.contains(&key.fingerprint().to_string()) && !shown.contains("1111"));
/// assert!(Key::parse("not a key").is_err());
/// ```
pub struct Key(SecretBox<[u8; KEY_LEN]>);

impl Key {
    /// Generates a key from the OS CSPRNG.
    pub fn generate() -> Result<Self> {
        let mut result = Ok(());
        let secret = SecretBox::init_with_mut(|bytes: &mut [u8; KEY_LEN]| {
            result = random::fill(bytes);
        });
        result.map(|()| Self(secret))
    }

    /// Wraps raw key bytes. The caller's copy should be zeroized by the caller.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        Self(SecretBox::init_with_mut(|b: &mut [u8; KEY_LEN]| {
            b.copy_from_slice(bytes);
        }))
    }

    /// Parses a key given as 64 hex characters (`openssl rand -hex 32`) or as base64 of
    /// 32 bytes (`openssl rand -base64 32`). Surrounding whitespace is ignored.
    ///
    /// The error never contains the input.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut key = Ok(());
            let secret = SecretBox::init_with_mut(|b: &mut [u8; KEY_LEN]| {
                key = hex::decode_to_slice(text, b).map_err(|_| Error::InvalidKey);
            });
            return key.map(|()| Self(secret));
        }
        // base64 of 32 bytes is 44 characters with padding, 43 without.
        if !(43..=44).contains(&text.len()) {
            return Err(Error::InvalidKey);
        }
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
                .map_err(|_| Error::InvalidKey)?,
        );
        let bytes: &[u8; KEY_LEN] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| Error::InvalidKey)?;
        Ok(Self::from_bytes(bytes))
    }

    /// The key as 64 lowercase hex characters, for `strongroom keygen`.
    pub fn to_hex(&self) -> SecretString {
        SecretString::from(hex::encode(self.expose()))
    }

    /// The key as standard, padded base64.
    pub fn to_base64(&self) -> SecretString {
        SecretString::from(base64::engine::general_purpose::STANDARD.encode(self.expose()))
    }

    /// A public, non-secret identifier of this key (see [`Fingerprint`]).
    pub fn fingerprint(&self) -> Fingerprint {
        let mut out = [0u8; Fingerprint::LEN];
        self.derive(b"fingerprint", &mut out);
        Fingerprint(out)
    }

    /// HKDF-SHA-256 (salt `strongroom/v1`, this key as IKM) expanded with `info` into `out`.
    pub(crate) fn derive(&self, info: &[u8], out: &mut [u8]) {
        let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), self.expose());
        // Output lengths are compile-time constants far below 255 * 32 bytes.
        hkdf.expand(info, out)
            .expect("HKDF output length is a small constant");
    }

    /// The raw key bytes, for this crate's ciphers only.
    pub(crate) fn expose(&self) -> &[u8; KEY_LEN] {
        self.0.expose_secret()
    }
}

impl Clone for Key {
    fn clone(&self) -> Self {
        Self::from_bytes(self.expose())
    }
}

impl core::fmt::Debug for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Key")
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

/// A public identifier of a key: the first 8 bytes of HKDF-SHA-256(key, info
/// `fingerprint`), shown as 16 hex characters.
///
/// It lets a store tell "wrong master key" from "corrupted data" before it writes.
/// Knowing it does not help recover a random 256-bit key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; Fingerprint::LEN]);

impl Fingerprint {
    /// Length in bytes.
    pub const LEN: usize = 8;

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }

    /// Parses the 16-hex-character form.
    pub fn from_hex(text: &str) -> Result<Self> {
        let mut out = [0u8; Self::LEN];
        hex::decode_to_slice(text.trim(), &mut out).map_err(|_| Error::Malformed {
            what: "key fingerprint (expected 16 hex characters)",
        })?;
        Ok(Self(out))
    }
}

impl core::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl core::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}
