//! The PostgreSQL backend: `tokio-postgres` with a `deadpool` connection pool, for several
//! processes (servers, CLIs) sharing one database.
//!
//! Migrations run at open inside a transaction holding an advisory lock, so two processes
//! opening a fresh database at the same moment apply them once. Every write is one
//! transaction; the secret row is locked by its upsert, so concurrent writers of one
//! secret are serialized and version numbers never collide.

use std::fmt::Write as _;
use std::str::FromStr as _;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use deadpool_postgres::{ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::read_cache::{self, ReadCache};
pub use super::read_cache::{ReadCacheConfig, ReadCacheStats};
use super::transport::Transport;
use super::{
    Anchor, AuditChain, AuditRecord, Backend, Change, LegacyVersion, ListFilter, MetaRecord,
    Resealer, RotationCandidate, RotationUpdate, SealSlot, StoredInfo, StoredSecret, StoredValue,
    StoredVersion, TokenRecord, VersionTie, WriteRecord,
};
use crate::{Action, AuditEvent, AuditQuery, Result, SecretId, State, StoreError, WriteOutcome};

/// Schema migrations, applied in order at open. Append, never edit.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema (same model as SQLite's migrations 1 and 2).
    r"
    CREATE TABLE strongroom_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE strongroom_key_fingerprints (
        kek_version BIGINT PRIMARY KEY, fingerprint TEXT NOT NULL, recorded BIGINT NOT NULL);
    CREATE TABLE strongroom_secrets (
        sid BIGSERIAL PRIMARY KEY,
        row_id TEXT NOT NULL UNIQUE,
        namespace TEXT NOT NULL, env TEXT NOT NULL, key TEXT NOT NULL,
        version BIGINT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        metadata TEXT,
        kind TEXT NOT NULL DEFAULT 'generic',
        expires_at BIGINT,
        created BIGINT NOT NULL, updated BIGINT NOT NULL,
        UNIQUE (namespace, env, key));
    CREATE INDEX strongroom_secrets_expiry ON strongroom_secrets (expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE strongroom_secret_versions (
        vid BIGSERIAL PRIMARY KEY,
        sid BIGINT NOT NULL REFERENCES strongroom_secrets (sid) ON DELETE CASCADE,
        version BIGINT NOT NULL,
        value BYTEA NOT NULL, value_hash BYTEA NOT NULL, kek_version BIGINT NOT NULL,
        created BIGINT NOT NULL, actor TEXT NOT NULL,
        UNIQUE (sid, version));
    CREATE INDEX strongroom_secret_versions_kek ON strongroom_secret_versions (kek_version, vid);
    CREATE TABLE strongroom_audit_events (
        id BIGSERIAL PRIMARY KEY,
        time BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        namespace TEXT NOT NULL, env TEXT NOT NULL, key TEXT NOT NULL,
        version BIGINT, kek_version BIGINT);
    CREATE INDEX strongroom_audit_events_key ON strongroom_audit_events (namespace, key, id);
    CREATE INDEX strongroom_audit_events_time ON strongroom_audit_events (time);
    CREATE FUNCTION strongroom_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND current_setting('strongroom.retention', true) = 'on' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit events are append-only';
    END $$;
    CREATE TRIGGER strongroom_audit_events_append_only BEFORE UPDATE OR DELETE ON strongroom_audit_events
        FOR EACH ROW EXECUTE FUNCTION strongroom_audit_append_only();
    CREATE TABLE strongroom_api_tokens (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, secret_hash BYTEA NOT NULL,
        superuser BOOLEAN NOT NULL, scopes TEXT NOT NULL, created BIGINT NOT NULL, revoked BIGINT);
    ",
    // 2: the tamper-evident audit chain.
    "ALTER TABLE strongroom_audit_events ADD COLUMN link BYTEA;",
    // 3: change notifications for the read caches of every process (channel = the schema;
    // payload = `namespace env key`, or `*` for "anything may have changed"). Sent by the
    // server on commit only, whoever wrote.
    r"
    CREATE FUNCTION strongroom_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        payload TEXT := '*';
    BEGIN
        IF TG_LEVEL = 'ROW' AND TG_OP = 'DELETE' THEN
            payload := OLD.namespace || ' ' || OLD.env || ' ' || OLD.key;
        ELSIF TG_LEVEL = 'ROW' THEN
            payload := NEW.namespace || ' ' || NEW.env || ' ' || NEW.key;
        END IF;
        IF octet_length(payload) >= 8000 THEN
            payload := '*';
        END IF;
        PERFORM pg_notify(TG_TABLE_SCHEMA, payload);
        RETURN NULL;
    END $$;
    CREATE TRIGGER strongroom_secrets_notify AFTER INSERT OR UPDATE OR DELETE ON strongroom_secrets
        FOR EACH ROW EXECUTE FUNCTION strongroom_notify_change();
    CREATE TRIGGER strongroom_secret_versions_notify AFTER UPDATE ON strongroom_secret_versions
        FOR EACH STATEMENT EXECUTE FUNCTION strongroom_notify_change();
    ",
    // 4: every event linked under the key, its sequence number in the link; each version
    // tied to the event that wrote it; values bound to their version. The events of an
    // older database are set aside and appended again to the keyed chain by the store at
    // its next open (it holds the key; this migration does not).
    r"
    ALTER TABLE strongroom_secret_versions ADD COLUMN audit_seq BIGINT;
    ALTER TABLE strongroom_secret_versions ADD COLUMN audit_tag BYTEA;
    CREATE TABLE strongroom_audit_events_legacy (
        id BIGINT PRIMARY KEY,
        time BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        namespace TEXT NOT NULL, env TEXT NOT NULL, key TEXT NOT NULL,
        version BIGINT, kek_version BIGINT);
    INSERT INTO strongroom_audit_events_legacy
        SELECT id, time, actor, action, namespace, env, key, version, kek_version FROM strongroom_audit_events;
    SET LOCAL strongroom.retention = 'on';
    DELETE FROM strongroom_audit_events;
    SET LOCAL strongroom.retention = 'off';
    DELETE FROM strongroom_meta WHERE name = 'audit_anchor';
    ",
];

/// Serializes audit appends, so each event links to the one before it.
const AUDIT_LOCK: i64 = 0x7374_726f_6e67_6175;

/// A fixed advisory-lock key for migrations ("strongroom" in ASCII, truncated).
const MIGRATION_LOCK: i64 = 0x7374_726f_6e67_726f;

/// A PostgreSQL database shared by many processes.
pub struct PostgresBackend {
    pool: Pool,
    chain: super::ChainSlot,
    /// The optional read cache and the task that keeps it invalidated.
    cache: Option<(std::sync::Arc<ReadCache>, tokio::task::AbortHandle)>,
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

fn u32_of(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
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
        let mut config = tokio_postgres::Config::from_str(url).map_err(|_| {
            StoreError::Config("STRONGROOM_DATABASE_URL: not a valid postgres:// URL".into())
        })?;
        let transport = Transport::for_config(&mut config, options.ca_file.as_deref())?;
        {
            // Create the schema once, then have every pooled connection use it.
            let client = transport.connect(&config).await.map_err(|e| {
                StoreError::Database(format!("cannot connect to PostgreSQL: {}", causes(&e)))
            })?;
            client
                // The lock is held until COMMIT, when the new schema is visible to the next
                // process (a session lock released inside the batch's implicit transaction
                // would let it in before the commit, and its CREATE would collide).
                .batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({MIGRATION_LOCK}); CREATE SCHEMA IF NOT EXISTS {schema}; COMMIT"))
                .await
                .map_err(db)?;
        }
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
            chain: super::ChainSlot::default(),
            cache: None,
        };
        backend.migrate().await?;
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

    /// A secret's attributes and current value, from the database.
    async fn fetch_uncached(&self, id: &SecretId) -> Result<Option<StoredSecret>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {INFO_COLUMNS}, v.value, v.value_hash
                 FROM strongroom_secrets s JOIN strongroom_secret_versions v ON v.sid = s.sid AND v.version = s.version
                 WHERE s.namespace = $1 AND s.env = $2 AND s.key = $3"
            ))
            .await
            .map_err(db)?;
        let row = client
            .query_opt(&statement, &[&id.namespace, &id.env, &id.key])
            .await
            .map_err(db)?;
        Ok(row.map(|row| {
            let info = info_from_row(&row);
            let kek_version = info.kek_version;
            StoredSecret {
                info,
                value: StoredValue {
                    value: row.get(12),
                    value_hash: row.get(13),
                    kek_version,
                },
            }
        }))
    }

    /// After a commit of this process, drops what it changed from the read cache at once
    /// (the notification to every process, this one included, follows).
    fn forget(&self, id: Option<&SecretId>) {
        if let Some((cache, _)) = &self.cache {
            cache.invalidate(id);
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Database(format!("cannot connect to PostgreSQL: {e}")))
    }

    async fn migrate(&self) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(db)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS strongroom_schema_version (version BIGINT NOT NULL)",
        )
        .await
        .map_err(db)?;
        let current: i64 = tx
            .query_opt("SELECT version FROM strongroom_schema_version", &[])
            .await
            .map_err(db)?
            .map_or(0, |r| r.get(0));
        let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        if current > known {
            return Err(StoreError::Database(format!(
                "the database schema is version {current}, newer than this build understands ({known}); upgrade strongroom"
            )));
        }
        for sql in &MIGRATIONS[usize::try_from(current).unwrap_or(0)..] {
            tx.batch_execute(sql)
                .await
                .map_err(|e| StoreError::Database(format!("schema migration failed: {e}")))?;
        }
        tx.execute("DELETE FROM strongroom_schema_version", &[])
            .await
            .map_err(db)?;
        tx.execute(
            "INSERT INTO strongroom_schema_version (version) VALUES ($1)",
            &[&known],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }
}

