//! Re-wrapping a whole column under the active key, in batches, with progress, and
//! recomputing the blind indexes derived from it.
//!
//! Each batch is one transaction. A row is replaced only if its stored bytes are still the
//! ones read (compare-and-swap), so a concurrent write is never overwritten; a value
//! written meanwhile under an old key is caught by running the rotation again. Only the
//! data keys are re-wrapped; value ciphertexts are copied unchanged. The progress
//! callback receives a cursor; pass it back as `resume` to continue an interrupted run.
//!
//! A blind index ([`crate::Column::blind_index`]) is a keyed hash under the active key, so
//! after a key rotation the stored indexes no longer match a lookup computed under the new
//! key. Tell the rotation about each index column ([`RotationPlan::with_blind_index`]):
//! it opens every value and recomputes the index under the active key in the same
//! compare-and-swap update. Until it has finished, look rows up with
//! [`crate::Column::blind_index_candidates`] (`WHERE email_bidx IN (…)`).
//!
//! The row id used as associated data is the id column's text form (`CAST(id AS TEXT)` on
//! SQLite, `id::text` on PostgreSQL): seal with the same text (`42`, a UUID in lowercase
//! hyphenated form, ...).

// Without a database feature the plan can be built but not run.
#![cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]

use std::fmt::Write as _;

use serde::de::DeserializeOwned;
use strongroom_crypto::MAC_LEN;

use crate::{Column, Result};

/// Where a rotation stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationProgress {
    /// Rows looked at.
    pub scanned: u64,
    /// Rows re-wrapped.
    pub rotated: u64,
    /// Rows whose blind indexes were recomputed under the active key.
    pub reindexed: u64,
    /// Rows changed concurrently between read and write (left as written).
    pub skipped: u64,
    /// Resume point (a SQLite rowid or a PostgreSQL ctid).
    pub cursor: Option<String>,
}

/// A blind-index column derived from the rotated column's values: the rotation stores
/// `column.blind_index(ring, input(&value))` in it, under the active key.
pub struct BlindIndex<'a> {
    column: String,
    #[allow(clippy::type_complexity)] // one boxed closure
    input: Box<dyn Fn(&[u8]) -> Result<Vec<u8>> + Send + Sync + 'a>,
}

impl core::fmt::Debug for BlindIndex<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BlindIndex")
            .field("column", &self.column)
            .finish_non_exhaustive()
    }
}

impl<'a> BlindIndex<'a> {
    /// The index column `column` (a plain SQL identifier), holding the blind index of
    /// `input(&value)` for each value `T` of the rotated column: the same bytes the
    /// application indexes when it writes a row (e.g. `|e: &String| e.to_lowercase().into_bytes()`).
    pub fn new<T: DeserializeOwned>(
        column: &str,
        input: impl Fn(&T) -> Vec<u8> + Send + Sync + 'a,
    ) -> Result<Self> {
        crate::column::check_identifier(column)?;
        Ok(Self {
            column: column.to_owned(),
            input: Box::new(move |plaintext| {
                crate::encrypted::decode::<T>(plaintext).map(|value| input(&value))
            }),
        })
    }
}

/// A column rotation: which column, how rows are identified, and which blind-index
/// columns to recompute.
#[derive(Debug)]
pub struct RotationPlan<'a> {
    column: &'a Column,
    id_column: String,
    batch_size: usize,
    resume: Option<String>,
    indexes: Vec<BlindIndex<'a>>,
}

impl<'a> RotationPlan<'a> {
    /// Rotates `column`, whose rows are identified by `id_column` (its text form is the
    /// row id the values were sealed with); batches of 500.
    pub fn new(column: &'a Column, id_column: &str) -> Result<Self> {
        crate::column::check_identifier(id_column)?;
        Ok(Self {
            column,
            id_column: id_column.to_owned(),
            batch_size: 500,
            resume: None,
            indexes: Vec::new(),
        })
    }

