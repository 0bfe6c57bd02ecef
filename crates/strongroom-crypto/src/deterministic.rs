//! Deterministic encryption for values that must be found by equality.
//!
//! Layout (format `0x02`): `0x02 | kek_version:4 | siv:16 | ct:n`.
//!
//! AES-SIV (RFC 5297, AES-256, "AES-SIV-CMAC-512") under the KEK's `deterministic`
//! subkey, with the associated-data vector `["strongroom.deterministic.v1", 0x02 ||
//! kek_version, context]` and no nonce. The same plaintext and context under the same KEK
//! always give the same bytes: this leaks equality, by design (see `docs/security.md`).

use aes_siv::siv::Aes256Siv;
use aes_siv::KeyInit as _;
use secrecy::{ExposeSecret as _, SecretSlice};

use crate::format::{self, Format, HEADER_LEN};
use crate::{Context, Error, Kek, KeyRing, Result};

const LABEL: &[u8] = b"strongroom.deterministic.v1";

impl KeyRing {
    /// Seals deterministically under the active KEK.
    pub fn seal_deterministic(&self, context: &Context, plaintext: &[u8]) -> Result<Vec<u8>> {
        let kek = self.active();
        let mut out = Vec::with_capacity(format::Format::Deterministic.min_len() + plaintext.len());
        format::write_header(&mut out, Format::Deterministic, kek.version());
        let sealed = cipher(kek)
            .encrypt([LABEL, &out[..HEADER_LEN], context.as_bytes()], plaintext)
            .map_err(|_| Error::Integrity)?;
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a value sealed by [`KeyRing::seal_deterministic`].
    pub fn open_deterministic(&self, context: &Context, sealed: &[u8]) -> Result<SecretSlice<u8>> {
        let kek = self.get(format::header(sealed, Format::Deterministic)?)?;
        let plaintext = cipher(kek)
            .decrypt(
                [LABEL, &sealed[..HEADER_LEN], context.as_bytes()],
                &sealed[HEADER_LEN..],
            )
            .map_err(|_| Error::Integrity)?;
        Ok(SecretSlice::from(plaintext))
    }
}

fn cipher(kek: &Kek) -> Aes256Siv {
    Aes256Siv::new(kek.siv_key.expose_secret().into())
}
