//! What a release ships beside the crates (`cargo xtask release` builds them under
//! `target/release-artifacts/`): a Debian package holding the binary, its man pages, shell
//! completions and a hardened systemd unit; a CycloneDX SBOM of the binary's dependencies;
//! and `SHA256SUMS` over all of it. `cargo xtask ci` installs the package with `dpkg -i`,
//! checks the unit with `systemd-analyze` and runs `strongroom doctor` from it.
//!
//! The package is made with `dpkg-deb` (Debian's own tool, on every machine that can
//! install a `.deb`), so no packaging crate has to be compiled; the SBOM is written from
//! `cargo tree` in CycloneDX 1.5 JSON and checked with the CycloneDX project's own Python
//! library in CI.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::{capture, run_in, Result};

/// The hardened unit the package installs (`systemd-analyze security`: OK or better).
pub const UNIT: &str = "crates/strongroom/packaging/strongroom.service";

/// Where the artifacts go, under the target directory.
pub fn out_dir() -> PathBuf {
    crate::target_dir().join("release-artifacts")
}

/// Builds every artifact for `version` from `tree`, with `binary` as the program shipped
/// (the dry run ships its development build; a release, its `--release` build).
pub fn build(tree: &Path, version: &str, binary: &Path) -> Result<PathBuf> {
    let out = out_dir();
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let deb = debian_package(tree, version, binary, &out)?;
    let sbom = sbom(tree, version, &out)?;
    let mut files = vec![deb.clone(), sbom];
    let packaged = crate::target_dir().join("package");
    for krate in crate::release::CRATES {
        let name = format!("{krate}-{version}.crate");
        let file = packaged.join(&name);
        if file.exists() {
            // Beside the rest, so `sha256sum -c SHA256SUMS` checks everything in one place.
            std::fs::copy(&file, out.join(&name)).map_err(|e| e.to_string())?;
            files.push(out.join(&name));
        }
    }
    checksums(&files, &out)?;
    eprintln!("xtask: artifacts in {}: {}", out.display(), deb.display());
    Ok(deb)
}

