//! Row operations inside a PostgreSQL transaction: one file per group of rows, as the
//! traits of [`crate::backend`] are grouped.

mod audit;
pub(super) mod leases;
mod meta;
mod secrets;
mod tokens;
mod versions;

use async_trait::async_trait;
use std::sync::atomic::{AtomicBool, Ordering};

use deadpool_postgres::{Client, GenericClient as _};
use tokio_postgres::Row;

use super::cached::{Cached, Held};
use super::reads::{id_at, info_from_row, value_at};
use super::{db, AUDIT_LOCK};
use crate::backend::rows::{legacy_action, u32_of};
use crate::backend::sql::INFO_COLUMNS;
use crate::backend::{
    AuditRecord, AuditTx, ChainHead, Changes, LinkedEvent, MetaTx, NewEvent, NewVersion,
    PlacedVersion, SecretRow, SecretSettings, SecretTx, StoredInfo, StoredValue, TiePage,
    TokenRecord, TokenTx, UpsertedSecret, VersionChange, VersionRow, VersionTx, WriteTx,
};
use crate::{Result, SecretId, Timestamp};

/// What a transaction changed, for the read cache.
#[derive(Debug)]
pub(super) enum Touched {
    /// No secret.
    Nothing,
    /// These secrets.
    Secrets(Vec<SecretId>),
    /// Version rows found by position (rotation, re-sealing): anything.
    Anything,
}

impl Touched {
    fn secret(&mut self, id: &SecretId) {
        match self {
            Self::Nothing => *self = Self::Secrets(vec![id.clone()]),
            Self::Secrets(ids) => ids.push(id.clone()),
            Self::Anything => {}
        }
    }
}

/// An open transaction on a pooled connection, and what it touched. Its `BEGIN` is held
/// back like any statement nobody waits on, and rides with its first statement; the
/// backend ends it (`PostgresBackend::transaction`).
pub(super) struct PgTx<'a> {
    tx: &'a Client,
    touched: Touched,
    /// When the audit chain's lock was granted, if it was.
    locked_at: Option<std::time::Instant>,
    /// Audit appends held back to the end (group commits ask for it).
    deferred: Option<crate::backend::DeferredAudit>,
    /// The settings of the secret the last upsert wrote (its `RETURNING` carries them).
    upserted_settings: Option<(i64, SecretSettings)>,
    /// Savepoint statements and statements without an awaited answer, held back to ride
    /// with the next statement (`cached.rs`).
    held: std::sync::Mutex<Pending>,
    /// A statement of a kept savepoint failed when it went out (with a later write's
    /// statement): the transaction can only fail as a whole.
    poisoned: AtomicBool,
    /// The writing key this transaction recorded or read (`MetaTx::record_key`), while no
    /// savepoint since was undone: a group's writes check it once.
    recorded_key: Option<(u32, String)>,
}

/// What a transaction has not sent yet.
#[derive(Default)]
struct Pending {
    /// The transaction's `BEGIN`, not sent yet.
    begin: bool,
    /// Statements of kept savepoints (or of none) not sent yet: they go out before the
    /// next savepoint's release and opening, so a grouped write's last statements cost no
    /// round trip of their own. One of them failing fails the transaction.
    carried: Vec<Held>,
    /// A kept savepoint whose `RELEASE` rides with the next savepoint's opening (the
    /// commit releases it otherwise).
    release: bool,
    /// A savepoint asked for and not yet opened on the server: it opens with the next
    /// statement, so a write's savepoint costs no round trip of its own.
    open: bool,
    /// Statements inside the current savepoint, sent before the next statement.
    statements: Vec<Held>,
}

