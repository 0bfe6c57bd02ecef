//! Configuration from the environment (the spec's `STRONGROOM_*` variables).
//!
//! Every bad value is one error that names the variable and what it expects, and never
//! repeats the value (it may be a key).

use std::path::{Path, PathBuf};

use strongroom_crypto::secrecy::{ExposeSecret as _, SecretString};
use strongroom_crypto::KeyRing;
use strongroom_store::{KeySource, StoreConfig};

/// A configuration error: the variable and what it expects.
#[derive(Debug)]
pub struct SettingsError {
    /// The variable (or variables) at fault.
    pub variable: &'static str,
    /// What was expected.
    pub expected: String,
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.variable, self.expected)
    }
}

/// Everything the commands need from the environment.
pub struct Settings {
    /// `STRONGROOM_DATABASE_URL`.
    pub database_url: String,
    /// Store policy.
    pub store: StoreConfig,
    /// `STRONGROOM_HTTP_ENABLED`.
    pub http_enabled: bool,
    /// `STRONGROOM_PG_SCHEMA`, `STRONGROOM_READ_CACHE` and `STRONGROOM_PG_CA_FILE`
    /// (PostgreSQL only).
    pub backend: strongroom_store::BackendOptions,
}

/// Reads a variable; an empty value counts as unset.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn error(variable: &'static str, expected: impl Into<String>) -> SettingsError {
    SettingsError {
        variable,
        expected: expected.into(),
    }
}

fn parse_bool(name: &'static str, default: bool) -> Result<bool, SettingsError> {
    match var(name).as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(error(name, "expected true or false")),
    }
}

fn parse_size(name: &'static str, default: usize) -> Result<usize, SettingsError> {
    match var(name) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1 << 30).contains(n))
            .ok_or_else(|| error(name, "expected a whole number from 1 to 1073741824")),
    }
}

