//! Where the keys come from (variables, files, credentials, or an HSM-wrapped ring in the
//! database), and `strongroom keys status`: where each key lives, never a key.

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
    versions.extend(rotation.by_version.iter().map(|usage| usage.kek_version));
    versions.sort_unstable_by(|a, b| b.cmp(a));
    versions.dedup();
    let rows: Vec<serde_json::Value> = versions
        .iter()
        .map(|version| {
            let kek = ring.get(*version).ok();
            let (current, history) = rotation
                .by_version
                .iter()
                .find(|usage| usage.kek_version == *version)
                .map_or((0, 0), |usage| (usage.current, usage.history));
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
    crate::output::print_table(
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

/// Where the keys come from, checked without the database: the keys themselves (variables,
/// files, credentials), or `Hsm` when `STRONGROOM_PKCS11_MODULE` is set (then no other
/// key may be), whose ring is in the database.
pub enum ConfiguredKeys {
    /// Keys the configuration holds.
    Held(strongroom_store::KeySource),
    /// A ring wrapped in the database by an HSM key.
    #[cfg(feature = "pkcs11")]
    Hsm(crate::pkcs11::Config),
}

/// The key configuration, every mistake in it reported before any database is opened (so a
/// bad key never creates a database file).
pub fn configured_keys() -> Result<ConfiguredKeys, Failure> {
    #[cfg(feature = "pkcs11")]
    if let Some(config) = crate::pkcs11::config_from_env()? {
        if Settings::optional_keys()?.is_some() {
            return Err(Failure {
                message: "STRONGROOM_PKCS11_MODULE: set either an HSM or a key (variable, file or credential), not both".into(),
                code: crate::exit::code::CONFIG,
            });
        }
        return Ok(ConfiguredKeys::Hsm(config));
    }
    Ok(ConfiguredKeys::Held(Settings::keys()?))
}

impl ConfiguredKeys {
    /// The key source; an HSM unwraps the ring the database holds.
    pub async fn resolve(
        self,
        backend: &dyn strongroom_store::backend::Backend,
    ) -> Result<strongroom_store::KeySource, Failure> {
        match self {
            Self::Held(keys) => {
                let _ = backend;
                Ok(keys)
            }
            #[cfg(feature = "pkcs11")]
            Self::Hsm(config) => Ok(crate::pkcs11::key_source(&config, backend).await?),
        }
    }
}

/// The configured keys for `backend` ([`configured_keys`], then [`ConfiguredKeys::resolve`]).
pub async fn key_source(
    backend: &dyn strongroom_store::backend::Backend,
) -> Result<strongroom_store::KeySource, Failure> {
    configured_keys()?.resolve(backend).await
}

/// `rotate --new-key`: a new ring version generated inside the HSM.
pub async fn add_hsm_key() -> Result<(), Failure> {
    #[cfg(feature = "pkcs11")]
    if let Some(config) = crate::pkcs11::config_from_env()? {
        let settings = Settings::from_env()?;
        let backend =
            strongroom_store::open_backend_with(&settings.database_url, &settings.backend).await?;
        let version = crate::pkcs11::add_key(&config, backend.as_ref()).await?;
        eprintln!("strongroom: key version {version} generated inside the HSM and made active");
        return Ok(());
    }
    Err(Failure {
        message: "--new-key needs an HSM (STRONGROOM_PKCS11_MODULE); with keys you hold, put the new key first in STRONGROOM_KEYS".into(),
        code: crate::exit::code::CONFIG,
    })
}
