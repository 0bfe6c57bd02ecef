//! The PostgreSQL backend: `tokio-postgres` with a `deadpool` connection pool, for several
//! processes (servers, CLIs) sharing one database.
//!
//! Every write is one transaction. Appending to the audit log takes an advisory lock
//! first (held to commit), so events are numbered in one line; the secret row is locked
//! by its upsert, so concurrent writers of one secret queue and version numbers never
//! collide.

use async_trait::async_trait;
use deadpool_postgres::{ManagerConfig, Pool, RecyclingMethod};

use super::read_cache::{self, ReadCache};
pub use super::read_cache::{ReadCacheConfig, ReadCacheStats};
use super::transport::Transport;
use super::{
    AuditReads, Backend, History, KekUsage, KeptValue, LinkedEvent, ListFilter, ListPage,
    MetaReads, RecordedKey, RotationCandidate, SecretReads, StoredSecret, TiePage, TokenReads,
    TokenRecord, TxWork, VersionReads,
};
use crate::{AuditEvent, AuditQuery, Result, SecretId, StoreError};

mod cached;
mod fetches;
mod reads;
mod schema;
mod tx;

/// Serializes audit appends, so each event links to the one before it.
const AUDIT_LOCK: i64 = 0x7374_726f_6e67_6175;

/// A fixed advisory-lock key for migrations ("strongroom" in ASCII, truncated).
const MIGRATION_LOCK: i64 = 0x7374_726f_6e67_726f;

/// A PostgreSQL database shared by many processes.
pub struct PostgresBackend {
    pool: Pool,
    /// The optional read cache and the task that keeps it invalidated.
    cache: Option<(std::sync::Arc<ReadCache>, tokio::task::AbortHandle)>,
    /// How long this process's transactions held the chain lock.
    lock_holds: super::LockHolds,
    /// Point reads of secrets waiting to share a statement.
    fetches: std::sync::Arc<fetches::Fetches<fetches::Secrets>>,
    /// Token lookups waiting to share a statement.
    token_lookups: std::sync::Arc<fetches::Fetches<fetches::Tokens>>,
}

impl Drop for PostgresBackend {
    fn drop(&mut self) {
        if let Some((_, listener)) = &self.cache {
            listener.abort();
        }
    }
}

/// How to open a [`PostgresBackend`].
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Pool size.
    pub max_connections: usize,
    /// The schema holding the store's tables (`STRONGROOM_PG_SCHEMA`).
    pub schema: String,
    /// The read cache, off when `None` (`STRONGROOM_READ_CACHE`).
    pub read_cache: Option<ReadCacheConfig>,
    /// PEM roots trusted for TLS (`sslmode=require` in the URL; `STRONGROOM_PG_CA_FILE`);
    /// without it, the Mozilla roots.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            schema: DEFAULT_SCHEMA.to_owned(),
            read_cache: None,
            ca_file: None,
        }
    }
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackend").finish_non_exhaustive()
    }
}

/// A driver error with its causes (tokio-postgres puts the server's message in a cause).
/// Server messages name tables and constraints, never parameter values.
fn db(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::driver(error)
}

/// An error and its causes, `: `-separated (a TLS failure's reason is in a cause).
fn causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// One client connection to a PostgreSQL server other than the store's (a database to
/// import from), over the store's own transport rules: the libpq URL's `sslmode`
/// (`require`, `verify-ca`, `verify-full` are verified TLS, against `ca_file` or the Mozilla
/// roots), driven on a task of its own. `what` names the URL in errors (its password never
/// appears).
///
/// # Errors
/// A URL that does not parse, a CA file that can not be used, or a failed connection.
pub async fn connect_client(
    url: &str,
    ca_file: Option<&std::path::Path>,
    what: &str,
) -> Result<tokio_postgres::Client> {
    let mut config = super::transport::parse_url(url, what)?;
    let transport = Transport::for_config(&mut config, ca_file)?;
    transport.connect(&config).await.map_err(StoreError::driver)
}

/// The default schema of a store (`STRONGROOM_PG_SCHEMA`).
pub const DEFAULT_SCHEMA: &str = "strongroom";

