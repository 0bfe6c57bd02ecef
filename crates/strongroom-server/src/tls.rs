//! HTTPS without a proxy: rustls, with the certificate and key reloaded from their files
//! on demand (SIGHUP in `strongroom serve`); connections already open keep their session.

use std::path::{Path, PathBuf};

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;

/// A certificate chain and its key, as PEM files.
#[derive(Clone)]
pub struct Tls {
    config: RustlsConfig,
    cert: PathBuf,
    key: PathBuf,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads `cert` (the chain, leaf first) and `key` (PKCS#8, PKCS#1 or SEC1 PEM).
    pub async fn load(cert: &Path, key: &Path) -> std::io::Result<Self> {
        // The process's rustls provider: ring, as everywhere else in Strongroom.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = RustlsConfig::from_pem_file(cert, key).await?;
        Ok(Self {
            config,
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        })
    }

    /// Reads the files again; new connections get the new certificate. On an error the
    /// old certificate stays in use.
    pub async fn reload(&self) -> std::io::Result<()> {
        self.config
            .reload_from_pem_file(&self.cert, &self.key)
            .await
    }
}

/// Serves `router` over TLS on `listener` until `shutdown` completes, with the default
/// [`crate::ConnectionLimits`]; in-flight requests get 30 seconds to finish.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    router: Router,
    tls: &Tls,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let server = axum_server::from_tcp_rustls(listener, tls.config.clone())
        .handle(crate::shutdown_handle(shutdown));
    crate::connections::limit(server, crate::ConnectionLimits::default())
        .serve(router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .await
}
