//! The users example on PostgreSQL.
//!
//! ```text
//! DATABASE_URL=postgres://... cargo run -p strongroom-field --features postgres --example users_postgres
//! ```
//! (`STRONGROOM_TEST_POSTGRES_URL`, set by `cargo xtask ci`, works too.)
//!
//! Copied into a crate of your own, it needs these dependencies and nothing else:
//!
//! ```toml
//! strongroom-field = { version = "0.1", features = ["postgres"] }
//! tokio-postgres = "0.7"
//! tokio = { version = "1", features = ["macros", "rt"] }
//! ```

use strongroom_field::rotation::{rotate_postgres, BlindIndex, RotationPlan};
use strongroom_field::{Column, Encrypted};
use strongroom_field::{Key, KeyRing};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .or_else(|_| std::env::var("STRONGROOM_TEST_POSTGRES_URL"))
        .map_err(|_| "set DATABASE_URL to a PostgreSQL URL (or run `cargo xtask postgres`)")?;
    let (mut client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(
            "DROP TABLE IF EXISTS example_users;
             CREATE TABLE example_users (
                 id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
                 name TEXT NOT NULL,
                 email BYTEA NOT NULL, email_bidx BYTEA NOT NULL, api_token BYTEA NOT NULL);
             CREATE INDEX ON example_users (email_bidx);",
        )
        .await?;

    let old_key = Key::generate()?;
    let ring = KeyRing::single(&old_key);
    let email = Column::new("example_users", "email")?;
    let api_token = Column::new("example_users", "api_token")?;

    for (name, address, token) in [
        ("alice", "alice@example.com", "tok_alice"),
        ("bob", "bob@example.com", "tok_bob"),
    ] {
        // The row id is bound into the ciphertexts, so take it first.
        let id: String = client
            .query_one("SELECT gen_random_uuid()::text", &[])
            .await?
            .get(0);
        let sealed_email: Encrypted<String> = email.seal(&ring, &id, &address.to_owned())?;
        let sealed_token: Encrypted<String> = api_token.seal(&ring, &id, &token.to_owned())?;
        let bidx = email.blind_index(&ring, address.as_bytes()).to_vec();
        client
            .execute(
                "INSERT INTO example_users (id, name, email, email_bidx, api_token) VALUES ($1::text::uuid, $2, $3, $4, $5)",
                &[&id, &name, &sealed_email, &bidx, &sealed_token],
            )
            .await?;
    }

    let wanted = email.blind_index(&ring, b"bob@example.com").to_vec();
    let row = client
        .query_one(
            "SELECT id::text, api_token FROM example_users WHERE email_bidx = $1",
            &[&wanted],
        )
        .await?;
    let (id, token): (String, Encrypted<String>) = (row.get(0), row.get(1));
    println!(
        "found {id} by blind index; token opens: {}",
        api_token.open(&ring, &id, &token)? == "tok_bob"
    );

    let new_key = Key::generate()?;
    let rotated_ring = KeyRing::new([(2, &new_key), (1, &old_key)])?;
    // The email column's rotation recomputes its blind index under the new key.
    let done = RotationPlan::new(&email, "id")?
        .batch_size(1)
        .with_blind_index(BlindIndex::new("email_bidx", |e: &String| {
            e.clone().into_bytes()
        })?)
        .run_postgres(&mut client, &rotated_ring, |_| {})
        .await?;
    println!(
        "email rotated: {} values, {} indexes",
        done.rotated, done.reindexed
    );
    let done = rotate_postgres(
        &mut client,
        &api_token,
        "id",
        &rotated_ring,
        1,
        None,
        |_| {},
    )
    .await?;
    println!("api_token rotated: {} values", done.rotated);
    let new_only = KeyRing::new([(2, &new_key)])?;
    let wanted = email.blind_index(&new_only, b"bob@example.com").to_vec();
    let row = client
        .query_one(
            "SELECT name FROM example_users WHERE email_bidx = $1",
            &[&wanted],
        )
        .await?;
    let name: String = row.get(0);
    assert_eq!(name, "bob", "the blind index follows the rotation");
    println!("after rotation, the new key's blind index finds {name}");
    let row = client
        .query_one(
            "SELECT id::text, api_token FROM example_users WHERE name = 'alice'",
            &[],
        )
        .await?;
    let (id, token): (String, Encrypted<String>) = (row.get(0), row.get(1));
    println!(
        "after rotation, the new key alone opens alice's token: {}",
        api_token.open(&new_only, &id, &token)? == "tok_alice"
    );
    client.batch_execute("DROP TABLE example_users").await?;
    Ok(())
}
