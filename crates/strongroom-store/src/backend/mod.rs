//! The storage interface the [`Store`](crate::Store) runs on, and its implementations.
//!
//! A backend stores sealed bytes and attributes and makes every write one transaction
//! (value, version history, audit event, key fingerprint record). It never sees a key or
//! a plaintext: sealing, opening, naming rules and fallback live in the store.

use async_trait::async_trait;

use crate::{Action, AuditEvent, AuditQuery, Result, SecretId, State, StoreError, WriteOutcome};

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "postgres")]
pub mod read_cache;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "postgres")]
pub(crate) mod transport;

/// Attributes of a stored secret (everything but its value).
#[derive(Debug, Clone)]
pub struct StoredInfo {
    /// Public row id.
    pub row_id: String,
    /// Identity.
    pub id: SecretId,
    /// Current version.
    pub version: u32,
    /// KEK version of the current value.
    pub kek_version: u32,
    /// Description.
    pub description: String,
    /// Metadata JSON text.
    pub metadata: Option<String>,
    /// Kind.
    pub kind: String,
    /// Expiry, Unix ms.
    pub expires_at: Option<i64>,
    /// Created, Unix ms.
    pub created: i64,
    /// Updated, Unix ms.
    pub updated: i64,
}

/// One sealed value (a version) as stored.
#[derive(Debug, Clone)]
pub struct StoredValue {
    /// Envelope (format 0x01) bound to the secret's identity.
    pub value: Vec<u8>,
    /// Keyed hash (format 0x03) of the plaintext, for `verify`.
    pub value_hash: Vec<u8>,
    /// KEK version of `value`.
    pub kek_version: u32,
}

/// A stored secret: attributes and current value.
#[derive(Debug, Clone)]
pub struct StoredSecret {
    /// Attributes.
    pub info: StoredInfo,
    /// Current value.
    pub value: StoredValue,
}

/// One kept version's attributes.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    /// Version number.
    pub version: u32,
    /// KEK version.
    pub kek_version: u32,
    /// Written at, Unix ms.
    pub created: i64,
    /// Written by.
    pub actor: String,
}

/// A change to an optional attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<T> {
    /// Leave as is.
    Keep,
    /// Replace.
    Set(T),
}

/// Where a new value is being written: the sealer binds the ciphertext to it.
#[derive(Debug, Clone, Copy)]
pub struct SealSlot<'a> {
    /// The secret's random public id (a delete and re-create changes it).
    pub row_id: &'a str,
    /// The version number the value is written as.
    pub version: u32,
}

/// Seals a write's value for the slot the backend chose inside its transaction (the
/// backend never sees the key or the plaintext, only the sealed result).
pub type Sealer = std::sync::Arc<dyn Fn(SealSlot<'_>) -> Result<StoredValue> + Send + Sync>;

/// A value write (create, update or rollback), applied in one transaction.
#[derive(Clone)]
pub struct WriteRecord {
    /// Identity.
    pub id: SecretId,
    /// Seals the new value once the backend knows its row id and version number.
    pub seal: Sealer,
    /// Description change.
    pub description: Change<String>,
    /// Metadata change (JSON text).
    pub metadata: Change<Option<String>>,
    /// Kind change.
    pub kind: Change<String>,
    /// Expiry change.
    pub expires_at: Change<Option<i64>>,
    /// Now, Unix ms.
    pub now: i64,
    /// Who writes.
    pub actor: String,
    /// Versions to keep, the new one included.
    pub history_depth: u32,
    /// `Rollback` for a rollback; otherwise the backend records create or update.
    pub rollback: bool,
    /// A fresh public row id, used if the secret is created.
    pub new_row_id: String,
    /// `(version, fingerprint)` of the writing KEK, recorded or checked in the same
    /// transaction so that a write under the wrong key never lands.
    pub writer_key: (u32, String),
}

impl WriteRecord {
    /// The audit action of this write: `rollback`, or `create` when it `created` the
    /// secret, else `update`.
    pub fn action(&self, created: bool) -> Action {
        if self.rollback {
            Action::Rollback
        } else if created {
            Action::Create
        } else {
            Action::Update
        }
    }
}

impl std::fmt::Debug for WriteRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteRecord")
            .field("id", &self.id)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

/// An attribute change that leaves the value alone.
#[derive(Debug, Clone)]
pub struct MetaRecord {
    /// Identity.
    pub id: SecretId,
    /// Description change.
    pub description: Change<String>,
    /// Metadata change.
    pub metadata: Change<Option<String>>,
    /// Kind change.
    pub kind: Change<String>,
    /// Expiry change.
    pub expires_at: Change<Option<i64>>,
    /// Now, Unix ms.
    pub now: i64,
    /// Who.
    pub actor: String,
}

/// An audit event to append.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// When, Unix ms.
    pub time: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: Action,
    /// Which secret.
    pub id: SecretId,
    /// Secret version, if any.
    pub version: Option<u32>,
    /// KEK version, if any.
    pub kek_version: Option<u32>,
}

