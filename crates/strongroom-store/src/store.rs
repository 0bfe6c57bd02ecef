//! The store: policy and cryptography over a [`Backend`].

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretSlice, SecretString};
use strongroom_crypto::{secrecy, KeyRing, KeyedHash, PasswordParams};

use crate::audit::{self, AuditVerification, Checkpoint, RingChain};
use crate::backend::{
    AuditRecord, Backend, Change, LegacyVersion, ListFilter, MetaRecord, RotationUpdate, SealSlot,
    StoredInfo, StoredValue, WriteRecord,
};
use crate::model::{format_time, now_ms, Timestamp, MASK};
use crate::{
    Access, Action, AuditEvent, AuditQuery, Expiry, ListQuery, MetaUpdate, Page, Result,
    RotationProgress, RotationStatus, Secret, SecretId, SecretInfo, SetRequest, State, StoreConfig,
    StoreError, VersionInfo, WriteOutcome,
};

/// Where the store's keys come from.
pub enum KeySource {
    /// A key ring (`STRONGROOM_MASTER_KEY` as version 1, or `STRONGROOM_KEYS`).
    Ring(KeyRing),
    /// A development password, turned into KEK version 1 with Argon2id; the salt and
    /// parameters are stored in the database on first use.
    Password(SecretString),
}

impl core::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Ring(ring) => f.debug_tuple("Ring").field(ring).finish(),
            Self::Password(_) => f.write_str("Password([REDACTED])"),
        }
    }
}

/// The context a stored value (and its keyed hash) is bound to: the secret's identity,
/// its random row id (a delete and re-create changes it) and the version number.
fn value_context(id: &SecretId, row_id: &str, version: u32) -> strongroom_crypto::Context {
    strongroom_crypto::Context::secret_version(&id.namespace, &id.env, &id.key, row_id, version)
}

/// Options of a key rotation.
#[derive(Debug, Clone, Copy)]
pub struct RotateOptions {
    /// Only re-wrap values on this KEK version.
    pub from_version: Option<u32>,
    /// Values per transaction.
    pub batch_size: usize,
    /// Stop after this many batches; the saved cursor lets the next run continue.
    pub max_batches: Option<usize>,
}

impl Default for RotateOptions {
    fn default() -> Self {
        Self {
            from_version: None,
            batch_size: 500,
            max_batches: None,
        }
    }
}

struct Inner {
    backend: Arc<dyn Backend>,
    ring: Arc<KeyRing>,
    config: StoreConfig,
    writer_key: (u32, String),
    chain: Arc<RingChain>,
}

/// A secrets store. Cheap to clone; clones share the backend and keys.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    actor: Arc<str>,
}

impl core::fmt::Debug for Store {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend.name())
            .field("ring", &self.inner.ring)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

const PASSWORD_PARAMS: &str = "password_params";

