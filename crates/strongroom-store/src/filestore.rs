//! An encrypted, diff-friendly file of secrets that can be committed to a repository
//! (as Rails' `credentials.yml.enc`, but one line per secret).
//!
//! ```text
//! # Strongroom encrypted secrets: values are sealed; edit with `strongroom file`.
//! strongroom-file v1 namespace=default kek=2 fingerprint=3f1c...
//! global DATABASE_URL 1763900000000 AQAAAAIx...
//! prod   DATABASE_URL 1763900000123 AQAAAAIy...
//! mac AwAAAAL...
//! ```
//!
//! Each value is an envelope bound to `(namespace, env, key, updated)`: a value moved to
//! another line, or a line whose key, env or time was edited, does not open. The last
//! line is a keyed hash (HMAC-SHA-256 under a subkey of the KEK) over every line before
//! it, so a deleted, added or reordered line is detected too. A file written under
//! another key is refused at its header, by fingerprint.

use std::fmt::Write as _;

use base64::Engine as _;
use strongroom_crypto::secrecy::ExposeSecret as _;
use strongroom_crypto::{Context, KeyedHash};

use crate::import::{ImportAction, ImportItem, ImportReport};
use crate::{ListQuery, PendingRead, Result, SecretId, SetRequest, Store, StoreError};

const MAGIC: &str = "strongroom-file v1";
const COMMENT: &str =
    "# Strongroom encrypted secrets: values are sealed; edit with `strongroom file`.";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn value_context(namespace: &str, env: &str, key: &str, updated: i64) -> Context {
    Context::new("file")
        .with(namespace)
        .with(env)
        .with(key)
        .with(updated.to_string())
}

fn mac_context(namespace: &str) -> Context {
    Context::new("file-mac").with(namespace)
}

fn invalid(line: usize, what: &str) -> StoreError {
    StoreError::InvalidInput(format!("encrypted file, line {line}: {what}"))
}

/// An encrypted file, and the secrets it leaves out.
#[derive(Debug, Clone)]
pub struct FileExport {
    /// The file's text (sealed values; no plaintext).
    pub text: String,
    /// Expired, deleted and destroyed secrets, not in the file (for the caller to name,
    /// or refuse).
    pub left_out: Vec<crate::LeftOut>,
}

