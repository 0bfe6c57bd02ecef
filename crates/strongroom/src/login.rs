//! `strongroom login METHOD`: proves who this is to a running server through one of its
//! auth methods (Vault's `POST /v1/auth/{path}/login`) and prints the token it gets — a
//! token that expires — on standard output, alone, for `export STRONGROOM_TOKEN=$(…)`.
//! Credentials are read from `env:VARIABLE` or `file:PATH`, never from the command line.

use std::process::ExitCode;

use serde_json::{json, Value};
use strongroom_crypto::secrecy::{ExposeSecret as _, SecretString};

use crate::cli::{LoginArgs, LoginMethod};
use crate::exit::Failure;

impl LoginArgs {
    /// `strongroom login jwt|kubernetes|approle`.
    pub async fn run(self) -> Result<ExitCode, Failure> {
        let (default_path, body) = match &self.method {
            LoginMethod::Jwt { role, jwt } => (
                "jwt",
                json!({"role": role.clone().unwrap_or_default(), "jwt": credential("--jwt", jwt, true)?.expose_secret()}),
            ),
            LoginMethod::Kubernetes { role, jwt } => (
                "kubernetes",
                // The platform mounts the service account token (mode 0644 by default): read
                // as it is, not held to a private file's mode.
                json!({"role": role, "jwt": credential("--jwt", jwt, false)?.expose_secret()}),
            ),
            LoginMethod::Approle { role_id, secret_id } => (
                "approle",
                json!({"role_id": role_id, "secret_id": credential("--secret-id", secret_id, true)?.expose_secret()}),
            ),
        };
        let server = self
            .server
            .or_else(|| std::env::var("STRONGROOM_ADDR").ok())
            .unwrap_or_else(|| "http://127.0.0.1:8090".to_owned());
        let path = self.path.as_deref().unwrap_or(default_path);
        let mut client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &self.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| Failure::io(format!("cannot read {}: {e}", ca.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|_| Failure::input(format!("{}: not a PEM certificate", ca.display())))?;
            client = client.add_root_certificate(cert);
        }
        let client = client
            .build()
            .map_err(|e| Failure::io(format!("cannot make an HTTP client: {e}")))?;
        let url = format!("{}/v1/auth/{path}/login", server.trim_end_matches('/'));
        let response = client
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| Failure::io(format!("cannot reach {server}: {}", e.without_url())))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if let Some(token) = answer["auth"]["client_token"]
            .as_str()
            .filter(|t| !t.is_empty())
        {
            println!("{token}");
            if let Some(ttl) = answer["auth"]["lease_duration"].as_u64().filter(|t| *t > 0) {
                eprintln!("logged in through {path}; the token expires in {ttl} s");
            }
            return Ok(ExitCode::SUCCESS);
        }
        let why = answer["errors"][0].as_str().map_or_else(
            || format!("the server answered {status}"),
            crate::output::terminal_safe,
        );
        Err(Failure::input(format!("login refused: {why}")))
    }
}

/// A credential from `env:VARIABLE` or `file:PATH` (with `private`, a file of mode 0600 or
/// stricter owned by this user).
fn credential(flag: &str, source: &str, private: bool) -> Result<SecretString, Failure> {
    if let Some(name) = source.strip_prefix("env:") {
        return std::env::var(name)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .map(SecretString::from)
            .ok_or_else(|| Failure::input(format!("{flag}: {name} is not set")));
    }
    if let Some(path) = source.strip_prefix("file:") {
        let text = if private {
            crate::files::read_private(std::path::Path::new(path)).map_err(Failure::input)?
        } else {
            zeroize::Zeroizing::new(
                std::fs::read_to_string(path)
                    .map_err(|e| Failure::input(format!("{flag}: cannot read {path}: {e}")))?,
            )
        };
        return Ok(SecretString::from(text.trim().to_owned()));
    }
    Err(Failure::input(format!(
        "{flag}: give env:VARIABLE or file:PATH (a credential on the command line is visible in ps)"
    )))
}
