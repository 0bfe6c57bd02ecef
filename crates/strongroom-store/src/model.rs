//! The store's data types: identities, requests, results, events.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use crate::action::Action;

use secrecy::SecretSlice;
use serde::Serialize;
use strongroom_crypto::secrecy;

/// The identity of a secret: `(namespace, env, key)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct SecretId {
    /// Tenant or owner; default `default`.
    pub namespace: String,
    /// Environment; default `global`.
    pub env: String,
    /// The secret's name.
    pub key: String,
}

impl SecretId {
    /// Builds an identity from its three parts.
    pub fn new(
        namespace: impl Into<String>,
        env: impl Into<String>,
        key: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            env: env.into(),
            key: key.into(),
        }
    }

    /// The crypto context (associated data) for this identity.
    pub(crate) fn context(&self) -> strongroom_crypto::Context {
        strongroom_crypto::Context::secret(&self.namespace, &self.env, &self.key)
    }
}

impl core::fmt::Display for SecretId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.env, self.key)
    }
}

/// What a `set` does to a secret's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiry {
    /// Keep the current expiry (none for a new secret).
    #[default]
    Keep,
    /// Never expire.
    Never,
    /// Expire this long from now.
    In(Duration),
    /// Expire at this instant (Unix milliseconds).
    At(i64),
}

/// A value to write, with its optional attributes. `None` keeps the current attribute
/// on overwrite.
#[derive(Default)]
pub struct SetRequest {
    /// The plaintext value.
    pub value: SecretSlice<u8>,
    /// Human description (not secret).
    pub description: Option<String>,
    /// Free-form JSON object (not secret).
    pub metadata: Option<serde_json::Value>,
    /// Kind of secret, e.g. `api_key`, `password` (not secret).
    pub kind: Option<String>,
    /// Expiry change.
    pub expiry: Expiry,
    /// Check-and-set: the write lands only if the secret's current version is this (`0`:
    /// only if it does not exist yet); otherwise [`StoreError::Conflict`] and nothing is
    /// written.
    ///
    /// [`StoreError::Conflict`]: crate::StoreError::Conflict
    pub expected_version: Option<u32>,
}

impl SetRequest {
    /// A request that sets only the value.
    pub fn value(value: impl Into<Vec<u8>>) -> Self {
        Self {
            value: SecretSlice::from(value.into()),
            ..Self::default()
        }
    }
}

impl core::fmt::Debug for SetRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SetRequest")
            .field("value", &"[REDACTED]")
            .field("description", &self.description)
            .field("kind", &self.kind)
            .field("expiry", &self.expiry)
            .field("expected_version", &self.expected_version)
            .finish_non_exhaustive()
    }
}

/// Changes to a secret's attributes that leave its value and version alone.
#[derive(Debug, Clone, Default)]
pub struct MetaUpdate {
    /// New description.
    pub description: Option<String>,
    /// New metadata object.
    pub metadata: Option<serde_json::Value>,
    /// New kind.
    pub kind: Option<String>,
    /// Expiry change.
    pub expiry: Expiry,
}

/// The outcome of a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteOutcome {
    /// The secret's public row id.
    pub id: String,
    /// The version now current.
    pub version: u32,
    /// Whether the secret was created (rather than updated).
    pub created: bool,
}

/// A secret read with its plaintext.
pub struct Secret {
    /// The identity that served the read (after fallback: `id.env` is the serving env).
    pub id: SecretId,
    /// The env asked for.
    pub requested_env: String,
    /// The plaintext.
    pub value: SecretSlice<u8>,
    /// Current version number.
    pub version: u32,
    /// Attributes.
    pub info: SecretInfo,
}

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Secret")
            .field("id", &self.id)
            .field("requested_env", &self.requested_env)
            .field("value", &"[REDACTED]")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Secret {
    /// What an audit event of this read records (no value).
    pub fn access(&self) -> Access {
        Access {
            id: self.id.clone(),
            version: self.version,
            kek_version: self.info.kek_version,
        }
    }
}

/// Which value a plaintext use touched, for its audit event: identity (serving env),
/// version and KEK version. Holds no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The identity that served the read.
    pub id: SecretId,
    /// Its version.
    pub version: u32,
    /// The KEK version of the value.
    pub kek_version: u32,
}

/// The non-secret attributes of a secret, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct SecretInfo {
    /// Public row id.
    pub id: String,
    /// Namespace.
    pub namespace: String,
    /// Env.
    pub env: String,
    /// Key.
    pub key: String,
    /// Always a mask; never reveals a character of the value.
    pub masked_value: String,
    /// Description.
    pub description: String,
    /// Metadata object, if any.
    pub metadata: Option<serde_json::Value>,
    /// Kind.
    pub kind: String,
    /// Current version.
    pub version: u32,
    /// KEK version of the current value.
    pub kek_version: u32,
    /// Expiry, if any.
    pub expires_at: Option<Timestamp>,
    /// `active`, `expired`, `deleted` or `destroyed` (the current version's).
    pub state: State,
    /// Creation time.
    pub created: Timestamp,
    /// Last update.
    pub updated: Timestamp,
}

