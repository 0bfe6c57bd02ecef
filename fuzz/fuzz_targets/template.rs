#![no_main]
//! Arbitrary text parsed as a gateway header template; what parses must print and parse back.
libfuzzer_sys::fuzz_target!(|data: &[u8]| strongroom_gateway::fuzz_template(data));
