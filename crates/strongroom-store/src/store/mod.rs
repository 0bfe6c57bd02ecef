//! The store: policy and cryptography over a [`Backend`]. Every rule runs here, once,
//! for every backend: naming and fallback ([`read`]), what a write does in its
//! transaction ([`write`]), the audit trail ([`audit_ops`]) and key rotation
//! ([`rotation`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use secrecy::SecretString;
use strongroom_crypto::{secrecy, KeyRing, PasswordParams};

use crate::audit::RingChain;
use crate::backend::{Backend, WriteTx};
use crate::{Result, SecretId, StoreConfig, StoreError};

mod audit_ops;
mod batch;
mod group;
mod leases;
mod lock;
mod logins;
mod maintenance;
mod read;
mod rotation;
mod sealed_settings;
mod token_rows;
mod transfer;
mod versions;
mod write;

pub use lock::{EnvLock, LockEntry};
pub use logins::{CredentialSpend, Login};
pub use maintenance::{is_empty, ValuesCheck};
pub use read::{EnvView, LeftOut, PendingRead};
pub use rotation::RotateOptions;
#[cfg(feature = "testing")]
pub(crate) use rotation::RotationUpdate;
pub(crate) use token_rows::keyless;
pub(crate) use token_rows::TokenInsert;
pub use token_rows::TokenProblem;
pub(crate) use write::EMPTY_VALUE;

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
pub(crate) fn value_context(
    id: &SecretId,
    row_id: &str,
    version: u32,
) -> strongroom_crypto::Context {
    strongroom_crypto::Context::secret_version(&id.namespace, &id.env, &id.key, row_id, version)
}

/// `plaintext` sealed for storage under `context` with the active key, with its keyed
/// hash: what every value write, re-seal and move stores.
pub(crate) fn seal_stored(
    ring: &KeyRing,
    context: &strongroom_crypto::Context,
    plaintext: &[u8],
) -> Result<crate::backend::StoredValue> {
    Ok(crate::backend::StoredValue {
        value: ring.seal(context, plaintext)?,
        value_hash: ring.keyed_hash(context, plaintext).to_bytes(),
        kek_version: ring.active().version(),
    })
}

/// A KEK whose fingerprint differs from the one the database recorded for its version is
/// [`StoreError::WrongKey`].
fn check_fingerprints(ring: &KeyRing, recorded: &[crate::backend::RecordedKey]) -> Result<()> {
    for kek in ring.keks() {
        let configured = kek.fingerprint().to_string();
        if let Some(key) = recorded
            .iter()
            .find(|key| key.version == kek.version() && key.fingerprint != configured)
        {
            return Err(StoreError::WrongKey {
                version: kek.version(),
                configured,
                recorded: key.fingerprint.clone(),
            });
        }
    }
    Ok(())
}

/// The future of a transaction's work.
pub(crate) type Work<'t, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 't>>;

/// Runs `work` in one write transaction of `backend` and returns its result.
pub(crate) async fn in_transaction<T, F>(backend: &dyn Backend, work: F) -> Result<T>
where
    T: Send + 'static,
    F: for<'t> FnOnce(&'t mut dyn WriteTx) -> Work<'t, T> + Send + 'static,
{
    let (work, result) = with_result(work);
    backend.transaction(work).await?;
    result.take()
}

/// Where typed work leaves its result for the caller, read once the transaction commits.
pub(crate) struct TxResult<T>(Arc<std::sync::Mutex<Option<T>>>);

impl<T> TxResult<T> {
    /// The result the work left (once its transaction committed).
    pub(crate) fn take(&self) -> Result<T> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .ok_or(StoreError::Defect("a committed transaction left no result"))
    }
}

/// `work` as the backend's transaction work, and where it leaves its result.
pub(crate) fn with_result<T, F>(work: F) -> (crate::backend::TxWork, TxResult<T>)
where
    T: Send + 'static,
    F: for<'t> FnOnce(&'t mut dyn WriteTx) -> Work<'t, T> + Send + 'static,
{
    let slot = Arc::new(std::sync::Mutex::new(None));
    let result = TxResult(Arc::clone(&slot));
    let work: crate::backend::TxWork = Box::new(move |tx| {
        let work = work(tx);
        Box::pin(async move {
            let value = work.await?;
            *slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(value);
            Ok(())
        })
    });
    (work, result)
}