impl Store {
    /// Opens a store over `backend`. Checks the key ring against the database before
    /// anything is written: a KEK whose fingerprint differs from the one recorded for its
    /// version is [`StoreError::WrongKey`]; KEK versions used by stored values but absent
    /// from the ring are [`StoreError::MissingKeyVersions`].
    pub async fn open(
        backend: Arc<dyn Backend>,
        keys: KeySource,
        config: StoreConfig,
    ) -> Result<Self> {
        config.check_env(&config.default_env)?;
        let ring = match keys {
            KeySource::Ring(ring) => ring,
            KeySource::Password(password) => {
                let fresh = PasswordParams::generate()?.encode();
                let stored = backend.init_meta(PASSWORD_PARAMS, &fresh).await?;
                let key = PasswordParams::decode(&stored)?.derive_key(&password)?;
                KeyRing::single(&key)
            }
        };
        let recorded = backend.recorded_keys().await?;
        for kek in ring.keks() {
            let configured = kek.fingerprint().to_string();
            if let Some((_, fp)) = recorded
                .iter()
                .find(|(v, fp)| *v == kek.version() && *fp != configured)
            {
                return Err(StoreError::WrongKey {
                    version: kek.version(),
                    configured,
                    recorded: fp.clone(),
                });
            }
        }
        let missing: Vec<(u32, Option<String>)> = backend
            .kek_versions_in_use()
            .await?
            .into_iter()
            .filter(|v| ring.get(*v).is_err())
            .map(|v| {
                (
                    v,
                    recorded
                        .iter()
                        .find(|(rv, _)| *rv == v)
                        .map(|(_, fp)| fp.clone()),
                )
            })
            .collect();
        if !missing.is_empty() {
            return Err(StoreError::MissingKeyVersions { versions: missing });
        }
        let writer_key = (
            ring.active().version(),
            ring.active().fingerprint().to_string(),
        );
        let ring = Arc::new(ring);
        let chain = Arc::new(RingChain(Arc::clone(&ring)));
        backend.attach_audit_chain(chain.clone());
        let store = Self {
            inner: Arc::new(Inner {
                backend,
                ring,
                config,
                writer_key,
                chain,
            }),
            actor: Arc::from("library"),
        };
        store.upgrade_legacy().await?;
        Ok(store)
    }

    /// Finishes the schema-4 upgrade of an older database, in one transaction: its audit
    /// events are appended again to the keyed chain, and every value is re-sealed under
    /// its version-bound context with a `reseal` event. Nothing happens when nothing is
    /// pending; an interrupted upgrade is rolled back and runs again at the next open.
    async fn upgrade_legacy(&self) -> Result<u64> {
        let ring = Arc::clone(&self.inner.ring);
        let reseal = move |legacy: &LegacyVersion| -> Result<StoredValue> {
            let old = legacy.id.context();
            let plaintext = ring
                .open(&old, &legacy.value.value)
                .map_err(|e| StoreError::opening(&legacy.id, e))?;
            let context = value_context(&legacy.id, &legacy.row_id, legacy.version);
            Ok(StoredValue {
                value: ring.seal(&context, plaintext.expose_secret())?,
                value_hash: ring
                    .keyed_hash(&context, plaintext.expose_secret())
                    .to_bytes(),
                kek_version: ring.active().version(),
            })
        };
        self.inner
            .backend
            .upgrade_legacy(
                &reseal,
                self.inner.writer_key.clone(),
                &self.actor,
                now_ms(),
            )
            .await
    }

