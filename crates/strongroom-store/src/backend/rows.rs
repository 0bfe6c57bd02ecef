//! The rows a backend reads and writes.

use crate::{Action, SecretId, State, Timestamp};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use crate::{Result, StoreError};

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
    /// Expiry.
    pub expires_at: Option<Timestamp>,
    /// Created.
    pub created: Timestamp,
    /// Updated.
    pub updated: Timestamp,
    /// The current version's state (soft-deleted, destroyed).
    pub state: VersionState,
}

/// Whether a version was soft-deleted (kept sealed, read by nobody until undeleted) or
/// destroyed (its sealed bytes erased).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VersionState {
    /// Soft-deleted at.
    pub deleted_at: Option<Timestamp>,
    /// Destroyed: the sealed bytes are gone for good.
    pub destroyed: bool,
}

impl VersionState {
    /// Whether a read may return this version's value.
    pub fn readable(self) -> bool {
        self.deleted_at.is_none() && !self.destroyed
    }
}

/// A secret's own settings (Vault's `max_versions` and `cas_required`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecretSettings {
    /// Versions to keep; `None`: the server's history depth.
    pub max_versions: Option<u32>,
    /// Every write must name the version it expects (check-and-set).
    pub cas_required: bool,
}

/// A change to one version's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionChange {
    /// Soft-delete a live version.
    Delete,
    /// Make a soft-deleted (not destroyed) version live again.
    Undelete,
    /// Erase a version's sealed bytes for good.
    Destroy,
}

/// One sealed value (a version) as stored.
#[derive(Debug, Clone)]
pub struct StoredValue {
    /// Envelope (format 0x01) bound to the secret's identity and version.
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
    /// Written at.
    pub created: Timestamp,
    /// Written by.
    pub actor: String,
    /// Soft-deleted or destroyed.
    pub state: VersionState,
}

/// A change to an optional attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<T> {
    /// Leave as is.
    Keep,
    /// Replace.
    Set(T),
}

impl<T: Clone> Change<T> {
    /// The new value, or `default` when kept.
    pub fn or(&self, default: T) -> T {
        match self {
            Self::Set(value) => value.clone(),
            Self::Keep => default,
        }
    }

    /// `(is_set, value)`, for SQL of the shape `CASE WHEN is_set THEN value ELSE column END`
    /// (the value is `T::default()` when kept, and then unused).
    pub fn split(&self) -> (bool, T)
    where
        T: Default,
    {
        match self {
            Self::Keep => (false, T::default()),
            Self::Set(value) => (true, value.clone()),
        }
    }
}

/// Changes to a secret's attributes (a new row starts from the defaults).
#[derive(Debug, Clone)]
pub struct Changes {
    /// Description (default empty).
    pub description: Change<String>,
    /// Metadata JSON text (default none).
    pub metadata: Change<Option<String>>,
    /// Kind (default `generic`).
    pub kind: Change<String>,
    /// Expiry (default none).
    pub expires_at: Change<Option<Timestamp>>,
}

/// A secret row locked by a write transaction.
#[derive(Debug, Clone)]
pub struct SecretRow {
    /// The backend's own row key.
    pub sid: i64,
    /// The public random row id.
    pub row_id: String,
    /// Identity.
    pub id: SecretId,
    /// Current version.
    pub version: u32,
}

/// What [`SecretTx::upsert_secret`](super::SecretTx::upsert_secret) did.
#[derive(Debug, Clone)]
pub struct UpsertedSecret {
    /// The row, at its new version.
    pub row: SecretRow,
    /// Whether it was created (else its version was bumped).
    pub created: bool,
}

/// A version row to insert.
#[derive(Debug, Clone, Copy)]
pub struct NewVersion<'a> {
    /// The secret's row.
    pub row: &'a SecretRow,
    /// The sealed value.
    pub value: &'a StoredValue,
    /// Written at.
    pub created: Timestamp,
    /// Written by.
    pub actor: &'a str,
    /// Sequence number of the audit event that wrote it.
    pub audit_seq: i64,
    /// Keyed tie of the version to that event.
    pub audit_tag: &'a [u8],
    /// The row's versions numbered this and below are deleted first (the history depth;
    /// zero or less deletes none).
    pub trim_through: i64,
}

/// An audit event to append.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// When.
    pub time: Timestamp,
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
    /// Now.
    pub now: Timestamp,
    /// Page size.
    pub limit: usize,
    /// Continue after `(env, key)`.
    pub after: Option<ListCursor>,
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

/// An API token as stored: its secret only as a SHA-256 hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// Created.
    pub created: Timestamp,
    /// Revoked.
    pub revoked: Option<Timestamp>,
    /// When it stops working (`None`: never); renewal moves it, up to `max_expires`.
    pub expires: Option<Timestamp>,
    /// The latest it may ever be renewed to (`None`: no limit).
    pub max_expires: Option<Timestamp>,
    /// Its period in ms: what a renewal without an increment adds (0: none set).
    pub ttl_ms: i64,
    /// Whether it may be renewed.
    pub renewable: bool,
    /// Uses it may make (0: unlimited).
    pub num_uses: u32,
    /// Uses made (counted only when `num_uses` is set).
    pub uses: u32,
    /// The actor that made it (a token's name, `cli`, an auth method's role).
    pub creator: String,
    /// How it was issued: `token` (created by a token or the CLI), or an auth method.
    pub method: String,
    /// The public id of the token it was made under (revoking that one revokes this).
    pub parent: Option<String>,
    /// The networks it works from (canonical CIDR blocks; empty: anywhere).
    pub bound_cidrs: Vec<String>,
    /// Keyed tag over every field above, bound to the id (stored form of a keyed hash,
    /// with its KEK version); `None` on a row that was never tagged.
    pub tag: Option<Vec<u8>>,
}

