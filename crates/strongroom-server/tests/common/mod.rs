//! Helpers shared by the server's test binaries.

#![allow(clippy::unwrap_used, dead_code)] // tests: a panic is the failure report; not every binary uses every helper

/// Sends `METHOD path` exactly as written (no client-side normalisation of the path) to
/// `base`, with one extra header line (`Name: value`), and returns the status and the
/// whole response text.
pub async fn raw_request(base: &str, method: &str, path: &str, header: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{header}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}
