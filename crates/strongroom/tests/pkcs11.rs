//! The key ring wrapped by a key inside a real HSM implementation (SoftHSM2, installed by
//! `cargo xtask ci`); each test initialises its own token in a scratch directory.

#![cfg(feature = "pkcs11")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A token of its own (SoftHSM2 configuration in `dir`) and the store beside it.
struct Hsm {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

impl Hsm {
    /// `None` only when SoftHSM2 is absent and `STRONGROOM_SKIP_PKCS11` says to skip.
    fn new() -> Option<Self> {
        let module =
            std::env::var("STRONGROOM_TEST_PKCS11_MODULE").unwrap_or_else(|_| MODULE.into());
        if !Path::new(&module).exists() {
            assert!(
                std::env::var_os("STRONGROOM_SKIP_PKCS11").is_some(),
                "SoftHSM2 ({module}) is not installed: run `cargo xtask ci` (it installs it), or set STRONGROOM_SKIP_PKCS11=1"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let conf = Self::token(dir.path(), "hsm-a");
        Some(Self { dir, conf })
    }

    /// A fresh token labelled `strongroom` under `dir/name`; returns its configuration.
    fn token(dir: &Path, name: &str) -> PathBuf {
        let tokens = dir.join(name);
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.join(format!("{name}.conf"));
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\n",
                tokens.display()
            ),
        )
        .unwrap();
        let out = Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                "strongroom",
                "--pin",
                "1234",
                "--so-pin",
                "5678",
            ])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        conf
    }

    fn run(&self, conf: &Path, vars: &[(&str, &str)], args: &[&str], stdin: &[u8]) -> Output {
        use std::io::Write as _;
        let mut command = Command::new(env!("CARGO_BIN_EXE_strongroom"));
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("STRONGROOM_")) {
            command.env_remove(name);
        }
        let mut child = command
            .args(args)
            .current_dir(self.dir.path())
            .env("SOFTHSM2_CONF", conf)
            .env("STRONGROOM_PKCS11_MODULE", MODULE)
            .env("STRONGROOM_PKCS11_TOKEN", "strongroom")
            .env("STRONGROOM_PKCS11_PIN", "1234")
            .env("STRONGROOM_PKCS11_KEY", "strongroom-ring")
            .envs(vars.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let out = self.run(&self.conf, &[], args, stdin);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn fails(&self, conf: &Path, vars: &[(&str, &str)], args: &[&str], code: i32) -> String {
        let out = self.run(conf, vars, args, b"");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        stderr
    }

    fn db(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("strongroom.db")).unwrap_or_default()
    }
}

#[test]
fn the_ring_lives_wrapped_by_the_hsm_and_every_mistake_is_one_clear_error() {
    let Some(hsm) = Hsm::new() else { return };
    hsm.ok(&["init", "--pkcs11"], b"");
    assert!(hsm
        .fails(&hsm.conf, &[], &["init", "--pkcs11"], 8)
        .contains("already holds"));
    hsm.ok(&["set", "DATABASE_URL"], b"postgres://prod");
    assert_eq!(hsm.ok(&["get", "DATABASE_URL"], b""), b"postgres://prod");
    let status = String::from_utf8(hsm.ok(&["keys", "status"], b"")).unwrap();
    assert!(status.contains("PKCS#11 token \"strongroom\""), "{status}");
    // Rotation inside the HSM: a new version from its RNG, every value re-wrapped to it.
    hsm.ok(&["rotate", "--new-key"], b"");
    let status: serde_json::Value =
        serde_json::from_slice(&hsm.ok(&["keys", "status", "--json"], b"")).unwrap();
    assert_eq!(
        (status[0]["version"].clone(), status[0]["active"].clone()),
        (2.into(), true.into())
    );
    assert_eq!(status[0]["current_values"], 1);
    assert_eq!(hsm.ok(&["get", "DATABASE_URL"], b""), b"postgres://prod");
    let doctor = String::from_utf8(hsm.ok(&["doctor"], b"")).unwrap();
    assert!(
        doctor.contains("unwrapped by the HSM") && doctor.contains("audit chain"),
        "{doctor}"
    );

    // The database holds the ring only wrapped: no key of it appears in clear.
    let conn = rusqlite::Connection::open(hsm.dir.path().join("strongroom.db")).unwrap();
    let wrapped: String = conn
        .query_row(
            "SELECT value FROM meta WHERE name = 'pkcs11_wrapped_ring'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let blob = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        wrapped.strip_prefix("v1:").unwrap(),
    )
    .unwrap();
    assert!(
        !blob
            .windows(16)
            .any(|w| w.iter().all(u8::is_ascii_hexdigit)),
        "no hex key in clear in the stored ring"
    );
    drop(conn);

    // Each mistake: one clear error, and the database is not touched.
    let before = hsm.db();
    let wrong_pin = hsm.fails(
        &hsm.conf,
        &[("STRONGROOM_PKCS11_PIN", "9999")],
        &["get", "DATABASE_URL"],
        6,
    );
    assert!(
        wrong_pin.contains("PIN from STRONGROOM_PKCS11_PIN is wrong")
            && !wrong_pin.contains("_PIN_FILE")
            && !wrong_pin.contains("9999"),
        "{wrong_pin}"
    );
    let no_label = hsm.fails(
        &hsm.conf,
        &[("STRONGROOM_PKCS11_KEY", "missing")],
        &["list"],
        6,
    );
    assert!(
        no_label.contains("no key labelled \"missing\""),
        "{no_label}"
    );
    let no_module = hsm.fails(
        &hsm.conf,
        &[("STRONGROOM_PKCS11_MODULE", "/nonexistent/libpkcs11.so")],
        &["list"],
        3,
    );
    assert!(no_module.contains("cannot load"), "{no_module}");
    let both = hsm.fails(
        &hsm.conf,
        &[("STRONGROOM_MASTER_KEY", &"11".repeat(32))],
        &["list"],
        3,
    );
    assert!(both.contains("not both"), "{both}");
    // The database copied to a machine whose HSM has another key under the same label.
    let elsewhere = Hsm::token(hsm.dir.path(), "hsm-b");
    let out = hsm.run(&elsewhere, &[], &["init", "--pkcs11"], b"");
    assert_eq!(
        out.status.code(),
        Some(8),
        "the copy already holds a ring: init refuses"
    );
    let other = hsm.fails(&elsewhere, &[], &["get", "DATABASE_URL"], 6);
    assert!(other.contains("no key labelled"), "{other}");
    assert_eq!(hsm.db(), before, "no mistake wrote anything");
}