const INFO_COLUMNS: &str =
    "s.row_id, s.namespace, s.env, s.key, s.version, v.kek_version, s.description, \
     s.metadata, s.kind, s.expires_at, s.created, s.updated";

fn info_from_row(row: &Row) -> StoredInfo {
    StoredInfo {
        row_id: row.get(0),
        id: SecretId::new(
            row.get::<_, String>(1),
            row.get::<_, String>(2),
            row.get::<_, String>(3),
        ),
        version: u32_of(row.get(4)),
        kek_version: u32_of(row.get(5)),
        description: row.get(6),
        metadata: row.get(7),
        kind: row.get(8),
        expires_at: row.get(9),
        created: row.get(10),
        updated: row.get(11),
    }
}

/// The retention anchor, if any (a malformed one is an error: it is never ignored).
async fn anchor(tx: &impl GenericClient) -> Result<Option<Anchor>> {
    let text: Option<String> = tx
        .query_opt(
            "SELECT value FROM strongroom_meta WHERE name = $1",
            &[&Anchor::META],
        )
        .await
        .map_err(db)?
        .map(|r| r.get(0));
    text.map(|t| {
        Anchor::decode(&t)
            .ok_or_else(|| StoreError::AuditIntegrity("the retention anchor is malformed".into()))
    })
    .transpose()
}

