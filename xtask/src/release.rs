//! `cargo xtask release [--dry-run] VERSION`.
//!
//! Checks a clean tree, bumps every crate's version (the workspace version and the
//! versions of the internal dependencies; both lock files follow), moves CHANGELOG.md's
//! Unreleased section under the new version, runs `cargo xtask ci`, packages every crate
//! in dependency order (`cargo package`, which verifies that each builds from its package
//! alone), builds the artifacts a server tool ships ([`crate::artifacts`]: a Debian
//! package with man pages, completions and a hardened systemd unit, a CycloneDX SBOM,
//! `SHA256SUMS`), commits and tags `vVERSION`. Publishing to crates.io is a separate,
//! deliberate `cargo publish`.
//!
//! `--dry-run` does the release's own steps in a scratch copy of the tree under the target
//! directory, offline, and leaves the repository untouched (no commit, no tag); it does
//! not run `ci` again (CI runs exactly this dry run after its own checks, so what a user
//! runs is what CI runs). Its artifacts ship the development build; a release ships the
//! `--release` build.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{root, run_in, Result};

/// Publishable crates, dependencies first.
pub const CRATES: &[&str] = &[
    "strongroom-crypto",
    "strongroom-field",
    "strongroom-store",
    "strongroom-gateway",
    "strongroom-server",
    "strongroom",
];

/// Set for the `cargo xtask ci` a release runs in its tree, so that ci does not start a
/// release dry run of its own there.
pub const INSIDE_RELEASE: &str = "STRONGROOM_XTASK_INSIDE_RELEASE";

/// Runs the release.
pub fn run(args: &[String]) -> Result {
    let dry_run = args.iter().any(|a| a == "--dry-run");
    if let Some(unknown) = args
        .iter()
        .find(|a| a.starts_with("--") && *a != "--dry-run")
    {
        return Err(format!(
            "unknown flag {unknown}; usage: cargo xtask release [--dry-run] VERSION"
        ));
    }
    let version = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .ok_or("usage: cargo xtask release [--dry-run] VERSION")?;
    check_version(version)?;
    let repo = root();
    let status = git(&repo, &["status", "--porcelain"])?;
    if !status.trim().is_empty() {
        if !dry_run {
            return Err(format!(
                "the working tree is not clean; commit or stash first:\n{status}"
            ));
        }
        eprintln!(
            "xtask: the working tree is not clean; the dry run uses HEAD, without those changes"
        );
    }
    let current = workspace_version(
        &std::fs::read_to_string(repo.join("Cargo.toml")).map_err(|e| e.to_string())?,
    )?;
    if version == &current {
        return Err(format!("the workspace is already at version {current}"));
    }
    // The dry run builds its bumped copy in the shared target directory (dependencies
    // stay compiled), which replaces the binaries there; this puts the repository's back.
    let _kept = dry_run.then(|| KeptBinaries::keep(&crate::target_dir().join("debug")));
    let tree = if dry_run {
        scratch_copy(&repo)?
    } else {
        repo.clone()
    };

    // Build the copy in the repository's target directory: dependencies stay compiled.
    let target = crate::target_dir();
    let target = target.to_string_lossy();
    let env = [("CARGO_TARGET_DIR", target.as_ref())];
    bump(&tree, &current, version)?;
    changelog(&tree, version)?;
    eprintln!("xtask: version {current} -> {version} in every crate; CHANGELOG.md updated");
    follow_locks(&tree, &env)?;
    if !dry_run {
        let env = [env[0], (INSIDE_RELEASE, "1")];
        run_in(&tree, "cargo", &["xtask", "ci"], &env)?;
    }
    let mut package = vec!["package", "--offline", "--locked"];
    for krate in CRATES {
        package.extend(["-p", krate]);
    }
    if dry_run {
        // The scratch copy is not a git checkout.
        package.push("--allow-dirty");
    }
    forget_extracted_packages(version)?;
    run_in(&tree, "cargo", &package, &env)?;
    eprintln!("xtask: packaged, in order: {}", CRATES.join(" -> "));
    man_pages(&tree, &env)?;
    let binary = if dry_run {
        crate::target_dir().join("debug").join("strongroom")
    } else {
        run_in(
            &tree,
            "cargo",
            &["build", "--release", "--locked", "-p", "strongroom"],
            &env,
        )?;
        crate::target_dir().join("release").join("strongroom")
    };
    crate::artifacts::build(&tree, version, &binary)?;
    if dry_run {
        eprintln!("xtask: dry run complete; would commit \"Release {version}\" and tag v{version}");
        return Ok(());
    }
    git(&repo, &["commit", "-am", &format!("Release {version}")])?;
    git(
        &repo,
        &[
            "tag",
            "-a",
            &format!("v{version}"),
            "-m",
            &format!("Strongroom {version}"),
        ],
    )?;
    eprintln!("xtask: committed and tagged v{version}; publish with `cargo publish -p CRATE` in the order above");
    Ok(())
}