impl Settings {
    /// Reads and checks every store setting.
    pub fn from_env() -> Result<Self, SettingsError> {
        let mut store = StoreConfig::default();
        if let Some(env) = var("STRONGROOM_DEFAULT_ENV") {
            store.check_env(&env).map_err(|_| {
                error(
                    "STRONGROOM_DEFAULT_ENV",
                    "expected an env name of a-z 0-9 _ - (at most 64 bytes)",
                )
            })?;
            store.default_env = env;
        }
        store.env_isolation = parse_bool("STRONGROOM_ENV_ISOLATION", true)?;
        store.limits.max_key_len =
            parse_size("STRONGROOM_MAX_KEY_LENGTH", store.limits.max_key_len)?;
        store.limits.max_value_size =
            parse_size("STRONGROOM_MAX_VALUE_SIZE", store.limits.max_value_size)?;
        if let Some(depth) = var("STRONGROOM_HISTORY_DEPTH") {
            store.history_depth = depth
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    error(
                        "STRONGROOM_HISTORY_DEPTH",
                        "expected a whole number from 1 to 1000",
                    )
                })?;
        }
        if let Some(spec) = var("STRONGROOM_FALLBACK") {
            store.fallback =
                StoreConfig::parse_fallback(&spec).map_err(|e| error("STRONGROOM_FALLBACK", e))?;
        }
        let http_enabled = parse_bool("STRONGROOM_HTTP_ENABLED", true)?;
        let database_url =
            var("STRONGROOM_DATABASE_URL").unwrap_or_else(|| "sqlite://strongroom.db".into());
        if !["sqlite://", "postgres://", "postgresql://"]
            .iter()
            .any(|p| database_url.starts_with(p))
        {
            return Err(error(
                "STRONGROOM_DATABASE_URL",
                "expected sqlite://PATH, sqlite:///ABSOLUTE/PATH or postgres://...",
            ));
        }
        Ok(Self {
            database_url,
            store,
            http_enabled,
            backend: strongroom_store::BackendOptions {
                pg_schema: var("STRONGROOM_PG_SCHEMA"),
                read_cache: parse_bool("STRONGROOM_READ_CACHE", false)?,
                pg_ca_file: var("STRONGROOM_PG_CA_FILE").map(std::path::PathBuf::from),
            },
        })
    }

    /// The key source, or `None` when no key is configured (the server then answers 503
    /// on secrets routes); a set but bad variable or file is still an error.
    pub fn optional_keys() -> Result<Option<KeySource>, SettingsError> {
        let configured = [
            "STRONGROOM_MASTER_KEY",
            "STRONGROOM_MASTER_KEY_FILE",
            "STRONGROOM_KEYS",
            "STRONGROOM_KEYS_FILE",
            "STRONGROOM_MASTER_PASSWORD",
        ]
        .iter()
        .any(|v| var(v).is_some())
            || [MASTER_CREDENTIAL, KEYS_CREDENTIAL]
                .iter()
                .any(|name| credential_path(name).is_some());
        if !configured {
            return Ok(None);
        }
        Self::keys().map(Some)
    }

    /// Where the configured key material comes from, for `doctor` and `keys status`.
    pub fn key_origin() -> Result<Option<KeyOrigin>, SettingsError> {
        if let Some((_, origin)) = key_text(MASTER)? {
            return Ok(Some(origin));
        }
        Ok(key_text(KEYS)?.map(|(_, origin)| origin))
    }

    /// Where the configured key comes from, for an error about the key: the password, an
    /// HSM, or the variable, file or credential that holds it.
    pub fn key_source_hint() -> String {
        if var("STRONGROOM_MASTER_PASSWORD").is_some() {
            return "check STRONGROOM_MASTER_PASSWORD: the key is derived from it".into();
        }
        if var("STRONGROOM_PKCS11_MODULE").is_some() {
            return "check the HSM settings (STRONGROOM_PKCS11_TOKEN, STRONGROOM_PKCS11_KEY): \
                    the key ring is unwrapped by the HSM"
                .into();
        }
        match (key_text(MASTER), key_text(KEYS)) {
            (Ok(Some((_, origin))), _) => format!("the key came from {origin}"),
            (_, Ok(Some((_, origin)))) => format!("the key ring came from {origin}"),
            _ => "check STRONGROOM_MASTER_KEY or STRONGROOM_KEYS".into(),
        }
    }

    /// `STRONGROOM_ADMIN_TOKEN`, if set.
    pub fn admin_token() -> Option<SecretString> {
        var("STRONGROOM_ADMIN_TOKEN").map(SecretString::from)
    }

    /// The key source: exactly one of `STRONGROOM_MASTER_KEY`, `STRONGROOM_KEYS`,
    /// `STRONGROOM_MASTER_PASSWORD`.
    pub fn keys() -> Result<KeySource, SettingsError> {
        let master = key_text(MASTER)?.map(|(text, _)| text);
        let ring = key_text(KEYS)?.map(|(text, _)| text);
        let password = var("STRONGROOM_MASTER_PASSWORD");
        if master.is_some() && ring.is_some() {
            return Err(error(
                "STRONGROOM_MASTER_KEY and STRONGROOM_KEYS",
                "set one or the other, not both, whether as variables, files or credentials (STRONGROOM_KEYS=\"2:NEW,1:OLD\" replaces STRONGROOM_MASTER_KEY)",
            ));
        }
        if password.is_some() && (master.is_some() || ring.is_some()) {
            return Err(error(
                "STRONGROOM_MASTER_PASSWORD",
                "set either a password or keys, not both (the password is for development only)",
            ));
        }
        if let Some(key) = master {
            let key = strongroom_crypto::Key::parse(key.expose_secret()).map_err(|_| {
                error(
                    "STRONGROOM_MASTER_KEY",
                    "expected 64 hex characters or base64 of 32 bytes (generate one with `strongroom keygen`)",
                )
            })?;
            return Ok(KeySource::Ring(KeyRing::single(&key)));
        }
        if let Some(spec) = ring {
            return KeyRing::parse_spec(spec.expose_secret())
                .map(KeySource::Ring)
                .map_err(|e| {
                    error(
                        "STRONGROOM_KEYS",
                        format!("{e}; expected VERSION:KEY,VERSION:KEY with the active key first"),
                    )
                });
        }
        if let Some(password) = password {
            return Ok(KeySource::Password(SecretString::from(password)));
        }
        let dev_hint = if std::path::Path::new(".strongroom/dev.key").exists() {
            "; the database `serve --dev` made here is under the key in .strongroom/dev.key: \
             `export STRONGROOM_MASTER_KEY=\"$(cat .strongroom/dev.key)\"` to use it"
        } else {
            ""
        };
        Err(error(
            "STRONGROOM_MASTER_KEY",
            format!(
                "not set; generate a key with `strongroom keygen` and put it in a 0600 file named \
                 by STRONGROOM_MASTER_KEY_FILE, or export it (or set STRONGROOM_KEYS or \
                 STRONGROOM_KEYS_FILE){dev_hint}"
            ),
        ))
    }
}

