//! Exit codes and the one-line error report. Documented in docs/cli.md.

use std::process::ExitCode;

use strongroom_store::StoreError;

use crate::settings::SettingsError;

/// Exit codes (also in docs/cli.md).
pub mod code {
    /// Success (for `verify`: the candidate matches).
    pub const OK: u8 = 0;
    /// `verify`: the candidate does not match.
    pub const NO_MATCH: u8 = 1;
    /// Usage error (clap's own).
    pub const _USAGE: u8 = 2;
    /// Configuration error: a STRONGROOM_* variable, the database URL.
    pub const CONFIG: u8 = 3;
    /// No such secret or version.
    pub const NOT_FOUND: u8 = 4;
    /// The secret has expired.
    pub const EXPIRED: u8 = 5;
    /// Key problem: wrong key, or a key version the ring lacks.
    pub const KEY: u8 = 6;
    /// Integrity failure: a stored value was altered or moved.
    pub const INTEGRITY: u8 = 7;
    /// Invalid input: names, sizes, metadata, an empty value.
    pub const INPUT: u8 = 8;
    /// Database or I/O failure.
    pub const IO: u8 = 9;
}

/// A failure to report: a message (never holding a secret) and an exit code.
#[derive(Debug)]
pub struct Failure {
    /// The one line printed to stderr.
    pub message: String,
    /// The exit code.
    pub code: u8,
}

impl Failure {
    /// Invalid input.
    pub fn input(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: code::INPUT,
        }
    }

    /// Database or I/O.
    pub fn io(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: code::IO,
        }
    }
}

impl From<SettingsError> for Failure {
    fn from(e: SettingsError) -> Self {
        Self {
            message: e.to_string(),
            code: code::CONFIG,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        use strongroom_store::ErrorKind;
        // One arm per kind, no catch-all: a new kind must be given an exit code here.
        let code = match e.kind() {
            ErrorKind::NotFound => code::NOT_FOUND,
            ErrorKind::Gone => code::EXPIRED,
            ErrorKind::WrongKey | ErrorKind::KeyUnavailable => code::KEY,
            ErrorKind::Integrity => code::INTEGRITY,
            ErrorKind::Invalid | ErrorKind::Conflict => code::INPUT,
            ErrorKind::Config => code::CONFIG,
            ErrorKind::Unavailable | ErrorKind::Internal | ErrorKind::Limited => code::IO,
        };
        let mut message = e.to_string();
        if matches!(e, StoreError::WrongKey { .. }) {
            // The store can not know where the key came from; the command line does.
            message = format!(
                "{message} ({})",
                crate::settings::Settings::key_source_hint()
            );
        }
        Self { message, code }
    }
}

/// Prints `strongroom: MESSAGE` on stderr and returns the exit code.
pub fn report(failure: &Failure) -> ExitCode {
    eprintln!("strongroom: {}", failure.message);
    ExitCode::from(failure.code)
}
