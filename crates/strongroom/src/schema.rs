//! `strongroom migrate`: brings the database's schema to this build's version.

use std::process::ExitCode;

use crate::cli::MigrateArgs;
use crate::exit::Failure;
use crate::settings::Settings;

impl MigrateArgs {
    /// Applies the migrations the database lacks (as a role that may change the schema:
    /// the owner), then says which version it is at. Needs no key.
    pub async fn run(self) -> Result<ExitCode, Failure> {
        let settings = Settings::from_env()?;
        let backend =
            strongroom_store::open_backend_with(&settings.database_url, &settings.backend).await?;
        let version = backend.schema_version();
        if self.json {
            println!(
                "{}",
                serde_json::json!({"backend": backend.name(), "schema_version": version})
            );
        } else {
            eprintln!(
                "strongroom: the {} schema is current (version {})",
                backend.name(),
                version.map_or_else(|| "unknown".to_owned(), |v| v.to_string())
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}
