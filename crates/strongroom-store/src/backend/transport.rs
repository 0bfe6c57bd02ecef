//! How the PostgreSQL backend's connections travel: plain TCP, or TLS (feature
//! `postgres-tls`) verified like libpq's `verify-full`.
//!
//! TLS is used exactly when the URL says `sslmode=require` (or libpq's `verify-ca` and
//! `verify-full`, which get the same verified TLS). `prefer` (tokio-postgres's
//! default) is treated as `disable`: opportunistic TLS that an attacker on the path can strip
//! protects nothing, so a deployment that wants TLS must say so, and then gets a verified
//! chain and host name or no connection at all.

use std::path::Path;

use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Config, NoTls, Socket};

use crate::{Result, StoreError};

/// The `sslmode` values a URL may carry; `require`, `verify-ca` and `verify-full` all get
/// a verified chain and host name (libpq's `verify-full`), `disable` and `prefer` none.
pub(crate) const SSL_MODES: &str = "disable, prefer, require, verify-ca, verify-full";

/// Parses a PostgreSQL URL (or `key=value` string), accepting libpq's `verify-ca` and
/// `verify-full` as what they mean here: TLS with a verified chain and host name, which
/// is what `require` does (stricter than libpq's `require` and `verify-ca`). `what` names
/// the setting in the error, which never repeats the URL (it may hold a password).
pub(crate) fn parse_url(url: &str, what: &str) -> Result<Config> {
    use std::str::FromStr as _;
    let normalized = ["verify-full", "verify-ca"]
        .iter()
        .fold(url.to_owned(), |text, mode| {
            replace_param(&text, &format!("sslmode={mode}"), "sslmode=require")
        });
    Config::from_str(&normalized).map_err(|_| {
        StoreError::Config(format!(
            "{what}: not a valid PostgreSQL URL: expected postgres://USER@HOST[:PORT]/DATABASE \
             (or libpq's host=... dbname=... form), with sslmode one of {SSL_MODES}"
        ))
    })
}

/// `text` with each whole parameter `from` (bounded by `?`, `&`, a space or the ends)
/// replaced by `to`.
fn replace_param(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(from) {
        let before_ok = at == 0 || matches!(rest.as_bytes()[at - 1], b'?' | b'&' | b' ');
        let end = at + from.len();
        let after_ok = end == rest.len() || matches!(rest.as_bytes()[end], b'&' | b' ');
        out.push_str(&rest[..at]);
        out.push_str(if before_ok && after_ok { to } else { from });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The connector every connection of one backend uses.
#[derive(Clone)]
pub(crate) enum Transport {
    /// Plain TCP (or a Unix socket).
    Plain,
    /// TLS with rustls, verified against the configured roots.
    #[cfg(feature = "postgres-tls")]
    Tls(tokio_postgres_rustls::MakeRustlsConnect),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plain => "Plain",
            #[cfg(feature = "postgres-tls")]
            Self::Tls(_) => "Tls",
        })
    }
}

impl Transport {
    /// The transport `config` asks for, trusting the PEM roots in `ca_file` (or, without it,
    /// the Mozilla roots). Sets `config`'s SSL mode to what will be done.
    pub(crate) fn for_config(config: &mut Config, ca_file: Option<&Path>) -> Result<Self> {
        if config.get_ssl_mode() != SslMode::Require {
            if ca_file.is_some() {
                return Err(StoreError::Config(
                    "STRONGROOM_PG_CA_FILE is set, but STRONGROOM_DATABASE_URL does not ask for TLS: add sslmode=require".into(),
                ));
            }
            config.ssl_mode(SslMode::Disable);
            return Ok(Self::Plain);
        }
        Self::tls(ca_file)
    }

    #[cfg(not(feature = "postgres-tls"))]
    fn tls(_ca_file: Option<&Path>) -> Result<Self> {
        Err(StoreError::Config(
            "STRONGROOM_DATABASE_URL asks for sslmode=require, but this build has no TLS to PostgreSQL (feature `postgres-tls`)".into(),
        ))
    }

    #[cfg(feature = "postgres-tls")]
    fn tls(ca_file: Option<&Path>) -> Result<Self> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::CertificateDer;

        let mut roots = rustls::RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let unreadable = |e: &dyn std::fmt::Display| {
                    StoreError::Config(format!(
                        "STRONGROOM_PG_CA_FILE: cannot read PEM certificates from {}: {e}",
                        path.display()
                    ))
                };
                for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
                    roots
                        .add(cert.map_err(|e| unreadable(&e))?)
                        .map_err(|e| unreadable(&e))?;
                }
                if roots.is_empty() {
                    return Err(unreadable(&"no certificate in the file"));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Config(format!("TLS to PostgreSQL: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self::Tls(tokio_postgres_rustls::MakeRustlsConnect::new(
            config,
        )))
    }

    /// Opens one connection and drives it on a task of its own.
    pub(crate) async fn connect(
        &self,
        config: &Config,
    ) -> std::result::Result<Client, tokio_postgres::Error> {
        match self {
            Self::Plain => spawned(config, NoTls).await,
            #[cfg(feature = "postgres-tls")]
            Self::Tls(tls) => spawned(config, tls.clone()).await,
        }
    }

    /// A connection pool manager using this transport.
    pub(super) fn manager(
        &self,
        config: Config,
        manager: deadpool_postgres::ManagerConfig,
    ) -> deadpool_postgres::Manager {
        match self {
            Self::Plain => deadpool_postgres::Manager::from_config(config, NoTls, manager),
            #[cfg(feature = "postgres-tls")]
            Self::Tls(tls) => deadpool_postgres::Manager::from_config(config, tls.clone(), manager),
        }
    }
}

async fn spawned<T>(config: &Config, tls: T) -> std::result::Result<Client, tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = config.connect(tls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A connection whose messages (notifications) the caller reads: `(client, messages)`.
pub(super) type Listening = (
    Client,
    std::pin::Pin<
        Box<
            dyn futures_util::Stream<
                    Item = std::result::Result<tokio_postgres::AsyncMessage, tokio_postgres::Error>,
                > + Send,
        >,
    >,
);

impl Transport {
    /// Opens one connection whose asynchronous messages the caller polls.
    pub(super) async fn connect_listening(
        &self,
        config: &Config,
    ) -> std::result::Result<Listening, tokio_postgres::Error> {
        match self {
            Self::Plain => listening(config, NoTls).await,
            #[cfg(feature = "postgres-tls")]
            Self::Tls(tls) => listening(config, tls.clone()).await,
        }
    }
}

async fn listening<T>(
    config: &Config,
    tls: T,
) -> std::result::Result<Listening, tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, mut connection) = config.connect(tls).await?;
    let messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    Ok((client, Box::pin(messages)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio_postgres::config::SslMode;

    use super::parse_url;

    #[test]
    fn libpq_verify_modes_mean_verified_tls_and_errors_name_the_modes() {
        for url in [
            "postgres://app@db/strongroom?sslmode=verify-full",
            "postgres://app@db/strongroom?application_name=x&sslmode=verify-ca",
            "host=db user=app dbname=strongroom sslmode=verify-full",
        ] {
            assert_eq!(
                parse_url(url, "X").unwrap().get_ssl_mode(),
                SslMode::Require,
                "{url}"
            );
        }
        let wrong = parse_url("postgres://app:hunter2@db/x?sslmode=verify-everything", "X")
            .unwrap_err()
            .to_string();
        assert!(
            wrong.contains("verify-full") && wrong.contains("X:"),
            "{wrong}"
        );
        assert!(!wrong.contains("hunter2"), "the URL is never repeated");
    }
}