/// Schema names: `[a-z_][a-z0-9_]*`, at most 63 bytes (no quoting needed).
fn check_schema(schema: &str) -> Result<()> {
    let mut bytes = schema.bytes();
    let ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && schema.len() <= 63;
    if ok {
        Ok(())
    } else {
        Err(StoreError::Config("STRONGROOM_PG_SCHEMA: expected a schema name of a-z 0-9 _ (not starting with a digit), at most 63 bytes".into()))
    }
}

impl PostgresBackend {
    /// Connects to `url` (`postgres://user:password@host:port/db`), with a pool of up to
    /// `max_connections`, keeps every table in `schema` (created if missing; independent
    /// stores live side by side in one database, each in its own schema), and applies
    /// migrations.
    pub async fn connect(url: &str, max_connections: usize, schema: &str) -> Result<Self> {
        Self::open(
            url,
            &PostgresOptions {
                max_connections,
                schema: schema.to_owned(),
                ..PostgresOptions::default()
            },
        )
        .await
    }

    /// Connects to `url` with `options`; with a read cache, also starts the connection that
    /// listens for changes (see [`read_cache`]).
    pub async fn open(url: &str, options: &PostgresOptions) -> Result<Self> {
        let (max_connections, schema) = (options.max_connections, options.schema.as_str());
        check_schema(schema)?;
        let mut config = super::transport::parse_url(url, "STRONGROOM_DATABASE_URL")?;
        let transport = Transport::for_config(&mut config, options.ca_file.as_deref())?;
        // A current schema is used as it is: no DDL at start-up, so a runtime role with row
        // privileges only starts. An older one is migrated when this role may (the owner;
        // `strongroom migrate`), else refused with what to run.
        let current = {
            let client = transport.connect(&config).await.map_err(|e| {
                StoreError::Database(format!("cannot connect to PostgreSQL: {}", causes(&e)))
            })?;
            let current = schema::current_version(&client, schema).await?;
            if current < schema::known_version() {
                client
                    // The lock is held until COMMIT, when the new schema is visible to the
                    // next process (a session lock released inside the batch's implicit
                    // transaction would let it in before the commit, and its CREATE would
                    // collide).
                    .batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({MIGRATION_LOCK}); CREATE SCHEMA IF NOT EXISTS {schema}; COMMIT"))
                    .await
                    .map_err(|e| schema::migration_error(&e, current))?;
            }
            current
        };
        let server_options = format!(
            "{} -c search_path={schema}",
            config.get_options().unwrap_or_default()
        );
        config.options(server_options.trim());
        let listener_config = config.clone();
        let manager = transport.manager(
            config,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .build()
            .map_err(db)?;
        let mut backend = Self {
            pool,
            cache: None,
            lock_holds: super::LockHolds::default(),
            fetches: std::sync::Arc::default(),
            token_lookups: std::sync::Arc::default(),
        };
        if current < schema::known_version() {
            schema::migrate(&mut backend.client().await?).await?;
        }
        if let Some(cache_config) = options.read_cache {
            let cache = std::sync::Arc::new(ReadCache::new(cache_config));
            let (connected, listening) = tokio::sync::oneshot::channel();
            let listener = tokio::spawn(read_cache::listen(
                listener_config,
                transport,
                schema.to_owned(),
                std::sync::Arc::downgrade(&cache),
                connected,
            ));
            backend.cache = Some((cache, listener.abort_handle()));
            // Serve from the cache from the first read when the listener is quick to start.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), listening).await;
        }
        Ok(backend)
    }

    /// The read cache's counters, `None` when it is off.
    pub fn read_cache_stats(&self) -> Option<ReadCacheStats> {
        self.cache.as_ref().map(|(cache, _)| cache.stats())
    }

    /// A pooled connection.
    async fn client(&self) -> Result<deadpool_postgres::Object> {
        pooled(&self.pool).await
    }

    /// After a commit of this process, drops what it changed from the read cache at once
    /// (the notification to every process, this one included, follows).
    fn forget(&self, touched: &tx::Touched) {
        if let Some((cache, _)) = &self.cache {
            match touched {
                tx::Touched::Nothing => {}
                tx::Touched::Secrets(ids) => ids.iter().for_each(|id| cache.invalidate(Some(id))),
                tx::Touched::Anything => cache.invalidate(None),
            }
        }
    }
}

/// A connection from `pool`.
async fn pooled(pool: &Pool) -> Result<deadpool_postgres::Object> {
    pool.get()
        .await
        .map_err(|e| StoreError::Database(format!("cannot connect to PostgreSQL: {e}")))
}

/// A pooled connection inside a transaction opened with a plain `BEGIN`. Unless the
/// transaction is known to have ended (committed, or rolled back), dropping it (a request's
/// future cancelled mid-transaction, a failed `ROLLBACK`) takes the connection out of the
/// pool and closes it, which ends the transaction on the server and releases its locks:
/// a pooled connection is never handed out inside a transaction.
struct InTransaction {
    client: Option<deadpool_postgres::Object>,
    ended: std::sync::atomic::AtomicBool,
}

impl InTransaction {
    fn new(client: deadpool_postgres::Object) -> Self {
        Self {
            client: Some(client),
            ended: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn client(&self) -> &deadpool_postgres::Client {
        // Taken only in `drop`.
        self.client
            .as_ref()
            .unwrap_or_else(|| unreachable!("the connection is held until drop"))
    }

    /// The transaction is over: the connection goes back to the pool.
    fn ended(&self) {
        self.ended.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Rolls back; the connection goes back to the pool only if that worked.
    async fn roll_back(&self) {
        if self.client().batch_execute("ROLLBACK").await.is_ok() {
            self.ended();
        }
    }
}

impl Drop for InTransaction {
    fn drop(&mut self) {
        if !self.ended.load(std::sync::atomic::Ordering::Acquire) {
            if let Some(client) = self.client.take() {
                drop(deadpool_postgres::Object::take(client));
            }
        }
    }
}

#[async_trait]
impl Backend for PostgresBackend {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn transaction(&self, work: TxWork) -> Result<()> {
        let connection = InTransaction::new(self.client().await?);
        let client = connection.client();
        let mut tx = tx::PgTx::begin(client);
        let outcome = work(&mut tx).await;
        let begun = tx.begun();
        let poisoned = tx.poisoned();
        let held = tx.take_held();
        let (touched, locked_at) = tx.into_parts();
        let outcome = match outcome {
            Ok(()) if poisoned => Err(StoreError::Defect(
                "a transaction whose held statement failed was about to commit",
            )),
            outcome => outcome,
        };
        let ended = match outcome {
            // Whatever is still held (the `BEGIN` too, if nothing went out) goes out with
            // the `COMMIT` in one round trip: under the chain's lock, the group's events
            // and ties ride with it.
            Ok(out) => match cached::Cached::with_held(client, held).commit().await {
                Ok(()) => {
                    connection.ended();
                    self.forget(&touched);
                    Ok(out)
                }
                Err(e) => {
                    connection.roll_back().await;
                    Err(db(e))
                }
            },
            Err(e) => {
                // Roll back now: the chain's lock and the rows are released with it.
                if begun {
                    connection.roll_back().await;
                } else {
                    connection.ended();
                }
                Err(e)
            }
        };
        // The lock is released with the transaction's end.
        if let Some(locked_at) = locked_at {
            self.lock_holds.record(locked_at.elapsed());
        }
        ended
    }

    /// Two group commits at once: while one waits on its round trips the other runs.
    /// Measured (`docs/performance.md`, 2026-12-07): two lanes gave 1.23× the mixed load of
    /// one with the chain's lock busy 45 % of the time; three, 1.26× at 68 %; four, less at
    /// 84 %: beyond two, groups queue on the lock other processes share. The store uses
    /// one while another process appends to the chain (`store/batch.rs`).
    fn commit_lanes(&self) -> usize {
        2
    }

    fn schema_version(&self) -> Option<i64> {
        Some(schema::known_version())
    }

    async fn clock_skew_ms(&self) -> Option<Result<i64>> {
        let read = async {
            let client = self.client().await?;
            let before = crate::model::now_ms();
            let server: i64 = client
                .query_one(
                    "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT",
                    &[],
                )
                .await
                .map_err(db)?
                .get(0);
            let after = crate::model::now_ms();
            Ok(server - (before + after) / 2)
        };
        Some(read.await)
    }

    fn stats(&self) -> super::BackendStats {
        let status = self.pool.status();
        super::BackendStats {
            read_cache: self.read_cache_stats(),
            pool: Some(super::PoolStats {
                size: status.size,
                available: status.available,
                max: status.max_size,
            }),
            chain_lock: Some(self.lock_holds.snapshot()),
        }
    }
}

#[async_trait]
impl MetaReads for PostgresBackend {
    async fn meta(&self, name: &str) -> Result<Option<String>> {
        reads::meta(&self.client().await?, name).await
    }

    async fn recorded_keys(&self) -> Result<Vec<RecordedKey>> {
        reads::recorded_keys(&self.client().await?).await
    }

    async fn kek_versions_in_use(&self) -> Result<Vec<u32>> {
        reads::kek_versions_in_use(&self.client().await?).await
    }

    async fn any_lease_due(&self, now: crate::Timestamp) -> Result<bool> {
        let client = self.client().await?;
        tx::leases::any_due(&cached::Cached::new(&client), now).await
    }

    async fn lease_rows(&self, prefix: &str) -> Result<Vec<super::LeaseRow>> {
        let client = self.client().await?;
        tx::leases::with_prefix(&cached::Cached::new(&client), prefix).await
    }

    async fn lease_row(&self, id: &str) -> Result<Option<super::LeaseRow>> {
        let client = self.client().await?;
        tx::leases::by_id(&cached::Cached::new(&client), id).await
    }
}

#[async_trait]
impl SecretReads for PostgresBackend {
    async fn fetch(&self, id: &SecretId) -> Result<Option<StoredSecret>> {
        let Some((cache, _)) = &self.cache else {
            return self.fetches.fetch(&self.pool, id.clone()).await;
        };
        match cache.get(id) {
            Ok(answer) => Ok(answer),
            Err(ticket) => {
                let answer = self.fetches.fetch(&self.pool, id.clone()).await?;
                cache.fill(ticket, id, answer.clone());
                Ok(answer)
            }
        }
    }

    async fn settings(&self, id: &SecretId) -> Result<Option<crate::backend::SecretSettings>> {
        reads::settings(&self.client().await?, id).await
    }

    async fn list(&self, filter: &ListFilter) -> Result<ListPage> {
        reads::list(&self.client().await?, filter).await
    }
}

#[async_trait]
impl VersionReads for PostgresBackend {
    async fn fetch_version(&self, id: &SecretId, version: u32) -> Result<Option<KeptValue>> {
        reads::fetch_version(&self.client().await?, id, version).await
    }

    async fn history(&self, id: &SecretId) -> Result<Option<History>> {
        reads::history(&self.client().await?, id).await
    }

    async fn rotation_candidates(
        &self,
        target: u32,
        from: Option<u32>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<RotationCandidate>> {
        reads::rotation_candidates(&self.client().await?, target, from, after, limit).await
    }

    async fn count_rotation_candidates(&self, target: u32, from: Option<u32>) -> Result<u64> {
        reads::count_rotation_candidates(&self.client().await?, target, from).await
    }

    async fn rotation_status(&self) -> Result<Vec<KekUsage>> {
        reads::rotation_status(&self.client().await?).await
    }

    async fn version_ties(&self, after: i64, limit: usize) -> Result<TiePage> {
        reads::version_ties(&self.client().await?, after, limit).await
    }
}

#[async_trait]
impl AuditReads for PostgresBackend {
    async fn audit_events(&self, query: &AuditQuery, limit: usize) -> Result<Vec<AuditEvent>> {
        reads::audit_events(&self.client().await?, query, limit).await
    }

    async fn audit_links(&self, after: i64, limit: usize) -> Result<Vec<LinkedEvent>> {
        reads::audit_links(&self.client().await?, after, limit).await
    }

    async fn audit_event_at(&self, seq: i64) -> Result<Option<LinkedEvent>> {
        reads::audit_event_at(&self.client().await?, seq).await
    }
}

#[async_trait]
impl TokenReads for PostgresBackend {
    async fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>> {
        self.token_lookups.fetch(&self.pool, id.to_owned()).await
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        reads::tokens(&self.client().await?).await
    }
}
