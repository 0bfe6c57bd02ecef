//! The embedded SQLite backend: one file, WAL, busy timeout, `synchronous = FULL`.
//!
//! Writes run on a thread that owns the one write connection (the `worker` module): write
//! transactions (`BEGIN IMMEDIATE`) and their fsync never block an async runtime thread.
//! Reads use read-only connections, which WAL lets run beside a write:
//!
//! - **point reads** (one row by a unique key: a secret's current value, a version, its
//!   settings, a token, a meta value) run on the caller's thread, on a free connection of
//!   a small pool (`InlineReaders`). They never flush, and their connections have no busy
//!   timeout: a read that would have to wait for a lock, or finds every pooled connection
//!   in use, goes to a reader thread instead. Crossing to a thread costs more than the
//!   query itself (tens of microseconds to wake a thread on a small VM, against about
//!   three for the query), so the common read never crosses.
//! - **scans** (lists, audit pages, history, rotation batches, backups) run on reader
//!   threads, since their length depends on the data.

use std::borrow::Borrow as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, TryLockError};

use async_trait::async_trait;
use rusqlite::Connection;

use super::{
    AuditReads, Backend, History, KekUsage, KeptValue, LinkedEvent, ListFilter, ListPage,
    MetaReads, RecordedKey, RotationCandidate, SecretReads, StoredSecret, TiePage, TokenReads,
    TokenRecord, TxWork, VersionReads,
};
use crate::{AuditEvent, AuditQuery, Result, SecretId, StoreError};

mod reads;
mod schema;
mod tx;
mod worker;

pub use schema::{migrations, schema_version};

/// Reader threads (and connections) per database.
const READERS: usize = 2;

/// Connections for point reads on callers' threads, per database.
const INLINE_READERS: usize = 4;

/// A SQLite database file.
pub struct SqliteBackend {
    // Fields drop in order: the read-only readers close first, so the writer's connection
    // is the last one and checkpoints the WAL into the file as it closes (a closed
    // database is one complete file, as SQLite leaves it).
    inline: InlineReaders,
    readers: worker::Worker,
    writer: worker::Worker,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[allow(clippy::needless_pass_by_value)] // shaped for `map_err(db)`
pub(super) fn db(error: rusqlite::Error) -> StoreError {
    StoreError::driver(error)
}

fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| {
        StoreError::Database(format!(
            "cannot open SQLite database {}: {e}",
            path.display()
        ))
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(db)?;
    Ok(conn)
}

impl SqliteBackend {
    /// Opens (or creates, mode 0600) the database at `path` and applies migrations.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let existed = path.exists();
        let mut conn = connect(&path)?;
        if !existed {
            restrict_permissions(&path)?;
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        schema::migrate(&mut conn)?;
        let readers = (0..READERS)
            .map(|_| {
                let reader = connect(&path)?;
                reader.pragma_update(None, "query_only", "ON").map_err(db)?;
                Ok(reader)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            inline: InlineReaders::open(&path)?,
            readers: worker::Worker::start("reader", readers)?,
            writer: worker::Worker::start("writer", vec![conn])?,
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a read on a reader thread.
    async fn read<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.readers.run(move |conn| call(conn)).await
    }

    /// Runs the point read `call(conn, arg)` on the caller's thread when it can do so
    /// without waiting, and on a reader thread otherwise (only then is `arg` copied).
    async fn point_read<A, T>(&self, arg: &A, call: fn(&Connection, &A) -> Result<T>) -> Result<T>
    where
        A: ?Sized + ToOwned + Sync + 'static,
        A::Owned: Send + 'static,
        T: Send + 'static,
    {
        if let Some(done) = self.inline.try_read(|conn| call(conn, arg)) {
            return done;
        }
        let arg = arg.to_owned();
        self.read(move |conn| call(conn, arg.borrow())).await
    }
}

/// Read-only connections used on callers' threads, each behind its own lock, none waiting.
struct InlineReaders {
    connections: Vec<Mutex<Connection>>,
}

impl InlineReaders {
    fn open(path: &Path) -> Result<Self> {
        let connections = (0..INLINE_READERS)
            .map(|_| {
                let conn = connect(path)?;
                conn.pragma_update(None, "query_only", "ON").map_err(db)?;
                // Never sleep on a lock on an async thread: a busy read goes to a thread.
                conn.busy_timeout(std::time::Duration::ZERO).map_err(db)?;
                Ok(Mutex::new(conn))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { connections })
    }

    /// `call` on the first free connection; `None` when every connection is in use or the
    /// read would have to wait for a lock.
    fn try_read<T>(&self, call: impl Fn(&Connection) -> Result<T>) -> Option<Result<T>> {
        let conn = self
            .connections
            .iter()
            .find_map(|slot| match slot.try_lock() {
                Ok(conn) => Some(conn),
                // A panic during an earlier read leaves the connection usable.
                Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            })?;
        match call(&conn) {
            Err(error) if would_wait(&error) => None,
            done => Some(done),
        }
    }
}

/// Whether SQLite refused `error`'s call because another connection holds a lock.
fn would_wait(error: &StoreError) -> bool {
    let StoreError::Driver { source, .. } = error else {
        return false;
    };
    source
        .downcast_ref::<rusqlite::Error>()
        .and_then(rusqlite::Error::sqlite_error_code)
        .is_some_and(|code| {
            matches!(
                code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            )
        })
}

/// Runs one statement without parameters through the connection's statement cache (a
/// transaction's `BEGIN` and `COMMIT` are parsed once per connection, not per commit).
fn run_cached(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute([]))
        .map(drop)
        .map_err(db)
}

/// Runs `work` in an immediate (write-locking) transaction on `conn`: commit on `Ok`,
/// rollback on an error or a panic.
fn run_transaction(conn: &mut Connection, work: TxWork) -> Result<()> {
    run_cached(conn, "BEGIN IMMEDIATE")?;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut tx = tx::SqliteTx::new(conn);
        // The rule of `TxWork`, enforced: the work awaits only this transaction's row
        // operations, which complete at once, so it finishes in one poll. A work that
        // waits on anything else is a defect, refused and rolled back rather than left
        // to stall the writer thread.
        futures_util::FutureExt::now_or_never(work(&mut tx)).unwrap_or(Err(StoreError::Defect(
            "a transaction's work awaited something besides its rows",
        )))
    }))
    .unwrap_or_else(|_| {
        Err(StoreError::Defect(
            "a write transaction panicked; it was rolled back",
        ))
    });
    let committed = outcome.and_then(|out| {
        run_cached(conn, "COMMIT")?;
        Ok(out)
    });
    if committed.is_err() {
        let _ = run_cached(conn, "ROLLBACK");
    }
    committed
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
        StoreError::io(
            format!("cannot restrict permissions of {}", path.display()),
            e,
        )
    })
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) -> Result<()> {
    Ok(())
}

