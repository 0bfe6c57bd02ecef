//! Importing many values at once: a plan per row, then one transaction.

use strongroom_crypto::secrecy::{ExposeSecret as _, SecretSlice};

use crate::{Result, SetRequest, Store};

/// One value to import.
pub struct ImportRow {
    /// The key.
    pub key: String,
    /// The env (`None`: the default env).
    pub env: Option<String>,
    /// A description to set (`None` keeps the current one).
    pub description: Option<String>,
    /// Metadata to set (`None` keeps the current one).
    pub metadata: Option<serde_json::Value>,
    /// The plaintext, or why it could not be read (never a value).
    pub value: core::result::Result<SecretSlice<u8>, String>,
}

/// What an import does with one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportAction {
    /// New in Strongroom.
    Create,
    /// Exists; replaced because `overwrite` was asked.
    Overwrite,
    /// Exists; left alone.
    SkipExisting,
    /// Could not be imported; the reason names no value.
    Fail(String),
}

/// One planned row: where it goes and what happens to it.
#[derive(Debug, Clone)]
pub struct ImportItem {
    /// The key, as given.
    pub key: String,
    /// The env, as given (empty: the default env).
    pub env: String,
    /// What the import does.
    pub action: ImportAction,
}

/// The outcome of an import (or of a dry run: the same, with nothing written).
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// Every row, in order.
    pub items: Vec<ImportItem>,
    /// Whether anything was written.
    pub applied: bool,
}

impl ImportReport {
    /// Counts of `(created, overwritten, skipped, failed)`.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let count =
            |f: fn(&ImportAction) -> bool| self.items.iter().filter(|i| f(&i.action)).count();
        (
            count(|a| *a == ImportAction::Create),
            count(|a| *a == ImportAction::Overwrite),
            count(|a| *a == ImportAction::SkipExisting),
            count(|a| matches!(a, ImportAction::Fail(_))),
        )
    }
}

/// What an import does with an empty value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyValues {
    /// Refused, as a value typed by a person is (a dotenv file's `KEY=` line).
    Refuse,
    /// Kept: the source stores empty values on purpose (PocketBase's plugin does), and a
    /// migration must carry every row exactly.
    Keep,
}

/// Imports `rows` into `store` (in `namespace`). Rows that can not be imported (no value,
/// a key or env name Strongroom does not accept, an empty value unless `empty` keeps it)
/// are reported and not written. Unless `dry_run`, every other row is written in **one**
/// transaction: the import lands whole or not at all. Existing secrets are skipped unless
/// `overwrite`.
pub async fn import(
    store: &Store,
    rows: Vec<ImportRow>,
    namespace: Option<&str>,
    [overwrite, dry_run]: [bool; 2],
    empty: EmptyValues,
    mut progress: impl FnMut(usize),
) -> Result<ImportReport> {
    let mut report = ImportReport::default();
    let mut writes = Vec::new();
    for (n, row) in rows.into_iter().enumerate() {
        progress(n + 1);
        let action = match (
            store.secret_id(namespace, row.env.as_deref(), &row.key),
            row.value,
        ) {
            (Err(e), _) => ImportAction::Fail(e.to_string()),
            (Ok(_), Err(reason)) => ImportAction::Fail(reason),
            (Ok(_), Ok(value))
                if value.expose_secret().is_empty() && empty == EmptyValues::Refuse =>
            {
                ImportAction::Fail(crate::store::EMPTY_VALUE.into())
            }
            (Ok(id), Ok(value)) => {
                let exists = store.has_row(&id).await?;
                if exists && !overwrite {
                    ImportAction::SkipExisting
                } else {
                    writes.push((
                        id,
                        SetRequest {
                            description: row.description,
                            metadata: row.metadata,
                            value,
                            ..SetRequest::default()
                        },
                    ));
                    if exists {
                        ImportAction::Overwrite
                    } else {
                        ImportAction::Create
                    }
                }
            }
        };
        report.items.push(ImportItem {
            key: row.key,
            env: row.env.unwrap_or_default(),
            action,
        });
    }
    if !dry_run && !writes.is_empty() {
        match empty {
            EmptyValues::Refuse => store.set_many(writes).await?,
            EmptyValues::Keep => store.set_many_keeping_empty(writes).await?,
        };
        report.applied = true;
    }
    Ok(report)
}
