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
                let mut audit = Appender::start_deferred(tx, &chain).await?;
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
                let mut audit = Appender::start_deferred(tx, &chain).await?;
                let Some(row) = tx.lock_secret(&id).await? else {
                    return Err(StoreError::NotFound(id));
                };
                let kept: BTreeSet<u32> = tx
                    .versions_of(&row)
                    .await?
                    .into_iter()
                    .map(|placed| placed.row.version)
                    .collect();
                if let Some(&missing) = wanted.iter().find(|v| !kept.contains(v)) {
                    return Err(StoreError::VersionNotFound {
                        id,
                        version: missing,
                    });
                }
                let mut changed = Vec::new();
                for version in wanted {
                    if tx
                        .change_version(&row, version, change, crate::Timestamp(now))
                        .await?
                    {
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

/// The meta entry holding attributes written for `id` before its first value.
fn pending_name(id: &SecretId) -> String {
    format!("pending_attributes/{}/{}/{}", id.namespace, id.env, id.key)
}

impl Store {
    /// Attributes written for a secret that has no value yet (Vault lets a client write a
    /// secret's metadata first: the External Secrets Operator's PushSecret does), as the
    /// JSON object they were written with; `None` when there are none. Not secret.
    pub async fn pending_attributes(&self, id: &SecretId) -> Result<Option<serde_json::Value>> {
        let id = self.normalize(id)?;
        self.inner
            .backend
            .meta(&pending_name(&id))
            .await?
            .map(|text| {
                serde_json::from_str(&text).map_err(|_| {
                    StoreError::InvalidInput(format!(
                        "the pending attributes of {id} are malformed"
                    ))
                })
            })
            .transpose()
    }

    /// Keeps `attributes` (a JSON object) for `id` until its first value is written, or
    /// removes them (`None`).
    pub async fn set_pending_attributes(
        &self,
        id: &SecretId,
        attributes: Option<&serde_json::Value>,
    ) -> Result<()> {
        let id = self.normalize(id)?;
        let text = attributes.map(ToString::to_string);
        let name = pending_name(&id);
        self.transact(move |tx| Box::pin(async move { tx.set_meta(&name, text.as_deref()).await }))
            .await
    }
}