/// Appends an audit event at the next sequence number, linked to the previous event (or
/// the retention anchor) under the key; must run inside a transaction: the advisory lock
/// keeps concurrent appends in one line. Returns the event's sequence number.
async fn insert_audit(
    tx: &impl GenericClient,
    chain: &dyn AuditChain,
    record: &AuditRecord,
) -> Result<i64> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
        .await
        .map_err(db)?;
    let last: Option<(i64, Option<Vec<u8>>)> = tx
        .query_opt(
            "SELECT id, link FROM strongroom_audit_events ORDER BY id DESC LIMIT 1",
            &[],
        )
        .await
        .map_err(db)?
        .map(|r| (r.get(0), r.get(1)));
    let (previous_seq, previous_link) = match last {
        Some((seq, link)) => (seq, link),
        None => anchor(tx)
            .await?
            .map_or((0, None), |a| (a.seq, Some(a.link))),
    };
    let seq = previous_seq + 1;
    let link = chain.link(previous_link.as_deref(), seq, record);
    tx.execute(
        "INSERT INTO strongroom_audit_events (id, time, actor, action, namespace, env, key, version, kek_version, link)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &seq,
            &record.time,
            &record.actor,
            &record.action.as_str(),
            &record.id.namespace,
            &record.id.env,
            &record.id.key,
            &record.version.map(i64::from),
            &record.kek_version.map(i64::from),
            &link,
        ],
    )
    .await
    .map_err(db)?;
    Ok(seq)
}

async fn check_writer_key(
    tx: &impl GenericClient,
    (version, fingerprint): &(u32, String),
    now: i64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO strongroom_key_fingerprints (kek_version, fingerprint, recorded) VALUES ($1, $2, $3)
         ON CONFLICT (kek_version) DO NOTHING",
        &[&i64::from(*version), fingerprint, &now],
    )
    .await
    .map_err(db)?;
    let recorded: String = tx
        .query_one(
            "SELECT fingerprint FROM strongroom_key_fingerprints WHERE kek_version = $1",
            &[&i64::from(*version)],
        )
        .await
        .map_err(db)?
        .get(0);
    if &recorded == fingerprint {
        Ok(())
    } else {
        Err(StoreError::WrongKey {
            version: *version,
            configured: fingerprint.clone(),
            recorded,
        })
    }
}

/// `(is_set, value)` pairs for `CASE WHEN $set THEN $value ELSE column END`.
fn change<T: Clone + Default>(change: &Change<T>) -> (bool, T) {
    match change {
        Change::Keep => (false, T::default()),
        Change::Set(value) => (true, value.clone()),
    }
}

async fn write_record(
    tx: &impl GenericClient,
    chain: &dyn AuditChain,
    record: &WriteRecord,
) -> Result<WriteOutcome> {
    let (set_description, description) = change(&record.description);
    let (set_metadata, metadata) = change(&record.metadata);
    let (set_kind, kind) = change(&record.kind);
    let (set_expiry, expires_at) = change(&record.expires_at);
    // One statement creates or bumps the secret row and locks it until commit.
    let row = tx
        .query_one(
            "INSERT INTO strongroom_secrets AS s
                 (row_id, namespace, env, key, version, description, metadata, kind, expires_at, created, updated)
             VALUES ($1, $2, $3, $4, 1,
                     CASE WHEN $5::BOOLEAN THEN $6::TEXT ELSE '' END,
                     CASE WHEN $7::BOOLEAN THEN $8::TEXT ELSE NULL END,
                     CASE WHEN $9::BOOLEAN THEN $10::TEXT ELSE 'generic' END,
                     CASE WHEN $11::BOOLEAN THEN $12::BIGINT ELSE NULL END,
                     $13, $13)
             ON CONFLICT (namespace, env, key) DO UPDATE SET
                 version = s.version + 1,
                 updated = EXCLUDED.updated,
                 description = CASE WHEN $5::BOOLEAN THEN $6::TEXT ELSE s.description END,
                 metadata = CASE WHEN $7::BOOLEAN THEN $8::TEXT ELSE s.metadata END,
                 kind = CASE WHEN $9::BOOLEAN THEN $10::TEXT ELSE s.kind END,
                 expires_at = CASE WHEN $11::BOOLEAN THEN $12::BIGINT ELSE s.expires_at END
             RETURNING sid, version, row_id, (xmax = 0) AS created",
            &[
                &record.new_row_id,
                &record.id.namespace,
                &record.id.env,
                &record.id.key,
                &set_description,
                &description,
                &set_metadata,
                &metadata,
                &set_kind,
                &kind,
                &set_expiry,
                &expires_at,
                &record.now,
            ],
        )
        .await
        .map_err(db)?;
    let (sid, version, row_id, created): (i64, i64, String, bool) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let version = u32_of(version);
    let value = (record.seal)(SealSlot {
        row_id: &row_id,
        version,
    })?;
    let action = record.action(created);
    let seq = insert_audit(
        tx,
        chain,
        &AuditRecord {
            time: record.now,
            actor: record.actor.clone(),
            action,
            id: record.id.clone(),
            version: Some(version),
            kek_version: Some(value.kek_version),
        },
    )
    .await?;
    tx.execute(
        "INSERT INTO strongroom_secret_versions (sid, version, value, value_hash, kek_version, created, actor, audit_seq, audit_tag)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &sid,
            &i64::from(version),
            &value.value,
            &value.value_hash,
            &i64::from(value.kek_version),
            &record.now,
            &record.actor,
            &seq,
            &chain.version_tag(&row_id, &record.id, version, seq),
        ],
    )
    .await
    .map_err(db)?;
    tx.execute(
        "DELETE FROM strongroom_secret_versions WHERE sid = $1 AND version <= $2",
        &[
            &sid,
            &(i64::from(version) - i64::from(record.history_depth.max(1))),
        ],
    )
    .await
    .map_err(db)?;
    Ok(WriteOutcome {
        id: row_id,
        version,
        created,
    })
}

