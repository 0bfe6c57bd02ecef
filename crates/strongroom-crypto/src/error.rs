//! The one error type of the crate. No variant carries key or plaintext material.

/// Result alias for this crate.
pub type Result<T> = core::result::Result<T, Error>;

/// Everything that can go wrong in `strongroom-crypto`.
///
/// Messages name what was expected; they never echo the input that was rejected,
/// because that input may be a key or a plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key was not 64 hex characters nor base64 of exactly 32 bytes.
    #[error(
        "invalid key: expected 64 hex characters or base64 of 32 bytes \
         (generate one with `strongroom keygen` or `openssl rand -hex 32`)"
    )]
    InvalidKey,

    /// A key ring could not be built (duplicate versions, empty, malformed spec).
    #[error("invalid key ring: {reason}")]
    InvalidKeyRing {
        /// What is wrong, without any key material.
        reason: String,
    },

    /// Authentication failed: the data was altered, or belongs to another context or key.
    #[error("integrity check failed: the data was altered, or belongs to another context or key")]
    Integrity,

    /// The sealed value names a key-encryption-key version that the ring does not hold.
    #[error("key version {version} is not in the key ring")]
    KeyVersionUnavailable {
        /// The KEK version the value was sealed under.
        version: u32,
    },

    /// The leading format byte is not one this build understands.
    #[error("unknown format byte 0x{found:02x} (expected {expected})")]
    UnknownFormat {
        /// The byte found.
        found: u8,
        /// What the caller expected, e.g. "envelope (0x01)".
        expected: &'static str,
    },

    /// The input is shorter than its format requires.
    #[error("truncated {format}: needs at least {needed} bytes, got {got}")]
    Truncated {
        /// The format being parsed.
        format: &'static str,
        /// Minimum length.
        needed: usize,
        /// Length found.
        got: usize,
    },

    /// The input is structurally wrong (bad base64, bad parameter string, ...).
    #[error("malformed {what}")]
    Malformed {
        /// What could not be parsed.
        what: &'static str,
    },

    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,

    /// Password-based key derivation failed or its parameters are unacceptable.
    #[error("password-derived key: {reason}")]
    Password {
        /// What is wrong, never the password.
        reason: String,
    },
}
