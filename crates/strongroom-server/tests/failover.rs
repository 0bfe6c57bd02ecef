//! Failover as an operator does it: a PostgreSQL primary with a synchronous streaming
//! standby on loopback, three server instances over a libpq multi-host URL
//! (`host1,host2` with `target_session_attrs=read-write`), writers under load; the
//! primary is killed with SIGKILL and the standby promoted. Checked: while there is no
//! primary every request answers 503 (never 500); every write acknowledged to a client is
//! on the new primary; the audit chain verifies; tokens made before work after; the
//! servers write again on their own, and a read cache reconnects and agrees. The time from the kill to the first successful
//! write is printed (`cargo test -p strongroom-server --test failover -- --nocapture`).
//!
//! It builds its own two clusters from the binaries `cargo xtask ci` found
//! (`STRONGROOM_TEST_PG_BIN`, run as `STRONGROOM_TEST_PG_USER` when this runs as root).

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

const ADMIN: &str = "failover-admin-token-0123456789";
const WRITERS: usize = 6;

/// The PostgreSQL binaries and the user to run them as, or `None` when the run skips
/// PostgreSQL on purpose.
fn binaries() -> Option<(PathBuf, Option<String>)> {
    match std::env::var_os("STRONGROOM_TEST_PG_BIN") {
        Some(bin) => Some((
            PathBuf::from(bin),
            std::env::var("STRONGROOM_TEST_PG_USER").ok(),
        )),
        None => {
            assert!(
                std::env::var_os("STRONGROOM_SKIP_POSTGRES").is_some(),
                "STRONGROOM_TEST_PG_BIN is not set: run `cargo xtask ci`, or set STRONGROOM_SKIP_POSTGRES=1"
            );
            None
        }
    }
}

/// Pairs made by this process (each gets its own directory).
static PAIRS: AtomicU64 = AtomicU64::new(0);

/// Two data directories (primary, standby) under one temporary directory.
struct Pair {
    bin: PathBuf,
    user: Option<String>,
    dir: PathBuf,
    primary_port: u16,
    standby_port: u16,
}

