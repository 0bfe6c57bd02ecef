//! `cargo xtask` — the project's automation, in Rust so it runs wherever cargo does.
//!
//! ```text
//! cargo xtask ci                 fmt check, clippy -D warnings, the whole test suite
//! cargo xtask bench [--quick]    criterion suites, then target/bench-report.md
//! cargo xtask fuzz [--seconds N] every cargo-fuzz target for N seconds (default 60)
//! cargo xtask docs              every shell block of README.md and docs/*.md, as written
//! cargo xtask schemathesis       the API against its own OpenAPI document
//! cargo xtask release [--dry-run] VERSION   bump, changelog, ci, package in order, tag
//! cargo xtask postgres           start a throw-away PostgreSQL server and print its URL
//! cargo xtask load               64 clients for 30 s on loopback; throughput, p99, nothing lost
//! cargo xtask man [DIR]         man pages of strongroom and its subcommands (default target/man)
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod artifacts;
mod bench;
mod docs;
mod fuzz;
mod go;
mod postgres;
mod release;
mod robustness;

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench::run(args[1..].iter().any(|a| a == "--quick")),
        Some("fuzz") => seconds(&args[1..]).and_then(fuzz::run),
        Some("schemathesis") => robustness::schemathesis(100),
        Some("docs") => docs::run(),
        Some("release") => release::run(&args[1..]),
        Some("man") => {
            let out = args.get(1).map_or("target/man", String::as_str);
            run("cargo", &["run", "--quiet", "--locked", "-p", "strongroom", "--", "man", out])
        }
        Some("postgres") => postgres::TestServer::start().map(|server| {
            println!("{}", server.url);
            eprintln!("xtask: TLS CA in {} (STRONGROOM_TEST_POSTGRES_CA)", server.ca_file.display());
            eprintln!("xtask: data in {}; press Enter to stop and delete it", server.dir().display());
            let _ = std::io::stdin().read_line(&mut String::new());
        }),
        Some("load") => run(
            "cargo",
            &[
                "run",
                "--release",
                "--quiet",
                "-p",
                "strongroom-benches",
                "--bin",
                "load",
                "--",
                "--seconds",
                "30",
                "--clients",
                "64",
            ],
        ),
        _ => Err(
            "usage: cargo xtask (ci | bench [--quick] | fuzz [--seconds N] | docs | schemathesis | load | postgres | man [DIR] | release [--dry-run] VERSION)"
                .into(),
        ),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn seconds(args: &[String]) -> Result<u64> {
    match args {
        [] => Ok(60),
        [flag, n] if flag == "--seconds" => n
            .parse()
            .map_err(|_| format!("--seconds expects a whole number, got {n:?}")),
        _ => Err("usage: cargo xtask fuzz [--seconds N]".into()),
    }
}

/// The repository root (the parent of `xtask/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository")
        .to_path_buf()
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, else `target/` in the repository).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// Runs a command from the repository root, failing with its description.
fn run(program: &str, args: &[&str]) -> Result {
    run_in(&root(), program, args, &[])
}

