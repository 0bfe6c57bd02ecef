//! `strongroom doctor`: one line per check, with a fix for each failure. Exit 0 when no
//! check fails (warnings do not fail), 1 otherwise. Never prints a key or a value.

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;
use strongroom_store::{KeySource, Store};

use crate::cli::DoctorArgs;
use crate::exit::Failure;
use crate::settings::{KeyOrigin, Settings};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

/// One line of the report (`--json`: one object of the array).
#[derive(Debug, Serialize)]
struct Check {
    #[serde(rename = "check")]
    name: &'static str,
    status: Status,
    detail: String,
    /// What to do, for a warning or a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

impl Check {
    fn ok(check: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name: check,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }
    fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name: check,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name: check,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

impl DoctorArgs {
    /// `strongroom doctor [--json]`.
    pub async fn run(self) -> Result<ExitCode, Failure> {
        let checks = checks().await;
        if self.json {
            crate::output::print_json(&checks)?;
        } else {
            for c in &checks {
                let status = match c.status {
                    Status::Ok => "ok  ",
                    Status::Warn => "warn",
                    Status::Fail => "FAIL",
                };
                match &c.fix {
                    Some(fix) => println!("{status} {:<16} {} — fix: {fix}", c.name, c.detail),
                    None => println!("{status} {:<16} {}", c.name, c.detail),
                }
            }
        }
        let failed = checks.iter().any(|c| c.status == Status::Fail);
        Ok(if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    }
}

async fn checks() -> Vec<Check> {
    let mut out = Vec::new();
    let settings = match Settings::from_env() {
        Ok(settings) => {
            out.push(Check::ok("configuration", "STRONGROOM_* variables parse"));
            settings
        }
        Err(e) => {
            out.push(Check::fail(
                "configuration",
                e.to_string(),
                "correct the variable named (docs/operations.md)",
            ));
            return out;
        }
    };
    let hsm = std::env::var_os("STRONGROOM_PKCS11_MODULE").is_some_and(|m| !m.is_empty());
    // An HSM-wrapped ring is unwrapped once the database is open (below).
    let keys = if hsm { None } else { key_check(&mut out) };
    out.push(gateway_check());
    let database = settings
        .database_url
        .strip_prefix("sqlite://")
        .map(Path::new);
    if let Some(path) = database {
        out.push(permissions_check("database file", path));
    }
    let dev_key = Path::new(".strongroom/dev.key");
    if dev_key.exists() {
        out.push(permissions_check("dev key file", dev_key));
    }
    out.push(transport_check(&settings));
    let backend = match strongroom_store::open_backend_with(
        &settings.database_url,
        &settings.backend,
    )
    .await
    {
        Ok(backend) => {
            out.push(Check::ok(
                "database",
                format!("{} reachable, schema current", backend.name()),
            ));
            backend
        }
        Err(e) => {
            out.push(Check::fail(
                "database",
                e.to_string(),
                "check STRONGROOM_DATABASE_URL and that the database is up",
            ));
            return out;
        }
    };
    if let Some(skew) = backend.clock_skew_ms().await {
        out.push(match skew {
            Ok(ms) if ms.abs() <= 5_000 => {
                Check::ok("clock", format!("{ms} ms from the database server"))
            }
            Ok(ms) if ms.abs() <= 60_000 => Check::warn(
                "clock",
                format!("{ms} ms from the database server"),
                "run NTP on both hosts (expiry and audit times use this clock)",
            ),
            Ok(ms) => Check::fail(
                "clock",
                format!("{ms} ms from the database server"),
                "run NTP on both hosts: expiry and audit times are off",
            ),
            Err(e) => Check::warn(
                "clock",
                format!("cannot read the server's clock: {e}"),
                "check the database connection",
            ),
        });
    }
    let keys = if hsm {
        hsm_key_check(&mut out, backend.as_ref()).await
    } else {
        keys
    };
    if let Some(keys) = keys {
        store_checks(&mut out, backend, keys, settings.store).await;
    }
    out
}

/// The key ring unwrapped by the HSM (it needs the database).
async fn hsm_key_check(
    out: &mut Vec<Check>,
    backend: &dyn strongroom_store::backend::Backend,
) -> Option<KeySource> {
    match crate::keys::key_source(backend).await {
        Ok(keys) => {
            out.push(Check::ok(
                "keys",
                "the key ring unwrapped by the HSM (PKCS#11)",
            ));
            Some(keys)
        }
        Err(failure) => {
            out.push(Check::fail(
                "keys",
                failure.message,
                "check STRONGROOM_PKCS11_MODULE, _TOKEN, _PIN_FILE and _KEY (docs/operations.md)",
            ));
            None
        }
    }
}

/// Opens the store: the key fingerprints, then the audit chain.
async fn store_checks(
    out: &mut Vec<Check>,
    backend: std::sync::Arc<dyn strongroom_store::backend::Backend>,
    keys: KeySource,
    config: strongroom_store::StoreConfig,
) {
    match Store::open(backend, keys, config).await {
        Ok(store) => {
            out.push(Check::ok("key fingerprints", "every configured key matches what the database recorded"));
            out.push(match store.verify_audit().await {
                Ok(v) if v.broken_at.is_none() => Check::ok("audit chain", format!("{} event(s) verified", v.events)),
                Ok(v) => Check::fail(
                    "audit chain",
                    format!("broken at event {}", v.broken_at.map_or(0, |b| b.0)),
                    "run `strongroom audit verify` and investigate who wrote to the database",
                ),
                Err(e @ strongroom_store::StoreError::AuditKeyUnavailable { .. }) => Check::fail(
                    "audit chain",
                    e.to_string(),
                    "add the retired key back to STRONGROOM_KEYS as a later entry (it is used for verification only)",
                ),
                Err(e) => Check::fail("audit chain", e.to_string(), "run `strongroom audit verify`"),
            });
            out.push(token_check(&store).await);
            out.push(key_grammar_check(&store).await);
            out.push(lease_check(&store).await);
        }
        Err(e) => out.push(Check::fail(
            "key fingerprints",
            e.to_string(),
            "configure the key(s) that wrote this database (STRONGROOM_KEYS=\"NEW:...,OLD:...\" during a rotation)",
        )),
    }
}

/// Every token row authenticates under the key; a forged or edited row is named.
async fn token_check(store: &Store) -> Check {
    match store.token_problems().await {
        Ok(problems) if problems.is_empty() => {
            Check::ok("token rows", "every token row's keyed tag matches")
        }
        Ok(problems) => Check::fail(
            "token rows",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
            "these rows were written without the key and are refused: find who wrote to the \
             database, then delete the rows (`DELETE FROM api_tokens WHERE id = '...'`) and \
             create the tokens anew (`strongroom token create`)",
        ),
        Err(e) => Check::fail("token rows", e.to_string(), "check the database connection"),
    }
}

/// Leases whose login could not be dropped yet (the database unreachable): a server
/// retries them for ever; each is named with its last error, and a lease whose record
/// does not open under the key is named as forged.
async fn lease_check(store: &Store) -> Check {
    let rows = match store.lease_rows("").await {
        Ok(rows) => rows,
        Err(e) => return Check::fail("leases", e.to_string(), "check the database connection"),
    };
    let live: Vec<_> = rows.iter().filter(|r| r.state != "revoked").collect();
    let forged: Vec<&str> = live
        .iter()
        .filter(|r| store.open_lease(r).is_err())
        .map(|r| r.id.as_str())
        .collect();
    if !forged.is_empty() {
        return Check::fail(
            "leases",
            format!("lease rows written without the key: {}", forged.join(", ")),
            "they are never acted on: find who wrote to the database, then delete the rows",
        );
    }
    let failing: Vec<String> = live
        .iter()
        .filter(|r| r.attempts > 0)
        .map(|r| {
            format!(
                "{} ({} attempts, last: {})",
                r.id,
                r.attempts,
                r.last_error.as_deref().unwrap_or("unknown")
            )
        })
        .collect();
    if failing.is_empty() {
        Check::ok(
            "leases",
            format!("{} live lease(s), none failing", live.len()),
        )
    } else {
        Check::warn(
            "leases",
            format!("logins not dropped yet: {}", failing.join("; ")),
            "a running server retries them (backoff up to 5 min): make the database reachable from the server",
        )
    }
}

/// Keys written before the one key grammar held (`a//b`, `/a`, `a/`, `.`, `..`): readable,
/// but unreachable from `/v1` and the console; each named with the command that renames it.
async fn key_grammar_check(store: &Store) -> Check {
    match store.malformed_keys().await {
        Ok(keys) if keys.is_empty() => Check::ok(
            "key names",
            "every key has non-empty segments, none `.` or `..`",
        ),
        Ok(keys) => Check::warn(
            "key names",
            keys.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            format!(
                "these keys are unreachable from /v1 and the console; rename each, e.g. \
                 `strongroom mv '{}' NEW_NAME --namespace {} --env {}`",
                keys[0].key, keys[0].namespace, keys[0].env
            ),
        ),
        Err(e) => Check::fail("key names", e.to_string(), "check the database connection"),
    }
}

/// Where the keys come from; a key in an environment variable is a warning.
fn key_check(out: &mut Vec<Check>) -> Option<KeySource> {
    match Settings::keys() {
        Ok(KeySource::Password(password)) => {
            out.push(Check::warn(
                "keys",
                "a development password (STRONGROOM_MASTER_PASSWORD)",
                "use a random key in production (`strongroom keygen`)",
            ));
            Some(KeySource::Password(password))
        }
        Ok(KeySource::Ring(ring)) => {
            let summary = |origin: &dyn std::fmt::Display| {
                format!(
                    "{} key(s), active version {} ({}), from {origin}",
                    ring.keks().count(),
                    ring.active().version(),
                    ring.active().fingerprint()
                )
            };
            match Settings::key_origin() {
                Ok(Some(origin @ KeyOrigin::Variable(_))) => out.push(Check::warn(
                    "keys",
                    summary(&origin),
                    "a child process or a crash dump can see environment variables: prefer a key \
                     file readable by this user only (STRONGROOM_MASTER_KEY_FILE) or a systemd credential",
                )),
                Ok(Some(origin)) => out.push(Check::ok("keys", summary(&origin))),
                Ok(None) | Err(_) => out.push(Check::ok("keys", summary(&"the configuration"))),
            }
            Some(KeySource::Ring(ring))
        }
        Err(e) => {
            out.push(Check::fail(
                "keys",
                e.to_string(),
                "set STRONGROOM_MASTER_KEY (`strongroom keygen`)",
            ));
            None
        }
    }
}

fn gateway_check() -> Check {
    match std::env::var_os("STRONGROOM_GATEWAY_CONFIG").filter(|v| !v.is_empty()) {
        None => Check::ok("gateway", "no gateway configured"),
        Some(path) => match strongroom_gateway::GatewayConfig::load(Path::new(&path)) {
            Ok(config) => Check::ok("gateway", format!("{} route(s) load", config.routes.len())),
            Err(e) => Check::fail(
                "gateway",
                e.to_string(),
                "correct the gateway configuration (docs/api.md)",
            ),
        },
    }
}

/// A file holding secrets (sealed or not) is readable by its owner only.
fn permissions_check(name: &'static str, path: &Path) -> Check {
    if !path.exists() {
        return Check::ok(
            name,
            format!("{} does not exist yet (created 0600)", path.display()),
        );
    }
    match crate::files::check_private(path) {
        Ok(()) => Check::ok(name, format!("{} is 0600 or stricter", path.display())),
        Err(e) => Check::fail(name, e.message, format!("chmod 600 {}", path.display())),
    }
}

/// TLS to PostgreSQL: required off loopback; a configured CA file must be readable.
fn transport_check(settings: &Settings) -> Check {
    let url = &settings.database_url;
    if !url.starts_with("postgres") {
        return Check::ok("tls", "SQLite: no network connection");
    }
    let tls = url.contains("sslmode=require") || url.contains("sslmode=verify");
    if let Some(ca) = &settings.backend.pg_ca_file {
        if std::fs::metadata(ca).is_err() {
            return Check::fail(
                "tls",
                format!("STRONGROOM_PG_CA_FILE {} is not readable", ca.display()),
                "point it at the PEM of the server's CA",
            );
        }
    }
    let loopback = ["@localhost", "@127.", "@[::1]", "://localhost", "://127."]
        .iter()
        .any(|h| url.contains(h));
    match (tls, loopback) {
        (true, _) => Check::ok("tls", "PostgreSQL over verified TLS"),
        (false, true) => Check::ok("tls", "PostgreSQL on loopback without TLS"),
        (false, false) => Check::warn(
            "tls",
            "PostgreSQL over the network without TLS",
            "add sslmode=require to STRONGROOM_DATABASE_URL",
        ),
    }
}