impl Pending {
    /// Everything held, in the order the server must run it, and whether it carries
    /// statements of kept savepoints.
    fn take(&mut self) -> (Vec<Held>, bool) {
        let mut held = Vec::with_capacity(self.carried.len() + self.statements.len() + 2);
        if std::mem::take(&mut self.begin) {
            held.push(Held::Simple("BEGIN"));
        }
        let carrying = !self.carried.is_empty();
        held.append(&mut self.carried);
        if std::mem::take(&mut self.open) {
            held.push(Held::Simple(if std::mem::take(&mut self.release) {
                "RELEASE SAVEPOINT strongroom_write; SAVEPOINT strongroom_write"
            } else {
                "SAVEPOINT strongroom_write"
            }));
        }
        held.append(&mut self.statements);
        (held, carrying)
    }
}

impl<'a> PgTx<'a> {
    /// A transaction on `client`, its `BEGIN` held back for the first statement.
    pub(super) fn begin(client: &'a Client) -> Self {
        Self {
            tx: client,
            touched: Touched::Nothing,
            locked_at: None,
            deferred: None,
            upserted_settings: None,
            poisoned: AtomicBool::new(false),
            recorded_key: None,
            held: std::sync::Mutex::new(Pending {
                begin: true,
                ..Pending::default()
            }),
        }
    }

    /// Whether the `BEGIN` went out (else nothing of the transaction was sent).
    pub(super) fn begun(&self) -> bool {
        !self.pending().begin
    }

    /// Whether a statement of a kept savepoint failed: the transaction must not commit.
    pub(super) fn poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// What the transaction touched, and when it took the chain lock.
    pub(super) fn into_parts(self) -> (Touched, Option<std::time::Instant>) {
        (self.touched, self.locked_at)
    }

    /// The transaction, its statements through the connection's statement cache, the
    /// next one carrying everything held back.
    fn cached(&self) -> Cached<'_, Client> {
        let (held, carrying) = self.pending().take();
        let cached = Cached::with_held(self.tx, held);
        if carrying {
            cached.poisoning(&self.poisoned)
        } else {
            cached
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds `sql` back to ride with the next statement (its answer is not awaited; its
    /// error fails that statement).
    fn hold(
        &self,
        sql: &'static str,
        params: Vec<Box<dyn tokio_postgres::types::ToSql + Send + Sync>>,
    ) {
        self.pending().statements.push(Held::Statement(sql, params));
    }

    /// The transaction with everything held back sent, for statements that do not go
    /// through [`PgTx::cached`].
    async fn sent(&self) -> Result<&Client> {
        self.cached().flush().await.map_err(db)?;
        Ok(self.tx)
    }

    /// Sends what is still held.
    pub(super) async fn flush(&self) -> Result<()> {
        self.sent().await.map(drop)
    }

    /// What is still held, to send with the commit.
    pub(super) fn take_held(&self) -> Vec<Held> {
        self.pending().take().0
    }

    /// Version rows matching `filter` (over `v`, the version, and `s`, its secret), with
    /// their positions, in position order.
    async fn version_rows(
        &self,
        filter: &str,
        values: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<PlacedVersion>> {
        let rows = self
            .cached()
            .query(
                &format!(
                    "SELECT v.vid, s.row_id, s.namespace, s.env, s.key, v.version, v.value, v.value_hash, v.kek_version
                     FROM strongroom_secret_versions v JOIN strongroom_secrets s ON s.sid = v.sid
                     WHERE {filter} ORDER BY v.vid"
                ),
                values,
            )
            .await
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| PlacedVersion {
                position: r.get(0),
                row: VersionRow {
                    row_id: r.get(1),
                    id: id_at(r, 2),
                    version: u32_of(r.get(5)),
                    value: value_at(r, 6),
                },
            })
            .collect())
    }
}

fn secret_row(r: &Row) -> SecretRow {
    SecretRow {
        sid: r.get(0),
        row_id: r.get(1),
        id: id_at(r, 2),
        version: u32_of(r.get(5)),
    }
}

const ROW_COLUMNS: &str = "sid, row_id, namespace, env, key, version";

#[async_trait]
impl WriteTx for PgTx<'_> {
    async fn savepoint(&mut self) -> Result<bool> {
        // Opened with the write's first statement (and the previous one released there).
        // A savepoint asked for and never ended goes out now.
        if self.pending().open {
            self.flush().await?;
        }
        {
            // Anything held outside a savepoint goes out before this one opens.
            let mut pending = self.pending();
            let outside = std::mem::take(&mut pending.statements);
            pending.carried.extend(outside);
            pending.open = true;
        }
        if let Some(deferred) = &mut self.deferred {
            deferred.savepoint();
        }
        Ok(true)
    }

