//! Keeping keys out of crash dumps and out of other processes' reach.
//!
//! Every command marks itself non-dumpable (`PR_SET_DUMPABLE 0`): no core dump, and other
//! processes of the same user can not ptrace it or read its memory and environment through
//! `/proc`. A child started by `strongroom run` is dumpable again after `exec`, as the
//! kernel decides. `serve`, which holds the keys for days, also sets its core-file limit
//! to zero and refuses to start if it can not (unless `STRONGROOM_ALLOW_CORE_DUMPS=true`).

use crate::exit::{code, Failure};

/// `STRONGROOM_ALLOW_CORE_DUMPS=true`: leave dumps as configured (debugging only).
fn allowed() -> bool {
    std::env::var("STRONGROOM_ALLOW_CORE_DUMPS").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Marks this process non-dumpable; best effort (a one-shot command holds keys briefly).
pub fn non_dumpable() {
    #[cfg(target_os = "linux")]
    if !allowed() {
        let _ = nix::sys::prctl::set_dumpable(false);
    }
}

/// For `serve`: no core file and non-dumpable, or a refusal to start.
pub fn no_core_dumps() -> Result<(), Failure> {
    if allowed() {
        eprintln!(
            "strongroom: STRONGROOM_ALLOW_CORE_DUMPS=true: a crash may write the keys to disk"
        );
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    {
        use nix::sys::resource::{setrlimit, Resource};
        let refused = |what: &str, e: nix::Error| {
            Failure {
            message: format!(
                "cannot {what} ({e}), so a crash could write the keys to disk; fix the \
                 service's limits (LimitCORE=0) or set STRONGROOM_ALLOW_CORE_DUMPS=true to start anyway"
            ),
            code: code::CONFIG,
        }
        };
        setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|e| refused("turn core dumps off", e))?;
        nix::sys::prctl::set_dumpable(false)
            .map_err(|e| refused("mark the process non-dumpable", e))?;
    }
    Ok(())
}