    /// Rows per transaction (at least 1).
    #[must_use]
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.batch_size = rows.max(1);
        self
    }

    /// Continue after the cursor a previous, interrupted run reported.
    #[must_use]
    pub fn resume(mut self, cursor: Option<&str>) -> Self {
        self.resume = cursor.map(str::to_owned);
        self
    }

    /// Also recompute this blind-index column from each value, under the active key.
    #[must_use]
    pub fn with_blind_index(mut self, index: BlindIndex<'a>) -> Self {
        self.indexes.push(index);
        self
    }

    /// `UPDATE … SET col = P1[, idx = P4 …] WHERE position = P2 AND col = P3`, with
    /// `param(n)` the placeholder of parameter `n` and `position` the row's locator.
    fn update_sql(&self, param: impl Fn(usize) -> String, position: &str) -> String {
        let (table, col) = (self.column.table(), self.column.column());
        let mut sets = format!("{col} = {}", param(1));
        for (n, index) in self.indexes.iter().enumerate() {
            let _ = write!(sets, ", {} = {}", index.column, param(n + 4));
        }
        format!(
            "UPDATE {table} SET {sets} WHERE {position} = {} AND {col} = {}",
            param(2),
            param(3)
        )
    }

    /// `, idx1, idx2` for the select list (empty without indexes).
    fn index_columns(&self) -> String {
        let mut columns = String::new();
        for index in &self.indexes {
            let _ = write!(columns, ", {}", index.column);
        }
        columns
    }

    /// What each row of a batch needs: re-wrapping, and its indexes under the active key.
    fn plan_batch(
        &self,
        ring: &strongroom_crypto::KeyRing,
        rows: Vec<Candidate>,
    ) -> Result<Vec<Update>> {
        use strongroom_crypto::secrecy::ExposeSecret as _;
        let mut updates = Vec::new();
        for row in rows {
            let context = self.column.context(&row.row_id);
            let rewrapped = ring.rewrap(&context, &row.sealed)?;
            if self.indexes.is_empty() {
                if let Some(new) = rewrapped {
                    updates.push(Update {
                        position: row.position,
                        old: row.sealed,
                        new,
                        rewrapped: true,
                        indexes: Vec::new(),
                    });
                }
                continue;
            }
            let plaintext = ring.open(&context, &row.sealed)?;
            let indexes = self
                .indexes
                .iter()
                .map(|index| {
                    (index.input)(plaintext.expose_secret())
                        .map(|input| self.column.blind_index(ring, &input))
                })
                .collect::<Result<Vec<_>>>()?;
            let current = indexes
                .iter()
                .zip(&row.stored_indexes)
                .all(|(new, stored)| stored.as_deref() == Some(new.as_slice()));
            if rewrapped.is_none() && current {
                // Nothing to write (and on PostgreSQL, no new row version to scan again).
                continue;
            }
            updates.push(Update {
                position: row.position,
                rewrapped: rewrapped.is_some(),
                new: rewrapped.unwrap_or_else(|| row.sealed.clone()),
                old: row.sealed,
                indexes,
            });
        }
        Ok(updates)
    }
}

/// One row read for rotation.
struct Candidate {
    position: String,
    row_id: String,
    sealed: Vec<u8>,
    /// The index columns' stored values, in the plan's order.
    stored_indexes: Vec<Option<Vec<u8>>>,
}

/// One row's compare-and-swap update.
struct Update {
    position: String,
    old: Vec<u8>,
    new: Vec<u8>,
    rewrapped: bool,
    indexes: Vec<[u8; MAC_LEN]>,
}

impl RotationProgress {
    fn count(&mut self, update: &Update, applied: bool) {
        if !applied {
            self.skipped += 1;
            return;
        }
        self.rotated += u64::from(update.rewrapped);
        self.reindexed += u64::from(!update.indexes.is_empty());
    }
}

#[cfg(feature = "sqlite")]
impl RotationPlan<'_> {
    /// Runs the rotation on a SQLite table (a rowid table).
    pub fn run_sqlite(
        &self,
        conn: &rusqlite::Connection,
        ring: &strongroom_crypto::KeyRing,
        mut progress: impl FnMut(&RotationProgress),
    ) -> Result<RotationProgress> {
        use rusqlite::OptionalExtension as _;
        let db = |e: rusqlite::Error| crate::FieldError::Database(e.to_string());
        let (table, col, id_column) = (self.column.table(), self.column.column(), &self.id_column);
        let select = format!(
            "SELECT rowid, CAST({id_column} AS TEXT), {col}{} FROM {table}
             WHERE rowid > ?1 AND {col} IS NOT NULL ORDER BY rowid LIMIT ?2",
            self.index_columns()
        );
        let update = self.update_sql(|n| format!("?{n}"), "rowid");
        let mut state = RotationProgress {
            cursor: self.resume.clone(),
            ..RotationProgress::default()
        };
        let mut cursor: i64 = self
            .resume
            .as_deref()
            .and_then(|c| c.parse().ok())
            .unwrap_or(i64::MIN);
        let limit = i64::try_from(self.batch_size).unwrap_or(i64::MAX);
        loop {
            // Immediate: take the write lock before reading, so a concurrent writer waits
            // (busy timeout) instead of invalidating this batch's snapshot.
            let tx = rusqlite::Transaction::new_unchecked(
                conn,
                rusqlite::TransactionBehavior::Immediate,
            )
            .map_err(db)?;
            let rows: Vec<Candidate> = {
                let mut stmt = tx.prepare_cached(&select).map_err(db)?;
                let rows = stmt
                    .query_map(rusqlite::params![cursor, limit], |r| {
                        Ok(Candidate {
                            position: r.get::<_, i64>(0)?.to_string(),
                            row_id: r.get(1)?,
                            sealed: r.get(2)?,
                            stored_indexes: (0..self.indexes.len())
                                .map(|n| r.get(3 + n))
                                .collect::<rusqlite::Result<_>>()?,
                        })
                    })
                    .map_err(db)?;
                rows.collect::<rusqlite::Result<_>>().map_err(db)?
            };
            let Some(last) = rows.last() else { break };
            cursor = last.position.parse().unwrap_or(cursor);
            state.scanned += rows.len() as u64;
            for row in self.plan_batch(ring, rows)? {
                let position = row.position.parse::<i64>().unwrap_or(0);
                let mut params: Vec<&dyn rusqlite::ToSql> = vec![&row.new, &position, &row.old];
                params.extend(row.indexes.iter().map(|i| i as &dyn rusqlite::ToSql));
                let changed = tx
                    .prepare_cached(&update)
                    .and_then(|mut s| s.execute(params.as_slice()))
                    .optional()
                    .map_err(db)?
                    .unwrap_or(0);
                state.count(&row, changed == 1);
            }
            tx.commit().map_err(db)?;
            state.cursor = Some(cursor.to_string());
            progress(&state);
        }
        Ok(state)
    }
}

