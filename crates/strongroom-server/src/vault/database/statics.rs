//! Static roles: an existing login whose password Strongroom rotates, on a period and on
//! demand (`database/static-roles/{name}`, `database/static-creds/{name}`,
//! `database/rotate-role/{name}`).
//!
//! The schedule is a row of the leases table (`static/{name}`): the sweeper claims it
//! when it is due, so one instance rotates, whichever of several sees it first. A rotation
//! writes the new password as `pending` beside the current one, sets it in PostgreSQL,
//! then makes it current. A reader that finds a pending password while the rotation's
//! claim is live waits for it to finish (at most 15 s), so a read never returns a password
//! that has just stopped working; one that finds a pending password whose rotator died
//! tries it against the database and keeps whichever password works.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse as _;
use axum::routing::{any, get, post};
use axum::Router;
use serde_json::{json, Value};
use strongroom_crypto::secrecy::ExposeSecret as _;
use strongroom_store::backend::LeaseRow;
use strongroom_store::tokens::Capability;
use strongroom_store::{Action, Timestamp};

use super::super::{envelope, time, unsupported, VaultBody, VaultCaller, VaultError, VaultResult};
use super::pg;
use crate::authz::LeaseDoor;
use crate::AppState;

/// How long a rotation holds its claim.
const CLAIM_MS: i64 = 30_000;

/// The shortest rotation period.
const MIN_PERIOD_S: u64 = 5;

/// The routes of static roles.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/database/static-roles/{name}",
            get(read_role)
                .post(write_role)
                .put(write_role)
                .delete(delete_role)
                .fallback(unsupported),
        )
        .route("/database/static-roles", any(list_roles))
        .route(
            "/database/static-creds/{name}",
            get(static_creds).fallback(unsupported),
        )
        .route(
            "/database/rotate-role/{name}",
            post(rotate_role).put(rotate_role).fallback(unsupported),
        )
}

/// The schedule row of the static role `name`.
fn schedule_id(name: &str) -> String {
    format!("static/{name}")
}

/// Whether a lease row is a static role's schedule (the sweeper rotates it).
pub(super) fn is_schedule(row: &LeaseRow) -> bool {
    row.id.starts_with("static/")
}

/// A role's rotation period in seconds.
fn period(role: &Value) -> VaultResult<u64> {
    let period = super::super::auth::duration(role, "rotation_period")?
        .ok_or_else(|| VaultError::bad_request("rotation_period is required"))?;
    if period.as_secs() < MIN_PERIOD_S {
        return Err(VaultError::bad_request(format!(
            "rotation_period must be at least {MIN_PERIOD_S}s"
        )));
    }
    Ok(period.as_secs())
}

