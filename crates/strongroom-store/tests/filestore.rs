//! The encrypted file store: round trip, tamper detection on every line, wrong keys,
//! newer-wins merging.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::sync::Arc;

use strongroom_store::backend::sqlite::SqliteBackend;
use strongroom_store::filestore;
use strongroom_store::import::ImportAction;
use strongroom_store::{KeySource, Store, StoreConfig, StoreError};

async fn store(dir: &tempfile::TempDir, name: &str, key: u8) -> Store {
    let backend = Arc::new(SqliteBackend::open(dir.path().join(name)).unwrap());
    Store::open(
        backend,
        KeySource::Ring(common::ring(&[(1, key)])),
        StoreConfig::default(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn round_trip_tampering_and_wrong_keys() {
    let dir = tempfile::tempdir().unwrap();
    let source = store(&dir, "a.db", 0x11).await;
    common::set(&source, "global", "DATABASE_URL", "postgres://global").await;
    common::set(&source, "prod", "DATABASE_URL", "postgres://prod").await;
    common::set(&source, "prod", "API_KEY", "sk-file").await;
    let text = filestore::export(&source, None, None).await.unwrap().text;
    assert!(
        !text.contains("postgres://") && !text.contains("sk-file"),
        "values are sealed"
    );
    assert!(
        text.lines().any(|l| l.starts_with("prod API_KEY ")),
        "key and env in clear: {text}"
    );

    // Round trip into a fresh store with the same key.
    let target = store(&dir, "b.db", 0x11).await;
    let report = filestore::import(&target, &text, false).await.unwrap();
    assert_eq!(report.counts(), (3, 0, 0, 0));
    assert_eq!(common::value(&target, "prod", "API_KEY").await, "sk-file");
    assert_eq!(
        common::value(&target, "staging", "DATABASE_URL").await,
        "postgres://global"
    );

    // Any edit to any line, a removed line, or a reordering is detected; nothing is written.
    let lines: Vec<&str> = text.lines().collect();
    let fresh = store(&dir, "c.db", 0x11).await;
    for index in 1..lines.len() {
        let mut edited: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        let line = &mut edited[index];
        let at = line.len() - 3;
        let replacement = if &line[at..=at] == "A" { "B" } else { "A" };
        line.replace_range(at..=at, replacement);
        let tampered = edited.join("\n") + "\n";
        assert!(
            filestore::import(&fresh, &tampered, false).await.is_err(),
            "edit of line {index} went unnoticed"
        );
        let mut removed = lines.clone();
        removed.remove(index);
        assert!(
            filestore::import(&fresh, &(removed.join("\n") + "\n"), false)
                .await
                .is_err(),
            "removal of line {index}"
        );
    }
    let mut reordered = lines.clone();
    reordered.swap(2, 3);
    assert!(
        filestore::import(&fresh, &(reordered.join("\n") + "\n"), false)
            .await
            .is_err()
    );
    assert_eq!(
        fresh
            .list(strongroom_store::ListQuery::default())
            .await
            .unwrap()
            .total,
        0
    );

    // A file for another key is refused at its header.
    let other = store(&dir, "d.db", 0x99).await;
    assert!(matches!(
        filestore::import(&other, &text, false).await,
        Err(StoreError::WrongKey { .. })
    ));
}

#[tokio::test]
async fn merging_newer_wins_and_only_real_conflicts_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let source = store(&dir, "a.db", 0x11).await;
    common::set(&source, "prod", "DATABASE_URL", "postgres://prod").await;
    common::set(&source, "prod", "API_KEY", "sk-file").await;
    let text = filestore::export(&source, None, None).await.unwrap().text;
    let target = store(&dir, "b.db", 0x11).await;
    filestore::import(&target, &text, false).await.unwrap();

    // Newer wins. The user's own local edit since the export is not a conflict: the file
    // holds one of this store's older versions, so it is skipped, on every run.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    common::set(&source, "prod", "API_KEY", "sk-changed-in-store").await;
    for _ in 0..2 {
        let report = filestore::import(&source, &text, false).await.unwrap();
        let api = report.items.iter().find(|i| i.key == "API_KEY").unwrap();
        assert_eq!(api.action, ImportAction::SkipExisting);
    }
    assert_eq!(
        common::value(&source, "prod", "API_KEY").await,
        "sk-changed-in-store"
    );
    let newer = filestore::export(&source, None, Some("prod"))
        .await
        .unwrap()
        .text;
    let report = filestore::import(&target, &newer, true).await.unwrap();
    // API_KEY is newer in the file; DATABASE_URL is the same value (unchanged).
    assert_eq!(report.counts(), (0, 1, 1, 0), "dry run plan");
    assert_eq!(
        common::value(&target, "prod", "API_KEY").await,
        "sk-file",
        "dry run wrote nothing"
    );
    filestore::import(&target, &newer, false).await.unwrap();
    assert_eq!(
        common::value(&target, "prod", "API_KEY").await,
        "sk-changed-in-store"
    );

    // A real conflict: both sides changed the value since they last agreed, and the
    // store's change is the newer one. Kept, and reported.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    common::set(&source, "prod", "API_KEY", "sk-source-2").await;
    let theirs = filestore::export(&source, None, Some("prod"))
        .await
        .unwrap()
        .text;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    common::set(&target, "prod", "API_KEY", "sk-target-2").await;
    let report = filestore::import(&target, &theirs, false).await.unwrap();
    let api = report.items.iter().find(|i| i.key == "API_KEY").unwrap();
    assert!(matches!(&api.action, ImportAction::Fail(reason) if reason.contains("conflict")));
    assert_eq!(
        common::value(&target, "prod", "API_KEY").await,
        "sk-target-2"
    );
}
