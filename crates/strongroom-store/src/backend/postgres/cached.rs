//! Statements through the connection's statement cache.
//!
//! A statement given as text costs two round trips in `tokio-postgres`: one to parse it,
//! one to bind and run it. Through the statement cache of the pooled connection
//! (`prepare_cached`), each statement is parsed once per connection and every later use is
//! one round trip. That matters most under the audit chain's lock, where every round trip
//! of a write is time no other process can append.
//!
//! Only fixed statements go through it. List and audit queries, whose text is built from a
//! request's filters, are sent uncached, so no client can grow a connection's cache.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, Row};

/// `client`, whose statements go through its connection's statement cache.
pub(super) struct Cached<'c, C: ?Sized>(pub(super) &'c C);

impl<C: GenericClient + ?Sized> Cached<'_, C> {
    /// Runs `sql`; the number of rows it changed.
    pub(super) async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error> {
        let statement = self.0.prepare_cached(sql).await?;
        self.0.execute(&statement, params).await
    }

    /// The rows of `sql`.
    pub(super) async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        let statement = self.0.prepare_cached(sql).await?;
        self.0.query(&statement, params).await
    }

    /// The one row of `sql`, if any (more than one is an error).
    pub(super) async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        let statement = self.0.prepare_cached(sql).await?;
        self.0.query_opt(&statement, params).await
    }

    /// The one row of `sql` (none, or more than one, is an error).
    pub(super) async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error> {
        let statement = self.0.prepare_cached(sql).await?;
        self.0.query_one(&statement, params).await
    }
}
