#![no_main]
//! Arbitrary bytes opened in every format: errors are fine, panics are bugs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| strongroom_crypto::fuzzing::open_any(data));
