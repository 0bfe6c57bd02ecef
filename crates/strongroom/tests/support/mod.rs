//! Helpers shared by the command's end-to-end tests.

/// A fresh, empty database on the PostgreSQL test server (`STRONGROOM_TEST_POSTGRES_URL`,
/// set by `cargo xtask ci`); `None` only when `STRONGROOM_SKIP_POSTGRES` is set explicitly.
/// Call it outside any async runtime.
pub fn fresh_postgres_database() -> Option<String> {
    let Ok(server) = std::env::var("STRONGROOM_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("STRONGROOM_SKIP_POSTGRES").is_some(),
            "STRONGROOM_TEST_POSTGRES_URL is not set: run `cargo xtask ci`, or set STRONGROOM_SKIP_POSTGRES=1"
        );
        return None;
    };
    let name = format!(
        "sr_cli_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
    });
    let (base, _) = server.rsplit_once('/').unwrap();
    Some(format!("{base}/{name}"))
}

/// Runs `sql` on the PostgreSQL server at `url` (a whole database URL).
#[allow(dead_code)] // each test file uses the helpers it needs
pub fn postgres_batch(url: &str, sql: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        client.batch_execute(sql).await.map_err(|e| {
            e.as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned())
        })
    })
}
