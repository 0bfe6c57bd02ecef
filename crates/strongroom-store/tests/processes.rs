//! Real processes on one SQLite file: a writer killed with SIGKILL mid-burst loses no
//! acknowledged write and leaves no half-written row; a writer and a rotation running at
//! once lose nothing.
//!
//! The child processes are this test binary itself, re-run with `--exact child_writer`
//! and `STRONGROOM_TEST_CHILD_DB` set; without that variable `child_writer` does nothing.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Command, Stdio};

use secrecy::ExposeSecret as _;
use strongroom_crypto::secrecy;
use strongroom_store::{
    AuditQuery, KeySource, ListQuery, RotateOptions, SecretId, SetRequest, Store, StoreConfig,
};

const CHILD_DB: &str = "STRONGROOM_TEST_CHILD_DB";
const CHILD_WRITES: &str = "STRONGROOM_TEST_CHILD_WRITES";
const KEYS: usize = 40;

async fn open(url: &str, keys: &[(u32, u8)]) -> Store {
    let backend = strongroom_store::open_backend(url).await.unwrap();
    Store::open(
        backend,
        KeySource::Ring(common::ring(keys)),
        StoreConfig::default(),
    )
    .await
    .unwrap()
}

fn sqlite_url(dir: &tempfile::TempDir, name: &str) -> String {
    format!("sqlite://{}", dir.path().join(name).display())
}

fn key_name(i: usize) -> String {
    format!("K{}", i % KEYS)
}

/// The child: writes `K{i % 40} = v{i}` and prints `ack i` after each commit.
#[tokio::test]
async fn child_writer() {
    let Ok(path) = std::env::var(CHILD_DB) else {
        return;
    };
    let writes: usize = std::env::var(CHILD_WRITES)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX);
    let store = open(path.as_ref(), &[(2, 0x22), (1, 0x11)])
        .await
        .with_actor("child");
    let mut stdout = std::io::stdout();
    for i in 0..writes {
        let id = SecretId::new("default", "global", key_name(i));
        store
            .set(&id, SetRequest::value(format!("v{i}")))
            .await
            .unwrap();
        writeln!(stdout, "ack {i}").unwrap();
        stdout.flush().unwrap();
    }
}

fn spawn_child(url: &str, writes: Option<usize>) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(n) = writes {
        command.env(CHILD_WRITES, n.to_string());
    }
    command.spawn().unwrap()
}

/// The highest acknowledged write per key, from the child's `ack` lines.
fn acknowledged(lines: &[String]) -> HashMap<String, usize> {
    let mut last = HashMap::new();
    for line in lines {
        if let Some(i) = line
            .strip_prefix("ack ")
            .and_then(|n| n.trim().parse::<usize>().ok())
        {
            last.insert(key_name(i), i);
        }
    }
    last
}

/// Every secret opens, its value is at least as new as its last acknowledged write, and
/// its version count equals its create/update events (value, version and event landed
/// together or not at all).
async fn check_consistent(store: &Store, acked: &HashMap<String, usize>) {
    for (key, last) in acked {
        let secret = store
            .get(&SecretId::new("default", "global", key))
            .await
            .unwrap()
            .commit()
            .await
            .unwrap();
        let value: usize = std::str::from_utf8(secret.value.expose_secret()).unwrap()[1..]
            .parse()
            .unwrap();
        assert!(
            value >= *last,
            "{key}: acknowledged v{last} but found v{value}"
        );
        assert_eq!(value % KEYS, last % KEYS);
    }
    let listed = store
        .list(ListQuery {
            limit: Some(1000),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    for info in listed.items {
        let id = SecretId::new(&info.namespace, &info.env, &info.key);
        for version in store.history(&id).await.unwrap() {
            // Every kept version opens (no plaintext is handed out: not committed).
            drop(store.get_version(&id, version.version).await.unwrap());
        }
        let mut writes: u64 = 0;
        writes += store
            .audit_all(AuditQuery {
                key: Some(info.key.clone()),
                ..AuditQuery::default()
            })
            .await
            .unwrap()
            .iter()
            .filter(|e| {
                matches!(
                    e.action,
                    strongroom_store::Action::Create | strongroom_store::Action::Update
                )
            })
            .count() as u64;
        assert_eq!(
            writes,
            u64::from(info.version),
            "{}: versions and audit events disagree",
            info.key
        );
    }
}

#[tokio::test]
async fn sigkill_mid_burst_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    sigkill_mid_burst(&sqlite_url(&dir, "crash.db")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_and_a_rotation_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    writer_and_rotation(&sqlite_url(&dir, "race.db")).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn sigkill_mid_burst_loses_no_acknowledged_write_on_postgres() {
    if let Some(url) = common::fresh_postgres_database().await {
        sigkill_mid_burst(&url).await;
    }
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_and_a_rotation_at_once_lose_nothing_on_postgres() {
    if let Some(url) = common::fresh_postgres_database().await {
        writer_and_rotation(&url).await;
    }
}

async fn sigkill_mid_burst(url: &str) {
    drop(open(url, &[(2, 0x22), (1, 0x11)]).await);
    let mut child = spawn_child(url, None);
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    let mut line = String::new();
    while lines
        .iter()
        .filter(|l: &&String| l.starts_with("ack "))
        .count()
        < 300
    {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "child ended early"
        );
        lines.push(line.clone());
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Acks written before the kill are acknowledged too.
    for rest in reader.lines() {
        lines.push(rest.unwrap());
    }
    let acked = acknowledged(&lines);
    assert_eq!(acked.len(), KEYS);
    let store = open(url, &[(2, 0x22), (1, 0x11)]).await;
    check_consistent(&store, &acked).await;
}

async fn writer_and_rotation(url: &str) {
    // Values under key 1, then a writer (active key 2) and rotations run together.
    let old = open(url, &[(1, 0x11)]).await;
    for i in 0..KEYS * 5 {
        old.set(
            &SecretId::new("default", "global", key_name(i)),
            SetRequest::value(format!("v{i}")),
        )
        .await
        .unwrap();
    }
    let writes = 400;
    // The rotation is under way (its cursor mid-table) when the writer starts. Without this
    // head start, SQLite's busy handler can starve the rotator until the writer's new
    // versions have pushed every key-1 version out of the history, leaving nothing to race.
    let rotator = open(url, &[(2, 0x22), (1, 0x11)]).await;
    let mut rotated = rotator
        .rotate(
            RotateOptions {
                batch_size: 7,
                max_batches: Some(1),
                ..RotateOptions::default()
            },
            |_| {},
        )
        .await
        .unwrap()
        .rotated;
    let mut child = spawn_child(url, Some(writes));
    while child.try_wait().unwrap().is_none() {
        rotated += rotator
            .rotate(
                RotateOptions {
                    batch_size: 7,
                    ..RotateOptions::default()
                },
                |_| {},
            )
            .await
            .unwrap()
            .rotated;
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the writer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let acked = acknowledged(&lines);
    assert_eq!(acked.values().max(), Some(&(writes - 1)));
    rotated += rotator
        .rotate(RotateOptions::default(), |_| {})
        .await
        .unwrap()
        .rotated;
    assert!(rotated > 0);
    // The old key can go: everything is on version 2, and every last write is current.
    let new_only = open(url, &[(2, 0x22)]).await;
    for (key, last) in &acked {
        let secret = new_only
            .get(&SecretId::new("default", "global", key))
            .await
            .unwrap()
            .commit()
            .await
            .unwrap();
        assert_eq!(
            secret.value.expose_secret(),
            format!("v{last}").as_bytes(),
            "{key}"
        );
    }
    check_consistent(&new_only, &acked).await;
}
