//! PocketBase's `_secrets` table: its rows, its encryption, reading and writing it in a
//! PocketBase database (SQLite or PostgreSQL), and moving rows in both directions. An
//! adapter over the store's public API (and `import`'s plan-then-one-transaction), kept
//! out of the storage core.
//!
//! PocketBase keeps `_secrets (id, key, value, env, description, created, updated)` with
//! `value = base64(nonce || ciphertext || tag)` under the 32 bytes of `PB_MASTER_KEY`
//! (AES-256-GCM, no associated data). An import opens every row with that key and stores
//! it in Strongroom's envelope format, bound to its identity; an export does the reverse.

use std::fmt::Write as _;

use strongroom_crypto::secrecy::ExposeSecret as _;
use strongroom_crypto::{simple, Key};

use strongroom_store::{Result, SecretId, Store, StoreError};

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

impl PocketBaseRow {
    /// The seven columns, in the table's order.
    fn columns(&self) -> [&String; 7] {
        [
            &self.id,
            &self.key,
            &self.value,
            &self.env,
            &self.description,
            &self.created,
            &self.updated,
        ]
    }
}

impl core::fmt::Debug for PocketBaseRow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PocketBaseRow")
            .field("key", &self.key)
            .field("env", &self.env)
            .finish_non_exhaustive()
    }
}

pub use strongroom_store::import::{ImportAction, ImportReport};

/// Imports PocketBase rows into `store` (in `namespace`), as [`strongroom_store::import::import`]
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
        .map(|row| strongroom_store::import::ImportRow {
            key: row.key.clone(),
            env: (!row.env.is_empty()).then(|| row.env.clone()),
            description: Some(row.description.clone()),
            // Kept so an export back updates PocketBase's same row.
            metadata: Some(serde_json::json!({ POCKETBASE_ID: row.id })),
            value: simple::open(pb_key, &row.value)
                .map_err(|e| format!("cannot decrypt with PB_MASTER_KEY: {e}")),
        })
        .collect();
    // PocketBase's plugin stores empty strings: a migration carries them exactly.
    strongroom_store::import::import(
        store,
        items,
        namespace,
        [overwrite, dry_run],
        strongroom_store::import::EmptyValues::Keep,
        progress,
    )
    .await
}

/// The metadata field holding the PocketBase row id a secret was imported from.
pub const POCKETBASE_ID: &str = "pocketbase_id";

/// The PocketBase row id for `info`: the one it was imported from (metadata
/// `pocketbase_id`), else Strongroom's own row id.
fn row_id_of(info: &strongroom_store::SecretInfo) -> String {
    info.metadata
        .as_ref()
        .and_then(|m| m.get(POCKETBASE_ID))
        .and_then(serde_json::Value::as_str)
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
        .map_or_else(|| info.id.clone(), str::to_owned)
}

/// PocketBase rows, and the secrets they leave out.
#[derive(Debug, Clone)]
pub struct PocketBaseExport {
    /// One row per exported secret.
    pub rows: Vec<PocketBaseRow>,
    /// Expired, deleted and destroyed secrets, not exported (for the caller to name, or
    /// refuse).
    pub left_out: Vec<strongroom_store::LeftOut>,
}

