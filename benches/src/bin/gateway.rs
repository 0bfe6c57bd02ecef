//! Gateway round trip against a direct request to the same loopback upstream, same run.
//!
//! ```text
//! cargo run --release -p strongroom-benches --bin gateway -- [--requests 3000] [--upstream-delay-ms 0]
//!     [--clients 64 --seconds 10] [--postgres postgres://USER@HOST:PORT/DB]
//! ```
//!
//! With `--postgres`, the store is a fresh database on that server instead of a SQLite
//! file. Either way the tool then breaks an audited read down at one caller, in process
//! and interleaved: the token check, the fetch (decryption included), the durable `read`
//! event, and the same database's bare durable commit of one row (SQLite: a scratch file
//! with the store's settings, WAL and `synchronous=FULL`; PostgreSQL: one autocommitted
//! `INSERT` on the same server), so what the store adds to the commit it cannot avoid is
//! on one line.
//!
//! Requests alternate between direct and gateway so both see the same machine state.
//! Prints p50 and p99 of each and the gateway's overhead. With `--clients N`, it then
//! measures throughput with N concurrent connections: direct to the upstream for
//! `--seconds`, then through the gateway for as long, and prints the ratio. The gateway path includes the
//! token check (a scoped token, looked up in the database), the secret's resolution from
//! the store (decryption included), and the second HTTP hop.

// A measuring tool: a panic is the failure report; the casts are of counts.
#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss
)]

