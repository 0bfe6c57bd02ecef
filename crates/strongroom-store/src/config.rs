//! Store policy: default env, isolation, fallback chains, limits, history depth.

use std::collections::HashMap;

use crate::{Result, StoreError};

/// Size and name limits. Defaults: key ≤ 256 bytes, value ≤ 4096 bytes.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest key name in bytes.
    pub max_key_len: usize,
    /// Largest value in bytes.
    pub max_value_size: usize,
    /// Longest env or namespace name in bytes.
    pub max_name_len: usize,
    /// Longest description in bytes.
    pub max_description_len: usize,
    /// Largest metadata JSON (serialized) in bytes.
    pub max_metadata_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_key_len: 256,
            max_value_size: 4096,
            max_name_len: 64,
            max_description_len: 1024,
            max_metadata_size: 16 * 1024,
        }
    }
}

/// How the store behaves, independent of the backend.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The env used when none is given, and the end of every fallback chain.
    pub default_env: String,
    /// With isolation off, every read and write uses `default_env`.
    pub env_isolation: bool,
    /// Explicit chains: env → the envs tried after it (e.g. `prod-eu → [prod, global]`).
    pub fallback: HashMap<String, Vec<String>>,
    /// Limits on names and sizes.
    pub limits: Limits,
    /// Versions kept per secret (the current one included). Default 10.
    pub history_depth: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            default_env: "global".into(),
            env_isolation: true,
            fallback: HashMap::new(),
            limits: Limits::default(),
            history_depth: 10,
        }
    }
}

impl StoreConfig {
    /// The envs a read of `env` tries, in order: the env itself, then its configured chain,
    /// or by default the default env. Duplicates are dropped.
    pub fn chain(&self, env: &str) -> Vec<String> {
        let mut chain = vec![env.to_owned()];
        let rest = self
            .fallback
            .get(env)
            .cloned()
            .unwrap_or_else(|| vec![self.default_env.clone()]);
        for next in rest {
            if !chain.contains(&next) {
                chain.push(next);
            }
        }
        chain
    }

    /// Parses fallback chains written `prod-eu=prod>global;staging=global`.
    pub fn parse_fallback(spec: &str) -> std::result::Result<HashMap<String, Vec<String>>, String> {
        let mut chains = HashMap::new();
        for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (env, rest) = entry.split_once('=').ok_or_else(|| {
                format!("expected ENV=NEXT>NEXT..., got an entry without '=': {entry:?}")
            })?;
            let next: Vec<String> = rest.split('>').map(|s| s.trim().to_owned()).collect();
            for name in std::iter::once(env.trim()).chain(next.iter().map(String::as_str)) {
                check_env_like("env", name, 64).map_err(|e| e.to_string())?;
            }
            chains.insert(env.trim().to_owned(), next);
        }
        Ok(chains)
    }

    /// Checks a key name.
    pub fn check_key(&self, key: &str) -> Result<()> {
        let max = self.limits.max_key_len;
        if key.is_empty() {
            return Err(invalid("key", "must not be empty".into()));
        }
        if key.len() > max {
            return Err(invalid(
                "key",
                format!(
                    "is {} bytes; the maximum is {max} (STRONGROOM_MAX_KEY_LENGTH)",
                    key.len()
                ),
            ));
        }
        if let Some(c) = key
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "_.-/".contains(*c)))
        {
            return Err(invalid(
                "key",
                format!("contains {c:?}; allowed are A-Z a-z 0-9 _ . - /"),
            ));
        }
        Ok(())
    }

    /// Checks the segments of a key a write creates or replaces: split at `/`, none may be
    /// empty, `.` or `..` (`a//b`, `/a`, `a/`, `./a`). Such names are paths on `/v1`, in
    /// the console and in files, where they are unreachable or mean something else, so
    /// one grammar holds on every surface. Older keys that break it stay readable,
    /// deletable and movable (`strongroom mv`); `doctor` lists them.
    pub fn check_key_segments(key: &str) -> Result<()> {
        if key
            .split('/')
            .any(|segment| matches!(segment, "" | "." | ".."))
        {
            return Err(invalid(
                "key",
                "has an empty, `.` or `..` segment between `/`s; name it like a path \
                 (`app/DB_URL`), without leading, trailing or doubled `/`"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Checks an env name.
    pub fn check_env(&self, env: &str) -> Result<()> {
        check_env_like("env", env, self.limits.max_name_len)
    }

    /// Checks a namespace name.
    pub fn check_namespace(&self, namespace: &str) -> Result<()> {
        check_env_like("namespace", namespace, self.limits.max_name_len)
    }
}

fn check_env_like(what: &'static str, name: &str, max: usize) -> Result<()> {
    if name.is_empty() {
        return Err(invalid(what, "must not be empty".into()));
    }
    if name.len() > max {
        return Err(invalid(
            what,
            format!("is {} bytes; the maximum is {max}", name.len()),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
    {
        return Err(invalid(
            what,
            format!("contains {c:?}; allowed are a-z 0-9 _ -"),
        ));
    }
    Ok(())
}

fn invalid(what: &'static str, reason: String) -> StoreError {
    StoreError::InvalidName { what, reason }
}
