#!/usr/bin/env python3
"""Independent reproduction of Strongroom's wire formats with Python's `cryptography`.

Prints the test-vector blocks of docs/format.md. The Rust test suite
(crates/strongroom-crypto/tests/vectors.rs) parses those blocks from format.md and checks
that the crate opens every one, so the documentation, this script and the crate agree.

    pip install cryptography && python3 docs/vectors/generate.py
"""
import base64
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def hkdf(key: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"strongroom/v1", info=info).derive(key)


def context(*parts: str) -> bytes:
    return b"".join(struct.pack(">I", len(p.encode())) + p.encode() for p in parts)


def context_bytes(*parts: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(p)) + p for p in parts)


def envelope(kek, version, ctx, dek, dek_nonce, nonce, plaintext):
    header = b"\x01" + struct.pack(">I", version)
    wrap_key = hkdf(kek, b"dek-wrap", 32)
    wrapped = AESGCM(wrap_key).encrypt(dek_nonce, dek, b"strongroom.dek.v1" + header + ctx)
    value = AESGCM(dek).encrypt(nonce, plaintext, b"strongroom.value.v1" + b"\x01" + ctx)
    return header + dek_nonce + wrapped + nonce + value


def deterministic(kek, version, ctx, plaintext):
    header = b"\x02" + struct.pack(">I", version)
    siv_key = hkdf(kek, b"deterministic", 64)
    # cryptography's AESSIV returns siv || ciphertext, as RFC 5297 and Strongroom do.
    return header + AESSIV(siv_key).encrypt(plaintext, [b"strongroom.deterministic.v1", header, ctx])


def keyed_hash(kek, version, ctx, value):
    header = b"\x03" + struct.pack(">I", version)
    key = hkdf(kek, b"keyed-hash", 32)
    mac = hmac.new(key, b"strongroom.keyed-hash.v1" + header + ctx + value, hashlib.sha256).digest()
    return header + mac


def block(name, fields):
    print("```vector")
    print(f"name: {name}")
    for k, v in fields:
        print(f"{k}: {v.hex() if isinstance(v, bytes) else v}")
    print("```")
    print()


def main():
    kek = bytes(range(32))
    kek7 = bytes.fromhex("ff" * 16 + "00" * 16)

    block("fingerprint", [("kek", kek), ("fingerprint", hkdf(kek, b"fingerprint", 8))])

    ctx = context("secret", "default", "global", "DATABASE_URL")
    pt = b"postgres://app:hunter2@db.internal/app"
    dek, dek_nonce, nonce = bytes([0x42] * 32), bytes(range(100, 112)), bytes(range(200, 212))
    block("envelope-1", [("kek", kek), ("kek_version", "1"), ("context", ctx), ("dek", dek),
                         ("dek_nonce", dek_nonce), ("nonce", nonce), ("plaintext", pt),
                         ("sealed", envelope(kek, 1, ctx, dek, dek_nonce, nonce, pt))])

    ctx2 = context("field", "users", "api_token", "42")
    dek2, dek_nonce2, nonce2 = bytes(range(32, 64)), bytes([7] * 12), bytes([9] * 12)
    block("envelope-2", [("kek", kek7), ("kek_version", "7"), ("context", ctx2), ("dek", dek2),
                         ("dek_nonce", dek_nonce2), ("nonce", nonce2), ("plaintext", b""),
                         ("sealed", envelope(kek7, 7, ctx2, dek2, dek_nonce2, nonce2, b""))])

    ctx3 = context("field", "users", "email", "")
    block("deterministic-1", [("kek", kek), ("kek_version", "1"), ("context", ctx3),
                              ("plaintext", b"alice@example.com"),
                              ("sealed", deterministic(kek, 1, ctx3, b"alice@example.com"))])

    ctx4 = context("secret", "default", "prod", "API_KEY")
    block("keyed-hash-1", [("kek", kek), ("kek_version", "1"), ("context", ctx4),
                           ("plaintext", b"sk-test-123"), ("sealed", keyed_hash(kek, 1, ctx4, b"sk-test-123"))])

    # A stored secret's version (schema 4): identity, random secret id, version (u32 BE).
    ctx5 = context_bytes(b"secret-version", b"default", b"prod", b"API_KEY", b"k3q9z0a1b2c3d4e",
                         struct.pack(">I", 2))
    pt5 = b"sk-live-version-2"
    block("envelope-3", [("kek", kek), ("kek_version", "1"), ("context", ctx5), ("dek", dek),
                         ("dek_nonce", dek_nonce), ("nonce", nonce), ("plaintext", pt5),
                         ("sealed", envelope(kek, 1, ctx5, dek, dek_nonce, nonce, pt5))])
    block("keyed-hash-2", [("kek", kek), ("kek_version", "1"), ("context", ctx5),
                           ("plaintext", pt5), ("sealed", keyed_hash(kek, 1, ctx5, pt5))])

    simple_nonce = bytes(range(12))
    simple = simple_nonce + AESGCM(kek).encrypt(simple_nonce, b"pocketbase secret", None)
    block("simple-1", [("kek", kek), ("nonce", simple_nonce), ("plaintext", b"pocketbase secret"),
                       ("sealed_base64", base64.b64encode(simple).decode())])


if __name__ == "__main__":
    main()
