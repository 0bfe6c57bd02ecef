//! Keys, key rings, fingerprints, passwords: parsing rules and redaction.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use secrecy::{ExposeSecret as _, SecretString};
use strongroom_crypto::{Context, Error, Key, KeyRing, PasswordParams};

const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[test]
fn hex_and_base64_give_the_same_key() {
    let a = Key::parse(HEX).unwrap();
    let b = Key::parse(B64).unwrap();
    let c = Key::parse(&format!("  {}\n", HEX.to_uppercase())).unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(a.fingerprint(), c.fingerprint());
    assert_eq!(a.to_hex().expose_secret(), HEX);
    assert_eq!(a.to_base64().expose_secret(), B64);
    assert_eq!(
        Key::parse(B64.trim_end_matches('=')).unwrap().fingerprint(),
        a.fingerprint()
    );
}

#[test]
fn bad_keys_are_rejected_without_echoing_them() {
    let bad = [
        "",
        "secret-password-123",
        &HEX[..62],
        &format!("{HEX}00"),
        &HEX.replace('0', "g"),
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8fIA==", // 33 bytes
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",         // 30 bytes
        "!!ECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ];
    for text in bad {
        let err = Key::parse(text).unwrap_err();
        assert_eq!(err, Error::InvalidKey);
        let message = err.to_string();
        assert!(message.contains("64 hex characters or base64 of 32 bytes"));
        if text.len() > 3 {
            assert!(!message.contains(text), "error echoes its input");
        }
    }
}

#[test]
fn debug_never_shows_key_material() {
    let key = Key::parse(HEX).unwrap();
    let ring = KeyRing::single(&key);
    for shown in [
        format!("{key:?}"),
        format!("{ring:?}"),
        format!("{:?}", ring.active()),
    ] {
        assert!(!shown.contains(HEX) && !shown.contains("0a0b0c"), "{shown}");
        assert!(shown.contains(&key.fingerprint().to_string()), "{shown}");
    }
    let opened = ring
        .open(
            &Context::new("t"),
            &ring.seal(&Context::new("t"), b"plaintext-xyz").unwrap(),
        )
        .unwrap();
    assert!(!format!("{opened:?}").contains("plaintext-xyz"));
    let hash = ring.keyed_hash(&Context::new("t"), b"v");
    assert!(!format!("{hash:?}").contains(&hex::encode(hash.mac())));
}

#[test]
fn key_rings_need_unique_versions_and_at_least_one_key() {
    let key = Key::parse(HEX).unwrap();
    assert!(matches!(
        KeyRing::new([(1, &key), (1, &key)]),
        Err(Error::InvalidKeyRing { .. })
    ));
    assert!(matches!(
        KeyRing::new(std::iter::empty()),
        Err(Error::InvalidKeyRing { .. })
    ));
    let ring = KeyRing::parse_spec(&format!("2:{B64}, 1:{HEX}")).unwrap();
    assert_eq!(ring.active().version(), 2);
    assert_eq!(
        ring.keks()
            .map(strongroom_crypto::Kek::version)
            .collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(
        ring.get(9).unwrap_err(),
        Error::KeyVersionUnavailable { version: 9 }
    );
}

#[test]
fn key_ring_spec_errors_name_the_entry_not_the_key() {
    for (spec, needle) in [
        (format!("1:{HEX},2"), "entry 2: expected VERSION:KEY"),
        (
            format!("x:{HEX}"),
            "entry 1: version must be a whole number",
        ),
        (
            "1:not-a-key-at-all".to_owned(),
            "entry 1 (version 1): expected 64 hex",
        ),
        (format!("1:{HEX},1:{B64}"), "version 1 appears twice"),
    ] {
        let message = KeyRing::parse_spec(&spec).unwrap_err().to_string();
        assert!(message.contains(needle), "{message}");
        assert!(
            !message.contains(HEX) && !message.contains("not-a-key"),
            "{message}"
        );
    }
}

#[test]
fn fingerprints_tell_keys_apart_and_parse_back() {
    let a = Key::parse(HEX).unwrap().fingerprint();
    let b = Key::generate().unwrap().fingerprint();
    assert_ne!(a, b);
    assert_eq!(
        strongroom_crypto::Fingerprint::from_hex(&a.to_string()).unwrap(),
        a
    );
    assert_eq!(a.to_string().len(), 16);
}

#[test]
fn password_keys_are_reproducible_from_stored_params() {
    let params = PasswordParams::generate().unwrap();
    let stored = params.encode();
    assert!(
        stored.starts_with("argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    let password = SecretString::from("correct horse battery staple");
    let a = params.derive_key(&password).unwrap();
    let b = PasswordParams::decode(&stored)
        .unwrap()
        .derive_key(&password)
        .unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    let other = params.derive_key(&SecretString::from("wrong")).unwrap();
    assert_ne!(a.fingerprint(), other.fingerprint());
    let fresh = PasswordParams::generate()
        .unwrap()
        .derive_key(&password)
        .unwrap();
    assert_ne!(
        a.fingerprint(),
        fresh.fingerprint(),
        "a new salt gives a new key"
    );
}

#[test]
fn password_params_refuse_bad_input() {
    assert!(PasswordParams::generate()
        .unwrap()
        .derive_key(&SecretString::from(""))
        .is_err());
    for bad in [
        "",
        "argon2i$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA",
        "argon2id$v=19$m=1024,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA",
        "argon2id$v=19$m=19456,t=0,p=1$AAAAAAAAAAAAAAAAAAAAAA",
        "argon2id$v=19$m=19456,t=2,p=1$AAAA",
        "argon2id$v=19$m=19456,t=2,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA",
    ] {
        assert!(
            matches!(PasswordParams::decode(bad), Err(Error::Password { .. })),
            "{bad}"
        );
    }
}

#[test]
fn inspect_reports_format_and_version_and_rejects_garbage() {
    let ring = KeyRing::new([(42, &Key::parse(HEX).unwrap())]).unwrap();
    let sealed = ring.seal(&Context::new("t"), b"x").unwrap();
    let info = strongroom_crypto::inspect(&sealed).unwrap();
    assert_eq!(
        (info.format, info.kek_version),
        (strongroom_crypto::Format::Envelope, 42)
    );
    assert!(matches!(
        strongroom_crypto::inspect(&[]),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(
        strongroom_crypto::inspect(&[0x7f, 0, 0, 0, 1]),
        Err(Error::UnknownFormat { found: 0x7f, .. })
    ));
    assert!(matches!(
        ring.open(&Context::new("t"), &[0x01, 0, 0, 0]),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(
        strongroom_crypto::simple::open(&Key::parse(HEX).unwrap(), "AAEC"),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(
        strongroom_crypto::simple::open(&Key::parse(HEX).unwrap(), "not base64!"),
        Err(Error::Malformed { .. })
    ));
}
