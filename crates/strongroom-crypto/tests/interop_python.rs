//! The simple (PocketBase) format against an independent AES-GCM implementation:
//! Python's `cryptography` package. `cargo xtask ci` installs it when absent.
//!
//! Without python3 + cryptography the test fails, unless the developer sets
//! `STRONGROOM_SKIP_PYTHON_INTEROP=1` explicitly.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::io::Write as _;
use std::process::{Command, Stdio};

use secrecy::ExposeSecret as _;
use strongroom_crypto::{simple, Key};

const KEY_HEX: &str = "8f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";

/// Runs a Python program with `input` on stdin, returning its stdout, or `None` when the
/// developer opted out.
fn python(program: &str, input: &str) -> Option<String> {
    if std::env::var_os("STRONGROOM_SKIP_PYTHON_INTEROP").is_some() {
        eprintln!("STRONGROOM_SKIP_PYTHON_INTEROP is set: skipping the Python interop test");
        return None;
    }
    let mut child = Command::new("python3")
        .args(["-c", program])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed for the interop test (or set STRONGROOM_SKIP_PYTHON_INTEROP=1)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python3 failed (is `cryptography` installed? `pip install cryptography`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn python_opens_what_strongroom_seals() {
    let key = Key::parse(KEY_HEX).unwrap();
    let plaintexts: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"sk-live-abc".to_vec(),
        (0..=255).collect(),
        vec![b'x'; 4096],
    ];
    let sealed: Vec<String> = plaintexts
        .iter()
        .map(|p| simple::seal(&key, p).unwrap())
        .collect();
    let program = r#"
import base64, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key = bytes.fromhex(sys.argv[1] if len(sys.argv) > 1 else "KEY")
for line in sys.stdin.read().split():
    raw = base64.b64decode(line, validate=True)
    print(AESGCM(key).decrypt(raw[:12], raw[12:], None).hex())
"#
    .replace("\"KEY\"", &format!("\"{KEY_HEX}\""));
    let Some(out) = python(&program, &sealed.join("\n")) else {
        return;
    };
    let opened: Vec<Vec<u8>> = out.lines().map(|l| hex::decode(l).unwrap()).collect();
    assert_eq!(opened, plaintexts);
}

#[test]
fn strongroom_opens_what_python_seals() {
    let program = format!(
        r#"
import base64, os
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key = bytes.fromhex("{KEY_HEX}")
for pt in [b"", b"from-python", bytes(range(256)), b"y" * 4096]:
    nonce = os.urandom(12)
    print(base64.b64encode(nonce + AESGCM(key).encrypt(nonce, pt, None)).decode())
"#
    );
    let Some(out) = python(&program, "") else {
        return;
    };
    let key = Key::parse(KEY_HEX).unwrap();
    let opened: Vec<Vec<u8>> = out
        .lines()
        .map(|l| simple::open(&key, l).unwrap().expose_secret().to_vec())
        .collect();
    let expected: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"from-python".to_vec(),
        (0..=255).collect(),
        vec![b'y'; 4096],
    ];
    assert_eq!(opened, expected);
    // And a value under another key is refused as an integrity failure.
    let other = Key::from_bytes(&[9; 32]);
    assert_eq!(
        simple::open(&other, out.lines().next().unwrap()).unwrap_err(),
        strongroom_crypto::Error::Integrity
    );
}
