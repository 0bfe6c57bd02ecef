//! The storage interface the [`Store`](crate::Store) runs on, and its implementations.
//!
//! A backend does row I/O and nothing else: it reads rows ([`Backend`], in five small
//! traits grouped as the rows are) and, inside one write transaction, reads and writes
//! single rows ([`WriteTx`], the same five groups). Every rule (which
//! version a write gets, what is audited, how events are chained, what history is kept,
//! what expires, what retention may cut) lives in the store, once, and runs inside that
//! transaction. A backend never sees a key or a plaintext: sealing, opening, naming rules
//! and fallback live in the store.
//!
//! A third backend implements these traits (the list on [`Backend`] is the checklist) and
//! proves its conformance by invoking `strongroom_store::backend_conformance_suite!`
//! (feature `testing`).

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;

use crate::{AuditEvent, AuditQuery, Result, SecretId, Timestamp};

mod deferred;
mod lock_holds;
mod rows;
pub mod sql;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "postgres")]
pub mod read_cache;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "postgres")]
pub(crate) mod transport;

pub(crate) use deferred::provisional_index;
pub use deferred::{DeferredAudit, FinalTie};
#[cfg(feature = "postgres")]
pub(crate) use lock_holds::LockHolds;
pub use lock_holds::{LockHoldStats, LOCK_HOLD_BOUNDS_US};
pub use rows::{
    AuditRecord, ChainHead, Change, Changes, History, KekUsage, KeptValue, LeaseRow, LinkedEvent,
    ListCursor, ListFilter, ListPage, NewEvent, NewVersion, PlacedVersion, RecordedKey,
    RotationCandidate, SecretRow, SecretSettings, StoredInfo, StoredSecret, StoredValue,
    StoredVersion, TiePage, TokenRecord, UpsertedSecret, VersionChange, VersionRow, VersionState,
    VersionTie,
};

/// The future a transaction's work returns: `Ok` commits, an error rolls back.
pub type TxFuture<'t> = Pin<Box<dyn Future<Output = Result<()>> + Send + 't>>;

/// The work of one write transaction: row operations on the transaction it is given. What
/// the work produces it keeps itself (the store's typed wrapper puts it in a slot the
/// caller reads after the commit), so nothing is type-erased across the backend.
///
/// **The rule the backends rely on**: the work awaits only the row operations of the
/// transaction it is given, never another future (a lock, a channel, a timer, I/O of its
/// own). The SQLite backend runs the work to completion on its writer thread with a
/// blocking executor, where every row operation is ready at once; a work that waited on
/// anything else would stall that thread. The store keeps everything else (sealing,
/// chaining, deciding) synchronous inside the work, and the conformance suite runs every
/// store operation through it.
pub type TxWork = Box<dyn for<'t> FnOnce(&'t mut dyn WriteTx) -> TxFuture<'t> + Send>;

/// Counters of a read cache, for tests and operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadCacheStats {
    /// Fetches answered from the cache.
    pub hits: u64,
    /// Fetches that went to the database.
    pub misses: u64,
    /// Invalidations received (one per notification, own writes included).
    pub invalidations: u64,
    /// Whether the listening connection is up (the cache is in use only then).
    pub live: bool,
}

/// Connections of a pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open.
    pub size: usize,
    /// Open and idle.
    pub available: usize,
    /// The most it may open.
    pub max: usize,
}

/// What a backend reports about itself, for readiness and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendStats {
    /// The read cache, when there is one.
    pub read_cache: Option<ReadCacheStats>,
    /// The connection pool, when there is one.
    pub pool: Option<PoolStats>,
    /// How long write transactions held the audit chain's lock, where it is a lock
    /// between processes (PostgreSQL).
    pub chain_lock: Option<LockHoldStats>,
}

