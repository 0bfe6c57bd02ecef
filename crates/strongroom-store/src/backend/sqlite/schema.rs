//! The SQLite schema: migrations in `migrations/sqlite/*.sql`, applied in order at open.

use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

use super::db;
use crate::{Result, StoreError};

/// Schema migrations, oldest first. Append a file, never edit one.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/sqlite/0001_initial.sql"),
    include_str!("../../../migrations/sqlite/0002_api_tokens.sql"),
    include_str!("../../../migrations/sqlite/0003_audit_chain.sql"),
    include_str!("../../../migrations/sqlite/0004_audit_keyed_chain.sql"),
    include_str!("../../../migrations/sqlite/0005_audit_rekey.sql"),
    include_str!("../../../migrations/sqlite/0006_version_states.sql"),
    include_str!("../../../migrations/sqlite/0007_secret_settings.sql"),
    include_str!("../../../migrations/sqlite/0008_token_tags.sql"),
    include_str!("../../../migrations/sqlite/0009_token_identity.sql"),
    include_str!("../../../migrations/sqlite/0010_token_bound_cidrs.sql"),
    include_str!("../../../migrations/sqlite/0011_leases.sql"),
];

/// The SQL of every migration, oldest first (for upgrade tests).
#[doc(hidden)]
pub fn migrations() -> &'static [&'static str] {
    MIGRATIONS
}

/// The newest schema version this build knows.
pub fn schema_version() -> usize {
    MIGRATIONS.len()
}

/// Applies the migrations a database lacks; refuses a database newer than this build.
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    let known = schema_version();
    let current: usize = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(db)?;
    if current > known {
        return Err(StoreError::Database(format!(
            "the database schema is version {current}, newer than this build understands \
             ({known}); upgrade strongroom"
        )));
    }
    let migrations = Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect());
    migrations
        .to_latest(conn)
        .map_err(|e| StoreError::Database(format!("schema migration failed: {e}")))
}
