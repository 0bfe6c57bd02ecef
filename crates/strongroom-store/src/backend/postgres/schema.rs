//! The PostgreSQL schema: migrations in `migrations/postgres/*.sql`, applied in order at
//! open inside one transaction holding an advisory lock, so two processes opening a fresh
//! database at the same moment apply them once.

use deadpool_postgres::GenericClient as _;

use super::{db, MIGRATION_LOCK};
use crate::{Result, StoreError};

/// Schema migrations, oldest first. Append a file, never edit one.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_initial.sql"),
    include_str!("../../../migrations/postgres/0002_audit_chain.sql"),
    include_str!("../../../migrations/postgres/0003_read_cache_notify.sql"),
    include_str!("../../../migrations/postgres/0004_audit_keyed_chain.sql"),
    include_str!("../../../migrations/postgres/0005_audit_rekey.sql"),
    include_str!("../../../migrations/postgres/0006_version_states.sql"),
    include_str!("../../../migrations/postgres/0007_secret_settings.sql"),
    include_str!("../../../migrations/postgres/0008_token_tags.sql"),
    include_str!("../../../migrations/postgres/0009_token_identity.sql"),
    include_str!("../../../migrations/postgres/0010_token_bound_cidrs.sql"),
    include_str!("../../../migrations/postgres/0011_leases.sql"),
    include_str!("../../../migrations/postgres/0012_tie_updates_notify_nobody.sql"),
    include_str!("../../../migrations/postgres/0013_versions_cascade_by_trigger.sql"),
];

/// The newest schema version this build knows.
pub fn known_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// The schema version of `schema` (0 when it holds no store yet), read without DDL, so a
/// role with row privileges only can check it; a newer schema than this build knows is
/// refused.
pub(super) async fn current_version(client: &tokio_postgres::Client, schema: &str) -> Result<i64> {
    let table = format!("{schema}.strongroom_schema_version");
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .map_err(db)?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let current = client
        .query_opt(&format!("SELECT version FROM {table}"), &[])
        .await
        .map_err(db)?
        .map_or(0, |r| r.get(0));
    let known = known_version();
    if current > known {
        return Err(StoreError::Database(format!(
            "the database schema is version {current}, newer than this build understands ({known}); upgrade strongroom"
        )));
    }
    Ok(current)
}

/// A failed schema change, explained: a role without the privilege is told what to run.
pub(super) fn migration_error(error: &tokio_postgres::Error, current: i64) -> StoreError {
    if error.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) {
        return StoreError::Config(format!(
            "the database schema is at version {current} and this build needs version {}, \
             but this role may not change the schema: run `strongroom migrate` as the schema's \
             owner (docs/operations.md, \"Roles and grants\")",
            known_version()
        ));
    }
    StoreError::Database(format!("schema migration failed: {error}"))
}

/// Applies the migrations the database lacks; refuses a database newer than this build.
pub(super) async fn migrate(client: &mut deadpool_postgres::Object) -> Result<()> {
    let tx = client.transaction().await.map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS strongroom_schema_version (version BIGINT NOT NULL)",
    )
    .await
    .map_err(|e| migration_error(&e, 0))?;
    let current: i64 = tx
        .query_opt("SELECT version FROM strongroom_schema_version", &[])
        .await
        .map_err(db)?
        .map_or(0, |r| r.get(0));
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if current > known {
        tx.rollback().await.map_err(db)?;
        return Err(StoreError::Database(format!(
            "the database schema is version {current}, newer than this build understands ({known}); upgrade strongroom"
        )));
    }
    for sql in &MIGRATIONS[usize::try_from(current).unwrap_or(0)..] {
        tx.batch_execute(sql)
            .await
            .map_err(|e| migration_error(&e, current))?;
    }
    tx.execute("DELETE FROM strongroom_schema_version", &[])
        .await
        .map_err(db)?;
    tx.execute(
        "INSERT INTO strongroom_schema_version (version) VALUES ($1)",
        &[&known],
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)
}
