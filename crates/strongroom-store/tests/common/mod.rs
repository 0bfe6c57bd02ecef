//! Helpers the backend test files share (the behaviour suite itself is
//! `strongroom_store::testing`, feature `testing`).

#![allow(clippy::unwrap_used, dead_code)] // tests: a panic is the failure report

/// A fresh, empty database on the PostgreSQL test server (`STRONGROOM_TEST_POSTGRES_URL`);
/// `None` only when `STRONGROOM_SKIP_POSTGRES` is set explicitly.
#[cfg(feature = "postgres")]
pub async fn fresh_postgres_database() -> Option<String> {
    let Ok(server) = std::env::var("STRONGROOM_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("STRONGROOM_SKIP_POSTGRES").is_some(),
            "STRONGROOM_TEST_POSTGRES_URL is not set: run `cargo xtask ci` (it starts a PostgreSQL server), \
             or set STRONGROOM_SKIP_POSTGRES=1 to skip the PostgreSQL tests explicitly"
        );
        eprintln!("STRONGROOM_SKIP_POSTGRES is set: skipping a PostgreSQL test");
        return None;
    };
    let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut random = [0u8; 8];
    getrandom::getrandom(&mut random).unwrap();
    let name = format!("sr_test_{}", hex::encode(random));
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (base, _) = server.rsplit_once('/').unwrap();
    Some(format!("{base}/{name}"))
}

pub use strongroom_store::testing::*;