/// An event the schema-4 migration set aside (`time, actor, action, namespace, env, key,
/// version, kek_version`).
fn legacy_record(r: &Row) -> Result<AuditRecord> {
    let action: String = r.get(2);
    let action = Action::parse(&action).ok_or_else(|| {
        StoreError::AuditIntegrity(format!(
            "a legacy audit event has an unknown action {action:?}"
        ))
    })?;
    Ok(AuditRecord {
        time: r.get(0),
        actor: r.get(1),
        action,
        id: SecretId::new(
            r.get::<_, String>(3),
            r.get::<_, String>(4),
            r.get::<_, String>(5),
        ),
        version: r.get::<_, Option<i64>>(6).map(u32_of),
        kek_version: r.get::<_, Option<i64>>(7).map(u32_of),
    })
}

/// Builds a parameter list for dynamic SQL.
#[derive(Default)]
struct Params(Vec<Box<dyn ToSql + Sync + Send>>);

impl Params {
    /// Adds a value and returns its placeholder, `$N`.
    fn add(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.0.push(Box::new(value));
        format!("${}", self.0.len())
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// An audit event from the columns `id, time, actor, action, namespace, env, key, version,
/// kek_version` (in that order).
fn audit_event_from_row(r: &Row) -> AuditEvent {
    AuditEvent {
        id: r.get(0),
        time: crate::model::Timestamp(r.get(1)),
        actor: r.get(2),
        action: Action::parse(r.get(3)).unwrap_or(Action::Read),
        namespace: r.get(4),
        env: r.get(5),
        key: r.get(6),
        version: r.get::<_, Option<i64>>(7).map(u32_of),
        kek_version: r.get::<_, Option<i64>>(8).map(u32_of),
    }
}

fn token_from_row(row: &Row) -> TokenRecord {
    let scopes: String = row.get(4);
    TokenRecord {
        id: row.get(0),
        name: row.get(1),
        secret_hash: row.get(2),
        superuser: row.get(3),
        scopes: serde_json::from_str(&scopes).unwrap_or_default(),
        created: row.get(5),
        revoked: row.get(6),
    }
}

const TOKEN_COLUMNS: &str = "id, name, secret_hash, superuser, scopes, created, revoked";

#[async_trait]
impl Backend for PostgresBackend {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn meta(&self, name: &str) -> Result<Option<String>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT value FROM strongroom_meta WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(db)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn init_meta(&self, name: &str, value: &str) -> Result<String> {
        let client = self.client().await?;
        client
            .execute("INSERT INTO strongroom_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", &[&name, &value])
            .await
            .map_err(db)?;
        let row = client
            .query_one(
                "SELECT value FROM strongroom_meta WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(db)?;
        Ok(row.get(0))
    }

    async fn recorded_keys(&self) -> Result<Vec<(u32, String)>> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT kek_version, fingerprint FROM strongroom_key_fingerprints ORDER BY kek_version", &[])
            .await
            .map_err(db)?;
        Ok(rows.iter().map(|r| (u32_of(r.get(0)), r.get(1))).collect())
    }

    async fn kek_versions_in_use(&self) -> Result<Vec<u32>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT DISTINCT kek_version FROM strongroom_secret_versions ORDER BY kek_version",
                &[],
            )
            .await
            .map_err(db)?;
        Ok(rows.iter().map(|r| u32_of(r.get(0))).collect())
    }

    async fn fetch(&self, id: &SecretId) -> Result<Option<StoredSecret>> {
        let Some((cache, _)) = &self.cache else {
            return self.fetch_uncached(id).await;
        };
        match cache.get(id) {
            Ok(answer) => Ok(answer),
            Err(ticket) => {
                let answer = self.fetch_uncached(id).await?;
                cache.fill(ticket, id, answer.clone());
                Ok(answer)
            }
        }
    }