/// Filters of a list, already validated by the store.
#[derive(Debug, Clone)]
pub struct ListFilter {
    /// Namespace.
    pub namespace: String,
    /// Only this env.
    pub env: Option<String>,
    /// Only keys with this prefix.
    pub prefix: Option<String>,
    /// Only this state, judged at `now`.
    pub state: Option<State>,
    /// Now, Unix ms.
    pub now: i64,
    /// Page size.
    pub limit: usize,
    /// Continue after `(env, key)`.
    pub after: Option<(String, String)>,
    /// Skip rows (when no cursor).
    pub offset: usize,
}

/// A stored version whose KEK is not the target of a rotation.
#[derive(Debug, Clone)]
pub struct RotationCandidate {
    /// Stable position of the version row, the rotation cursor.
    pub position: i64,
    /// Identity (for the crypto context).
    pub id: SecretId,
    /// The secret's random public id (for the crypto context).
    pub row_id: String,
    /// Version number.
    pub version: u32,
    /// Its sealed value.
    pub value: StoredValue,
}

/// A re-wrapped version, applied only if the stored bytes are still `expected`.
#[derive(Debug, Clone)]
pub struct RotationUpdate {
    /// The candidate's position.
    pub position: i64,
    /// Identity (for the audit event).
    pub id: SecretId,
    /// Version number.
    pub version: u32,
    /// The bytes read (compare-and-swap).
    pub expected: Vec<u8>,
    /// The new sealed value.
    pub new: StoredValue,
}

/// An API token as stored: its secret only as a SHA-256 hash.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    /// Public id (12 hex characters).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// SHA-256 of the secret part.
    pub secret_hash: Vec<u8>,
    /// Superuser or scoped.
    pub superuser: bool,
    /// `namespace/env` scopes.
    pub scopes: Vec<String>,
    /// Created, Unix ms.
    pub created: i64,
    /// Revoked, Unix ms.
    pub revoked: Option<i64>,
}

/// Computes the keyed values of the tamper-evident audit chain (the store implements it
/// with a keyed hash under its master key; backends never see the key).
pub trait AuditChain: Send + Sync {
    /// The link of `event`, appended at sequence number `seq`, following the link
    /// `previous` (`None` for the first event of an empty log without an anchor).
    fn link(&self, previous: Option<&[u8]>, seq: i64, event: &AuditRecord) -> Vec<u8>;

    /// The tag tying one stored version to the sequence number of the event that wrote
    /// it, so deleting that event (the newest ones included) is detected.
    fn version_tag(&self, row_id: &str, id: &SecretId, version: u32, seq: i64) -> Vec<u8>;

    /// The tag of a retention anchor: the last deleted event's sequence number and link.
    fn anchor_tag(&self, seq: i64, link: &[u8]) -> Vec<u8>;
}

/// The retention anchor, kept in the meta table as `SEQ:LINK:TAG` (hex): where the
/// remaining chain begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// Sequence number of the last deleted event.
    pub seq: i64,
    /// Its link.
    pub link: Vec<u8>,
    /// Keyed tag over both.
    pub tag: Vec<u8>,
}

