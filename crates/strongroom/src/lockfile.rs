//! Deploy lock files: `strongroom lock`, `lock diff` and the reads of `run --lock`.
//!
//! A lock file is JSON, safe to commit: per key the env that served it, the version and
//! a keyed hash of the value (no plaintext; the hash is an HMAC under the key ring, so
//! the file alone tests no guess). `run --lock` injects exactly the locked values (the
//! named version, or the kept version holding that value) or starts nothing.

use std::path::Path;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use strongroom_store::{LockEntry, PendingRead, Store};

use crate::cli::{LockArgs, LockCommand};
use crate::exit::Failure;

/// The format marker of a lock file.
const FORMAT: &str = "strongroom-lock/1";

/// Largest lock file read (a lock of 10 000 keys is about 1.5 MB).
const MAX_LOCK_SIZE: u64 = 16 << 20;

/// A lock file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockFile {
    format: String,
    namespace: String,
    env: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    only: Option<String>,
    secrets: Vec<LockedSecret>,
}

/// One locked secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockedSecret {
    key: String,
    env: String,
    version: u32,
    /// Hex of the keyed hash's stored form.
    hash: String,
}

impl LockedSecret {
    fn of(entry: LockEntry) -> Self {
        Self {
            key: entry.key,
            env: entry.env,
            version: entry.version,
            hash: hex::encode(entry.hash),
        }
    }

    fn entry(&self, file: &Path) -> Result<LockEntry, Failure> {
        let hash = hex::decode(&self.hash).map_err(|_| {
            Failure::input(format!(
                "{}: the hash of {} is not hex",
                file.display(),
                self.key
            ))
        })?;
        Ok(LockEntry {
            key: self.key.clone(),
            env: self.env.clone(),
            version: self.version,
            hash,
        })
    }
}

impl LockArgs {
    /// `strongroom lock` and `strongroom lock diff`.
    pub async fn run(self) -> Result<ExitCode, Failure> {
        let store = crate::commands::open().await?;
        match self.action {
            None => {
                let probe = store.secret_id(self.namespace.as_deref(), self.env.as_deref(), "_")?;
                let pinned = store
                    .lock_env(
                        Some(&probe.namespace),
                        Some(&probe.env),
                        self.only.as_deref(),
                    )
                    .await?;
                crate::states::leave_out(&pinned.left_out, self.strict)?;
                let entries = pinned.entries;
                let lock = LockFile {
                    format: FORMAT.into(),
                    namespace: probe.namespace,
                    env: probe.env,
                    only: self.only,
                    secrets: entries.into_iter().map(LockedSecret::of).collect(),
                };
                let text = serde_json::to_string_pretty(&lock)
                    .map_err(|e| Failure::io(format!("writing the lock: {e}")))?;
                println!("{text}");
                Ok(ExitCode::SUCCESS)
            }
            Some(LockCommand::Diff {
                file,
                exit_code,
                json,
            }) => diff(&store, &file, exit_code, json).await,
        }
    }
}