    async fn fetch_version(&self, id: &SecretId, version: u32) -> Result<Option<StoredValue>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT v.value, v.value_hash, v.kek_version
                 FROM strongroom_secrets s JOIN strongroom_secret_versions v ON v.sid = s.sid
                 WHERE s.namespace = $1 AND s.env = $2 AND s.key = $3 AND v.version = $4",
                &[&id.namespace, &id.env, &id.key, &i64::from(version)],
            )
            .await
            .map_err(db)?;
        Ok(row.map(|r| StoredValue {
            value: r.get(0),
            value_hash: r.get(1),
            kek_version: u32_of(r.get(2)),
        }))
    }

    async fn history(&self, id: &SecretId) -> Result<Option<(u32, Vec<StoredVersion>)>> {
        let client = self.client().await?;
        let Some(secret) = client
            .query_opt(
                "SELECT sid, version FROM strongroom_secrets WHERE namespace = $1 AND env = $2 AND key = $3",
                &[&id.namespace, &id.env, &id.key],
            )
            .await
            .map_err(db)?
        else {
            return Ok(None);
        };
        let (sid, current): (i64, i64) = (secret.get(0), secret.get(1));
        let rows = client
            .query(
                "SELECT version, kek_version, created, actor FROM strongroom_secret_versions WHERE sid = $1 ORDER BY version DESC",
                &[&sid],
            )
            .await
            .map_err(db)?;
        let versions = rows
            .iter()
            .map(|r| StoredVersion {
                version: u32_of(r.get(0)),
                kek_version: u32_of(r.get(1)),
                created: r.get(2),
                actor: r.get(3),
            })
            .collect();
        Ok(Some((u32_of(current), versions)))
    }

    async fn write(&self, record: WriteRecord) -> Result<WriteOutcome> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        check_writer_key(&tx, &record.writer_key, record.now).await?;
        let outcome = write_record(&tx, self.chain.required()?.as_ref(), &record).await?;
        tx.commit().await.map_err(db)?;
        self.forget(Some(&record.id));
        Ok(outcome)
    }

    async fn write_many(&self, records: Vec<WriteRecord>) -> Result<Vec<WriteOutcome>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        if let Some(first) = records.first() {
            check_writer_key(&tx, &first.writer_key, first.now).await?;
        }
        let mut outcomes = Vec::with_capacity(records.len());
        for record in &records {
            outcomes.push(write_record(&tx, self.chain.required()?.as_ref(), record).await?);
        }
        tx.commit().await.map_err(db)?;
        for record in &records {
            self.forget(Some(&record.id));
        }
        Ok(outcomes)
    }

    async fn update_meta(&self, record: MetaRecord) -> Result<Option<StoredInfo>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let (set_description, description) = change(&record.description);
        let (set_metadata, metadata) = change(&record.metadata);
        let (set_kind, kind) = change(&record.kind);
        let (set_expiry, expires_at) = change(&record.expires_at);
        let Some(row) = tx
            .query_opt(
                "UPDATE strongroom_secrets SET updated = $4,
                     description = CASE WHEN $5::BOOLEAN THEN $6::TEXT ELSE description END,
                     metadata = CASE WHEN $7::BOOLEAN THEN $8::TEXT ELSE metadata END,
                     kind = CASE WHEN $9::BOOLEAN THEN $10::TEXT ELSE kind END,
                     expires_at = CASE WHEN $11::BOOLEAN THEN $12::BIGINT ELSE expires_at END
                 WHERE namespace = $1 AND env = $2 AND key = $3 RETURNING sid, version",
                &[
                    &record.id.namespace,
                    &record.id.env,
                    &record.id.key,
                    &record.now,
                    &set_description,
                    &description,
                    &set_metadata,
                    &metadata,
                    &set_kind,
                    &kind,
                    &set_expiry,
                    &expires_at,
                ],
            )
            .await
            .map_err(db)?
        else {
            return Ok(None);
        };
        let (sid, version): (i64, i64) = (row.get(0), row.get(1));
        let info = tx
            .query_one(
                &format!(
                    "SELECT {INFO_COLUMNS} FROM strongroom_secrets s
                     JOIN strongroom_secret_versions v ON v.sid = s.sid AND v.version = s.version WHERE s.sid = $1"
                ),
                &[&sid],
            )
            .await
            .map_err(db)?;
        insert_audit(
            &tx,
            self.chain.required()?.as_ref(),
            &AuditRecord {
                time: record.now,
                actor: record.actor.clone(),
                action: Action::MetadataUpdate,
                id: record.id.clone(),
                version: Some(u32_of(version)),
                kek_version: None,
            },
        )
        .await?;
        tx.commit().await.map_err(db)?;
        self.forget(Some(&record.id));
        Ok(Some(info_from_row(&info)))
    }

    async fn delete(&self, id: &SecretId, actor: &str, now: i64) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let Some(row) = tx
            .query_opt(
                "DELETE FROM strongroom_secrets WHERE namespace = $1 AND env = $2 AND key = $3 RETURNING version",
                &[&id.namespace, &id.env, &id.key],
            )
            .await
            .map_err(db)?
        else {
            return Ok(false);
        };
        let record = AuditRecord {
            time: now,
            actor: actor.to_owned(),
            action: Action::Delete,
            id: id.clone(),
            version: Some(u32_of(row.get(0))),
            kek_version: None,
        };
        insert_audit(&tx, self.chain.required()?.as_ref(), &record).await?;
        tx.commit().await.map_err(db)?;
        self.forget(Some(id));
        Ok(true)
    }

    async fn list(&self, filter: &ListFilter) -> Result<(Vec<StoredInfo>, u64)> {
        let mut params = Params::default();
        let mut conditions = vec![format!(
            "s.namespace = {}",
            params.add(filter.namespace.clone())
        )];
        if let Some(env) = &filter.env {
            conditions.push(format!("s.env = {}", params.add(env.clone())));
        }
        if let Some(prefix) = &filter.prefix {
            // starts_with: LIKE would treat _ in keys as a wildcard.
            conditions.push(format!(
                "starts_with(s.key, {})",
                params.add(prefix.clone())
            ));
        }
        match filter.state {
            Some(State::Expired) => {
                conditions.push(format!(
                    "s.expires_at IS NOT NULL AND s.expires_at <= {}",
                    params.add(filter.now)
                ));
            }
            Some(State::Active) => {
                conditions.push(format!(
                    "(s.expires_at IS NULL OR s.expires_at > {})",
                    params.add(filter.now)
                ));
            }
            None => {}
        }
        let base = conditions.join(" AND ");
        let client = self.client().await?;
        let total: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM strongroom_secrets s WHERE {base}"),
                &params.refs(),
            )
            .await
            .map_err(db)?
            .get(0);
        let mut page = base;
        if let Some((env, key)) = &filter.after {
            let (e, k) = (params.add(env.clone()), params.add(key.clone()));
            // Byte order (COLLATE "C"), as ORDER BY and SQLite use, whatever the database locale.
            let _ = write!(
                page,
                " AND (s.env COLLATE \"C\" > {e} OR (s.env = {e} AND s.key COLLATE \"C\" > {k}))"
            );
        }
        let limit = params.add(i64::try_from(filter.limit).unwrap_or(i64::MAX));
        let offset = params.add(if filter.after.is_some() {
            0
        } else {
            i64::try_from(filter.offset).unwrap_or(0)
        });
        let rows = client
            .query(
                &format!(
                    "SELECT {INFO_COLUMNS} FROM strongroom_secrets s
                     JOIN strongroom_secret_versions v ON v.sid = s.sid AND v.version = s.version
                     WHERE {page} ORDER BY s.env COLLATE \"C\", s.key COLLATE \"C\" LIMIT {limit} OFFSET {offset}"
                ),
                &params.refs(),
            )
            .await
            .map_err(db)?;
        Ok((
            rows.iter().map(info_from_row).collect(),
            u64::try_from(total).unwrap_or(0),
        ))
    }

    async fn audit_events(&self, query: &AuditQuery, limit: usize) -> Result<Vec<AuditEvent>> {
        let mut params = Params::default();
        let mut conditions = vec!["TRUE".to_owned()];
        if let Some(ns) = &query.namespace {
            conditions.push(format!("namespace = {}", params.add(ns.clone())));
        }
        if let Some(env) = &query.env {
            conditions.push(format!("env = {}", params.add(env.clone())));
        }
        if let Some(key) = &query.key {
            conditions.push(format!("key = {}", params.add(key.clone())));
        }
        if let Some(action) = query.action {
            conditions.push(format!(
                "action = {}",
                params.add(action.as_str().to_owned())
            ));
        }
        if let Some(before) = query.before_id {
            conditions.push(format!("id < {}", params.add(before)));
        }
        let limit = params.add(i64::try_from(limit).unwrap_or(i64::MAX));
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT id, time, actor, action, namespace, env, key, version, kek_version FROM strongroom_audit_events
                     WHERE {} ORDER BY id DESC LIMIT {limit}",
                    conditions.join(" AND ")
                ),
                &params.refs(),
            )
            .await
            .map_err(db)?;
        Ok(rows.iter().map(audit_event_from_row).collect())
    }

    async fn append_audit(&self, records: Vec<AuditRecord>) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        for record in &records {
            insert_audit(&tx, self.chain.required()?.as_ref(), record).await?;
        }
        tx.commit().await.map_err(db)
    }

    async fn rotation_candidates(
        &self,
        target: u32,
        from: Option<u32>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<RotationCandidate>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT v.vid, s.namespace, s.env, s.key, v.version, v.value, v.value_hash, v.kek_version, s.row_id
                 FROM strongroom_secret_versions v JOIN strongroom_secrets s ON s.sid = v.sid
                 WHERE v.kek_version != $1 AND ($2::BIGINT IS NULL OR v.kek_version = $2) AND v.vid > $3
                 ORDER BY v.vid LIMIT $4",
                &[&i64::from(target), &from.map(i64::from), &after, &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .await
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| RotationCandidate {
                position: r.get(0),
                id: SecretId::new(
                    r.get::<_, String>(1),
                    r.get::<_, String>(2),
                    r.get::<_, String>(3),
                ),
                row_id: r.get(8),
                version: u32_of(r.get(4)),
                value: StoredValue {
                    value: r.get(5),
                    value_hash: r.get(6),
                    kek_version: u32_of(r.get(7)),
                },
            })
            .collect())
    }

    async fn count_rotation_candidates(&self, target: u32, from: Option<u32>) -> Result<u64> {
        let client = self.client().await?;
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM strongroom_secret_versions WHERE kek_version != $1 AND ($2::BIGINT IS NULL OR kek_version = $2)",
                &[&i64::from(target), &from.map(i64::from)],
            )
            .await
            .map_err(db)?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn apply_rotation(
        &self,
        updates: Vec<RotationUpdate>,
        writer_key: (u32, String),
        cursor: Option<String>,
        actor: &str,
        now: i64,
    ) -> Result<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        check_writer_key(&tx, &writer_key, now).await?;
        let statement = tx
            .prepare(
                "UPDATE strongroom_secret_versions SET value = $1, value_hash = $2, kek_version = $3
                 WHERE vid = $4 AND value = $5",
            )
            .await
            .map_err(db)?;
        let mut applied = 0;
        for update in &updates {
            let changed = tx
                .execute(
                    &statement,
                    &[
                        &update.new.value,
                        &update.new.value_hash,
                        &i64::from(update.new.kek_version),
                        &update.position,
                        &update.expected,
                    ],
                )
                .await
                .map_err(db)?;
            if changed == 1 {
                applied += 1;
                let record = AuditRecord {
                    time: now,
                    actor: actor.to_owned(),
                    action: Action::Rotate,
                    id: update.id.clone(),
                    version: Some(update.version),
                    kek_version: Some(update.new.kek_version),
                };
                insert_audit(&tx, self.chain.required()?.as_ref(), &record).await?;
            }
        }
        if let Some(c) = &cursor {
            tx.execute(
                "INSERT INTO strongroom_meta (name, value) VALUES ('rotation_cursor', $1)
                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                &[c],
            )
            .await
            .map_err(db)?;
        } else {
            tx.execute(
                "DELETE FROM strongroom_meta WHERE name = 'rotation_cursor'",
                &[],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        self.forget(None);
        Ok(applied)
    }

    async fn rotation_status(&self) -> Result<Vec<(u32, u64, u64)>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT v.kek_version,
                        count(*) FILTER (WHERE v.version = s.version),
                        count(*) FILTER (WHERE v.version != s.version)
                 FROM strongroom_secret_versions v JOIN strongroom_secrets s ON s.sid = v.sid
                 GROUP BY v.kek_version ORDER BY v.kek_version",
                &[],
            )
            .await
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    u32_of(r.get(0)),
                    u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                    u64::try_from(r.get::<_, i64>(2)).unwrap_or(0),
                )
            })
            .collect())
    }

    async fn cleanup_expired(&self, expired_before: i64, actor: &str, now: i64) -> Result<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let rows = tx
            .query(
                "DELETE FROM strongroom_secrets WHERE expires_at IS NOT NULL AND expires_at < $1
                 RETURNING namespace, env, key, version",
                &[&expired_before],
            )
            .await
            .map_err(db)?;
        for row in &rows {
            let record = AuditRecord {
                time: now,
                actor: actor.to_owned(),
                action: Action::ExpiredCleanup,
                id: SecretId::new(
                    row.get::<_, String>(0),
                    row.get::<_, String>(1),
                    row.get::<_, String>(2),
                ),
                version: Some(u32_of(row.get(3))),
                kek_version: None,
            };
            insert_audit(&tx, self.chain.required()?.as_ref(), &record).await?;
        }
        tx.commit().await.map_err(db)?;
        self.forget(None);
        Ok(rows.len() as u64)
    }

    async fn cleanup_events(&self, before: i64) -> Result<u64> {
        let chain = self.chain.required()?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // Appends wait for this transaction: the cut and the anchor see one log.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
            .await
            .map_err(db)?;
        // The longest run from the start of the log in which every event is old enough:
        // by sequence number, so a clock that stepped back can not take a younger event.
        let row = tx
            .query_one(
                "SELECT (SELECT min(id) FROM strongroom_audit_events WHERE time >= $1),
                        (SELECT max(id) FROM strongroom_audit_events)",
                &[&before],
            )
            .await
            .map_err(db)?;
        let (first_young, last): (Option<i64>, Option<i64>) = (row.get(0), row.get(1));
        let Some(cut) = first_young.map(|young| young - 1).or(last) else {
            // End the transaction now: its advisory lock must not wait for a drop.
            tx.commit().await.map_err(db)?;
            return Ok(0);
        };
        let Some(tail) = tx
            .query_opt(
                "SELECT id, link FROM strongroom_audit_events WHERE id <= $1 ORDER BY id DESC LIMIT 1",
                &[&cut],
            )
            .await
            .map_err(db)?
        else {
            tx.commit().await.map_err(db)?;
            return Ok(0);
        };
        let (seq, link): (i64, Option<Vec<u8>>) = (tail.get(0), tail.get(1));
        let link = link.ok_or_else(|| {
            StoreError::AuditIntegrity(
                "an audit event has no chain link; run `strongroom audit verify`".into(),
            )
        })?;
        let anchor = Anchor {
            seq,
            tag: chain.anchor_tag(seq, &link),
            link,
        };
        tx.execute(
            "INSERT INTO strongroom_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
            &[&Anchor::META, &anchor.encode()],
        )
        .await
        .map_err(db)?;
        tx.batch_execute("SET LOCAL strongroom.retention = 'on'")
            .await
            .map_err(db)?;
        let n = tx
            .execute(
                "DELETE FROM strongroom_audit_events WHERE id <= $1",
                &[&seq],
            )
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(n)
    }

    fn attach_audit_chain(&self, chain: std::sync::Arc<dyn AuditChain>) {
        self.chain.attach(chain);
    }

    async fn audit_links(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<(AuditEvent, Option<Vec<u8>>)>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, time, actor, action, namespace, env, key, version, kek_version, link FROM strongroom_audit_events
                 WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after_id, &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .await
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| (audit_event_from_row(r), r.get(9)))
            .collect())
    }

    async fn audit_event_at(&self, seq: i64) -> Result<Option<(AuditEvent, Option<Vec<u8>>)>> {
        let client = self.client().await?;
        Ok(client
            .query_opt(
                "SELECT id, time, actor, action, namespace, env, key, version, kek_version, link FROM strongroom_audit_events
                 WHERE id = $1",
                &[&seq],
            )
            .await
            .map_err(db)?
            .map(|r| (audit_event_from_row(&r), r.get(9))))
    }

    async fn version_ties(&self, after: i64, limit: usize) -> Result<(Vec<VersionTie>, i64)> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT v.vid, s.row_id, s.namespace, s.env, s.key, v.version, v.audit_seq, v.audit_tag
                 FROM strongroom_secret_versions v JOIN strongroom_secrets s ON s.sid = v.sid
                 WHERE v.vid > $1 ORDER BY v.vid LIMIT $2",
                &[&after, &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .await
            .map_err(db)?;
        let last = rows.last().map_or(after, |r| r.get(0));
        let ties = rows
            .iter()
            .map(|r| VersionTie {
                row_id: r.get(1),
                id: SecretId::new(
                    r.get::<_, String>(2),
                    r.get::<_, String>(3),
                    r.get::<_, String>(4),
                ),
                version: u32_of(r.get(5)),
                audit_seq: r.get(6),
                audit_tag: r.get(7),
            })
            .collect();
        Ok((ties, last))
    }

    async fn upgrade_legacy(
        &self,
        reseal: &Resealer,
        writer_key: (u32, String),
        actor: &str,
        now: i64,
    ) -> Result<u64> {
        let chain = self.chain.required()?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(db)?;
        let events = tx
            .query(
                "SELECT time, actor, action, namespace, env, key, version, kek_version
                 FROM strongroom_audit_events_legacy ORDER BY id",
                &[],
            )
            .await
            .map_err(db)?;
        let legacy = tx
            .query(
                "SELECT v.vid, s.row_id, s.namespace, s.env, s.key, v.version, v.value, v.value_hash, v.kek_version
                 FROM strongroom_secret_versions v JOIN strongroom_secrets s ON s.sid = v.sid
                 WHERE v.audit_tag IS NULL ORDER BY v.vid",
                &[],
            )
            .await
            .map_err(db)?;
        if events.is_empty() && legacy.is_empty() {
            // Commit (nothing changed) so the migration lock is released at once, not when
            // the dropped transaction's rollback gets to run.
            tx.commit().await.map_err(db)?;
            return Ok(0);
        }
        check_writer_key(&tx, &writer_key, now).await?;
        for r in &events {
            insert_audit(&tx, chain.as_ref(), &legacy_record(r)?).await?;
        }
        for r in &legacy {
            let vid: i64 = r.get(0);
            let version = LegacyVersion {
                row_id: r.get(1),
                id: SecretId::new(
                    r.get::<_, String>(2),
                    r.get::<_, String>(3),
                    r.get::<_, String>(4),
                ),
                version: u32_of(r.get(5)),
                value: StoredValue {
                    value: r.get(6),
                    value_hash: r.get(7),
                    kek_version: u32_of(r.get(8)),
                },
            };
            let sealed = reseal(&version)?;
            let seq = insert_audit(
                &tx,
                chain.as_ref(),
                &AuditRecord {
                    time: now,
                    actor: actor.to_owned(),
                    action: Action::Reseal,
                    id: version.id.clone(),
                    version: Some(version.version),
                    kek_version: Some(sealed.kek_version),
                },
            )
            .await?;
            tx.execute(
                "UPDATE strongroom_secret_versions
                 SET value = $1, value_hash = $2, kek_version = $3, audit_seq = $4, audit_tag = $5
                 WHERE vid = $6",
                &[
                    &sealed.value,
                    &sealed.value_hash,
                    &i64::from(sealed.kek_version),
                    &seq,
                    &chain.version_tag(&version.row_id, &version.id, version.version, seq),
                    &vid,
                ],
            )
            .await
            .map_err(db)?;
        }
        tx.execute("DELETE FROM strongroom_audit_events_legacy", &[])
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        self.forget(None);
        Ok(legacy.len() as u64)
    }

    async fn insert_token(&self, token: TokenRecord) -> Result<()> {
        let client = self.client().await?;
        let scopes = serde_json::to_string(&token.scopes).map_err(db)?;
        let inserted = client
            .execute(
                "INSERT INTO strongroom_api_tokens (id, name, secret_hash, superuser, scopes, created)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[&token.id, &token.name, &token.secret_hash, &token.superuser, &scopes, &token.created],
            )
            .await
            .map_err(db)?;
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "a token named {:?} already exists",
                token.name
            )));
        }
        Ok(())
    }

    async fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {TOKEN_COLUMNS} FROM strongroom_api_tokens WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(db)?;
        Ok(row.as_ref().map(token_from_row))
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM strongroom_api_tokens ORDER BY created, name"
                ),
                &[],
            )
            .await
            .map_err(db)?;
        Ok(rows.iter().map(token_from_row).collect())
    }

    async fn revoke_token(&self, name: &str, now: i64) -> Result<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE strongroom_api_tokens SET revoked = $2 WHERE name = $1 AND revoked IS NULL",
                &[&name, &now],
            )
            .await
            .map_err(db)?;
        Ok(n == 1)
    }
}
