//! Configuration from the environment (the spec's `STRONGROOM_*` variables).
//!
//! Every bad value is one error that names the variable and what it expects, and never
//! repeats the value (it may be a key).

use strongroom_crypto::secrecy::SecretString;
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

    /// The key source, or `None` when no key variable is set (the server then answers 503
    /// on secrets routes); a set but bad variable is still an error.
    pub fn optional_keys() -> Result<Option<KeySource>, SettingsError> {
        if [
            "STRONGROOM_MASTER_KEY",
            "STRONGROOM_KEYS",
            "STRONGROOM_MASTER_PASSWORD",
        ]
        .iter()
        .all(|v| var(v).is_none())
        {
            return Ok(None);
        }
        Self::keys().map(Some)
    }

    /// `STRONGROOM_ADMIN_TOKEN`, if set.
    pub fn admin_token() -> Option<SecretString> {
        var("STRONGROOM_ADMIN_TOKEN").map(SecretString::from)
    }

    /// The key source: exactly one of `STRONGROOM_MASTER_KEY`, `STRONGROOM_KEYS`,
    /// `STRONGROOM_MASTER_PASSWORD`.
    pub fn keys() -> Result<KeySource, SettingsError> {
        let master = var("STRONGROOM_MASTER_KEY");
        let ring = var("STRONGROOM_KEYS");
        let password = var("STRONGROOM_MASTER_PASSWORD");
        if master.is_some() && ring.is_some() {
            return Err(error(
                "STRONGROOM_MASTER_KEY and STRONGROOM_KEYS",
                "set one or the other, not both (STRONGROOM_KEYS=\"2:NEW,1:OLD\" replaces STRONGROOM_MASTER_KEY)",
            ));
        }
        if password.is_some() && (master.is_some() || ring.is_some()) {
            return Err(error(
                "STRONGROOM_MASTER_PASSWORD",
                "set either a password or keys, not both (the password is for development only)",
            ));
        }
        if let Some(key) = master {
            let key = strongroom_crypto::Key::parse(&key).map_err(|_| {
                error(
                    "STRONGROOM_MASTER_KEY",
                    "expected 64 hex characters or base64 of 32 bytes (generate one with `strongroom keygen`)",
                )
            })?;
            return Ok(KeySource::Ring(KeyRing::single(&key)));
        }
        if let Some(spec) = ring {
            return KeyRing::parse_spec(&spec)
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
                "not set; generate a key with `strongroom keygen` and export it (or set \
                 STRONGROOM_KEYS){dev_hint}"
            ),
        ))
    }
}
