//! What every connection gets, over plain HTTP or TLS: a deadline for its request head
//! and a cap on how many are open at once, so a client that drips one header byte a
//! second (or opens thousands of idle connections) can not hold the server's sockets.
//!
//! A connection is always in one of three phases ([`deadlines`]): waiting for a request
//! head ([`ConnectionLimits::header_read_timeout`], from accept or from the head's first
//! byte), serving a request (the 30 s `Limits::request_timeout`), or idle between requests
//! of a kept-alive connection ([`ConnectionLimits::idle_timeout`]). Connections beyond
//! [`ConnectionLimits::max_connections`] are closed at once, before TLS or HTTP.
//!
//! hyper's own header timer is not used: it also runs while a kept-alive connection is
//! idle, so a client reusing its connection just as the timer fired had its request cut
//! without an answer, and it does not run before a new connection's first byte.

mod deadlines;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::sync::Semaphore;

use deadlines::{Held, Marked};

/// Per-server connection limits (docs/operations.md, "Connection limits").
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's line and headers (default 10 s).
    pub header_read_timeout: Duration,
    /// Open connections at most; more are closed on accept (default 1024).
    pub max_connections: usize,
    /// How long a kept-alive connection may wait for its next request (default 5 min).
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Applies `limits` to an `axum_server` server: the cap and the deadlines around its
/// acceptor.
pub(crate) fn limit<A>(
    server: axum_server::Server<A>,
    limits: ConnectionLimits,
) -> axum_server::Server<Capped<A>> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut server = server.map(|inner| Capped {
        inner,
        permits,
        limits,
    });
    // hyper's header timer would also cut idle kept-alive connections (see above).
    server.http_builder().http1().header_read_timeout(None);
    server
}

/// An acceptor that takes a permit per connection (refusing the connection when none is
/// left) and holds it until the connection closes, and gives each connection its
/// deadlines.
#[derive(Clone)]
pub(crate) struct Capped<A> {
    inner: A,
    permits: Arc<Semaphore>,
    limits: ConnectionLimits,
}

impl<I, S, A> Accept<I, S> for Capped<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Held<A::Stream>;
    type Service = Marked<A::Service>;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            // Dropping the stream closes the connection before any byte is read.
            drop(stream);
            return Box::pin(std::future::ready(Err(io::Error::other(
                "connection limit reached",
            ))));
        };
        let accepting = self.inner.accept(stream, service);
        let limits = self.limits;
        Box::pin(async move {
            let (stream, service) = accepting.await?;
            Ok(deadlines::watch(stream, service, permit, limits))
        })
    }
}
