//! `strongroom serve` and `strongroom token`.

use std::path::Path;
use std::process::ExitCode;

use strongroom_crypto::secrecy::{ExposeSecret as _, SecretString};
use strongroom_crypto::{Key, KeyRing};
use strongroom_store::tokens::Tokens;
use strongroom_store::{KeySource, Store};

use crate::exit::{code, Failure};
use crate::settings::{Settings, SettingsError};

/// Where `serve --dev` keeps its key and token.
const DEV_DIR: &str = ".strongroom";

impl crate::cli::ServeArgs {
    /// `strongroom serve`.
    pub async fn run(self) -> Result<ExitCode, Failure> {
        crate::harden::no_core_dumps()?;
        serve(self).await
    }
}

/// Runs the HTTP server until SIGTERM or Ctrl-C; in-flight requests finish first.
async fn serve(args: crate::cli::ServeArgs) -> Result<ExitCode, Failure> {
    let crate::cli::ServeArgs {
        bind,
        dev,
        gateway_config,
        metrics,
        metrics_bind,
        tls_cert,
        tls_key,
        insecure_no_tls,
        no_console,
    } = args;
    let tls = transport(bind, tls_cert, tls_key, insecure_no_tls).await?;
    let settings = Settings::from_env()?;
    if !settings.http_enabled {
        return Err(SettingsError {
            variable: "STRONGROOM_HTTP_ENABLED",
            expected: "is false: the HTTP API is turned off".into(),
        }
        .into());
    }
    let (keys, admin_token) = if dev {
        let setup = dev_setup()?;
        let database = settings
            .database_url
            .strip_prefix("sqlite://")
            .map(Path::new);
        warn_unignored(Path::new(DEV_DIR), database);
        setup
    } else {
        (Settings::optional_keys()?, Settings::admin_token())
    };
    let backend =
        strongroom_store::open_backend_with(&settings.database_url, &settings.backend).await?;
    if settings.backend.read_cache {
        if backend.name() == "postgres" {
            eprintln!("strongroom: read cache on (invalidated across processes by LISTEN/NOTIFY)");
        } else {
            eprintln!("strongroom: STRONGROOM_READ_CACHE ignored: it applies to PostgreSQL only");
        }
    }
    // An HSM-wrapped ring needs the database to unwrap.
    let keys = match keys {
        None if std::env::var_os("STRONGROOM_PKCS11_MODULE").is_some() => {
            Some(crate::keys::key_source(backend.as_ref()).await?)
        }
        keys => keys,
    };
    let store = match keys {
        Some(keys) => Some(Store::open(backend.clone(), keys, settings.store).await?),
        None => {
            tracing::warn!(
                "no master key configured: secrets routes answer 503 and only \
                 STRONGROOM_ADMIN_TOKEN authenticates (token rows are checked under the key; \
                 set STRONGROOM_MASTER_KEY)"
            );
            None
        }
    };
    // Token rows are authenticated under the store's keys; without keys, only the admin.
    let tokens = match &store {
        Some(store) => Tokens::new(store, admin_token.as_ref())?,
        None => Tokens::admin_only(backend, admin_token.as_ref())?,
    };
    let metrics = (metrics
        || metrics_bind.is_some()
        || std::env::var("STRONGROOM_METRICS").is_ok_and(|v| v == "true"))
    .then(|| std::sync::Arc::new(strongroom_server::Metrics::new()));
    let state = strongroom_server::AppState {
        tokens,
        gateway: gateway(gateway_config, store.as_ref())?,
        store: store.map(Into::into),
        metrics,
    };
    if let Some(address) = metrics_bind {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| Failure::io(format!("cannot listen on {address}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Failure::io(e.to_string()))?;
        eprintln!("strongroom: metrics on http://{local}/metrics (no token)");
        let metrics_router = strongroom_server::metrics_router(state.clone());
        tokio::spawn(async move {
            let _ =
                strongroom_server::serve(listener, metrics_router, std::future::pending()).await;
        });
    }
    let surfaces = strongroom_server::Surfaces {
        console: !no_console,
    };
    if surfaces.console {
        let scheme = if tls.is_some() { "https" } else { "http" };
        eprintln!("strongroom: web console at {scheme}://{bind}/_/ (turn off with --no-console)");
    }
    let router =
        strongroom_server::router_with(state, strongroom_server::Limits::default(), surfaces);
    listen_and_serve(bind, tls, router).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The TLS files, loaded; or none, which off loopback needs `--insecure-no-tls`.
async fn transport(
    bind: std::net::SocketAddr,
    tls_cert: Option<std::path::PathBuf>,
    tls_key: Option<std::path::PathBuf>,
    insecure_no_tls: bool,
) -> Result<Option<strongroom_server::Tls>, Failure> {
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(strongroom_server::Tls::load(&cert, &key).await.map_err(
            |e| Failure {
                message: format!(
                    "cannot load the TLS certificate {} and key {}: {e}",
                    cert.display(),
                    key.display()
                ),
                code: code::CONFIG,
            },
        )?),
        _ => None,
    };
    if tls.is_none() && !bind.ip().is_loopback() && !insecure_no_tls {
        return Err(Failure {
            message: format!(
                "refusing to serve plain HTTP on {bind}: tokens and values would cross the network in the clear; \
                 give --tls-cert FILE --tls-key FILE, or --insecure-no-tls behind a TLS-terminating proxy"
            ),
            code: code::CONFIG,
        });
    }
    Ok(tls)
}

/// Serves `router` on `bind` (HTTPS with `tls`) until SIGTERM or Ctrl-C.
async fn listen_and_serve(
    bind: std::net::SocketAddr,
    tls: Option<strongroom_server::Tls>,
    router: strongroom_server::Router,
) -> Result<(), Failure> {
    let shutdown = shutdown_signal()?;
    if let Some(tls) = tls {
        let listener = std::net::TcpListener::bind(bind)
            .map_err(|e| Failure::io(format!("cannot listen on {bind}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Failure::io(e.to_string()))?;
        reload_on_hangup(tls.clone())?;
        tracing::info!(address = %local, "serving the Strongroom API over TLS");
        eprintln!("strongroom: serving on https://{local}");
        strongroom_server::serve_tls(listener, router, &tls, shutdown)
            .await
            .map_err(|e| Failure::io(format!("server error: {e}")))?;
    } else {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| Failure::io(format!("cannot listen on {bind}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Failure::io(e.to_string()))?;
        tracing::info!(address = %local, "serving the Strongroom API");
        eprintln!("strongroom: serving on http://{local}");
        strongroom_server::serve(listener, router, shutdown)
            .await
            .map_err(|e| Failure::io(format!("server error: {e}")))?;
    }
    Ok(())
}

/// Loads the gateway's routes (`--gateway-config` or `STRONGROOM_GATEWAY_CONFIG`); a bad
/// file is a startup error naming the route, header and position.
fn gateway(
    path: Option<std::path::PathBuf>,
    store: Option<&Store>,
) -> Result<Option<std::sync::Arc<strongroom_gateway::Gateway>>, Failure> {
    let Some(path) = path.or_else(|| {
        std::env::var_os("STRONGROOM_GATEWAY_CONFIG")
            .filter(|v| !v.is_empty())
            .map(Into::into)
    }) else {
        return Ok(None);
    };
    let config = strongroom_gateway::GatewayConfig::load(&path).map_err(|e| Failure {
        message: e.to_string(),
        code: code::CONFIG,
    })?;
    let store = store.ok_or_else(|| Failure {
        message: "the gateway needs the secrets store: set STRONGROOM_MASTER_KEY".into(),
        code: code::CONFIG,
    })?;
    let routes = config.routes.len();
    let gateway = strongroom_gateway::Gateway::new(config, std::sync::Arc::new(store.clone()))
        .map_err(|e| Failure::io(format!("cannot build the gateway's HTTP client: {e}")))?;
    tracing::info!(routes, "gateway routes loaded");
    Ok(Some(std::sync::Arc::new(gateway)))
}

/// Reloads the certificate and key on every SIGHUP; a failed reload keeps the old ones.
fn reload_on_hangup(tls: strongroom_server::Tls) -> Result<(), Failure> {
    #[cfg(unix)]
    {
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| Failure::io(format!("cannot handle SIGHUP: {e}")))?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                match tls.reload().await {
                    Ok(()) => tracing::info!("TLS certificate reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "TLS reload failed; the old certificate stays");
                    }
                }
            }
        });
    }
    #[cfg(not(unix))]
    drop(tls);
    Ok(())
}

/// The shutdown future: SIGTERM or Ctrl-C. The handlers are installed here, at once
/// (before the server announces itself), so a signal that arrives right after "serving
/// on" is a clean stop, not the default action that kills the process.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, Failure> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Failure::io(format!("cannot handle SIGTERM: {e}")))?;
    #[cfg(unix)]
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Failure::io(format!("cannot handle SIGINT: {e}")))?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing in-flight requests");
    })
}

