//! Strongroom's PostgreSQL `get` against a raw primary-key select and against pgcrypto's
//! `pgp_sym_decrypt` (the seed pgpm table's way), same server, same row count, same run.
//!
//! Needs a server: `STRONGROOM_TEST_POSTGRES_URL` (superuser URL; `cargo xtask bench` and
//! `cargo xtask ci` start one). Without it the benchmark says so and measures nothing.

// criterion's macros generate undocumented items.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use strongroom_crypto::{Key, KeyRing};
use strongroom_store::{KeySource, SecretId, SetRequest, Store, StoreConfig};

const ROWS: usize = 10_000;
const VALUE: &str =
    "postgres://app:correct-horse-battery-staple@db.internal:5432/app?sslmode=require";

/// A fresh database with the raw, pgcrypto and Strongroom tables of `ROWS` rows each: a
/// client on it, a store, and a second store with the read cache on.
async fn setup(server: &str) -> (tokio_postgres::Client, Store, Store) {
    let url = strongroom_benches::fresh_postgres_database(
        server,
        &format!("sr_bench_{}", std::process::id()),
    )
    .await;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "CREATE EXTENSION IF NOT EXISTS pgcrypto;
             CREATE TABLE raw_secrets (id SERIAL PRIMARY KEY, value BYTEA NOT NULL);
             CREATE TABLE pgcrypto_secrets (id SERIAL PRIMARY KEY, value BYTEA NOT NULL);
             INSERT INTO raw_secrets (value) SELECT convert_to('{VALUE}', 'UTF8') FROM generate_series(1, {ROWS});
             INSERT INTO pgcrypto_secrets (value) SELECT pgp_sym_encrypt('{VALUE}', 'password') FROM generate_series(1, {ROWS});"
        ))
        .await
        .unwrap();
    let backend = strongroom_store::open_backend(&url).await.unwrap();
    client
        .batch_execute("SET search_path = strongroom, public")
        .await
        .unwrap();
    let ring = KeyRing::single(&Key::from_bytes(&[9; 32]));
    let store = Store::open(backend, KeySource::Ring(ring), StoreConfig::default())
        .await
        .unwrap();
    for chunk in (0..ROWS).collect::<Vec<_>>().chunks(1000) {
        let items = chunk
            .iter()
            .map(|i| (id(*i), SetRequest::value(VALUE)))
            .collect();
        store.set_many(items).await.unwrap();
    }
    // A second store on the same database with the read cache on (LISTEN/NOTIFY).
    let cached_backend = strongroom_store::open_backend_with(
        &url,
        &strongroom_store::BackendOptions {
            read_cache: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let ring = KeyRing::single(&Key::from_bytes(&[9; 32]));
    let cached = Store::open(
        cached_backend,
        KeySource::Ring(ring),
        StoreConfig::default(),
    )
    .await
    .unwrap();
    (client, store, cached)
}

fn postgres(c: &mut Criterion) {
    let Ok(server) = std::env::var("STRONGROOM_TEST_POSTGRES_URL") else {
        eprintln!("postgres benchmark skipped: set STRONGROOM_TEST_POSTGRES_URL (cargo xtask bench starts a server)");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (client, store, cached) = rt.block_on(setup(&server));
    let raw = rt
        .block_on(client.prepare("SELECT value FROM raw_secrets WHERE id = $1"))
        .unwrap();
    let pgcrypto = rt
        .block_on(client.prepare(
            "SELECT pgp_sym_decrypt(value, 'password') FROM pgcrypto_secrets WHERE id = $1",
        ))
        .unwrap();
    let same = rt
        .block_on(client.prepare(
            "SELECT s.row_id, s.namespace, s.env, s.key, s.version, v.kek_version, s.description, s.metadata, s.kind,
                    s.expires_at, s.created, s.updated, v.value, v.value_hash
             FROM strongroom_secrets s JOIN strongroom_secret_versions v ON v.sid = s.sid AND v.version = s.version
             WHERE s.namespace = $1 AND s.env = $2 AND s.key = $3",
        ))
        .unwrap();
    let target = id(4_242);
    let row: i32 = 4_243;

    let mut group = c.benchmark_group("postgres_get_10k");
    group.bench_function(BenchmarkId::from_parameter("raw_pk_select"), |b| {
        b.iter(|| {
            rt.block_on(client.query_one(&raw, &[&row]))
                .unwrap()
                .get::<_, Vec<u8>>(0)
        });
    });
    group.bench_function(
        BenchmarkId::from_parameter("pgcrypto_pgp_sym_decrypt"),
        |b| {
            b.iter(|| {
                rt.block_on(client.query_one(&pgcrypto, &[&row]))
                    .unwrap()
                    .get::<_, String>(0)
            });
        },
    );
    group.bench_function(
        BenchmarkId::from_parameter("raw_same_query_as_store"),
        |b| {
            b.iter(|| {
                rt.block_on(client.query_one(&same, &[&target.namespace, &target.env, &target.key]))
                    .unwrap()
                    .get::<_, Vec<u8>>(12)
            });
        },
    );
    group.bench_function(BenchmarkId::from_parameter("strongroom_get"), |b| {
        b.iter(|| rt.block_on(store.get(&target)).unwrap());
    });
    group.bench_function(
        BenchmarkId::from_parameter("strongroom_get_read_cache"),
        |b| {
            b.iter(|| rt.block_on(cached.get(&target)).unwrap());
        },
    );
    group.finish();
}

fn id(i: usize) -> SecretId {
    SecretId::new("default", "global", format!("SECRET_{i:06}"))
}

criterion_group!(benches, postgres);
criterion_main!(benches);
