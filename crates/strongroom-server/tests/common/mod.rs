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

/// A real server on loopback over a fresh SQLite file, with a bootstrap admin token.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The server's tokens (to create scoped ones).
    pub tokens: strongroom_store::tokens::Tokens,
    /// The server's store (to seed and to check what a request did).
    pub store: strongroom_store::Store,
    /// A client for requests.
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    /// A new scoped token (one scope), its secret.
    pub async fn token(&self, name: &str, scope: &str) -> String {
        use strongroom_crypto::secrecy::ExposeSecret as _;
        let scope = strongroom_store::tokens::Scope::parse(scope).unwrap();
        let (_, token) = self.tokens.create(name, false, &[scope]).await.unwrap();
        token.expose_secret().to_owned()
    }

    /// `METHOD path` with a bearer token and an optional JSON body: the status and the
    /// JSON answer (null when it is not JSON).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }
}

/// Starts [`Server`]: key ring of `key_byte` repeated, admin token `admin`, the given
/// surfaces.
pub async fn start_sqlite(
    admin: &str,
    key_byte: u8,
    surfaces: strongroom_server::Surfaces,
) -> Server {
    start_sqlite_with(admin, key_byte, surfaces, false).await
}

/// [`start_sqlite`], with `/metrics` served when `metrics` is set.
#[allow(dead_code)]
pub async fn start_sqlite_with(
    admin: &str,
    key_byte: u8,
    surfaces: strongroom_server::Surfaces,
    metrics: bool,
) -> Server {
    use std::sync::Arc;
    use strongroom_crypto::secrecy::SecretString;
    use strongroom_crypto::{Key, KeyRing};
    use strongroom_store::{KeySource, Store, StoreConfig};
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(
        strongroom_store::backend::sqlite::SqliteBackend::open(dir.path().join("server.db"))
            .unwrap(),
    );
    let store = Store::open(
        backend,
        KeySource::Ring(KeyRing::single(&Key::from_bytes(&[key_byte; 32]))),
        StoreConfig::default(),
    )
    .await
    .unwrap();
    let tokens =
        strongroom_store::tokens::Tokens::new(&store, Some(&SecretString::from(admin))).unwrap();
    let router = strongroom_server::router_with(
        strongroom_server::AppState {
            tokens: tokens.clone(),
            store: Some(store.clone().into()),
            gateway: None,
            metrics: metrics.then(|| Arc::new(strongroom_server::Metrics::new())),
        },
        strongroom_server::Limits::default(),
        surfaces,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(strongroom_server::serve(
        listener,
        router,
        std::future::pending(),
    ));
    Server {
        base,
        tokens,
        store,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

/// Runs a Python suite of `tests/clients/` against `base` with the admin token `admin`,
/// and asserts it passed (its last line names it).
#[allow(dead_code)]
pub fn python_suite(script: &str, base: &str, admin: &str, passed: &str) {
    let path = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("python3")
        .args([path.as_str(), base, admin])
        .output()
        .expect("python3 with hvac and PyJWT (cargo xtask ci installs them)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(passed),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
