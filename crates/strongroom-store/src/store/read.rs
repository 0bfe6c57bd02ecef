//! Reads. A read of a value yields a [`PendingRead`]: its plaintext is handed out only by
//! committing it, which writes its audit event first, so no surface can forget the audit.

use secrecy::SecretSlice;
use strongroom_crypto::{secrecy, KeyedHash};

use super::{value_context, Store};
use crate::backend::{AuditRecord, ListFilter, StoredInfo};
use crate::model::{now_ms, Timestamp, MASK};
use crate::{
    Action, ListQuery, Page, Result, Secret, SecretId, SecretInfo, State, StoreError, VersionInfo,
};

/// A value found by a read, not yet handed out. Its identity, version and attributes are
/// open; the plaintext comes only from [`PendingRead::commit`] (or
/// [`Store::commit_reads`] for a batch), which records the read in the audit log first.
///
/// ```compile_fail
/// # async fn demo(store: strongroom_store::Store, id: strongroom_store::SecretId) {
/// let read = store.get(&id).await.unwrap();
/// let plaintext = read.value; // private: only `commit` hands the value out
/// # }
/// ```
#[must_use = "a read hands out nothing until it is committed (which audits it)"]
pub struct PendingRead {
    store: Store,
    pub(super) secret: Secret,
}

impl core::fmt::Debug for PendingRead {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PendingRead")
            .field("id", &self.secret.id)
            .field("version", &self.secret.version)
            .finish_non_exhaustive()
    }
}

impl PendingRead {
    /// The identity that serves the read (after fallback: `id().env` is the serving env).
    pub fn id(&self) -> &SecretId {
        &self.secret.id
    }

    /// The env asked for.
    pub fn requested_env(&self) -> &str {
        &self.secret.requested_env
    }

    /// The version read.
    pub fn version(&self) -> u32 {
        self.secret.version
    }

    /// The secret's attributes (masked; no value).
    pub fn info(&self) -> &SecretInfo {
        &self.secret.info
    }

    /// Records a `read` event with the store handle's actor, then hands out the secret.
    /// If the event can not be written, nothing is handed out.
    pub async fn commit(self) -> Result<Secret> {
        let store = self.store.clone();
        let mut secrets = store.commit_reads(vec![self], Action::Read).await?;
        secrets
            .pop()
            .ok_or_else(|| StoreError::Defect("a read vanished in its commit"))
    }

    /// The secret without an audit event, for the store's own uses that hand nothing out.
    pub(crate) fn into_unaudited(self) -> Secret {
        self.secret
    }
}

impl Store {
    /// Records one `action` event (a kind of plaintext use: [`Action::Read`],
    /// [`Action::GatewayRead`]) per read, with this handle's actor, in one transaction,
    /// then hands out the secrets. If the events can not be written, nothing is handed out.
    pub async fn commit_reads(
        &self,
        reads: Vec<PendingRead>,
        action: Action,
    ) -> Result<Vec<Secret>> {
        if !action.is_plaintext_use() {
            return Err(StoreError::InvalidInput(format!(
                "{} is not a kind of read",
                action.as_str()
            )));
        }
        let time = now_ms();
        let records: Vec<AuditRecord> = reads
            .iter()
            .map(|read| AuditRecord {
                time: Timestamp(time),
                actor: self.actor.to_string(),
                action,
                id: read.secret.id.clone(),
                version: Some(read.secret.version),
                kek_version: Some(read.secret.info.kek_version),
            })
            .collect();
        if !records.is_empty() {
            // Group commit: durable before anything is handed out, one flush for every
            // read waiting at the same time.
            self.append_read_events(records).await?;
        }
        Ok(reads.into_iter().map(|read| read.secret).collect())
    }

    /// Reads a secret, falling back along the env's chain; the result's `id().env` says
    /// which env served. An expired value is [`StoreError::Expired`], not a fallback.
    pub async fn get(&self, id: &SecretId) -> Result<PendingRead> {
        self.get_within(id, |_| true).await
    }

