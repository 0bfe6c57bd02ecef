//! A users table with an encrypted API token and a blind-indexed, encrypted email, on
//! SQLite; then a key rotation of both columns.
//!
//! ```text
//! cargo run -p strongroom-field --features sqlite --example users_sqlite [-- PATH.db]
//! ```
//!
//! Copied into a crate of your own, it needs these dependencies and nothing else:
//!
//! ```toml
//! strongroom-field = { version = "0.1", features = ["bundled"] }
//! rusqlite = "0.37"
//! ```

use strongroom_field::rotation::{rotate_sqlite, BlindIndex, RotationPlan};
use strongroom_field::{Column, Encrypted};
use strongroom_field::{Key, KeyRing};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A fresh file in the system's temporary directory unless a path is given.
    let scratch = std::env::temp_dir().join(format!("strongroom-users-{}.db", std::process::id()));
    let path: std::path::PathBuf = std::env::args().nth(1).map_or(scratch.clone(), Into::into);
    run(&path)?;
    if path == scratch {
        std::fs::remove_file(&scratch)?;
    }
    Ok(())
}

/// The whole example on the database at `path`.
fn run(path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let conn = rusqlite::Connection::open(path)?;
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

    // Rotate to a new key. The blind index is a keyed hash under the active key, so the
    // email column's rotation is told about `email_bidx` and recomputes it from each value;
    // while it runs, lookups try every key of the ring (`blind_index_candidates`).
    let new_key = Key::generate()?;
    let rotated_ring = KeyRing::new([(2, &new_key), (1, &old_key)])?;
    let during = email.blind_index_candidates(&rotated_ring, b"carol@example.com");
    let found: Option<String> = during.iter().find_map(|bidx| {
        conn.query_row(
            "SELECT id FROM users WHERE email_bidx = ?1",
            [bidx.as_slice()],
            |r| r.get(0),
        )
        .ok()
    });
    println!("during the rotation, carol is found by a candidate index: {found:?}");
    let done = RotationPlan::new(&email, "id")?
        .batch_size(2)
        .with_blind_index(BlindIndex::new("email_bidx", |e: &String| {
            e.clone().into_bytes()
        })?)
        .run_sqlite(&conn, &rotated_ring, |p| {
            println!(
                "  email: scanned {}, re-wrapped {}, re-indexed {}",
                p.scanned, p.rotated, p.reindexed
            );
        })?;
    println!(
        "email rotated: {} values, {} indexes",
        done.rotated, done.reindexed
    );
    let done = rotate_sqlite(&conn, &api_token, "id", &rotated_ring, 2, None, |_| {})?;
    println!("api_token rotated: {} values", done.rotated);
    let new_only = KeyRing::new([(2, &new_key)])?;
    // After the rotation the new key alone finds rows by email.
    let wanted = email.blind_index(&new_only, b"carol@example.com");
    let carol: String = conn.query_row(
        "SELECT id FROM users WHERE email_bidx = ?1",
        [wanted.as_slice()],
        |r| r.get(0),
    )?;
    assert_eq!(carol, "u3", "the blind index follows the rotation");
    println!("after rotation, the new key's blind index finds {carol}");
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
