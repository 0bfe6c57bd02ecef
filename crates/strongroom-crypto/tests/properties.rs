//! Property tests: round trips, single-bit flips, wrong contexts, wrong KEK versions.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use proptest::prelude::*;
use secrecy::ExposeSecret as _;
use strongroom_crypto::{Context, Error, Key, KeyRing};

fn ring_v(version: u32, byte: u8) -> KeyRing {
    KeyRing::new([(version, &Key::from_bytes(&[byte; 32]))]).unwrap()
}

fn context() -> impl Strategy<Value = Context> {
    (
        "[a-z0-9_-]{1,12}",
        "[a-z0-9_-]{1,12}",
        "[A-Za-z0-9_./-]{1,40}",
    )
        .prop_map(|(ns, env, key)| Context::secret(&ns, &env, &key))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn envelope_round_trips(plaintext in proptest::collection::vec(any::<u8>(), 0..4096), context in context()) {
        let ring = ring_v(3, 0x33);
        let sealed = ring.seal(&context, &plaintext).unwrap();
        prop_assert_eq!(sealed.len(), plaintext.len() + strongroom_crypto::ENVELOPE_OVERHEAD);
        prop_assert_eq!(ring.open(&context, &sealed).unwrap().expose_secret().to_vec(), plaintext.clone());
    }

    #[test]
    fn deterministic_round_trips_and_repeats(plaintext in proptest::collection::vec(any::<u8>(), 0..512), context in context()) {
        let ring = ring_v(1, 0x11);
        let a = ring.seal_deterministic(&context, &plaintext).unwrap();
        let b = ring.seal_deterministic(&context, &plaintext).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(ring.open_deterministic(&context, &a).unwrap().expose_secret().to_vec(), plaintext.clone());
    }

    #[test]
    fn simple_round_trips(plaintext in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let key = Key::from_bytes(&[0x44; 32]);
        let sealed = strongroom_crypto::simple::seal(&key, &plaintext).unwrap();
        prop_assert_eq!(strongroom_crypto::simple::open(&key, &sealed).unwrap().expose_secret().to_vec(), plaintext.clone());
    }

    /// Every single-bit flip anywhere in an envelope (format byte, KEK version, DEK nonce,
    /// wrapped DEK, DEK tag, value nonce, ciphertext, tag) makes `open` fail.
    #[test]
    fn any_bit_flip_in_an_envelope_fails(plaintext in proptest::collection::vec(any::<u8>(), 0..64), bit in any::<prop::sample::Index>()) {
        let ring = ring_v(1, 0x11);
        let context = Context::secret("default", "global", "K");
        let mut sealed = ring.seal(&context, &plaintext).unwrap();
        let bit = bit.index(sealed.len() * 8);
        sealed[bit / 8] ^= 1 << (bit % 8);
        let err = ring.open(&context, &sealed).unwrap_err();
        let expected = match bit / 8 {
            0 => matches!(err, Error::UnknownFormat { .. }),
            1..=4 => matches!(err, Error::KeyVersionUnavailable { .. }),
            _ => err == Error::Integrity,
        };
        prop_assert!(expected, "bit {} gave {:?}", bit, err);
    }

    #[test]
    fn any_bit_flip_in_deterministic_or_keyed_hash_fails(plaintext in proptest::collection::vec(any::<u8>(), 0..64), bit in any::<prop::sample::Index>()) {
        let ring = ring_v(1, 0x11);
        let context = Context::field("users", "email", "");
        let mut sealed = ring.seal_deterministic(&context, &plaintext).unwrap();
        let i = bit.index(sealed.len() * 8);
        sealed[i / 8] ^= 1 << (i % 8);
        prop_assert!(ring.open_deterministic(&context, &sealed).is_err());

        let mut stored = ring.keyed_hash(&context, &plaintext).to_bytes();
        let i = bit.index(stored.len() * 8);
        stored[i / 8] ^= 1 << (i % 8);
        let verified = strongroom_crypto::KeyedHash::from_bytes(&stored)
            .and_then(|h| ring.verify_keyed_hash(&context, &plaintext, &h));
        prop_assert!(!matches!(verified, Ok(true)));
    }

    #[test]
    fn a_wrong_context_fails(plaintext in proptest::collection::vec(any::<u8>(), 0..256), a in context(), b in context()) {
        prop_assume!(a != b);
        let ring = ring_v(1, 0x11);
        prop_assert_eq!(ring.open(&a, &ring.seal(&b, &plaintext).unwrap()).unwrap_err(), Error::Integrity);
        prop_assert_eq!(ring.open_deterministic(&a, &ring.seal_deterministic(&b, &plaintext).unwrap()).unwrap_err(), Error::Integrity);
        prop_assert!(!ring.verify_keyed_hash(&a, &plaintext, &ring.keyed_hash(&b, &plaintext)).unwrap());
    }

    #[test]
    fn truncation_is_an_error_not_a_panic(plaintext in proptest::collection::vec(any::<u8>(), 0..64), cut in any::<prop::sample::Index>()) {
        let ring = ring_v(1, 0x11);
        let context = Context::secret("default", "global", "K");
        let sealed = ring.seal(&context, &plaintext).unwrap();
        let cut = cut.index(sealed.len());
        prop_assert!(ring.open(&context, &sealed[..cut]).is_err());
        let det = ring.seal_deterministic(&context, &plaintext).unwrap();
        prop_assert!(ring.open_deterministic(&context, &det[..cut.min(det.len() - 1)]).is_err());
    }

    #[test]
    fn rewrap_keeps_value_ciphertext_and_opens(plaintext in proptest::collection::vec(any::<u8>(), 0..256), context in context()) {
        let old = Key::from_bytes(&[0x11; 32]);
        let new = Key::from_bytes(&[0x22; 32]);
        let before = KeyRing::new([(1, &old)]).unwrap();
        let after = KeyRing::new([(2, &new), (1, &old)]).unwrap();
        let sealed = before.seal(&context, &plaintext).unwrap();
        let rewrapped = after.rewrap(&context, &sealed).unwrap().unwrap();
        // The value's nonce, ciphertext and tag (from offset 65) are untouched.
        prop_assert_eq!(&sealed[65..], &rewrapped[65..]);
        prop_assert_eq!(strongroom_crypto::inspect(&rewrapped).unwrap().kek_version, 2);
        prop_assert_eq!(after.open(&context, &rewrapped).unwrap().expose_secret().to_vec(), plaintext.clone());
        // A ring with only the new key opens it; one with only the old key can not.
        let only_new = KeyRing::new([(2, &new)]).unwrap();
        prop_assert_eq!(only_new.open(&context, &rewrapped).unwrap().expose_secret().to_vec(), plaintext.clone());
        prop_assert_eq!(before.open(&context, &rewrapped).unwrap_err(), Error::KeyVersionUnavailable { version: 2 });
        prop_assert!(after.rewrap(&context, &rewrapped).unwrap().is_none());
    }
}

