//! Wycheproof vectors (C2SP/wycheproof, Apache-2.0) for every primitive the crate uses:
//! AES-GCM, AES-SIV-CMAC, HKDF-SHA-256 and HMAC-SHA-256. AES-GCM-SIV is not used by the
//! crate (deterministic mode is AES-SIV), so its file is not run.
//!
//! Valid vectors must pass; invalid vectors must fail. Counts are printed.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::PathBuf;

use aes_gcm::aead::Payload;
use hmac::Mac as _;
use serde::Deserialize;

#[derive(Deserialize)]
struct File<G> {
    algorithm: String,
    #[serde(rename = "testGroups")]
    groups: Vec<G>,
}

#[derive(Deserialize)]
struct AeadGroup {
    #[serde(rename = "keySize")]
    key_size: usize,
    #[serde(rename = "ivSize")]
    iv_size: usize,
    #[serde(rename = "tagSize")]
    tag_size: usize,
    tests: Vec<AeadTest>,
}

#[derive(Deserialize)]
struct AeadTest {
    #[serde(rename = "tcId")]
    id: u32,
    key: String,
    iv: String,
    aad: String,
    msg: String,
    ct: String,
    tag: String,
    result: String,
}

#[derive(Deserialize)]
struct HkdfGroup {
    tests: Vec<HkdfTest>,
}

#[derive(Deserialize)]
struct HkdfTest {
    #[serde(rename = "tcId")]
    id: u32,
    ikm: String,
    salt: String,
    info: String,
    size: usize,
    okm: String,
    result: String,
}

#[derive(Deserialize)]
struct MacGroup {
    #[serde(rename = "tagSize")]
    tag_size: usize,
    tests: Vec<MacTest>,
}

#[derive(Deserialize)]
struct MacTest {
    #[serde(rename = "tcId")]
    id: u32,
    key: String,
    msg: String,
    tag: String,
    result: String,
}

/// `../shared/testdata/wycheproof/`, relative to the repository root.
fn dir() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testdata/wycheproof"
    ));
    assert!(
        dir.is_dir(),
        "Wycheproof vectors not found at {}: the repository expects ../shared/testdata/wycheproof beside it",
        dir.display()
    );
    dir
}

fn load<G: for<'de> Deserialize<'de>>(name: &str) -> File<G> {
    let path = dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()))
}

fn h(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap()
}

#[derive(Default)]
struct Tally {
    valid: usize,
    invalid: usize,
    skipped: usize,
}

impl Tally {
    /// Records one vector; `ok` is whether the primitive accepted it.
    fn check(&mut self, algorithm: &str, id: u32, result: &str, ok: bool) {
        match result {
            "valid" | "acceptable" if ok => self.valid += 1,
            "invalid" if !ok => self.invalid += 1,
            // "acceptable" vectors may be refused (legacy parameters).
            "acceptable" => self.skipped += 1,
            _ => panic!("{algorithm} tcId {id}: expected {result}, primitive said ok={ok}"),
        }
    }

    fn report(&self, algorithm: &str) {
        println!(
            "wycheproof {algorithm}: {} valid passed, {} invalid rejected, {} not applicable",
            self.valid, self.invalid, self.skipped
        );
        assert!(self.valid + self.invalid > 0, "{algorithm}: no vectors ran");
    }
}

fn aead_case<C: aes_gcm::aead::Aead + aes_gcm::aead::KeyInit>(t: &AeadTest) -> bool {
    let cipher = C::new_from_slice(&h(&t.key)).unwrap();
    let nonce = h(&t.iv);
    let (msg, aad) = (h(&t.msg), h(&t.aad));
    let mut expected = h(&t.ct);
    expected.extend(h(&t.tag));
    let nonce = aes_gcm::aead::Nonce::<C>::from_slice(&nonce);
    let sealed_ok = cipher
        .encrypt(
            nonce,
            Payload {
                msg: &msg,
                aad: &aad,
            },
        )
        .is_ok_and(|ct| ct == expected);
    let opened_ok = cipher
        .decrypt(
            nonce,
            Payload {
                msg: &expected,
                aad: &aad,
            },
        )
        .is_ok_and(|pt| pt == msg);
    sealed_ok && opened_ok
}