/// Writes every secret of `namespace` (only `env`, if given; no fallback) as an encrypted
/// file. Expired, deleted and destroyed secrets are left out and named in the result.
pub async fn export(
    store: &Store,
    namespace: Option<&str>,
    env: Option<&str>,
) -> Result<FileExport> {
    let namespace = namespace.unwrap_or("default").to_owned();
    let ring = store.key_ring();
    let active = ring.active();
    let mut text = format!(
        "{COMMENT}\n{MAGIC} namespace={namespace} kek={} fingerprint={}\n",
        active.version(),
        active.fingerprint()
    );
    let mut cursor = None;
    let mut left_out = Vec::new();
    loop {
        let page = store
            .list(ListQuery {
                namespace: Some(namespace.clone()),
                env: env.map(str::to_owned),
                limit: Some(1000),
                cursor,
                ..ListQuery::default()
            })
            .await?;
        for info in &page.items {
            if info.state != crate::State::Active {
                left_out.push(crate::LeftOut {
                    id: SecretId::new(&info.namespace, &info.env, &info.key),
                    state: info.state,
                });
                continue;
            }
            let secret = store
                .get_exact(&SecretId::new(&info.namespace, &info.env, &info.key))
                .await?
                // Sealed for the file under the key: no plaintext is handed out.
                .into_unaudited();
            let updated = info.updated.unix_ms();
            let sealed = ring.seal(
                &value_context(&namespace, &info.env, &info.key, updated),
                secret.value.expose_secret(),
            )?;
            let _ = writeln!(
                text,
                "{} {} {updated} {}",
                info.env,
                info.key,
                b64().encode(sealed)
            );
        }
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let mac = ring.keyed_hash(&mac_context(&namespace), text.as_bytes());
    let _ = writeln!(text, "mac {}", b64().encode(mac.to_bytes()));
    Ok(FileExport { text, left_out })
}

/// One secret read from a file.
struct Entry {
    env: String,
    key: String,
    updated: i64,
    value: strongroom_crypto::secrecy::SecretSlice<u8>,
}

/// Checks the header, the trailing MAC and every value; returns the namespace and entries.
fn read(store: &Store, text: &str) -> Result<(String, Vec<Entry>)> {
    let ring = store.key_ring();
    let mut lines: Vec<&str> = text.lines().collect();
    let (header_at, header) = lines
        .iter()
        .enumerate()
        .find(|(_, l)| !l.starts_with('#') && !l.trim().is_empty())
        .ok_or_else(|| invalid(1, "empty file"))?;
    let fields: Vec<&str> = header
        .strip_prefix(MAGIC)
        .ok_or_else(|| invalid(header_at + 1, "not a Strongroom encrypted file (v1)"))?
        .split_whitespace()
        .collect();
    let field = |name: &str| {
        fields
            .iter()
            .find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .ok_or_else(|| invalid(header_at + 1, "header lacks namespace, kek or fingerprint"))
    };
    let namespace = field("namespace")?.to_owned();
    let version: u32 = field("kek")?
        .parse()
        .map_err(|_| invalid(header_at + 1, "kek must be a number"))?;
    let fingerprint = field("fingerprint")?;
    match ring.get(version) {
        Ok(kek) if kek.fingerprint().to_string() == fingerprint => {}
        _ => {
            return Err(StoreError::WrongKey {
                version,
                configured: ring.get(version).map_or_else(
                    |_| "(not configured)".to_owned(),
                    |k| k.fingerprint().to_string(),
                ),
                recorded: fingerprint.to_owned(),
            })
        }
    }
    let mac_line = lines.pop().ok_or_else(|| invalid(1, "missing mac line"))?;
    let mac_b64 = mac_line.strip_prefix("mac ").ok_or_else(|| {
        invalid(
            lines.len() + 1,
            "the last line must be the mac (the file was cut or edited)",
        )
    })?;
    let mac = b64()
        .decode(mac_b64.trim())
        .ok()
        .and_then(|b| KeyedHash::from_bytes(&b).ok())
        .ok_or_else(|| invalid(lines.len() + 1, "malformed mac"))?;
    let mut body = lines.join("\n");
    body.push('\n');
    if !ring.verify_keyed_hash(&mac_context(&namespace), body.as_bytes(), &mac)? {
        return Err(StoreError::InvalidInput("encrypted file: the mac does not match: a line was added, removed, reordered or edited".into()));
    }
    let mut entries = Vec::new();
    for (index, line) in lines.iter().enumerate().skip(header_at + 1) {
        let number = index + 1;
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [env, key, updated, sealed] = parts[..] else {
            return Err(invalid(number, "expected ENV KEY UPDATED VALUE"));
        };
        let updated: i64 = updated
            .parse()
            .map_err(|_| invalid(number, "UPDATED must be a number"))?;
        let sealed = b64()
            .decode(sealed)
            .map_err(|_| invalid(number, "the value is not base64"))?;
        let value = ring
            .open(&value_context(&namespace, env, key, updated), &sealed)
            .map_err(|_| {
                invalid(
                    number,
                    "the value does not open: the line was altered or moved",
                )
            })?;
        entries.push(Entry {
            env: env.to_owned(),
            key: key.to_owned(),
            updated,
            value,
        });
    }
    Ok((namespace, entries))
}

/// Merges an encrypted file into the store: a line wins when its `updated` is newer than
/// the stored secret's (or the secret is missing); otherwise the store keeps its value and
/// the line is reported as a conflict. The whole file is checked before anything is
/// written, and the writes are one transaction.
pub async fn import(store: &Store, text: &str, dry_run: bool) -> Result<ImportReport> {
    let (namespace, entries) = read(store, text)?;
    let mut report = ImportReport::default();
    let mut writes = Vec::new();
    for entry in entries {
        let id = store.secret_id(Some(&namespace), Some(&entry.env), &entry.key)?;
        // Compared inside the store only: nothing is handed out, so nothing is audited.
        let action = match store.get_exact(&id).await.map(PendingRead::into_unaudited) {
            Ok(current) if current.info.updated.unix_ms() >= entry.updated => {
                if current.value.expose_secret() == entry.value.expose_secret()
                    || store.held_earlier(&id, entry.value.expose_secret()).await?
                {
                    // Unchanged, or the file holds one of this store's older versions
                    // (a local edit made since the export): nothing to merge.
                    ImportAction::SkipExisting
                } else {
                    ImportAction::Fail("conflict: the store's value is newer; kept".into())
                }
            }
            Ok(_) => ImportAction::Overwrite,
            Err(StoreError::NotFound(_)) => ImportAction::Create,
            Err(e) => return Err(e),
        };
        if matches!(action, ImportAction::Create | ImportAction::Overwrite) {
            writes.push((
                id,
                SetRequest {
                    value: entry.value,
                    ..SetRequest::default()
                },
            ));
        }
        report.items.push(ImportItem {
            key: entry.key,
            env: entry.env,
            action,
        });
    }
    if !dry_run && !writes.is_empty() {
        store.set_many(writes).await?;
        report.applied = true;
    }
    Ok(report)
}