/// A backend: the door to write transactions, the five groups of row reads, and what it
/// says about itself. Implementing it is a checklist: [`MetaReads`], [`SecretReads`],
/// [`VersionReads`], [`AuditReads`], [`TokenReads`] here, and for its transaction type
/// [`MetaTx`], [`SecretTx`], [`VersionTx`], [`AuditTx`], [`TokenTx`] (and optionally
/// savepoints, [`WriteTx`]); then `strongroom_store::backend_conformance_suite!` proves it.
#[async_trait]
pub trait Backend:
    MetaReads + SecretReads + VersionReads + AuditReads + TokenReads + Send + Sync + 'static
{
    /// Short name for messages, e.g. `sqlite`.
    fn name(&self) -> &'static str;

    /// Runs `work` in one write transaction: it commits when `work` returns `Ok`, and
    /// rolls back (nothing written) when it returns an error. See [`TxWork`] for the one
    /// rule the work keeps.
    async fn transaction(&self, work: TxWork) -> Result<()>;

    /// How many group commits of one store may run at once (default one). More than one
    /// only where transactions run side by side and a group spends most of its time
    /// waiting on round trips: PostgreSQL. Such a backend must also keep row locks of
    /// concurrent groups from deadlocking, which the store arranges (`store/batch.rs`).
    fn commit_lanes(&self) -> usize {
        1
    }

    /// The schema version this backend's database is at after opening (the newest this
    /// build knows: opening migrates or refuses); `None` for a backend without versions.
    fn schema_version(&self) -> Option<i64> {
        None
    }

    /// One round trip to the database (readiness).
    async fn ping(&self) -> Result<()> {
        self.meta("ping").await.map(drop)
    }

    /// A consistent copy of the whole database into a new file at `destination` (mode
    /// 0600), taken while others keep writing. Backends that cannot (PostgreSQL: use
    /// `pg_dump`) answer a configuration error saying so.
    async fn backup_to(&self, destination: &std::path::Path) -> Result<()> {
        let _ = destination;
        Err(crate::StoreError::Config(format!(
            "backup: the {} backend is backed up with its own tools (docs/operations.md)",
            self.name()
        )))
    }

    /// Replaces this (empty) database with the copy at `source`, made by
    /// [`Backend::backup_to`]. The caller checks that the database is empty.
    async fn restore_from(&self, source: &std::path::Path) -> Result<()> {
        let _ = source;
        Err(crate::StoreError::Config(format!(
            "restore: the {} backend is restored with its own tools (docs/operations.md)",
            self.name()
        )))
    }

    /// The database server's clock minus this host's, in ms, for a backend on another
    /// host (`None`: same clock, as for SQLite).
    async fn clock_skew_ms(&self) -> Option<Result<i64>> {
        None
    }

    /// Counters and pool use (none by default).
    fn stats(&self) -> BackendStats {
        BackendStats::default()
    }
}

/// Reads of store-wide rows: settings, the keys that wrote the database, and whether
/// any lease's work is due.
#[async_trait]
pub trait MetaReads: Send + Sync {
    /// A store-wide setting (password parameters, the rotation cursor, ...).
    async fn meta(&self, name: &str) -> Result<Option<String>>;

    /// Every key that has written to this database.
    async fn recorded_keys(&self) -> Result<Vec<RecordedKey>>;

    /// The KEK versions used by stored values (current and kept versions).
    async fn kek_versions_in_use(&self) -> Result<Vec<u32>>;

    /// Whether a lease not revoked has its next attempt and its claim passed at `now`
    /// (what [`LeaseTx::due_leases`] would return some of), read without a write.
    async fn any_lease_due(&self, now: Timestamp) -> Result<bool>;

    /// [`LeaseTx::leases_with_prefix`], read without a write.
    async fn lease_rows(&self, prefix: &str) -> Result<Vec<LeaseRow>>;

    /// [`LeaseTx::lease`], read without a write.
    async fn lease_row(&self, id: &str) -> Result<Option<LeaseRow>>;
}

/// Reads of secret rows and their current values.
#[async_trait]
pub trait SecretReads: Send + Sync {
    /// A secret's attributes and current value.
    async fn fetch(&self, id: &SecretId) -> Result<Option<StoredSecret>>;

    /// The secret's own settings (`None` when the secret does not exist).
    async fn settings(&self, id: &SecretId) -> Result<Option<SecretSettings>>;

    /// A page of secrets' attributes and the total count (see [`sql::list`]).
    async fn list(&self, filter: &ListFilter) -> Result<ListPage>;
}