impl Anchor {
    /// The meta entry's name.
    pub const META: &'static str = "audit_anchor";

    /// The stored text.
    pub fn encode(&self) -> String {
        format!(
            "{}:{}:{}",
            self.seq,
            hex::encode(&self.link),
            hex::encode(&self.tag)
        )
    }

    /// Parses the stored text; `None` if malformed.
    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split(':');
        let seq = parts.next()?.parse().ok()?;
        let link = hex::decode(parts.next()?).ok()?;
        let tag = hex::decode(parts.next()?).ok()?;
        parts.next().is_none().then_some(Self { seq, link, tag })
    }
}

/// A stored version and its tie to the event that wrote it.
#[derive(Debug, Clone)]
pub struct VersionTie {
    /// The secret's random public id.
    pub row_id: String,
    /// Identity.
    pub id: SecretId,
    /// Version number.
    pub version: u32,
    /// Sequence number of the event that wrote it, if recorded.
    pub audit_seq: Option<i64>,
    /// Keyed tag over the above, if recorded.
    pub audit_tag: Option<Vec<u8>>,
}

/// A version written before values were bound to their version (schema 4), to re-seal.
#[derive(Debug, Clone)]
pub struct LegacyVersion {
    /// The secret's random public id.
    pub row_id: String,
    /// Identity.
    pub id: SecretId,
    /// Version number.
    pub version: u32,
    /// The value, sealed under the old `(namespace, env, key)` context.
    pub value: StoredValue,
}

/// Re-seals a legacy version under the current context (the store implements it).
pub type Resealer = dyn Fn(&LegacyVersion) -> Result<StoredValue> + Send + Sync;

/// The audit chain a backend was given by [`Backend::attach_audit_chain`], if any.
#[derive(Default)]
pub(crate) struct ChainSlot(std::sync::RwLock<Option<std::sync::Arc<dyn AuditChain>>>);

impl ChainSlot {
    /// Attaches `chain` (replacing any earlier one).
    pub(crate) fn attach(&self, chain: std::sync::Arc<dyn AuditChain>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(chain);
    }

    /// The attached chain.
    pub(crate) fn get(&self) -> Option<std::sync::Arc<dyn AuditChain>> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The attached chain, or the error a write without one gets: every event is linked,
    /// so nothing is appended before the store has attached its keyed chain.
    pub(crate) fn required(&self) -> Result<std::sync::Arc<dyn AuditChain>> {
        self.get().ok_or_else(|| {
            StoreError::Database(
                "no audit chain is attached: audit events are written through a Store".into(),
            )
        })
    }
}

