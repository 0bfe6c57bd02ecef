//! `strongroom keys status`: where each key lives and what it protects, never a key.

use std::process::ExitCode;

use crate::cli::{KeysArgs, KeysCommand};
use crate::exit::Failure;
use crate::settings::Settings;

impl KeysArgs {
    /// `strongroom keys status [--json]`.
    pub async fn run(self) -> Result<ExitCode, Failure> {
        match self.action {
            KeysCommand::Status { json } => status(json).await,
        }
    }
}

/// One line per key version: configured (with its fingerprint and source) or only
/// recorded by the database, and how many values it seals.
async fn status(json: bool) -> Result<ExitCode, Failure> {
    let origin = match Settings::key_origin()? {
        Some(origin) => origin.to_string(),
        #[cfg(feature = "pkcs11")]
        None if std::env::var_os("STRONGROOM_PKCS11_MODULE").is_some() => {
            crate::pkcs11::config_from_env()?
                .map(|c| c.describe())
                .unwrap_or_default()
        }
        None => "a development password (STRONGROOM_MASTER_PASSWORD)".to_owned(),
    };
    let store = crate::commands::open().await?;
    let ring = store.key_ring();
    let rotation = store.rotation_status().await?;
    let mut versions: Vec<u32> = ring.keks().map(strongroom_crypto::Kek::version).collect();
    versions.extend(rotation.by_version.iter().map(|(v, _, _)| *v));
    versions.sort_unstable_by(|a, b| b.cmp(a));
    versions.dedup();
    let rows: Vec<serde_json::Value> = versions
        .iter()
        .map(|version| {
            let kek = ring.get(*version).ok();
            let (current, history) = rotation
                .by_version
                .iter()
                .find(|(v, _, _)| v == version)
                .map_or((0, 0), |(_, c, h)| (*c, *h));
            serde_json::json!({
                "version": version,
                "fingerprint": kek.map(|k| k.fingerprint().to_string()),
                "active": *version == rotation.active_version,
                "source": if kek.is_some() { origin.clone() } else { "not configured".to_owned() },
                "current_values": current,
                "kept_versions": history,
            })
        })
        .collect();
    if json {
        println!("{}", serde_json::Value::Array(rows));
        return Ok(ExitCode::SUCCESS);
    }
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    crate::commands::print_table(
        &[
            "VERSION",
            "FINGERPRINT",
            "ACTIVE",
            "SOURCE",
            "VALUES",
            "KEPT VERSIONS",
        ],
        rows.iter()
            .map(|r| {
                vec![
                    text(&r["version"]),
                    text(&r["fingerprint"]),
                    if r["active"] == true { "yes" } else { "no" }.to_owned(),
                    text(&r["source"]),
                    text(&r["current_values"]),
                    text(&r["kept_versions"]),
                ]
            })
            .collect(),
    );
    if let Some(cursor) = rotation.pending_cursor {
        eprintln!("strongroom: a rotation is pending (cursor {cursor}); run `strongroom rotate`");
    }
    Ok(ExitCode::SUCCESS)
}
