//! The HSM's configuration from the environment; the wrapping itself is
//! `strongroom_store::pkcs11`.

use strongroom_crypto::secrecy::SecretString;
pub use strongroom_store::pkcs11::{add_key, init, key_source, Config};

use crate::exit::{code, Failure};

fn config_error(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: code::CONFIG,
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `STRONGROOM_PKCS11_MODULE`, `_TOKEN`, `_PIN_FILE` (0600, or `_PIN`) and `_KEY`; `None`
/// when no module is configured.
pub fn config_from_env() -> Result<Option<Config>, Failure> {
    let Some(module) = var("STRONGROOM_PKCS11_MODULE") else {
        return Ok(None);
    };
    let required = |name: &str| {
        var(name)
            .ok_or_else(|| config_error(format!("{name}: not set (STRONGROOM_PKCS11_MODULE is)")))
    };
    let (pin, pin_origin) = match (
        var("STRONGROOM_PKCS11_PIN"),
        var("STRONGROOM_PKCS11_PIN_FILE"),
    ) {
        (Some(_), Some(_)) => return Err(config_error(
            "STRONGROOM_PKCS11_PIN and STRONGROOM_PKCS11_PIN_FILE: set one or the other, not both",
        )),
        (Some(pin), None) => (SecretString::from(pin), "STRONGROOM_PKCS11_PIN".to_owned()),
        (None, Some(file)) => {
            let text = crate::files::read_private(std::path::Path::new(&file))
                .map_err(|why| config_error(format!("STRONGROOM_PKCS11_PIN_FILE: {why}")))?;
            (
                SecretString::from(text.trim().to_owned()),
                format!("STRONGROOM_PKCS11_PIN_FILE ({file})"),
            )
        }
        (None, None) => return Err(config_error(
            "STRONGROOM_PKCS11_PIN_FILE: not set (or STRONGROOM_PKCS11_PIN): the token's user PIN",
        )),
    };
    Ok(Some(Config {
        token: required("STRONGROOM_PKCS11_TOKEN")?,
        key_label: required("STRONGROOM_PKCS11_KEY")?,
        module,
        pin,
        pin_origin,
    }))
}
