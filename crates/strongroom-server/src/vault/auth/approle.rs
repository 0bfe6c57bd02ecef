//! The `approle` auth method: a machine logs in with a role id (which role) and a secret
//! id (a credential an operator or a trusted deployer hands it), and gets a token that
//! dies on its own. Vault's API: `auth/{path}/role/{name}`, `…/role-id`, `…/secret-id`,
//! `auth/{path}/login` `{role_id, secret_id}`.
//!
//! A secret id is 256 random bits, shown once; the database keeps only its SHA-256, as
//! the name of a sealed setting that holds its role, expiry, uses left and CIDR binding. A
//! login spends a use in one transaction with its `login` event, a compare-and-swap, so
//! two logins racing for a single-use secret id do not both get it. Every failure answers
//! the same "invalid role or secret ID".
//!
//! CIDR bindings (`secret_id_bound_cidrs`, a secret id's `cidr_list`) are checked against
//! the TCP peer: behind a proxy every request comes from the proxy, so bind the proxy's
//! addresses or do not bind (forwarded headers are not trusted). `token_bound_cidrs` binds
//! the token a login makes (checked at the login too, before the secret id is spent).

use std::net::IpAddr;

use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

use super::super::{VaultBody, VaultCaller, VaultError, VaultResult};
use super::token::duration;
use crate::AppState;

/// The setting of one secret id, named by its hash.
fn secret_id_setting(path: &str, hash: &str) -> String {
    format!("auth/{path}/secret-id/{hash}")
}

/// Where a method's secret ids would be listed (removed with the method).
pub(super) fn secret_ids_setting(path: &str) -> String {
    format!("auth/{path}/secret-ids")
}

/// Random hex of `n` bytes.
fn random_hex(n: usize) -> VaultResult<String> {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes).map_err(|_| {
        VaultError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal error",
        )
    })?;
    Ok(hex::encode(bytes))
}

/// A role id in UUID form.
fn new_role_id() -> VaultResult<String> {
    let hex = random_hex(16)?;
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// CIDR blocks from a list or a comma-separated string; an invalid one is an error.
pub(super) fn cidrs(value: Option<&Value>) -> VaultResult<Vec<ipnet::IpNet>> {
    let items: Vec<String> = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(text)) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(_) => return Err(VaultError::bad_request("expected a list of CIDR blocks")),
    };
    items
        .iter()
        .map(|text| {
            text.parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| VaultError::bad_request(format!("invalid CIDR block {text:?}")))
        })
        .collect()
}

/// An approle role as written (merged with the stored one): `token_policies` that parse
/// as scopes, `token_ttl` not over `token_max_ttl`, valid CIDR blocks; its `role_id` is
/// kept, or made.
pub(super) fn prepare_role(role: &mut Map<String, Value>) -> VaultResult<()> {
    let value = Value::Object(role.clone());
    let scopes = super::role_scopes(&value)?;
    if scopes.is_empty() {
        return Err(VaultError::bad_request(
            "a role needs token_policies (scopes)",
        ));
    }
    if let (Some(ttl), Some(max)) = (
        duration(&value, "token_ttl")?,
        duration(&value, "token_max_ttl")?,
    ) {
        if ttl > max {
            return Err(VaultError::bad_request(
                "token_ttl is longer than token_max_ttl",
            ));
        }
    }
    duration(&value, "secret_id_ttl")?;
    if role.get("bind_secret_id").and_then(Value::as_bool) == Some(false) {
        return Err(VaultError::bad_request(
            "bind_secret_id false is not supported: a login needs a secret id",
        ));
    }
    cidrs(role.get("token_bound_cidrs"))?;
    cidrs(role.get("secret_id_bound_cidrs"))?;
    if !role.get("role_id").is_some_and(Value::is_string) {
        role.insert("role_id".into(), Value::String(new_role_id()?));
    }
    Ok(())
}

/// The stored role `name` of the approle method at `path`.
async fn role_of(
    state: &AppState,
    caller: &strongroom_store::tokens::Principal,
    path: &str,
    name: &str,
) -> VaultResult<Value> {
    if super::method_at(state, path).await?.as_deref() != Some("approle") {
        return Err(VaultError::unsupported_path());
    }
    super::stored(state, caller, path)
        .await?
        .get("roles")
        .and_then(|r| r.get(name))
        .cloned()
        .ok_or_else(VaultError::not_found)
}

/// `GET auth/{path}/role/{name}/role-id`.
pub(super) async fn read_role_id(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path((path, name)): Path<(String, String)>,
) -> VaultResult {
    let role = role_of(&state, &caller, &path, &name).await?;
    Ok(super::data(
        json!({ "role_id": role.get("role_id").cloned().unwrap_or(Value::Null) }),
    ))
}