    /// Like [`Store::get`], but the fallback chain only visits envs for which `allowed`
    /// is true (a scoped API token reads only what it covers). When no allowed env holds
    /// the secret, the answer is `NotFound`: nothing is said about envs outside the scope.
    pub async fn get_within(
        &self,
        id: &SecretId,
        allowed: impl Fn(&str) -> bool,
    ) -> Result<PendingRead> {
        let id = self.normalize(id)?;
        // A chain starts with the env asked for, the common case: read it before the chain
        // is worked out.
        if allowed(&id.env) {
            if let Some(secret) = self.open_current(&id, &id.env).await? {
                return Ok(self.pending(secret));
            }
        }
        for env in self
            .chain(&id)
            .into_iter()
            .skip(1)
            .filter(|env| allowed(env))
        {
            let candidate = SecretId::new(&id.namespace, env, &id.key);
            if let Some(secret) = self.open_current(&candidate, &id.env).await? {
                return Ok(self.pending(secret));
            }
        }
        Err(StoreError::NotFound(id))
    }

    /// Reads exactly `id`, without fallback.
    pub async fn get_exact(&self, id: &SecretId) -> Result<PendingRead> {
        let id = self.normalize(id)?;
        self.open_current(&id, &id.env)
            .await?
            .map(|secret| self.pending(secret))
            .ok_or(StoreError::NotFound(id))
    }

    /// The value of `id` (with fallback, the read audited), or `default` when there is
    /// none. Other errors (expired, integrity, ...) are still reported.
    pub async fn get_or(&self, id: &SecretId, default: &[u8]) -> Result<SecretSlice<u8>> {
        match self.get(id).await {
            Ok(read) => Ok(read.commit().await?.value),
            Err(StoreError::NotFound(_)) => Ok(SecretSlice::from(default.to_vec())),
            Err(e) => Err(e),
        }
    }

    /// A kept version of exactly `id` (no fallback), as a read to commit.
    pub async fn get_version(&self, id: &SecretId, version: u32) -> Result<PendingRead> {
        let id = self.normalize(id)?;
        let Some(current) = self.open_current(&id, &id.env).await? else {
            return Err(StoreError::NotFound(id));
        };
        let value = self.open_version_unaudited(&id, version).await?;
        Ok(self.pending(Secret {
            value,
            version,
            ..current
        }))
    }

    fn pending(&self, secret: Secret) -> PendingRead {
        PendingRead {
            store: self.clone(),
            secret,
        }
    }

    /// The plaintext of a kept version, for the store's own use (a rollback re-seals it;
    /// nothing is handed out).
    pub(crate) async fn open_version_unaudited(
        &self,
        id: &SecretId,
        version: u32,
    ) -> Result<SecretSlice<u8>> {
        let Some(current) = self.inner.backend.fetch(id).await? else {
            return Err(StoreError::NotFound(id.clone()));
        };
        let Some(crate::backend::KeptValue {
            value: stored,
            state,
        }) = self.inner.backend.fetch_version(id, version).await?
        else {
            return Err(StoreError::VersionNotFound {
                id: id.clone(),
                version,
            });
        };
        if !state.readable() {
            return Err(StoreError::VersionUnavailable {
                id: id.clone(),
                version,
                destroyed: state.destroyed,
            });
        }
        self.inner
            .ring
            .open(
                &value_context(id, &current.info.row_id, version),
                &stored.value,
            )
            .map_err(|e| StoreError::opening(id, e))
    }