#[cfg(feature = "postgres")]
impl RotationPlan<'_> {
    /// Runs the rotation on a PostgreSQL table, walking it in `ctid` order.
    pub async fn run_postgres(
        &self,
        client: &mut tokio_postgres::Client,
        ring: &strongroom_crypto::KeyRing,
        mut progress: impl FnMut(&RotationProgress),
    ) -> Result<RotationProgress> {
        let db = |e: tokio_postgres::Error| crate::FieldError::Database(e.to_string());
        let (table, col, id_column) = (self.column.table(), self.column.column(), &self.id_column);
        let select = format!(
            // Order by the tid itself (qualified): `ctid::text` would sort (0,10) before (0,2).
            "SELECT ctid::text AS position, {id_column}::text, {col}{} FROM {table}
             WHERE ctid > $1::text::tid AND {col} IS NOT NULL ORDER BY {table}.ctid LIMIT $2",
            self.index_columns()
        );
        let update = self.update_sql(
            |n| {
                if n == 2 {
                    "$2::text::tid".to_owned()
                } else {
                    format!("${n}")
                }
            },
            "ctid",
        );
        let mut state = RotationProgress {
            cursor: self.resume.clone(),
            ..RotationProgress::default()
        };
        let mut cursor = self.resume.clone().unwrap_or_else(|| "(0,0)".to_owned());
        let limit = i64::try_from(self.batch_size).unwrap_or(i64::MAX);
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
                    stored_indexes: (0..self.indexes.len()).map(|n| r.get(3 + n)).collect(),
                })
                .collect();
            let Some(last) = rows.last() else { break };
            cursor.clone_from(&last.position);
            state.scanned += rows.len() as u64;
            for row in self.plan_batch(ring, rows)? {
                let indexes: Vec<&[u8]> =
                    row.indexes.iter().map(<[u8; MAC_LEN]>::as_slice).collect();
                let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    vec![&row.new, &row.position, &row.old];
                params.extend(
                    indexes
                        .iter()
                        .map(|i| i as &(dyn tokio_postgres::types::ToSql + Sync)),
                );
                let changed = tx.execute(&update, &params).await.map_err(db)?;
                state.count(&row, changed == 1);
            }
            tx.commit().await.map_err(db)?;
            state.cursor = Some(cursor.clone());
            progress(&state);
        }
        Ok(state)
    }
}

#[cfg(feature = "sqlite")]
/// Rotation of a column in a SQLite table (a rowid table), without blind indexes; see
/// [`RotationPlan`] for those.
pub fn rotate_sqlite(
    conn: &rusqlite::Connection,
    column: &Column,
    id_column: &str,
    ring: &strongroom_crypto::KeyRing,
    batch_size: usize,
    resume: Option<&str>,
    progress: impl FnMut(&RotationProgress),
) -> Result<RotationProgress> {
    RotationPlan::new(column, id_column)?
        .batch_size(batch_size)
        .resume(resume)
        .run_sqlite(conn, ring, progress)
}

#[cfg(feature = "postgres")]
/// Rotation of a column in a PostgreSQL table, walking it in `ctid` order, without blind
/// indexes; see [`RotationPlan`] for those.
pub async fn rotate_postgres(
    client: &mut tokio_postgres::Client,
    column: &Column,
    id_column: &str,
    ring: &strongroom_crypto::KeyRing,
    batch_size: usize,
    resume: Option<&str>,
    progress: impl FnMut(&RotationProgress),
) -> Result<RotationProgress> {
    RotationPlan::new(column, id_column)?
        .batch_size(batch_size)
        .resume(resume)
        .run_postgres(client, ring, progress)
        .await
}