/// A copy of HEAD (`git archive | tar -x`) in a scratch directory under the target
/// directory, for a dry run.
fn scratch_copy(repo: &Path) -> Result<PathBuf> {
    let scratch = crate::target_dir().join("release-dry-run");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    // A copy of HEAD: `git archive | tar -x`.
    let archive = Command::new("git")
        .args(["archive", "--format=tar", "HEAD"])
        .current_dir(repo)
        .output()
        .map_err(|e| e.to_string())?;
    if !archive.status.success() {
        return Err("git archive failed".into());
    }
    let mut tar = Command::new("tar")
        .args(["-x", "-C"])
        .arg(&scratch)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    std::io::Write::write_all(tar.stdin.as_mut().ok_or("tar stdin")?, &archive.stdout)
        .map_err(|e| e.to_string())?;
    if !tar.wait().map_err(|e| e.to_string())?.success() {
        return Err("tar failed".into());
    }
    eprintln!("xtask: dry run in {}", scratch.display());
    Ok(scratch)
}

/// The lock files follow the new versions (offline: only workspace crates change): the
/// workspace's, and the fuzz workspace's, which depends on two of the crates by path
/// (`ci` checks that it is current).
fn follow_locks(tree: &Path, env: &[(&str, &str)]) -> Result {
    // The lock file follows the new versions (offline: only workspace crates change).
    run_in(tree, "cargo", &["update", "--offline", "--workspace"], env)?;
    // So does the fuzz workspace's, which depends on two of the crates by path (`ci`
    // checks that it is current).
    run_in(
        tree,
        "cargo",
        &[
            "update",
            "--offline",
            "--workspace",
            "--manifest-path",
            "fuzz/Cargo.toml",
        ],
        env,
    )
}

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    crate::capture(dir, "git", args)
}

/// `MAJOR.MINOR.PATCH` with an optional `-pre` part.
/// Makes `cargo package` verify this tree's crates, not an earlier run's: cargo treats a
/// registry crate of a given version as immutable, so both what an earlier package run of
/// the same version extracted under `$CARGO_HOME/registry/src` and the build fingerprints
/// of our crates in the target directory would be reused as they are. Removing the
/// fingerprints only makes cargo rebuild our own crates.
fn forget_extracted_packages(version: &str) -> Result {
    let fingerprints = crate::target_dir().join("debug").join(".fingerprint");
    if let Ok(entries) = std::fs::read_dir(&fingerprints) {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with("strongroom-")
            {
                std::fs::remove_dir_all(entry.path())
                    .map_err(|e| format!("cannot remove {}: {e}", entry.path().display()))?;
            }
        }
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let Some(sources) = home.map(|h| h.join("registry").join("src")) else {
        return Ok(());
    };
    let Ok(registries) = std::fs::read_dir(&sources) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        for krate in CRATES {
            let stale = registry.path().join(format!("{krate}-{version}"));
            if stale.exists() {
                std::fs::remove_dir_all(&stale)
                    .map_err(|e| format!("cannot remove {}: {e}", stale.display()))?;
            }
        }
    }
    Ok(())
}

