//! A bounded load test of the HTTP API on loopback.
//!
//! ```text
//! cargo run --release -p strongroom-benches --bin load -- [--seconds 30] [--clients 64]
//!     [--postgres postgres://USER@HOST:PORT/DB] [--servers N] [--log buffered|blocking]
//! ```
//!
//! With `--postgres`, a fresh database on that server is used instead of a SQLite file;
//! `--servers N` starts N server instances on the database (each its own store, pool,
//! group commit and port, as N processes would have) and spreads the clients over them.
//!
//! Starts the real server (axum, SQLite file in a temp dir) on a loopback port. First the
//! ceiling, in the same run: the clients call `GET /api/health` (no database) for a third
//! of the duration, before the phases and again after them (ratios are of the mean: on a
//! shared host the ceiling drifts within a run), and one `fsync` of a file beside the
//! database is timed. Then the same
//! clients make audited reads alone for a third of the duration. Then each
//! client loops for the duration: 80 % audited reads of shared secrets, 20 % writes of its
//! own secret with an increasing counter. Prints reads/s and writes/s as ratios of the
//! health ceiling, latency percentiles, and the fsync latency; then checks that nothing was
//! lost: every client's last acknowledged write is the stored value, and the audit trail
//! holds exactly one create/update event per acknowledged write.

// A load tool: a panic is the failure report; the casts are of counts and percentiles.
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

use serde_json::json;
use strongroom_crypto::secrecy::{ExposeSecret as _, SecretString};
use strongroom_crypto::{Key, KeyRing};
use strongroom_server::{AppState, Limits};
use strongroom_store::tokens::Tokens;
use strongroom_store::{AuditQuery, KeySource, SecretId, Store, StoreConfig};

const ADMIN: &str = "load-test-admin-token-0123456789";
const SHARED: usize = 100;

#[derive(Default)]
struct ClientReport {
    latencies_us: Vec<u64>,
    errors: u64,
    writes_acked: u64,
    last_acked: Option<u64>,
    /// Requests slower than [`SLOW`]: when each began (from the phase's start), how long
    /// it took, and whether it was a write.
    slow: Vec<(Duration, Duration, bool)>,
}

/// A request this slow is listed on its own.
const SLOW: Duration = Duration::from_millis(200);