    async fn savepoint_end(&mut self, keep: bool) -> Result<()> {
        self.upserted_settings = None;
        if self.poisoned() {
            // A kept write's statement failed after it was told it landed: undoing this
            // savepoint could undo that write too (the savepoint it belonged to was never
            // released). Only the whole transaction's rollback is exact.
            return Err(crate::StoreError::Database(
                "a statement of an earlier write in this transaction failed; the transaction is rolled back".into(),
            ));
        }
        if !keep {
            // A key recorded inside the undone savepoint is undone with it.
            self.recorded_key = None;
        }
        let idle = {
            let mut pending = self.pending();
            let idle = pending.open && pending.statements.is_empty();
            if idle {
                pending.open = false;
            }
            idle
        };
        if idle {
            // The write ran no statement: nothing to keep or undo, and the previous
            // savepoint's release stays pending.
        } else if keep {
            // What the write held rides with the next statement, before the release (which
            // rides with the next savepoint's opening, or the commit does it). If it fails
            // there, the transaction fails as a whole (`poisoned`).
            let mut pending = self.pending();
            let statements = std::mem::take(&mut pending.statements);
            pending.carried.extend(statements);
            if !std::mem::take(&mut pending.open) {
                pending.release = true;
            }
            // A savepoint never opened on the server needs no release: its statements
            // join the enclosing (kept) scope.
        } else {
            let opened = {
                let mut pending = self.pending();
                pending.statements.clear();
                !std::mem::take(&mut pending.open)
            };
            if opened {
                self.tx
                    .batch_execute(
                        "ROLLBACK TO SAVEPOINT strongroom_write; RELEASE SAVEPOINT strongroom_write",
                    )
                    .await
                    .map_err(db)?;
            }
        }
        if let Some(deferred) = &mut self.deferred {
            deferred.savepoint_end(keep);
        }
        Ok(())
    }

    fn defer_audit(&mut self) -> bool {
        self.deferred.get_or_insert_with(Default::default);
        true
    }

    fn deferred_audit(&mut self) -> Option<&mut crate::backend::DeferredAudit> {
        self.deferred.as_mut()
    }

    async fn retie_versions(&mut self, ties: &[crate::backend::FinalTie]) -> Result<()> {
        // One statement however many versions the group wrote, held with the group's
        // events to ride with the `COMMIT`: under the chain's lock, one round trip after
        // the head's. Its error is the commit's (the whole group fails, nothing stored).
        let sids: Vec<i64> = ties.iter().map(|t| t.sid).collect();
        let versions: Vec<i64> = ties.iter().map(|t| i64::from(t.version)).collect();
        let seqs: Vec<i64> = ties.iter().map(|t| t.seq).collect();
        let tags: Vec<Vec<u8>> = ties.iter().map(|t| t.tag.clone()).collect();
        // A version a later write of the same group trimmed away has no row left to tie.
        self.hold(
            "UPDATE strongroom_secret_versions AS v SET audit_seq = t.seq, audit_tag = t.tag
             FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BYTEA[]) AS t (sid, version, seq, tag)
             WHERE v.sid = t.sid AND v.version = t.version",
            vec![
                Box::new(sids),
                Box::new(versions),
                Box::new(seqs),
                Box::new(tags),
            ],
        );
        Ok(())
    }
}
