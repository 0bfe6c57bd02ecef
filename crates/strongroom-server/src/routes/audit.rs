//! Audit events and rotation status (superuser tokens).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use strongroom_store::AuditQuery;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{secrets_of, superuser, ApiResult};
use crate::extract::{ApiQuery, Caller};
use crate::{ApiError, AppState};

/// `/api/audit` and `/api/rotation`.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(audit))
        .routes(routes!(verify))
        .routes(routes!(rotation))
}

/// Audit query parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditParams {
    /// Only this namespace.
    namespace: Option<String>,
    /// Only this env.
    env: Option<String>,
    /// Only this key.
    key: Option<String>,
    /// Only this action (`create`, `update`, `delete`, `rollback`, `rotate`,
    /// `metadata_update`, `expired_cleanup`, `read`, `gateway_read`).
    action: Option<String>,
    /// Only this actor (`token:NAME`, `cli:USER`, `library`).
    actor: Option<String>,
    /// Only events at or after this instant (RFC 3339).
    since: Option<String>,
    /// Only events before this instant (RFC 3339).
    until: Option<String>,
    /// Events older than this id (the previous page's `next`).
    before: Option<i64>,
    /// Items per page, 1 to 1000 (default 100).
    #[serde(rename = "perPage")]
    #[param(minimum = 1, maximum = 1000)]
    per_page: Option<u32>,
}

/// One audit event; never a value.
#[derive(Serialize, ToSchema)]
pub(crate) struct Event {
    id: i64,
    /// RFC 3339.
    time: String,
    actor: String,
    action: String,
    namespace: String,
    env: String,
    key: String,
    version: Option<u32>,
    kek_version: Option<u32>,
}

/// `{"items": [...], "next": id|null}`, newest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditResponse {
    items: Vec<Event>,
    /// Pass as `before` for the next page; null on the last page.
    next: Option<i64>,
}

/// Audit events, newest first (superuser tokens only).
#[utoipa::path(get, path = "/api/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditResponse), (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn audit(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> ApiResult<Json<AuditResponse>> {
    superuser(&caller)?;
    let store = secrets_of(&state)?.superuser(&caller)?;
    let action = match params.action.as_deref() {
        Some(name) => Some(
            strongroom_store::Action::parse(name)
                .ok_or_else(|| ApiError::bad_request("unknown action"))?,
        ),
        None => None,
    };
    let per_page = params.per_page.unwrap_or(100);
    if !(1..=1000).contains(&per_page) {
        return Err(ApiError::bad_request("perPage must be 1 to 1000"));
    }
    let page = store
        .audit(AuditQuery {
            namespace: params.namespace,
            env: params.env,
            key: params.key,
            action,
            actor: params.actor,
            since_ms: instant("since", params.since.as_deref())?,
            until_ms: instant("until", params.until.as_deref())?,
            limit: Some(per_page as usize),
            before_id: params.before,
        })
        .await?;
    let next = page.next_cursor.and_then(|c| c.parse().ok());
    let items = page
        .items
        .into_iter()
        .map(|e| Event {
            id: e.id,
            time: e.time.to_string(),
            actor: e.actor,
            action: e.action.as_str().to_owned(),
            namespace: e.namespace,
            env: e.env,
            key: e.key,
            version: e.version,
            kek_version: e.kek_version,
        })
        .collect();
    Ok(Json(AuditResponse { items, next }))
}

/// An RFC 3339 instant as Unix milliseconds; 400 naming the parameter otherwise.
fn instant(name: &str, text: Option<&str>) -> ApiResult<Option<i64>> {
    let Some(text) = text else { return Ok(None) };
    let time = humantime::parse_rfc3339_weak(text.trim()).map_err(|_| {
        ApiError::bad_request(format!(
            "{name}: expected an RFC 3339 time such as 2026-12-01T00:00:00Z"
        ))
    })?;
    let ms = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Ok(Some(ms))
}

/// The audit chain's verification, as `strongroom audit verify` reports it.
#[derive(Serialize, ToSchema)]
pub(crate) struct Verification {
    /// True when the chain and every version's tie to its write event check out.
    intact: bool,
    /// Events checked.
    events: u64,
    /// Stored versions whose tie to their write event was checked.
    versions: u64,
    /// The sequence number of the first problem; null when intact.
    broken_at: Option<i64>,
    /// Why it is broken; null when intact.
    reason: Option<String>,
}

/// Verifies the tamper-evident audit chain now (superuser tokens only).
#[utoipa::path(get, path = "/api/audit/verify", tag = "audit",
    responses((status = 200, body = Verification), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn verify(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<Verification>> {
    superuser(&caller)?;
    let report = secrets_of(&state)?
        .superuser(&caller)?
        .verify_audit()
        .await?;
    let (broken_at, reason) = report
        .broken_at
        .map_or((None, None), |(seq, why)| (Some(seq), Some(why)));
    Ok(Json(Verification {
        intact: broken_at.is_none(),
        events: report.events,
        versions: report.versions,
        broken_at,
        reason,
    }))
}

/// Values on one KEK version.
#[derive(Serialize, ToSchema)]
pub(crate) struct KeyVersionCount {
    kek_version: u32,
    /// Current values under this version.
    current: u64,
    /// Older kept versions under this version.
    history: u64,
}

/// Rotation status.
#[derive(Serialize, ToSchema)]
pub(crate) struct RotationResponse {
    /// The active KEK version.
    active_version: u32,
    by_version: Vec<KeyVersionCount>,
    /// Whether an interrupted rotation left a cursor to resume from.
    pending: bool,
}

/// Values per KEK version (superuser tokens only).
#[utoipa::path(get, path = "/api/rotation", tag = "audit",
    responses((status = 200, body = RotationResponse), (status = 401, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn rotation(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<RotationResponse>> {
    superuser(&caller)?;
    let status = secrets_of(&state)?
        .superuser(&caller)?
        .rotation_status()
        .await?;
    Ok(Json(RotationResponse {
        active_version: status.active_version,
        by_version: status
            .by_version
            .into_iter()
            .map(|usage| KeyVersionCount {
                kek_version: usage.kek_version,
                current: usage.current,
                history: usage.history,
            })
            .collect(),
        pending: status.pending_cursor.is_some(),
    }))
}
