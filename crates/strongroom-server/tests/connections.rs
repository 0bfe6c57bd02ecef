//! Slow and many connections against a real server on loopback (third attack round): a
//! client dripping its request head one byte at a time is cut when the header deadline
//! passes, and connections beyond the cap are closed at once while the others are served.
//!
//! A kept-alive connection waiting for its next request is idle, not slow: it keeps the
//! idle deadline (5 minutes by default), and the head deadline starts again with the next
//! request's first byte. (hyper's own header timer also ran while a connection was idle,
//! so a client reusing a connection after 10 s raced the server's close and got
//! `RemoteDisconnected`, a flake in the database suite.)

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

async fn start(
    limits: strongroom_server::ConnectionLimits,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let router = strongroom_server::router(
        strongroom_server::AppState {
            tokens: strongroom_store::tokens::Tokens::admin_only(
                std::sync::Arc::new(
                    strongroom_store::backend::sqlite::SqliteBackend::open(
                        tempfile::tempdir().unwrap().keep().join("c.db"),
                    )
                    .unwrap(),
                ),
                None,
            )
            .unwrap(),
            store: None,
            gateway: None,
            metrics: None,
        },
        strongroom_server::Limits::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(strongroom_server::serve_with(
        listener,
        router,
        limits,
        async {
            let _ = stopped.await;
        },
    ));
    (address, stop)
}

/// Limits with a 1 s head deadline, the rest as default.
fn one_second_heads() -> strongroom_server::ConnectionLimits {
    strongroom_server::ConnectionLimits {
        header_read_timeout: Duration::from_secs(1),
        ..Default::default()
    }
}

/// A server with `limits`, and one connection to it.
async fn connect(
    limits: strongroom_server::ConnectionLimits,
) -> (TcpStream, String, tokio::sync::oneshot::Sender<()>) {
    let (address, stop) = start(limits).await;
    let stream = TcpStream::connect(&address).await.unwrap();
    (stream, address, stop)
}

/// Whether a health request on a new connection is answered.
async fn healthy(address: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(address).await else {
        return false;
    };
    let request = b"GET /api/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    if stream.write_all(request).await.is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    answer.starts_with(b"HTTP/1.1 200")
}

/// Sends a request line, then one header byte every `every`, `times` times: whether the
/// server gave up on the head meanwhile (closed, reset, or answered with a 408).
async fn drip_a_head(stream: &mut TcpStream, every: Duration, times: usize) -> bool {
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\n")
        .await
        .unwrap();
    for _ in 0..times {
        tokio::time::sleep(every).await;
        if stream.write_all(b"x").await.is_err() {
            return true;
        }
        let mut byte = [0u8; 512];
        let read = tokio::time::timeout(Duration::from_millis(10), stream.read(&mut byte));
        if read.await.is_ok() {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn a_client_dripping_its_headers_is_cut_at_the_header_deadline() {
    let (mut stream, address, _stop) = connect(one_second_heads()).await;
    // One header byte a second, for up to 20 s: the server must close the connection
    // long before the head is complete (the header never ends).
    let cut = drip_a_head(&mut stream, Duration::from_secs(1), 20).await;
    assert!(cut, "a dripping client kept its connection for 20 s");
    assert!(healthy(&address).await, "other clients are served");
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_and_the_others_served() {
    let (address, _stop) = start(strongroom_server::ConnectionLimits {
        max_connections: 3,
        header_read_timeout: Duration::from_secs(60),
        ..Default::default()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(&address).await.unwrap());
    }
    // Let the server accept the three.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !healthy(&address).await,
        "a fourth connection is closed at once"
    );
    drop(idle.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(healthy(&address).await, "a freed slot serves again");
}

const HEALTH: &[u8] = b"GET /api/health HTTP/1.1\r\nhost: x\r\n\r\n";

/// Sends a health request on `stream` and reads its answer (status line and headers,
/// with the small body): whether it was a 200.
async fn ask(stream: &mut TcpStream) -> bool {
    if stream.write_all(HEALTH).await.is_err() {
        return false;
    }
    let mut answer = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer)).await;
    matches!(read, Ok(Ok(n)) if n > 0 && answer.starts_with(b"HTTP/1.1 200"))
}

/// Whether the server closed `stream` within `within` (end of stream or reset).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 64];
    matches!(
        tokio::time::timeout(within, stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn a_kept_alive_connection_idle_past_the_header_deadline_is_still_served() {
    let (mut stream, _address, _stop) = connect(one_second_heads()).await;
    assert!(ask(&mut stream).await);
    // Idle three header deadlines: a client's pool reuses the connection now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        ask(&mut stream).await,
        "an idle kept-alive connection was closed at the header deadline"
    );
}

#[tokio::test]
async fn a_kept_alive_connection_dripping_its_next_head_is_cut() {
    let (mut stream, _address, _stop) = connect(one_second_heads()).await;
    assert!(ask(&mut stream).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // One byte every 300 ms: each byte is activity, but the head never completes.
    let cut = drip_a_head(&mut stream, Duration::from_millis(300), 30).await;
    assert!(
        cut,
        "a dripping head on a kept-alive connection was never cut"
    );
}

#[tokio::test]
async fn a_new_connection_that_sends_nothing_is_closed_at_the_header_deadline() {
    let (mut stream, _address, _stop) = connect(one_second_heads()).await;
    assert!(
        closed_within(&mut stream, Duration::from_secs(10)).await,
        "a silent new connection was kept past the header deadline"
    );
}

#[tokio::test]
async fn an_idle_connection_is_closed_at_the_idle_deadline() {
    let (address, _stop) = start(strongroom_server::ConnectionLimits {
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
        ..Default::default()
    })
    .await;
    let mut stream = TcpStream::connect(&address).await.unwrap();
    assert!(ask(&mut stream).await);
    assert!(
        closed_within(&mut stream, Duration::from_secs(15)).await,
        "an idle connection outlived its idle deadline"
    );
}

/// One health request on an HTTP/2 connection: whether it was a 200.
async fn ask_http2(sender: &mut h2::client::SendRequest<bytes::Bytes>) -> bool {
    let request = http::Request::get("http://x/api/health").body(()).unwrap();
    let Ok((answer, _)) = sender.send_request(request, true) else {
        return false;
    };
    matches!(answer.await, Ok(a) if a.status() == 200)
}

#[tokio::test]
async fn an_idle_http2_connection_is_kept_past_the_header_deadline_and_closed_at_the_idle_one() {
    let (address, _stop) = start(strongroom_server::ConnectionLimits {
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(6),
        ..Default::default()
    })
    .await;
    let stream = TcpStream::connect(&address).await.unwrap();
    let (sender, connection) = h2::client::handshake(stream).await.unwrap();
    let mut connection = tokio::spawn(connection);
    let mut sender = sender.ready().await.unwrap();
    assert!(ask_http2(&mut sender).await);
    // Past the header deadline: the client's window updates after the answer are not a
    // head that stalled.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !connection.is_finished(),
        "an idle HTTP/2 connection was cut"
    );
    let mut sender = sender.ready().await.unwrap();
    assert!(ask_http2(&mut sender).await);
    let closed = tokio::time::timeout(Duration::from_secs(15), &mut connection).await;
    assert!(
        closed.is_ok(),
        "an idle HTTP/2 connection outlived its idle deadline"
    );
}
