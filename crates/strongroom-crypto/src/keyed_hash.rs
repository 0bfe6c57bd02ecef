//! Keyed hashes: verify a presented value without decrypting, and blind indexes.
//!
//! HMAC-SHA-256 under the KEK's `keyed-hash` subkey over
//! `"strongroom.keyed-hash.v1" || 0x03 || kek_version || context || value`.
//! Stored form (format `0x03`): `0x03 | kek_version:4 | mac:32`.

use hmac::{Hmac, Mac as _};
use secrecy::ExposeSecret as _;
use sha2::Sha256;

use crate::format::{self, Format, HEADER_LEN};
use crate::{Context, Kek, KeyRing, Result};

const LABEL: &[u8] = b"strongroom.keyed-hash.v1";
/// Length of the MAC.
pub const MAC_LEN: usize = 32;

/// A keyed hash of a value, with the KEK version it was computed under.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyedHash {
    kek_version: u32,
    mac: [u8; MAC_LEN],
}

impl KeyedHash {
    /// Length of the stored form.
    pub const LEN: usize = HEADER_LEN + MAC_LEN;

    /// The KEK version this hash was computed under.
    pub fn kek_version(&self) -> u32 {
        self.kek_version
    }

    /// The MAC bytes (what a blind-index column stores).
    pub fn mac(&self) -> &[u8; MAC_LEN] {
        &self.mac
    }

    /// The stored form, `0x03 | kek_version | mac`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        format::write_header(&mut out, Format::KeyedHash, self.kek_version);
        out.extend_from_slice(&self.mac);
        out
    }

    /// Parses the stored form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let kek_version = format::header(bytes, Format::KeyedHash)?;
        if bytes.len() != Self::LEN {
            return Err(crate::Error::Malformed {
                what: "keyed hash (expected exactly 37 bytes)",
            });
        }
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&bytes[HEADER_LEN..]);
        Ok(Self { kek_version, mac })
    }
}

impl core::fmt::Debug for KeyedHash {
    // The MAC is an equality oracle for the value; keep it out of logs.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyedHash")
            .field("kek_version", &self.kek_version)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// The keyed hash of `value` for `context` under the active KEK.
    pub fn keyed_hash(&self, context: &Context, value: &[u8]) -> KeyedHash {
        let kek = self.active();
        KeyedHash {
            kek_version: kek.version(),
            mac: mac(kek, context, value).finalize().into_bytes().into(),
        }
    }

    /// Whether `candidate` is the value `stored` was computed from, compared in constant
    /// time. Fails with `KeyVersionUnavailable` if the ring lacks the hash's KEK.
    pub fn verify_keyed_hash(
        &self,
        context: &Context,
        candidate: &[u8],
        stored: &KeyedHash,
    ) -> Result<bool> {
        let kek = self.get(stored.kek_version)?;
        Ok(mac(kek, context, candidate)
            .verify_slice(&stored.mac)
            .is_ok())
    }

    /// A blind index of `value` for a column `context`: the active KEK's MAC bytes.
    /// Equal values in the same context give equal indexes; nothing else is revealed.
    pub fn blind_index(&self, context: &Context, value: &[u8]) -> [u8; MAC_LEN] {
        self.keyed_hash(context, value).mac
    }

    /// The blind index of `value` under every KEK of the ring, active first: while a
    /// rotation re-indexes a column, a row holds one of them (`WHERE idx IN (…)`).
    pub fn blind_index_candidates(&self, context: &Context, value: &[u8]) -> Vec<[u8; MAC_LEN]> {
        self.keks()
            .map(|kek| mac(kek, context, value).finalize().into_bytes().into())
            .collect()
    }
}

fn mac(kek: &Kek, context: &Context, value: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(kek.hash_key.expose_secret())
        .expect("HMAC accepts keys of any length");
    mac.update(LABEL);
    mac.update(&[Format::KeyedHash.byte()]);
    mac.update(&kek.version().to_be_bytes());
    mac.update(context.as_bytes());
    mac.update(value);
    mac
}