/// Whether a secret can be read: the one state every surface shows (list, the API's
/// `details=true`, the console, `run`, `lock`, exports) and acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Readable.
    Active,
    /// Past its expiry.
    Expired,
    /// Its current version was soft-deleted (undelete it, or roll back, to read it again).
    Deleted,
    /// Its current version was destroyed (its sealed bytes erased).
    Destroyed,
}

impl State {
    /// The state's name on every surface.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Deleted => "deleted",
            Self::Destroyed => "destroyed",
        }
    }
}

/// The mask shown instead of any value.
pub const MASK: &str = "********";

/// A list query.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Namespace (default `default`).
    pub namespace: Option<String>,
    /// Only this env.
    pub env: Option<String>,
    /// Only keys starting with this prefix.
    pub prefix: Option<String>,
    /// Only secrets in this state.
    pub state: Option<State>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<usize>,
    /// Continue after this cursor (from a previous page).
    pub cursor: Option<String>,
    /// Skip this many rows (for page-numbered APIs); ignored when a cursor is given.
    pub offset: Option<usize>,
}

/// One page of results.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Total matching rows (all pages).
    pub total: u64,
    /// Cursor for the next page, if there is one.
    pub next_cursor: Option<String>,
}

/// One kept version of a secret.
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    /// Version number.
    pub version: u32,
    /// KEK version of this version's value.
    pub kek_version: u32,
    /// When it was written.
    pub created: Timestamp,
    /// Who wrote it.
    pub actor: String,
    /// Whether it is the current version.
    pub current: bool,
    /// When it was soft-deleted (no read returns it until it is undeleted).
    pub deleted: Option<Timestamp>,
    /// Whether its sealed bytes were destroyed for good.
    pub destroyed: bool,
}

/// An append-only audit event. Never holds a value.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    /// Sequence number (increasing).
    pub id: i64,
    /// When.
    pub time: Timestamp,
    /// Who.
    pub actor: String,
    /// What.
    pub action: Action,
    /// Namespace.
    pub namespace: String,
    /// Env.
    pub env: String,
    /// Key.
    pub key: String,
    /// Secret version concerned, if any.
    pub version: Option<u32>,
    /// KEK version concerned, if any.
    pub kek_version: Option<u32>,
}

/// An audit query.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this env.
    pub env: Option<String>,
    /// Only this key.
    pub key: Option<String>,
    /// Only this action.
    pub action: Option<Action>,
    /// Only this actor (`token:NAME`, `cli:USER`, `library`).
    pub actor: Option<String>,
    /// Only events at or after this instant (Unix milliseconds).
    pub since_ms: Option<i64>,
    /// Only events before this instant (Unix milliseconds).
    pub until_ms: Option<i64>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<usize>,
    /// Events older than this id (newest first paging).
    pub before_id: Option<i64>,
}

/// Progress of a key rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RotationProgress {
    /// The active KEK version rows are moved to.
    pub target_version: u32,
    /// Secrets re-wrapped so far in this run.
    pub rotated: u64,
    /// Secrets skipped because a concurrent write changed them first.
    pub skipped: u64,
    /// Secrets still on other versions when the run started.
    pub total: u64,
}

/// How many secrets (current values and kept versions) sit on each KEK version.
#[derive(Debug, Clone, Serialize)]
pub struct RotationStatus {
    /// The active KEK version.
    pub active_version: u32,
    /// `(kek_version, current values, kept versions)`.
    pub by_version: Vec<crate::backend::KekUsage>,
    /// The cursor a resumed rotation continues from, if one is pending.
    pub pending_cursor: Option<String>,
}

/// Current time in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An instant, stored as Unix milliseconds; shown and serialized as RFC 3339 (UTC, with
/// milliseconds). Formatting happens only when the time is displayed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self(now_ms())
    }

    /// Unix milliseconds.
    pub fn unix_ms(self) -> i64 {
        self.0
    }
}

/// Stored as the integer column it is (Unix milliseconds).
#[cfg(feature = "sqlite")]
impl rusqlite::types::ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::from(self.0))
    }
}

#[cfg(feature = "sqlite")]
impl rusqlite::types::FromSql for Timestamp {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        i64::column_result(value).map(Self)
    }
}

/// Stored as the `BIGINT` column it is (Unix milliseconds).
#[cfg(feature = "postgres")]
impl tokio_postgres::types::ToSql for Timestamp {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut tokio_postgres::types::private::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <i64 as tokio_postgres::types::ToSql>::accepts(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}

#[cfg(feature = "postgres")]
impl<'a> tokio_postgres::types::FromSql<'a> for Timestamp {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        i64::from_sql(ty, raw).map(Self)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <i64 as tokio_postgres::types::FromSql>::accepts(ty)
    }
}

impl core::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&format_time(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Unix milliseconds as RFC 3339 with milliseconds, UTC.
pub fn format_time(ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(time).to_string()
}

/// Parses a duration such as `90d`, `12h`, `30m`, `1w` (humantime syntax).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|_| "expected a duration such as 30m, 12h, 90d or 1w".to_owned())
}