/// One kind of key material and the three places it may come from.
#[derive(Clone, Copy)]
struct KeyVariables {
    variable: &'static str,
    file: &'static str,
    both: &'static str,
    credential: &'static str,
}

const MASTER_CREDENTIAL: &str = "strongroom-master-key";
const KEYS_CREDENTIAL: &str = "strongroom-keys";

const MASTER: KeyVariables = KeyVariables {
    variable: "STRONGROOM_MASTER_KEY",
    file: "STRONGROOM_MASTER_KEY_FILE",
    both: "STRONGROOM_MASTER_KEY and STRONGROOM_MASTER_KEY_FILE",
    credential: MASTER_CREDENTIAL,
};

const KEYS: KeyVariables = KeyVariables {
    variable: "STRONGROOM_KEYS",
    file: "STRONGROOM_KEYS_FILE",
    both: "STRONGROOM_KEYS and STRONGROOM_KEYS_FILE",
    credential: KEYS_CREDENTIAL,
};

/// Where key material came from (never the material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// An environment variable (its name).
    Variable(&'static str),
    /// A file named by a `*_FILE` variable.
    File(PathBuf),
    /// A systemd credential (`$CREDENTIALS_DIRECTORY/NAME`).
    Credential(PathBuf),
}

impl std::fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Variable(name) => write!(f, "environment variable {name}"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Credential(path) => write!(f, "systemd credential {}", path.display()),
        }
    }
}

/// `$CREDENTIALS_DIRECTORY/NAME`, when systemd passed that credential.
fn credential_path(name: &str) -> Option<PathBuf> {
    let path = Path::new(&var("CREDENTIALS_DIRECTORY")?).join(name);
    path.exists().then_some(path)
}

/// The key text of one kind, from its variable, its `*_FILE` variable, or its systemd
/// credential (in that order of precedence; a variable and its file together are an
/// error, as an ambiguity is never resolved silently).
fn key_text(kind: KeyVariables) -> Result<Option<(SecretString, KeyOrigin)>, SettingsError> {
    let value = var(kind.variable);
    let file = var(kind.file);
    match (value, file) {
        (Some(_), Some(_)) => Err(error(kind.both, "set the variable or the file, not both")),
        (Some(value), None) => Ok(Some((
            SecretString::from(value),
            KeyOrigin::Variable(kind.variable),
        ))),
        (None, Some(file)) => {
            let path = PathBuf::from(file);
            read_private(kind.file, &path).map(|text| Some((text, KeyOrigin::File(path))))
        }
        (None, None) => match credential_path(kind.credential) {
            Some(path) => read_private("CREDENTIALS_DIRECTORY", &path)
                .map(|text| Some((text, KeyOrigin::Credential(path)))),
            None => Ok(None),
        },
    }
}

/// Reads a key file that only this user may read ([`crate::files::read_private`]: opened
/// first, then the open file's type, mode and owner judged), naming the variable.
fn read_private(variable: &'static str, path: &Path) -> Result<SecretString, SettingsError> {
    let text = crate::files::read_private(path).map_err(|why| error(variable, why))?;
    Ok(SecretString::from(text.trim().to_owned()))
}
