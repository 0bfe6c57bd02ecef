//! Password-derived keys (development setups): Argon2id with a stored salt and parameters.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretBox, SecretString};

use crate::key::KEY_LEN;
use crate::{random, Error, Key, Result};

const SALT_LEN: usize = 16;

/// The recorded Argon2id parameters and salt that turn a password into a [`Key`].
///
/// Encoded as `argon2id$v=19$m=<KiB>,t=<iterations>,p=<lanes>$<salt, base64 no padding>`
/// (the PHC string layout without a hash), stored beside the data so the same password
/// gives the same key later.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PasswordParams {
    salt: [u8; SALT_LEN],
    memory_kib: u32,
    iterations: u32,
    lanes: u32,
}

impl PasswordParams {
    /// Default memory cost: 19 MiB (OWASP's Argon2id recommendation).
    pub const DEFAULT_MEMORY_KIB: u32 = 19 * 1024;
    /// Default iterations.
    pub const DEFAULT_ITERATIONS: u32 = 2;
    /// Smallest memory accepted when reading stored parameters.
    pub const MIN_MEMORY_KIB: u32 = 8 * 1024;

    /// Fresh parameters with a random salt and the default costs.
    pub fn generate() -> Result<Self> {
        let mut salt = [0u8; SALT_LEN];
        random::fill(&mut salt)?;
        Ok(Self {
            salt,
            memory_kib: Self::DEFAULT_MEMORY_KIB,
            iterations: Self::DEFAULT_ITERATIONS,
            lanes: 1,
        })
    }

    /// The stored string form.
    pub fn encode(&self) -> String {
        format!(
            "argon2id$v=19$m={},t={},p={}${}",
            self.memory_kib,
            self.iterations,
            self.lanes,
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(self.salt)
        )
    }

    /// Parses the stored string form, refusing weak or malformed parameters.
    pub fn decode(text: &str) -> Result<Self> {
        let malformed = || Error::Password {
            reason: "stored parameters are malformed (expected argon2id$v=19$m=..,t=..,p=..$SALT)"
                .into(),
        };
        let mut parts = text.trim().split('$');
        if parts.next() != Some("argon2id") || parts.next() != Some("v=19") {
            return Err(malformed());
        }
        let costs = parts.next().ok_or_else(malformed)?;
        let salt_text = parts.next().ok_or_else(malformed)?;
        if parts.next().is_some() {
            return Err(malformed());
        }
        let (mut memory_kib, mut iterations, mut lanes) = (None, None, None);
        for cost in costs.split(',') {
            let (name, value) = cost.split_once('=').ok_or_else(malformed)?;
            let value: u32 = value.parse().map_err(|_| malformed())?;
            let slot = match name {
                "m" => &mut memory_kib,
                "t" => &mut iterations,
                "p" => &mut lanes,
                _ => return Err(malformed()),
            };
            if slot.replace(value).is_some() {
                return Err(malformed());
            }
        }
        let salt_bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(salt_text)
            .map_err(|_| malformed())?;
        let salt: [u8; SALT_LEN] = salt_bytes.as_slice().try_into().map_err(|_| malformed())?;
        let params = Self {
            salt,
            memory_kib: memory_kib.ok_or_else(malformed)?,
            iterations: iterations.ok_or_else(malformed)?,
            lanes: lanes.ok_or_else(malformed)?,
        };
        if params.memory_kib < Self::MIN_MEMORY_KIB || params.iterations == 0 || params.lanes == 0 {
            return Err(Error::Password {
                reason: format!(
                    "stored parameters are too weak (memory must be at least {} KiB)",
                    Self::MIN_MEMORY_KIB
                ),
            });
        }
        params.argon2()?;
        Ok(params)
    }

    /// Derives the 256-bit key for `password`. An empty password is refused.
    pub fn derive_key(&self, password: &SecretString) -> Result<Key> {
        let password = password.expose_secret();
        if password.is_empty() {
            return Err(Error::Password {
                reason: "the password is empty".into(),
            });
        }
        let argon2 = self.argon2()?;
        let mut outcome = Ok(());
        let secret = SecretBox::init_with_mut(|out: &mut [u8; KEY_LEN]| {
            outcome = argon2
                .hash_password_into(password.as_bytes(), &self.salt, out)
                .map_err(|e| Error::Password {
                    reason: format!("Argon2id failed: {e}"),
                });
        });
        outcome?;
        Ok(Key::from_bytes(secret.expose_secret()))
    }

    fn argon2(&self) -> Result<Argon2<'static>> {
        let params = Params::new(self.memory_kib, self.iterations, self.lanes, Some(KEY_LEN))
            .map_err(|e| Error::Password {
                reason: format!("invalid Argon2id parameters: {e}"),
            })?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}
