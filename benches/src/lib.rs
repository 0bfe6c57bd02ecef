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