/// Reads of version rows: kept values, history, and what a key rotation would touch.
#[async_trait]
pub trait VersionReads: Send + Sync {
    /// A kept version's value.
    async fn fetch_version(&self, id: &SecretId, version: u32) -> Result<Option<KeptValue>>;

    /// The current version and the kept versions, newest first; `None` if no secret.
    async fn history(&self, id: &SecretId) -> Result<Option<History>>;

    /// Version rows not on `target` (only those on `from` if given), after `after`.
    async fn rotation_candidates(
        &self,
        target: u32,
        from: Option<u32>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<RotationCandidate>>;

    /// How many version rows a rotation to `target` would touch.
    async fn count_rotation_candidates(&self, target: u32, from: Option<u32>) -> Result<u64>;

    /// How many values every KEK version in use seals.
    async fn rotation_status(&self) -> Result<Vec<KekUsage>>;

    /// Stored versions after position `after`, with their audit ties, and the last
    /// position read (for the next page).
    async fn version_ties(&self, after: i64, limit: usize) -> Result<TiePage>;
}

/// Reads of the audit log.
#[async_trait]
pub trait AuditReads: Send + Sync {
    /// Audit events, newest first (see [`sql::audit_events`]).
    async fn audit_events(&self, query: &AuditQuery, limit: usize) -> Result<Vec<AuditEvent>>;

    /// Audit events after sequence number `after`, oldest first, with their chain links.
    async fn audit_links(&self, after: i64, limit: usize) -> Result<Vec<LinkedEvent>>;

    /// The event with sequence number `seq`, with its link.
    async fn audit_event_at(&self, seq: i64) -> Result<Option<LinkedEvent>>;
}

/// Reads of API token rows.
#[async_trait]
pub trait TokenReads: Send + Sync {
    /// The token with this public id.
    async fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>>;

    /// Every token, oldest first.
    async fn tokens(&self) -> Result<Vec<TokenRecord>>;
}

/// Row operations inside one write transaction: the five groups, and savepoints. Rows a
/// method locks stay locked until the transaction ends; nothing is visible to others
/// before it commits.
#[async_trait]
pub trait WriteTx: MetaTx + SecretTx + VersionTx + AuditTx + TokenTx + LeaseTx + Send {
    /// Marks a point this transaction can roll back to ([`WriteTx::savepoint_end`]), so
    /// several callers' writes can share one transaction (group commit) while a failing
    /// one undoes only its own. `false` (the default): not supported, and every write then
    /// gets a transaction of its own.
    async fn savepoint(&mut self) -> Result<bool> {
        Ok(false)
    }

    /// Ends the savepoint of [`WriteTx::savepoint`]: kept (`keep`) or rolled back to.
    async fn savepoint_end(&mut self, keep: bool) -> Result<()> {
        let _ = keep;
        Err(crate::StoreError::Defect("savepoint_end without savepoint"))
    }

    /// Asks this transaction to hold audit appends back to its end ([`DeferredAudit`]):
    /// `true` where the chain's lock is shared with other processes and worth holding for
    /// as short a time as possible (PostgreSQL). `false` (the default): appends go to the
    /// log at once, as on SQLite, whose one writer holds the database anyway.
    fn defer_audit(&mut self) -> bool {
        false
    }

    /// The appends held back, when [`WriteTx::defer_audit`] said yes; it must mark and
    /// roll back with the transaction's savepoints.
    fn deferred_audit(&mut self) -> Option<&mut DeferredAudit> {
        None
    }

    /// Gives version rows their final audit ties, in one statement where the backend
    /// can. Only called on a backend that defers (the default refuses).
    async fn retie_versions(&mut self, ties: &[FinalTie]) -> Result<()> {
        let _ = ties;
        Err(crate::StoreError::Defect(
            "retie_versions on a backend that does not defer audit appends",
        ))
    }
}

/// Store-wide rows inside a transaction.
#[async_trait]
pub trait MetaTx: Send {
    /// A store-wide setting.
    async fn meta(&mut self, name: &str) -> Result<Option<String>>;

    /// Stores `value` under `name` unless present; returns what is stored.
    async fn init_meta(&mut self, name: &str, value: &str) -> Result<String>;