impl Pair {
    fn run(&self, tool: &str, args: &[&str]) -> String {
        let tool = self.bin.join(tool);
        let mut command = match &self.user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&tool);
                c
            }
            None => Command::new(&tool),
        };
        let out = command.args(args).current_dir(&self.dir).output().unwrap();
        assert!(
            out.status.success(),
            "{} {args:?}: {}{}",
            tool.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn data(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    fn start(&self, name: &str, port: u16) {
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.dir.display()
        );
        let log = self.data(&format!("{name}.log"));
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(name),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    /// A primary and a standby (`standby1`) streaming from it.
    fn launch() -> Option<Self> {
        let (bin, user) = binaries()?;
        let dir = std::env::temp_dir().join(format!(
            "strongroom-failover-{}-{}",
            std::process::id(),
            PAIRS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(user) = &user {
            assert!(Command::new("chown")
                .args([user.as_str(), &dir.to_string_lossy()])
                .status()
                .unwrap()
                .success());
        }
        let pair = Self {
            bin,
            user,
            dir,
            primary_port: free_port(),
            standby_port: free_port(),
        };
        pair.run(
            "initdb",
            &[
                "-D",
                &pair.data("primary"),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        append(
            &pair.dir.join("primary/postgresql.conf"),
            "wal_level = replica\nmax_wal_senders = 4\nsynchronous_commit = on\n",
        );
        pair.start("primary", pair.primary_port);
        pair.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &pair.primary_port.to_string(),
                "-U",
                "postgres",
                "-D",
                &pair.data("standby"),
                "-c",
                "fast",
                "--no-sync",
            ],
        );
        append(
            &pair.dir.join("standby/postgresql.auto.conf"),
            &format!(
                "primary_conninfo = 'host=127.0.0.1 port={} user=postgres application_name=standby1'\n",
                pair.primary_port
            ),
        );
        append(&pair.dir.join("standby/standby.signal"), "");
        pair.start("standby", pair.standby_port);
        Some(pair)
    }

    /// Every commit on the primary waits for `standby1` from now on. (Set after the base
    /// backup, so the standby does not inherit it: a promoted standby waiting for a
    /// standby of its own would never commit.)
    async fn make_synchronous(&self) {
        let primary = self.url(true, "postgres");
        sql(
            &primary,
            "ALTER SYSTEM SET synchronous_standby_names = 'standby1'",
        )
        .await;
        sql(&primary, "SELECT pg_reload_conf()").await;
    }

    /// The primary's postmaster and every process it started, killed at once (SIGKILL),
    /// as a crashed machine would leave them.
    fn kill_primary(&self) {
        let pid_file = std::fs::read_to_string(self.dir.join("primary/postmaster.pid")).unwrap();
        let pid = pid_file.lines().next().unwrap().trim().to_owned();
        assert!(Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap()
            .success());
        let _ = Command::new("pkill").args(["-KILL", "-P", &pid]).status();
    }

    fn promote_standby(&self) {
        self.run("pg_ctl", &["-D", &self.data("standby"), "-w", "promote"]);
    }

    fn url(&self, primary: bool, db: &str) -> String {
        let port = if primary {
            self.primary_port
        } else {
            self.standby_port
        };
        format!("postgres://postgres@127.0.0.1:{port}/{db}")
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for name in ["standby", "primary"] {
            if self.dir.join(name).join("postmaster.pid").exists() {
                let bin = self.bin.join("pg_ctl");
                let data = self.data(name);
                let mut command = match &self.user {
                    Some(user) => {
                        let mut c = Command::new("runuser");
                        c.args(["-u", user, "--"]).arg(&bin);
                        c
                    }
                    None => Command::new(&bin),
                };
                let _ = command
                    .args(["-D", &data, "-m", "immediate", "stop"])
                    .output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn sql(url: &str, statement: &str) -> Vec<tokio_postgres::Row> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.query(statement, &[]).await.unwrap()
}

/// One server instance over `url` (with the read cache when `read_cache`); its base URL.
async fn instance(url: &str, read_cache: bool) -> String {
    use strongroom_crypto::secrecy::SecretString;
    use strongroom_crypto::{Key, KeyRing};
    let options = strongroom_store::BackendOptions {
        read_cache,
        ..strongroom_store::BackendOptions::default()
    };
    let backend = strongroom_store::open_backend_with(url, &options)
        .await
        .unwrap();
    let store = strongroom_store::Store::open(
        backend,
        strongroom_store::KeySource::Ring(KeyRing::single(&Key::from_bytes(&[6; 32]))),
        strongroom_store::StoreConfig::default(),
    )
    .await
    .unwrap();
    let tokens =
        strongroom_store::tokens::Tokens::new(&store, Some(&SecretString::from(ADMIN))).unwrap();
    let router = strongroom_server::router(
        strongroom_server::AppState {
            tokens,
            store: Some(store.into()),
            gateway: None,
            metrics: None,
        },
        strongroom_server::Limits::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(strongroom_server::serve(
        listener,
        router,
        std::future::pending(),
    ));
    base
}

/// What the writers saw.
#[derive(Default)]
struct Seen {
    /// Per writer, the last value number a 200 acknowledged.
    acknowledged: Vec<Option<u64>>,
    /// 503 answers (each with `Retry-After`).
    unavailable: u64,
    /// Anything else that was not a 200: (status, body).
    unexpected: Vec<(u16, String)>,
    /// The first 200 to a write sent after the kill.
    first_after_kill: Option<Instant>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_loses_no_acknowledged_write_and_answers_503_meanwhile() {
    let Some(pair) = Pair::launch() else {
        return;
    };
    let lost = failover(&pair, true).await;
    assert_eq!(lost, 0, "synchronous replication lost acknowledged writes");
}

/// With asynchronous replication the same failover may lose the last writes acknowledged
/// before the kill (those the standby had not received); everything else holds: no 500,
/// the chain verifies, the servers write again. How many were lost is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asynchronous_replication_may_lose_the_last_writes_and_nothing_else() {
    let Some(pair) = Pair::launch() else {
        return;
    };
    let lost = failover(&pair, false).await;
    eprintln!("failover (asynchronous): {lost} of {WRITERS} writers' last acknowledged write lost");
}

/// Writers under load on three instances, the primary killed and the standby promoted;
/// returns how many writers' last acknowledged write the new primary lacks.
async fn failover(pair: &Pair, synchronous: bool) -> usize {
    let primary = pair.url(true, "postgres");
    let wanted = if synchronous {
        pair.make_synchronous().await;
        "sync"
    } else {
        "async"
    };
    // The standby is attached (and synchronous when asked) before anything is written.
    let mut attached = false;
    for _ in 0..200 {
        let rows = sql(
            &primary,
            "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'",
        )
        .await;
        if rows.first().map(|r| r.get::<_, String>(0)).as_deref() == Some(wanted) {
            attached = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(attached, "the standby never became {wanted}");
    sql(&primary, "CREATE DATABASE failover_store").await;
    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/failover_store?target_session_attrs=read-write",
        pair.primary_port, pair.standby_port
    );
    // The third instance caches reads (LISTEN/NOTIFY): its cache must recover too.
    let mut bases = Vec::new();
    for n in 0..3 {
        bases.push(instance(&url, n == 2).await);
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // A token made before the failover, used after it.
    let made = http
        .post(format!("{}/api/tokens", bases[0]))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "before-failover", "scopes": ["default/prod:read,list"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 200);
    let survivor = made.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // A dynamic login whose lease is made before the failover and ended after it; its
    // database is the same pair, reached through the same multi-host URL.
    let vault = |method: reqwest::Method, path: &str, body: Option<serde_json::Value>| {
        let mut request = http
            .request(method, format!("{}/v1/{path}", bases[0]))
            .header("X-Vault-Token", ADMIN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let configured = vault(
        reqwest::Method::POST,
        "database/config/pair",
        Some(json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": format!(
                "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write",
                pair.primary_port, pair.standby_port
            ),
            "username": "postgres", "password": "unused", "allowed_roles": "*",
        })),
    )
    .await
    .unwrap();
    assert_eq!(
        configured.status(),
        204,
        "{}",
        configured.text().await.unwrap_or_default()
    );
    let role = vault(
        reqwest::Method::POST,
        "database/roles/app",
        Some(json!({
            "db_name": "pair",
            "creation_statements": ["CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'"],
            "default_ttl": "1h", "max_ttl": "1h",
        })),
    )
    .await
    .unwrap();
    assert_eq!(role.status(), 204);
    let creds: serde_json::Value = vault(reqwest::Method::GET, "database/creds/app", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let lease_id = creds["lease_id"].as_str().unwrap().to_owned();
    let login = creds["data"]["username"].as_str().unwrap().to_owned();

    let seen = Arc::new(Mutex::new(Seen {
        acknowledged: vec![None; WRITERS],
        ..Seen::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let killed_at = Arc::new(Mutex::new(None::<Instant>));
    let sent = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (http, base) = (http.clone(), bases[writer % bases.len()].clone());
        let (seen, stop, killed_at, sent) =
            (seen.clone(), stop.clone(), killed_at.clone(), sent.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let started = Instant::now();
                let after_kill = killed_at.lock().unwrap().is_some_and(|k| started > k);
                sent.fetch_add(1, Ordering::Relaxed);
                let answer = http
                    .post(format!("{base}/api/secrets"))
                    .bearer_auth(ADMIN)
                    .json(&json!({"key": format!("W{writer}"), "env": "prod", "value": format!("w{writer}-n{n}")}))
                    .send()
                    .await;
                // (status, Retry-After present, body of an unexpected answer)
                let outcome = match answer {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let retry = response.headers().contains_key("retry-after");
                        let body = if matches!(status, 200 | 503) {
                            String::new()
                        } else {
                            response.text().await.unwrap_or_default()
                        };
                        (status, retry, body)
                    }
                    Err(error) => (0, false, error.to_string()),
                };
                {
                    let mut seen = seen.lock().unwrap();
                    match outcome {
                        (200, _, _) => {
                            seen.acknowledged[writer] = Some(n);
                            if after_kill && seen.first_after_kill.is_none() {
                                seen.first_after_kill = Some(Instant::now());
                            }
                        }
                        (503, true, _) => seen.unavailable += 1,
                        (status, _, body) => seen.unexpected.push((status, body)),
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = seen.lock().unwrap().acknowledged.clone();
    assert!(
        before.iter().all(Option::is_some),
        "every writer wrote before the kill"
    );

    pair.kill_primary();
    let kill = Instant::now();
    *killed_at.lock().unwrap() = Some(kill);
    // A second with no primary at all, then the operator promotes the standby.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let promote = Instant::now();
    pair.promote_standby();
    let promoted = promote.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().first_after_kill.is_none() {
        if Instant::now() > deadline {
            let seen = seen.lock().unwrap();
            panic!(
                "no write succeeded within 30 s of the promotion: {} answered 503, others: {:?}",
                seen.unavailable,
                seen.unexpected.iter().take(3).collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let seen = Arc::try_unwrap(seen).ok().unwrap().into_inner().unwrap();
    let first = seen.first_after_kill.unwrap();
    eprintln!(
        "failover ({}): {} writes sent, {} answered 503 while there was no primary, {} other failures; \
         first successful write {} ms after the kill ({} ms after the promotion started; promotion took {} ms)",
        wanted,
        sent.load(Ordering::Relaxed),
        seen.unavailable,
        seen.unexpected.len(),
        first.duration_since(kill).as_millis(),
        first.duration_since(promote).as_millis(),
        promoted.as_millis(),
    );
    assert!(
        seen.unexpected.is_empty(),
        "answers other than 200 and 503: {:?}",
        seen.unexpected
    );
    assert!(seen.unavailable > 0, "the outage was never seen");

    // Every acknowledged write is on the new primary: each writer's secret holds its last
    // acknowledged value or a later one (a write that answered 503 may have committed).
    // Asynchronously, the writes acknowledged just before the kill may be missing: they are
    // counted. Every instance answers the same.
    let mut missing = 0;
    for (writer, acknowledged) in seen.acknowledged.iter().enumerate() {
        let last = acknowledged.unwrap();
        let mut values = std::collections::BTreeSet::new();
        for base in &bases {
            let read: serde_json::Value = http
                .get(format!("{base}/api/secrets/W{writer}?env=prod"))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let value = read["value"].as_str().unwrap();
            let n: u64 = value
                .strip_prefix(&format!("w{writer}-n"))
                .unwrap()
                .parse()
                .unwrap();
            values.insert(n);
            assert!(
                n >= last || !synchronous,
                "writer {writer}: acknowledged n{last}, the new primary has {value}"
            );
        }
        assert_eq!(values.len(), 1, "the instances disagree: {values:?}");
        if values.first().is_some_and(|n| *n < last) {
            missing += 1;
        }
    }
    // The caching instance is ready again: its LISTEN connection found the new primary.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ready = http
            .get(format!("{}/api/ready", bases[2]))
            .send()
            .await
            .unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the read cache never reconnected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The chain verifies on the new primary, and each instance writes and reads again.
    let report: serde_json::Value = http
        .get(format!("{}/api/audit/verify", bases[2]))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["intact"], true, "{report}");
    for base in &bases {
        let wrote = http
            .post(format!("{base}/api/secrets"))
            .bearer_auth(ADMIN)
            .json(&json!({"key": "AFTER", "env": "prod", "value": base}))
            .send()
            .await
            .unwrap();
        assert_eq!(wrote.status(), 200);
        let read = http
            .get(format!("{base}/api/secrets/AFTER?env=prod"))
            .bearer_auth(&survivor)
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), 200, "the token made before the failover");
        assert_eq!(
            read.json::<serde_json::Value>().await.unwrap()["value"],
            base.as_str()
        );
    }
    let standby = pair.url(false, "failover_store");
    let in_recovery = sql(&standby, "SELECT pg_is_in_recovery()").await;
    assert!(
        !in_recovery[0].get::<_, bool>(0),
        "the standby was promoted"
    );
    // The lease made before the failover is known after it, and ending it drops the
    // login on the new primary.
    let roles = |name: String| {
        let url = pair.url(false, "postgres");
        async move {
            let rows = sql(
                &url,
                &format!("SELECT count(*) FROM pg_roles WHERE rolname = '{name}'"),
            )
            .await;
            rows[0].get::<_, i64>(0)
        }
    };
    assert_eq!(
        roles(login.clone()).await,
        1,
        "the login is on the new primary"
    );
    let looked = vault(
        reqwest::Method::PUT,
        "sys/leases/lookup",
        Some(json!({"lease_id": lease_id})),
    )
    .await
    .unwrap();
    assert_eq!(looked.status(), 200, "the lease survived the failover");
    let revoked = vault(
        reqwest::Method::PUT,
        "sys/leases/revoke",
        Some(json!({"lease_id": lease_id})),
    )
    .await
    .unwrap();
    assert_eq!(revoked.status(), 204);
    let deadline = Instant::now() + Duration::from_secs(15);
    while roles(login.clone()).await != 0 {
        assert!(
            Instant::now() < deadline,
            "the login outlived its revoked lease"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    missing
}
