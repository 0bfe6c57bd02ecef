//! Where a field lives: table and column, the associated data of its ciphertexts.

use serde::de::DeserializeOwned;
use serde::Serialize;
use strongroom_crypto::{Context, KeyRing, MAC_LEN};

use crate::{Deterministic, Encrypted, FieldError, Result};

/// A table's column holding encrypted values. Its name is bound into every ciphertext
/// (with the row id), so values can not be moved between columns or rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    table: String,
    column: String,
}

impl Column {
    /// A column; both names must be plain SQL identifiers (they are also used in the
    /// rotation's SQL).
    pub fn new(table: &str, column: &str) -> Result<Self> {
        check_identifier(table)?;
        check_identifier(column)?;
        Ok(Self {
            table: table.to_owned(),
            column: column.to_owned(),
        })
    }

    /// The table.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The column.
    pub fn column(&self) -> &str {
        &self.column
    }

    /// The associated data for `row_id` (its text form: `42`, `user-42`, a UUID).
    pub fn context(&self, row_id: &str) -> Context {
        Context::field(&self.table, &self.column, row_id)
    }

    /// Seals `value` for this column and row under the active key.
    pub fn seal<T: Serialize + DeserializeOwned>(
        &self,
        ring: &KeyRing,
        row_id: &str,
        value: &T,
    ) -> Result<Encrypted<T>> {
        Encrypted::seal(ring, &self.context(row_id), value)
    }

    /// Opens a value sealed for this column and row.
    pub fn open<T: Serialize + DeserializeOwned>(
        &self,
        ring: &KeyRing,
        row_id: &str,
        value: &Encrypted<T>,
    ) -> Result<T> {
        value.open(ring, &self.context(row_id))
    }

    /// Seals deterministically: equal values in this column give equal bytes (no row id is
    /// bound, so equality holds across rows). Leaks equality; see `docs/security.md`.
    pub fn seal_deterministic<T: Serialize + DeserializeOwned>(
        &self,
        ring: &KeyRing,
        value: &T,
    ) -> Result<Deterministic<T>> {
        Deterministic::seal(ring, &self.lookup_context("deterministic"), value)
    }

    /// Opens a deterministic value of this column.
    pub fn open_deterministic<T: Serialize + DeserializeOwned>(
        &self,
        ring: &KeyRing,
        value: &Deterministic<T>,
    ) -> Result<T> {
        value.open(ring, &self.lookup_context("deterministic"))
    }

    /// The blind index of `value` for this column: 32 bytes of HMAC-SHA-256 under the
    /// active key's keyed-hash subkey, bound to table and column. Store it beside the
    /// encrypted value (`email_bidx`) and look rows up with `WHERE email_bidx = ?`.
    /// Equal values give equal indexes in this column only; nothing else is revealed.
    pub fn blind_index(&self, ring: &KeyRing, value: &[u8]) -> [u8; MAC_LEN] {
        ring.blind_index(&self.lookup_context("blind-index"), value)
    }

    /// The blind index of `value` under every key of the ring, active first. During a
    /// rotation (old and new key in the ring) a row's index is under one of them until
    /// [`crate::rotation::RotationPlan::with_blind_index`] has recomputed it: look rows up
    /// with `WHERE email_bidx IN (?, ?)` over these, then only the first once done.
    pub fn blind_index_candidates(&self, ring: &KeyRing, value: &[u8]) -> Vec<[u8; MAC_LEN]> {
        ring.blind_index_candidates(&self.lookup_context("blind-index"), value)
    }

    fn lookup_context(&self, purpose: &str) -> Context {
        Context::new("field-lookup")
            .with(&self.table)
            .with(&self.column)
            .with(purpose)
    }
}

pub(crate) fn check_identifier(name: &str) -> Result<()> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if first_ok && name.len() <= 63 && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(())
    } else {
        Err(FieldError::InvalidIdentifier(name.to_owned()))
    }
}
