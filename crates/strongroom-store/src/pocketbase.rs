//! Moving between PocketBase's secrets plugin and Strongroom, in both directions.
//!
//! PocketBase keeps `_secrets (id, key, value, env, description, created, updated)` with
//! `value = base64(nonce || ciphertext || tag)` under the 32 bytes of `PB_MASTER_KEY`
//! (AES-256-GCM, no associated data). An import opens every row with that key and stores
//! it in Strongroom's envelope format, bound to its identity; an export does the reverse.

use std::fmt::Write as _;

use strongroom_crypto::secrecy::{ExposeSecret as _, SecretSlice};
use strongroom_crypto::{simple, Key};

use crate::{Result, SecretId, Store, StoreError};

/// One row of PocketBase's `_secrets` table.
#[derive(Clone)]
pub struct PocketBaseRow {
    /// PocketBase's record id.
    pub id: String,
    /// The key.
    pub key: String,
    /// `base64(nonce || ciphertext || tag)`.
    pub value: String,
    /// The env (PocketBase may leave it empty: the default env).
    pub env: String,
    /// Description.
    pub description: String,
    /// `YYYY-MM-DD HH:MM:SS.sssZ`.
    pub created: String,
    /// `YYYY-MM-DD HH:MM:SS.sssZ`.
    pub updated: String,
}

impl core::fmt::Debug for PocketBaseRow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PocketBaseRow")
            .field("key", &self.key)
            .field("env", &self.env)
            .finish_non_exhaustive()
    }
}

pub use crate::import::{ImportAction, ImportItem, ImportReport};

/// Imports PocketBase rows into `store` (in `namespace`), as [`crate::import::import`]
/// does: rows that do not open with `pb_key` are reported by key and env, never written.
pub async fn import(
    store: &Store,
    pb_key: &Key,
    rows: &[PocketBaseRow],
    namespace: Option<&str>,
    overwrite: bool,
    dry_run: bool,
    progress: impl FnMut(usize),
) -> Result<ImportReport> {
    let items = rows
        .iter()
        .map(|row| crate::import::ImportRow {
            key: row.key.clone(),
            env: (!row.env.is_empty()).then(|| row.env.clone()),
            description: Some(row.description.clone()),
            value: simple::open(pb_key, &row.value)
                .map_err(|e| format!("cannot decrypt with PB_MASTER_KEY: {e}")),
        })
        .collect();
    crate::import::import(store, items, namespace, overwrite, dry_run, progress).await
}

/// Exports every secret of `namespace` (and `env`, if given) as PocketBase rows sealed
/// under `pb_key`. Each exported value is recorded as a `read` audit event.
pub async fn export(
    store: &Store,
    pb_key: &Key,
    namespace: Option<&str>,
    env: Option<&str>,
) -> Result<Vec<PocketBaseRow>> {
    let mut rows = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list(crate::ListQuery {
                namespace: namespace.map(str::to_owned),
                env: env.map(str::to_owned),
                limit: Some(1000),
                cursor,
                ..crate::ListQuery::default()
            })
            .await?;
        for info in &page.items {
            let id = SecretId::new(&info.namespace, &info.env, &info.key);
            let secret = match store.get_exact(&id).await {
                Ok(read) => read.commit().await?,
                Err(StoreError::Expired { .. }) => continue,
                Err(e) => return Err(e),
            };
            rows.push(PocketBaseRow {
                id: info.id.clone(),
                key: info.key.clone(),
                value: simple::seal(pb_key, secret.value.expose_secret())?,
                env: info.env.clone(),
                description: info.description.clone(),
                created: pocketbase_time(info.created.unix_ms()),
                updated: pocketbase_time(info.updated.unix_ms()),
            });
        }
        cursor = page.next_cursor;
        if cursor.is_none() {
            return Ok(rows);
        }
    }
}

/// PocketBase's timestamp text: `2024-01-31 12:00:00.000Z`.
fn pocketbase_time(ms: i64) -> String {
    crate::model::format_time(ms).replacen('T', " ", 1)
}

/// Parses `PB_MASTER_KEY`: exactly 64 hex characters, as PocketBase requires.
pub fn parse_pb_key(text: &str) -> Result<Key> {
    let text = text.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StoreError::Config(
            "PB_MASTER_KEY: expected 64 hex characters (PocketBase's format)".into(),
        ));
    }
    Key::parse(text)
        .map_err(|_| StoreError::Config("PB_MASTER_KEY: expected 64 hex characters".into()))
}

