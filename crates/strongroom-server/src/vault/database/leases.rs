//! Leases: `sys/leases/lookup|renew|revoke|revoke-prefix` and `LIST sys/leases/lookup/…`
//! (Vault's shapes), and the sweeper that ends them on time.
//!
//! Every server instance runs a sweeper: once a second it claims the leases whose work is
//! due (a claim is a compare-and-swap, so each lease goes to one instance) and drops
//! their logins. A revocation that fails (the database unreachable) keeps the lease, with
//! the attempt counted and the next one backed off (1 s doubling to 5 min), for ever:
//! nothing is forgotten. States: `pending` (recorded, the login maybe not made yet),
//! `active`, `revoking` (asked to end while the database was unreachable), `revoked`. A
//! lease's record is sealed; a row whose record does not open is never acted on.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse as _;
use axum::routing::{any, post};
use axum::Router;
use serde_json::{json, Value};
use strongroom_crypto::secrecy::ExposeSecret as _;
use strongroom_store::backend::LeaseRow;
use strongroom_store::tokens::Principal;
use strongroom_store::{Action, Timestamp};

use super::super::{envelope, time, unsupported, VaultBody, VaultCaller, VaultError, VaultResult};
use super::pg;
use crate::authz::LeaseDoor;
use crate::AppState;

/// How long a pending lease waits for its login before the sweeper revokes it.
pub(super) const PENDING_GRACE_MS: i64 = 60_000;

/// How long an instance holds a claimed lease before another may take it.
const CLAIM_MS: i64 = 30_000;

/// The longest wait between revocation attempts.
const MAX_BACKOFF_MS: i64 = 300_000;

/// What a lease's sealed record holds: everything its revocation and renewal need, so
/// deleting the role or the connection strands nothing.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Record {
    pub(super) role: String,
    pub(super) db_name: String,
    /// The connection as it was at issue (used when the connection is gone).
    pub(super) connection: Value,
    /// The login's name.
    pub(super) login: String,
    pub(super) revocation_statements: Vec<String>,
    pub(super) renew_statements: Vec<String>,
    pub(super) issued_ms: i64,
    pub(super) expires_ms: i64,
    pub(super) max_expires_ms: i64,
    pub(super) ttl_ms: i64,
    /// The accessor of the token that made it (`None`: the bootstrap admin token).
    pub(super) owner: Option<String>,
}

impl Record {
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn of(door: &LeaseDoor, row: &LeaseRow) -> VaultResult<Self> {
        let opened = door.open(row)?;
        serde_json::from_slice(opened.expose_secret())
            .map_err(|_| VaultError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
    }
}

/// The routes of `sys/leases`.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/sys/leases/lookup",
            post(lookup).put(lookup).fallback(unsupported),
        )
        .route(
            "/sys/leases/renew",
            post(renew).put(renew).fallback(unsupported),
        )
        .route(
            "/sys/leases/revoke",
            post(revoke).put(revoke).fallback(unsupported),
        )
        .route("/sys/leases/revoke/{*lease}", any(revoke_path))
        .route("/sys/leases/revoke-prefix/{*prefix}", any(revoke_prefix))
        .route("/sys/leases/revoke-force/{*prefix}", any(revoke_force))
        .route("/sys/leases/lookup/{*prefix}", any(list))
}

/// The lease a request names, if the caller may act on it (a superuser, or the token that
/// made it); 400 as Vault answers an unknown or foreign lease.
async fn owned(
    state: &AppState,
    caller: &Principal,
    id: &str,
) -> VaultResult<(LeaseDoor, LeaseRow, Record)> {
    let door = super::super::secrets(state)?
        .lease_door()
        .with_actor(&caller.actor());
    let invalid = || VaultError::bad_request("invalid lease");
    let row = door.row(id).await?.ok_or_else(invalid)?;
    let record = Record::of(&door, &row)?;
    let mine = caller.superuser
        || caller
            .id
            .as_deref()
            .map(strongroom_store::tokens::accessor_of)
            == record.owner
            && record.owner.is_some();
    if !mine || row.state == "revoked" {
        return Err(invalid());
    }
    Ok((door, row, record))
}

