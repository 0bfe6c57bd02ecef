//! Layer 1: envelope and simple-format seal/open against raw `aes-gcm` on the same input.
//!
//! The baseline `raw_aes_gcm` is the least a hand-rolled scheme can do per value: one
//! OS-random nonce and one AES-256-GCM operation under a key whose schedule is already
//! computed. `raw_aes_gcm_key_per_call` also expands the key each time, as PocketBase's
//! plugin (and the simple format) do.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use aes_gcm::aead::AeadInPlace as _;
use aes_gcm::{Aes256Gcm, KeyInit as _, Nonce};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use strongroom_crypto::{simple, Context, Key, KeyRing};

fn raw_seal(cipher: &Aes256Gcm, plaintext: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 12];
    getrandom::getrandom(&mut out).unwrap();
    out.extend_from_slice(plaintext);
    let (nonce, body) = out.split_at_mut(12);
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(nonce), b"aad", body)
        .unwrap();
    out.extend_from_slice(&tag);
    out
}

fn raw_open(cipher: &Aes256Gcm, sealed: &[u8]) -> Vec<u8> {
    let (nonce, rest) = sealed.split_at(12);
    let (ct, tag) = rest.split_at(rest.len() - 16);
    let mut pt = ct.to_vec();
    cipher
        .decrypt_in_place_detached(Nonce::from_slice(nonce), b"aad", &mut pt, tag.into())
        .unwrap();
    pt
}

fn crypto(c: &mut Criterion) {
    let key = Key::generate().unwrap();
    let ring = KeyRing::single(&key);
    let cipher = Aes256Gcm::new(&[7u8; 32].into());
    let context = Context::secret("default", "prod", "DATABASE_URL");
    for size in [100usize, 4096] {
        let plaintext = vec![0x5a; size];
        let raw = raw_seal(&cipher, &plaintext);
        let envelope = ring.seal(&context, &plaintext).unwrap();
        let simple_sealed = simple::seal(&key, &plaintext).unwrap();

        let mut seal = c.benchmark_group(format!("seal_{size}B"));
        seal.throughput(Throughput::Bytes(size as u64));
        seal.bench_function(BenchmarkId::from_parameter("raw_aes_gcm"), |b| {
            b.iter(|| raw_seal(&cipher, &plaintext));
        });
        seal.bench_function(
            BenchmarkId::from_parameter("raw_aes_gcm_key_per_call"),
            |b| {
                b.iter(|| raw_seal(&Aes256Gcm::new(&[7u8; 32].into()), &plaintext));
            },
        );
        seal.bench_function(BenchmarkId::from_parameter("envelope"), |b| {
            b.iter(|| ring.seal(&context, &plaintext).unwrap());
        });
        seal.bench_function(BenchmarkId::from_parameter("simple"), |b| {
            b.iter(|| simple::seal(&key, &plaintext).unwrap());
        });
        seal.finish();

        let mut open = c.benchmark_group(format!("open_{size}B"));
        open.throughput(Throughput::Bytes(size as u64));
        open.bench_function(BenchmarkId::from_parameter("raw_aes_gcm"), |b| {
            b.iter(|| raw_open(&cipher, &raw));
        });
        open.bench_function(
            BenchmarkId::from_parameter("raw_aes_gcm_key_per_call"),
            |b| {
                b.iter(|| raw_open(&Aes256Gcm::new(&[7u8; 32].into()), &raw));
            },
        );
        open.bench_function(BenchmarkId::from_parameter("envelope"), |b| {
            b.iter(|| ring.open(&context, &envelope).unwrap());
        });
        open.bench_function(BenchmarkId::from_parameter("simple"), |b| {
            b.iter(|| simple::open(&key, &simple_sealed).unwrap());
        });
        open.finish();
    }
}

criterion_group!(benches, crypto);
criterion_main!(benches);
