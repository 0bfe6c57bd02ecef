//! What dynamic PostgreSQL logins cost, against PostgreSQL's own floor in the same run:
//!
//! ```text
//! STRONGROOM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/postgres \
//!   cargo run --release -p strongroom-benches --bin dynamic -- [--seconds 10] [--clients 8]
//! ```
//!
//! The real server on a SQLite file (WAL, synchronous=FULL) making logins in a fresh
//! database of that PostgreSQL. Phases, the same clients: (1) the floor, `CREATE ROLE …
//! LOGIN PASSWORD … VALID UNTIL … IN ROLE readers` over connections held open (what the
//! database itself can do; the grant is the group's); (2) `GET /v1/database/creds/app` through the API (a lease
//! recorded, a connection opened, the statements in one transaction, the lease activated
//! with its audit event); (3) 50 leases of 2 s, and the time from each one's expiry to the
//! moment its login is gone from `pg_roles` (the sweeper's latency), p50 and p99. Prints
//! each rate and the creds/floor ratio.

// A measurement tool: a panic is the failure report; the casts are of counts.
#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::too_many_lines
)]

/// The allocator the `strongroom` binary ships with, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use strongroom_crypto::secrecy::{ExposeSecret as _, SecretString};
use strongroom_crypto::{Key, KeyRing};
use strongroom_server::{AppState, Limits};
use strongroom_store::tokens::Tokens;
use strongroom_store::{KeySource, Store, StoreConfig};

const ADMIN: &str = "dynamic-bench-admin-token-0123456789";

