//! Wire-format constants and header parsing shared by every sealed value.
//!
//! Every value Strongroom stores starts with a format byte and a 4-byte big-endian KEK
//! version. `docs/format.md` gives the full layouts and test vectors.

use crate::{Error, Result};

/// AES-GCM nonce length.
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;
/// AES-256-GCM over the encrypt-only AES key schedule: GCM never runs the block cipher
/// backwards, so the decryption round keys the default `Aes256Gcm` also expands are
/// skipped (about a fifth of the per-DEK setup cost).
pub(crate) type Aes256GcmEnc = aes_gcm::AesGcm<aes::Aes256Enc, aes_gcm::aead::consts::U12>;

/// Length of the format byte plus the KEK version.
pub const HEADER_LEN: usize = 5;

/// The kinds of sealed value, by their leading byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// `0x01`: envelope encryption (random DEK wrapped under a KEK), AES-256-GCM.
    Envelope,
    /// `0x02`: deterministic encryption, AES-SIV (RFC 5297) under a KEK subkey.
    Deterministic,
    /// `0x03`: keyed hash, HMAC-SHA-256 under a KEK subkey.
    KeyedHash,
}

impl Format {
    /// The leading byte of this format.
    pub const fn byte(self) -> u8 {
        match self {
            Self::Envelope => 0x01,
            Self::Deterministic => 0x02,
            Self::KeyedHash => 0x03,
        }
    }

    /// The format a leading byte names.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0x01 => Some(Self::Envelope),
            0x02 => Some(Self::Deterministic),
            0x03 => Some(Self::KeyedHash),
            _ => None,
        }
    }

    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Envelope => "envelope (0x01)",
            Self::Deterministic => "deterministic (0x02)",
            Self::KeyedHash => "keyed hash (0x03)",
        }
    }

    /// The smallest valid length of a value in this format.
    pub const fn min_len(self) -> usize {
        match self {
            Self::Envelope => ENVELOPE_OVERHEAD,
            Self::Deterministic => HEADER_LEN + TAG_LEN,
            Self::KeyedHash => HEADER_LEN + 32,
        }
    }
}

/// Bytes an envelope adds to a plaintext: header, DEK nonce, wrapped DEK and tag, value
/// nonce, value tag.
pub const ENVELOPE_OVERHEAD: usize = HEADER_LEN + NONCE_LEN + (32 + TAG_LEN) + NONCE_LEN + TAG_LEN;

/// What the header of a sealed value says, read without any key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedInfo {
    /// The value's format.
    pub format: Format,
    /// The KEK version it was sealed under.
    pub kek_version: u32,
}

/// Reads the header of any sealed value without decrypting it.
pub fn inspect(sealed: &[u8]) -> Result<SealedInfo> {
    let Some(&first) = sealed.first() else {
        return Err(Error::Truncated {
            format: "sealed value",
            needed: HEADER_LEN,
            got: 0,
        });
    };
    let format = Format::from_byte(first).ok_or(Error::UnknownFormat {
        found: first,
        expected: "0x01, 0x02 or 0x03",
    })?;
    header(sealed, format).map(|kek_version| SealedInfo {
        format,
        kek_version,
    })
}

/// Checks the format byte and minimum length, and returns the KEK version.
pub(crate) fn header(sealed: &[u8], expected: Format) -> Result<u32> {
    let Some(&first) = sealed.first() else {
        return Err(Error::Truncated {
            format: expected.name(),
            needed: expected.min_len(),
            got: 0,
        });
    };
    if first != expected.byte() {
        return Err(Error::UnknownFormat {
            found: first,
            expected: expected.name(),
        });
    }
    if sealed.len() < expected.min_len() {
        return Err(Error::Truncated {
            format: expected.name(),
            needed: expected.min_len(),
            got: sealed.len(),
        });
    }
    Ok(u32::from_be_bytes([
        sealed[1], sealed[2], sealed[3], sealed[4],
    ]))
}

/// Writes the 5-byte header.
pub(crate) fn write_header(out: &mut Vec<u8>, format: Format, kek_version: u32) {
    out.push(format.byte());
    out.extend_from_slice(&kek_version.to_be_bytes());
}

/// Calls `f` with the associated data `label || header || context`, built on the stack
/// when it is small (the common case) so sealing and opening do not allocate for it.
pub(crate) fn with_aad<R>(
    label: &[u8],
    header: &[u8],
    context: &crate::Context,
    f: impl FnOnce(&[u8]) -> R,
) -> R {
    const STACK: usize = 384;
    let context = context.as_bytes();
    let len = label.len() + header.len() + context.len();
    if len <= STACK {
        let mut buf = [0u8; STACK];
        buf[..label.len()].copy_from_slice(label);
        buf[label.len()..label.len() + header.len()].copy_from_slice(header);
        buf[label.len() + header.len()..len].copy_from_slice(context);
        f(&buf[..len])
    } else {
        f(&[label, header, context].concat())
    }
}
