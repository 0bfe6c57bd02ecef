//! A throw-away PostgreSQL server for the test suite.
//!
//! Installs Debian's `postgresql` package when no server binaries are found, creates a
//! cluster in a temporary directory with `initdb`, starts it on a free loopback port (as
//! an unprivileged user when running as root, since PostgreSQL refuses to run as root),
//! and stops and deletes it when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Result;

/// A running test server.
pub struct TestServer {
    bin: PathBuf,
    dir: PathBuf,
    user: Option<&'static str>,
    /// Superuser URL on loopback, e.g. `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub url: String,
    /// The PEM file of the throw-away CA that signed the server's TLS certificate (for
    /// `localhost` and `127.0.0.1`); the server accepts TLS and plain connections.
    pub ca_file: PathBuf,
}

const USER: &str = "strongroom-pg";

fn find_bindir() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    candidates.sort();
    candidates.pop().or_else(|| {
        let out = Command::new("pg_config").arg("--bindir").output().ok()?;
        let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
        dir.join("initdb").exists().then_some(dir)
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn status(program: &str, args: &[&str]) -> Result {
    let status = Command::new(program)
        .args(args)
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

impl TestServer {
    /// Installs (if needed), initialises and starts a server.
    pub fn start() -> Result<Self> {
        let bin = match find_bindir() {
            Some(bin) => bin,
            None => {
                eprintln!("xtask: PostgreSQL server binaries not found; installing Debian's postgresql package");
                if !is_root() {
                    return Err("PostgreSQL is not installed and this is not root: install `postgresql` or set STRONGROOM_SKIP_POSTGRES=1".into());
                }
                let env = [("DEBIAN_FRONTEND", "noninteractive")];
                let apt = |args: &[&str]| -> Result {
                    let s = Command::new("apt-get")
                        .args(args)
                        .envs(env)
                        .status()
                        .map_err(|e| e.to_string())?;
                    s.success()
                        .then_some(())
                        .ok_or_else(|| format!("apt-get {} failed", args.join(" ")))
                };
                apt(&["update", "-qq"])?;
                apt(&["install", "-y", "-qq", "postgresql", "postgresql-contrib"])?;
                find_bindir().ok_or("postgresql installed, but initdb was not found")?
            }
        };
        let user = if is_root() {
            if Command::new("id")
                .arg(USER)
                .output()
                .map_or(true, |o| !o.status.success())
            {
                status(
                    "useradd",
                    &[
                        "--system",
                        "--no-create-home",
                        "--shell",
                        "/usr/sbin/nologin",
                        USER,
                    ],
                )?;
            }
            Some(USER)
        } else {
            None
        };
        let dir = std::env::temp_dir().join(format!("strongroom-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        if let Some(user) = user {
            status("chown", &[user, &dir.to_string_lossy()])?;
        }
        let port = free_port()?;
        let server = Self {
            bin,
            ca_file: dir.join("ca.pem"),
            dir,
            user,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        };
        let data = server.dir.join("data");
        server.pg(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        server.write_tls_files(&data)?;
        Self::require_passwords_of_dynamic_logins(&data)?;
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off \
             -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key",
            server.dir.display()
        );
        let log = server.dir.join("server.log");
        server.pg(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-o",
                &options,
                "-l",
                &log.to_string_lossy(),
                "-w",
                "start",
            ],
        )?;
        eprintln!("xtask: PostgreSQL running at {}", server.url);
        Ok(server)
    }

    /// Members of `strongroom_password_login` (the logins the dynamic-credentials tests
    /// make) authenticate with their password (SCRAM), not by trust: a login that works
    /// proves its password does.
    fn require_passwords_of_dynamic_logins(data: &std::path::Path) -> Result {
        let hba = data.join("pg_hba.conf");
        let old = std::fs::read_to_string(&hba).map_err(|e| format!("{}: {e}", hba.display()))?;
        let new = format!("host all +strongroom_password_login all scram-sha-256\n{old}");
        std::fs::write(&hba, new).map_err(|e| format!("{}: {e}", hba.display()))
    }

    fn pg(&self, tool: &str, args: &[&str]) -> Result {
        let tool = self.bin.join(tool);
        let mut command = match self.user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&tool);
                c
            }
            None => Command::new(&tool),
        };
        let out = command
            .args(args)
            .current_dir(&self.dir)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", tool.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed: {}{}",
                tool.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// A throw-away CA (`ca.pem`) and a server certificate it signed for `localhost` and
    /// `127.0.0.1` (`server.crt`, `server.key` in `data`, owned by the server's user, 0600).
    fn write_tls_files(&self, data: &Path) -> Result {
        use std::os::unix::fs::PermissionsExt as _;
        let tls = |e: rcgen::Error| format!("cannot make the test server's certificates: {e}");
        let ca_key = rcgen::KeyPair::generate().map_err(tls)?;
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Strongroom throw-away test CA");
        let ca_cert = ca.self_signed(&ca_key).map_err(tls)?;
        let server_key = rcgen::KeyPair::generate().map_err(tls)?;
        let server_cert =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .map_err(tls)?
                .signed_by(&server_key, &ca_cert, &ca_key)
                .map_err(tls)?;
        let write = |path: &Path, contents: String| {
            std::fs::write(path, contents).map_err(|e| format!("{}: {e}", path.display()))
        };
        write(&self.ca_file, ca_cert.pem())?;
        let (crt, key) = (data.join("server.crt"), data.join("server.key"));
        write(&crt, server_cert.pem())?;
        write(&key, server_key.serialize_pem())?;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        if let Some(user) = self.user {
            for file in [&crt, &key] {
                status("chown", &[user, &file.to_string_lossy()])?;
            }
        }
        Ok(())
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The unprivileged user the server runs as (when this runs as root).
    pub fn user(&self) -> Option<&'static str> {
        self.user
    }

    /// The directory of the server's binaries and client tools (`psql`, `pg_dump`).
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if let Err(e) = self.pg(
            "pg_ctl",
            &["-D", &data.to_string_lossy(), "-m", "fast", "-w", "stop"],
        ) {
            eprintln!("xtask: stopping PostgreSQL: {e}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}