/// Inside a git work tree, warns (on stderr) when the development key directory or the
/// SQLite database is not ignored, so neither is committed by accident. Without git, or
/// outside a work tree, says nothing.
fn warn_unignored(dev_dir: &Path, database: Option<&Path>) {
    let inside = std::process::Command::new("git")
        .args(["rev-parse", "--is-inside-work-tree"])
        .stderr(std::process::Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"true"));
    if !inside {
        return;
    }
    for path in std::iter::once(dev_dir).chain(database) {
        let ignored = std::process::Command::new("git")
            .arg("check-ignore")
            .arg("-q")
            .arg("--no-index")
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        if !ignored {
            eprintln!(
                "  WARNING: {} is not ignored by git here: add it to .gitignore so the \
                 development key and secrets are never committed",
                path.display()
            );
        }
    }
}

/// Creates or reuses `./.strongroom/dev.key` and `./.strongroom/admin.token` (mode 0600).
/// Environment variables, when set, win over the files.
fn dev_setup() -> Result<(Option<KeySource>, Option<SecretString>), Failure> {
    let dir = Path::new(DEV_DIR);
    create_private_dir(dir)?;
    eprintln!();
    eprintln!("  !!! DEVELOPMENT MODE — NOT FOR PRODUCTION !!!");
    eprintln!("  The master key and the admin token are stored in plain files under ./{DEV_DIR}/.");
    eprintln!("  Anyone who can read them can read every secret. Use STRONGROOM_MASTER_KEY and");
    eprintln!("  scoped tokens (`strongroom token create`) in production.");
    eprintln!();
    let keys = match Settings::optional_keys()? {
        Some(keys) => keys,
        None => {
            let (text, _) = read_or_create(&dir.join("dev.key"), || {
                Key::generate()
                    .map(|k| k.to_hex())
                    .map_err(|e| Failure::io(e.to_string()))
            })?;
            let key = Key::parse(text.expose_secret()).map_err(|_| Failure {
                message: format!("{DEV_DIR}/dev.key: expected 64 hex characters; delete the file to make a new key"),
                code: code::CONFIG,
            })?;
            KeySource::Ring(KeyRing::single(&key))
        }
    };
    let token = match Settings::admin_token() {
        Some(token) => token,
        None => {
            let path = dir.join("admin.token");
            let (token, created) = read_or_create(&path, || {
                Key::generate()
                    .map(|k| SecretString::from(format!("sr-dev-{}", k.to_hex().expose_secret())))
                    .map_err(|e| Failure::io(e.to_string()))
            })?;
            if created {
                eprintln!("  admin token (shown once; also in {}):", path.display());
                eprintln!("  {}", token.expose_secret());
            } else {
                eprintln!("  admin token: in {}", path.display());
            }
            eprintln!();
            token
        }
    };
    Ok((Some(keys), Some(token)))
}

fn create_private_dir(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::io(format!("cannot create {}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Failure::io(format!("cannot restrict {}: {e}", dir.display())))?;
    }
    Ok(())
}

/// Reads a secret file, or creates it (mode 0600) with `make()`; says whether it created.
fn read_or_create(
    path: &Path,
    make: impl FnOnce() -> Result<SecretString, Failure>,
) -> Result<(SecretString, bool), Failure> {
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::io(format!("cannot read {}: {e}", path.display())))?;
        return Ok((SecretString::from(text.trim().to_owned()), false));
    }
    let value = make()?;
    crate::files::create_private(path, format!("{}\n", value.expose_secret()).as_bytes())?;
    Ok((value, true))
}