    /// Replaces (`Some`) or removes (`None`) a setting.
    async fn set_meta(&mut self, name: &str, value: Option<&str>) -> Result<()>;

    /// Records `fingerprint` for KEK `version` unless one is recorded; returns the
    /// recorded one.
    async fn record_key(
        &mut self,
        version: u32,
        fingerprint: &str,
        now: Timestamp,
    ) -> Result<String>;
}

/// Secret rows inside a transaction.
#[async_trait]
pub trait SecretTx: Send {
    /// Creates the secret at version 1 (with `new_row_id` and `changes` over the
    /// defaults), or bumps an existing one's version by one (applying `changes`); either
    /// way the row is locked. One statement, so concurrent writers of one secret queue.
    async fn upsert_secret(
        &mut self,
        id: &SecretId,
        new_row_id: &str,
        changes: &Changes,
        now: Timestamp,
    ) -> Result<UpsertedSecret>;

    /// Locks and returns the secret's row.
    async fn lock_secret(&mut self, id: &SecretId) -> Result<Option<SecretRow>>;

    /// Applies `changes` to a locked row and returns its attributes.
    async fn update_secret(
        &mut self,
        row: &SecretRow,
        changes: &Changes,
        now: Timestamp,
    ) -> Result<StoredInfo>;

    /// Deletes a locked row and every version of it.
    async fn delete_secret(&mut self, row: &SecretRow) -> Result<()>;

    /// Gives a locked row another identity (a move); its versions stay with it. The
    /// caller re-seals them, since values are bound to the identity.
    async fn rename_secret(&mut self, row: &SecretRow, to: &SecretId) -> Result<()>;

    /// A locked row's own settings (the defaults when it has none).
    async fn settings_of(&mut self, row: &SecretRow) -> Result<SecretSettings>;

    /// Replaces a locked row's own settings (the defaults remove them).
    async fn set_settings(&mut self, row: &SecretRow, settings: SecretSettings) -> Result<()>;

    /// Locks and returns every secret whose expiry is before `before`.
    async fn expired_secrets(&mut self, before: Timestamp) -> Result<Vec<SecretRow>>;
}

/// Version rows inside a transaction.
#[async_trait]
pub trait VersionTx: Send {
    /// Every kept version of a locked row, with its position, oldest first.
    async fn versions_of(&mut self, row: &SecretRow) -> Result<Vec<PlacedVersion>>;

    /// Applies `change` to version `version` of a locked row; false when it does not
    /// apply (already deleted, not deleted, already destroyed). Destroying erases the
    /// sealed bytes and keyed hash.
    async fn change_version(
        &mut self,
        row: &SecretRow,
        version: u32,
        change: VersionChange,
        now: Timestamp,
    ) -> Result<bool>;

    /// Inserts a version row, after deleting the row's versions numbered
    /// [`NewVersion::trim_through`] and below.
    async fn insert_version(&mut self, version: NewVersion<'_>) -> Result<()>;

    /// Deletes the versions of `row` numbered `through` and below.
    async fn trim_versions(&mut self, row: &SecretRow, through: i64) -> Result<()>;

    /// Replaces the value of the version row at `position` if its stored bytes are still
    /// `expected` (compare-and-swap); false if they changed.
    async fn swap_version_value(
        &mut self,
        position: i64,
        expected: &[u8],
        new: &StoredValue,
    ) -> Result<bool>;

    /// Version rows without an audit tie (written before schema 4), with their positions.
    async fn untied_versions(&mut self) -> Result<Vec<PlacedVersion>>;

    /// Replaces a version row's value and ties it to audit event `seq` with `tag`.
    async fn retie_version(
        &mut self,
        position: i64,
        new: &StoredValue,
        seq: i64,
        tag: &[u8],
    ) -> Result<()>;

    /// Up to `limit` version ties after position `after`, and the last position read.
    async fn version_ties(&mut self, after: i64, limit: usize) -> Result<TiePage>;

    /// Replaces the audit tie tag of the version row at `position`.
    async fn retag_version(&mut self, position: i64, tag: &[u8]) -> Result<()>;
}

/// The audit log inside a transaction.
#[async_trait]
pub trait AuditTx: Send {
    /// Locks the audit log for appending until the transaction ends, and returns its
    /// newest event's sequence number and link.
    async fn lock_audit_head(&mut self) -> Result<Option<ChainHead>>;

