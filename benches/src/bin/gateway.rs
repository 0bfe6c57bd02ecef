//! Gateway round trip against a direct request to the same loopback upstream, same run.
//!
//! ```text
//! cargo run --release -p strongroom-benches --bin gateway -- [--requests 3000] [--upstream-delay-ms 0]
//!     [--clients 64 --seconds 10]
//! ```
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
    let backend = Arc::new(SqliteBackend::open(dir.path().join("gw.db")).unwrap());
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
