#![no_main]
//! Arbitrary text parsed as a key and as a `STRONGROOM_KEYS` spec.
libfuzzer_sys::fuzz_target!(|data: &[u8]| strongroom_crypto::fuzzing::parse_key(data));
