//! What identity costs, measured against the same run's ceiling on loopback:
//!
//! ```text
//! cargo run --release -p strongroom-benches --bin identity -- [--seconds 30] [--clients 64]
//! ```
//!
//! The real server on a SQLite file (WAL, synchronous=FULL). Phases, each a tenth of the
//! duration, the same clients: `GET /api/health` (the ceiling); audited reads with a
//! token that never expires and with one that expires in an hour, alternated four times
//! (A B A B …) so drift does not favour either; then AppRole logins (`POST
//! /v1/auth/approle/login`: a sealed-setting read, a use-spending transaction with its
//! `login` event, a token insert with its `token_create` event). Prints each rate, the
//! expiring/static ratio and logins/s.

// A measurement tool: a panic is the failure report; the casts are of counts.
#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::too_many_lines
)]

/// The allocator the `strongroom` binary ships with, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use serde_json::json;
use strongroom_crypto::secrecy::{ExposeSecret as _, SecretString};
use strongroom_crypto::{Key, KeyRing};
use strongroom_server::{AppState, Limits};
use strongroom_store::tokens::{Scope, TokenRequest, Tokens};
use strongroom_store::{KeySource, SecretId, SetRequest, Store, StoreConfig};

const ADMIN: &str = "identity-bench-admin-token-0123456789";

use strongroom_benches::arg;

/// Requests per second for `seconds` from `clients` loops of `request`.
async fn rate<F, Fut>(clients: u64, seconds: u64, request: F) -> f64
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut handles = Vec::new();
    for client in 0..clients {
        let request = request.clone();
        handles.push(tokio::spawn(async move {
            let mut done = 0u64;
            let mut n = client;
            while Instant::now() < deadline {
                n += clients;
                assert!(request(n).await, "a request failed");
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

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = arg(&args, "--seconds", 30);
    let clients = arg(&args, "--clients", 64);
    let phase = (seconds / 10).max(1);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("identity.db").display());
    let backend = strongroom_store::open_backend(&url).await.unwrap();
    let key = Key::generate().unwrap();
    let store = Store::open(
        backend,
        KeySource::Ring(KeyRing::single(&key)),
        StoreConfig::default(),
    )
    .await
    .unwrap();
    let tokens = Tokens::new(&store, Some(&SecretString::from(ADMIN))).unwrap();
    let scope = || vec![Scope::parse("default/prod:read").unwrap()];
    let (_, forever) = tokens
        .create_with(
            TokenRequest {
                name: "static".into(),
                scopes: scope(),
                ..TokenRequest::default()
            },
            None,
        )
        .await
        .unwrap();
    let (_, expiring) = tokens
        .create_with(
            TokenRequest {
                name: "expiring".into(),
                scopes: scope(),
                ttl: Some(Duration::from_hours(1)),
                renewable: true,
                ..TokenRequest::default()
            },
            None,
        )
        .await
        .unwrap();
    for i in 0..100 {
        store
            .set(
                &SecretId::new("default", "prod", format!("K{i}")),
                SetRequest::value(format!("v{i}")),
            )
            .await
            .unwrap();
    }
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

    // AppRole, enabled and configured through the API.
    let admin = |path: &str, body: serde_json::Value| {
        http.post(format!("{base}{path}"))
            .header("X-Vault-Token", ADMIN)
            .json(&body)
            .send()
    };
    admin("/v1/sys/auth/approle", json!({"type": "approle"}))
        .await
        .unwrap();
    admin(
        "/v1/auth/approle/role/bench",
        json!({"token_policies": ["default/prod:read"], "token_ttl": "10m"}),
    )
    .await
    .unwrap();
    let role_id: serde_json::Value = http
        .get(format!("{base}/v1/auth/approle/role/bench/role-id"))
        .header("X-Vault-Token", ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let role_id = role_id["data"]["role_id"].as_str().unwrap().to_owned();
    let secret: serde_json::Value = admin("/v1/auth/approle/role/bench/secret-id", json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret_id = secret["data"]["secret_id"].as_str().unwrap().to_owned();

    let get = |path: String, token: String| {
        let (http, base) = (http.clone(), base.clone());
        move |n: u64| {
            let (http, url, token) = (
                http.clone(),
                format!("{base}{}", path.replace("{n}", &(n % 100).to_string())),
                token.clone(),
            );
            async move {
                http.get(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            }
        }
    };
    let health = rate(clients, phase, get("/api/health".into(), ADMIN.into())).await;
    let read = "/api/secrets/K{n}?env=prod".to_owned();
    let mut static_rates = Vec::new();
    let mut expiring_rates = Vec::new();
    for _ in 0..4 {
        static_rates.push(
            rate(
                clients,
                phase,
                get(read.clone(), forever.expose_secret().to_owned()),
            )
            .await,
        );
        expiring_rates.push(
            rate(
                clients,
                phase,
                get(read.clone(), expiring.expose_secret().to_owned()),
            )
            .await,
        );
    }
    let login = {
        let (http, base) = (http.clone(), base.clone());
        move |_: u64| {
            let (http, base) = (http.clone(), base.clone());
            let body = json!({"role_id": role_id, "secret_id": secret_id});
            async move {
                http.post(format!("{base}/v1/auth/approle/login"))
                    .json(&body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            }
        }
    };
    let logins = rate(clients, phase, login).await;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (s, e) = (mean(&static_rates), mean(&expiring_rates));
    println!("clients: {clients}; each phase {phase} s; SQLite (WAL, synchronous=FULL)");
    println!("health (ceiling):           {health:>9.0}/s");
    println!(
        "audited reads, static token: {s:>9.0}/s ({:.3}x health)  runs {static_rates:.0?}",
        s / health
    );
    println!(
        "audited reads, 1 h token:    {e:>9.0}/s ({:.3}x health)  runs {expiring_rates:.0?}",
        e / health
    );
    println!("expiring / static:           {:.3}", e / s);
    println!(
        "approle logins:              {logins:>9.0}/s ({:.4}x health)",
        logins / health
    );
}
