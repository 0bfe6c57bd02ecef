//! Each connection's deadline, from its phase: a stream wrapper ([`Held`]) that fails a
//! read once the deadline passes (hyper then closes the connection), and a service
//! wrapper ([`Marked`]) that tells it when a request's head has arrived and when its
//! answer is ready.
//!
//! | phase | begins | deadline |
//! |---|---|---|
//! | head | accept, or the first byte read while idle (HTTP/1) | `header_read_timeout` after it began |
//! | request | hyper calls the service (the head is parsed) | none here: the router's request timeout |
//! | idle | the last request's answer is ready; every byte written | `idle_timeout` after the last of them |
//!
//! A head whose bytes all arrived with the previous request (pipelining) is parsed without
//! a read, so it is served in the idle phase: it is already complete. On an HTTP/2
//! connection (its first bytes are the client preface) requests are counted, and bytes
//! read while none is open (window updates, pings, a new stream) keep it idle: its frames
//! are not a head that can be dripped (hyper's own header timer never covered HTTP/2).
//! So a client's pings keep an HTTP/2 connection as a request every few minutes would
//! keep an HTTP/1 one: either way it holds one of `max_connections`, and no more.
//!
//! The server answers no protocol upgrade (WebSocket): an upgraded connection's frames
//! would be read as heads here and cut after `header_read_timeout`; one that serves
//! upgrades needs a phase of its own.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use super::ConnectionLimits;

/// Where a connection is between requests (see the module's table).
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Reading a request head that began at this instant.
    Head(Instant),
    /// This many requests are being served (more than one only on HTTP/2).
    Requests(usize),
    /// Waiting for the next request since this instant.
    Idle(Instant),
}

/// One connection's phase, shared by its stream and its service.
#[derive(Debug)]
struct Clock {
    phase: Mutex<Phase>,
    limits: ConnectionLimits,
}

