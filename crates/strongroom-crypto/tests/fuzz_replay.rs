//! Replays the cargo-fuzz corpora and crash regressions through the same target bodies,
//! so `cargo test` checks them where cargo-fuzz or a nightly toolchain is absent.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) -> usize {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut count = 0;
    for dir in [
        fuzz.join("corpus").join(target),
        fuzz.join("regressions").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                body(&std::fs::read(&path).unwrap());
                count += 1;
            }
        }
    }
    println!("fuzz replay {target}: {count} inputs");
    count
}

#[test]
fn open_any_corpus() {
    assert!(
        replay("open_any", strongroom_crypto::fuzzing::open_any) > 0,
        "fuzz/corpus/open_any is empty"
    );
}

#[test]
fn parse_key_corpus() {
    assert!(
        replay("parse_key", strongroom_crypto::fuzzing::parse_key) > 0,
        "fuzz/corpus/parse_key is empty"
    );
}
