//! Statements through the connection's statement cache, and statements held back to ride
//! with the next one.
//!
//! A statement given as text costs two round trips in `tokio-postgres`: one to parse it,
//! one to bind and run it. Through the statement cache of the pooled connection
//! (`prepare_cached`), each statement is parsed once per connection and every later use is
//! one round trip. That matters most under the audit chain's lock, where every round trip
//! of a write is time no other process can append.
//!
//! Statements whose answer nobody waits for (a savepoint's opening, a history trim, the
//! chain lock before the head is read) are *held*: they are sent just before the next
//! statement, in order, without waiting for each other's answers (`tokio-postgres`
//! pipelines requests sent before their responses are awaited: each is written to the
//! connection when its future is first polled). The server runs them in that order; an
//! error of a held statement is the error of the statement it rode with (the transaction
//! is then aborted, as it would have been). Where the held statements include some of a
//! savepoint already kept, their failure is also recorded (`Cached::poisoning`): only the
//! whole transaction's rollback can undo it exactly.
//!
//! Only fixed statements go through it. List and audit queries, whose text is built from a
//! request's filters, are sent uncached, so no client can grow a connection's cache.

use std::sync::atomic::{AtomicBool, Ordering};

use deadpool_postgres::GenericClient;
use futures_util::future::{join, join_all, BoxFuture, FutureExt as _};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, Row};

/// A statement held back until the next one goes out.
pub(super) enum Held {
    /// A statement without parameters, sent as a simple query (savepoints).
    Simple(&'static str),
    /// A fixed statement and its parameters.
    Statement(&'static str, Vec<Box<dyn ToSql + Send + Sync>>),
}

/// `client`, whose statements go through its connection's statement cache, each preceded
/// by the statements `held` back for it.
pub(super) struct Cached<'c, C: ?Sized> {
    client: &'c C,
    held: Vec<Held>,
    /// Set when a held statement fails, where `held` carries statements of savepoints
    /// already kept (their failure then fails the whole transaction: `tx/mod.rs`).
    poison: Option<&'c AtomicBool>,
}

/// A held statement ready to send (parsed, when it has parameters).
enum Ready<'h> {
    Simple(&'static str),
    Statement(
        tokio_postgres::Statement,
        &'h [Box<dyn ToSql + Send + Sync>],
    ),
}

impl<'c, C: GenericClient + ?Sized> Cached<'c, C> {
    /// `client`, nothing held.
    pub(super) fn new(client: &'c C) -> Self {
        Self::with_held(client, Vec::new())
    }

    /// `client`, its next statement preceded by `held`.
    pub(super) fn with_held(client: &'c C, held: Vec<Held>) -> Self {
        Self {
            client,
            held,
            poison: None,
        }
    }

    /// The same, and `poison` set if any held statement fails (or can not be sent).
    pub(super) fn poisoning(self, poison: &'c AtomicBool) -> Self {
        Self {
            poison: Some(poison),
            ..self
        }
    }

    /// `error`, a held statement's, recorded where the caller asked (`poisoning`).
    fn held_failed(&self, error: Error) -> Error {
        if let Some(poison) = self.poison {
            poison.store(true, Ordering::Release);
        }
        error
    }

    /// Commits the transaction `client` is in, after the held statements (one round trip
    /// for all). An error of a held statement is the answer (its transaction is then
    /// aborted, and PostgreSQL's answer to the `COMMIT` is a rollback).
    pub(super) async fn commit(&self) -> Result<(), Error> {
        self.after_held(self.client.batch_execute("COMMIT")).await
    }

    /// Runs `sql`; the number of rows it changed.
    pub(super) async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error> {
        let statement = self.client.prepare_cached(sql).await?;
        self.after_held(self.client.execute(&statement, params))
            .await
    }

    /// The rows of `sql`.
    pub(super) async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        let statement = self.client.prepare_cached(sql).await?;
        self.after_held(self.client.query(&statement, params)).await
    }

    /// The one row of `sql`, if any (more than one is an error).
    pub(super) async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        let statement = self.client.prepare_cached(sql).await?;
        self.after_held(self.client.query_opt(&statement, params))
            .await
    }

    /// The one row of `sql` (none, or more than one, is an error).
    pub(super) async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error> {
        let statement = self.client.prepare_cached(sql).await?;
        self.after_held(self.client.query_one(&statement, params))
            .await
    }

    /// Sends the held statements alone (one round trip; none when nothing is held).
    pub(super) async fn flush(&self) -> Result<(), Error> {
        self.after_held(async { Ok(()) }).await
    }

    /// The held statements, then `next`, written to the connection in that order before
    /// any answer is awaited; `next`'s answer, or the first error in order.
    async fn after_held<T>(
        &self,
        next: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        if self.held.is_empty() {
            return next.await;
        }
        // Parse first (a cache miss is a round trip of its own): each send below then
        // writes its request on its first poll, and `join_all` polls them in order.
        let mut ready = Vec::with_capacity(self.held.len());
        for held in &self.held {
            ready.push(match held {
                Held::Simple(sql) => Ready::Simple(sql),
                Held::Statement(sql, params) => match self.client.prepare_cached(sql).await {
                    Ok(statement) => Ready::Statement(statement, params),
                    Err(e) => return Err(self.held_failed(e)),
                },
            });
        }
        let sends: Vec<BoxFuture<'_, Result<(), Error>>> = ready
            .iter()
            .map(|statement| match statement {
                Ready::Simple(sql) => self.client.batch_execute(sql).boxed(),
                Ready::Statement(statement, params) => {
                    let params: Vec<&(dyn ToSql + Sync)> = params
                        .iter()
                        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                        .collect();
                    async move { self.client.execute(statement, &params).await.map(drop) }.boxed()
                }
            })
            .collect();
        let (sent, answer) = join(join_all(sends), next).await;
        for outcome in sent {
            outcome.map_err(|e| self.held_failed(e))?;
        }
        answer
    }
}
