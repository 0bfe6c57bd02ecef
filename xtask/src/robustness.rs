//! `cargo xtask schemathesis`: the built server against its own OpenAPI document.
//!
//! Starts `strongroom serve` on a free loopback port with a throw-away database, runs
//! schemathesis (from PyPI, installed when absent) for a bounded number of examples per
//! operation, and fails on any 5xx or any response that does not match the schema.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use crate::{root, run_in, succeeds, Result};

/// Runs schemathesis with `examples` examples per operation.
pub fn schemathesis(examples: u32) -> Result {
    if !succeeds("schemathesis", &["--version"]) {
        run_in(
            &root(),
            "python3",
            &[
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "schemathesis",
            ],
            &[],
        )
        .map_err(|e| format!("schemathesis is needed from PyPI: {e}"))?;
    }
    crate::run("cargo", &["build", "--quiet", "-p", "strongroom"])?;
    let dir = crate::target_dir().join("schemathesis");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let admin = "schemathesis-admin-token-0123456789";
    let binary = crate::target_dir().join("debug/strongroom");
    let mut server = Command::new(&binary)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(&dir)
        .env(
            "STRONGROOM_MASTER_KEY",
            "4444444444444444444444444444444444444444444444444444444444444444",
        )
        .env("STRONGROOM_ADMIN_TOKEN", admin)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let mut lines = BufReader::new(server.stderr.take().ok_or("no stderr")?).lines();
    let url = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(url) = line.strip_prefix("strongroom: serving on ") {
                    break url.to_owned();
                }
            }
            _ => {
                let _ = server.kill();
                return Err("the server did not start".into());
            }
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let outcome = run_in(
        &dir,
        "schemathesis",
        &[
            "run",
            &format!("{url}/api/openapi.json"),
            "--header",
            &format!("Authorization: Bearer {admin}"),
            "--max-examples",
            &examples.to_string(),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
            "--seed",
            "20261123",
        ],
        &[],
    );
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    outcome
}
