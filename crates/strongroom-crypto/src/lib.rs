//! # strongroom-crypto
//!
//! Layer 1 of Strongroom: the one encryption engine every other layer uses.
//!
//! - [`Key`]: 256-bit keys parsed from 64 hex characters or base64 of 32 bytes, zeroized
//!   on drop, redacted in `Debug`, with a public [`Fingerprint`].
//! - [`KeyRing`]: versioned key-encryption keys; the first is active, the rest decrypt.
//! - Envelope encryption ([`KeyRing::seal`], [`KeyRing::open`], [`KeyRing::rewrap`]):
//!   AES-256-GCM with a fresh data key per value, wrapped under the active KEK, both bound
//!   to a [`Context`].
//! - Deterministic mode ([`KeyRing::seal_deterministic`], feature `deterministic`): AES-SIV
//!   for equality lookups.
//! - Keyed hashes and blind indexes ([`KeyRing::keyed_hash`], [`KeyRing::blind_index`]).
//! - [`simple`]: PocketBase's `base64(nonce || ciphertext || tag)` format.
//! - [`PasswordParams`] (feature `password`): Argon2id password-derived keys for development.
//!
//! Both optional parts are default features; an envelope-only user turns them off with
//! `default-features = false` and pulls in neither `aes-siv` nor `argon2`.
//!
//! Every stored value starts with a format byte (see [`Format`]); layouts and test
//! vectors are in `docs/format.md`.
//!
//! ```
//! use strongroom_crypto::{Context, Key, KeyRing};
//! use strongroom_crypto::secrecy::ExposeSecret;
//!
//! let ring = KeyRing::single(&Key::generate()?);
//! let context = Context::secret("default", "prod", "DATABASE_URL");
//! let sealed = ring.seal(&context, b"postgres://...")?;
//! assert_eq!(ring.open(&context, &sealed)?.expose_secret(), b"postgres://...");
//!
//! // The same bytes under another name do not open.
//! let elsewhere = Context::secret("default", "prod", "OTHER");
//! assert_eq!(ring.open(&elsewhere, &sealed).unwrap_err(), strongroom_crypto::Error::Integrity);
//! # Ok::<(), strongroom_crypto::Error>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod context;
#[cfg(feature = "deterministic")]
mod deterministic;
mod envelope;
mod error;
mod format;
mod key;
mod keyed_hash;
mod keyring;
#[cfg(feature = "password")]
mod password;
mod random;
pub mod simple;

#[doc(hidden)]
#[cfg(all(feature = "deterministic", feature = "password"))]
pub mod fuzzing;

pub use context::Context;
pub use error::{Error, Result};
pub use format::{inspect, Format, SealedInfo, ENVELOPE_OVERHEAD, HEADER_LEN, NONCE_LEN, TAG_LEN};
pub use key::{Fingerprint, Key, KEY_LEN};
pub use keyed_hash::{KeyedHash, MAC_LEN};
pub use keyring::{Kek, KeyRing};
#[cfg(feature = "password")]
pub use password::PasswordParams;
pub use secrecy;

/// The README's examples, compiled and run as a downstream crate would (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
