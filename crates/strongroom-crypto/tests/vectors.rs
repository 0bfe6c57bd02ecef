//! The test vectors of docs/format.md, produced independently with Python's
//! `cryptography`, checked against the crate. The crate ships them (`tests/vectors.md`),
//! so these tests run without the repository; inside it, they must match the docs.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::HashMap;

use secrecy::ExposeSecret as _;
use strongroom_crypto::{simple, Key, KeyRing, KeyedHash};

struct Vector(HashMap<String, String>);

impl Vector {
    fn text(&self, field: &str) -> &str {
        self.0
            .get(field)
            .unwrap_or_else(|| panic!("vector {} lacks {field}", self.text("name")))
    }
    fn bytes(&self, field: &str) -> Vec<u8> {
        hex::decode(self.text(field)).unwrap()
    }
    fn key(&self) -> Key {
        Key::parse(self.text("kek")).unwrap()
    }
    fn ring(&self) -> KeyRing {
        let version: u32 = self.text("kek_version").parse().unwrap();
        KeyRing::new([(version, &self.key())]).unwrap()
    }
    /// The context bytes: rebuilt through the crate's `Context` to check its encoding too.
    fn context(&self) -> strongroom_crypto::Context {
        let raw = self.bytes("context");
        let mut parts = Vec::new();
        let mut rest = raw.as_slice();
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            parts.push(String::from_utf8(rest[4..4 + len].to_vec()).unwrap());
            rest = &rest[4 + len..];
        }
        let mut context = strongroom_crypto::Context::new(&parts[0]);
        for part in &parts[1..] {
            context = context.with(part);
        }
        assert_eq!(
            context.as_bytes(),
            raw.as_slice(),
            "context encoding differs"
        );
        context
    }
}

/// The vector blocks shipped with the crate.
const SHIPPED: &str = include_str!("vectors.md");

fn vectors() -> Vec<Vector> {
    parse(SHIPPED)
}

fn parse(doc: &str) -> Vec<Vector> {
    let mut out = Vec::new();
    let mut current: Option<HashMap<String, String>> = None;
    for line in doc.lines() {
        if line == "```vector" {
            current = Some(HashMap::new());
        } else if line == "```" {
            if let Some(fields) = current.take() {
                out.push(Vector(fields));
            }
        } else if let Some(fields) = current.as_mut() {
            let (name, value) = line.split_once(':').unwrap();
            fields.insert(name.trim().to_owned(), value.trim().to_owned());
        }
    }
    out
}

#[test]
fn every_documented_vector_checks_out() {
    let vectors = vectors();
    assert!(
        vectors.len() >= 6,
        "expected at least 6 vectors in docs/format.md"
    );
    for vector in &vectors {
        let name = vector.text("name");
        match name.split('-').next().unwrap() {
            "fingerprint" => {
                assert_eq!(
                    vector.key().fingerprint().to_string(),
                    vector.text("fingerprint")
                );
            }
            "envelope" => {
                let opened = vector
                    .ring()
                    .open(&vector.context(), &vector.bytes("sealed"))
                    .unwrap();
                assert_eq!(
                    opened.expose_secret(),
                    vector.bytes("plaintext").as_slice(),
                    "{name}"
                );
                let info = strongroom_crypto::inspect(&vector.bytes("sealed")).unwrap();
                assert_eq!(info.kek_version.to_string(), vector.text("kek_version"));
            }
            "deterministic" => {
                let ring = vector.ring();
                let sealed = ring
                    .seal_deterministic(&vector.context(), &vector.bytes("plaintext"))
                    .unwrap();
                assert_eq!(hex::encode(&sealed), vector.text("sealed"), "{name}");
                let opened = ring.open_deterministic(&vector.context(), &sealed).unwrap();
                assert_eq!(opened.expose_secret(), vector.bytes("plaintext").as_slice());
            }
            "keyed" => {
                let ring = vector.ring();
                let hash = ring.keyed_hash(&vector.context(), &vector.bytes("plaintext"));
                assert_eq!(
                    hex::encode(hash.to_bytes()),
                    vector.text("sealed"),
                    "{name}"
                );
                let stored = KeyedHash::from_bytes(&vector.bytes("sealed")).unwrap();
                assert!(ring
                    .verify_keyed_hash(&vector.context(), &vector.bytes("plaintext"), &stored)
                    .unwrap());
            }
            "simple" => {
                let opened = simple::open(&vector.key(), vector.text("sealed_base64")).unwrap();
                assert_eq!(opened.expose_secret(), vector.bytes("plaintext").as_slice());
                let raw = base64_decode(vector.text("sealed_base64"));
                assert_eq!(
                    &raw[..12],
                    vector.bytes("nonce").as_slice(),
                    "nonce is the prefix"
                );
            }
            other => panic!("unknown vector kind {other}"),
        }
    }
    println!("checked {} documented test vectors", vectors.len());
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[test]
fn shipped_vectors_match_the_documented_ones() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/format.md");
    let Ok(doc) = std::fs::read_to_string(path) else {
        eprintln!("docs/format.md is not here (a packaged crate): nothing to compare");
        return;
    };
    let fields = |v: &[Vector]| {
        v.iter()
            .map(|v| {
                let mut f: Vec<_> = v.0.iter().map(|(k, x)| format!("{k}={x}")).collect();
                f.sort();
                f
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        fields(&parse(&doc)),
        fields(&vectors()),
        "tests/vectors.md differs from docs/format.md"
    );
}
