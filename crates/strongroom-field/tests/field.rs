//! `Encrypted<T>` without a database: round trips, binding to row and column, redaction.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use strongroom_crypto::{Key, KeyRing};
use strongroom_field::{Column, Encrypted, FieldError};

fn ring() -> KeyRing {
    KeyRing::single(&Key::from_bytes(&[5; 32]))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Address {
    street: String,
    zip: u32,
}

#[test]
fn strings_bytes_and_structs_round_trip() {
    let ring = ring();
    let column = Column::new("users", "data").unwrap();
    let s: Encrypted<String> = column.seal(&ring, "1", &"text".to_owned()).unwrap();
    assert_eq!(column.open(&ring, "1", &s).unwrap(), "text");
    let b: Encrypted<Vec<u8>> = column.seal(&ring, "1", &vec![0, 255, 7]).unwrap();
    assert_eq!(column.open(&ring, "1", &b).unwrap(), vec![0, 255, 7]);
    let address = Address {
        street: "Main St 1".into(),
        zip: 12345,
    };
    let a: Encrypted<Address> = column.seal(&ring, "1", &address).unwrap();
    assert_eq!(column.open(&ring, "1", &a).unwrap(), address);
}

#[test]
fn another_row_or_column_does_not_open() {
    let ring = ring();
    let token = Column::new("users", "api_token").unwrap();
    let other = Column::new("users", "password").unwrap();
    let other_table = Column::new("admins", "api_token").unwrap();
    let sealed: Encrypted<String> = token.seal(&ring, "42", &"secret".to_owned()).unwrap();
    for result in [
        token.open(&ring, "43", &sealed),
        other.open(&ring, "42", &sealed),
        other_table.open(&ring, "42", &sealed),
    ] {
        assert!(matches!(
            result,
            Err(FieldError::Crypto(strongroom_crypto::Error::Integrity))
        ));
    }
}

#[test]
fn debug_and_serde_never_show_plaintext() {
    let ring = ring();
    let column = Column::new("users", "api_token").unwrap();
    let sealed: Encrypted<String> = column
        .seal(&ring, "1", &"PLAINTEXT-XYZ".to_owned())
        .unwrap();
    assert!(!format!("{sealed:?}").contains("PLAINTEXT"));
    let json = serde_json::to_string(&sealed).unwrap();
    assert!(!json.contains("PLAINTEXT"));
    let back: Encrypted<String> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, sealed);
    assert!(serde_json::from_str::<Encrypted<String>>("\"bm90IHNlYWxlZA==\"").is_err());
}

#[test]
fn blind_indexes_and_deterministic_values_find_equal_values_per_column() {
    let ring = ring();
    let email = Column::new("users", "email").unwrap();
    let backup = Column::new("users", "backup_email").unwrap();
    assert_eq!(
        email.blind_index(&ring, b"a@x.io"),
        email.blind_index(&ring, b"a@x.io")
    );
    assert_ne!(
        email.blind_index(&ring, b"a@x.io"),
        email.blind_index(&ring, b"b@x.io")
    );
    assert_ne!(
        email.blind_index(&ring, b"a@x.io"),
        backup.blind_index(&ring, b"a@x.io"),
        "per-column subkey"
    );
    let d1 = email
        .seal_deterministic(&ring, &"a@x.io".to_owned())
        .unwrap();
    let d2 = email
        .seal_deterministic(&ring, &"a@x.io".to_owned())
        .unwrap();
    assert_eq!(d1, d2);
    assert_eq!(email.open_deterministic(&ring, &d1).unwrap(), "a@x.io");
    assert!(backup.open_deterministic(&ring, &d1).is_err());
}

#[test]
fn identifiers_are_checked() {
    for bad in ["", "1abc", "users; DROP TABLE x", "a-b", "naïve"] {
        assert!(
            matches!(Column::new(bad, "c"), Err(FieldError::InvalidIdentifier(_))),
            "{bad}"
        );
    }
}

proptest! {
    #[test]
    fn any_string_round_trips_for_any_row(value in ".*", row in "[a-z0-9-]{1,36}") {
        let ring = ring();
        let column = Column::new("t", "c").unwrap();
        let sealed: Encrypted<String> = column.seal(&ring, &row, &value).unwrap();
        prop_assert_eq!(column.open(&ring, &row, &sealed).unwrap(), value);
    }
}
