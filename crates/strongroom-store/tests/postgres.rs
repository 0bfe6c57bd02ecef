//! The behaviour suite on PostgreSQL, against a real server.
//!
//! `cargo xtask ci` starts a throw-away server and sets `STRONGROOM_TEST_POSTGRES_URL`
//! (a superuser URL); each test gets a fresh database. Without that variable these tests
//! fail, unless `STRONGROOM_SKIP_POSTGRES=1` is set explicitly.

// Tests: a panic is the failure report; harness makers are async for every backend.
#![allow(clippy::unwrap_used, clippy::unused_async)]
#![cfg(feature = "postgres")]

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use strongroom_store::backend::postgres::PostgresBackend;
use strongroom_store::backend::Backend;
use strongroom_store::SecretId;

struct PostgresHarness {
    url: String,
    client: tokio_postgres::Client,
}

async fn postgres() -> Option<PostgresHarness> {
    let url = common::fresh_postgres_database().await?;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    Some(PostgresHarness { url, client })
}

const CURRENT_VALUE: &str = "FROM strongroom.strongroom_secret_versions v JOIN strongroom.strongroom_secrets s ON s.sid = v.sid AND s.version = v.version
     WHERE s.namespace = $1 AND s.env = $2 AND s.key = $3";

#[async_trait]
impl common::Harness for PostgresHarness {
    async fn backend(&self) -> Arc<dyn Backend> {
        Arc::new(
            PostgresBackend::connect(&self.url, 4, "strongroom")
                .await
                .unwrap(),
        )
    }
    async fn overwrite_value(&self, id: &SecretId, bytes: Vec<u8>) {
        // Make sure the schema exists before touching it directly.
        drop(self.backend().await);
        let n = self
            .client
            .execute(
                &format!("UPDATE strongroom.strongroom_secret_versions SET value = $4 WHERE vid = (SELECT v.vid {CURRENT_VALUE})"),
                &[&id.namespace, &id.env, &id.key, &bytes],
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    async fn tamper_audit(&self, tamper: common::AuditTamper) {
        let table = "strongroom.strongroom_audit_events";
        let columns = "time, actor, action, namespace, env, key, version, kek_version, link";
        self.client
            .batch_execute(&format!("ALTER TABLE {table} DISABLE TRIGGER USER"))
            .await
            .unwrap();
        match tamper {
            common::AuditTamper::SetActor(id, actor) => {
                self.client
                    .execute(
                        &format!("UPDATE {table} SET actor = $2 WHERE id = $1"),
                        &[&id, &actor],
                    )
                    .await
                    .unwrap();
            }
            common::AuditTamper::Delete(id) => {
                self.client
                    .execute(&format!("DELETE FROM {table} WHERE id = $1"), &[&id])
                    .await
                    .unwrap();
            }
            common::AuditTamper::Swap(a, b) => {
                self.client
                    .batch_execute(&format!(
                        "CREATE TEMP TABLE swap AS SELECT * FROM {table} WHERE id IN ({a}, {b});
                         UPDATE {table} SET ({columns}) = (SELECT {columns} FROM swap WHERE id = {b}) WHERE id = {a};
                         UPDATE {table} SET ({columns}) = (SELECT {columns} FROM swap WHERE id = {a}) WHERE id = {b};
                         DROP TABLE swap;"
                    ))
                    .await
                    .unwrap();
            }
        }
        self.client
            .batch_execute(&format!("ALTER TABLE {table} ENABLE TRIGGER USER"))
            .await
            .unwrap();
    }
    async fn stored_value(&self, id: &SecretId) -> Vec<u8> {
        self.client
            .query_one(
                &format!("SELECT v.value {CURRENT_VALUE}"),
                &[&id.namespace, &id.env, &id.key],
            )
            .await
            .unwrap()
            .get(0)
    }
}

/// Runs a suite function when a server is configured.
macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(harness) = postgres().await {
                    common::$name(&harness).await;
                }
            }
        )*
    };
}

on_postgres!(
    set_then_get,
    fallback_default_chain,
    configurable_chain,
    isolation_off_uses_default_env,
    overwrite_keeps_omitted_attributes,
    get_or_default_and_has,
    update_meta_leaves_value,
    delete_removes_everything,
    list_is_masked_paginated_and_filtered,
    history_versions_and_rollback,
    verify_without_decrypting,
    audit_records_every_change_without_values,
    distinct_read_errors,
    limits_reject_and_write_nothing,
    wrong_key_is_caught_at_open_and_at_write,
    rotation_rewraps_everything,
    rotation_resumes_from_its_cursor,
    rotation_never_loses_a_concurrent_write,
    cleanup_expired_and_old_events,
    namespaces_are_separate,
    set_many_is_all_or_nothing,
    audit_chain_detects_tampering
);

#[tokio::test]
async fn two_processes_opening_a_fresh_database_at_once_migrate_it_once() {
    let Some(url) = common::fresh_postgres_database().await else {
        return;
    };
    let opens: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                PostgresBackend::connect(&url, 1, "strongroom")
                    .await
                    .map(drop)
            })
        })
        .collect();
    for open in opens {
        open.await.unwrap().unwrap();
    }
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT version FROM strongroom.strongroom_schema_version",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
}

#[tokio::test]
async fn audit_events_are_append_only_in_the_database() {
    let Some(harness) = postgres().await else {
        return;
    };
    let store = common::open(&harness).await;
    common::set(&store, "global", "K", "v").await;
    assert!(harness
        .client
        .execute(
            "UPDATE strongroom.strongroom_audit_events SET actor = 'x'",
            &[]
        )
        .await
        .is_err());
    assert!(harness
        .client
        .execute("DELETE FROM strongroom.strongroom_audit_events", &[])
        .await
        .is_err());
}

#[tokio::test]
async fn independent_stores_live_side_by_side_in_schemas() {
    let Some(url) = common::fresh_postgres_database().await else {
        return;
    };
    let open = |schema: &'static str, byte: u8| {
        let url = url.clone();
        async move {
            let backend = Arc::new(PostgresBackend::connect(&url, 2, schema).await.unwrap());
            strongroom_store::Store::open(
                backend,
                strongroom_store::KeySource::Ring(common::ring(&[(1, byte)])),
                strongroom_store::StoreConfig::default(),
            )
            .await
        }
    };
    let team_a = open("team_a", 0xa1).await.unwrap();
    let team_b = open("team_b", 0xb2).await.unwrap();
    common::set(&team_a, "global", "K", "a-value").await;
    common::set(&team_b, "global", "K", "b-value").await;
    assert_eq!(common::value(&team_a, "global", "K").await, "a-value");
    assert_eq!(common::value(&team_b, "global", "K").await, "b-value");
    assert_eq!(
        team_a
            .list(strongroom_store::ListQuery::default())
            .await
            .unwrap()
            .total,
        1
    );
    // Each schema knows its own key: B's key is refused in A's schema.
    assert!(matches!(
        open("team_a", 0xb2).await,
        Err(strongroom_store::StoreError::WrongKey { .. })
    ));
    assert!(PostgresBackend::connect(&url, 1, "Bad-Schema")
        .await
        .is_err());
}