/// Reads and checks a lock file.
fn read(file: &Path) -> Result<LockFile, Failure> {
    let name = file.display();
    let size = std::fs::metadata(file)
        .map_err(|e| Failure::input(format!("{name}: {e}")))?
        .len();
    if size > MAX_LOCK_SIZE {
        return Err(Failure::input(format!(
            "{name}: {size} bytes is too large for a lock file"
        )));
    }
    let text = std::fs::read_to_string(file).map_err(|e| Failure::input(format!("{name}: {e}")))?;
    let lock: LockFile = serde_json::from_str(&text).map_err(|e| {
        Failure::input(format!(
            "{name}: not a strongroom lock file (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    if lock.format != FORMAT {
        return Err(Failure::input(format!(
            "{name}: format {:?} is not {FORMAT:?}",
            lock.format
        )));
    }
    let mut keys = std::collections::HashSet::new();
    if let Some(twice) = lock.secrets.iter().find(|s| !keys.insert(s.key.as_str())) {
        return Err(Failure::input(format!(
            "{name}: {} is locked twice",
            twice.key
        )));
    }
    Ok(lock)
}

/// The reads of `run --lock FILE`: exactly the locked versions, each checked against its
/// hash. Every key that can not be served as locked is named, and none is read, so the
/// command does not start. `namespace`/`env`, when given, must be the lock's.
pub async fn locked_reads(
    store: &Store,
    file: &Path,
    namespace: Option<&str>,
    env: Option<&str>,
) -> Result<Vec<PendingRead>, Failure> {
    let lock = read(file)?;
    let name = file.display();
    if namespace.is_some_and(|n| n != lock.namespace) || env.is_some_and(|e| e != lock.env) {
        return Err(Failure::input(format!(
            "{name} locks {}/{}; --namespace/--env must be those or left out",
            lock.namespace, lock.env
        )));
    }
    let mut reads = Vec::with_capacity(lock.secrets.len());
    let mut refused = Vec::new();
    for secret in &lock.secrets {
        match store
            .get_locked(&lock.namespace, &secret.entry(file)?)
            .await
        {
            Ok(read) => reads.push(read),
            Err(e) => refused.push(format!("{}: {e}", secret.key)),
        }
    }
    if refused.is_empty() {
        Ok(reads)
    } else {
        Err(Failure::input(format!(
            "{name}: not starting the command; {} locked secret(s) can not be served as locked: {}",
            refused.len(),
            refused.join("; ")
        )))
    }
}

/// `lock diff FILE`.
async fn diff(
    store: &Store,
    file: &Path,
    exit_code: bool,
    json: bool,
) -> Result<ExitCode, Failure> {
    let lock = read(file)?;
    let now: Vec<LockedSecret> = store
        .lock_env(Some(&lock.namespace), Some(&lock.env), lock.only.as_deref())
        .await?
        .entries
        .into_iter()
        .map(LockedSecret::of)
        .collect();
    let then: std::collections::BTreeMap<&str, &LockedSecret> =
        lock.secrets.iter().map(|s| (s.key.as_str(), s)).collect();
    let current: std::collections::BTreeMap<&str, &LockedSecret> =
        now.iter().map(|s| (s.key.as_str(), s)).collect();
    let mut changed = Vec::new();
    let mut added = Vec::new();
    for (key, new) in &current {
        let Some(old) = then.get(key) else {
            added.push(serde_json::json!({"key": key, "env": new.env, "version": new.version}));
            continue;
        };
        // The value and where it is served decide; version numbers differ between
        // databases holding the same values, and hash bytes between key versions.
        let same = old.env == new.env
            && (old.hash == new.hash
                || store
                    .lock_entry_is_current(&lock.namespace, &old.entry(file)?)
                    .await?);
        if !same {
            changed.push(serde_json::json!({
                "key": key,
                "from": {"env": old.env, "version": old.version},
                "to": {"env": new.env, "version": new.version},
            }));
        }
    }
    let removed: Vec<serde_json::Value> = then
        .iter()
        .filter(|(key, _)| !current.contains_key(*key))
        .map(|(key, old)| serde_json::json!({"key": key, "env": old.env, "version": old.version}))
        .collect();
    let moved = !(changed.is_empty() && added.is_empty() && removed.is_empty());
    if json {
        println!(
            "{}",
            serde_json::json!({"changed": changed, "added": added, "removed": removed})
        );
    } else if !moved {
        println!(
            "nothing moved since the lock ({}/{})",
            lock.namespace, lock.env
        );
    } else {
        for c in &changed {
            println!(
                "changed {}: {} v{} -> {} v{}",
                c["key"].as_str().unwrap_or_default(),
                c["from"]["env"].as_str().unwrap_or_default(),
                c["from"]["version"],
                c["to"]["env"].as_str().unwrap_or_default(),
                c["to"]["version"]
            );
        }
        for (word, list) in [("added", &added), ("removed", &removed)] {
            for item in list {
                println!(
                    "{word} {}: {} v{}",
                    item["key"].as_str().unwrap_or_default(),
                    item["env"].as_str().unwrap_or_default(),
                    item["version"]
                );
            }
        }
    }
    Ok(if moved && exit_code {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