#[test]
fn aes_gcm() {
    let file: File<AeadGroup> = load("aes_gcm_test.json");
    assert_eq!(file.algorithm, "AES-GCM");
    let mut tally = Tally::default();
    for group in &file.groups {
        for t in &group.tests {
            // The crate uses 96-bit nonces and 128-bit tags; run every key size it can.
            if group.iv_size != 96 || group.tag_size != 128 {
                tally.skipped += 1;
                continue;
            }
            let ok = match group.key_size {
                128 => aead_case::<aes_gcm::Aes128Gcm>(t),
                256 => aead_case::<aes_gcm::Aes256Gcm>(t),
                _ => {
                    tally.skipped += 1;
                    continue;
                }
            };
            tally.check("AES-GCM", t.id, &t.result, ok);
        }
    }
    tally.report("AES-GCM");
}

#[test]
fn aes_siv_cmac() {
    use aes_siv::siv::{Aes128Siv, Aes256Siv};
    use aes_siv::KeyInit as _;
    let file: File<AeadGroup> = load("aead_aes_siv_cmac_test.json");
    let mut tally = Tally::default();
    for group in &file.groups {
        for t in &group.tests {
            let headers = [h(&t.aad), h(&t.iv)];
            let msg = h(&t.msg);
            // RFC 5297 puts the SIV before the ciphertext.
            let mut expected = h(&t.tag);
            expected.extend(h(&t.ct));
            let key = h(&t.key);
            let ok = match group.key_size {
                256 => {
                    let mut c = Aes128Siv::new_from_slice(&key).unwrap();
                    c.encrypt(&headers, &msg).is_ok_and(|ct| ct == expected)
                        && c.decrypt(&headers, &expected).is_ok_and(|pt| pt == msg)
                }
                512 => {
                    let mut c = Aes256Siv::new_from_slice(&key).unwrap();
                    c.encrypt(&headers, &msg).is_ok_and(|ct| ct == expected)
                        && c.decrypt(&headers, &expected).is_ok_and(|pt| pt == msg)
                }
                _ => {
                    tally.skipped += 1;
                    continue;
                }
            };
            tally.check("AES-SIV-CMAC", t.id, &t.result, ok);
        }
    }
    tally.report("AES-SIV-CMAC");
}

#[test]
fn hkdf_sha256() {
    let file: File<HkdfGroup> = load("hkdf_sha256_test.json");
    let mut tally = Tally::default();
    for group in &file.groups {
        for t in &group.tests {
            let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(Some(&h(&t.salt)), &h(&t.ikm));
            let mut okm = vec![0u8; t.size];
            let ok = hkdf.expand(&h(&t.info), &mut okm).is_ok() && okm == h(&t.okm);
            tally.check("HKDF-SHA-256", t.id, &t.result, ok);
        }
    }
    tally.report("HKDF-SHA-256");
}

#[test]
fn hmac_sha256() {
    let file: File<MacGroup> = load("hmac_sha256_test.json");
    let mut tally = Tally::default();
    for group in &file.groups {
        for t in &group.tests {
            let mut mac =
                <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&h(&t.key)).unwrap();
            mac.update(&h(&t.msg));
            let tag = h(&t.tag);
            // Full-length tags use the constant-time verify the crate uses; truncated
            // ones the left-truncated verify.
            let ok = if group.tag_size == 256 {
                mac.verify_slice(&tag).is_ok()
            } else {
                tag.len() * 8 == group.tag_size && mac.verify_truncated_left(&tag).is_ok()
            };
            tally.check("HMAC-SHA-256", t.id, &t.result, ok);
        }
    }
    tally.report("HMAC-SHA-256");
}
