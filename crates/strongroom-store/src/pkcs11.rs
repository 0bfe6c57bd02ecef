//! The key ring wrapped by an AES-256 key that lives in an HSM (PKCS#11).
//!
//! The ring (`VERSION:KEY,…`, the `STRONGROOM_KEYS` format) is stored in the database's
//! meta table as `v1:` + base64(IV ‖ AES-256-GCM(ring)), encrypted *by the HSM* under a
//! non-extractable, sensitive AES key found by label, with the associated data
//! `strongroom.pkcs11-ring.v1`. At start the process asks the HSM to decrypt it; the ring never sits in a
//! variable, a file, or the database in clear. Configuration: `STRONGROOM_PKCS11_MODULE`,
//! `STRONGROOM_PKCS11_TOKEN`, `STRONGROOM_PKCS11_PIN_FILE` (or `STRONGROOM_PKCS11_PIN`),
//! `STRONGROOM_PKCS11_KEY` (read by the `strongroom` command into a [`Config`]).

use std::sync::Arc;

use base64::Engine as _;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use strongroom_crypto::secrecy::{ExposeSecret as _, SecretString};
use strongroom_crypto::Key;
use strongroom_crypto::KeyRing;

use crate::backend::Backend;
use crate::custody::KeyCustodian;
use crate::{KeySource, Result, StoreError};

/// The meta entry holding the wrapped ring.
pub const META: &str = "pkcs11_wrapped_ring";
/// Associated data of the wrapped ring: a ring wrapped for something else does not open.
const AAD: &[u8] = b"strongroom.pkcs11-ring.v1";

/// Where the wrapping key lives: the module, the token's label, its user PIN and the key's
/// label.
pub struct Config {
    /// The PKCS#11 library (`STRONGROOM_PKCS11_MODULE`).
    pub module: String,
    /// The token's label (`STRONGROOM_PKCS11_TOKEN`).
    pub token: String,
    /// The user PIN (`STRONGROOM_PKCS11_PIN_FILE` or `STRONGROOM_PKCS11_PIN`).
    pub pin: SecretString,
    /// Where the PIN came from, named in a wrong-PIN error (`STRONGROOM_PKCS11_PIN`, or
    /// `STRONGROOM_PKCS11_PIN_FILE (/etc/...)`).
    pub pin_origin: String,
    /// The wrapping key's label (`STRONGROOM_PKCS11_KEY`).
    pub key_label: String,
}

impl core::fmt::Debug for Config {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Config")
            .field("module", &self.module)
            .field("token", &self.token)
            .field("key_label", &self.key_label)
            .finish_non_exhaustive()
    }
}

fn config_error(message: impl Into<String>) -> StoreError {
    StoreError::Config(message.into())
}

fn key_error(message: impl Into<String>) -> StoreError {
    StoreError::KeyCustody(message.into())
}

impl Config {
    /// Where the ring's keys live, for `keys status`.
    pub fn describe(&self) -> String {
        format!(
            "PKCS#11 token {:?}, key {:?} (ring wrapped in the database)",
            self.token, self.key_label
        )
    }
}

/// A logged-in session on the configured token.
pub struct Hsm {
    session: Session,
    _context: Arc<Pkcs11>,
    key_label: String,
}

fn hsm_error(what: &str, error: &CkError) -> StoreError {
    match error {
        CkError::Pkcs11(RvError::PinIncorrect, _) => {
            key_error("the PKCS#11 PIN is wrong; nothing was read or written")
        }
        CkError::Pkcs11(RvError::PinLocked, _) => key_error("the PKCS#11 token's PIN is locked"),
        other => key_error(format!("PKCS#11: cannot {what}: {other}")),
    }
}

