//! `GET database/creds/{role}`: a login made at once under a lease. The lease is recorded
//! first (`pending`, with everything its revocation needs, sealed), then the login is made
//! in one transaction, then the lease is activated (`lease_issue` event). A failure of the
//! statements leaves no login and ends the lease; a crash before activation leaves a
//! pending lease that the sweeper revokes (dropping the login if it was made).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use axum::Json;
use serde_json::{json, Value};
use strongroom_crypto::secrecy::ExposeSecret as _;
use strongroom_store::backend::LeaseRow;
use strongroom_store::tokens::Capability;
use strongroom_store::{Action, Timestamp};

use super::super::{VaultCaller, VaultError, VaultResult};
use super::{leases, pg};
use crate::AppState;

/// Vault's default lease ttl and the system maximum (768 h).
const SYSTEM_MAX: Duration = Duration::from_secs(768 * 3600);

/// A role's `default_ttl` and `max_ttl`.
pub(super) fn ttls(role: &Value) -> VaultResult<(Option<Duration>, Option<Duration>)> {
    Ok((
        super::super::auth::duration(role, "default_ttl")?,
        super::super::auth::duration(role, "max_ttl")?,
    ))
}

/// The ttl a new lease gets, and the latest it may be renewed to (ms from now).
fn lease_times(role: &Value) -> VaultResult<(i64, i64)> {
    let (ttl, max) = ttls(role)?;
    let max = max.unwrap_or(SYSTEM_MAX).min(SYSTEM_MAX);
    let ttl = ttl.unwrap_or(SYSTEM_MAX).min(max);
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    Ok((ms(ttl), ms(max)))
}

/// A random lease id suffix.
fn lease_suffix() -> VaultResult<String> {
    let mut bytes = [0u8; 12];
    getrandom::getrandom(&mut bytes)
        .map_err(|_| VaultError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?;
    Ok(hex::encode(bytes))
}

/// `GET database/creds/{role}`.
pub(super) async fn issue(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(role_name): Path<String>,
) -> VaultResult {
    if !caller.may_key(Capability::Read, "database", "creds", &role_name) {
        return Err(VaultError::permission_denied());
    }
    let door = super::super::secrets(&state)?
        .lease_door()
        .with_actor(&caller.actor());
    let role = door
        .setting(&super::setting("roles", &role_name))
        .await?
        .ok_or_else(|| VaultError::bad_request(format!("unknown role: {role_name}")))?;
    let db_name = role["db_name"].as_str().unwrap_or_default().to_owned();
    let config = door
        .setting(&super::setting("config", &db_name))
        .await?
        .ok_or_else(|| VaultError::bad_request(format!("unknown database {db_name:?}")))?;
    let allowed = super::super::auth::string_list(config.get("allowed_roles"));
    if !allowed.iter().any(|r| r == "*" || *r == role_name) {
        return Err(VaultError::bad_request(format!(
            "{role_name:?} is not an allowed role of database {db_name:?}"
        )));
    }
    let connection = pg::Connection::from_value(&config)
        .ok_or_else(|| VaultError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?;
    let (ttl_ms, max_ms) = lease_times(&role)?;
    let now = Timestamp::now().unix_ms();
    let (mut expires, mut max_expires) = (now.saturating_add(ttl_ms), now.saturating_add(max_ms));
    // A lease never outlives the token that asked for it.
    if let Some(token) = state.tokens.lookup_self(&caller).await? {
        if let Some(end) = token.expires {
            expires = expires.min(end.unix_ms());
        }
        if let Some(end) = token.expires.into_iter().chain(token.max_expires).max() {
            max_expires = max_expires.min(end.unix_ms());
        }
    }
    let ttl_ms = expires - now;
    let login = pg::new_name(&caller.name, &role_name, now / 1000).map_err(db_error)?;
    let password = pg::new_password().map_err(db_error)?;
    let id = format!("database/creds/{role_name}/{}", lease_suffix()?);
    let record = leases::Record {
        role: role_name.clone(),
        db_name,
        connection: connection.to_value(),
        login: login.clone(),
        revocation_statements: pg::statements(role.get("revocation_statements")),
        renew_statements: pg::statements(role.get("renew_statements")),
        issued_ms: now,
        expires_ms: expires,
        max_expires_ms: max_expires,
        ttl_ms,
        owner: caller
            .id
            .as_deref()
            .map(strongroom_store::tokens::accessor_of),
    };
    // Recorded first: whatever happens next, the sweeper knows this login may exist.
    let pending = LeaseRow {
        id: id.clone(),
        issued: Timestamp(now),
        expires: Timestamp(expires),
        state: "pending".into(),
        attempts: 0,
        next_attempt: Timestamp(now.saturating_add(leases::PENDING_GRACE_MS)),
        claimed_until: Timestamp(0),
        last_error: None,
        sealed: door.seal(&id, &record.to_bytes())?,
    };
    door.record(pending.clone()).await?;
    let creation = pg::statements(role.get("creation_statements"));
    if let Err(failure) = pg::create_login(&connection, &creation, &login, &password, expires).await
    {
        // Nothing was made (one transaction): the lease ends here.
        let ended = LeaseRow {
            state: "revoked".into(),
            last_error: Some(failure.0.clone()),
            ..pending.clone()
        };
        let _ = door.update(pending, ended, None).await;
        return Err(VaultError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the role's creation statements failed: {}", failure.0),
        ));
    }
    let active = LeaseRow {
        state: "active".into(),
        next_attempt: Timestamp(expires),
        ..pending.clone()
    };
    door.update(pending, active, Some(Action::LeaseIssue))
        .await?;
    if let Some(metrics) = &state.metrics {
        metrics.lease_event("issued");
    }
    Ok(answer(&id, ttl_ms, &login, password.expose_secret()))
}

/// Vault's answer: the lease and the login.
fn answer(id: &str, ttl_ms: i64, username: &str, password: &str) -> Response {
    Json(json!({
        "request_id": "",
        "lease_id": id,
        "lease_duration": ttl_ms / 1000,
        "renewable": true,
        "data": {"username": username, "password": password},
        "wrap_info": null,
        "warnings": null,
        "auth": null,
    }))
    .into_response()
}

/// A database failure as a 500 that names the SQLSTATE only.
fn db_error(failure: pg::DbFailure) -> VaultError {
    VaultError::new(StatusCode::INTERNAL_SERVER_ERROR, failure.0)
}
