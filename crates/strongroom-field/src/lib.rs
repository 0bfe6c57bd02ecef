//! # strongroom-field
//!
//! Layer 2 of Strongroom: encrypted fields inside an application's own records — the
//! equivalent of PocketBase's `SecretField` or Rails' `encrypts :column`.
//!
//! - [`Encrypted<T>`] holds a sealed envelope (format `0x01`) bound to its [`Column`] and
//!   row id: a ciphertext copied to another row or column does not decrypt. `Debug` is
//!   redacted and serde yields the sealed form (base64), never plaintext.
//! - Stored as BLOB / `bytea` through `rusqlite` (feature `sqlite`, or `bundled`) or `tokio-postgres`
//!   (feature `postgres`).
//! - Equality lookup without decrypting: a [`Column::blind_index`] (HMAC-SHA-256 under a
//!   per-column subkey) for a `WHERE email_bidx = ?` column, or [`Deterministic<T>`].
//! - Key rotation of a whole column in batches with progress: [`rotation`].
//!
//! ```
//! use strongroom_field::{Key, KeyRing}; // re-exported from strongroom-crypto
//! use strongroom_field::{Column, Encrypted};
//!
//! let ring = KeyRing::single(&Key::generate()?);
//! let api_token = Column::new("users", "api_token")?;
//! let sealed: Encrypted<String> = api_token.seal(&ring, "user-42", &"tok_live_123".to_owned())?;
//! assert_eq!(api_token.open(&ring, "user-42", &sealed)?, "tok_live_123");
//! assert!(api_token.open(&ring, "user-43", &sealed).is_err()); // another row
//! # Ok::<(), strongroom_field::FieldError>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod column;
mod encrypted;
#[cfg(feature = "postgres")]
mod postgres;
pub mod rotation;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use column::Column;
pub use encrypted::{Deterministic, Encrypted};
/// The key types this crate's signatures use, so one dependency suffices.
pub use strongroom_crypto::{secrecy, Context, Key, KeyRing, MAC_LEN};

/// Everything that can go wrong with a field. No variant holds a value or a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// Sealing or opening failed (wrong row or column, altered bytes, missing key version).
    #[error(transparent)]
    Crypto(#[from] strongroom_crypto::Error),
    /// The value could not be encoded or decoded as `T`.
    #[error("field value of type {type_name} could not be {operation}")]
    Encoding {
        /// The Rust type.
        type_name: &'static str,
        /// `encoded` or `decoded`.
        operation: &'static str,
    },
    /// A table or column name is not a plain SQL identifier.
    #[error(
        "invalid SQL identifier {0:?}: expected letters, digits and _ (not starting with a digit)"
    )]
    InvalidIdentifier(String),
    /// The database failed (rotation).
    #[error("database error: {0}")]
    Database(String),
}

/// Result alias.
pub type Result<T> = core::result::Result<T, FieldError>;

/// The README's examples, compiled and run as a downstream crate would (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
