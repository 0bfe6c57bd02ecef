#![no_main]
//! Arbitrary request paths (and queries) through the gateway's upstream URL builder: a
//! built URL never leaves the configured scheme, host, port and base path.
libfuzzer_sys::fuzz_target!(|data: &[u8]| strongroom_gateway::fuzz_upstream(data));
