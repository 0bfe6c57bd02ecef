//! # strongroom-store
//!
//! Layer 3 of Strongroom: system secrets identified by `(namespace, env, key)`, with
//! environment fallback, versions, audit events, expiry, verification without decryption
//! and batched, resumable key rotation. Values are sealed by `strongroom-crypto` envelopes
//! bound to their identity; the database never sees a key or a plaintext.
//!
//! ```no_run
//! # async fn demo() -> strongroom_store::Result<()> {
//! use std::sync::Arc;
//! use strongroom_store::{backend::sqlite::SqliteBackend, KeySource, SetRequest, Store, StoreConfig};
//! use strongroom_store::{Key, KeyRing}; // re-exported from strongroom-crypto
//!
//! let ring = KeyRing::single(&Key::parse(&std::env::var("STRONGROOM_MASTER_KEY").unwrap())?);
//! let store = Store::open(Arc::new(SqliteBackend::open("strongroom.db")?), KeySource::Ring(ring), StoreConfig::default()).await?;
//! let id = store.secret_id(None, Some("prod"), "DATABASE_URL")?;
//! store.set(&id, SetRequest::value("postgres://...")).await?;
//! let secret = store.get(&id).await?.commit().await?; // the read is audited first
//! assert_eq!(secret.id.env, "prod");
//! # Ok(()) }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod action;
mod audit;
pub mod backend;
mod config;
pub mod custody;
mod error;
pub mod filestore;
pub mod import;
mod model;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
mod store;
pub mod tokens;

pub use audit::{AuditVerification, Checkpoint, Rekeyed};
pub use backend::{KekUsage, SecretSettings};
pub use config::{Limits, StoreConfig};
pub use error::{ConflictKind, ErrorKind, Result, StoreError};
pub use model::{
    format_time, parse_duration, Access, Action, AuditEvent, AuditQuery, Expiry, ListQuery,
    MetaUpdate, Page, RotationProgress, RotationStatus, Secret, SecretId, SecretInfo, SetRequest,
    State, Timestamp, VersionInfo, WriteOutcome, MASK,
};
pub use store::{
    is_empty, CredentialSpend, EnvLock, EnvView, KeySource, LeftOut, LockEntry, Login, PendingRead,
    RotateOptions, Store, StoreStats, TokenProblem, ValuesCheck,
};
/// The key types this crate's signatures use, so one dependency suffices.
pub use strongroom_crypto::{secrecy, Key, KeyRing};

#[cfg(feature = "testing")]
pub mod testing;

/// Opens the backend a `STRONGROOM_DATABASE_URL` names: `sqlite://PATH` (relative),
/// `sqlite:///ABSOLUTE/PATH`, or `postgres://...` (feature `postgres`).
#[cfg_attr(not(feature = "postgres"), allow(clippy::unused_async))] // connecting awaits only for PostgreSQL
pub async fn open_backend(url: &str) -> Result<std::sync::Arc<dyn backend::Backend>> {
    open_backend_with(url, &BackendOptions::default()).await
}

/// How to open a backend, beyond its URL.
#[derive(Debug, Clone, Default)]
pub struct BackendOptions {
    /// The PostgreSQL schema holding the store (`STRONGROOM_PG_SCHEMA`; default
    /// `strongroom`). Ignored for SQLite.
    pub pg_schema: Option<String>,
    /// A read cache invalidated across processes by `LISTEN`/`NOTIFY`
    /// (`STRONGROOM_READ_CACHE`). PostgreSQL only; SQLite reads are local already.
    pub read_cache: bool,
    /// PEM roots trusted for TLS to PostgreSQL (`STRONGROOM_PG_CA_FILE`; TLS is used when the
    /// URL says `sslmode=require`; feature `postgres-tls`).
    pub pg_ca_file: Option<std::path::PathBuf>,
}

/// Like [`open_backend`], with [`BackendOptions`].
#[cfg_attr(
    not(feature = "postgres"),
    allow(clippy::unused_async, unused_variables)
)]
pub async fn open_backend_with(
    url: &str,
    options: &BackendOptions,
) -> Result<std::sync::Arc<dyn backend::Backend>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(StoreError::Config(
                "sqlite:// needs a path, e.g. sqlite://strongroom.db".into(),
            ));
        }
        #[cfg(feature = "sqlite")]
        return Ok(std::sync::Arc::new(backend::sqlite::SqliteBackend::open(
            path,
        )?));
        #[cfg(not(feature = "sqlite"))]
        return Err(StoreError::Config(
            "this build has no SQLite backend (feature `sqlite`)".into(),
        ));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        return Ok(std::sync::Arc::new(
            backend::postgres::PostgresBackend::open(
                url,
                &backend::postgres::PostgresOptions {
                    schema: options
                        .pg_schema
                        .clone()
                        .unwrap_or_else(|| backend::postgres::DEFAULT_SCHEMA.to_owned()),
                    read_cache: options
                        .read_cache
                        .then(backend::read_cache::ReadCacheConfig::default),
                    ca_file: options.pg_ca_file.clone(),
                    ..backend::postgres::PostgresOptions::default()
                },
            )
            .await?,
        ));
        #[cfg(not(feature = "postgres"))]
        return Err(StoreError::Config(
            "this build has no PostgreSQL backend (feature `postgres`)".into(),
        ));
    }
    Err(StoreError::Config(
        "expected sqlite://PATH, sqlite:///ABSOLUTE/PATH or postgres://...".into(),
    ))
}

/// The README's examples, compiled and run as a downstream crate would (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
