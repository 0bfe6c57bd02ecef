//! `Encrypted<T>` and `Deterministic<T>`: sealed bytes with the type they open to.

use std::marker::PhantomData;

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use strongroom_crypto::secrecy::ExposeSecret as _;
use strongroom_crypto::{inspect, Context, Format, KeyRing};

use crate::{FieldError, Result};

/// An encrypted value of type `T`: an envelope (format `0x01`) sealed for one column and
/// row. It holds only ciphertext; opening needs the key ring and the same column and row.
///
/// `T` is encoded as JSON before sealing (a `String` as a JSON string, `Vec<u8>` as an
/// array), so any `Serialize + DeserializeOwned` type works.
pub struct Encrypted<T> {
    sealed: Vec<u8>,
    _type: PhantomData<fn() -> T>,
}

/// A deterministically encrypted value of type `T` (format `0x02`, AES-SIV): equal values
/// of one column have equal bytes, so the column can be searched by equality.
pub struct Deterministic<T> {
    sealed: Vec<u8>,
    _type: PhantomData<fn() -> T>,
}

fn encode<T: Serialize>(value: &T) -> Result<strongroom_crypto::secrecy::SecretSlice<u8>> {
    serde_json::to_vec(value)
        .map(strongroom_crypto::secrecy::SecretSlice::from)
        .map_err(|_| FieldError::Encoding {
            type_name: std::any::type_name::<T>(),
            operation: "encoded",
        })
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|_| FieldError::Encoding {
        type_name: std::any::type_name::<T>(),
        operation: "decoded",
    })
}

macro_rules! sealed_type {
    ($name:ident, $format:expr, $label:literal) => {
        impl<T> $name<T> {
            /// Wraps stored bytes, checking their format byte and length (not their integrity:
            /// that is checked when opening).
            pub fn from_sealed(sealed: Vec<u8>) -> Result<Self> {
                let info = inspect(&sealed)?;
                if info.format != $format {
                    return Err(FieldError::Crypto(
                        strongroom_crypto::Error::UnknownFormat {
                            found: sealed[0],
                            expected: $label,
                        },
                    ));
                }
                Ok(Self {
                    sealed,
                    _type: PhantomData,
                })
            }

            /// The stored bytes.
            pub fn as_sealed(&self) -> &[u8] {
                &self.sealed
            }

            /// The KEK version the value is sealed under.
            pub fn kek_version(&self) -> u32 {
                u32::from_be_bytes([
                    self.sealed[1],
                    self.sealed[2],
                    self.sealed[3],
                    self.sealed[4],
                ])
            }
        }

        impl<T> Clone for $name<T> {
            fn clone(&self) -> Self {
                Self {
                    sealed: self.sealed.clone(),
                    _type: PhantomData,
                }
            }
        }

        impl<T> PartialEq for $name<T> {
            fn eq(&self, other: &Self) -> bool {
                self.sealed == other.sealed
            }
        }

        impl<T> Eq for $name<T> {}

        impl<T> core::fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(
                    f,
                    "{}<{}>([sealed, {} bytes])",
                    stringify!($name),
                    std::any::type_name::<T>(),
                    self.sealed.len()
                )
            }
        }

        /// Serializes the sealed form as standard base64, never the plaintext.
        impl<T> Serialize for $name<T> {
            fn serialize<S: Serializer>(
                &self,
                serializer: S,
            ) -> core::result::Result<S::Ok, S::Error> {
                serializer
                    .serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.sealed))
            }
        }

        impl<'de, T> Deserialize<'de> for $name<T> {
            fn deserialize<D: Deserializer<'de>>(
                deserializer: D,
            ) -> core::result::Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|_| {
                        serde::de::Error::custom("expected the base64 of a sealed value")
                    })?;
                Self::from_sealed(bytes).map_err(serde::de::Error::custom)
            }
        }
    };
}

sealed_type!(Encrypted, Format::Envelope, "envelope (0x01)");
sealed_type!(Deterministic, Format::Deterministic, "deterministic (0x02)");

impl<T: Serialize + DeserializeOwned> Encrypted<T> {
    /// Seals `value` for `context` under the active key (fresh data key and nonces).
    pub fn seal(ring: &KeyRing, context: &Context, value: &T) -> Result<Self> {
        let plaintext = encode(value)?;
        Ok(Self {
            sealed: ring.seal(context, plaintext.expose_secret())?,
            _type: PhantomData,
        })
    }

    /// Opens for `context`; another row or column gives `Integrity`.
    pub fn open(&self, ring: &KeyRing, context: &Context) -> Result<T> {
        decode(ring.open(context, &self.sealed)?.expose_secret())
    }
}

impl<T: Serialize + DeserializeOwned> Deterministic<T> {
    /// Seals deterministically for `context` under the active key.
    pub fn seal(ring: &KeyRing, context: &Context, value: &T) -> Result<Self> {
        let plaintext = encode(value)?;
        Ok(Self {
            sealed: ring.seal_deterministic(context, plaintext.expose_secret())?,
            _type: PhantomData,
        })
    }

    /// Opens for `context`.
    pub fn open(&self, ring: &KeyRing, context: &Context) -> Result<T> {
        decode(
            ring.open_deterministic(context, &self.sealed)?
                .expose_secret(),
        )
    }
}
