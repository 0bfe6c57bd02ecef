//! A users table with an encrypted API token and a blind-indexed, encrypted email, on
//! SQLite; then a key rotation of both columns.
//!
//! ```text
//! cargo run -p strongroom-field --features rusqlite --example users_sqlite [-- PATH.db]
//! ```

use strongroom_crypto::{Key, KeyRing};
use strongroom_field::rotation::rotate_sqlite;
use strongroom_field::{Column, Encrypted};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = std::env::args()
        .nth(1)
        .map_or_else(|| dir.path().join("users.db"), Into::into);
    let conn = rusqlite::Connection::open(&path)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS users (
             id TEXT PRIMARY KEY,
             email BLOB NOT NULL,          -- Encrypted<String>
             email_bidx BLOB NOT NULL,     -- blind index for lookups
             api_token BLOB NOT NULL       -- Encrypted<String>
         );
         CREATE INDEX IF NOT EXISTS users_email_bidx ON users (email_bidx);",
    )?;

    let old_key = Key::generate()?;
    let ring = KeyRing::single(&old_key);
    let email = Column::new("users", "email")?;
    let api_token = Column::new("users", "api_token")?;

    for (id, address, token) in [
        ("u1", "alice@example.com", "tok_alice"),
        ("u2", "bob@example.com", "tok_bob"),
        ("u3", "carol@example.com", "tok_carol"),
    ] {
        let sealed_email: Encrypted<String> = email.seal(&ring, id, &address.to_owned())?;
        let sealed_token: Encrypted<String> = api_token.seal(&ring, id, &token.to_owned())?;
        let bidx = email.blind_index(&ring, address.as_bytes());
        conn.execute(
            "INSERT OR REPLACE INTO users (id, email, email_bidx, api_token) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![id, sealed_email, bidx.as_slice(), sealed_token],
        )?;
    }

    // Find Bob by email without decrypting the table.
    let wanted = email.blind_index(&ring, b"bob@example.com");
    let (id, token): (String, Encrypted<String>) = conn.query_row(
        "SELECT id, api_token FROM users WHERE email_bidx = ?1",
        [wanted.as_slice()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    println!(
        "found {id} by blind index; token opens: {}",
        api_token.open(&ring, &id, &token)? == "tok_bob"
    );
    println!("debug never shows plaintext: {token:?}");

    // Copying a ciphertext to another row does not open.
    let alice: Encrypted<String> =
        conn.query_row("SELECT api_token FROM users WHERE id = 'u1'", [], |r| {
            r.get(0)
        })?;
    println!(
        "alice's token read as bob's row: {}",
        api_token
            .open(&ring, "u2", &alice)
            .map_or_else(|e| e.to_string(), |_| "opened?!".into())
    );

    // Rotate to a new key (the blind index is recomputed from the plaintext by the app
    // when it rotates its index key; here the key for the index stays version 1 → 2 too).
    let new_key = Key::generate()?;
    let rotated_ring = KeyRing::new([(2, &new_key), (1, &old_key)])?;
    for column in [&email, &api_token] {
        let done = rotate_sqlite(&conn, column, "id", &rotated_ring, 2, None, |p| {
            println!(
                "  {}: scanned {}, re-wrapped {}",
                column.column(),
                p.scanned,
                p.rotated
            );
        })?;
        println!("{} rotated: {} values", column.column(), done.rotated);
    }
    let new_only = KeyRing::new([(2, &new_key)])?;
    let token: Encrypted<String> =
        conn.query_row("SELECT api_token FROM users WHERE id = 'u3'", [], |r| {
            r.get(0)
        })?;
    println!(
        "after rotation, the new key alone opens carol's token: {}",
        api_token.open(&new_only, "u3", &token)? == "tok_carol"
    );
    Ok(())
}