fn run_in(dir: &Path, program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result {
    eprintln!("xtask: $ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(envs.iter().copied())
        .status()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

/// Runs `program args` in `dir` and returns its standard output; a failure carries its
/// standard error.
fn capture(dir: &Path, program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Everything CI checks, in the order that fails fastest.
fn ci() -> Result {
    // A CI build is made once: incremental caches only cost disk (gigabytes) and time there.
    // (Edition 2021, and nothing else runs yet: setting the variable is sound.)
    std::env::set_var("CARGO_INCREMENTAL", "0");
    ensure_test_tools()?;
    let go = go::ensure_go()?;
    let go = go.to_string_lossy();
    run("cargo", &["fmt", "--all", "--", "--check"])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // The API docs build without broken or redundant links.
    run_in(
        &root(),
        "cargo",
        &[
            "doc",
            "--workspace",
            "--all-features",
            "--no-deps",
            "--locked",
        ],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    check_dependency_boundaries()?;
    check_fuzz_lock()?;
    // A real PostgreSQL server for the PostgreSQL backend's tests (never skipped in CI).
    let server = postgres::TestServer::start()?;
    let ca = server.ca_file.to_string_lossy();
    let pg = [
        ("STRONGROOM_TEST_POSTGRES_URL", server.url.as_str()),
        ("STRONGROOM_TEST_POSTGRES_CA", ca.as_ref()),
    ];
    let mut test_env = pg.to_vec();
    test_env.push(("STRONGROOM_GO", go.as_ref()));
    // The failover test builds its own primary and standby from the same binaries, run
    // as the same unprivileged user.
    let bin = server.bin_dir().to_string_lossy().into_owned();
    test_env.push(("STRONGROOM_TEST_PG_BIN", bin.as_str()));
    if let Some(user) = server.user() {
        test_env.push(("STRONGROOM_TEST_PG_USER", user));
    }
    run_in(
        &root(),
        "cargo",
        &["test", "--workspace", "--all-features", "--locked"],
        &test_env,
    )?;
    examples_and_benches(&pg)?;
    drop(server);
    // The HTTP API against its own OpenAPI document: no 5xx, every response conforms.
    robustness::schemathesis(50)?;
    // The documentation's commands, run as written (a changed command breaks the build).
    docs::run()?;
    // A short load smoke (the full run is `cargo xtask load`): nothing lost under concurrency.
    run(
        "cargo",
        &[
            "run",
            "--quiet",
            "--locked",
            "-p",
            "strongroom-benches",
            "--bin",
            "load",
            "--",
            "--seconds",
            "3",
            "--clients",
            "16",
        ],
    )?;
    // The release pipeline's dry run, exactly as a user runs it: bump, changelog, lock
    // files, every crate packaged in order, the artifacts built, offline, in a scratch
    // copy; then the Debian package installed on this machine, its unit checked and its
    // `strongroom doctor` run. Skipped when this ci runs inside a release's own tree:
    // that run is the release's check, and the release builds its artifacts after it.
    if std::env::var_os(release::INSIDE_RELEASE).is_some() {
        eprintln!("xtask: inside a release; its packaging step follows this ci");
    } else {
        release::run(&["--dry-run".into(), "99.0.0".into()])?;
        let deb = artifacts::out_dir().join(format!("strongroom_99.0.0_{}.deb", deb_arch()?));
        check_sbom()?;
        artifacts::install_and_check(&deb)?;
    }
    eprintln!("xtask: ci passed");
    Ok(())
}

/// The layer-2 example programs on both databases, and every benchmark run once (no
/// timing) so none of them rots.
fn examples_and_benches(pg: &[(&str, &str)]) -> Result {
    // The layer-2 example programs, on both databases.
    for (feature, example) in [("sqlite", "users_sqlite"), ("postgres", "users_postgres")] {
        run_in(
            &root(),
            "cargo",
            &[
                "run",
                "--quiet",
                "--locked",
                "-p",
                "strongroom-field",
                "--features",
                feature,
                "--example",
                example,
            ],
            pg,
        )?;
    }
    // Benchmarks compile and run once each (no timing) so they never rot.
    run_in(
        &root(),
        "cargo",
        &[
            "test",
            "--workspace",
            "--all-features",
            "--benches",
            "--locked",
        ],
        pg,
    )?;
    Ok(())
}

/// This machine's Debian architecture (`amd64`, ...).
fn deb_arch() -> Result<String> {
    Ok(capture(&root(), "dpkg", &["--print-architecture"])?
        .trim()
        .to_owned())
}

/// The SBOM validates against CycloneDX 1.5 with the CycloneDX project's own Python
/// library (installed when absent).
fn check_sbom() -> Result {
    if !succeeds("python3", &["-c", "import cyclonedx.validation.json"]) {
        pip_install("cyclonedx-python-lib[json-validation]")?;
    }
    let sbom = artifacts::out_dir().join("strongroom-99.0.0.cdx.json");
    let program = r#"
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
errors = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())
if errors:
    sys.exit(f"the SBOM does not validate: {errors}")
print("xtask: the SBOM validates as CycloneDX 1.5")
"#;
    run("python3", &["-c", program, &sbom.to_string_lossy()])
}

/// What the tests use beside the Rust toolchain: Python and Node clients written by
/// others, SoftHSM2 and Chromium (installed when absent; CI never skips them).
fn ensure_test_tools() -> Result {
    ensure_python_cryptography()?;
    ensure_node_vault()?;
    ensure_softhsm()?;
    ensure_chromium()
}

/// The Vault-compatible API is tested with node-vault, unmodified: installed from the
/// committed `package-lock.json` (`npm ci`) when absent.
fn ensure_node_vault() -> Result {
    let clients = root().join("crates/strongroom-server/tests/clients");
    if clients.join("node_modules/node-vault").exists()
        && clients.join("node_modules/axe-core").exists()
    {
        return Ok(());
    }
    run_in(
        &clients,
        "npm",
        &["ci", "--no-audit", "--no-fund", "--silent"],
        &[],
    )
    .map_err(|e| format!("the Vault API tests need node-vault (npm): {e}"))
}

/// The PKCS#11 tests use a real HSM implementation, SoftHSM2; install Debian's package
/// when it is absent.
fn ensure_softhsm() -> Result {
    if std::path::Path::new("/usr/lib/softhsm/libsofthsm2.so").exists()
        && succeeds("softhsm2-util", &["--version"])
    {
        return Ok(());
    }
    eprintln!("xtask: SoftHSM2 not found; installing Debian's softhsm2 package");
    apt_install(&["softhsm2"], "STRONGROOM_SKIP_PKCS11=1")
}

/// `apt-get update` and `apt-get install` of `packages`, non-interactive; the error names
/// the packages and the variable that skips the tests needing them.
fn apt_install(packages: &[&str], skip: &str) -> Result {
    let mut install = vec!["install", "-y", "-qq"];
    install.extend_from_slice(packages);
    for args in [&["update", "-qq"][..], &install] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| {
                format!(
                    "cannot run apt-get ({e}): install {}, or set {skip}",
                    packages.join(" ")
                )
            })?;
        if !status.success() {
            return Err(format!("apt-get {} failed", args.join(" ")));
        }
    }
    Ok(())
}

/// The console is tested in a real browser: Debian's Chromium and its WebDriver, installed
/// when absent.
fn ensure_chromium() -> Result {
    if std::path::Path::new("/usr/bin/chromium").exists()
        && std::path::Path::new("/usr/bin/chromedriver").exists()
    {
        return Ok(());
    }
    eprintln!("xtask: Chromium not found; installing Debian's chromium and chromium-driver");
    apt_install(
        &["chromium", "chromium-driver"],
        "STRONGROOM_SKIP_BROWSER=1",
    )
}

/// The fuzz workspace's lock file is current, so `cargo xtask fuzz` changes nothing.
fn check_fuzz_lock() -> Result {
    capture(
        &root().join("fuzz"),
        "cargo",
        // Not offline: a fresh machine has never fetched the fuzz workspace's crates.
        &["metadata", "--locked", "--format-version", "1"],
    )
    .map(drop)
    .map_err(|e| {
        format!(
            "fuzz/Cargo.lock is out of date (run `cargo update --offline --workspace \
             --manifest-path fuzz/Cargo.toml` and commit it): {e}"
        )
    })
}

/// A crate taken alone pulls in nothing it does not need: `cargo tree` of the lower
/// layers shows no database driver (crypto), and no HTTP, CLI or OpenAPI crate (crypto,
/// field, store).
fn check_dependency_boundaries() -> Result {
    let forbidden_everywhere = [
        "axum",
        "hyper",
        "tower",
        "clap",
        "reqwest",
        "indicatif",
        "utoipa",
    ];
    let cases: [(&str, &[&str], &[&str]); 3] = [
        (
            "strongroom-crypto",
            &[],
            &["rusqlite", "tokio", "tokio-postgres", "serde_json"],
        ),
        ("strongroom-field", &["--features", "sqlite,postgres"], &[]),
        // The store with every backend: drivers yes, HTTP, CLI and OpenAPI no.
        ("strongroom-store", &["--all-features"], &[]),
    ];
    for (krate, features, forbidden) in cases {
        let mut args = vec![
            "tree", "--quiet", "-p", krate, "-e", "normal", "--prefix", "none", "--locked",
        ];
        args.extend_from_slice(features);
        let tree = capture(&root(), "cargo", &args)?;
        for line in tree.lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            if forbidden_everywhere.contains(&name) || forbidden.contains(&name) {
                return Err(format!(
                    "{krate} depends on {name}, which does not belong in that layer"
                ));
            }
        }
        eprintln!(
            "xtask: {krate} depends on {} crates, none of them HTTP, CLI or out of layer",
            tree.lines().count()
        );
    }
    check_minimal_features()
}

/// Optional parts stay optional: envelope-only crypto pulls in neither AES-SIV nor
/// Argon2, and the lower crates build with their default features off (SQLite from the
/// system library, no backend at all).
fn check_minimal_features() -> Result {
    let tree = capture(
        &root(),
        "cargo",
        &[
            "tree",
            "--quiet",
            "-p",
            "strongroom-crypto",
            "--no-default-features",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--locked",
        ],
    )?;
    for optional in ["aes-siv", "argon2"] {
        if tree
            .lines()
            .any(|l| l.split_whitespace().next() == Some(optional))
        {
            return Err(format!(
                "strongroom-crypto without default features still depends on {optional}"
            ));
        }
    }
    for (krate, features) in [
        ("strongroom-crypto", ""),
        ("strongroom-field", ""),
        ("strongroom-store", "sqlite"),
        ("strongroom-store", "postgres"),
    ] {
        run_in(
            &root(),
            "cargo",
            &[
                "check",
                "--quiet",
                "--locked",
                "-p",
                krate,
                "--no-default-features",
                "--features",
                features,
            ],
            &[("RUSTFLAGS", "-D warnings")],
        )?;
    }
    Ok(())
}

/// The interop tests open values with Python's `cryptography`, read exports with
/// `python-dotenv`, parse `/metrics` with `prometheus_client`, speak Vault's API with
/// `hvac` and drive the console's browser with `selenium`; install them when absent.
fn ensure_python_cryptography() -> Result {
    for (module, package) in [
        ("cryptography", "cryptography"),
        ("dotenv", "python-dotenv"),
        ("prometheus_client", "prometheus-client"),
        ("hvac", "hvac"),
        ("selenium", "selenium"),
        ("jwt", "pyjwt"),
        ("psycopg", "psycopg[binary]"),
    ] {
        if succeeds("python3", &["-c", &format!("import {module}")]) {
            continue;
        }
        pip_install(package)
            .map_err(|e| format!("the interop tests need Python's `{package}` package: {e}"))?;
    }
    Ok(())
}

/// `pip install` of one package, quietly.
fn pip_install(package: &str) -> Result {
    run(
        "python3",
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            package,
        ],
    )
}