/// `POST database/static-roles/{name}` `{db_name, username, rotation_period,
/// rotation_statements, skip_import_rotation}`: the login's password is rotated at once
/// (unless `skip_import_rotation`), then every `rotation_period`.
async fn write_role(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(name): Path<String>,
    body: VaultBody,
) -> VaultResult {
    super::check_name(&name)?;
    let Value::Object(update) = body.json()? else {
        return Err(VaultError::bad_request("expected a JSON object"));
    };
    let mut role = super::merged(
        &state,
        &caller,
        &super::setting("static-roles", &name),
        &update,
        &[
            "db_name",
            "username",
            "rotation_period",
            "rotation_statements",
        ],
    )
    .await?;
    let statements = pg::statements(role.get("rotation_statements"));
    role.insert("rotation_statements".into(), json!(statements));
    let role = Value::Object(role);
    let db_name = role["db_name"].as_str().unwrap_or_default().to_owned();
    let username = role["username"].as_str().unwrap_or_default().to_owned();
    if db_name.is_empty() || username.is_empty() {
        return Err(VaultError::bad_request("db_name and username are required"));
    }
    let period = period(&role)?;
    let config = super::stored(&state, &caller, &super::setting("config", &db_name))
        .await?
        .ok_or_else(|| VaultError::bad_request(format!("unknown database {db_name:?}")))?;
    let allowed = super::super::auth::string_list(config.get("allowed_roles"));
    if !allowed.iter().any(|r| r == "*" || *r == name) {
        return Err(VaultError::bad_request(format!(
            "{name:?} is not an allowed role of database {db_name:?}"
        )));
    }
    super::save(&state, &caller, "static-roles", &name, Some(role)).await?;
    let door = super::super::secrets(&state)?
        .lease_door()
        .with_actor(&caller.actor());
    let skip = update
        .get("skip_import_rotation")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let now = Timestamp::now().unix_ms();
    let id = schedule_id(&name);
    let next = if skip {
        now.saturating_add(
            i64::try_from(period)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000),
        )
    } else {
        now
    };
    match door.row(&id).await? {
        Some(row) if row.state != "revoked" => {}
        existing => {
            let fresh = LeaseRow {
                id: id.clone(),
                issued: Timestamp(now),
                expires: Timestamp(next),
                state: "active".into(),
                attempts: 0,
                next_attempt: Timestamp(next),
                claimed_until: Timestamp(0),
                last_error: None,
                sealed: door.seal(&id, json!({ "static_role": name }).to_string().as_bytes())?,
            };
            match existing {
                Some(old) => {
                    door.update(old, fresh, None).await?;
                }
                None => {
                    door.record(fresh).await?;
                }
            }
        }
    }
    if !skip {
        rotate_now(&state, &door, &name).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET database/static-roles/{name}`: the role, and when its password last changed.
async fn read_role(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(name): Path<String>,
) -> VaultResult {
    let mut role = super::stored(&state, &caller, &super::setting("static-roles", &name))
        .await?
        .ok_or_else(VaultError::not_found)?;
    let door = super::super::secrets(&state)?.lease_door();
    if let Some(creds) = door.setting(&creds_setting(&name)).await? {
        role["last_vault_rotation"] = creds["last_rotation_ms"]
            .as_i64()
            .map_or(Value::Null, |ms| Value::String(time(Timestamp(ms))));
    }
    Ok(envelope(role))
}

/// `DELETE database/static-roles/{name}`: the schedule ends; the login keeps its last
/// password (Strongroom forgets it).
async fn delete_role(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(name): Path<String>,
) -> VaultResult {
    super::stored(&state, &caller, &super::setting("static-roles", &name)).await?;
    super::save(&state, &caller, "static-roles", &name, None).await?;
    let door = super::super::secrets(&state)?
        .lease_door()
        .with_actor(&caller.actor());
    door.set_static_creds(&name, None).await?;
    if let Some(row) = door.row(&schedule_id(&name)).await? {
        let ended = LeaseRow {
            state: "revoked".into(),
            ..row.clone()
        };
        door.update(row, ended, None).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `LIST database/static-roles`.
async fn list_roles(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
) -> VaultResult {
    super::list(&state, &caller, "static-roles").await
}

fn creds_setting(name: &str) -> String {
    format!("database/static-creds/{name}")
}

/// `GET database/static-creds/{name}` (`read` on `database/static-creds/{name}`): the
/// current password, `last_vault_rotation`, `rotation_period` and `ttl` (seconds to the
/// next rotation).
async fn static_creds(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(name): Path<String>,
) -> VaultResult {
    if !caller.may_key(Capability::Read, "database", "static-creds", &name) {
        return Err(VaultError::permission_denied());
    }
    let door = super::super::secrets(&state)?
        .lease_door()
        .with_actor(&caller.actor());
    let role = door
        .setting(&super::setting("static-roles", &name))
        .await?
        .ok_or_else(|| VaultError::bad_request(format!("unknown static role: {name}")))?;
    let period = period(&role)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let creds = loop {
        let creds = door.setting(&creds_setting(&name)).await?.ok_or_else(|| {
            VaultError::bad_request("the role's password has not been rotated yet")
        })?;
        if creds.get("pending").is_none() {
            break creds;
        }
        let claimed = door
            .row(&schedule_id(&name))
            .await?
            .is_some_and(|row| row.claimed_until > Timestamp::now());
        if claimed && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        recover(&door, &role, &name, &creds).await?;
    };
    let last = creds["last_rotation_ms"].as_i64().unwrap_or(0);
    let next = last.saturating_add(
        i64::try_from(period)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000),
    );
    Ok(envelope(json!({
        "username": role["username"],
        "password": creds["password"],
        "last_vault_rotation": time(Timestamp(last)),
        "rotation_period": period,
        "ttl": (next - Timestamp::now().unix_ms()).max(0) / 1000,
    })))
}

/// A pending password left by a rotation that did not finish: kept if the database takes
/// it, dropped otherwise.
async fn recover(door: &LeaseDoor, role: &Value, name: &str, creds: &Value) -> VaultResult<()> {
    let config = door
        .setting(&super::setting(
            "config",
            role["db_name"].as_str().unwrap_or_default(),
        ))
        .await?
        .unwrap_or_else(|| json!({}));
    let mut as_login = config.clone();
    as_login["username"] = role["username"].clone();
    as_login["password"] = creds["pending"].clone();
    let works = match pg::Connection::from_value(&as_login) {
        Some(connection) => connection.connect().await.is_ok(),
        None => false,
    };
    let settled = if works {
        json!({"password": creds["pending"], "last_rotation_ms": Timestamp::now().unix_ms()})
    } else {
        json!({"password": creds["password"], "last_rotation_ms": creds["last_rotation_ms"]})
    };
    door.set_static_creds(name, Some(&settled)).await?;
    Ok(())
}

/// `POST database/rotate-role/{name}` (a superuser's): rotate now.
async fn rotate_role(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(name): Path<String>,
) -> VaultResult {
    let door = super::leases::superuser_door(&state, &caller)?;
    rotate_now(&state, &door, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Claims the role's schedule and rotates; a rotation already in flight is a 400.
async fn rotate_now(state: &AppState, door: &LeaseDoor, name: &str) -> VaultResult<()> {
    let row = door
        .row(&schedule_id(name))
        .await?
        .filter(|row| row.state != "revoked")
        .ok_or_else(|| VaultError::bad_request(format!("unknown static role: {name}")))?;
    let now = Timestamp::now();
    if row.claimed_until > now {
        return Err(VaultError::bad_request(
            "a rotation of this role is in flight",
        ));
    }
    let mine = LeaseRow {
        claimed_until: Timestamp(now.unix_ms().saturating_add(CLAIM_MS)),
        ..row.clone()
    };
    if !door.update(row, mine.clone(), None).await? {
        return Err(VaultError::bad_request(
            "a rotation of this role is in flight",
        ));
    }
    rotate_claimed(state, door, mine).await
}

/// Rotates the password of the static role whose schedule row `row` this instance has
/// claimed, and releases the claim with the next rotation's time (or a retry in 10 s).
pub(super) async fn rotate_claimed(
    state: &AppState,
    door: &LeaseDoor,
    row: LeaseRow,
) -> VaultResult<()> {
    let name = row.id.trim_start_matches("static/").to_owned();
    let Some(role) = door.setting(&super::setting("static-roles", &name)).await? else {
        let ended = LeaseRow {
            state: "revoked".into(),
            claimed_until: Timestamp(0),
            ..row.clone()
        };
        door.update(row, ended, None).await?;
        return Ok(());
    };
    let period_ms = i64::try_from(period(&role)?)
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    let config = door
        .setting(&super::setting(
            "config",
            role["db_name"].as_str().unwrap_or_default(),
        ))
        .await?;
    let connection = config.as_ref().and_then(pg::Connection::from_value);
    let old = door.setting(&creds_setting(&name)).await?;
    let password = pg::new_password().map_err(|e| VaultError::bad_request(e.0))?;
    let outcome = match connection {
        None => Err(pg::DbFailure("the role's connection is gone".into())),
        Some(connection) => {
            let pending = json!({
                "password": old.as_ref().map_or(Value::Null, |c| c["password"].clone()),
                "last_rotation_ms": old.as_ref().map_or(Value::Null, |c| c["last_rotation_ms"].clone()),
                "pending": password.expose_secret(),
            });
            door.set_static_creds(&name, Some(&pending)).await?;
            let statements = pg::statements(role.get("rotation_statements"));
            let username = role["username"].as_str().unwrap_or_default();
            pg::set_password(&connection, &statements, username, &password).await
        }
    };
    let now = Timestamp::now().unix_ms();
    let (next, error) = match outcome {
        Ok(()) => {
            let current = json!({"password": password.expose_secret(), "last_rotation_ms": now});
            door.set_static_creds(&name, Some(&current)).await?;
            if let Some(metrics) = &state.metrics {
                metrics.lease_event("rotated");
            }
            (now.saturating_add(period_ms), None)
        }
        Err(failure) => {
            // The database did not take it: the current password stays.
            if let Some(old) = &old {
                door.set_static_creds(&name, Some(old)).await?;
            }
            (now.saturating_add(10_000), Some(failure.0))
        }
    };
    let released = LeaseRow {
        expires: Timestamp(next),
        next_attempt: Timestamp(next),
        claimed_until: Timestamp(0),
        attempts: if error.is_some() {
            row.attempts.saturating_add(1)
        } else {
            0
        },
        last_error: error.clone(),
        ..row.clone()
    };
    door.update(
        row,
        released,
        error.is_none().then_some(Action::PasswordRotate),
    )
    .await?;
    match error {
        None => Ok(()),
        Some(why) => Err(VaultError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the password was not rotated: {why}"),
        )),
    }
}