/// `strongroom_VERSION_ARCH.deb`, staged under the output directory and built with
/// `dpkg-deb --root-owner-group`.
fn debian_package(tree: &Path, version: &str, binary: &Path, out: &Path) -> Result<PathBuf> {
    let arch = capture(tree, "dpkg", &["--print-architecture"])?
        .trim()
        .to_owned();
    let stage = out.join("deb-root");
    let dirs = [
        "DEBIAN",
        "usr/bin",
        "usr/share/man/man1",
        "usr/share/bash-completion/completions",
        "usr/share/zsh/vendor-completions",
        "usr/share/fish/vendor_completions.d",
        "usr/lib/systemd/system",
        "usr/share/doc/strongroom",
    ];
    for dir in dirs {
        std::fs::create_dir_all(stage.join(dir)).map_err(|e| e.to_string())?;
    }
    let copy = |from: &Path, to: &str, mode: u32| -> Result {
        use std::os::unix::fs::PermissionsExt as _;
        let target = stage.join(to);
        std::fs::copy(from, &target)
            .map_err(|e| format!("cannot copy {} into the package: {e}", from.display()))?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
            .map_err(|e| e.to_string())
    };
    copy(binary, "usr/bin/strongroom", 0o755)?;
    copy(
        &tree.join(UNIT),
        "usr/lib/systemd/system/strongroom.service",
        0o644,
    )?;
    std::fs::write(
        stage.join("usr/share/doc/strongroom/copyright"),
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: strongroom\n\
         Source: https://github.com/strongroom/strongroom\n\n\
         Files: *\n\
         Copyright: the Strongroom developers\n\
         License: MIT or Apache-2.0\n",
    )
    .map_err(|e| e.to_string())?;
    let program = binary.to_string_lossy();
    for (shell, path) in [
        ("bash", "usr/share/bash-completion/completions/strongroom"),
        ("zsh", "usr/share/zsh/vendor-completions/_strongroom"),
        (
            "fish",
            "usr/share/fish/vendor_completions.d/strongroom.fish",
        ),
    ] {
        let script = capture(tree, &program, &["completions", shell])?;
        std::fs::write(stage.join(path), script).map_err(|e| e.to_string())?;
    }
    // Man pages, gzipped as Debian policy wants (`-n`: no time stamp, reproducible).
    // Where `release` wrote them: `target/package/man` of the tree (`cargo xtask man`).
    let man = tree.join("target").join("package").join("man");
    let pages =
        std::fs::read_dir(&man).map_err(|e| format!("no man pages in {}: {e}", man.display()))?;
    for page in pages.flatten() {
        let name = page.file_name();
        let target = stage.join("usr/share/man/man1").join(&name);
        std::fs::copy(page.path(), &target).map_err(|e| e.to_string())?;
        run_in(tree, "gzip", &["-9nf", &target.to_string_lossy()], &[])?;
    }
    let size_kib = dir_size(&stage) / 1024;
    let control = format!(
        "Package: strongroom\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: Strongroom developers <strongroom@example.invalid>\n\
         Installed-Size: {size_kib}\n\
         Depends: libc6\n\
         Section: admin\n\
         Priority: optional\n\
         Homepage: https://github.com/strongroom/strongroom\n\
         Description: encrypted secrets management: a store, an HTTP API and a gateway\n \
         Strongroom keeps secrets encrypted under your key (SQLite or PostgreSQL), with\n \
         environments and fallback, versions, a tamper-evident audit log, key rotation, a\n \
         Vault-compatible API, and a gateway that injects secrets into HTTP headers.\n"
    );
    std::fs::write(stage.join("DEBIAN/control"), control).map_err(|e| e.to_string())?;
    let deb = out.join(format!("strongroom_{version}_{arch}.deb"));
    run_in(
        tree,
        "dpkg-deb",
        &[
            "--root-owner-group",
            "--build",
            &stage.to_string_lossy(),
            &deb.to_string_lossy(),
        ],
        &[],
    )?;
    std::fs::remove_dir_all(&stage).map_err(|e| e.to_string())?;
    Ok(deb)
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => dir_size(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// A CycloneDX 1.5 JSON SBOM of what the `strongroom` binary is built from: every crate
/// of its normal dependency tree, with version, license expression and package URL.
fn sbom(tree: &Path, version: &str, out: &Path) -> Result<PathBuf> {
    let listed = capture(
        tree,
        "cargo",
        &[
            "tree",
            "--offline",
            "--locked",
            "-p",
            "strongroom",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--no-dedupe",
            "--format",
            "{p}\t{l}",
        ],
    )?;
    let mut seen = std::collections::BTreeMap::new();
    for line in listed.lines() {
        let (package, license) = line.split_once('\t').unwrap_or((line, ""));
        let mut parts = package.split_whitespace();
        let (Some(name), Some(v)) = (parts.next(), parts.next()) else {
            continue;
        };
        let v = v.trim_start_matches('v');
        seen.entry((name.to_owned(), v.to_owned()))
            .or_insert_with(|| license.trim().to_owned());
    }
    let components: Vec<serde_json::Value> = seen
        .iter()
        .filter(|((name, _), _)| name != "strongroom")
        .map(|((name, v), license)| {
            let mut component = serde_json::json!({
                "type": "library",
                "bom-ref": format!("pkg:cargo/{name}@{v}"),
                "name": name,
                "version": v,
                "purl": format!("pkg:cargo/{name}@{v}"),
            });
            if !license.is_empty() {
                component["licenses"] = serde_json::json!([{ "expression": license }]);
            }
            component
        })
        .collect();
    let serial = {
        let mut hex = String::new();
        for byte in random16()? {
            let _ = write!(hex, "{byte:02x}");
        }
        format!(
            "urn:uuid:{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    };
    let bom = serde_json::json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial,
        "version": 1,
        "metadata": {
            "component": {
                "type": "application",
                "bom-ref": format!("pkg:cargo/strongroom@{version}"),
                "name": "strongroom",
                "version": version,
                "purl": format!("pkg:cargo/strongroom@{version}"),
            }
        },
        "components": components,
    });
    let path = out.join(format!("strongroom-{version}.cdx.json"));
    let text = serde_json::to_string_pretty(&bom).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    eprintln!("xtask: SBOM with {} components", seen.len() - 1);
    Ok(path)
}

fn random16() -> Result<[u8; 16]> {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(bytes)
}

/// `SHA256SUMS` (the format `sha256sum -c` reads) over `files`, by file name.
fn checksums(files: &[PathBuf], out: &Path) -> Result {
    let mut sums = String::new();
    for file in files {
        let dir = file.parent().ok_or("a file without a directory")?;
        let name = file
            .file_name()
            .ok_or("a file without a name")?
            .to_string_lossy();
        let line = capture(dir, "sha256sum", &[&name])?;
        sums.push_str(&line);
    }
    std::fs::write(out.join("SHA256SUMS"), sums).map_err(|e| e.to_string())
}

/// Installs the package on this machine, checks its unit and runs `strongroom doctor`
/// from it, then removes it again: what CI proves of every release.
pub fn install_and_check(deb: &Path) -> Result {
    let unit = "/usr/lib/systemd/system/strongroom.service";
    run_in(&crate::root(), "dpkg", &["-i", &deb.to_string_lossy()], &[])?;
    let checked = check_installed(unit);
    let removed = run_in(&crate::root(), "dpkg", &["--purge", "strongroom"], &[]);
    checked.and(removed)
}

fn check_installed(unit: &str) -> Result {
    run_in(&crate::root(), "systemd-analyze", &["verify", unit], &[])?;
    let report = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=yes", unit])
        .output()
        .map_err(|e| format!("cannot run systemd-analyze: {e}"))?;
    let text = String::from_utf8_lossy(&report.stdout).into_owned()
        + &String::from_utf8_lossy(&report.stderr);
    let verdict = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .ok_or_else(|| format!("systemd-analyze security said no level:\n{text}"))?;
    if !["SAFE", "OK", "PERFECT"]
        .iter()
        .any(|w| verdict.contains(w))
    {
        return Err(format!("the unit is not hardened enough: {verdict}"));
    }
    eprintln!("xtask: {}", verdict.trim());
    let scratch = std::env::temp_dir().join(format!("strongroom-deb-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let key = capture(&scratch, "/usr/bin/strongroom", &["keygen"])?;
    let doctor = std::process::Command::new("/usr/bin/strongroom")
        .arg("doctor")
        .current_dir(&scratch)
        .env("STRONGROOM_MASTER_KEY", key.trim())
        .env("STRONGROOM_DATABASE_URL", "sqlite://doctor.db")
        .output()
        .map_err(|e| format!("cannot run the installed strongroom: {e}"))?;
    let _ = std::fs::remove_dir_all(&scratch);
    let report = String::from_utf8_lossy(&doctor.stdout);
    if !report.contains("key fingerprints") {
        return Err(format!(
            "`strongroom doctor` from the package did not report:\n{report}{}",
            String::from_utf8_lossy(&doctor.stderr)
        ));
    }
    eprintln!("xtask: the installed package's `strongroom doctor` ran");
    Ok(())
}