#[test]
fn a_missing_kek_version_is_not_an_integrity_error() {
    let sealed = ring_v(5, 0x55).seal(&Context::new("t"), b"x").unwrap();
    assert_eq!(
        ring_v(4, 0x55)
            .open(&Context::new("t"), &sealed)
            .unwrap_err(),
        Error::KeyVersionUnavailable { version: 5 }
    );
    let det = ring_v(5, 0x55)
        .seal_deterministic(&Context::new("t"), b"x")
        .unwrap();
    assert_eq!(
        ring_v(4, 0x55)
            .open_deterministic(&Context::new("t"), &det)
            .unwrap_err(),
        Error::KeyVersionUnavailable { version: 5 }
    );
}

#[test]
fn the_same_version_with_another_key_is_an_integrity_error() {
    let sealed = ring_v(1, 0x11).seal(&Context::new("t"), b"x").unwrap();
    assert_eq!(
        ring_v(1, 0x12)
            .open(&Context::new("t"), &sealed)
            .unwrap_err(),
        Error::Integrity
    );
}

#[test]
fn nonces_and_deks_are_fresh() {
    let ring = ring_v(1, 0x11);
    let a = ring.seal(&Context::new("t"), b"same").unwrap();
    let b = ring.seal(&Context::new("t"), b"same").unwrap();
    assert_ne!(a[5..17], b[5..17], "DEK nonces differ");
    assert_ne!(a[17..49], b[17..49], "wrapped DEKs differ");
    assert_ne!(a[65..77], b[65..77], "value nonces differ");
}
