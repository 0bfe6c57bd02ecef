//! The backend conformance suite: one set of behaviour tests, run against any
//! [`Backend`] through a [`Store`]. A backend's test file provides a [`Harness`] and invokes
//! [`backend_conformance_suite!`](crate::backend_conformance_suite) once; the macro holds
//! the one list of tests every backend runs.
//!
//! ```ignore
//! crate::backend_conformance_suite!(my_harness); // async fn my_harness() -> Option<MyHarness>
//! ```

#![allow(clippy::unwrap_used, clippy::missing_panics_doc, missing_docs)] // tests: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::ExposeSecret as _;
use strongroom_crypto::{secrecy, Key, KeyRing};

use crate::backend::Backend;
use crate::{
    Action, AuditQuery, Expiry, KeySource, ListQuery, MetaUpdate, RotateOptions, Secret, SecretId,
    SetRequest, State, Store, StoreConfig, StoreError,
};

mod audit;
mod batch;
mod leases;
mod lifecycle;
mod logins;
mod point_reads;
mod secrets;
mod tokens;
mod transfer;

pub use audit::*;
pub use batch::*;
pub use leases::*;
pub use lifecycle::*;
pub use logins::*;
pub use point_reads::*;
pub use secrets::*;
pub use tokens::*;
pub use transfer::*;

/// What a backend's tests provide.
#[async_trait]
pub trait Harness: Send + Sync {
    /// A new connection to this harness's one database (each call: a fresh handle, the
    /// same data, as a second process would see it).
    async fn backend(&self) -> Arc<dyn Backend>;
    /// Overwrites the stored bytes of the current value of `id` with `bytes`.
    async fn overwrite_value(&self, id: &SecretId, bytes: Vec<u8>);
    /// The stored bytes of the current value of `id`.
    async fn stored_value(&self, id: &SecretId) -> Vec<u8>;
    /// Tampers with the audit table directly, as someone with database access could
    /// (triggers disabled first).
    async fn tamper_audit(&self, tamper: AuditTamper);
    /// The key ring of `keys` (version, key byte) as this harness's key custody hands it
    /// over; built directly by default (a harness may pass it through an HSM).
    fn ring(&self, keys: &[(u32, u8)]) -> KeyRing {
        ring(keys)
    }
}