fn check_version(version: &str) -> Result {
    let core = version.split_once('-').map_or(version, |(core, _)| core);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        Ok(())
    } else {
        Err(format!("{version:?} is not a version like 1.2.3"))
    }
}

fn workspace_version(manifest: &str) -> Result<String> {
    let section = manifest
        .split("[workspace.package]")
        .nth(1)
        .ok_or("no [workspace.package] in Cargo.toml")?;
    section
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("version = \"")
                .and_then(|v| v.strip_suffix('"'))
        })
        .map(str::to_owned)
        .ok_or_else(|| "no version in [workspace.package]".to_owned())
}

/// Sets the workspace version and every internal dependency's version requirement.
fn bump(tree: &Path, current: &str, version: &str) -> Result {
    let path = tree.join("Cargo.toml");
    let manifest = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    let mut out = String::with_capacity(manifest.len());
    let mut in_package = false;
    for line in manifest.lines() {
        if line.starts_with('[') {
            in_package = line.trim() == "[workspace.package]";
        }
        let bumped = if in_package && line.trim() == format!("version = \"{current}\"") {
            line.replace(current, version)
        } else if line.starts_with("strongroom") && line.contains("path = \"crates/") {
            line.replace(
                &format!("version = \"{current}\""),
                &format!("version = \"{version}\""),
            )
        } else {
            line.to_owned()
        };
        out.push_str(&bumped);
        out.push('\n');
    }
    std::fs::write(&path, out).map_err(|e| e.to_string())
}

/// Moves `## [Unreleased]` under `## [VERSION] - DATE`, leaving an empty Unreleased.
fn changelog(tree: &Path, version: &str) -> Result {
    let path = tree.join("CHANGELOG.md");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("CHANGELOG.md: {e}"))?;
    if !text.contains("## [Unreleased]") {
        return Err("CHANGELOG.md has no ## [Unreleased] section".into());
    }
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map_err(|e| e.to_string())?;
    let date = String::from_utf8_lossy(&date.stdout).trim().to_owned();
    let text = text.replacen(
        "## [Unreleased]",
        &format!("## [Unreleased]\n\n## [{version}] - {date}"),
        1,
    );
    std::fs::write(&path, text).map_err(|e| e.to_string())
}

/// The man pages go with the release artifacts, next to the packaged crates.
fn man_pages(tree: &Path, env: &[(&str, &str)]) -> Result {
    run_in(
        tree,
        "cargo",
        &[
            "run",
            "--quiet",
            "--locked",
            "-p",
            "strongroom",
            "--",
            "man",
            "target/package/man",
        ],
        env,
    )
}

/// The executables directly in a target profile directory, hard-linked aside and put
/// back when dropped, so a dry run's builds do not leave its version behind.
struct KeptBinaries {
    aside: PathBuf,
    names: Vec<std::ffi::OsString>,
    dir: PathBuf,
}

impl KeptBinaries {
    fn keep(dir: &Path) -> Self {
        use std::os::unix::fs::PermissionsExt as _;
        let aside = dir.join(".kept-during-release-dry-run");
        let _ = std::fs::remove_dir_all(&aside);
        let mut names = Vec::new();
        if std::fs::create_dir_all(&aside).is_ok() {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                let executable = std::fs::symlink_metadata(&path)
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
                if executable && std::fs::hard_link(&path, aside.join(entry.file_name())).is_ok() {
                    names.push(entry.file_name());
                }
            }
        }
        Self {
            aside,
            names,
            dir: dir.to_owned(),
        }
    }
}

impl Drop for KeptBinaries {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = std::fs::rename(self.aside.join(name), self.dir.join(name));
        }
        let _ = std::fs::remove_dir_all(&self.aside);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_checked() {
        assert!(check_version("1.2.3").is_ok());
        assert!(check_version("0.2.0-rc.1").is_ok());
        for bad in ["1.2", "v1.2.3", "1.2.x", ""] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_workspace_version_is_read() {
        let manifest = "[workspace]\nmembers = []\n\n[workspace.package]\nversion = \"0.4.2\"\nedition = \"2021\"\n";
        assert_eq!(workspace_version(manifest).unwrap(), "0.4.2");
    }
}