/// The allocator the `strongroom` binary ships with, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use strongroom_crypto::secrecy::{ExposeSecret as _, SecretString};
use strongroom_crypto::{Key, KeyRing};
use strongroom_gateway::{Gateway, GatewayConfig};
use strongroom_server::{AppState, Limits};
use strongroom_store::backend::sqlite::SqliteBackend;
use strongroom_store::tokens::{Scope, Tokens};
use strongroom_store::{KeySource, SecretId, SetRequest, Store, StoreConfig};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let requests = arg("--requests", 3000);
    let concurrent = arg("--clients", 0);
    let seconds = arg("--seconds", 10);
    let delay = Duration::from_millis(arg("--upstream-delay-ms", 0));

    let upstream = axum::Router::new().fallback(move || async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        "{\"ok\":true}"
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, upstream).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = std::env::args().collect();
    let postgres = args
        .windows(2)
        .find(|w| w[0] == "--postgres")
        .map(|w| w[1].clone());
    let postgres = match postgres {
        Some(server) => Some(
            strongroom_benches::fresh_postgres_database(
                &server,
                &format!("sr_gateway_{}", std::process::id()),
            )
            .await,
        ),
        None => None,
    };
    let backend: Arc<dyn strongroom_store::backend::Backend> = match &postgres {
        Some(url) => strongroom_store::open_backend(url).await.unwrap(),
        None => Arc::new(SqliteBackend::open(dir.path().join("gw.db")).unwrap()),
    };
    let store = Store::open(
        backend,
        KeySource::Ring(KeyRing::single(&Key::generate().unwrap())),
        StoreConfig::default(),
    )
    .await
    .unwrap();
    let tokens = Tokens::new(&store, None).unwrap();
    let (_, token) = tokens
        .create("bench", false, &[Scope::parse("default/prod").unwrap()])
        .await
        .unwrap();
    store
        .set(
            &SecretId::new("default", "prod", "API_KEY"),
            SetRequest::value("sk-bench-0123456789"),
        )
        .await
        .unwrap();
    let config = GatewayConfig::from_toml(&format!(
        "[[routes]]\nname = \"up\"\nupstream = \"{upstream_url}\"\nenv = \"prod\"\n[routes.headers]\nAuthorization = \"Bearer {{secret.API_KEY}}\"\n"
    ))
    .unwrap();
    let gateway = Gateway::new(config, Arc::new(store.clone())).unwrap();
    let admin = tokens.create("bench-admin", true, &[]).await.unwrap().1;
    let breakdown = Breakdown {
        tokens: tokens.clone(),
        store: store.clone(),
        id: SecretId::new("default", "prod", "API_KEY"),
        token: SecretString::from(admin.expose_secret().to_owned()),
    };
    let state = AppState {
        tokens,
        store: Some(store.into()),
        gateway: Some(Arc::new(gateway)),
        metrics: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(strongroom_server::serve(
        listener,
        strongroom_server::router(state, Limits::default()),
        std::future::pending(),
    ));

    let client = reqwest::Client::new();
    let direct_url = format!("{upstream_url}/v1/models");
    let gateway_url = format!("{server}/gateway/up/v1/models");
    let health_url = format!("{server}/api/health");
    let read_url = format!("{server}/api/secrets/API_KEY?env=prod");
    let bearer = SecretString::from(token.expose_secret().to_owned());
    // Four kinds of request, alternating so each sees the same machine state: direct to
    // the upstream; through the gateway; and, to show where the gateway's time goes, a
    // request to the server that touches no database, and an audited read of the same
    // secret (fetch, durable `read` event, answer) with an admin token.
    let kinds = [
        (direct_url.as_str(), "sk-direct"),
        (gateway_url.as_str(), bearer.expose_secret()),
        (health_url.as_str(), ""),
        (read_url.as_str(), admin.expose_secret()),
    ];
    let mut samples: [Vec<Duration>; 4] = Default::default();
    for i in 0..requests + 200 {
        for (kind, (url, token)) in kinds.iter().enumerate() {
            let took = timed_get(&client, url, token).await;
            if i >= 200 {
                samples[kind].push(took);
            }
        }
    }
    for kind in &mut samples {
        kind.sort_unstable();
    }
    let [direct, via, health, read] = &samples;
    let (d50, d99, g50, g99) = (
        percentile(direct, 0.5),
        percentile(direct, 0.99),
        percentile(via, 0.5),
        percentile(via, 0.99),
    );
    println!("upstream delay {delay:?}, {requests} requests each (after 200 warm-up)");
    println!(
        "direct   p50 {:>9.1} µs   p99 {:>9.1} µs",
        d50.as_secs_f64() * 1e6,
        d99.as_secs_f64() * 1e6
    );
    println!(
        "gateway  p50 {:>9.1} µs   p99 {:>9.1} µs",
        g50.as_secs_f64() * 1e6,
        g99.as_secs_f64() * 1e6
    );
    for (name, sorted) in [("server, no database", health), ("audited read", read)] {
        println!(
            "{name:<20} p50 {:>9.1} µs   p99 {:>9.1} µs",
            percentile(sorted, 0.5).as_secs_f64() * 1e6,
            percentile(sorted, 0.99).as_secs_f64() * 1e6
        );
    }
    println!(
        "gateway overhead at p50: +{:.1} µs ({:.1}%), at p99: +{:.1} µs",
        (g50.as_secs_f64() - d50.as_secs_f64()) * 1e6,
        (g50.as_secs_f64() / d50.as_secs_f64() - 1.0) * 100.0,
        (g99.as_secs_f64() - d99.as_secs_f64()) * 1e6
    );
    // Where the overhead goes, against the disk's flush: the promise (the `gateway_read`
    // event is durable before the secret leaves) costs at least one fsync.
    let fsync_us = strongroom_benches::fsync_latency_us(dir.path());
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let overhead = micros(g50) - micros(d50);
    let leg = micros(percentile(health, 0.5));
    let durable_read = micros(percentile(read, 0.5)) - leg;
    println!(
        "one fsync beside the database {fsync_us:.0} µs: overhead = fsync + {:.0} µs; \
         a second HTTP leg (a no-database request) {leg:.0} µs, \
         an audited read beyond it {durable_read:.0} µs (fsync + {:.0} µs)",
        overhead - fsync_us,
        durable_read - fsync_us
    );
    println!(
        "database: {}",
        if postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite (WAL, synchronous=FULL)"
        }
    );
    let bare = match &postgres {
        Some(url) => BareCommit::postgres(url).await,
        None => BareCommit::sqlite(dir.path()),
    };
    // On a runtime worker, as the server's handlers run (the main thread is not one).
    let beyond_leg = micros(percentile(read, 0.5)) - leg;
    let rounds = requests.min(2000);
    tokio::spawn(async move { breakdown.report(&bare, rounds, beyond_leg).await })
        .await
        .unwrap();
    if concurrent > 0 {
        let bearer = bearer.expose_secret().to_owned();
        let direct = throughput(&direct_url, "sk-direct", concurrent, seconds).await;
        let via = throughput(&gateway_url, &bearer, concurrent, seconds).await;
        println!(
            "{concurrent} connections, {seconds} s each: direct {direct:.0} requests/s, gateway {via:.0} requests/s = {:.2}x direct",
            via / direct
        );
    }
}

