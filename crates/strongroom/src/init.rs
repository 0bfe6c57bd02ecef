//! `strongroom init --pkcs11`: the database's key ring, created inside an HSM.

use std::process::ExitCode;

use crate::cli::InitArgs;
use crate::exit::{code, Failure};

impl InitArgs {
    /// Creates the wrapped ring (first key from the HSM's RNG); refuses to overwrite one.
    pub async fn run(self) -> Result<ExitCode, Failure> {
        let _ = self.pkcs11;
        #[cfg(feature = "pkcs11")]
        {
            let config = crate::pkcs11::config_from_env()?.ok_or_else(|| Failure {
                message: "STRONGROOM_PKCS11_MODULE: not set (init --pkcs11 needs the HSM's module, token, PIN and key label)".into(),
                code: code::CONFIG,
            })?;
            let settings = crate::settings::Settings::from_env()?;
            let backend =
                strongroom_store::open_backend_with(&settings.database_url, &settings.backend)
                    .await?;
            let version = crate::pkcs11::init(&config, backend.as_ref()).await?;
            eprintln!(
                "strongroom: created key version {version} inside the HSM and stored the ring wrapped by {}",
                config.describe()
            );
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(not(feature = "pkcs11"))]
        Err(Failure {
            message: "this build has no PKCS#11 support (feature `pkcs11`)".into(),
            code: code::CONFIG,
        })
    }
}