/// The SQL that creates PocketBase's `_secrets` table if it is missing.
pub const CREATE_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS _secrets (\
     id TEXT PRIMARY KEY NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, env TEXT NOT NULL DEFAULT '', \
     description TEXT NOT NULL DEFAULT '', created TEXT NOT NULL DEFAULT '', updated TEXT NOT NULL DEFAULT '')";

/// Rows as an SQL script PocketBase's SQLite database accepts (`sqlite3 data.db < FILE`).
pub fn to_sql(rows: &[PocketBaseRow]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut sql = format!("BEGIN;\n{CREATE_TABLE_SQL};\n");
    for row in rows {
        let _ = writeln!(
            sql,
            "INSERT OR REPLACE INTO _secrets (id, key, value, env, description, created, updated) VALUES ({}, {}, {}, {}, {}, {}, {});",
            quote(&row.id),
            quote(&row.key),
            quote(&row.value),
            quote(&row.env),
            quote(&row.description),
            quote(&row.created),
            quote(&row.updated)
        );
    }
    sql.push_str("COMMIT;\n");
    sql
}

/// Reads `_secrets` from a PocketBase SQLite `data.db`.
#[cfg(feature = "sqlite")]
pub fn read_sqlite(path: &std::path::Path) -> Result<Vec<PocketBaseRow>> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", path.display())))?;
    let mut stmt = conn
        .prepare(
            "SELECT id, key, value, coalesce(env, ''), coalesce(description, ''), coalesce(created, ''), coalesce(updated, '')
             FROM _secrets ORDER BY created, id",
        )
        .map_err(|e| StoreError::Database(format!("{}: no readable _secrets table: {e}", path.display())))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(PocketBaseRow {
                id: r.get(0)?,
                key: r.get(1)?,
                value: r.get(2)?,
                env: r.get(3)?,
                description: r.get(4)?,
                created: r.get(5)?,
                updated: r.get(6)?,
            })
        })
        .map_err(|e| StoreError::Database(e.to_string()))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(|e| StoreError::Database(e.to_string()))
}

/// Writes rows into a PocketBase SQLite `data.db` (creating `_secrets` if missing).
#[cfg(feature = "sqlite")]
pub fn write_sqlite(path: &std::path::Path, rows: &[PocketBaseRow]) -> Result<()> {
    let conn = rusqlite::Connection::open(path)
        .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", path.display())))?;
    conn.execute_batch(&to_sql(rows))
        .map_err(|e| StoreError::Database(e.to_string()))
}

/// Reads `_secrets` from a PocketBase PostgreSQL database, over the same transport as the
/// main backend: TLS verified against `ca_file` (or the Mozilla roots) when the URL says
/// `sslmode=require`, plain otherwise.
#[cfg(feature = "postgres")]
pub async fn read_postgres(
    url: &str,
    ca_file: Option<&std::path::Path>,
) -> Result<Vec<PocketBaseRow>> {
    use std::str::FromStr as _;
    let mut config = tokio_postgres::Config::from_str(url).map_err(|_| {
        StoreError::Config("the PocketBase database URL is not a valid postgres:// URL".into())
    })?;
    let transport = crate::backend::transport::Transport::for_config(&mut config, ca_file)?;
    let client = transport.connect(&config).await.map_err(|e| {
        StoreError::Database(format!("cannot connect to the PocketBase database: {e}"))
    })?;
    let rows = client
        .query(
            "SELECT id::text, key::text, value::text, coalesce(env::text, ''), coalesce(description::text, ''),
                    coalesce(created::text, ''), coalesce(updated::text, '')
             FROM _secrets ORDER BY created, id",
            &[],
        )
        .await
        .map_err(|e| StoreError::Database(format!("no readable _secrets table: {e}")))?;
    Ok(rows
        .iter()
        .map(|r| PocketBaseRow {
            id: r.get(0),
            key: r.get(1),
            value: r.get(2),
            env: r.get(3),
            description: r.get(4),
            created: r.get(5),
            updated: r.get(6),
        })
        .collect())
}

/// Plaintext of a PocketBase value, for tests and tools.
pub fn open_value(pb_key: &Key, value: &str) -> Result<SecretSlice<u8>> {
    Ok(simple::open(pb_key, value)?)
}