struct Inner {
    backend: Arc<dyn Backend>,
    ring: Arc<KeyRing>,
    config: StoreConfig,
    writer_key: (u32, String),
    chain: Arc<RingChain>,
    counters: Counters,
    commits: batch::Commits,
}

/// Write-transaction counters of one store (shared by its clones).
#[derive(Debug, Default)]
struct Counters {
    committed: AtomicU64,
    failed: AtomicU64,
    nanos: AtomicU64,
    group_commits: AtomicU64,
    read_event_commits: AtomicU64,
    read_events: AtomicU64,
    write_commits: AtomicU64,
    writes: AtomicU64,
}

/// What a store reports for metrics: its write transactions and its backend's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StoreStats {
    /// Write transactions committed.
    pub committed_transactions: u64,
    /// Write transactions rolled back (an error, a conflict, a wrong key).
    pub failed_transactions: u64,
    /// Time spent in write transactions, both kinds, in seconds (the flush latency's sum).
    pub transaction_seconds: f64,
    /// The backend's read cache and pool.
    pub backend: crate::backend::BackendStats,
    /// Group commits run (each one transaction and one flush, carrying read events,
    /// write transactions, or both).
    pub group_commits: u64,
    /// Group commits that carried read events.
    pub read_event_commits: u64,
    /// Read events those group commits appended (`read_events / read_event_commits` is the
    /// mean batch).
    pub read_events: u64,
    /// Group commits that carried write transactions.
    pub write_commits: u64,
    /// Write transactions those group commits carried.
    pub writes: u64,
    /// Group commits this store may run at once now: the backend's lanes (PostgreSQL: two),
    /// or one while another process appends to the same audit chain.
    pub commit_lanes: u64,
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
                let stored = in_transaction(backend.as_ref(), move |tx| {
                    Box::pin(async move { tx.init_meta(PASSWORD_PARAMS, &fresh).await })
                })
                .await?;
                let key = PasswordParams::decode(&stored)?.derive_key(&password)?;
                KeyRing::single(&key)
            }
        };
        let recorded = backend.recorded_keys().await?;
        check_fingerprints(&ring, &recorded)?;
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
                        .find(|key| key.version == v)
                        .map(|key| key.fingerprint.clone()),
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
        let chain = Arc::new(RingChain::new(Arc::clone(&ring)));
        let backend_lanes = backend.commit_lanes();
        let store = Self {
            inner: Arc::new(Inner {
                backend,
                ring,
                config,
                writer_key,
                chain,
                counters: Counters::default(),
                commits: batch::Commits::with_lanes(backend_lanes),
            }),
            actor: Arc::from("library"),
        };
        store.upgrade_legacy().await?;
        store.tag_legacy_tokens().await?;
        Ok(store)
    }

    /// The actor this store records in audit events and version history.
    pub fn actor_name(&self) -> &str {
        &self.actor
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

    /// Runs `work` in one write transaction of this store's backend, counted and timed.
    pub(crate) async fn transact<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut dyn WriteTx) -> Work<'t, T> + Send + 'static,
    {
        self.transact_on(batch::Footprint::Any, work).await
    }

    /// [`Store::transact`] for work that locks only the rows `footprint` names, so its
    /// group may run beside others (`batch.rs`, "Lanes").
    pub(crate) async fn transact_on<T, F>(&self, footprint: batch::Footprint, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut dyn WriteTx) -> Work<'t, T> + Send + 'static,
    {
        let started = std::time::Instant::now();
        let outcome = {
            let (work, result) = with_result(work);
            self.run_write(work, footprint)
                .await
                .and_then(|()| result.take())
        };
        let counters = &self.inner.counters;
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        counters.nanos.fetch_add(nanos, Ordering::Relaxed);
        let count = if outcome.is_ok() {
            &counters.committed
        } else {
            &counters.failed
        };
        count.fetch_add(1, Ordering::Relaxed);
        outcome
    }

    /// Write-transaction counters and the backend's own (read cache, pool).
    pub fn stats(&self) -> StoreStats {
        let counters = &self.inner.counters;
        #[allow(clippy::cast_precision_loss)] // seconds for a metric
        let seconds = counters.nanos.load(Ordering::Relaxed) as f64 / 1e9;
        StoreStats {
            committed_transactions: counters.committed.load(Ordering::Relaxed),
            failed_transactions: counters.failed.load(Ordering::Relaxed),
            transaction_seconds: seconds,
            backend: self.inner.backend.stats(),
            read_event_commits: counters.read_event_commits.load(Ordering::Relaxed),
            read_events: counters.read_events.load(Ordering::Relaxed),
            group_commits: counters.group_commits.load(Ordering::Relaxed),
            write_commits: counters.write_commits.load(Ordering::Relaxed),
            writes: counters.writes.load(Ordering::Relaxed),
            commit_lanes: self.inner.commits.lanes_in_use() as u64,
        }
    }

    /// Counts one group commit of `events` read events and `writes` write transactions.
    pub(crate) fn count_group_commit(&self, events: u64, writes: u64) {
        let counters = &self.inner.counters;
        counters.group_commits.fetch_add(1, Ordering::Relaxed);
        if events > 0 {
            counters.read_event_commits.fetch_add(1, Ordering::Relaxed);
            counters.read_events.fetch_add(events, Ordering::Relaxed);
        }
        if writes > 0 {
            counters.write_commits.fetch_add(1, Ordering::Relaxed);
            counters.writes.fetch_add(writes, Ordering::Relaxed);
        }
    }

    /// Readiness, meaning this server can serve: the database answers, every key of the
    /// ring still has the fingerprint the database recorded for its version, no newer key
    /// has written (another process rotated to a key this one lacks), and every KEK
    /// version stored values use is in the ring. Names the part that fails.
    pub async fn check_ready(&self) -> std::result::Result<(), (&'static str, String)> {
        let recorded = self
            .inner
            .backend
            .recorded_keys()
            .await
            .map_err(|e| ("database", e.to_string()))?;
        check_fingerprints(&self.inner.ring, &recorded).map_err(|e| ("key", e.to_string()))?;
        // Another process may have rotated to a key this one lacks: its writes are then
        // under a newer KEK (ours would land under an older one), and its values do not
        // open here. Ready means every stored value opens and no newer key is writing.
        let active = self.inner.ring.active().version();
        if let Some(newer) = recorded
            .iter()
            .map(|key| key.version)
            .find(|version| *version > active)
        {
            return Err((
                "key",
                format!(
                    "the database records KEK version {newer}, newer than this server's \
                     active version {active}: another process rotated to a key this server \
                     lacks; restart it with the new key ring (STRONGROOM_KEYS)"
                ),
            ));
        }
        let in_use = self
            .inner
            .backend
            .kek_versions_in_use()
            .await
            .map_err(|e| ("database", e.to_string()))?;
        if let Some(missing) = in_use.iter().find(|v| self.inner.ring.get(**v).is_err()) {
            return Err((
                "key",
                format!(
                    "stored values are sealed under KEK version {missing}, which this server \
                     lacks: they can not be read here; add it to STRONGROOM_KEYS"
                ),
            ));
        }
        if let Some(cache) = self.inner.backend.stats().read_cache {
            if !cache.live {
                return Err((
                    "read_cache",
                    "the cache's LISTEN connection is down (reads go to the database)".into(),
                ));
            }
        }
        Ok(())
    }

    /// The sequence number of the newest audit event (the count of events ever appended:
    /// numbers are contiguous and never reused).
    pub async fn audit_head(&self) -> Result<i64> {
        Ok(self
            .inner
            .backend
            .audit_events(&crate::AuditQuery::default(), 1)
            .await?
            .first()
            .map_or(0, |event| event.id))
    }

    /// The backend this store runs on (shared).
    pub(crate) fn backend_handle(&self) -> Arc<dyn Backend> {
        Arc::clone(&self.inner.backend)
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

    /// The identity with defaults applied and names checked again.
    fn normalize(&self, id: &SecretId) -> Result<SecretId> {
        self.secret_id(Some(&id.namespace), Some(&id.env), &id.key)
    }

    /// The envs a read of `id` visits, in order.
    fn chain(&self, id: &SecretId) -> Vec<String> {
        if self.inner.config.env_isolation {
            self.inner.config.chain(&id.env)
        } else {
            vec![id.env.clone()]
        }
    }
}
