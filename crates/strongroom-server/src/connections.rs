//! What every connection gets, over plain HTTP or TLS: a deadline for its request head
//! and a cap on how many are open at once, so a client that drips one header byte a
//! second (or opens thousands of idle connections) can not hold the server's sockets.
//!
//! The 30 s request timeout (`Limits::request_timeout`) starts once a request's head has
//! arrived; the head itself has [`ConnectionLimits::header_read_timeout`] (hyper's
//! HTTP/1 header timer, reset for each request of a kept-alive connection). Connections
//! beyond [`ConnectionLimits::max_connections`] are closed at once, before TLS or HTTP.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Per-server connection limits (docs/operations.md, "Connection limits").
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's line and headers (default 10 s).
    pub header_read_timeout: Duration,
    /// Open connections at most; more are closed on accept (default 1024).
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// Applies `limits` to an `axum_server` server: the header timer on its HTTP/1 builder
/// and the cap around its acceptor.
pub(crate) fn limit<A>(
    server: axum_server::Server<A>,
    limits: ConnectionLimits,
) -> axum_server::Server<Capped<A>> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut server = server.map(|inner| Capped { inner, permits });
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    server
}

/// An acceptor that takes a permit per connection (refusing the connection when none is
/// left) and holds it until the connection closes.
#[derive(Clone)]
pub(crate) struct Capped<A> {
    inner: A,
    permits: Arc<Semaphore>,
}

impl<I, S, A> Accept<I, S> for Capped<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Held<A::Stream>;
    type Service = A::Service;
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
        Box::pin(async move {
            let (stream, service) = accepting.await?;
            Ok((
                Held {
                    stream,
                    _permit: permit,
                },
                service,
            ))
        })
    }
}

/// A connection's stream with its permit: the permit returns when the stream is dropped.
pub(crate) struct Held<T> {
    stream: T,
    _permit: OwnedSemaphorePermit,
}

impl<T: AsyncRead + Unpin> AsyncRead for Held<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Held<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