/// Exports every secret of `namespace` (and `env`, if given) as PocketBase rows sealed
/// under `pb_key`, each with the PocketBase row id it was imported from (or Strongroom's
/// own). Each exported value is recorded as a `read` audit event. Expired, deleted and
/// destroyed secrets are left out and named in the result.
pub async fn export(
    store: &Store,
    pb_key: &Key,
    namespace: Option<&str>,
    env: Option<&str>,
) -> Result<PocketBaseExport> {
    let mut rows = Vec::new();
    let mut left_out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list(strongroom_store::ListQuery {
                namespace: namespace.map(str::to_owned),
                env: env.map(str::to_owned),
                limit: Some(1000),
                cursor,
                ..strongroom_store::ListQuery::default()
            })
            .await?;
        for info in &page.items {
            let id = SecretId::new(&info.namespace, &info.env, &info.key);
            let secret = match store.get_exact(&id).await {
                Ok(read) => read.commit().await?,
                Err(e) => {
                    left_out.push(strongroom_store::LeftOut::of(e)?);
                    continue;
                }
            };
            rows.push(PocketBaseRow {
                id: row_id_of(info),
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
            return Ok(PocketBaseExport { rows, left_out });
        }
    }
}

/// PocketBase's timestamp text: `2024-01-31 12:00:00.000Z`.
fn pocketbase_time(ms: i64) -> String {
    strongroom_store::format_time(ms).replacen('T', " ", 1)
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

/// The SQL that creates PocketBase's `_secrets` table if it is missing, with its
/// `UNIQUE(key, env)`; the same text for SQLite and PostgreSQL.
pub const CREATE_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS _secrets (\
     id TEXT PRIMARY KEY NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, env TEXT NOT NULL DEFAULT '', \
     description TEXT NOT NULL DEFAULT '', created TEXT NOT NULL DEFAULT '', updated TEXT NOT NULL DEFAULT ''); \
     CREATE UNIQUE INDEX IF NOT EXISTS idx__secrets_key_env ON _secrets (key, env)";

/// One row's upsert, as two statements the same for SQLite (3.24+) and PostgreSQL, given
/// the seven values (literals or parameters) in column order `id, key, value, env,
/// description, created, updated`: the row with that id is updated in place (PocketBase's
/// id, key, env and `created` kept); otherwise the row is inserted, or, when its
/// `(key, env)` exists under another id, that row is updated.
fn upsert_sql(v: &[String; 7]) -> [String; 2] {
    let [id, ..] = v;
    [
        format!(
            "UPDATE _secrets SET value = {}, description = {}, updated = {} WHERE id = {id}",
            v[2], v[4], v[6]
        ),
        format!(
            "INSERT INTO _secrets (id, key, value, env, description, created, updated) SELECT {} \
             WHERE NOT EXISTS (SELECT 1 FROM _secrets WHERE id = {id}) \
             ON CONFLICT (key, env) DO UPDATE SET value = excluded.value, \
             description = excluded.description, updated = excluded.updated",
            v.join(", ")
        ),
    ]
}

/// Rows as an SQL script that both PocketBase's SQLite database (`sqlite3 data.db < FILE`)
/// and PostgreSQL (`psql -v ON_ERROR_STOP=1 -f FILE`) accept.
pub fn to_sql(rows: &[PocketBaseRow]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut sql = format!("BEGIN;\n{CREATE_TABLE_SQL};\n");
    for row in rows {
        let values = row.columns().map(|v| quote(v));
        for statement in upsert_sql(&values) {
            let _ = writeln!(sql, "{statement};");
        }
    }
    sql.push_str("COMMIT;\n");
    sql
}

/// Reads `_secrets` from a PocketBase SQLite `data.db`.
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
pub fn write_sqlite(path: &std::path::Path, rows: &[PocketBaseRow]) -> Result<()> {
    // A database this export creates holds sealed values and names: readable by its
    // owner only (an existing PocketBase database keeps its own mode).
    let mut create = std::fs::OpenOptions::new();
    create.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut create, 0o600);
    match create.open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(StoreError::Database(format!(
                "cannot create {}: {e}",
                path.display()
            )))
        }
    }
    let conn = rusqlite::Connection::open(path)
        .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", path.display())))?;
    conn.execute_batch(&to_sql(rows))
        .map_err(|e| StoreError::Database(e.to_string()))
}