/// A stored version and its tie to the event that wrote it.
#[derive(Debug, Clone)]
pub struct VersionTie {
    /// The version row's position (its storage id), for re-tagging.
    pub position: i64,
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

/// A kept version row with its secret's identity: to re-seal (a version written before
/// schema 4 bound values to their version, or a version carried by a move).
#[derive(Debug, Clone)]
pub struct VersionRow {
    /// The secret's random public id.
    pub row_id: String,
    /// Identity.
    pub id: SecretId,
    /// Version number.
    pub version: u32,
    /// The value as stored (sealed under the context it was written in).
    pub value: StoredValue,
}

/// A count or id from the database as `u32`, saturating (never a panic on a bad row).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn u32_of(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// The action of an event set aside by the schema-4 migration; an unknown one is an
/// integrity failure, never guessed.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn legacy_action(action: &str) -> Result<Action> {
    Action::parse(action).ok_or_else(|| {
        StoreError::AuditIntegrity(format!(
            "a legacy audit event has an unknown action {action:?}"
        ))
    })
}

/// A key that has written to the database: its KEK version and fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedKey {
    /// The KEK version.
    pub version: u32,
    /// The fingerprint recorded for it.
    pub fingerprint: String,
}

/// A kept version's sealed value and its state.
#[derive(Debug, Clone)]
pub struct KeptValue {
    /// The sealed value.
    pub value: StoredValue,
    /// Soft-deleted or destroyed.
    pub state: VersionState,
}

/// A secret's current version number and its kept versions, newest first.
#[derive(Debug, Clone)]
pub struct History {
    /// The current version.
    pub current: u32,
    /// The kept versions, newest first.
    pub versions: Vec<StoredVersion>,
}

/// One page of a listing and how many rows match in all.
#[derive(Debug, Clone)]
pub struct ListPage {
    /// The page's rows.
    pub rows: Vec<StoredInfo>,
    /// How many rows match the filter (every page).
    pub total: u64,
}

/// How many values one KEK version seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct KekUsage {
    /// The KEK version.
    pub kek_version: u32,
    /// Current values sealed under it.
    pub current: u64,
    /// Kept older versions sealed under it.
    pub history: u64,
}

/// An audit event with its chain link (`None` for an event written before links).
#[derive(Debug, Clone)]
pub struct LinkedEvent {
    /// The event.
    pub event: crate::AuditEvent,
    /// Its keyed link to the previous event.
    pub link: Option<Vec<u8>>,
}

/// A page of version ties and the last position read (where the next page starts).
#[derive(Debug, Clone)]
pub struct TiePage {
    /// The ties.
    pub ties: Vec<VersionTie>,
    /// The last position read.
    pub last_position: i64,
}

/// A version row and its position (the row's place in the table, for paging and CAS).
#[derive(Debug, Clone)]
pub struct PlacedVersion {
    /// The row's position.
    pub position: i64,
    /// The row.
    pub row: VersionRow,
}

/// The newest audit event's sequence number and link: where the next event chains on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Its sequence number.
    pub seq: i64,
    /// Its link (`None` for an event written before links).
    pub link: Option<Vec<u8>>,
}

/// An audit event to insert: its sequence number, record and link.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// The sequence number it takes.
    pub seq: i64,
    /// The event.
    pub record: &'a AuditRecord,
    /// Its link to the previous event.
    pub link: Vec<u8>,
}

/// Where a listing's next page starts: after this env and key (the order of a listing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    /// The env of the last row listed.
    pub env: String,
    /// Its key.
    pub key: String,
}

/// The stored form of a token's bound networks (comma-separated) as a list.
pub(crate) fn split_cidrs(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A lease on a dynamic credential, as stored: the plain columns schedule its work, the
/// sealed record (opened by the store under the key, bound to `id`) is the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    /// `database/creds/ROLE/RANDOM`.
    pub id: String,
    /// Issued.
    pub issued: Timestamp,
    /// When it ends (a copy of the sealed record's, for listing).
    pub expires: Timestamp,
    /// `pending` (recorded, the login not yet made), `active` or `revoked`.
    pub state: String,
    /// Failed revocation attempts so far.
    pub attempts: u32,
    /// When the sweeper may next act on it.
    pub next_attempt: Timestamp,
    /// Until when one server instance holds it (0: nobody).
    pub claimed_until: Timestamp,
    /// Why the last revocation attempt failed (an SQLSTATE, never a password).
    pub last_error: Option<String>,
    /// The sealed record.
    pub sealed: Vec<u8>,
}
