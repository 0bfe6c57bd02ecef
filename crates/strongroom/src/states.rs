//! The one rule for secrets that can not be read, on every command that takes a whole env
//! (`run`, `lock`, `export`, `file export`; docs/cli.md, "Expired and deleted secrets"):
//! each expired, deleted or destroyed secret is left out and named on stderr, one line
//! each, and the command goes on; with `--strict` any one of them is an error (exit 5)
//! and nothing is run or written.

use strongroom_store::LeftOut;

use crate::exit::{code, Failure};

/// Applies the rule to `left_out`: a warning line per secret, or with `strict` one error
/// naming them all.
pub fn leave_out(left_out: &[LeftOut], strict: bool) -> Result<(), Failure> {
    if left_out.is_empty() {
        return Ok(());
    }
    if strict {
        let named: Vec<String> = left_out.iter().map(ToString::to_string).collect();
        return Err(Failure {
            message: format!(
                "--strict: {} secret(s) can not be read: {}; nothing was done (without \
                 --strict they are left out)",
                left_out.len(),
                named.join(", ")
            ),
            code: code::EXPIRED,
        });
    }
    for secret in left_out {
        eprintln!(
            "strongroom: warning: leaving out {}: {}",
            secret.id,
            match secret.state {
                strongroom_store::State::Expired => "expired",
                strongroom_store::State::Deleted => "its current version is deleted",
                strongroom_store::State::Destroyed => "its current version is destroyed",
                strongroom_store::State::Active => "not readable",
            }
        );
    }
    Ok(())
}