    /// Whether an older kept version of `id` holds exactly `value` (compared inside the
    /// store; nothing is handed out, so nothing is audited).
    pub(crate) async fn held_earlier(&self, id: &SecretId, value: &[u8]) -> Result<bool> {
        for version in self.history(id).await? {
            if version.current || version.deleted.is_some() || version.destroyed {
                continue;
            }
            let old = self.open_version_unaudited(id, version.version).await?;
            if bool::from(subtle::ConstantTimeEq::ct_eq(
                secrecy::ExposeSecret::expose_secret(&old),
                value,
            )) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub(super) async fn open_current(
        &self,
        id: &SecretId,
        requested_env: &str,
    ) -> Result<Option<Secret>> {
        let Some(stored) = self.inner.backend.fetch(id).await? else {
            return Ok(None);
        };
        let now = now_ms();
        // The same order as a listed state (`info_of`): destroyed, deleted, then expired.
        if !stored.info.state.readable() {
            return Err(StoreError::VersionUnavailable {
                id: id.clone(),
                version: stored.info.version,
                destroyed: stored.info.state.destroyed,
            });
        }
        if let Some(at) = stored.info.expires_at.filter(|at| at.unix_ms() <= now) {
            return Err(StoreError::Expired {
                id: id.clone(),
                expired_at: at.to_string(),
            });
        }
        let context = value_context(id, &stored.info.row_id, stored.info.version);
        let value = self
            .inner
            .ring
            .open(&context, &stored.value.value)
            .map_err(|e| StoreError::opening(id, e))?;
        Ok(Some(Secret {
            id: id.clone(),
            requested_env: requested_env.to_owned(),
            value,
            version: stored.info.version,
            info: info_of(stored.info, now),
        }))
    }

    /// Whether a readable (unexpired) value exists for `id`, after fallback. Does not
    /// decrypt.
    pub async fn has(&self, id: &SecretId) -> Result<bool> {
        let id = self.normalize(id)?;
        let now = now_ms();
        for env in self.chain(&id) {
            let candidate = SecretId::new(&id.namespace, env, &id.key);
            if let Some(stored) = self.inner.backend.fetch(&candidate).await? {
                return Ok(stored.info.expires_at.is_none_or(|at| at.unix_ms() > now));
            }
        }
        Ok(false)
    }

    /// Whether a row exists for exactly `id` (expired or not, no fallback, no decryption).
    pub async fn has_row(&self, id: &SecretId) -> Result<bool> {
        let id = self.normalize(id)?;
        Ok(self.inner.backend.fetch(&id).await?.is_some())
    }

    /// Every secret `env` sees, after fallback: the keys present in any env of its chain
    /// (only those starting with `prefix`, if given), each read with [`Store::get`] so the
    /// nearest env wins. Sorted by key. A key whose serving secret is expired, deleted or
    /// destroyed is [`EnvView::left_out`], not an error: one such secret does not stop the
    /// env (the caller names them, or refuses when asked to be strict). Commit the reads
    /// together with [`Store::commit_reads`].
    pub async fn resolve_env(
        &self,
        namespace: Option<&str>,
        env: Option<&str>,
        prefix: Option<&str>,
    ) -> Result<EnvView> {
        let probe = self.secret_id(namespace, env, "_")?;
        let keys = self
            .keys_in_chain(&probe.namespace, &self.chain(&probe), prefix)
            .await?;
        let mut view = EnvView {
            reads: Vec::with_capacity(keys.len()),
            left_out: Vec::new(),
        };
        for key in keys {
            match self
                .get(&SecretId::new(&probe.namespace, &probe.env, key))
                .await
            {
                Ok(read) => view.reads.push(read),
                Err(e) => view.left_out.push(LeftOut::of(e)?),
            }
        }
        Ok(view)
    }

    /// The keys present in any env of `chain` (those starting with `prefix`, if given).
    pub(super) async fn keys_in_chain(
        &self,
        namespace: &str,
        chain: &[String],
        prefix: Option<&str>,
    ) -> Result<std::collections::BTreeSet<String>> {
        let mut keys = std::collections::BTreeSet::new();
        for chain_env in chain {
            let mut cursor = None;
            loop {
                let page = self
                    .list(ListQuery {
                        namespace: Some(namespace.to_owned()),
                        env: Some(chain_env.clone()),
                        prefix: prefix.map(str::to_owned),
                        limit: Some(1000),
                        cursor,
                        ..ListQuery::default()
                    })
                    .await?;
                keys.extend(page.items.into_iter().map(|i| i.key));
                cursor = page.next_cursor;
                if cursor.is_none() {
                    break;
                }
            }
        }
        Ok(keys)
    }

    /// A page of secrets, masked, ordered by env then key.
    pub async fn list(&self, query: ListQuery) -> Result<Page<SecretInfo>> {
        let namespace = query.namespace.unwrap_or_else(|| "default".into());
        self.inner.config.check_namespace(&namespace)?;
        if let Some(env) = &query.env {
            self.inner.config.check_env(env)?;
        }
        let after = match query.cursor.as_deref() {
            Some(cursor) => Some(
                cursor
                    .split_once('/')
                    .map(|(env, key)| crate::backend::ListCursor {
                        env: env.to_owned(),
                        key: key.to_owned(),
                    })
                    .ok_or_else(|| StoreError::InvalidInput("malformed list cursor".into()))?,
            ),
            None => None,
        };
        let limit = query.limit.unwrap_or(100).clamp(1, 1000);
        let now = now_ms();
        let filter = ListFilter {
            namespace,
            env: query.env,
            prefix: query.prefix,
            state: query.state,
            now: Timestamp(now),
            limit,
            after,
            offset: query.offset.unwrap_or(0),
        };
        let crate::backend::ListPage { rows, total } = self.inner.backend.list(&filter).await?;
        let next_cursor = (rows.len() == limit)
            .then(|| rows.last().map(|r| format!("{}/{}", r.id.env, r.id.key)))
            .flatten();
        Ok(Page {
            items: rows.into_iter().map(|r| info_of(r, now)).collect(),
            total,
            next_cursor,
        })
    }

    /// A secret's attributes (never its value), or `None` when that exact identity holds
    /// none: no fallback, no audit event (it reveals what a listing does).
    pub async fn info(&self, id: &SecretId) -> Result<Option<SecretInfo>> {
        let id = self.normalize(id)?;
        let now = now_ms();
        Ok(self
            .inner
            .backend
            .fetch(&id)
            .await?
            .map(|stored| info_of(stored.info, now)))
    }

    /// The kept versions of a secret, newest first.
    pub async fn history(&self, id: &SecretId) -> Result<Vec<VersionInfo>> {
        let id = self.normalize(id)?;
        let crate::backend::History { current, versions } = self
            .inner
            .backend
            .history(&id)
            .await?
            .ok_or(StoreError::NotFound(id))?;
        Ok(versions
            .into_iter()
            .map(|v| VersionInfo {
                version: v.version,
                kek_version: v.kek_version,
                created: v.created,
                actor: v.actor,
                current: v.version == current,
                deleted: v.state.deleted_at,
                destroyed: v.state.destroyed,
            })
            .collect())
    }

    /// Whether `candidate` equals the value of `id` (with fallback), by keyed hash in
    /// constant time, without decrypting.
    pub async fn verify(&self, id: &SecretId, candidate: &[u8]) -> Result<bool> {
        let id = self.normalize(id)?;
        for env in self.chain(&id) {
            let candidate_id = SecretId::new(&id.namespace, env, &id.key);
            let Some(stored) = self.inner.backend.fetch(&candidate_id).await? else {
                continue;
            };
            if let Some(at) = stored.info.expires_at.filter(|at| at.unix_ms() <= now_ms()) {
                return Err(StoreError::Expired {
                    id: candidate_id,
                    expired_at: at.to_string(),
                });
            }
            let hash = KeyedHash::from_bytes(&stored.value.value_hash)
                .map_err(|e| StoreError::opening(&candidate_id, e))?;
            let context = value_context(&candidate_id, &stored.info.row_id, stored.info.version);
            return self
                .inner
                .ring
                .verify_keyed_hash(&context, candidate, &hash)
                .map_err(|e| StoreError::opening(&candidate_id, e));
        }
        Err(StoreError::NotFound(id))
    }
}

/// What an env serves now ([`Store::resolve_env`]): the reads, and the keys left out.
#[must_use = "the reads must be committed, and the secrets left out named"]
pub struct EnvView {
    /// One read per key the env serves, sorted by key.
    pub reads: Vec<PendingRead>,
    /// The keys whose serving secret can not be read (expired, deleted, destroyed).
    pub left_out: Vec<LeftOut>,
}

/// A secret an env view, a lock or an export leaves out: the identity that would serve
/// it, and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// The serving identity (the env that holds the secret).
    pub id: SecretId,
    /// Why it is left out: `Expired`, `Deleted` or `Destroyed`.
    pub state: State,
}

impl LeftOut {
    /// The secret a read error names, when the error is one of the states that leave a
    /// secret out; any other error is returned as it is.
    pub fn of(error: StoreError) -> Result<Self> {
        match error {
            StoreError::Expired { id, .. } => Ok(Self {
                id,
                state: State::Expired,
            }),
            StoreError::VersionUnavailable { id, destroyed, .. } => Ok(Self {
                id,
                state: if destroyed {
                    State::Destroyed
                } else {
                    State::Deleted
                },
            }),
            other => Err(other),
        }
    }
}

impl core::fmt::Display for LeftOut {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.id, self.state.as_str())
    }
}

/// The listed form of a stored row, judged at `now`.
pub(super) fn info_of(row: StoredInfo, now: i64) -> SecretInfo {
    SecretInfo {
        id: row.row_id,
        namespace: row.id.namespace,
        env: row.id.env,
        key: row.id.key,
        masked_value: MASK.to_owned(),
        description: row.description,
        metadata: row.metadata.and_then(|m| serde_json::from_str(&m).ok()),
        kind: row.kind,
        version: row.version,
        kek_version: row.kek_version,
        expires_at: row.expires_at,
        state: if row.state.destroyed {
            State::Destroyed
        } else if row.state.deleted_at.is_some() {
            State::Deleted
        } else if row.expires_at.is_some_and(|at| at.unix_ms() <= now) {
            State::Expired
        } else {
            State::Active
        },
        created: row.created,
        updated: row.updated,
    }
}
