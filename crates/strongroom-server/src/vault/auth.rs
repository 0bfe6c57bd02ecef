//! `auth/token/…`: the calling token's own lookup, renewal and revocation. Auth methods
//! (`auth/jwt`, `auth/kubernetes`, `auth/approle`) arrive as modules beside this one,
//! each with its own `routes()`.

use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::{extract::State, Json, Router};
use serde_json::json;
use strongroom_store::tokens::Principal;

use super::{envelope, unsupported, VaultCaller, VaultError, VaultResult};
use crate::AppState;

/// `/v1/auth/token/lookup-self` (GET, POST), `renew-self` and `revoke-self` (POST, PUT).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/auth/token/lookup-self",
            get(lookup_self).post(lookup_self).fallback(unsupported),
        )
        .route(
            "/auth/token/renew-self",
            post(renew_self).put(renew_self).fallback(unsupported),
        )
        .route(
            "/auth/token/revoke-self",
            post(revoke_self).put(revoke_self).fallback(unsupported),
        )
}

/// The caller's scopes as Vault policies (`root` for a superuser).
fn policies(caller: &Principal) -> Vec<String> {
    if caller.superuser {
        vec!["root".into()]
    } else {
        caller.scopes.iter().map(ToString::to_string).collect()
    }
}

/// `auth/token/lookup-self`.
async fn lookup_self(VaultCaller(caller): VaultCaller) -> Response {
    envelope(json!({
        "accessor": "",
        "creation_time": 0,
        "creation_ttl": 0,
        "display_name": format!("token-{}", caller.name),
        "entity_id": "",
        "expire_time": null,
        "explicit_max_ttl": 0,
        // Never the token itself: the caller has it, a log of this answer must not.
        "id": "",
        "meta": {"strongroom_token": caller.name},
        "num_uses": 0,
        "orphan": true,
        "path": "auth/token/create",
        "policies": policies(&caller),
        "renewable": false,
        "ttl": 0,
        "type": "service",
    }))
}

/// `auth/token/renew-self`: nothing to renew (tokens do not expire yet).
async fn renew_self(VaultCaller(caller): VaultCaller) -> Response {
    let policies = policies(&caller);
    Json(json!({
        "request_id": "",
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": null,
        "wrap_info": null,
        "warnings": ["Strongroom tokens do not expire; nothing to renew"],
        "auth": {
            "client_token": "",
            "accessor": "",
            "policies": policies,
            "token_policies": policies,
            "metadata": null,
            "lease_duration": 0,
            "renewable": false,
            "entity_id": "",
            "token_type": "service",
            "orphan": true,
        },
    }))
    .into_response()
}

/// `auth/token/revoke-self`: 204.
async fn revoke_self(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
) -> VaultResult {
    if caller.name == "admin" && caller.superuser {
        return Err(VaultError::bad_request(
            "the bootstrap admin token is STRONGROOM_ADMIN_TOKEN; unset it to revoke it",
        ));
    }
    state
        .tokens
        .with_actor(&caller.actor())
        .revoke(&caller.name)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
