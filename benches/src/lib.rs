//! Benchmarks live in `benches/` and `src/bin/`; this library holds what they share.

/// A fresh database on the PostgreSQL server at `server` (a URL ending in a database
/// name), dropped and created under `name`; returns its URL.
///
/// # Panics
/// When the server can not be reached or the database can not be made (a benchmark's
/// failure report).
pub async fn fresh_postgres_database(server: &str, name: &str) -> String {
    #[allow(clippy::unwrap_used)] // a benchmark: a panic is the failure report
    let (admin, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    for statement in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        if let Err(e) = admin.batch_execute(&statement).await {
            panic!("{statement}: {e}");
        }
    }
    let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
    format!("{base}/{name}")
}

/// The median time of writing 100 bytes and `fsync`ing them, in a file beside the
/// database (its disk sets the pace of durable commits).
///
/// # Panics
/// When the probe file can not be written (a benchmark's failure report).
#[allow(clippy::unwrap_used)] // a benchmark: a panic is the failure report
pub fn fsync_latency_us(dir: &std::path::Path) -> f64 {
    use std::io::Write as _;
    use std::time::Instant;
    let mut file = std::fs::File::create(dir.join("fsync-probe")).unwrap();
    let mut samples: Vec<f64> = (0..50)
        .map(|_| {
            let start = Instant::now();
            file.write_all(&[0x5a; 100]).unwrap();
            file.sync_all().unwrap();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The number after `name` on the command line (`--seconds 30`), else `default`.
pub fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}