    /// Inserts an audit event at sequence number `seq`.
    async fn insert_event(&mut self, seq: i64, record: &AuditRecord, link: &[u8]) -> Result<()>;

    /// Inserts consecutive audit events (a group commit's), in order. The default inserts
    /// them one by one; a backend with round trips inserts them in one statement.
    async fn insert_events(&mut self, events: &[NewEvent<'_>]) -> Result<()> {
        for event in events {
            self.insert_event(event.seq, event.record, &event.link)
                .await?;
        }
        Ok(())
    }

    /// Up to `limit` events after sequence number `after`, oldest first, with their links
    /// (inside the transaction, for re-keying the chain).
    async fn audit_links(&mut self, after: i64, limit: usize) -> Result<Vec<LinkedEvent>>;

    /// Replaces the link of event `seq` (re-keying the chain under a new key).
    async fn relink_event(&mut self, seq: i64, link: &[u8]) -> Result<()>;

    /// The sequence number of the oldest event stamped at or after `time`.
    async fn first_event_since(&mut self, time: Timestamp) -> Result<Option<i64>>;

    /// The newest event numbered `seq` or below, with its link.
    async fn event_at_or_before(&mut self, seq: i64) -> Result<Option<ChainHead>>;

    /// Deletes the events numbered `seq` and below (retention); returns how many.
    async fn delete_events_through(&mut self, seq: i64) -> Result<u64>;

    /// The events the schema-4 migration set aside, oldest first.
    async fn legacy_events(&mut self) -> Result<Vec<AuditRecord>>;

    /// Deletes the events the schema-4 migration set aside.
    async fn clear_legacy_events(&mut self) -> Result<()>;
}

/// Lease rows inside a transaction (leases are few and written often: read through the
/// writer).
#[async_trait]
pub trait LeaseTx: Send {
    /// Inserts a lease; false (nothing written) when its id is taken.
    async fn insert_lease(&mut self, lease: &LeaseRow) -> Result<bool>;

    /// The lease `id`.
    async fn lease(&mut self, id: &str) -> Result<Option<LeaseRow>>;

    /// Leases whose id starts with `prefix`, in id order, revoked ones included.
    async fn leases_with_prefix(&mut self, prefix: &str) -> Result<Vec<LeaseRow>>;

    /// Up to `limit` leases not revoked whose `next_attempt` and claim have passed at
    /// `now`, soonest first.
    async fn due_leases(&mut self, now: Timestamp, limit: u32) -> Result<Vec<LeaseRow>>;

    /// Writes `new` over the lease while it still holds `expected` (every column): false
    /// (nothing written) when another writer changed it meanwhile.
    async fn update_lease(&mut self, expected: &LeaseRow, new: &LeaseRow) -> Result<bool>;
}

/// API token rows inside a transaction.
#[async_trait]
pub trait TokenTx: Send {
    /// Inserts a token; false (nothing written) when its id is taken or its name is,
    /// compared case-insensitively (ASCII).
    async fn insert_token(&mut self, token: &TokenRecord) -> Result<bool>;

    /// Writes the fields of a token that change after creation (revocation, expiry, uses
    /// made, tag) from `new`, only while the row of `expected.id` still holds `expected`'s
    /// (compare-and-swap: a renewal, a use and a revocation never overwrite each other);
    /// false (nothing written) otherwise or if there is no such row.
    async fn update_token(&mut self, expected: &TokenRecord, new: &TokenRecord) -> Result<bool>;

    /// How many tokens are live at `now` (not revoked, not expired, uses left) among
    /// those issued through `method` (all when `None`) by `creator` (all when `None`):
    /// the count a lease-count quota caps. Counted under the audit chain's lock by the
    /// caller, so two creations can not both take the last place.
    async fn count_live_tokens(
        &mut self,
        method: Option<&str>,
        creator: Option<&str>,
        now: Timestamp,
    ) -> Result<u64>;
}