#[test]
fn a_pin_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(hsm) = Hsm::new() else { return };
    let pin = hsm.dir.path().join("pin");
    std::fs::write(&pin, "1234").unwrap();
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o644)).unwrap();
    let pin = pin.to_str().unwrap();
    let stderr = hsm.fails(
        &hsm.conf,
        &[
            ("STRONGROOM_PKCS11_PIN", ""),
            ("STRONGROOM_PKCS11_PIN_FILE", pin),
        ],
        // A configuration error (3), as a key file's: the variable is named.
        &["init", "--pkcs11"],
        3,
    );
    assert!(stderr.contains("644"), "{stderr}");
    std::fs::set_permissions(pin, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = hsm.run(
        &hsm.conf,
        &[
            ("STRONGROOM_PKCS11_PIN", ""),
            ("STRONGROOM_PKCS11_PIN_FILE", pin),
        ],
        &["init", "--pkcs11"],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Someone with write access to the database edits the wrapped ring (or puts garbage in its
/// place): the HSM's AES-GCM refuses it, one error, nothing written.
#[test]
fn a_forged_wrapped_ring_is_refused() {
    let Some(hsm) = Hsm::new() else { return };
    hsm.ok(&["init", "--pkcs11"], b"");
    hsm.ok(&["set", "DATABASE_URL"], b"postgres://prod");
    let conn = rusqlite::Connection::open(hsm.dir.path().join("strongroom.db")).unwrap();
    let wrapped: String = conn
        .query_row(
            "SELECT value FROM meta WHERE name = 'pkcs11_wrapped_ring'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    drop(conn);
    let blob = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        wrapped.strip_prefix("v1:").unwrap(),
    )
    .unwrap();
    let conn = rusqlite::Connection::open(hsm.dir.path().join("strongroom.db")).unwrap();
    let mut forged = blob.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let forged = format!(
        "v1:{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &forged)
    );
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE name = 'pkcs11_wrapped_ring'",
        [&forged],
    )
    .unwrap();
    drop(conn);
    let before = hsm.db();
    let stderr = hsm.fails(&hsm.conf, &[], &["get", "DATABASE_URL"], 6);
    assert!(stderr.contains("does not open"), "{stderr}");
    assert_eq!(hsm.db(), before, "nothing written");
    for garbage in ["v1:not-base64!", "v2:AAAA", ""] {
        let conn = rusqlite::Connection::open(hsm.dir.path().join("strongroom.db")).unwrap();
        conn.execute(
            "UPDATE meta SET value = ?1 WHERE name = 'pkcs11_wrapped_ring'",
            [garbage],
        )
        .unwrap();
        drop(conn);
        let stderr = hsm.fails(&hsm.conf, &[], &["list"], 6);
        assert!(stderr.contains("malformed"), "{garbage}: {stderr}");
    }
}