impl Hsm {
    /// Loads the module, finds the token by label and logs in.
    pub fn open(config: &Config) -> Result<Self> {
        let context = Pkcs11::new(&config.module).map_err(|e| {
            config_error(format!(
                "STRONGROOM_PKCS11_MODULE: cannot load {}: {e} (is the module installed and the HSM plugged in?)",
                config.module
            ))
        })?;
        context
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| hsm_error("initialize the module", &e))?;
        let slots = context
            .get_slots_with_token()
            .map_err(|e| hsm_error("list the tokens", &e))?;
        let slot = slots
            .into_iter()
            .find(|slot| {
                context
                    .get_token_info(*slot)
                    .is_ok_and(|info| info.label().trim_end() == config.token)
            })
            .ok_or_else(|| {
                key_error(format!(
                    "STRONGROOM_PKCS11_TOKEN: no token labelled {:?} in {} (unplugged, or another machine's database?)",
                    config.token, config.module
                ))
            })?;
        let session = context
            .open_rw_session(slot)
            .map_err(|e| hsm_error("open a session", &e))?;
        session
            .login(
                UserType::User,
                Some(&AuthPin::from(config.pin.expose_secret().to_owned())),
            )
            .map_err(|e| match e {
                CkError::Pkcs11(RvError::PinIncorrect, _) => key_error(format!(
                    "the PKCS#11 PIN from {} is wrong; nothing was read or written",
                    config.pin_origin
                )),
                e => hsm_error("log in", &e),
            })?;
        Ok(Self {
            session,
            _context: Arc::new(context),
            key_label: config.key_label.clone(),
        })
    }

    fn wrapping_key(&self) -> Result<Option<ObjectHandle>> {
        let found = self
            .session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(self.key_label.clone().into_bytes()),
            ])
            .map_err(|e| hsm_error("look the key up", &e))?;
        Ok(found.into_iter().next())
    }

    fn require_wrapping_key(&self) -> Result<ObjectHandle> {
        self.wrapping_key()?.ok_or_else(|| {
            key_error(format!(
                "STRONGROOM_PKCS11_KEY: no key labelled {:?} on the token (`strongroom init --pkcs11` creates one)",
                self.key_label
            ))
        })
    }

    /// The wrapping key, generated inside the token (AES-256, sensitive, never
    /// extractable) when it does not exist yet.
    fn wrapping_key_or_create(&self) -> Result<ObjectHandle> {
        if let Some(key) = self.wrapping_key()? {
            return Ok(key);
        }
        self.session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Label(self.key_label.clone().into_bytes()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                ],
            )
            .map_err(|e| hsm_error("generate the wrapping key", &e))
    }

    /// Creates the wrapping key inside the token (AES-256, sensitive, never extractable)
    /// unless it exists.
    pub fn ensure_wrapping_key(&self) -> Result<()> {
        self.wrapping_key_or_create().map(drop)
    }

    /// A new master key from the token's random number generator.
    fn random_key(&self) -> Result<Key> {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        self.session
            .generate_random_slice(bytes.as_mut())
            .map_err(|e| hsm_error("draw random bytes", &e))?;
        Ok(Key::from_bytes(&bytes))
    }

    fn wrap_with(&self, key: ObjectHandle, ring_spec: &SecretString) -> Result<String> {
        let mut iv = self
            .session
            .generate_random_vec(12)
            .map_err(|e| hsm_error("draw an IV", &e))?;
        let params = GcmParams::new(&mut iv, AAD, 128.into())
            .map_err(|e| hsm_error("set up AES-GCM", &e))?;
        let sealed = self
            .session
            .encrypt(
                &Mechanism::AesGcm(params),
                key,
                ring_spec.expose_secret().as_bytes(),
            )
            .map_err(|e| hsm_error("wrap the key ring", &e))?;
        let mut blob = iv;
        blob.extend_from_slice(&sealed);
        Ok(format!(
            "v1:{}",
            base64::engine::general_purpose::STANDARD.encode(blob)
        ))
    }

    /// `ring_spec` (`VERSION:KEY,…`) encrypted by the HSM under the wrapping key: the
    /// stored form (`v1:` + base64).
    pub fn wrap(&self, ring_spec: &SecretString) -> Result<String> {
        let key = self.require_wrapping_key()?;
        self.wrap_with(key, ring_spec)
    }

    /// The key ring in `stored`, decrypted by the HSM.
    pub fn unwrap_ring(&self, stored: &str) -> Result<KeyRing> {
        let spec = self.unwrap_spec(stored)?;
        KeyRing::parse_spec(spec.expose_secret()).map_err(|_| malformed())
    }

    /// The ring's spec (`VERSION:KEY,…`), decrypted by the HSM.
    fn unwrap_spec(&self, stored: &str) -> Result<SecretString> {
        let corrupt = || {
            key_error(format!(
                "the wrapped key ring in the database ({META}) is malformed"
            ))
        };
        let blob = stored
            .strip_prefix("v1:")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .filter(|b| b.len() > 12 + 16)
            .ok_or_else(corrupt)?;
        let key = self.require_wrapping_key()?;
        let (iv, sealed) = blob.split_at(12);
        let mut iv = iv.to_vec();
        let params = GcmParams::new(&mut iv, AAD, 128.into())
            .map_err(|e| hsm_error("set up AES-GCM", &e))?;
        let spec = zeroize::Zeroizing::new(
            self.session
                .decrypt(&Mechanism::AesGcm(params), key, sealed)
                .map_err(|_| {
                    key_error(format!(
                        "the HSM key {:?} does not open the database's key ring: another key, or an edited ring",
                        self.key_label
                    ))
                })?,
        );
        let spec = std::str::from_utf8(&spec).map_err(|_| corrupt())?;
        KeyRing::parse_spec(spec).map_err(|_| corrupt())?;
        Ok(SecretString::from(spec.to_owned()))
    }
}

fn malformed() -> StoreError {
    key_error(format!(
        "the wrapped key ring in the database ({META}) is malformed"
    ))
}

/// The HSM as the ring's custodian: the wrapping key never leaves it; the rows and the
/// compare-and-swap are [`crate::custody`]'s.
impl KeyCustodian for Hsm {
    fn meta_name(&self) -> &'static str {
        META
    }

    fn init_command(&self) -> &'static str {
        "strongroom init --pkcs11"
    }

    fn prepare(&self) -> Result<()> {
        self.ensure_wrapping_key()
    }

    fn wrap(&self, ring_spec: &SecretString) -> Result<String> {
        Hsm::wrap(self, ring_spec)
    }

    fn unwrap(&self, stored: &str) -> Result<SecretString> {
        self.unwrap_spec(stored)
    }

    fn generate_key(&self) -> Result<Key> {
        self.random_key()
    }
}

/// The key source for a database: the ring it holds, unwrapped by the HSM.
///
/// # Errors
/// The HSM can not be opened, or it does not open the stored ring.
pub async fn key_source(config: &Config, backend: &dyn Backend) -> Result<KeySource> {
    crate::custody::key_source(&Hsm::open(config)?, backend).await
}

/// `strongroom rotate --new-key` with the HSM as custodian ([`crate::custody::add_key`]).
///
/// # Errors
/// As [`crate::custody::add_key`].
pub async fn add_key(config: &Config, backend: &dyn Backend) -> Result<u32> {
    crate::custody::add_key(&Hsm::open(config)?, backend).await
}

/// `strongroom init --pkcs11`: creates the wrapping key in the token if needed, a first
/// ring key from the token's RNG, and stores the wrapped ring; refuses to overwrite one.
///
/// # Errors
/// As [`crate::custody::init`].
pub async fn init(config: &Config, backend: &dyn Backend) -> Result<u32> {
    crate::custody::init(&Hsm::open(config)?, backend).await
}