/// A direct change to audit rows.
#[derive(Debug, Clone, Copy)]
pub enum AuditTamper {
    /// Set the actor of event `id`.
    SetActor(i64, &'static str),
    /// Swap every column but the id of two events.
    Swap(i64, i64),
    /// Delete event `id`.
    Delete(i64),
    /// The reported attack: delete the retention anchor and set every link to NULL.
    StripLinks,
    /// Delete every event from `id` on (the tail).
    DeleteFrom(i64),
    /// Delete every event and the anchor.
    DeleteAll,
    /// Point every version's tie at sequence number 0 ("removed by retention").
    RetargetTies,
    /// Store an anchor at sequence `seq` with a made-up link and tag.
    ForgeAnchor(i64),
}

pub fn key(byte: u8) -> Key {
    Key::from_bytes(&[byte; 32])
}

pub fn ring(keys: &[(u32, u8)]) -> KeyRing {
    let keys: Vec<(u32, Key)> = keys.iter().map(|(v, b)| (*v, key(*b))).collect();
    KeyRing::new(keys.iter().map(|(v, k)| (*v, k))).unwrap()
}

pub async fn open_with(
    h: &dyn Harness,
    keys: &[(u32, u8)],
    config: StoreConfig,
) -> Result<Store, StoreError> {
    Store::open(h.backend().await, KeySource::Ring(h.ring(keys)), config).await
}

pub async fn open(h: &dyn Harness) -> Store {
    open_with(h, &[(1, 0x11)], StoreConfig::default())
        .await
        .unwrap()
        .with_actor("tester")
}

pub fn id(env: &str, key: &str) -> SecretId {
    SecretId::new("default", env, key)
}

pub async fn set(store: &Store, env: &str, key: &str, value: &str) {
    store
        .set(&id(env, key), SetRequest::value(value))
        .await
        .unwrap();
}

pub async fn value(store: &Store, env: &str, key: &str) -> String {
    let secret = store
        .get(&id(env, key))
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    String::from_utf8(secret.value.expose_secret().to_vec()).unwrap()
}

async fn audit_count(store: &Store) -> usize {
    store
        .audit(AuditQuery {
            limit: Some(1000),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .items
        .len()
}

/// Reads `id` and commits the read (an audited read, as a caller sees it).
pub async fn read(store: &Store, id: &SecretId) -> Secret {
    store.get(id).await.unwrap().commit().await.unwrap()
}

pub(crate) fn broken_reason(v: &crate::AuditVerification) -> String {
    v.broken_at.clone().map(|(_, why)| why).unwrap_or_default()
}

/// Expands to one `#[tokio::test]` per behaviour of the conformance suite, each with a
/// fresh harness from `$make` (an async fn returning `Option<impl Harness>`; `None` skips,
/// e.g. when no server is configured). The one list of the suite's tests is here.
#[macro_export]
macro_rules! backend_conformance_suite {
    ($make:path) => {
        $crate::backend_conformance_suite!(@tests $make;
            set_then_get, fallback_default_chain, configurable_chain, isolation_off_uses_default_env,
            overwrite_keeps_omitted_attributes, get_or_default_and_has, update_meta_leaves_value,
            delete_removes_everything, list_is_masked_paginated_and_filtered, history_versions_and_rollback,
            verify_without_decrypting, audit_records_every_change_without_values, distinct_read_errors,
            limits_reject_and_write_nothing, wrong_key_is_caught_at_open_and_at_write, rotation_rewraps_everything,
            rotation_resumes_from_its_cursor, rotation_never_loses_a_concurrent_write, cleanup_expired_and_old_events,
            namespaces_are_separate, set_many_is_all_or_nothing, audit_chain_detects_tampering,
            audit_links_can_not_be_stripped, audit_truncation_is_detected, audit_anchor_and_ties_are_keyed,
            retention_cuts_by_sequence, values_are_bound_to_their_version, reads_are_audited_only_when_committed,
            audit_chain_survives_key_retirement, copy_reseals_under_the_target_and_audits_each_side,
            move_keeps_history_rewraps_and_verifies, deploy_locks_pin_values_not_rows,
            check_and_set_writes_only_at_the_expected_version, versions_soft_delete_undelete_and_destroy,
            per_secret_max_versions_and_cas_required, concurrent_reads_are_group_committed,
            concurrent_writes_are_group_committed_and_fail_alone,
            one_secret_written_many_times_at_once_keeps_every_tie,
            savepoints_keep_or_undo_exactly_their_own_statements,
            a_key_recorded_in_an_undone_write_is_recorded_again,
            concurrent_point_reads_each_get_their_own_answer,
            concurrent_token_lookups_each_get_their_own_row,
            concurrent_groups_never_deadlock_on_secret_rows,
            reads_and_writes_share_commits_and_fail_alone,
            token_rows_from_before_tags_are_tagged_once_and_forged_ones_refused,
            token_names_are_unique_ignoring_case_and_survive_rotation,
            keys_with_empty_or_dot_segments_are_refused_and_old_ones_renamed,
            listed_states_are_the_states_reads_act_on, info_is_one_identitys_listed_attributes,
            tokens_expire_and_run_out_of_uses,
            child_tokens_stay_within_their_parent_and_are_revoked_with_it,
            a_token_identity_edited_without_the_key_is_refused,
            sealed_settings_written_without_the_key_are_refused,
            live_token_caps_count_in_the_creating_transaction,
            a_login_refused_its_token_spends_nothing,
            leases_are_sealed_claimed_once_and_updated_by_compare_and_swap
        );
    };
    (@tests $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(harness) = $make().await {
                    $crate::testing::$name(&harness).await;
                }
            }
        )*
    };
}
