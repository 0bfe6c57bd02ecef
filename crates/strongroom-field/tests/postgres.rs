//! `Encrypted<T>` in a real PostgreSQL table (`STRONGROOM_TEST_POSTGRES_URL`, set by
//! `cargo xtask ci`; skipped only with an explicit `STRONGROOM_SKIP_POSTGRES=1`).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use strongroom_crypto::{Key, KeyRing};
use strongroom_field::rotation::rotate_postgres;
use strongroom_field::{Column, Encrypted};

async fn client() -> Option<tokio_postgres::Client> {
    let Ok(server) = std::env::var("STRONGROOM_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("STRONGROOM_SKIP_POSTGRES").is_some(),
            "STRONGROOM_TEST_POSTGRES_URL is not set: run `cargo xtask ci`, or set STRONGROOM_SKIP_POSTGRES=1"
        );
        return None;
    };
    let (admin, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let name = format!(
        "sr_field_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = format!("{}/{name}", server.rsplit_once('/').unwrap().0);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE users (id BIGINT PRIMARY KEY, token BYTEA)")
        .await
        .unwrap();
    Some(client)
}

#[tokio::test]
async fn round_trip_binding_and_rotation_on_postgres() {
    let Some(mut client) = client().await else {
        return;
    };
    let (k1, k2) = (Key::from_bytes(&[1; 32]), Key::from_bytes(&[2; 32]));
    let old = KeyRing::new([(1, &k1)]).unwrap();
    let token = Column::new("users", "token").unwrap();
    for id in 1_i64..=30 {
        let sealed: Encrypted<String> = token
            .seal(&old, &id.to_string(), &format!("v{id}"))
            .unwrap();
        client
            .execute(
                "INSERT INTO users (id, token) VALUES ($1, $2)",
                &[&id, &sealed],
            )
            .await
            .unwrap();
    }
    let read: Encrypted<String> = client
        .query_one("SELECT token FROM users WHERE id = 5", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(token.open(&old, "5", &read).unwrap(), "v5");
    assert!(token.open(&old, "6", &read).is_err(), "another row");

    let both = KeyRing::new([(2, &k2), (1, &k1)]).unwrap();
    let done = rotate_postgres(&mut client, &token, "id", &both, 7, None, |_| {})
        .await
        .unwrap();
    assert_eq!(done.rotated, 30);
    let again = rotate_postgres(&mut client, &token, "id", &both, 7, None, |_| {})
        .await
        .unwrap();
    assert_eq!(again.rotated, 0);
    let new_only = KeyRing::new([(2, &k2)]).unwrap();
    for id in 1_i64..=30 {
        let sealed: Encrypted<String> = client
            .query_one("SELECT token FROM users WHERE id = $1", &[&id])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            token.open(&new_only, &id.to_string(), &sealed).unwrap(),
            format!("v{id}")
        );
    }
}

/// Blind indexes recomputed by the rotation on PostgreSQL (see the SQLite test).
#[tokio::test]
async fn blind_indexes_survive_a_key_rotation_on_postgres() {
    use strongroom_field::rotation::{BlindIndex, RotationPlan};
    let Some(mut client) = client().await else {
        return;
    };
    client
        .batch_execute("CREATE TABLE people (id BIGINT PRIMARY KEY, email BYTEA, email_bidx BYTEA)")
        .await
        .unwrap();
    let (k1, k2) = (Key::from_bytes(&[1; 32]), Key::from_bytes(&[2; 32]));
    let old = KeyRing::new([(1, &k1)]).unwrap();
    let email = Column::new("people", "email").unwrap();
    for id in 1_i64..=5 {
        let address = format!("user{id}@example.com");
        let sealed: Encrypted<String> = email.seal(&old, &id.to_string(), &address).unwrap();
        let bidx = email.blind_index(&old, address.as_bytes()).to_vec();
        client
            .execute(
                "INSERT INTO people VALUES ($1, $2, $3)",
                &[&id, &sealed, &bidx],
            )
            .await
            .unwrap();
    }
    let both = KeyRing::new([(2, &k2), (1, &k1)]).unwrap();
    let done = RotationPlan::new(&email, "id")
        .unwrap()
        .batch_size(2)
        .with_blind_index(
            BlindIndex::new("email_bidx", |e: &String| e.clone().into_bytes()).unwrap(),
        )
        .run_postgres(&mut client, &both, |_| {})
        .await
        .unwrap();
    assert_eq!((done.rotated, done.reindexed, done.skipped), (5, 5, 0));
    let new_only = KeyRing::new([(2, &k2)]).unwrap();
    let wanted = email.blind_index(&new_only, b"user4@example.com").to_vec();
    let row = client
        .query_one(
            "SELECT id, email FROM people WHERE email_bidx = $1",
            &[&wanted],
        )
        .await
        .unwrap();
    let id: i64 = row.get(0);
    let sealed: Encrypted<String> = row.get(1);
    assert_eq!(id, 4);
    assert_eq!(
        email.open(&new_only, "4", &sealed).unwrap(),
        "user4@example.com"
    );
}