use strongroom_benches::arg;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = arg(&args, "--seconds", 30);
    let clients = arg(&args, "--clients", 64);
    // The server's per-request log line at `info`, as `strongroom serve` writes it by
    // default, to stderr (redirect it where a deployment would): `--log buffered` (the
    // binary's: written by a thread of its own), `--log blocking` (written on the
    // request's thread), or none (the default: the ceiling without logging).
    let _log_writer = match args
        .windows(2)
        .find(|w| w[0] == "--log")
        .map(|w| w[1].as_str())
    {
        Some("buffered") => {
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .finish(std::io::stderr());
            tracing_subscriber::fmt()
                .with_env_filter("info")
                .with_writer(writer)
                .init();
            Some(guard)
        }
        Some("blocking") => {
            tracing_subscriber::fmt()
                .with_env_filter("info")
                .with_writer(std::io::stderr)
                .init();
            None
        }
        _ => None,
    };

    let servers = arg(&args, "--servers", 1).max(1);
    let postgres = args
        .windows(2)
        .find(|w| w[0] == "--postgres")
        .map(|w| w[1].clone());

    let dir = tempfile::tempdir().unwrap();
    let url = match &postgres {
        Some(server) => {
            strongroom_benches::fresh_postgres_database(
                server,
                &format!("sr_load_{}", std::process::id()),
            )
            .await
        }
        None => format!("sqlite://{}", dir.path().join("load.db").display()),
    };
    // Each server instance has its own store, pool, group commit and port, as separate
    // `strongroom serve` processes on one database would; only the database is shared.
    let key = Key::generate().unwrap();
    let mut stores = Vec::new();
    let mut bases = Vec::new();
    for _ in 0..servers {
        let backend = strongroom_store::open_backend(&url).await.unwrap();
        let store = Store::open(
            backend,
            KeySource::Ring(KeyRing::single(&key)),
            StoreConfig::default(),
        )
        .await
        .unwrap();
        let tokens = Tokens::new(&store, Some(&SecretString::from(ADMIN))).unwrap();
        let router = strongroom_server::router(
            AppState {
                tokens,
                store: Some(store.clone().into()),
                gateway: None,
                metrics: None,
            },
            Limits::default(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        bases.push(format!("http://{}", listener.local_addr().unwrap()));
        tokio::spawn(strongroom_server::serve(
            listener,
            router,
            std::future::pending(),
        ));
        stores.push(store);
    }
    let store = stores[0].clone();
    let base = bases[0].clone();
    // `--token stored`: the clients present a token kept in the database (a superuser's),
    // looked up on every request as a deployment's tokens are; by default the bootstrap
    // admin token, which is checked in memory.
    let stored_token = args
        .windows(2)
        .any(|w| w[0] == "--token" && w[1] == "stored");
    let bearer: Arc<str> = if stored_token {
        let tokens = Tokens::new(&store, None).unwrap();
        let (_, secret) = tokens.create("load", true, &[]).await.unwrap();
        secret.expose_secret().into()
    } else {
        ADMIN.into()
    };
    println!(
        "database: {}; {servers} server instance(s); {}",
        if postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite (WAL, synchronous=FULL)"
        },
        if stored_token {
            "a token kept in the database"
        } else {
            "the bootstrap admin token (checked in memory)"
        }
    );

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients as usize)
        .build()
        .unwrap();
    for i in 0..SHARED {
        let response = http
            .post(format!("{base}/api/secrets"))
            .bearer_auth(&*bearer)
            .json(&json!({"key": format!("SHARED_{i}"), "value": format!("shared-value-{i}"), "env": "prod"}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    let fsync_us = strongroom_benches::fsync_latency_us(dir.path());
    let phase = (seconds / 3).max(1);
    // The ceiling, before the phases and again after them.
    let ceiling = || {
        one_route(
            &http,
            &bearer,
            &bases,
            |_| "/api/health".into(),
            clients,
            phase,
        )
    };
    let (health_before, _) = ceiling().await;
    // Audited reads alone, the same clients: each a fetch, a durable `read` event
    // (group-committed), and the value.
    let (only_reads_per_s, only_reads_p99) = one_route(
        &http,
        &bearer,
        &bases,
        |n| format!("/api/secrets/SHARED_{}?env=prod", n as usize % SHARED),
        clients,
        phase,
    )
    .await;

    let lock_before = chain_lock(&stores);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut handles = Vec::new();
    for client in 0..clients {
        let http = http.clone();
        let base = bases[client as usize % bases.len()].clone();
        let bearer = Arc::clone(&bearer);
        handles.push(tokio::spawn(async move {
            let mut report = ClientReport::default();
            let mut n: u64 = client * 7919;
            let mut counter = 0;
            while Instant::now() < deadline {
                n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let start = Instant::now();
                let write = (n >> 33) % 10 >= 8;
                let ok = if write {
                    counter += 1;
                    let ok = http
                        .post(format!("{base}/api/secrets"))
                        .bearer_auth(&*bearer)
                        .json(&json!({"key": format!("CLIENT_{client}"), "value": counter.to_string(), "env": "prod"}))
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200);
                    if ok {
                        report.writes_acked += 1;
                        report.last_acked = Some(counter);
                    }
                    ok
                } else {
                    let key = format!("SHARED_{}", (n >> 40) as usize % SHARED);
                    http.get(format!("{base}/api/secrets/{key}?env=prod")).bearer_auth(&*bearer).send().await.is_ok_and(|r| r.status() == 200)
                };
                let took = start.elapsed();
                if took >= SLOW {
                    report.slow.push((start - started, took, write));
                }
                report.latencies_us.push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
                if !ok {
                    report.errors += 1;
                }
            }
            report
        }));
    }
    let mut reports = Vec::new();
    for handle in handles {
        reports.push(handle.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The ceiling again, after the phases: on a shared host it drifts within a run, so
    // the ratios are of the mean of the two.
    let (health_after, _) = ceiling().await;
    let health_per_s = f64::midpoint(health_before, health_after);

    let mut latencies: Vec<u64> = reports
        .iter()
        .flat_map(|r| r.latencies_us.iter().copied())
        .collect();
    latencies.sort_unstable();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    let errors: u64 = reports.iter().map(|r| r.errors).sum();
    let writes: u64 = reports.iter().map(|r| r.writes_acked).sum();
    println!(
        "clients {clients}, {seconds} s, {} requests ({writes} writes), {errors} errors",
        latencies.len()
    );
    let total_per_s = latencies.len() as f64 / elapsed;
    let writes_per_s = writes as f64 / elapsed;
    let reads_per_s = total_per_s - writes_per_s;
    println!("throughput {total_per_s:.0} requests/s");
    println!(
        "ceiling: GET /api/health {health_per_s:.0} requests/s ({health_before:.0} before the phases, {health_after:.0} after); one fsync beside the database {fsync_us:.0} us"
    );
    println!(
        "audited reads alone: {only_reads_per_s:.0}/s = {:.3}x health, p99 {:.2} ms",
        only_reads_per_s / health_per_s,
        only_reads_p99 as f64 / 1000.0
    );
    println!(
        "mixed (80 % reads, 20 % writes): audited reads {reads_per_s:.0}/s = {:.3}x health; durable writes {writes_per_s:.0}/s = {:.3}x health",
        reads_per_s / health_per_s,
        writes_per_s / health_per_s
    );
    let stats = stores.iter().map(Store::stats).fold(
        strongroom_store::StoreStats::default(),
        |mut sum, s| {
            sum.read_events += s.read_events;
            sum.read_event_commits += s.read_event_commits;
            sum.writes += s.writes;
            sum.write_commits += s.write_commits;
            sum
        },
    );
    println!(
        "group commit (reads and writes share a commit when both wait): {} read events in {} commits ({:.1} per commit); {} writes in {} commits ({:.1} per commit)",
        stats.read_events,
        stats.read_event_commits,
        stats.read_events as f64 / stats.read_event_commits.max(1) as f64,
        stats.writes,
        stats.write_commits,
        stats.writes as f64 / stats.write_commits.max(1) as f64,
    );
    // PostgreSQL: how long each transaction held the chain's lock during the mixed phase,
    // and how busy the lock was (1.0: always held, so more instances can not help).
    if let (Some(before), Some(after)) = (lock_before, chain_lock(&stores)) {
        let holds = after.since(before);
        let at_most = |q: f64| match holds.quantile_us(q) {
            Some(u64::MAX) => "over 1 s".to_owned(),
            Some(us) => format!("<= {:.2} ms", us as f64 / 1000.0),
            None => "none".to_owned(),
        };
        println!(
            "chain lock (mixed phase): {} holds, p50 {}, p99 {}, mean {:.2} ms; held {:.0} % of the time",
            holds.count(),
            at_most(0.50),
            at_most(0.99),
            holds.sum_us as f64 / holds.count().max(1) as f64 / 1000.0,
            holds.sum_us as f64 / 1e6 / elapsed * 100.0,
        );
    }
    if let Some(peak) = peak_rss_mib() {
        println!("peak RSS of this process (server and clients): {peak:.0} MiB");
    }
    println!(
        "latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(0.50) as f64 / 1000.0,
        percentile(0.90) as f64 / 1000.0,
        percentile(0.99) as f64 / 1000.0,
        percentile(1.0) as f64 / 1000.0
    );
    let mut slow: Vec<_> = reports
        .iter()
        .flat_map(|r| r.slow.iter().copied())
        .collect();
    slow.sort_unstable_by_key(|(began, ..)| *began);
    if !slow.is_empty() {
        // Requests that began within 10 ms of each other and took about as long waited
        // for one thing (a group commit): one entry each.
        let mut stalls: Vec<(Duration, Duration, u32, u32)> = Vec::new();
        for (began, took, write) in &slow {
            match stalls.last_mut() {
                Some((b, t, reads, writes))
                    if began.saturating_sub(*b) < Duration::from_millis(10)
                        && took.abs_diff(*t) < Duration::from_millis(10) =>
                {
                    *if *write { writes } else { reads } += 1;
                }
                _ => stalls.push((*began, *took, u32::from(!write), u32::from(*write))),
            }
        }
        let shown: Vec<String> = stalls
            .iter()
            .take(12)
            .map(|(began, took, reads, writes)| {
                format!(
                    "{reads} reads and {writes} writes at {:.3} s took {:.0} ms",
                    began.as_secs_f64(),
                    took.as_secs_f64() * 1000.0
                )
            })
            .collect();
        println!(
            "slower than {} ms: {} requests ({})",
            SLOW.as_millis(),
            slow.len(),
            shown.join("; ")
        );
    }

    // Nothing lost: the last acknowledged write of every client is what is stored, and
    // the audit trail has one create/update event per acknowledged write.
    let mut audited = 0;
    for (client, report) in reports.iter().enumerate() {
        let Some(last) = report.last_acked else {
            continue;
        };
        let id = SecretId::new("default", "prod", format!("CLIENT_{client}"));
        let secret = store.get(&id).await.unwrap().commit().await.unwrap();
        assert_eq!(
            secret.value.expose_secret(),
            last.to_string().as_bytes(),
            "client {client} lost a write"
        );
        assert_eq!(
            u64::from(secret.version),
            report.writes_acked,
            "client {client}: versions != acknowledged writes"
        );
        audited += store
            .audit_all(AuditQuery {
                key: Some(id.key.clone()),
                ..AuditQuery::default()
            })
            .await
            .unwrap()
            .iter()
            .filter(|e| {
                matches!(
                    e.action,
                    strongroom_store::Action::Create | strongroom_store::Action::Update
                )
            })
            .count() as u64;
    }
    assert_eq!(audited, writes, "audit events != acknowledged writes");
    // The chain stays whole across group commits and across server instances.
    let verification = store.verify_audit().await.unwrap();
    assert!(
        verification.broken_at.is_none(),
        "the audit chain broke under load: {:?}",
        verification.broken_at
    );
    println!(
        "audit chain intact: {} events, {} version ties",
        verification.events, verification.versions
    );
    assert_eq!(errors, 0, "requests failed under load");
    println!("nothing lost: {writes} acknowledged writes, all stored and audited");
}

/// Requests per second `clients` clients get in `seconds` from `GET {base}{path}` with
/// `bearer` (spread over `bases`), each answer checked for 200, and the p99
/// latency in microseconds. `/api/health` (no database, no audit) is the HTTP stack's
/// ceiling on this machine, measured in this run.
async fn one_route(
    http: &reqwest::Client,
    bearer: &Arc<str>,
    bases: &[String],
    path: fn(u64) -> String,
    clients: u64,
    seconds: u64,
) -> (f64, u64) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut handles = Vec::new();
    for client in 0..clients {
        let (http, base) = (http.clone(), bases[client as usize % bases.len()].clone());
        let bearer = Arc::clone(bearer);
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = client;
            while Instant::now() < deadline {
                n += 1;
                let start = Instant::now();
                let response = http
                    .get(format!("{base}{}", path(n)))
                    .bearer_auth(&*bearer)
                    .send()
                    .await;
                assert!(
                    response.is_ok_and(|r| r.status() == 200),
                    "a request failed"
                );
                latencies.push(start.elapsed().as_micros() as u64);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(handle.await.unwrap());
    }
    let per_s = latencies.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    (per_s, latencies[(latencies.len() - 1) * 99 / 100])
}

/// The process's peak resident set (`VmHWM`), in MiB, where `/proc` has it.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Every instance's chain-lock holds added up (PostgreSQL only).
fn chain_lock(stores: &[Store]) -> Option<strongroom_store::backend::LockHoldStats> {
    stores
        .iter()
        .filter_map(|s| s.stats().backend.chain_lock)
        .reduce(strongroom_store::backend::LockHoldStats::merged)
}