fn lease_id(body: &Value) -> VaultResult<String> {
    body.get("lease_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| VaultError::bad_request("missing lease_id"))
}

/// `PUT sys/leases/lookup` `{lease_id}`.
async fn lookup(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    body: VaultBody,
) -> VaultResult {
    let id = lease_id(&body.json()?)?;
    let (_, row, record) = owned(&state, &caller, &id).await?;
    let now = Timestamp::now().unix_ms();
    Ok(envelope(json!({
        "id": row.id,
        "issue_time": time(Timestamp(record.issued_ms)),
        "expire_time": time(Timestamp(record.expires_ms)),
        "last_renewal": null,
        "renewable": record.expires_ms < record.max_expires_ms,
        "ttl": (record.expires_ms - now).max(0) / 1000,
    })))
}

/// `PUT sys/leases/renew` `{lease_id, increment}`: never past the role's `max_ttl` (a
/// shorter `lease_duration` then); the login's `VALID UNTIL` moves with it.
async fn renew(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    body: VaultBody,
) -> VaultResult {
    let body = body.json()?;
    let id = lease_id(&body)?;
    let increment = super::super::auth::duration(&body, "increment")?;
    let (door, row, mut record) = owned(&state, &caller, &id).await?;
    if row.state != "active" {
        return Err(VaultError::bad_request(
            "lease is not renewable: it is being revoked",
        ));
    }
    let now = Timestamp::now().unix_ms();
    let wanted = increment.map_or(record.ttl_ms, |d| {
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    });
    let expires = now.saturating_add(wanted).min(record.max_expires_ms);
    if expires <= now {
        return Err(VaultError::bad_request(
            "lease is not renewable: past its max_ttl",
        ));
    }
    let connection = connection_for(&door, &record).await;
    pg::renew_login(
        &connection,
        &record.renew_statements,
        &record.login,
        expires,
    )
    .await
    .map_err(|e| VaultError::new(StatusCode::SERVICE_UNAVAILABLE, e.0))?;
    record.expires_ms = expires;
    let renewed = LeaseRow {
        expires: Timestamp(expires),
        next_attempt: Timestamp(expires),
        sealed: door.seal(&id, &record.to_bytes())?,
        ..row.clone()
    };
    if !door.update(row, renewed, Some(Action::LeaseRenew)).await? {
        return Err(VaultError::bad_request(
            "the lease changed meanwhile; try again",
        ));
    }
    Ok(axum::Json(json!({
        "request_id": "",
        "lease_id": id,
        "renewable": expires < record.max_expires_ms,
        "lease_duration": (expires - now) / 1000,
        "data": null,
        "wrap_info": null,
        "warnings": null,
        "auth": null,
    }))
    .into_response())
}

/// `PUT sys/leases/revoke` `{lease_id}`: 204 once the login is dropped, or once the
/// revocation is scheduled when the database can not be reached (the sweeper retries).
async fn revoke(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    body: VaultBody,
) -> VaultResult {
    let id = lease_id(&body.json()?)?;
    let (door, row, record) = owned(&state, &caller, &id).await?;
    end(&state, &door, row, &record).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT sys/leases/revoke/{lease_id}`.
async fn revoke_path(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(id): Path<String>,
) -> VaultResult {
    let (door, row, record) = owned(&state, &caller, &id).await?;
    end(&state, &door, row, &record).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A prefix as a path: `database/creds/bulk` covers `database/creds/bulk/…`, never
/// `database/creds/bulk2/…`.
fn as_path(prefix: &str) -> String {
    format!("{}/", prefix.trim_end_matches('/'))
}

/// `PUT sys/leases/revoke-prefix/{prefix}` (a superuser's).
async fn revoke_prefix(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(prefix): Path<String>,
) -> VaultResult {
    let door = superuser_door(&state, &caller)?;
    for row in door.rows(&as_path(&prefix)).await? {
        if row.state == "revoked" {
            continue;
        }
        let Ok(record) = Record::of(&door, &row) else {
            continue;
        };
        end(&state, &door, row, &record).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT sys/leases/revoke-force/{prefix}` (a superuser's): every lease under the prefix
/// ends now, its login dropped if the database answers and forgotten otherwise (for a
/// login dropped by hand, or a database gone for good); each is a `lease_revoke` event.
async fn revoke_force(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(prefix): Path<String>,
) -> VaultResult {
    let door = superuser_door(&state, &caller)?;
    for row in door.rows(&as_path(&prefix)).await? {
        if row.state == "revoked" {
            continue;
        }
        if let Ok(record) = Record::of(&door, &row) {
            let connection = connection_for(&door, &record).await;
            let _ = pg::drop_login(&connection, &record.revocation_statements, &record.login).await;
        }
        let forgotten = LeaseRow {
            state: "revoked".into(),
            claimed_until: Timestamp(0),
            last_error: Some("revoked by force".into()),
            ..row.clone()
        };
        door.update(row, forgotten, Some(Action::LeaseRevoke))
            .await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `LIST sys/leases/lookup/{prefix}` (a superuser's): the next path segments under it.
async fn list(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(prefix): Path<String>,
) -> VaultResult {
    let door = superuser_door(&state, &caller)?;
    let prefix = as_path(&prefix);
    let mut keys: Vec<String> = Vec::new();
    for row in door.rows(&prefix).await? {
        if row.state == "revoked" {
            continue;
        }
        let rest = &row.id[prefix.len()..];
        let key = match rest.split_once('/') {
            Some((segment, _)) => format!("{segment}/"),
            None => rest.to_owned(),
        };
        if keys.last() != Some(&key) {
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err(VaultError::not_found());
    }
    Ok(envelope(json!({ "keys": keys })))
}

/// The connection a lease's login is dropped or renewed through: the current one while it
/// exists (its password may have been rotated), else the one kept at issue.
async fn connection_for(door: &LeaseDoor, record: &Record) -> pg::Connection {
    let current = door
        .setting(&super::setting("config", &record.db_name))
        .await
        .ok()
        .flatten()
        .and_then(|config| pg::Connection::from_value(&config));
    current
        .or_else(|| pg::Connection::from_value(&record.connection))
        .unwrap_or_else(|| pg::Connection {
            url_template: String::new(),
            username: String::new(),
            password: String::new().into(),
            max_idle: 0,
        })
}

/// Ends a lease now: drops its login and marks it revoked (`lease_revoke`); when the
/// database can not be reached, the lease stays (`revoking`, due at once) for the
/// sweeper.
async fn end(
    state: &AppState,
    door: &LeaseDoor,
    row: LeaseRow,
    record: &Record,
) -> VaultResult<()> {
    if let Some((row, failure)) = drop_and_mark(state, door, row, record).await? {
        // Asked to end: remembered, and the sweeper drops it as soon as it can.
        let later = LeaseRow {
            state: "revoking".into(),
            next_attempt: Timestamp::now(),
            claimed_until: Timestamp(0),
            last_error: Some(failure.0),
            ..row.clone()
        };
        door.update(row, later, None).await?;
    }
    Ok(())
}

/// Drops a lease's login and marks the lease revoked (`lease_revoke`); when the database
/// does not take it, the row and why, for the caller to schedule.
async fn drop_and_mark(
    state: &AppState,
    door: &LeaseDoor,
    row: LeaseRow,
    record: &Record,
) -> strongroom_store::Result<Option<(LeaseRow, pg::DbFailure)>> {
    let connection = connection_for(door, record).await;
    if let Err(failure) =
        pg::drop_login(&connection, &record.revocation_statements, &record.login).await
    {
        return Ok(Some((row, failure)));
    }
    let revoked = LeaseRow {
        state: "revoked".into(),
        claimed_until: Timestamp(0),
        last_error: None,
        ..row.clone()
    };
    door.update(row, revoked, Some(Action::LeaseRevoke)).await?;
    if let Some(metrics) = &state.metrics {
        metrics.lease_event("revoked");
    }
    Ok(None)
}

/// The lease door for a superuser's request (`revoke-prefix`, `revoke-force`, listing).
pub(super) fn superuser_door(state: &AppState, caller: &Principal) -> VaultResult<LeaseDoor> {
    if !caller.superuser {
        return Err(VaultError::permission_denied());
    }
    Ok(super::super::secrets(state)?
        .lease_door()
        .with_actor(&caller.actor()))
}

/// The sweeper's one pass: claims the due leases and ends or reschedules each. With none
/// due it only reads (a claim is a write that may touch any lease: on PostgreSQL a group
/// that runs alone).
pub(crate) async fn sweep(state: &AppState) -> strongroom_store::Result<usize> {
    let Some(secrets) = &state.store else {
        return Ok(0);
    };
    let door = secrets.lease_door().with_actor("lease-sweeper");
    let now = Timestamp::now();
    if !door.any_due(now).await? {
        return Ok(0);
    }
    let due = door.claim_due(now, CLAIM_MS, 100).await?;
    let count = due.len();
    for row in due {
        if super::statics::is_schedule(&row) {
            // A static role's rotation is due (its failure is kept on the row).
            let _ = super::statics::rotate_claimed(state, &door, row).await;
            continue;
        }
        let Ok(record) = Record::of(&door, &row) else {
            // Written without the key: never acted on; looked at again in an hour.
            tracing::warn!(lease = %row.id, "a lease row whose record does not open under the key");
            let later = LeaseRow {
                next_attempt: Timestamp(now.unix_ms().saturating_add(3_600_000)),
                claimed_until: Timestamp(0),
                ..row.clone()
            };
            door.update(row, later, None).await?;
            continue;
        };
        // `active` before its expiry was scheduled early (renewed, or an edited row);
        // `pending` past its grace and `revoking` are dropped whatever their expiry.
        if row.state == "active" && record.expires_ms > now.unix_ms() {
            // Scheduled early (renewed, or an edited row): back to its real expiry.
            let rescheduled = LeaseRow {
                next_attempt: Timestamp(record.expires_ms),
                claimed_until: Timestamp(0),
                ..row.clone()
            };
            door.update(row, rescheduled, None).await?;
            continue;
        }
        if let Some((row, failure)) = drop_and_mark(state, &door, row, &record).await? {
            let shift = row.attempts.min(20);
            let backoff = (1000_i64 << shift).min(MAX_BACKOFF_MS);
            tracing::warn!(lease = %row.id, attempts = row.attempts + 1, why = %failure.0, "a lease's login could not be dropped; retrying");
            let later = LeaseRow {
                attempts: row.attempts.saturating_add(1),
                next_attempt: Timestamp(now.unix_ms().saturating_add(backoff)),
                claimed_until: Timestamp(0),
                last_error: Some(failure.0),
                ..row.clone()
            };
            door.update(row, later, None).await?;
            if let Some(metrics) = &state.metrics {
                metrics.lease_event("revocation_failed");
            }
        }
    }
    Ok(count)
}

/// Live leases as `(active, pending, failing)` (for `/metrics`): `failing` are those whose
/// revocation has failed and is being retried.
pub(crate) async fn counts(state: &AppState) -> Option<(u64, u64, u64)> {
    let door = state.store.as_ref()?.lease_door();
    let rows = door.rows("").await.ok()?;
    let mut counts = (0, 0, 0);
    for row in rows
        .iter()
        .filter(|r| r.state != "revoked" && !super::statics::is_schedule(r))
    {
        if row.attempts > 0 {
            counts.2 += 1;
        } else if row.state == "pending" {
            counts.1 += 1;
        } else {
            counts.0 += 1;
        }
    }
    Some(counts)
}

/// Ends the live leases whose token has ended (revoked, expired, used up, or gone): a
/// lease ends with the token that made it.
pub(crate) async fn sweep_orphans(state: &AppState) -> strongroom_store::Result<usize> {
    let Some(secrets) = &state.store else {
        return Ok(0);
    };
    let door = secrets.lease_door().with_actor("lease-sweeper");
    let operator = Principal {
        id: None,
        name: "lease-sweeper:orphans".into(),
        superuser: true,
        scopes: Vec::new(),
    };
    let now = Timestamp::now();
    let mut ended = 0;
    for row in door.rows("database/").await? {
        if row.state != "active" {
            continue;
        }
        let Ok(record) = Record::of(&door, &row) else {
            continue;
        };
        let Some(owner) = &record.owner else {
            continue;
        };
        let live = state
            .tokens
            .lookup_accessor(owner, &operator)
            .await?
            .is_some_and(|t| {
                t.intact
                    && t.revoked.is_none()
                    && t.expires.is_none_or(|at| at > now)
                    && t.uses_left != Some(0)
            });
        if !live && end(state, &door, row, &record).await.is_ok() {
            ended += 1;
        }
    }
    Ok(ended)
}

/// Runs [`sweep`] once a second for as long as the server runs (a pass that found a full
/// batch goes on at once), and [`sweep_orphans`] every 10 s.
pub(crate) fn spawn_sweeper(state: AppState) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if state.store.is_none() {
        return;
    }
    runtime.spawn(async move {
        let mut orphans_checked = std::time::Instant::now();
        loop {
            if orphans_checked.elapsed() >= std::time::Duration::from_secs(10) {
                orphans_checked = std::time::Instant::now();
                if let Err(e) = sweep_orphans(&state).await {
                    tracing::warn!(error = %e, "the lease sweeper could not check the leases' tokens");
                }
            }
            match sweep(&state).await {
                Ok(100) => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "the lease sweeper could not read the leases"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
}