#[async_trait]
impl Backend for SqliteBackend {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn transaction(&self, work: TxWork) -> Result<()> {
        self.writer
            .run(move |conn| run_transaction(conn, work))
            .await
    }

    fn schema_version(&self) -> Option<i64> {
        i64::try_from(schema_version()).ok()
    }

    /// SQLite's online backup API from a reader connection: one consistent snapshot even
    /// while others write. The file must not exist; it is created 0600.
    async fn backup_to(&self, destination: &Path) -> Result<()> {
        let destination = destination.to_path_buf();
        self.readers
            .run(move |conn| {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&destination)
                    .map_err(|e| {
                        if e.kind() == std::io::ErrorKind::AlreadyExists {
                            StoreError::InvalidInput(format!(
                                "backup: {} exists; a backup never overwrites a file, name a new one",
                                destination.display()
                            ))
                        } else {
                            StoreError::io(
                                format!("backup: cannot create {}", destination.display()),
                                e,
                            )
                        }
                    })?;
                drop(file);
                restrict_permissions(&destination)?;
                let mut target = Connection::open(&destination).map_err(db)?;
                let backup = rusqlite::backup::Backup::new(conn, &mut target).map_err(db)?;
                let copied = backup
                    .run_to_completion(256, std::time::Duration::from_millis(5), None)
                    .map_err(db);
                if copied.is_err() {
                    let _ = std::fs::remove_file(&destination);
                }
                copied
            })
            .await
    }

    /// SQLite's backup API from `source` into the writer connection.
    async fn restore_from(&self, source: &Path) -> Result<()> {
        let source = source.to_path_buf();
        self.writer
            .run(move |conn| {
                let from = Connection::open_with_flags(
                    &source,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .map_err(|e| {
                    StoreError::InvalidInput(format!(
                        "restore: cannot open {}: {e}",
                        source.display()
                    ))
                })?;
                let backup = rusqlite::backup::Backup::new(&from, conn).map_err(db)?;
                backup
                    .run_to_completion(256, std::time::Duration::from_millis(5), None)
                    .map_err(db)
            })
            .await
    }
}

#[async_trait]
impl MetaReads for SqliteBackend {
    async fn meta(&self, name: &str) -> Result<Option<String>> {
        self.point_read(name, reads::meta).await
    }

    async fn recorded_keys(&self) -> Result<Vec<RecordedKey>> {
        self.read(reads::recorded_keys).await
    }

    async fn kek_versions_in_use(&self) -> Result<Vec<u32>> {
        self.read(reads::kek_versions_in_use).await
    }

    async fn any_lease_due(&self, now: crate::Timestamp) -> Result<bool> {
        self.read(move |c| tx::leases::any_due(c, now)).await
    }

    async fn lease_rows(&self, prefix: &str) -> Result<Vec<super::LeaseRow>> {
        let prefix = prefix.to_owned();
        self.read(move |c| tx::leases::with_prefix(c, &prefix))
            .await
    }

    async fn lease_row(&self, id: &str) -> Result<Option<super::LeaseRow>> {
        let id = id.to_owned();
        self.read(move |c| tx::leases::by_id(c, &id)).await
    }
}

#[async_trait]
impl SecretReads for SqliteBackend {
    async fn fetch(&self, id: &SecretId) -> Result<Option<StoredSecret>> {
        self.point_read(id, reads::fetch).await
    }

