//! The store's errors: distinct, clear, and free of secret values.

use crate::SecretId;

/// Result alias for the store.
pub type Result<T> = core::result::Result<T, StoreError>;

/// Everything a store operation can report. Names (namespace, env, key) are not secret
/// and appear in messages; values, keys and tokens never do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No secret under that identity (after fallback, for reads).
    #[error("secret {0} not found")]
    NotFound(SecretId),

    /// The secret exists but its expiry has passed.
    #[error("secret {id} expired at {expired_at}")]
    Expired {
        /// The expired secret.
        id: SecretId,
        /// When it expired (RFC 3339).
        expired_at: String,
    },

    /// A version that was soft-deleted (undelete it to read it) or destroyed (gone).
    #[error("secret {id} version {version} was {}", if *.destroyed { "destroyed" } else { "deleted (undelete it to read it)" })]
    VersionUnavailable {
        /// The secret.
        id: SecretId,
        /// The version.
        version: u32,
        /// Destroyed for good, rather than soft-deleted.
        destroyed: bool,
    },

    /// A cap on live tokens is reached (a lease-count quota): try again once some end.
    #[error("quota {quota:?} is reached: at most {max} live tokens")]
    QuotaReached {
        /// The quota's name (the operator's).
        quota: String,
        /// Its maximum.
        max: u64,
    },

    /// No active API token has that name.
    #[error("no active token named {name:?}")]
    TokenNotFound {
        /// The name asked for.
        name: String,
    },

    /// A version of a secret that is not (or no longer) kept.
    #[error("secret {id} has no version {version}")]
    VersionNotFound {
        /// The secret.
        id: SecretId,
        /// The version asked for.
        version: u32,
    },

    /// The row exists but its KEK version is not in the configured key ring.
    #[error(
        "secret {id} is sealed under key version {version}, which is not configured \
         (add it to STRONGROOM_KEYS)"
    )]
    KeyVersionUnavailable {
        /// The secret.
        id: SecretId,
        /// The missing KEK version.
        version: u32,
    },

    /// The stored value failed authentication: altered, moved, or sealed by another key.
    #[error("integrity check failed for secret {0}: the stored value was altered or moved")]
    Integrity(SecretId),

    /// The audit log or a record tied to it fails its keyed checks (an event without a
    /// link, a malformed anchor, ...): it was edited without the key.
    #[error("audit log integrity: {0}")]
    AuditIntegrity(String),

    /// At open: a configured KEK has a different fingerprint from the one that wrote the
    /// database under the same version.
    #[error(
        "wrong key: key version {version} has fingerprint {configured}, but this database \
         was written with fingerprint {recorded}; check the configured key"
    )]
    WrongKey {
        /// The KEK version.
        version: u32,
        /// Fingerprint of the configured key.
        configured: String,
        /// Fingerprint recorded in the database.
        recorded: String,
    },

    /// Audit links, ties or the anchor are keyed under a KEK version the ring lacks (a
    /// retired key): they can not be checked without it.
    #[error(
        "the audit log's older entries are keyed under key version {version}, which the key ring \
         lacks; keep that key in STRONGROOM_KEYS (after the active one) to verify them"
    )]
    AuditKeyUnavailable {
        /// The missing KEK version.
        version: u32,
    },

    /// The key ring's custodian (an HSM over PKCS#11) refused or could not be reached: a
    /// wrong PIN, a missing token or key, a ring it does not open. Nothing was written.
    #[error("{0}")]
    KeyCustody(String),

    /// At open: rows use KEK versions that the key ring lacks.
    #[error(
        "the key ring lacks key version(s) {} used by stored secrets; configure them in \
         STRONGROOM_KEYS (first entry active), or rotate with the old key still present",
        .versions.iter().map(|(v, fp)| match fp { Some(fp) => format!("{v} (fingerprint {fp})"), None => v.to_string() }).collect::<Vec<_>>().join(", ")
    )]
    MissingKeyVersions {
        /// Each missing version with the fingerprint the database recorded for it.
        versions: Vec<(u32, Option<String>)>,
    },

    /// A name (key, env, namespace) breaks the configured rules.
    #[error("invalid {what}: {reason}")]
    InvalidName {
        /// `key`, `env` or `namespace`.
        what: &'static str,
        /// The rule broken.
        reason: String,
    },

    /// The value is larger than the configured maximum.
    #[error("value is {size} bytes; the maximum is {max} bytes (STRONGROOM_MAX_VALUE_SIZE)")]
    ValueTooLarge {
        /// Size given.
        size: usize,
        /// Configured maximum.
        max: usize,
    },

    /// Some other argument is unacceptable (metadata not a JSON object, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The configuration can not be used (bad database URL, ...).
    #[error("configuration: {0}")]
    Config(String),

    /// The database failed. The message comes from the driver and never holds values.
    #[error("database error: {0}")]
    Database(String),

    /// The database driver failed; the driver's error is kept as the source. The message
    /// (the error and its causes) never holds values.
    #[error("database error: {message}")]
    Driver {
        /// The driver's error and its causes, `: `-separated.
        message: String,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// The write conflicts with what is stored; `kind` says how, for callers that answer
    /// differently (Vault's check-and-set words, a retry).
    #[error("conflict: {message}")]
    Conflict {
        /// What the write conflicts with.
        kind: ConflictKind,
        /// One line for people (never a value).
        message: String,
    },

    /// A cryptographic operation failed outside a specific secret (key setup, ...).
    #[error(transparent)]
    Crypto(#[from] strongroom_crypto::Error),

    /// A file the store reads or writes itself (a backup, the database file's mode) could
    /// not be used; the I/O error is kept as the source.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// An invariant of this code broke (a defect, not a fault of the input or the
    /// database): reported as an internal error, never as "unavailable".
    #[error("internal defect: {0}")]
    Defect(&'static str),

    /// One failure answered to every member of a group commit: the same error, its kind
    /// and source kept, shared.
    #[error("{0}")]
    Shared(#[source] std::sync::Arc<StoreError>),
}

/// What a write conflicts with. Matching on it with no catch-all arm makes a new kind a
/// compile error in every mapping, as with [`ErrorKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConflictKind {
    /// Check-and-set: the secret is not at the version the write expects.
    CasMismatch,
    /// The secret requires check-and-set and the write named no version.
    CasRequired,
    /// The name is taken (a token name, compared ignoring case).
    NameTaken,
    /// The target of a copy, move or initialisation exists (`force` overwrites a secret).
    TargetExists,
    /// What the write read changed before it could land (another process); try again.
    ChangedMeanwhile,
    /// A lock's value is no longer kept (it moved on, or the lock was edited).
    LockMoved,
}

impl StoreError {
    /// What the write conflicts with, for a [`ErrorKind::Conflict`] error.
    pub fn conflict_kind(&self) -> Option<ConflictKind> {
        match self {
            Self::Conflict { kind, .. } => Some(*kind),
            Self::Shared(error) => error.conflict_kind(),
            _ => None,
        }
    }

    /// An I/O failure while `context` (naming the path), keeping `source`.
    #[cfg(any(test, feature = "sqlite"))]
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// A conflict of `kind`, with its message.
    pub(crate) fn conflict(kind: ConflictKind, message: impl Into<String>) -> Self {
        Self::Conflict {
            kind,
            message: message.into(),
        }
    }
}

/// What kind of failure an error is: what a caller decides on (an HTTP status, an exit
/// code, a retry). Every [`StoreError`] has exactly one kind; matching on the kind with no
/// catch-all arm makes a new kind a compile error in every mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No such secret or version.
    NotFound,
    /// The secret exists but has expired.
    Gone,
    /// The input breaks a rule (name, size, shape).
    Invalid,
    /// The configuration can not be used (database URL, password parameters, ...).
    Config,
    /// The write conflicts with what is stored.
    Conflict,
    /// A configured cap is reached (live tokens under a quota): retry later.
    Limited,
    /// The key ring does not fit the data: a wrong key, key versions missing at open, the
    /// key custodian refusing.
    WrongKey,
    /// One stored value is sealed under a KEK version the ring lacks (the row exists; add
    /// that key to read it).
    KeyUnavailable,
    /// Stored data or the audit log failed its integrity checks.
    Integrity,
    /// The database could not be reached or failed.
    Unavailable,
    /// Anything else: a defect or an environment failure (no randomness, ...).
    Internal,
}

impl StoreError {
    /// A driver failure, keeping `error` as the source.
    pub fn driver(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        let mut message = error.to_string();
        let mut cause = error.source();
        while let Some(next) = cause {
            message.push_str(": ");
            message.push_str(&next.to_string());
            cause = next.source();
        }
        Self::Driver {
            message,
            source: Box::new(error),
        }
    }

    /// This error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound(_) | Self::VersionNotFound { .. } | Self::TokenNotFound { .. } => {
                ErrorKind::NotFound
            }
            Self::Expired { .. } | Self::VersionUnavailable { .. } => ErrorKind::Gone,
            Self::InvalidName { .. } | Self::ValueTooLarge { .. } | Self::InvalidInput(_) => {
                ErrorKind::Invalid
            }
            Self::Config(_) | Self::Crypto(strongroom_crypto::Error::Password { .. }) => {
                ErrorKind::Config
            }
            Self::Conflict { .. } => ErrorKind::Conflict,
            Self::QuotaReached { .. } => ErrorKind::Limited,
            Self::KeyVersionUnavailable { .. } => ErrorKind::KeyUnavailable,
            Self::WrongKey { .. }
            | Self::MissingKeyVersions { .. }
            | Self::AuditKeyUnavailable { .. }
            | Self::KeyCustody(_) => ErrorKind::WrongKey,
            Self::Integrity(_) | Self::AuditIntegrity(_) => ErrorKind::Integrity,
            Self::Database(_) | Self::Driver { .. } => ErrorKind::Unavailable,
            Self::Crypto(_) | Self::Io { .. } | Self::Defect(_) => ErrorKind::Internal,
            Self::Shared(error) => error.kind(),
        }
    }

    /// Maps a crypto error met while opening `id` to the store's distinct read errors.
    pub(crate) fn opening(id: &SecretId, error: strongroom_crypto::Error) -> Self {
        match error {
            strongroom_crypto::Error::KeyVersionUnavailable { version } => {
                Self::KeyVersionUnavailable {
                    id: id.clone(),
                    version,
                }
            }
            strongroom_crypto::Error::Integrity
            | strongroom_crypto::Error::Truncated { .. }
            | strongroom_crypto::Error::UnknownFormat { .. }
            | strongroom_crypto::Error::Malformed { .. } => Self::Integrity(id.clone()),
            other => Self::Crypto(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_defect_is_internal_and_a_shared_failure_keeps_its_kind() {
        assert_eq!(StoreError::Defect("x").kind(), ErrorKind::Internal);
        let conflict = StoreError::conflict(ConflictKind::CasMismatch, "at version 2");
        let shared = StoreError::Shared(std::sync::Arc::new(conflict));
        assert_eq!(shared.kind(), ErrorKind::Conflict);
        assert_eq!(shared.conflict_kind(), Some(ConflictKind::CasMismatch));
        assert_eq!(shared.to_string(), "conflict: at version 2");
        let io = StoreError::io(
            "backup: cannot create /x",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert_eq!(io.kind(), ErrorKind::Internal);
        assert!(std::error::Error::source(&io).is_some());
    }
}