/// The storage interface. Every method is one transaction.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Short name for messages, e.g. `sqlite`.
    fn name(&self) -> &'static str;

    /// A store-wide setting (password parameters, ...).
    async fn meta(&self, name: &str) -> Result<Option<String>>;

    /// Stores `value` under `name` unless present; returns what is stored.
    async fn init_meta(&self, name: &str, value: &str) -> Result<String>;

    /// `(kek_version, fingerprint)` of every key that has written to this database.
    async fn recorded_keys(&self) -> Result<Vec<(u32, String)>>;

    /// The KEK versions used by stored values (current and kept versions).
    async fn kek_versions_in_use(&self) -> Result<Vec<u32>>;

    /// A secret's attributes and current value.
    async fn fetch(&self, id: &SecretId) -> Result<Option<StoredSecret>>;

    /// A kept version's value.
    async fn fetch_version(&self, id: &SecretId, version: u32) -> Result<Option<StoredValue>>;

    /// The current version and the kept versions, newest first; `None` if no secret.
    async fn history(&self, id: &SecretId) -> Result<Option<(u32, Vec<StoredVersion>)>>;

    /// Creates, updates or rolls back a secret's value, with its version row, history
    /// trimming and audit event, in one transaction.
    async fn write(&self, record: WriteRecord) -> Result<WriteOutcome>;

    /// Several writes in one transaction: all land or none does.
    async fn write_many(&self, records: Vec<WriteRecord>) -> Result<Vec<WriteOutcome>>;

    /// Changes attributes and appends a `metadata_update` event; `None` if no secret.
    async fn update_meta(&self, record: MetaRecord) -> Result<Option<StoredInfo>>;

    /// Deletes a secret and its versions and appends a `delete` event; false if absent.
    async fn delete(&self, id: &SecretId, actor: &str, now: i64) -> Result<bool>;

    /// A page of secrets' attributes and the total count.
    async fn list(&self, filter: &ListFilter) -> Result<(Vec<StoredInfo>, u64)>;

    /// Audit events, newest first.
    async fn audit_events(&self, query: &AuditQuery, limit: usize) -> Result<Vec<AuditEvent>>;

    /// Appends audit events (plaintext uses), all in one transaction.
    async fn append_audit(&self, records: Vec<AuditRecord>) -> Result<()>;

    /// Version rows not on `target`, (only those on `from` if given), after `after`.
    async fn rotation_candidates(
        &self,
        target: u32,
        from: Option<u32>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<RotationCandidate>>;

    /// How many version rows a rotation to `target` would touch.
    async fn count_rotation_candidates(&self, target: u32, from: Option<u32>) -> Result<u64>;

    /// Applies re-wraps whose stored bytes are unchanged (compare-and-swap), each with a
    /// `rotate` event, and saves `cursor`, in one transaction. Returns how many applied.
    async fn apply_rotation(
        &self,
        updates: Vec<RotationUpdate>,
        writer_key: (u32, String),
        cursor: Option<String>,
        actor: &str,
        now: i64,
    ) -> Result<u64>;

    /// `(kek_version, current values, kept versions)` for every KEK version in use.
    async fn rotation_status(&self) -> Result<Vec<(u32, u64, u64)>>;

    /// Deletes secrets whose expiry is before `expired_before`, each with an
    /// `expired_cleanup` event. Returns how many.
    async fn cleanup_expired(&self, expired_before: i64, actor: &str, now: i64) -> Result<u64>;

    /// Deletes the oldest audit events, by sequence number: the longest run from the start
    /// of the log in which every event is older than `before` (so a clock that stepped
    /// back never deletes a younger event), and stores the keyed [`Anchor`] of exactly
    /// the last one deleted, in one transaction. Returns how many.
    async fn cleanup_events(&self, before: i64) -> Result<u64>;

    /// From now on, every audit event this backend appends carries a chain link computed
    /// by `chain` from the previous event's link, in the same transaction.
    fn attach_audit_chain(&self, chain: std::sync::Arc<dyn AuditChain>);

    /// Audit events after `after_id`, oldest first, with their chain links.
    async fn audit_links(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<(AuditEvent, Option<Vec<u8>>)>>;

    /// The event with sequence number `seq`, with its link.
    async fn audit_event_at(&self, seq: i64) -> Result<Option<(AuditEvent, Option<Vec<u8>>)>>;

    /// Stored versions after position `after`, with their audit ties; returns the last
    /// position read, for the next page.
    async fn version_ties(&self, after: i64, limit: usize) -> Result<(Vec<VersionTie>, i64)>;

    /// Upgrades a database written before schema 4, in one transaction: the audit events
    /// kept aside by the schema migration are appended again to the keyed chain (their
    /// times, actors and fields unchanged), and every version without an audit tie is
    /// re-sealed by `reseal` under its version-bound context, with a `reseal` event it is
    /// tied to. Returns how many versions were re-sealed; 0 when nothing was pending.
    async fn upgrade_legacy(
        &self,
        reseal: &Resealer,
        writer_key: (u32, String),
        actor: &str,
        now: i64,
    ) -> Result<u64>;

    /// Stores a new token; a name already in use (even revoked) is an error.
    async fn insert_token(&self, token: TokenRecord) -> Result<()>;

    /// The token with this public id.
    async fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>>;

    /// Every token.
    async fn tokens(&self) -> Result<Vec<TokenRecord>>;

    /// Marks the active token named `name` revoked; false if there is none.
    async fn revoke_token(&self, name: &str, now: i64) -> Result<bool>;
}
