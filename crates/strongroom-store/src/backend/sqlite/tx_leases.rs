//! Lease rows inside a SQLite transaction.

use async_trait::async_trait;
use rusqlite::params;

use super::super::db;
use super::SqliteTx;
use crate::backend::rows::u32_of;
use crate::backend::{LeaseRow, LeaseTx};
use crate::{Result, Timestamp};

const LEASE_COLUMNS: &str =
    "id, issued, expires, state, attempts, next_attempt, claimed_until, last_error, sealed";

fn lease_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<LeaseRow> {
    Ok(LeaseRow {
        id: row.get(0)?,
        issued: row.get(1)?,
        expires: row.get(2)?,
        state: row.get(3)?,
        attempts: u32_of(row.get(4)?),
        next_attempt: row.get(5)?,
        claimed_until: row.get(6)?,
        last_error: row.get(7)?,
        sealed: row.get(8)?,
    })
}

/// The lease rows `sql` selects.
fn query(
    conn: &rusqlite::Connection,
    sql: &str,
    values: impl rusqlite::Params,
) -> Result<Vec<LeaseRow>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db)?;
    let rows = stmt.query_map(values, lease_from_row).map_err(db)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
}

/// Leases whose work is due at `?1`: not revoked, their next attempt and claim passed.
const DUE: &str = "state <> 'revoked' AND next_attempt <= ?1 AND claimed_until <= ?1";

/// Whether any lease's work is due at `now` (what `due_leases` would return some of).
pub(in crate::backend::sqlite) fn any_due(
    conn: &rusqlite::Connection,
    now: Timestamp,
) -> Result<bool> {
    conn.prepare_cached(&format!("SELECT EXISTS (SELECT 1 FROM leases WHERE {DUE})"))
        .and_then(|mut s| s.query_row([now], |r| r.get(0)))
        .map_err(db)
}

/// The lease `id`: in a transaction or on a reader.
pub(in crate::backend::sqlite) fn by_id(
    conn: &rusqlite::Connection,
    id: &str,
) -> Result<Option<LeaseRow>> {
    Ok(query(
        conn,
        &format!("SELECT {LEASE_COLUMNS} FROM leases WHERE id = ?1"),
        [id],
    )?
    .pop())
}

/// The lease rows whose id starts with `prefix` (revoked ones included), in id order: in a
/// transaction or on a reader.
pub(in crate::backend::sqlite) fn with_prefix(
    conn: &rusqlite::Connection,
    prefix: &str,
) -> Result<Vec<LeaseRow>> {
    query(
        conn,
        &format!(
            "SELECT {LEASE_COLUMNS} FROM leases
             WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id"
        ),
        [prefix],
    )
}

impl SqliteTx<'_> {
    fn lease_query(&self, sql: &str, values: impl rusqlite::Params) -> Result<Vec<LeaseRow>> {
        query(self.conn, sql, values)
    }
}

#[async_trait]
impl LeaseTx for SqliteTx<'_> {
    async fn insert_lease(&mut self, lease: &LeaseRow) -> Result<bool> {
        self.execute(
            "INSERT INTO leases (id, issued, expires, state, attempts, next_attempt,
                 claimed_until, last_error, sealed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
            params![
                lease.id,
                lease.issued,
                lease.expires,
                lease.state,
                i64::from(lease.attempts),
                lease.next_attempt,
                lease.claimed_until,
                lease.last_error,
                lease.sealed,
            ],
        )
        .map(|n| n == 1)
    }

    async fn lease(&mut self, id: &str) -> Result<Option<LeaseRow>> {
        by_id(self.conn, id)
    }

    async fn leases_with_prefix(&mut self, prefix: &str) -> Result<Vec<LeaseRow>> {
        with_prefix(self.conn, prefix)
    }

    async fn due_leases(&mut self, now: Timestamp, limit: u32) -> Result<Vec<LeaseRow>> {
        self.lease_query(
            &format!(
                "SELECT {LEASE_COLUMNS} FROM leases WHERE {DUE} ORDER BY next_attempt LIMIT ?2"
            ),
            params![now, limit],
        )
    }

    async fn update_lease(&mut self, expected: &LeaseRow, new: &LeaseRow) -> Result<bool> {
        self.execute(
            "UPDATE leases SET expires = ?8, state = ?9, attempts = ?10, next_attempt = ?11,
                 claimed_until = ?12, last_error = ?13, sealed = ?14
             WHERE id = ?1 AND expires = ?2 AND state = ?3 AND attempts = ?4
                 AND next_attempt = ?5 AND claimed_until = ?6 AND sealed = ?7",
            params![
                expected.id,
                expected.expires,
                expected.state,
                i64::from(expected.attempts),
                expected.next_attempt,
                expected.claimed_until,
                expected.sealed,
                new.expires,
                new.state,
                i64::from(new.attempts),
                new.next_attempt,
                new.claimed_until,
                new.last_error,
                new.sealed,
            ],
        )
        .map(|n| n == 1)
    }
}