use strongroom_benches::arg;

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = arg(&args, "--seconds", 10);
    let clients = arg(&args, "--clients", 8);
    let server_url = std::env::var("STRONGROOM_TEST_POSTGRES_URL")
        .expect("STRONGROOM_TEST_POSTGRES_URL: a PostgreSQL superuser URL (cargo xtask postgres)");
    let (server_base, _) = server_url.rsplit_once('/').unwrap();
    let db = format!("dyn_bench_{}", std::process::id());
    let admin_pg = connect(&server_url).await;
    admin_pg
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let target = format!("{server_base}/{db}");
    // Logins join a group that holds the grant (as docs/dynamic-credentials.md advises:
    // a GRANT per login on one table races, and caps the live logins at about 600).
    let group = format!("bench_readers_{}", std::process::id());
    connect(&target)
        .await
        .batch_execute(&format!(
            "CREATE TABLE orders (id int); CREATE ROLE {group} NOLOGIN; GRANT SELECT ON orders TO {group}"
        ))
        .await
        .unwrap();

    // (1) The floor: the same statements over connections held open.
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut handles = Vec::new();
    for c in 0..clients {
        let (target, done, group) = (target.clone(), Arc::clone(&done), group.clone());
        handles.push(tokio::spawn(async move {
            let client = connect(&target).await;
            let mut n = 0;
            while Instant::now() < deadline {
                n += 1;
                let name = format!("raw_{}_{c}_{n}", std::process::id());
                let sql = format!(
                    "CREATE ROLE \"{name}\" LOGIN PASSWORD 'Abcdefgh1234567890abcdefghijklmn' \
                     VALID UNTIL '2099-01-01 00:00:00+00:00' IN ROLE {group}"
                );
                // A race with another transaction: run again, as the server does.
                while let Err(e) = client.batch_execute(&sql).await {
                    let db = e
                        .as_db_error()
                        .map(|d| (d.code().code().to_owned(), d.message().to_owned()));
                    assert!(
                        db.as_ref()
                            .is_some_and(|(code, message)| message.contains("concurrently")
                                || code == "40001"
                                || code == "40P01"),
                        "{db:?}"
                    );
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let floor = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    // Roles are the cluster's, not the database's: drop the floor's.
    connect(&target)
        .await
        .batch_execute(&format!(
            "DO $$ DECLARE r record; BEGIN \
             FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'raw\\_{}\\_%' LOOP \
             EXECUTE format('DROP OWNED BY %I', r.rolname); \
             EXECUTE format('DROP ROLE %I', r.rolname); END LOOP; END $$",
            std::process::id()
        ))
        .await
        .unwrap();

    // The server, on a SQLite store.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("dynamic.db").display());
    let backend = strongroom_store::open_backend(&url).await.unwrap();
    let store = Store::open(
        backend,
        KeySource::Ring(KeyRing::single(&Key::generate().unwrap())),
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
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(strongroom_server::serve(
        listener,
        router,
        std::future::pending(),
    ));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients as usize)
        .build()
        .unwrap();
    let host_db = target.split_once('@').unwrap().1.to_owned();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{base}/v1/{path}"))
            .header("X-Vault-Token", ADMIN)
            .json(&body)
            .send()
    };
    let answer = post(
        "database/config/bench",
        json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": format!("postgresql://{{{{username}}}}:{{{{password}}}}@{host_db}"),
            "username": "postgres", "password": "unused", "allowed_roles": "*",
            "max_open_connections": clients,
        }),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 204, "{}", answer.text().await.unwrap());
    let create = json!([format!(
        "CREATE ROLE \"{{{{name}}}}\" LOGIN PASSWORD '{{{{password}}}}' VALID UNTIL '{{{{expiration}}}}' IN ROLE {group}"
    )]);
    for (role, ttl) in [("app", "1h"), ("short", "2s")] {
        let answer = post(
            &format!("database/roles/{role}"),
            json!({"db_name": "bench", "creation_statements": create, "default_ttl": ttl, "max_ttl": ttl}),
        )
        .await
        .unwrap();
        assert_eq!(answer.status(), 204);
    }

    // (2) Creds through the API.
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..clients {
        let (http, base, done) = (http.clone(), base.clone(), Arc::clone(&done));
        handles.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let response = http
                    .get(format!("{base}/v1/database/creds/app"))
                    .header("X-Vault-Token", ADMIN)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let creds = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();

    // (3) Expiry to revocation: 50 leases of 2 s.
    let mut expiring = Vec::new();
    for _ in 0..50 {
        let issued = unix_ms();
        let made: serde_json::Value = http
            .get(format!("{base}/v1/database/creds/short"))
            .header("X-Vault-Token", ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ttl = u128::from(made["lease_duration"].as_u64().unwrap()) * 1000;
        expiring.push((
            made["data"]["username"].as_str().unwrap().to_owned(),
            issued + ttl,
        ));
    }
    let watcher = connect(&target).await;
    let mut latencies = Vec::new();
    let give_up = Instant::now() + Duration::from_mins(1);
    while !expiring.is_empty() && Instant::now() < give_up {
        let now = unix_ms();
        let mut still = Vec::new();
        for (name, expiry) in expiring {
            let exists = watcher
                .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name])
                .await
                .unwrap()
                .is_some();
            if exists {
                still.push((name, expiry));
            } else {
                latencies.push(now.saturating_sub(expiry) as f64 / 1000.0);
            }
        }
        expiring = still;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        expiring.is_empty(),
        "{} logins outlived their leases by a minute",
        expiring.len()
    );
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];

    // (4) Many expired leases at once (as after a long outage or at start): how fast the
    // sweepers drain them, and what an audited read costs meanwhile against before.
    let stale = arg(&args, "--stale", 2000);
    store
        .set(
            &strongroom_store::SecretId::new("default", "prod", "K"),
            strongroom_store::SetRequest::value("v"),
        )
        .await
        .unwrap();
    let read_latency = |n: usize| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let mut times = Vec::with_capacity(n);
            for _ in 0..n {
                let started = Instant::now();
                let response = http
                    .get(format!("{base}/api/secrets/K?env=prod"))
                    .bearer_auth(ADMIN)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            (times[times.len() / 2], times[(times.len() - 1) * 99 / 100])
        }
    };
    let before = read_latency(200).await;
    let model: serde_json::Value = http
        .get(format!("{base}/v1/database/creds/app"))
        .header("X-Vault-Token", ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let model_row = store
        .lease_row(model["lease_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    // The lease's sealed record decides (the sweeper trusts nothing else): each stale
    // lease is the model's record with its end moved into the past.
    let expired_at =
        strongroom_store::Timestamp(strongroom_store::Timestamp::now().unix_ms() - 1000);
    let mut record: serde_json::Value =
        serde_json::from_slice(store.open_lease(&model_row).unwrap().expose_secret()).unwrap();
    record["expires_ms"] = json!(expired_at.unix_ms());
    let record = record.to_string();
    for i in 0..stale {
        let id = format!("database/creds/app/stale-{i:06}");
        store
            .record_lease(strongroom_store::backend::LeaseRow {
                id: id.clone(),
                expires: expired_at,
                next_attempt: expired_at,
                state: "active".into(),
                sealed: store.seal_lease(&id, record.as_bytes()).unwrap(),
                ..model_row.clone()
            })
            .await
            .unwrap();
    }
    let drain_started = Instant::now();
    let during = read_latency(200).await;
    loop {
        let left = store
            .lease_rows("database/creds/app/stale-")
            .await
            .unwrap()
            .iter()
            .filter(|r| r.state != "revoked")
            .count();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained = drain_started.elapsed().as_secs_f64();

    // Clean up: every lease revoked, the database dropped.
    http.put(format!("{base}/v1/sys/leases/revoke-prefix/database/creds"))
        .header("X-Vault-Token", ADMIN)
        .send()
        .await
        .unwrap();
    let _ = admin_pg
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await;
    let _ = admin_pg
        .batch_execute(&format!("DROP ROLE IF EXISTS {group}"))
        .await;

    println!("clients {clients}, {seconds} s per phase");
    println!("floor: CREATE ROLE over open connections         {floor:>8.0} /s");
    println!("creds: GET /v1/database/creds/app                  {creds:>8.0} /s");
    println!(
        "ratio creds / floor                                 {:>8.3}",
        creds / floor
    );
    println!(
        "expiry to login dropped (50 leases of 2 s)          p50 {:.2} s  p99 {:.2} s",
        at(0.5),
        at(0.99)
    );
    println!(
        "{stale} expired leases drained in {drained:.1} s ({:.0} /s)",
        stale as f64 / drained
    );
    println!(
        "audited read: before p50 {:.2} ms p99 {:.2} ms; while draining p50 {:.2} ms p99 {:.2} ms",
        before.0, before.1, during.0, during.1
    );
}
