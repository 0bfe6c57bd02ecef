//! `Encrypted<T>` in a real SQLite table: storage, lookup, rotation under concurrent writes.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use strongroom_crypto::{Key, KeyRing};
use strongroom_field::rotation::rotate_sqlite;
use strongroom_field::{Column, Encrypted};

fn key(b: u8) -> Key {
    Key::from_bytes(&[b; 32])
}

fn table(conn: &rusqlite::Connection) {
    conn.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, token BLOB, email_bidx BLOB)")
        .unwrap();
}

#[test]
fn stored_as_blob_and_read_back() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    table(&conn);
    let ring = KeyRing::single(&key(1));
    let token = Column::new("users", "token").unwrap();
    let sealed: Encrypted<String> = token.seal(&ring, "7", &"tok".to_owned()).unwrap();
    let bidx = token.blind_index(&ring, b"tok");
    conn.execute(
        "INSERT INTO users (id, token, email_bidx) VALUES (7, ?1, ?2)",
        rusqlite::params![sealed, bidx.as_slice()],
    )
    .unwrap();
    let kind: String = conn
        .query_row("SELECT typeof(token) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kind, "blob");
    let read: Encrypted<String> = conn
        .query_row(
            "SELECT token FROM users WHERE email_bidx = ?1",
            [bidx.as_slice()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(token.open(&ring, "7", &read).unwrap(), "tok");
    // Copied to another row, it does not open there.
    conn.execute(
        "INSERT INTO users (id, token) SELECT 8, token FROM users WHERE id = 7",
        [],
    )
    .unwrap();
    let copied: Encrypted<String> = conn
        .query_row("SELECT token FROM users WHERE id = 8", [], |r| r.get(0))
        .unwrap();
    assert!(token.open(&ring, "8", &copied).is_err());
    // Garbage in the column is a conversion error, not a panic.
    conn.execute("UPDATE users SET token = x'ff00' WHERE id = 8", [])
        .unwrap();
    assert!(conn
        .query_row("SELECT token FROM users WHERE id = 8", [], |r| r
            .get::<_, Encrypted<String>>(0))
        .is_err());
}

#[test]
fn rotation_resumes_and_never_overwrites_a_concurrent_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("field.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    table(&conn);
    let old = KeyRing::single(&key(1));
    let token = Column::new("users", "token").unwrap();
    for id in 1..=50 {
        let sealed: Encrypted<String> = token
            .seal(&old, &id.to_string(), &format!("v{id}"))
            .unwrap();
        conn.execute(
            "INSERT INTO users (id, token) VALUES (?1, ?2)",
            rusqlite::params![id, sealed],
        )
        .unwrap();
    }
    let (k1, k2) = (key(1), key(2));
    let both = KeyRing::new([(2, &k2), (1, &k1)]).unwrap();
    // A writer on another connection replaces row 5 (already re-wrapped) while the
    // rotation runs, under the old key as a process not yet redeployed would.
    let writer = rusqlite::Connection::open(&path).unwrap();
    let mut cursor = None;
    let mut progress_calls = 0;
    let first = rotate_sqlite(&conn, &token, "id", &both, 10, None, |p| {
        progress_calls += 1;
        if p.scanned == 20 {
            let fresh: Encrypted<String> = token
                .seal(&old, "5", &"written-during-rotation".to_owned())
                .unwrap();
            writer
                .execute(
                    "UPDATE users SET token = ?1 WHERE id = 5",
                    rusqlite::params![fresh],
                )
                .unwrap();
        }
        cursor.clone_from(&p.cursor);
    })
    .unwrap();
    assert_eq!(first.scanned, 50);
    assert_eq!(progress_calls, 5);
    // The concurrent write is intact (it was under key 1; a second run re-wraps it).
    let row5: Encrypted<String> = conn
        .query_row("SELECT token FROM users WHERE id = 5", [], |r| r.get(0))
        .unwrap();
    assert_eq!(row5.kek_version(), 1);
    assert_eq!(
        token.open(&both, "5", &row5).unwrap(),
        "written-during-rotation"
    );
    let second = rotate_sqlite(&conn, &token, "id", &both, 10, None, |_| {}).unwrap();
    assert_eq!(first.rotated + second.rotated, 51);
    // Resuming from the last cursor finds nothing left.
    let resumed = rotate_sqlite(&conn, &token, "id", &both, 10, cursor.as_deref(), |_| {}).unwrap();
    assert_eq!(resumed.scanned, 0);
    let new_only = KeyRing::new([(2, &k2)]).unwrap();
    for id in 1..=50 {
        let sealed: Encrypted<String> = conn
            .query_row("SELECT token FROM users WHERE id = ?1", [id], |r| r.get(0))
            .unwrap();
        assert_eq!(sealed.kek_version(), 2);
        let value = token.open(&new_only, &id.to_string(), &sealed).unwrap();
        assert_eq!(
            value,
            if id == 5 {
                "written-during-rotation".to_owned()
            } else {
                format!("v{id}")
            }
        );
    }
}

/// The reported hazard: after a key rotation, a blind index computed under the new key
/// found nothing for any existing row, silently. Now lookups during the rotation try
/// every key of the ring, and the rotation recomputes the index columns it is told about.
#[test]
fn blind_indexes_survive_a_key_rotation() {
    use strongroom_field::rotation::{BlindIndex, RotationPlan};
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE people (id INTEGER PRIMARY KEY, email BLOB, email_bidx BLOB)")
        .unwrap();
    let email = Column::new("people", "email").unwrap();
    let old = KeyRing::single(&key(1));
    // The application indexes the lowercased address.
    let normalized = |e: &String| e.to_lowercase().into_bytes();
    for (id, address) in [(1, "Alice@Example.com"), (2, "bob@example.com")] {
        let sealed: Encrypted<String> = email
            .seal(&old, &id.to_string(), &address.to_owned())
            .unwrap();
        let bidx = email.blind_index(&old, &normalized(&address.to_owned()));
        conn.execute(
            "INSERT INTO people VALUES (?1, ?2, ?3)",
            rusqlite::params![id, sealed, bidx.as_slice()],
        )
        .unwrap();
    }
    let find = |ring: &KeyRing, candidates: bool| -> Option<i64> {
        let wanted = if candidates {
            email.blind_index_candidates(ring, b"alice@example.com")
        } else {
            vec![email.blind_index(ring, b"alice@example.com")]
        };
        wanted.iter().find_map(|bidx| {
            conn.query_row(
                "SELECT id FROM people WHERE email_bidx = ?1",
                [bidx.as_slice()],
                |r| r.get(0),
            )
            .ok()
        })
    };
    let both = KeyRing::new([(2, &key(2)), (1, &key(1))]).unwrap();
    assert_eq!(
        find(&both, false),
        None,
        "the hazard: the active key's index misses"
    );
    assert_eq!(
        find(&both, true),
        Some(1),
        "during the rotation: every key's index"
    );

    let plan = RotationPlan::new(&email, "id")
        .unwrap()
        .batch_size(1)
        .with_blind_index(BlindIndex::new("email_bidx", normalized).unwrap());
    let done = plan.run_sqlite(&conn, &both, |_| {}).unwrap();
    assert_eq!(
        (done.scanned, done.rotated, done.reindexed, done.skipped),
        (2, 2, 2, 0)
    );
    let again = plan.run_sqlite(&conn, &both, |_| {}).unwrap();
    assert_eq!(
        (again.rotated, again.reindexed),
        (0, 0),
        "a second run writes nothing"
    );
    let new_only = KeyRing::new([(2, &key(2))]).unwrap();
    assert_eq!(
        find(&new_only, false),
        Some(1),
        "after it: the new key alone finds the row"
    );
    let bob: i64 = conn
        .query_row(
            "SELECT id FROM people WHERE email_bidx = ?1",
            [email.blind_index(&new_only, b"bob@example.com").as_slice()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bob, 2);
    // Index columns are identifiers; anything else is refused before any SQL.
    assert!(BlindIndex::new("email_bidx; DROP TABLE people", normalized).is_err());
}
