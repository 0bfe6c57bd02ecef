//! Single versions: soft delete, undelete and destroy (`strongroom rm --version`,
//! `undelete`, `destroy`; Vault's `delete`, `undelete`, `destroy`). A soft-deleted version
//! stays sealed and no read returns it until it is undeleted; a destroyed one has its
//! sealed bytes and keyed hash erased for good. Each changed version is one audit event.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::write::event;
use super::Store;
use crate::audit::Appender;
use crate::backend::{SecretSettings, VersionChange};
use crate::model::now_ms;
use crate::{Action, Result, SecretId, StoreError};

impl Store {
    /// Soft-deletes `versions` of `id`; returns the versions that changed (already
    /// deleted or destroyed ones are left alone). A version that is not kept is
    /// [`StoreError::VersionNotFound`] and nothing changes.
    pub async fn delete_versions(&self, id: &SecretId, versions: &[u32]) -> Result<Vec<u32>> {
        self.change_versions(id, versions, VersionChange::Delete)
            .await
    }

    /// Makes soft-deleted `versions` of `id` readable again; returns those that changed.
    pub async fn undelete_versions(&self, id: &SecretId, versions: &[u32]) -> Result<Vec<u32>> {
        self.change_versions(id, versions, VersionChange::Undelete)
            .await
    }

    /// Erases the sealed bytes of `versions` of `id` for good; returns those that changed.
    pub async fn destroy_versions(&self, id: &SecretId, versions: &[u32]) -> Result<Vec<u32>> {
        self.change_versions(id, versions, VersionChange::Destroy)
            .await
    }

    /// The secret's own settings (`max_versions`, `cas_required`); defaults when it has
    /// none.
    pub async fn settings(&self, id: &SecretId) -> Result<SecretSettings> {
        let id = self.normalize(id)?;
        self.inner
            .backend
            .settings(&id)
            .await?
            .ok_or(StoreError::NotFound(id))
    }

    /// Replaces the secret's own settings: `max_versions` (`None` or `Some(0)`: the
    /// server's history depth; applied at the next write, which trims older versions) and
    /// `cas_required` (every later value write must name the version it expects).
    /// Audited as a metadata update.
    pub async fn set_settings(&self, id: &SecretId, settings: SecretSettings) -> Result<()> {
        let id = self.normalize(id)?;
        let settings = SecretSettings {
            max_versions: settings.max_versions.filter(|&m| m > 0),
            ..settings
        };
        let (chain, actor, now) = (
            Arc::clone(&self.inner.chain),
            self.actor.to_string(),
            now_ms(),
        );
        self.transact(move |tx| {
            Box::pin(async move {
                let mut audit = Appender::start(tx, &chain).await?;
                let Some(row) = tx.lock_secret(&id).await? else {
                    return Err(StoreError::NotFound(id));
                };
                tx.set_settings(&row, settings).await?;
                audit
                    .append(
                        tx,
                        &event(&actor, Action::MetadataUpdate, &id, row.version, now),
                    )
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn change_versions(
        &self,
        id: &SecretId,
        versions: &[u32],
        change: VersionChange,
    ) -> Result<Vec<u32>> {
        let id = self.normalize(id)?;
        if versions.is_empty() {
            return Err(StoreError::InvalidInput("no versions given".into()));
        }
        let wanted: BTreeSet<u32> = versions.iter().copied().collect();
        let action = match change {
            VersionChange::Delete => Action::VersionDelete,
            VersionChange::Undelete => Action::VersionUndelete,
            VersionChange::Destroy => Action::VersionDestroy,
        };
        let (chain, actor, now) = (
            Arc::clone(&self.inner.chain),
            self.actor.to_string(),
            now_ms(),
        );
        self.transact(move |tx| {
            Box::pin(async move {
                let mut audit = Appender::start(tx, &chain).await?;
                let Some(row) = tx.lock_secret(&id).await? else {
                    return Err(StoreError::NotFound(id));
                };
                let kept: BTreeSet<u32> = tx
                    .versions_of(&row)
                    .await?
                    .into_iter()
                    .map(|(_, v)| v.version)
                    .collect();
                if let Some(&missing) = wanted.iter().find(|v| !kept.contains(v)) {
                    return Err(StoreError::VersionNotFound {
                        id,
                        version: missing,
                    });
                }
                let mut changed = Vec::new();
                for version in wanted {
                    if tx.change_version(&row, version, change, now).await? {
                        audit
                            .append(tx, &event(&actor, action, &id, version, now))
                            .await?;
                        changed.push(version);
                    }
                }
                Ok(changed)
            })
        })
        .await
    }
}