/// Writes rows into PocketBase's `_secrets` table in PostgreSQL (created with its
/// `UNIQUE(key, env)` if missing), in one transaction, values bound as parameters; the
/// transport is the main backend's (see [`read_postgres`]).
pub async fn write_postgres(
    url: &str,
    ca_file: Option<&std::path::Path>,
    rows: &[PocketBaseRow],
) -> Result<()> {
    let mut client = connect_postgres(url, ca_file).await?;
    let failed = |e: tokio_postgres::Error| {
        StoreError::Database(format!("cannot write the PocketBase _secrets table: {e}"))
    };
    let tx = client.transaction().await.map_err(failed)?;
    tx.batch_execute(CREATE_TABLE_SQL).await.map_err(failed)?;
    // The update uses id, value, description and updated only: numbered $1..$4 there.
    let [update, _] = upsert_sql(&["$1", "", "$2", "", "$3", "", "$4"].map(str::to_owned));
    let [_, insert] = upsert_sql(&std::array::from_fn(|n| format!("${}::text", n + 1)));
    let update = tx.prepare(&update).await.map_err(failed)?;
    let insert = tx.prepare(&insert).await.map_err(failed)?;
    for row in rows {
        let values: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = row.columns().map(|v| v as _);
        tx.execute(&update, &[values[0], values[2], values[4], values[6]])
            .await
            .map_err(failed)?;
        tx.execute(&insert, &values).await.map_err(failed)?;
    }
    tx.commit().await.map_err(failed)
}

async fn connect_postgres(
    url: &str,
    ca_file: Option<&std::path::Path>,
) -> Result<tokio_postgres::Client> {
    strongroom_store::backend::postgres::connect_client(url, ca_file, "the PocketBase database URL")
        .await
}

/// Reads `_secrets` from a PocketBase PostgreSQL database, over the same transport as the
/// main backend: TLS verified against `ca_file` (or the Mozilla roots) when the URL says
/// `sslmode=require`, plain otherwise.
pub async fn read_postgres(
    url: &str,
    ca_file: Option<&std::path::Path>,
) -> Result<Vec<PocketBaseRow>> {
    let client = connect_postgres(url, ca_file).await?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn info(metadata: serde_json::Value) -> strongroom_store::SecretInfo {
        strongroom_store::SecretInfo {
            id: "own_row_id".into(),
            namespace: "default".into(),
            env: "prod".into(),
            key: "K".into(),
            masked_value: strongroom_store::MASK.into(),
            description: String::new(),
            metadata: Some(metadata),
            kind: String::new(),
            version: 1,
            kek_version: 1,
            expires_at: None,
            state: strongroom_store::State::Active,
            created: strongroom_store::Timestamp(0),
            updated: strongroom_store::Timestamp(0),
        }
    }

    /// `pocketbase_id` is metadata anyone with write access to a secret can set: an id that
    /// is not a plain PocketBase id is never used (the secret's own id is).
    #[test]
    fn a_hostile_pocketbase_id_is_not_used() {
        assert_eq!(
            row_id_of(&info(serde_json::json!({POCKETBASE_ID: "pb1"}))),
            "pb1"
        );
        for hostile in [
            serde_json::json!({POCKETBASE_ID: "x'); DROP TABLE _secrets; --"}),
            serde_json::json!({POCKETBASE_ID: ""}),
            serde_json::json!({POCKETBASE_ID: "a".repeat(65)}),
            serde_json::json!({POCKETBASE_ID: 42}),
            serde_json::json!({POCKETBASE_ID: "a b"}),
        ] {
            assert_eq!(row_id_of(&info(hostile.clone())), "own_row_id", "{hostile}");
        }
    }

    /// Every text in the script is one quoted SQL literal, whatever it holds.
    #[test]
    fn script_literals_can_not_be_escaped() {
        let row = PocketBaseRow {
            id: "pb1".into(),
            key: "K".into(),
            value: "v".into(),
            env: "prod".into(),
            description: "it's'); DROP TABLE _secrets; --".into(),
            created: String::new(),
            updated: String::new(),
        };
        let sql = to_sql(&[row]);
        assert!(sql.contains("'it''s''); DROP TABLE _secrets; --'"), "{sql}");
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(&sql).unwrap();
        let (count, description): (i64, String) = conn
            .query_row("SELECT count(*), description FROM _secrets", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(
            (count, description.as_str()),
            (1, "it's'); DROP TABLE _secrets; --")
        );
    }
}
