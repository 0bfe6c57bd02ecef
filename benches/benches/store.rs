//! Layer 3 on SQLite: `get` and `set` against raw `rusqlite` on the same file and row in
//! the same run, and rotation throughput at 10k and 100k values.

// criterion's macros generate undocumented items.
#![allow(missing_docs, clippy::unwrap_used)]

/// The allocator the `strongroom` binary ships with, so the figures are the binary's (the
/// raw baselines run in the same process, on the same allocator).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use strongroom_crypto::{Key, KeyRing};
use strongroom_store::backend::sqlite::SqliteBackend;
use strongroom_store::{KeySource, RotateOptions, SecretId, SetRequest, Store, StoreConfig};

const VALUE: &[u8] =
    b"postgres://app:correct-horse-battery-staple@db.internal:5432/app?sslmode=require";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn ring(keys: &[(u32, u8)]) -> KeyRing {
    let keys: Vec<(u32, Key)> = keys
        .iter()
        .map(|(v, b)| (*v, Key::from_bytes(&[*b; 32])))
        .collect();
    KeyRing::new(keys.iter().map(|(v, k)| (*v, k))).unwrap()
}

async fn open(path: &Path, keys: &[(u32, u8)]) -> Store {
    let backend = Arc::new(SqliteBackend::open(path).unwrap());
    Store::open(backend, KeySource::Ring(ring(keys)), StoreConfig::default())
        .await
        .unwrap()
}

fn id(i: usize) -> SecretId {
    SecretId::new("default", "global", format!("SECRET_{i:06}"))
}

/// Fills a store with `n` secrets under key version 1, 1000 per transaction.
async fn populate(store: &Store, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let items = chunk
            .iter()
            .map(|i| (id(*i), SetRequest::value(VALUE)))
            .collect();
        store.set_many(items).await.unwrap();
    }
}

fn get_and_set(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let store = rt.block_on(open(&path, &[(1, 0x11)]));
    rt.block_on(populate(&store, 10_000));
    let target = id(4_242);
    drop(rt.block_on(store.get(&target)).unwrap());

    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "synchronous", "FULL").unwrap();
    let vid: i64 = raw
        .query_row(
            "SELECT v.vid FROM secret_versions v JOIN secrets s ON s.sid = v.sid AND s.version = v.version WHERE s.key = ?1",
            [&target.key],
            |r| r.get(0),
        )
        .unwrap();

    let mut get = c.benchmark_group("store_get_10k");
    get.bench_function(BenchmarkId::from_parameter("raw_rusqlite_pk_select"), |b| {
        b.iter(|| {
            let mut stmt = raw
                .prepare_cached("SELECT value FROM secret_versions WHERE vid = ?1")
                .unwrap();
            stmt.query_row([vid], |r| r.get::<_, Vec<u8>>(0)).unwrap()
        });
    });
    get.bench_function(BenchmarkId::from_parameter("raw_rusqlite_same_query"), |b| {
        b.iter(|| {
            let mut stmt = raw
                .prepare_cached(
                    "SELECT s.row_id, s.version, v.kek_version, s.description, s.metadata, s.kind,
                            s.expires_at, s.created, s.updated, v.deleted_at, v.destroyed, v.value, v.value_hash
                     FROM secrets s JOIN secret_versions v ON v.sid = s.sid AND v.version = s.version
                     WHERE s.namespace = ?1 AND s.env = ?2 AND s.key = ?3",
                )
                .unwrap();
            stmt.query_row([&target.namespace, &target.env, &target.key], |r| r.get::<_, Vec<u8>>(11)).unwrap()
        });
    });
    get.bench_function(BenchmarkId::from_parameter("strongroom_get"), |b| {
        b.iter(|| rt.block_on(store.get(&target)).unwrap());
    });
    get.bench_function(
        BenchmarkId::from_parameter("strongroom_get_and_commit_audited"),
        |b| {
            b.iter(|| {
                rt.block_on(async { store.get(&target).await.unwrap().commit().await })
                    .unwrap()
            });
        },
    );
    let fallback = SecretId::new("default", "prod", &target.key);
    get.bench_function(
        BenchmarkId::from_parameter("strongroom_get_via_fallback"),
        |b| {
            b.iter(|| rt.block_on(store.get(&fallback)).unwrap());
        },
    );
    get.finish();

    raw.execute(
        "CREATE TABLE IF NOT EXISTS raw_kv (id INTEGER PRIMARY KEY, value BLOB NOT NULL)",
        [],
    )
    .unwrap();
    let mut set = c.benchmark_group("store_set_10k");
    set.sample_size(20);
    // The same durability on both sides: WAL, `synchronous=FULL`, one commit per write,
    // and a value that differs every time. (An upsert of the identical value changes no
    // page, so SQLite commits it without writing or syncing anything: a baseline that
    // rewrote one constant value measured no flush at all.)
    let mut counter = 0u64;
    let mut next_value = move || {
        counter += 1;
        let mut value = VALUE.to_vec();
        let tail = value.len() - 8;
        value[tail..].copy_from_slice(&counter.to_be_bytes());
        value
    };
    set.bench_function(BenchmarkId::from_parameter("raw_rusqlite_upsert_tx"), |b| {
        b.iter(|| {
            let value = next_value();
            let tx = raw.unchecked_transaction().unwrap();
            tx.prepare_cached("INSERT INTO raw_kv (id, value) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET value = excluded.value")
                .unwrap()
                .execute([&value])
                .unwrap();
            tx.commit().unwrap();
        });
    });
    set.bench_function(BenchmarkId::from_parameter("strongroom_set"), |b| {
        b.iter(|| {
            let value = next_value();
            rt.block_on(store.set(&target, SetRequest::value(value)))
                .unwrap()
        });
    });
    set.finish();
}

fn rotation(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("rotation");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for n in [10_000usize, 100_000] {
        let template_dir = tempfile::tempdir().unwrap();
        let template = template_dir.path().join("template.db");
        rt.block_on(async {
            let store = open(&template, &[(1, 0x11)]).await;
            populate(&store, n).await;
        });
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("strongroom_rotate", n), |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().join("rotate.db");
                    std::fs::copy(&template, &path).unwrap();
                    let store = rt.block_on(open(&path, &[(2, 0x22), (1, 0x11)]));
                    let start = Instant::now();
                    let done = rt
                        .block_on(store.rotate(
                            RotateOptions {
                                batch_size: 1000,
                                ..RotateOptions::default()
                            },
                            |_| {},
                        ))
                        .unwrap();
                    total += start.elapsed();
                    assert_eq!(done.rotated, n as u64);
                }
                total
            });
        });
    }
    group.finish();
}

criterion_group!(benches, get_and_set, rotation);
criterion_main!(benches);