/// `POST auth/{path}/role/{name}/secret-id` (`cidr_list`, `ttl`, `num_uses` may narrow
/// the role's): the secret id, shown once, and its accessor.
pub(super) async fn new_secret_id(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path((path, name)): Path<(String, String)>,
    body: VaultBody,
) -> VaultResult {
    let body = body.json()?;
    let role = role_of(&state, &caller, &path, &name).await?;
    let ttl = duration(&body, "ttl")?.or(duration(&role, "secret_id_ttl")?);
    let num_uses = body
        .get("num_uses")
        .or_else(|| role.get("secret_id_num_uses"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let bound = match body.get("cidr_list") {
        Some(list) if !list.is_null() => cidrs(Some(list))?,
        _ => cidrs(role.get("secret_id_bound_cidrs"))?,
    };
    let secret_id = random_hex(32)?;
    let accessor = random_hex(12)?;
    let now = now_secs();
    let entry = json!({
        "role": name,
        "accessor": accessor,
        "expires": ttl.map(|t| now + t.as_secs()),
        "uses_left": (num_uses > 0).then_some(num_uses),
        "cidrs": bound.iter().map(ToString::to_string).collect::<Vec<_>>(),
    });
    let settings = super::super::secrets(&state)?
        .caller(&caller)
        .auth_settings()?;
    settings
        .set(&secret_id_setting(&path, &hash(&secret_id)), Some(&entry))
        .await?;
    Ok(super::data(json!({
        "secret_id": secret_id,
        "secret_id_accessor": accessor,
        "secret_id_ttl": ttl.map_or(0, |t| t.as_secs()),
        "secret_id_num_uses": num_uses,
    })))
}

fn hash(secret_id: &str) -> String {
    hex::encode(Sha256::digest(secret_id.as_bytes()))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Every login failure: one answer, naming nothing.
fn invalid() -> VaultError {
    VaultError::bad_request("invalid role or secret ID")
}

/// `POST auth/{path}/login` `{role_id, secret_id}` from `peer`.
pub(super) async fn login(
    state: &AppState,
    path: &str,
    body: &Value,
    peer: IpAddr,
) -> VaultResult<Response> {
    let field = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let (Some(role_id), Some(secret_id)) = (field("role_id"), field("secret_id")) else {
        return Err(invalid());
    };
    let secrets = super::super::secrets(state)?;
    let logins = secrets.logins();
    let all = logins
        .get(&super::setting(path))
        .await?
        .unwrap_or_else(|| json!({}));
    let Some((role_name, role)) = all
        .get("roles")
        .and_then(Value::as_object)
        .and_then(|roles| {
            roles
                .iter()
                .find(|(_, r)| r.get("role_id").and_then(Value::as_str) == Some(role_id))
        })
        .map(|(n, r)| (n.clone(), r.clone()))
    else {
        return Err(invalid());
    };
    let name = secret_id_setting(path, &hash(secret_id));
    let actor = format!("{path}:{role_name}");
    for _ in 0..3 {
        let Some(entry) = logins.get(&name).await? else {
            return Err(invalid());
        };
        if entry.get("role").and_then(Value::as_str) != Some(role_name.as_str()) {
            return Err(invalid());
        }
        if entry
            .get("expires")
            .and_then(Value::as_u64)
            .is_some_and(|at| at <= now_secs())
        {
            return Err(invalid());
        }
        let bound = cidrs(entry.get("cidrs")).map_err(|_| invalid())?;
        if !bound.is_empty() && !bound.iter().any(|net| net.contains(&peer)) {
            return Err(invalid());
        }
        if !super::peer_within(&role, peer).map_err(|_| invalid())? {
            return Err(invalid());
        }
        let next = match entry.get("uses_left").and_then(Value::as_u64) {
            None => Some(entry.clone()),
            Some(0 | 1) => None,
            Some(n) => {
                let mut fewer = entry.clone();
                fewer["uses_left"] = json!(n - 1);
                Some(fewer)
            }
        };
        // The secret ID's use is spent with the token's creation, or not at all (a
        // quota's refusal spends nothing).
        let spend = strongroom_store::CredentialSpend {
            setting: name.clone(),
            expected: entry.to_string().into_bytes().into(),
            replacement: next.map(|next| next.to_string().into_bytes().into()),
        };
        let extras = super::LoginExtras {
            metadata: serde_json::Map::new(),
            spend: Some(spend),
        };
        let display = actor.replace(':', "-");
        if let Some(answer) =
            super::issue_login_token(state, path, &role_name, &display, &role, peer, extras).await?
        {
            return Ok(answer);
        }
        // Spent or changed meanwhile: read it again.
    }
    Err(invalid())
}