    async fn settings(&self, id: &SecretId) -> Result<Option<crate::backend::SecretSettings>> {
        self.point_read(id, reads::settings).await
    }

    async fn list(&self, filter: &ListFilter) -> Result<ListPage> {
        let filter = filter.clone();
        self.read(move |c| reads::list(c, &filter)).await
    }
}

#[async_trait]
impl VersionReads for SqliteBackend {
    async fn fetch_version(&self, id: &SecretId, version: u32) -> Result<Option<KeptValue>> {
        self.point_read(&(id.clone(), version), |c, (id, version)| {
            reads::fetch_version(c, id, *version)
        })
        .await
    }

    async fn history(&self, id: &SecretId) -> Result<Option<History>> {
        let id = id.clone();
        self.read(move |c| reads::history(c, &id)).await
    }

    async fn rotation_candidates(
        &self,
        target: u32,
        from: Option<u32>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<RotationCandidate>> {
        self.read(move |c| reads::rotation_candidates(c, target, from, after, limit))
            .await
    }

    async fn count_rotation_candidates(&self, target: u32, from: Option<u32>) -> Result<u64> {
        self.read(move |c| reads::count_rotation_candidates(c, target, from))
            .await
    }

    async fn rotation_status(&self) -> Result<Vec<KekUsage>> {
        self.read(reads::rotation_status).await
    }

    async fn version_ties(&self, after: i64, limit: usize) -> Result<TiePage> {
        self.read(move |c| reads::version_ties(c, after, limit))
            .await
    }
}

#[async_trait]
impl AuditReads for SqliteBackend {
    async fn audit_events(&self, query: &AuditQuery, limit: usize) -> Result<Vec<AuditEvent>> {
        let query = query.clone();
        self.read(move |c| reads::audit_events(c, &query, limit))
            .await
    }

    async fn audit_links(&self, after: i64, limit: usize) -> Result<Vec<LinkedEvent>> {
        self.read(move |c| reads::audit_links(c, after, limit))
            .await
    }

    async fn audit_event_at(&self, seq: i64) -> Result<Option<LinkedEvent>> {
        self.read(move |c| reads::audit_event_at(c, seq)).await
    }
}

#[async_trait]
impl TokenReads for SqliteBackend {
    async fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>> {
        self.point_read(id, reads::token_by_id).await
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        self.read(reads::tokens).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn busy() -> StoreError {
        db(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        ))
    }

    #[test]
    fn only_lock_refusals_send_a_point_read_to_a_thread() {
        assert!(would_wait(&busy()));
        assert!(would_wait(&db(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_LOCKED),
            None,
        ))));
        assert!(!would_wait(&db(rusqlite::Error::QueryReturnedNoRows)));
        assert!(!would_wait(&StoreError::Database("busy".into())));
    }

    /// A point read that would wait for a lock, or finds every pooled connection taken,
    /// is answered by a reader thread, with the same answer.
    #[test]
    fn a_point_read_that_can_not_run_inline_runs_on_a_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let backend = SqliteBackend::open(&path).unwrap();
        Connection::open(&path)
            .unwrap()
            .execute(
                "INSERT INTO meta (name, value) VALUES ('probe', 'found')",
                [],
            )
            .unwrap();
        let meta = |backend: &SqliteBackend| {
            futures_executor::block_on(backend.point_read("probe", reads::meta))
        };
        let inline = meta(&backend).unwrap();
        assert_eq!(inline.as_deref(), Some("found"));

        // Refused for a lock on the caller's thread: the thread's answer is returned.
        assert!(backend.inline.try_read(|_| Err::<(), _>(busy())).is_none());

        // Every pooled connection in use: the read still gets its answer.
        let taken: Vec<_> = backend
            .inline
            .connections
            .iter()
            .map(|slot| slot.lock().unwrap())
            .collect();
        assert!(backend.inline.try_read(|_| Ok(())).is_none());
        assert_eq!(meta(&backend).unwrap(), inline);
        drop(taken);
        assert!(backend.inline.try_read(|_| Ok(())).is_some());
    }

    /// The rule of `TxWork`, enforced: a work that awaits anything besides its own row
    /// operations is refused as a defect and rolled back, instead of stalling the writer.
    #[test]
    fn a_transaction_that_awaits_something_else_is_refused_and_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let backend = SqliteBackend::open(dir.path().join("s.db")).unwrap();
        let outcome = futures_executor::block_on(backend.transaction(Box::new(|tx| {
            Box::pin(async move {
                tx.set_meta("probe", Some("written")).await?;
                // A future that is not ready at once (a lock, a channel, a timer).
                let (_keep, never) = futures_channel::oneshot::channel::<()>();
                let _ = never.await;
                Ok(())
            })
        })));
        assert!(matches!(outcome, Err(StoreError::Defect(_))), "{outcome:?}");
        let stored = futures_executor::block_on(backend.meta("probe")).unwrap();
        assert_eq!(stored, None, "the refused work's row was rolled back");
    }
}
