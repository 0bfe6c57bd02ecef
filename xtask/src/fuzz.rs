//! `cargo xtask fuzz`: every cargo-fuzz target, crashes saved as regressions.

use std::path::Path;

use crate::{root, run_in, succeeds, Result};

const TARGETS: &[&str] = &["open_any", "parse_key", "template", "upstream"];

/// Runs each target for `seconds`, or, without cargo-fuzz, the stable corpus replay.
pub fn run(seconds: u64) -> Result {
    if !succeeds("cargo", &["fuzz", "--version"]) {
        eprintln!(
            "xtask: cargo-fuzz is not installed (`cargo install cargo-fuzz`); \
             running the stable corpus harness instead"
        );
        return crate::run(
            "cargo",
            &["test", "-p", "strongroom-crypto", "--test", "fuzz_replay"],
        );
    }
    // libFuzzer needs nightly flags; use a nightly toolchain when there is one, else
    // let the stable compiler accept them.
    let nightly = succeeds("cargo", &["+nightly", "--version"]);
    if !nightly {
        eprintln!("xtask: no nightly toolchain; building the fuzz targets with RUSTC_BOOTSTRAP=1");
    }
    let fuzz_dir = root().join("fuzz");
    let max_time = format!("-max_total_time={seconds}");
    let mut failures = Vec::new();
    for target in TARGETS {
        // New inputs go to a scratch corpus; the committed seeds are read only.
        let scratch = crate::target_dir().join("fuzz-corpus").join(target);
        std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
        let scratch = scratch.to_string_lossy().into_owned();
        let seeds = format!("corpus/{target}");
        let mut args = vec!["fuzz", "run", target, &scratch, &seeds, "--", &max_time];
        if nightly {
            args.insert(0, "+nightly");
        }
        let envs: &[(&str, &str)] = if nightly {
            &[]
        } else {
            &[("RUSTC_BOOTSTRAP", "1")]
        };
        if let Err(e) = run_in(&fuzz_dir, "cargo", &args, envs) {
            failures.push(format!("{target}: {e}"));
        }
        save_crashes(&fuzz_dir, target)?;
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzzing found crashes (saved under fuzz/regressions/): {}",
            failures.join("; ")
        ))
    }
}

/// Copies `fuzz/artifacts/TARGET/crash-*` to `fuzz/regressions/TARGET/`.
fn save_crashes(fuzz_dir: &Path, target: &str) -> Result {
    let Ok(entries) = std::fs::read_dir(fuzz_dir.join("artifacts").join(target)) else {
        return Ok(());
    };
    let destination = fuzz_dir.join("regressions").join(target);
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("crash-") {
            std::fs::create_dir_all(&destination).map_err(|e| e.to_string())?;
            std::fs::copy(entry.path(), destination.join(&name)).map_err(|e| e.to_string())?;
            eprintln!(
                "xtask: saved regression {}/{}",
                target,
                name.to_string_lossy()
            );
        }
    }
    Ok(())
}
