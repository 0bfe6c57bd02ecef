//! Lease rows inside a PostgreSQL transaction.

use super::*;
use crate::backend::rows::u32_of;
use crate::backend::{LeaseRow, LeaseTx};

const LEASE_COLUMNS: &str =
    "id, issued, expires, state, attempts, next_attempt, claimed_until, last_error, sealed";

/// Leases whose work is due at `$1`: not revoked, their next attempt and claim passed.
const DUE: &str = "state <> 'revoked' AND next_attempt <= $1 AND claimed_until <= $1";

/// Whether any lease's work is due at `now` (what `due_leases` would return some of).
pub(in crate::backend::postgres) async fn any_due<C: deadpool_postgres::GenericClient + ?Sized>(
    cached: &Cached<'_, C>,
    now: Timestamp,
) -> Result<bool> {
    let row = cached
        .query_one(
            &format!("SELECT EXISTS (SELECT 1 FROM strongroom_leases WHERE {DUE})"),
            &[&now],
        )
        .await
        .map_err(db)?;
    Ok(row.get(0))
}

/// The lease `id`: in a transaction or on a pooled connection.
pub(in crate::backend::postgres) async fn by_id<C: deadpool_postgres::GenericClient + ?Sized>(
    cached: &Cached<'_, C>,
    id: &str,
) -> Result<Option<LeaseRow>> {
    let row = cached
        .query_opt(
            &format!("SELECT {LEASE_COLUMNS} FROM strongroom_leases WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(db)?;
    Ok(row.as_ref().map(lease_from_row))
}

/// The lease rows whose id starts with `prefix` (revoked ones included), in id order: in a
/// transaction or on a pooled connection.
pub(in crate::backend::postgres) async fn with_prefix<
    C: deadpool_postgres::GenericClient + ?Sized,
>(
    cached: &Cached<'_, C>,
    prefix: &str,
) -> Result<Vec<LeaseRow>> {
    let rows = cached
        .query(
            &format!(
                "SELECT {LEASE_COLUMNS} FROM strongroom_leases
                 WHERE left(id, length($1)) = $1 ORDER BY id"
            ),
            &[&prefix],
        )
        .await
        .map_err(db)?;
    Ok(rows.iter().map(lease_from_row).collect())
}

fn lease_from_row(row: &tokio_postgres::Row) -> LeaseRow {
    LeaseRow {
        id: row.get(0),
        issued: row.get(1),
        expires: row.get(2),
        state: row.get(3),
        attempts: u32_of(row.get(4)),
        next_attempt: row.get(5),
        claimed_until: row.get(6),
        last_error: row.get(7),
        sealed: row.get(8),
    }
}

#[async_trait]
impl LeaseTx for PgTx<'_> {
    async fn insert_lease(&mut self, lease: &LeaseRow) -> Result<bool> {
        let n = self
            .cached()
            .execute(
                "INSERT INTO strongroom_leases (id, issued, expires, state, attempts,
                     next_attempt, claimed_until, last_error, sealed)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                &[
                    &lease.id,
                    &lease.issued,
                    &lease.expires,
                    &lease.state,
                    &i64::from(lease.attempts),
                    &lease.next_attempt,
                    &lease.claimed_until,
                    &lease.last_error,
                    &lease.sealed,
                ],
            )
            .await
            .map_err(db)?;
        Ok(n == 1)
    }

    async fn lease(&mut self, id: &str) -> Result<Option<LeaseRow>> {
        by_id(&self.cached(), id).await
    }

    async fn leases_with_prefix(&mut self, prefix: &str) -> Result<Vec<LeaseRow>> {
        with_prefix(&self.cached(), prefix).await
    }

    async fn due_leases(&mut self, now: Timestamp, limit: u32) -> Result<Vec<LeaseRow>> {
        let rows = self
            .cached()
            .query(
                &format!(
                    "SELECT {LEASE_COLUMNS} FROM strongroom_leases
                     WHERE {DUE} ORDER BY next_attempt LIMIT $2"
                ),
                &[&now, &i64::from(limit)],
            )
            .await
            .map_err(db)?;
        Ok(rows.iter().map(lease_from_row).collect())
    }

    async fn update_lease(&mut self, expected: &LeaseRow, new: &LeaseRow) -> Result<bool> {
        let n = self
            .cached()
            .execute(
                "UPDATE strongroom_leases SET expires = $8, state = $9, attempts = $10,
                     next_attempt = $11, claimed_until = $12, last_error = $13, sealed = $14
                 WHERE id = $1 AND expires = $2 AND state = $3 AND attempts = $4
                     AND next_attempt = $5 AND claimed_until = $6 AND sealed = $7",
                &[
                    &expected.id,
                    &expected.expires,
                    &expected.state,
                    &i64::from(expected.attempts),
                    &expected.next_attempt,
                    &expected.claimed_until,
                    &expected.sealed,
                    &new.expires,
                    &new.state,
                    &i64::from(new.attempts),
                    &new.next_attempt,
                    &new.claimed_until,
                    &new.last_error,
                    &new.sealed,
                ],
            )
            .await
            .map_err(db)?;
        Ok(n == 1)
    }
}
