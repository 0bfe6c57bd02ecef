//! How the PostgreSQL backend's connections travel: plain TCP, or TLS (feature
//! `postgres-tls`) verified like libpq's `verify-full`.
//!
//! TLS is used exactly when the URL says `sslmode=require`. `prefer` (tokio-postgres's
//! default) is treated as `disable`: opportunistic TLS that an attacker on the path can strip
//! protects nothing, so a deployment that wants TLS must say so, and then gets a verified
//! chain and host name or no connection at all.

use std::path::Path;

use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Config, NoTls, Socket};

use crate::{Result, StoreError};

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