    /// The same store, recording `actor` in audit events and version history.
    #[must_use]
    pub fn with_actor(&self, actor: &str) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            actor: Arc::from(actor),
        }
    }

    /// The store's policy.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// The key ring (fingerprints and versions; no key material is exposed).
    pub fn key_ring(&self) -> &KeyRing {
        &self.inner.ring
    }

    /// The backend's name (`sqlite`, ...).
    pub fn backend_name(&self) -> &'static str {
        self.inner.backend.name()
    }

    /// An identity with defaults applied: namespace `default`, the default env, and with
    /// isolation off always the default env. Names are checked.
    pub fn secret_id(
        &self,
        namespace: Option<&str>,
        env: Option<&str>,
        key: &str,
    ) -> Result<SecretId> {
        let config = &self.inner.config;
        let namespace = namespace.unwrap_or("default");
        let env = if config.env_isolation {
            env.unwrap_or(&config.default_env)
        } else {
            &config.default_env
        };
        config.check_namespace(namespace)?;
        config.check_env(env)?;
        config.check_key(key)?;
        Ok(SecretId::new(namespace, env, key))
    }

    fn normalize(&self, id: &SecretId) -> Result<SecretId> {
        self.secret_id(Some(&id.namespace), Some(&id.env), &id.key)
    }

    /// Creates or replaces a secret's value (a new version). Omitted attributes keep their
    /// current values. Nothing is written if any check fails.
    pub async fn set(&self, id: &SecretId, request: SetRequest) -> Result<WriteOutcome> {
        let id = self.normalize(id)?;
        self.write_value(&id, request, false).await
    }

    /// Sets several secrets in one transaction: all land, or (on any error) none does.
    pub async fn set_many(&self, items: Vec<(SecretId, SetRequest)>) -> Result<Vec<WriteOutcome>> {
        let records = items
            .into_iter()
            .map(|(id, request)| self.write_record(&self.normalize(&id)?, request, false))
            .collect::<Result<Vec<_>>>()?;
        self.inner.backend.write_many(records).await
    }

    async fn write_value(
        &self,
        id: &SecretId,
        request: SetRequest,
        rollback: bool,
    ) -> Result<WriteOutcome> {
        let record = self.write_record(id, request, rollback)?;
        self.inner.backend.write(record).await
    }

    /// Checks a write and seals its value; nothing is written yet.
    fn write_record(
        &self,
        id: &SecretId,
        request: SetRequest,
        rollback: bool,
    ) -> Result<WriteRecord> {
        let limits = &self.inner.config.limits;
        let value = request.value.expose_secret();
        if value.len() > limits.max_value_size {
            return Err(StoreError::ValueTooLarge {
                size: value.len(),
                max: limits.max_value_size,
            });
        }
        let now = now_ms();
        let ring = Arc::clone(&self.inner.ring);
        let sealed_id = id.clone();
        let plaintext = request.value;
        let seal = move |slot: SealSlot<'_>| -> Result<StoredValue> {
            let context = value_context(&sealed_id, slot.row_id, slot.version);
            let value = plaintext.expose_secret();
            Ok(StoredValue {
                value: ring.seal(&context, value)?,
                value_hash: ring.keyed_hash(&context, value).to_bytes(),
                kek_version: ring.active().version(),
            })
        };
        Ok(WriteRecord {
            id: id.clone(),
            description: self.check_description(request.description)?,
            metadata: self.check_metadata(request.metadata)?,
            kind: self.check_kind(request.kind)?,
            expires_at: expiry_change(request.expiry, now)?,
            seal: Arc::new(seal),
            now,
            actor: self.actor.to_string(),
            history_depth: self.inner.config.history_depth,
            rollback,
            new_row_id: new_row_id()?,
            writer_key: self.inner.writer_key.clone(),
        })
    }

    fn check_description(&self, description: Option<String>) -> Result<Change<String>> {
        let max = self.inner.config.limits.max_description_len;
        match description {
            Some(d) if d.len() > max => Err(StoreError::InvalidInput(format!(
                "description is {} bytes; the maximum is {max}",
                d.len()
            ))),
            Some(d) => Ok(Change::Set(d)),
            None => Ok(Change::Keep),
        }
    }

    fn check_metadata(
        &self,
        metadata: Option<serde_json::Value>,
    ) -> Result<Change<Option<String>>> {
        let Some(metadata) = metadata else {
            return Ok(Change::Keep);
        };
        if metadata.is_null() {
            return Ok(Change::Set(None));
        }
        if !metadata.is_object() {
            return Err(StoreError::InvalidInput(
                "metadata must be a JSON object".into(),
            ));
        }
        let text = metadata.to_string();
        let max = self.inner.config.limits.max_metadata_size;
        if text.len() > max {
            return Err(StoreError::InvalidInput(format!(
                "metadata is {} bytes; the maximum is {max}",
                text.len()
            )));
        }
        Ok(Change::Set(Some(text)))
    }

    fn check_kind(&self, kind: Option<String>) -> Result<Change<String>> {
        match kind {
            None => Ok(Change::Keep),
            Some(kind) => {
                self.inner.config.check_namespace(&kind).map_err(|_| {
                    StoreError::InvalidInput("kind must be 1-64 characters of a-z 0-9 _ -".into())
                })?;
                Ok(Change::Set(kind))
            }
        }
    }

    /// Reads a secret, falling back along the env's chain; the result's `id.env` says which
    /// env served. An expired value is [`StoreError::Expired`], not a fallback.
    pub async fn get(&self, id: &SecretId) -> Result<Secret> {
        self.get_within(id, |_| true).await
    }

    /// Like [`Store::get`], but the fallback chain only visits envs for which `allowed`
    /// is true (a scoped API token reads only what it covers). When no allowed env holds
    /// the secret, the answer is `NotFound`: nothing is said about envs outside the scope.
    pub async fn get_within(
        &self,
        id: &SecretId,
        allowed: impl Fn(&str) -> bool,
    ) -> Result<Secret> {
        let id = self.normalize(id)?;
        for env in self.chain(&id).into_iter().filter(|env| allowed(env)) {
            let candidate = SecretId::new(&id.namespace, env, &id.key);
            if let Some(secret) = self.open_current(&candidate, &id.env).await? {
                return Ok(secret);
            }
        }
        Err(StoreError::NotFound(id))
    }

    /// The envs a read of `id` visits, in order.
    fn chain(&self, id: &SecretId) -> Vec<String> {
        if self.inner.config.env_isolation {
            self.inner.config.chain(&id.env)
        } else {
            vec![id.env.clone()]
        }
    }

    /// Reads exactly `id`, without fallback.
    pub async fn get_exact(&self, id: &SecretId) -> Result<Secret> {
        let id = self.normalize(id)?;
        self.open_current(&id, &id.env)
            .await?
            .ok_or(StoreError::NotFound(id))
    }

    async fn open_current(&self, id: &SecretId, requested_env: &str) -> Result<Option<Secret>> {
        let Some(stored) = self.inner.backend.fetch(id).await? else {
            return Ok(None);
        };
        let now = now_ms();
        if let Some(at) = stored.info.expires_at.filter(|at| *at <= now) {
            return Err(StoreError::Expired {
                id: id.clone(),
                expired_at: format_time(at),
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

    /// The value of `id` (with fallback), or `default` when there is none. Other errors
    /// (expired, integrity, ...) are still reported.
    pub async fn get_or(&self, id: &SecretId, default: &[u8]) -> Result<SecretSlice<u8>> {
        match self.get(id).await {
            Ok(secret) => Ok(secret.value),
            Err(StoreError::NotFound(_)) => Ok(SecretSlice::from(default.to_vec())),
            Err(e) => Err(e),
        }
    }

    /// Whether a readable (unexpired) value exists for `id`, after fallback. Does not
    /// decrypt.
    pub async fn has(&self, id: &SecretId) -> Result<bool> {
        let id = self.normalize(id)?;
        let now = now_ms();
        for env in self.chain(&id) {
            let candidate = SecretId::new(&id.namespace, env, &id.key);
            if let Some(stored) = self.inner.backend.fetch(&candidate).await? {
                return Ok(stored.info.expires_at.is_none_or(|at| at > now));
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
    /// nearest env wins. Sorted by key. Nothing is audited here; callers that hand the
    /// values out record the reads.
    pub async fn resolve_env(
        &self,
        namespace: Option<&str>,
        env: Option<&str>,
        prefix: Option<&str>,
    ) -> Result<Vec<Secret>> {
        let probe = self.secret_id(namespace, env, "_")?;
        let mut keys = std::collections::BTreeSet::new();
        for chain_env in self.chain(&probe) {
            let mut cursor = None;
            loop {
                let page = self
                    .list(ListQuery {
                        namespace: Some(probe.namespace.clone()),
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
        let mut secrets = Vec::with_capacity(keys.len());
        for key in keys {
            secrets.push(
                self.get(&SecretId::new(&probe.namespace, &probe.env, key))
                    .await?,
            );
        }
        Ok(secrets)
    }

    /// Changes description, metadata, kind or expiry without touching the value.
    pub async fn update_meta(&self, id: &SecretId, update: MetaUpdate) -> Result<SecretInfo> {
        let id = self.normalize(id)?;
        let now = now_ms();
        let record = MetaRecord {
            id: id.clone(),
            description: self.check_description(update.description)?,
            metadata: self.check_metadata(update.metadata)?,
            kind: self.check_kind(update.kind)?,
            expires_at: expiry_change(update.expiry, now)?,
            now,
            actor: self.actor.to_string(),
        };
        let info = self.inner.backend.update_meta(record).await?;
        info.map(|i| info_of(i, now))
            .ok_or(StoreError::NotFound(id))
    }

    /// Deletes a secret and all its versions.
    pub async fn delete(&self, id: &SecretId) -> Result<()> {
        let id = self.normalize(id)?;
        if self
            .inner
            .backend
            .delete(&id, &self.actor, now_ms())
            .await?
        {
            Ok(())
        } else {
            Err(StoreError::NotFound(id))
        }
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
                    .map(|(e, k)| (e.to_owned(), k.to_owned()))
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
            now,
            limit,
            after,
            offset: query.offset.unwrap_or(0),
        };
        let (rows, total) = self.inner.backend.list(&filter).await?;
        let next_cursor = (rows.len() == limit)
            .then(|| rows.last().map(|r| format!("{}/{}", r.id.env, r.id.key)))
            .flatten();
        Ok(Page {
            items: rows.into_iter().map(|r| info_of(r, now)).collect(),
            total,
            next_cursor,
        })
    }

    /// The kept versions of a secret, newest first.
    pub async fn history(&self, id: &SecretId) -> Result<Vec<VersionInfo>> {
        let id = self.normalize(id)?;
        let (current, versions) = self
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
                created: Timestamp(v.created),
                actor: v.actor,
                current: v.version == current,
            })
            .collect())
    }

    /// The plaintext of a kept version of exactly `id` (no fallback).
    pub async fn get_version(&self, id: &SecretId, version: u32) -> Result<SecretSlice<u8>> {
        let id = self.normalize(id)?;
        let Some(current) = self.inner.backend.fetch(&id).await? else {
            return Err(StoreError::NotFound(id));
        };
        let Some(stored) = self.inner.backend.fetch_version(&id, version).await? else {
            return Err(StoreError::VersionNotFound { id, version });
        };
        self.inner
            .ring
            .open(
                &value_context(&id, &current.info.row_id, version),
                &stored.value,
            )
            .map_err(|e| StoreError::opening(&id, e))
    }

    /// Makes a kept version current again, as a new version (re-sealed under the active
    /// key), keeping description, metadata, kind and expiry.
    pub async fn rollback(&self, id: &SecretId, version: u32) -> Result<WriteOutcome> {
        let id = self.normalize(id)?;
        let value = self.get_version(&id, version).await?;
        self.write_value(
            &id,
            SetRequest {
                value,
                ..SetRequest::default()
            },
            true,
        )
        .await
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
            if let Some(at) = stored.info.expires_at.filter(|at| *at <= now_ms()) {
                return Err(StoreError::Expired {
                    id: candidate_id,
                    expired_at: format_time(at),
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

    /// Audit events, newest first; page on with `before_id` = the last event's id.
    pub async fn audit(&self, query: AuditQuery) -> Result<Page<AuditEvent>> {
        let limit = query.limit.unwrap_or(100).clamp(1, 1000);
        let items = self.inner.backend.audit_events(&query, limit).await?;
        let next_cursor = (items.len() == limit)
            .then(|| items.last().map(|e| e.id.to_string()))
            .flatten();
        Ok(Page {
            total: items.len() as u64,
            items,
            next_cursor,
        })
    }

    /// Every audit event matching `query`, newest first, paging through all of them.
    pub async fn audit_all(&self, mut query: AuditQuery) -> Result<Vec<AuditEvent>> {
        query.limit = Some(1000);
        let mut events = Vec::new();
        loop {
            let page = self.audit(query.clone()).await?;
            events.extend(page.items);
            match page.next_cursor.and_then(|c| c.parse().ok()) {
                Some(before) => query.before_id = Some(before),
                None => return Ok(events),
            }
        }
    }

    /// Verifies the audit log: walks the chain from the retention anchor (or the first
    /// event) and reports the first event whose link, sequence number or presence does
    /// not match; then checks that every stored version is tied to the event that wrote
    /// it, so an emptied or shortened log is detected while secrets exist. (Removing only
    /// the newest read events is detectable against a [`Store::audit_checkpoint`].)
    pub async fn verify_audit(&self) -> Result<AuditVerification> {
        audit::verify(self.inner.backend.as_ref(), &self.inner.chain).await
    }

    /// A keyed checkpoint of the audit log's head, to keep outside the database; fails
    /// when the log does not verify.
    pub async fn audit_checkpoint(&self) -> Result<Checkpoint> {
        audit::checkpoint(self.inner.backend.as_ref(), &self.inner.chain).await
    }

    /// Like [`Store::verify_audit`], and also that everything up to `checkpoint` is still
    /// there, unchanged (or was removed by retention, as the keyed anchor shows).
    pub async fn verify_audit_against(&self, checkpoint: &Checkpoint) -> Result<AuditVerification> {
        audit::verify_against(self.inner.backend.as_ref(), &self.inner.chain, checkpoint).await
    }

    /// Records that the plaintext of `secret` was handed out (HTTP API, CLI `get`).
    pub async fn record_read(&self, secret: &Secret) -> Result<()> {
        self.record_access(&[secret.access()], Action::Read).await
    }

    /// Appends one audit event `action` (a kind of plaintext use: [`Action::Read`],
    /// [`Action::GatewayRead`]) per access, with this handle's actor, in one transaction.
    pub async fn record_access(&self, accesses: &[Access], action: Action) -> Result<()> {
        let time = now_ms();
        let records = accesses
            .iter()
            .map(|access| AuditRecord {
                time,
                actor: self.actor.to_string(),
                action,
                id: access.id.clone(),
                version: Some(access.version),
                kek_version: Some(access.kek_version),
            })
            .collect();
        self.inner.backend.append_audit(records).await
    }

    /// Re-wraps every stored value (current and kept versions) that is not under the
    /// active KEK, in batches. Each batch is one transaction that also saves a cursor, so
    /// an interrupted rotation resumes where it stopped. Each value is replaced only if
    /// its stored bytes are unchanged (compare-and-swap), so a concurrent write is never
    /// lost. The keyed hash used by `verify` is recomputed under the active KEK.
    pub async fn rotate(
        &self,
        options: RotateOptions,
        mut progress: impl FnMut(&RotationProgress) + Send,
    ) -> Result<RotationProgress> {
        let ring = &self.inner.ring;
        let backend = &self.inner.backend;
        let target = ring.active().version();
        let from_tag = options
            .from_version
            .map_or_else(|| "any".to_owned(), |v| v.to_string());
        let mut cursor = backend
            .meta("rotation_cursor")
            .await?
            .and_then(|c| parse_cursor(&c, target, &from_tag))
            .unwrap_or(0);
        let mut state = RotationProgress {
            target_version: target,
            rotated: 0,
            skipped: 0,
            total: backend
                .count_rotation_candidates(target, options.from_version)
                .await?,
        };
        progress(&state);
        let batch_size = options.batch_size.clamp(1, 10_000);
        let mut batches = 0;
        loop {
            if options.max_batches.is_some_and(|max| batches >= max) {
                // Interrupted on purpose: keep the cursor for the next run.
                return Ok(state);
            }
            batches += 1;
            let batch = backend
                .rotation_candidates(target, options.from_version, cursor, batch_size)
                .await?;
            let Some(last) = batch.last() else { break };
            cursor = last.position;
            let mut updates = Vec::with_capacity(batch.len());
            for candidate in batch {
                let context = value_context(&candidate.id, &candidate.row_id, candidate.version);
                let opening = |e| StoreError::opening(&candidate.id, e);
                let plaintext = ring
                    .open(&context, &candidate.value.value)
                    .map_err(opening)?;
                let Some(rewrapped) = ring
                    .rewrap(&context, &candidate.value.value)
                    .map_err(opening)?
                else {
                    continue;
                };
                updates.push(RotationUpdate {
                    position: candidate.position,
                    new: StoredValue {
                        value: rewrapped,
                        value_hash: ring
                            .keyed_hash(&context, plaintext.expose_secret())
                            .to_bytes(),
                        kek_version: target,
                    },
                    id: candidate.id,
                    version: candidate.version,
                    expected: candidate.value.value,
                });
            }
            let attempted = updates.len() as u64;
            let applied = backend
                .apply_rotation(
                    updates,
                    self.inner.writer_key.clone(),
                    Some(format!("{target}:{from_tag}:{cursor}")),
                    &self.actor,
                    now_ms(),
                )
                .await?;
            state.rotated += applied;
            state.skipped += attempted - applied;
            progress(&state);
        }
        backend
            .apply_rotation(
                Vec::new(),
                self.inner.writer_key.clone(),
                None,
                &self.actor,
                now_ms(),
            )
            .await?;
        Ok(state)
    }

    /// Values per KEK version, and whether a rotation is pending.
    pub async fn rotation_status(&self) -> Result<RotationStatus> {
        Ok(RotationStatus {
            active_version: self.inner.ring.active().version(),
            by_version: self.inner.backend.rotation_status().await?,
            pending_cursor: self.inner.backend.meta("rotation_cursor").await?,
        })
    }

    /// Deletes secrets that expired more than `retention` ago. Returns how many.
    pub async fn cleanup_expired(&self, retention: Duration) -> Result<u64> {
        let now = now_ms();
        let before = now.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
        self.inner
            .backend
            .cleanup_expired(before, &self.actor, now)
            .await
    }

    /// Deletes audit events older than `retention`. Returns how many.
    pub async fn cleanup_events(&self, retention: Duration) -> Result<u64> {
        let before =
            now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
        self.inner.backend.cleanup_events(before).await
    }
}

fn parse_cursor(text: &str, target: u32, from_tag: &str) -> Option<i64> {
    let mut parts = text.splitn(3, ':');
    let (t, f, position) = (parts.next()?, parts.next()?, parts.next()?);
    (t == target.to_string() && f == from_tag)
        .then(|| position.parse().ok())
        .flatten()
}

fn info_of(row: StoredInfo, now: i64) -> SecretInfo {
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
        expires_at: row.expires_at.map(Timestamp),
        state: if row.expires_at.is_some_and(|at| at <= now) {
            State::Expired
        } else {
            State::Active
        },
        created: Timestamp(row.created),
        updated: Timestamp(row.updated),
    }
}

fn expiry_change(expiry: Expiry, now: i64) -> Result<Change<Option<i64>>> {
    Ok(match expiry {
        Expiry::Keep => Change::Keep,
        Expiry::Never => Change::Set(None),
        Expiry::At(at) => Change::Set(Some(at)),
        Expiry::In(ttl) => {
            if ttl.is_zero() {
                return Err(StoreError::InvalidInput(
                    "ttl must be longer than zero".into(),
                ));
            }
            let ms = i64::try_from(ttl.as_millis())
                .ok()
                .and_then(|ms| now.checked_add(ms))
                .ok_or_else(|| StoreError::InvalidInput("ttl is too long".into()))?;
            Change::Set(Some(ms))
        }
    })
}

/// A 15-character public row id of `[a-z0-9]`, as PocketBase uses.
fn new_row_id() -> Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 15];
    getrandom::getrandom(&mut bytes)
        .map_err(|_| StoreError::Crypto(strongroom_crypto::Error::Random))?;
    // 256 % 36 = 4: the bias of a plain modulo is irrelevant for an identifier.
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}
