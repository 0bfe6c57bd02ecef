//! Slow and many connections against a real server on loopback (third attack round): a
//! client dripping its request head one byte at a time is cut when the header deadline
//! passes, and connections beyond the cap are closed at once while the others are served.

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

#[tokio::test]
async fn a_client_dripping_its_headers_is_cut_at_the_header_deadline() {
    let (address, _stop) = start(strongroom_server::ConnectionLimits {
        header_read_timeout: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let mut stream = TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\n")
        .await
        .unwrap();
    // One header byte a second, for up to 20 s: the server must close the connection
    // long before the head is complete (the header never ends).
    let mut cut = false;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if stream.write_all(b"x").await.is_err() {
            cut = true;
            break;
        }
        let mut byte = [0u8; 512];
        let read = tokio::time::timeout(Duration::from_millis(10), stream.read(&mut byte));
        // Closed, reset, or answered (a 408): the server gave up on the head.
        if read.await.is_ok() {
            cut = true;
            break;
        }
    }
    assert!(cut, "a dripping client kept its connection for 20 s");
    assert!(healthy(&address).await, "other clients are served");
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_and_the_others_served() {
    let (address, _stop) = start(strongroom_server::ConnectionLimits {
        max_connections: 3,
        header_read_timeout: Duration::from_secs(60),
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
