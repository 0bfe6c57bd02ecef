//! Re-wrapping a whole column under the active key, in batches, with progress.
//!
//! Each batch is one transaction. A row is replaced only if its stored bytes are still the
//! ones read (compare-and-swap), so a concurrent write is never overwritten; a value
//! written meanwhile under an old key is caught by running the rotation again. Only the
//! data keys are re-wrapped; value ciphertexts are copied unchanged. The progress
//! callback receives a cursor; pass it back as `resume` to continue an interrupted run.
//!
//! The row id used as associated data is the id column's text form (`CAST(id AS TEXT)` on
//! SQLite, `id::text` on PostgreSQL): seal with the same text (`42`, a UUID in lowercase
//! hyphenated form, ...).

#[cfg(any(feature = "rusqlite", feature = "postgres"))]
use crate::Result;

/// Where a rotation stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationProgress {
    /// Rows looked at.
    pub scanned: u64,
    /// Rows re-wrapped.
    pub rotated: u64,
    /// Rows changed concurrently between read and write (left as written).
    pub skipped: u64,
    /// Resume point (a SQLite rowid or a PostgreSQL ctid).
    pub cursor: Option<String>,
}

/// One row read for rotation.
#[cfg(any(feature = "rusqlite", feature = "postgres"))]
struct Candidate {
    position: String,
    row_id: String,
    sealed: Vec<u8>,
}

/// A re-wrapped row: its position, the bytes read, the new bytes.
#[cfg(any(feature = "rusqlite", feature = "postgres"))]
type Rewrapped = (String, Vec<u8>, Vec<u8>);

/// Re-wraps what needs it.
#[cfg(any(feature = "rusqlite", feature = "postgres"))]
fn rewrap_batch(
    ring: &strongroom_crypto::KeyRing,
    column: &crate::Column,
    rows: Vec<Candidate>,
) -> Result<Vec<Rewrapped>> {
    let mut updates = Vec::new();
    for row in rows {
        if let Some(new) = ring.rewrap(&column.context(&row.row_id), &row.sealed)? {
            updates.push((row.position, row.sealed, new));
        }
    }
    Ok(updates)
}

#[cfg(feature = "rusqlite")]
/// Rotation of a column in a SQLite table (a rowid table).
pub fn rotate_sqlite(
    conn: &rusqlite::Connection,
    column: &crate::Column,
    id_column: &str,
    ring: &strongroom_crypto::KeyRing,
    batch_size: usize,
    resume: Option<&str>,
    mut progress: impl FnMut(&RotationProgress),
) -> Result<RotationProgress> {
    use rusqlite::OptionalExtension as _;
    let _ = crate::Column::new(column.table(), id_column)?;
    let db = |e: rusqlite::Error| crate::FieldError::Database(e.to_string());
    let (table, col) = (column.table(), column.column());
    let select = format!(
        "SELECT rowid, CAST({id_column} AS TEXT), {col} FROM {table}
         WHERE rowid > ?1 AND {col} IS NOT NULL ORDER BY rowid LIMIT ?2"
    );
    let update = format!("UPDATE {table} SET {col} = ?1 WHERE rowid = ?2 AND {col} = ?3");
    let mut state = RotationProgress {
        cursor: resume.map(str::to_owned),
        ..RotationProgress::default()
    };
    let mut cursor: i64 = resume.and_then(|c| c.parse().ok()).unwrap_or(i64::MIN);
    loop {
        // Immediate: take the write lock before reading, so a concurrent writer waits
        // (busy timeout) instead of invalidating this batch's snapshot.
        let tx =
            rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)
                .map_err(db)?;
        let rows: Vec<Candidate> = {
            let mut stmt = tx.prepare_cached(&select).map_err(db)?;
            let rows = stmt
                .query_map(
                    rusqlite::params![cursor, i64::try_from(batch_size.max(1)).unwrap_or(i64::MAX)],
                    |r| {
                        Ok(Candidate {
                            position: r.get::<_, i64>(0)?.to_string(),
                            row_id: r.get(1)?,
                            sealed: r.get(2)?,
                        })
                    },
                )
                .map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)?
        };
        let Some(last) = rows.last() else { break };
        cursor = last.position.parse().unwrap_or(cursor);
        state.scanned += rows.len() as u64;
        for (position, old, new) in rewrap_batch(ring, column, rows)? {
            let changed = tx
                .prepare_cached(&update)
                .and_then(|mut s| {
                    s.execute(rusqlite::params![
                        new,
                        position.parse::<i64>().unwrap_or(0),
                        old
                    ])
                })
                .optional()
                .map_err(db)?
                .unwrap_or(0);
            if changed == 1 {
                state.rotated += 1;
            } else {
                state.skipped += 1;
            }
        }
        tx.commit().map_err(db)?;
        state.cursor = Some(cursor.to_string());
        progress(&state);
    }
    Ok(state)
}

#[cfg(feature = "postgres")]
/// Rotation of a column in a PostgreSQL table, walking it in `ctid` order.
pub async fn rotate_postgres(
    client: &mut tokio_postgres::Client,
    column: &crate::Column,
    id_column: &str,
    ring: &strongroom_crypto::KeyRing,
    batch_size: usize,
    resume: Option<&str>,
    mut progress: impl FnMut(&RotationProgress),
) -> Result<RotationProgress> {
    let _ = crate::Column::new(column.table(), id_column)?;
    let db = |e: tokio_postgres::Error| crate::FieldError::Database(e.to_string());
    let (table, col) = (column.table(), column.column());
    let select = format!(
        // Order by the tid itself (qualified): `ctid::text` would sort (0,10) before (0,2).
        "SELECT ctid::text AS position, {id_column}::text, {col} FROM {table}
         WHERE ctid > $1::text::tid AND {col} IS NOT NULL ORDER BY {table}.ctid LIMIT $2"
    );
    let update = format!("UPDATE {table} SET {col} = $1 WHERE ctid = $2::text::tid AND {col} = $3");
    let mut state = RotationProgress {
        cursor: resume.map(str::to_owned),
        ..RotationProgress::default()
    };
    let mut cursor = resume.unwrap_or("(0,0)").to_owned();
    let limit = i64::try_from(batch_size.max(1)).unwrap_or(i64::MAX);
    loop {
        let tx = client.transaction().await.map_err(db)?;
        let rows: Vec<Candidate> = tx
            .query(&select, &[&cursor, &limit])
            .await
            .map_err(db)?
            .iter()
            .map(|r| Candidate {
                position: r.get(0),
                row_id: r.get(1),
                sealed: r.get(2),
            })
            .collect();
        let Some(last) = rows.last() else { break };
        cursor.clone_from(&last.position);
        state.scanned += rows.len() as u64;
        for (position, old, new) in rewrap_batch(ring, column, rows)? {
            if tx
                .execute(&update, &[&new, &position, &old])
                .await
                .map_err(db)?
                == 1
            {
                state.rotated += 1;
            } else {
                state.skipped += 1;
            }
        }
        tx.commit().await.map_err(db)?;
        state.cursor = Some(cursor.clone());
        progress(&state);
    }
    Ok(state)
}
