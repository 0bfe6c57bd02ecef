//! Bodies of the cargo-fuzz targets, shared with the stable replay test so that the
//! corpus and crash regressions are checked by `cargo test` where cargo-fuzz is absent.
//!
//! Each function must return normally for any input: errors are fine, panics are bugs.

use crate::{simple, Context, Key, KeyRing, KeyedHash, PasswordParams};

fn ring() -> KeyRing {
    let one = Key::from_bytes(&[0x11; 32]);
    let two = Key::from_bytes(&[0x22; 32]);
    KeyRing::new([(2, &two), (1, &one)]).expect("two distinct versions")
}

/// Opens arbitrary bytes in every format.
pub fn open_any(data: &[u8]) {
    let ring = ring();
    let context = Context::secret("default", "global", "FUZZ");
    let _ = crate::inspect(data);
    let _ = ring.open(&context, data);
    let _ = ring.rewrap(&context, data);
    let _ = ring.open_deterministic(&context, data);
    if let Ok(hash) = KeyedHash::from_bytes(data) {
        let _ = ring.verify_keyed_hash(&context, b"candidate", &hash);
    }
    let text = String::from_utf8_lossy(data);
    let _ = simple::open(&Key::from_bytes(&[0x11; 32]), &text);
    let _ = PasswordParams::decode(&text);
}

/// Parses arbitrary text as a key and as a key-ring spec.
pub fn parse_key(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = Key::parse(&text);
    let _ = KeyRing::parse_spec(&text);
}