/// Requests per second `clients` concurrent clients (each its own connection) get from
/// `GET url` with `token` as bearer in `seconds`, each answer checked.
async fn throughput(url: &str, token: &str, clients: u64, seconds: u64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..clients {
        let client = reqwest::Client::new();
        let (url, token) = (url.to_owned(), token.to_owned());
        handles.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                timed_get(&client, &url, &token).await;
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for handle in handles {
        total += handle.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// How long one `GET url` with `token` as bearer takes, its whole answer read; panics
/// unless it succeeds with a body.
async fn timed_get(client: &reqwest::Client, url: &str, token: &str) -> Duration {
    let start = Instant::now();
    let response = client.get(url).bearer_auth(token).send().await.unwrap();
    assert!(response.status().is_success(), "a request failed");
    assert!(
        !response.bytes().await.unwrap().is_empty(),
        "an empty answer"
    );
    start.elapsed()
}

/// An audited read's parts at one caller, in process.
struct Breakdown {
    tokens: Tokens,
    store: Store,
    id: SecretId,
    token: SecretString,
}

impl Breakdown {
    /// Times each part `rounds` times, interleaved with `bare`'s commit, and prints the
    /// medians against `beyond_leg` (the HTTP audited read beyond a no-database request).
    async fn report(&self, bare: &BareCommit, rounds: u64, beyond_leg: f64) {
        let mut parts: [Vec<Duration>; 5] = Default::default();
        for _ in 0..rounds {
            let whole = Instant::now();
            let start = Instant::now();
            assert!(self
                .tokens
                .authenticate(self.token.expose_secret())
                .await
                .unwrap()
                .is_some());
            parts[0].push(start.elapsed());
            let start = Instant::now();
            let read = self.store.get(&self.id).await.unwrap();
            parts[1].push(start.elapsed());
            let start = Instant::now();
            let secret = read.commit().await.unwrap();
            parts[2].push(start.elapsed());
            parts[4].push(whole.elapsed());
            assert!(!secret.value.expose_secret().is_empty());
            parts[3].push(bare.commit().await);
        }
        let [token, fetch, event, commit, whole] = parts.map(|mut v| {
            v.sort_unstable();
            percentile(&v, 0.5).as_secs_f64() * 1e6
        });
        println!(
            "in process, medians of {rounds}: token check {token:.1} µs, fetch {fetch:.1} µs, \
             durable read event {event:.1} µs, the three in a row {whole:.1} µs; the database's \
             bare durable commit of one row {commit:.1} µs"
        );
        println!(
            "an audited read beyond a no-database request, {beyond_leg:.0} µs = the three in \
             process {whole:.0} (bare commit {commit:.0} + {:.0} more) + HTTP handling and \
             wake-ups {:.0} µs",
            whole - commit,
            beyond_leg - whole
        );
    }
}

/// The database's own durable commit of one small row, as a client that keeps no audit
/// would pay it: the floor of an audited read's event.
enum BareCommit {
    Sqlite(std::sync::Mutex<rusqlite::Connection>),
    Postgres(tokio_postgres::Client, tokio_postgres::Statement),
}

impl BareCommit {
    /// A scratch SQLite file in `dir` with the store's durability and an audit-shaped table.
    fn sqlite(dir: &std::path::Path) -> Self {
        let conn = rusqlite::Connection::open(dir.join("bare.db")).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn.execute_batch(
            "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL,
                 actor TEXT NOT NULL, key TEXT NOT NULL, link BLOB NOT NULL);
             CREATE INDEX events_key ON events (key, id);
             CREATE INDEX events_time ON events (time);",
        )
        .unwrap();
        Self::Sqlite(std::sync::Mutex::new(conn))
    }

    /// A scratch table in the database at `url`.
    async fn postgres(url: &str) -> Self {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(
                "CREATE TABLE bare_events (id BIGSERIAL PRIMARY KEY, time BIGINT NOT NULL,
                     actor TEXT NOT NULL, key TEXT NOT NULL, link BYTEA NOT NULL)",
            )
            .await
            .unwrap();
        let insert = client
            .prepare(
                "INSERT INTO bare_events (time, actor, key, link) VALUES ($1, 'bench', 'API_KEY', '\\x00')",
            )
            .await
            .unwrap();
        Self::Postgres(client, insert)
    }

    /// One committed row; how long it took.
    async fn commit(&self) -> Duration {
        let start = Instant::now();
        match self {
            Self::Sqlite(conn) => {
                let conn = conn.lock().unwrap();
                let mut insert = conn
                    .prepare_cached(
                        "INSERT INTO events (time, actor, key, link) VALUES (?1, 'bench', 'API_KEY', randomblob(32))",
                    )
                    .unwrap();
                insert.execute([start.elapsed().as_nanos() as i64]).unwrap();
            }
            Self::Postgres(client, insert) => {
                client
                    .execute(insert, &[&(start.elapsed().as_nanos() as i64)])
                    .await
                    .unwrap();
            }
        }
        start.elapsed()
    }
}
