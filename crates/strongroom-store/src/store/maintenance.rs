//! Backups: checking that a copy is whole, and that a database is empty before a restore.

use super::{value_context, Store};
use crate::{Result, StoreError};

/// What [`Store::check_values`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValuesCheck {
    /// Stored versions that opened with the current keys.
    pub opened: u64,
}

impl Store {
    /// Opens every stored version (current and kept) with the configured keys and drops
    /// the plaintext at once: nothing is handed out, so nothing is audited. The first
    /// version that does not open is its error (`Integrity`, `KeyVersionUnavailable`).
    pub async fn check_values(&self) -> Result<ValuesCheck> {
        let backend = &self.inner.backend;
        let mut check = ValuesCheck::default();
        let mut position = 0;
        loop {
            let crate::backend::TiePage {
                ties,
                last_position: last,
            } = backend.version_ties(position, 500).await?;
            if ties.is_empty() {
                return Ok(check);
            }
            position = last;
            for tie in ties {
                let crate::backend::KeptValue {
                    value: stored,
                    state,
                } = backend
                    .fetch_version(&tie.id, tie.version)
                    .await?
                    .ok_or_else(|| StoreError::VersionNotFound {
                        id: tie.id.clone(),
                        version: tie.version,
                    })?;
                if state.destroyed {
                    // Erased on purpose: nothing to open.
                    continue;
                }
                drop(
                    self.inner
                        .ring
                        .open(
                            &value_context(&tie.id, &tie.row_id, tie.version),
                            &stored.value,
                        )
                        .map_err(|e| StoreError::opening(&tie.id, e))?,
                );
                check.opened += 1;
            }
        }
    }
}

impl Store {
    /// Every stored secret whose key breaks the key grammar's segment rule
    /// ([`crate::StoreConfig::check_key_segments`]: written before it held), for `doctor`;
    /// each stays readable and can be renamed with `strongroom mv`.
    ///
    /// # Errors
    /// When the database can not be read.
    pub async fn malformed_keys(&self) -> Result<Vec<crate::SecretId>> {
        let backend = &self.inner.backend;
        let mut found: Vec<crate::SecretId> = Vec::new();
        let mut position = 0;
        loop {
            let crate::backend::TiePage {
                ties,
                last_position: last,
            } = backend.version_ties(position, 500).await?;
            if ties.is_empty() {
                return Ok(found);
            }
            position = last;
            for tie in ties {
                if crate::StoreConfig::check_key_segments(&tie.id.key).is_err()
                    && !found.contains(&tie.id)
                {
                    found.push(tie.id);
                }
            }
        }
    }
}

/// Whether `backend` holds nothing a restore could overwrite: no value, no audit event, no
/// token, no recorded key.
pub async fn is_empty(backend: &dyn crate::backend::Backend) -> Result<bool> {
    Ok(backend.kek_versions_in_use().await?.is_empty()
        && backend.recorded_keys().await?.is_empty()
        && backend.tokens().await?.is_empty()
        && backend
            .audit_events(&crate::AuditQuery::default(), 1)
            .await?
            .is_empty())
}