impl Clock {
    fn with<R>(&self, f: impl FnOnce(&mut Phase) -> R) -> R {
        f(&mut self.phase.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A request's head was parsed: it is being served.
    fn request_began(&self) {
        self.with(|phase| {
            *phase = match *phase {
                Phase::Requests(open) => Phase::Requests(open + 1),
                Phase::Head(_) | Phase::Idle(_) => Phase::Requests(1),
            }
        });
    }

    /// A request's answer is ready (or its call was dropped).
    fn request_ended(&self) {
        self.with(|phase| {
            *phase = match *phase {
                Phase::Requests(open) if open > 1 => Phase::Requests(open - 1),
                _ => Phase::Idle(Instant::now()),
            }
        });
    }

    /// Bytes were read: on HTTP/1 a head begins if the connection was idle; on HTTP/2
    /// they are activity.
    fn read(&self, http2: bool) {
        self.with(|phase| {
            if let Phase::Idle(_) = *phase {
                let now = Instant::now();
                *phase = if http2 {
                    Phase::Idle(now)
                } else {
                    Phase::Head(now)
                };
            }
        });
    }

    /// Bytes were written: an idle connection (an answer still streaming) stays alive.
    fn wrote(&self) {
        self.with(|phase| {
            if let Phase::Idle(_) = *phase {
                *phase = Phase::Idle(Instant::now());
            }
        });
    }

    /// When the connection must have made progress by, if there is such a deadline now.
    fn deadline(&self) -> Option<Instant> {
        self.with(|phase| match *phase {
            Phase::Head(began) => Some(began + self.limits.header_read_timeout),
            Phase::Requests(_) => None,
            Phase::Idle(since) => Some(since + self.limits.idle_timeout),
        })
    }
}

/// The HTTP/2 client preface's first bytes: enough to tell it from an HTTP/1 request line.
const HTTP2_PREFACE_START: &[u8; 4] = b"PRI ";

/// What a connection's first bytes say about its protocol.
#[derive(Debug, Clone, Copy)]
enum Protocol {
    /// Fewer than four bytes read so far: this many, all matching the preface.
    Unknown(usize),
    Http1,
    Http2,
}

impl Protocol {
    /// Takes the next bytes read.
    fn sniff(self, bytes: &[u8]) -> Self {
        let Self::Unknown(seen) = self else {
            return self;
        };
        let wanted = &HTTP2_PREFACE_START[seen..];
        let take = wanted.len().min(bytes.len());
        if bytes[..take] != wanted[..take] {
            Self::Http1
        } else if seen + take == HTTP2_PREFACE_START.len() {
            Self::Http2
        } else {
            Self::Unknown(seen + take)
        }
    }
}

/// Wraps one accepted connection: its stream (holding `permit` until it is dropped) and
/// its service, sharing one [`Clock`] that starts in the head phase.
pub(super) fn watch<T, S>(
    stream: T,
    service: S,
    permit: OwnedSemaphorePermit,
    limits: ConnectionLimits,
) -> (Held<T>, Marked<S>) {
    let clock = Arc::new(Clock {
        phase: Mutex::new(Phase::Head(Instant::now())),
        limits,
    });
    let held = Held {
        stream,
        _permit: permit,
        clock: Arc::clone(&clock),
        timer: None,
        protocol: Protocol::Unknown(0),
    };
    (
        held,
        Marked {
            inner: service,
            clock,
        },
    )
}

/// A connection's stream with its permit (returned when the stream is dropped) and its
/// deadline: a read still pending at the deadline fails with `TimedOut`.
pub(crate) struct Held<T> {
    stream: T,
    _permit: OwnedSemaphorePermit,
    clock: Arc<Clock>,
    /// The sleep for the current deadline, made on the first pending read.
    timer: Option<Pin<Box<Sleep>>>,
    protocol: Protocol,
}

impl<T> Held<T> {
    /// Polls the current deadline after a read returned pending: an error once it passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(deadline) = self.clock.deadline() else {
            return Poll::Pending;
        };
        let timer = match &mut self.timer {
            Some(timer) => {
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                timer
            }
            None => self
                .timer
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection deadline passed",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Held<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = &buf.filled()[before..];
                if !read.is_empty() {
                    self.protocol = self.protocol.sniff(read);
                    self.clock.read(matches!(self.protocol, Protocol::Http2));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.poll_deadline(cx),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Held<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.wrote();
        }
        written
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
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.wrote();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A connection's service that moves its [`Clock`] to the request phase when hyper calls
/// it (the head is parsed) and to idle when the answer is ready (or the call is dropped).
#[derive(Clone)]
pub(crate) struct Marked<S> {
    inner: S,
    clock: Arc<Clock>,
}

/// Ends the request's phase when its future ends, however it ends.
struct Serving(Arc<Clock>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

impl<S, R> tower::Service<R> for Marked<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.clock.request_began();
        let serving = Serving(Arc::clone(&self.clock));
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answer = answer.await;
            drop(serving);
            answer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Protocol;

    fn sniff(reads: &[&[u8]]) -> Protocol {
        reads
            .iter()
            .fold(Protocol::Unknown(0), |protocol, read| protocol.sniff(read))
    }

    #[test]
    fn the_preface_is_told_from_a_request_line_even_split_across_reads() {
        assert!(matches!(sniff(&[b"PRI * HTTP/2.0\r\n"]), Protocol::Http2));
        assert!(matches!(sniff(&[b"P", b"RI", b" *"]), Protocol::Http2));
        assert!(matches!(sniff(&[b"POST / HTTP/1.1"]), Protocol::Http1));
        assert!(matches!(sniff(&[b"P", b"U", b"T"]), Protocol::Http1));
        assert!(matches!(sniff(&[b"PR"]), Protocol::Unknown(2)));
        // Decided once: later bytes do not change it.
        assert!(matches!(sniff(&[b"GET ", b"PRI "]), Protocol::Http1));
    }
}
