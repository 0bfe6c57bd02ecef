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
//! Every accepted socket gets `TCP_NODELAY`, as Go's `net/http` (Vault) and most HTTP
//! servers set it: hyper and TLS write an answer in one or more writes already sized to
//! go out, and Nagle's algorithm would hold a small last write until the client acknowledged
//! the one before it, which a client that delays its acknowledgements does for up to 40 ms.
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
use tokio::net::TcpStream;
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

impl<S, A> Accept<TcpStream, S> for Capped<A>
where
    A: Accept<TcpStream, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Held<A::Stream>;
    type Service = Marked<A::Service>;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            // Dropping the stream closes the connection before any byte is read.
            drop(stream);
            return Box::pin(std::future::ready(Err(io::Error::other(
                "connection limit reached",
            ))));
        };
        if let Err(error) = stream.set_nodelay(true) {
            // The connection still works, only with Nagle's algorithm.
            tracing::debug!(%error, "TCP_NODELAY could not be set");
        }
        let accepting = self.inner.accept(stream, service);
        let limits = self.limits;
        Box::pin(async move {
            let (stream, service) = accepting.await?;
            Ok(deadlines::watch(stream, service, permit, limits))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An inner acceptor that reports what it was given.
    #[derive(Clone)]
    struct Inspect;
    impl<S: Send + 'static> Accept<TcpStream, S> for Inspect {
        type Stream = TcpStream;
        type Service = S;
        type Future = std::future::Ready<io::Result<(TcpStream, S)>>;
        fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
            assert!(stream.nodelay().unwrap(), "TCP_NODELAY is not set");
            std::future::ready(Ok((stream, service)))
        }
    }

    /// An accepted connection has `TCP_NODELAY` (the kernel's default is off), and it is
    /// set before the inner acceptor (TLS) sees the stream.
    #[tokio::test]
    async fn an_accepted_connection_does_not_wait_for_acknowledgements() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let _client = TcpStream::connect(address).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert!(!accepted.nodelay().unwrap(), "the kernel's default changed");

        let capped = Capped {
            inner: Inspect,
            permits: Arc::new(Semaphore::new(1)),
            limits: ConnectionLimits::default(),
        };
        let (held, _) = capped.accept(accepted, ()).await.unwrap();
        drop(held);
    }
}
