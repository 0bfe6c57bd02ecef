//! Versioned key-encryption keys (KEKs).

use aes_gcm::KeyInit as _;

use crate::format::Aes256GcmEnc;
use secrecy::{ExposeSecret, SecretBox};

use crate::{Error, Fingerprint, Key, Result};

/// Length of the deterministic-mode subkey (AES-SIV with AES-256 uses two 256-bit keys).
#[cfg(feature = "deterministic")]
pub(crate) const SIV_KEY_LEN: usize = 64;

/// One key-encryption key with its version and the subkeys derived from it.
///
/// The KEK itself is never used directly as a cipher key: every use has its own
/// HKDF-SHA-256 subkey (`dek-wrap`, `deterministic`, `keyed-hash`), so the uses can not
/// be confused with one another nor with the simple format, which uses the raw key.
pub struct Kek {
    version: u32,
    fingerprint: Fingerprint,
    /// AES-256-GCM keyed with the `dek-wrap` subkey; key schedule computed once.
    pub(crate) wrap: Aes256GcmEnc,
    /// AES-SIV key for deterministic encryption.
    #[cfg(feature = "deterministic")]
    pub(crate) siv_key: SecretBox<[u8; SIV_KEY_LEN]>,
    /// HMAC-SHA-256 key for keyed hashes and blind indexes.
    pub(crate) hash_key: SecretBox<[u8; 32]>,
}

impl Kek {
    fn new(version: u32, key: &Key) -> Self {
        let wrap_key = SecretBox::init_with_mut(|b: &mut [u8; 32]| key.derive(b"dek-wrap", b));
        let wrap = Aes256GcmEnc::new(wrap_key.expose_secret().into());
        Self {
            version,
            fingerprint: key.fingerprint(),
            wrap,
            #[cfg(feature = "deterministic")]
            siv_key: {
                use secrecy::ExposeSecretMut as _;
                let mut siv_key = SecretBox::new(Box::new([0u8; SIV_KEY_LEN]));
                key.derive(b"deterministic", siv_key.expose_secret_mut());
                siv_key
            },
            hash_key: SecretBox::init_with_mut(|b: &mut [u8; 32]| key.derive(b"keyed-hash", b)),
        }
    }

    /// This KEK's version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The fingerprint of the key this KEK was built from.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
}

impl core::fmt::Debug for Kek {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Kek")
            .field("version", &self.version)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// An ordered set of KEKs. The first is active (used for new writes); the others only
/// decrypt. Versions are unique; reads look up the exact version a value names and never
/// try several keys.
///
/// ```
/// use strongroom_crypto::{Context, KeyRing};
/// let ring = KeyRing::parse_spec(&format!("2:{},1:{}", "22".repeat(32), "11".repeat(32))).unwrap();
/// assert_eq!(ring.active().version(), 2);
/// let sealed = ring.seal(&Context::secret("default", "global", "K"), b"v").unwrap();
/// assert_eq!(strongroom_crypto::inspect(&sealed).unwrap().kek_version, 2);
/// ```
#[derive(Debug)]
pub struct KeyRing {
    keks: Vec<Kek>,
}

impl KeyRing {
    /// Builds a ring from `(version, key)` pairs; the first pair is active.
    pub fn new<'a>(keys: impl IntoIterator<Item = (u32, &'a Key)>) -> Result<Self> {
        let mut ring: Vec<Kek> = Vec::new();
        for (version, key) in keys {
            if ring.iter().any(|existing| existing.version == version) {
                return Err(Error::InvalidKeyRing {
                    reason: format!("version {version} appears twice; versions must be unique"),
                });
            }
            ring.push(Kek::new(version, key));
        }
        if ring.is_empty() {
            return Err(Error::InvalidKeyRing {
                reason: "no keys given; at least one is required".into(),
            });
        }
        Ok(Self { keks: ring })
    }

    /// A ring holding one key as version 1 (what `STRONGROOM_MASTER_KEY` gives).
    pub fn single(key: &Key) -> Self {
        Self {
            keks: vec![Kek::new(1, key)],
        }
    }

    /// Parses `VERSION:KEY,VERSION:KEY,...` (the `STRONGROOM_KEYS` syntax); the first entry
    /// is active. Errors name the entry by position, never its key.
    pub fn parse_spec(spec: &str) -> Result<Self> {
        let mut keys = Vec::new();
        for (index, entry) in spec.split(',').enumerate() {
            let position = index + 1;
            let (version, key) =
                entry
                    .trim()
                    .split_once(':')
                    .ok_or_else(|| Error::InvalidKeyRing {
                        reason: format!("entry {position}: expected VERSION:KEY"),
                    })?;
            let version: u32 = version.trim().parse().map_err(|_| Error::InvalidKeyRing {
                reason: format!(
                    "entry {position}: version must be a whole number from 0 to 4294967295"
                ),
            })?;
            let key = Key::parse(key).map_err(|_| Error::InvalidKeyRing {
                reason: format!(
                    "entry {position} (version {version}): expected 64 hex characters or base64 of 32 bytes"
                ),
            })?;
            keys.push((version, key));
        }
        Self::new(keys.iter().map(|(v, k)| (*v, k)))
    }

    /// The active KEK, used for every new seal.
    pub fn active(&self) -> &Kek {
        &self.keks[0]
    }

    /// The KEK of exactly `version`, or [`Error::KeyVersionUnavailable`].
    pub fn get(&self, version: u32) -> Result<&Kek> {
        self.keks
            .iter()
            .find(|k| k.version == version)
            .ok_or(Error::KeyVersionUnavailable { version })
    }

    /// Every KEK, active first.
    pub fn keks(&self) -> impl Iterator<Item = &Kek> {
        self.keks.iter()
    }
}
