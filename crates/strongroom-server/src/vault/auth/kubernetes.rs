//! The `kubernetes` auth method: a pod logs in with its service account token. Vault's
//! API: `auth/{path}/config` `{kubernetes_host, kubernetes_ca_cert, token_reviewer_jwt,
//! pem_keys, issuer}`, `auth/{path}/role/{name}` `{bound_service_account_names,
//! bound_service_account_namespaces, audience, token_policies, token_ttl}`,
//! `auth/{path}/login` `{role, jwt}`.
//!
//! Two ways to check the token. With `pem_keys` (Strongroom's offline mode) the JWT is
//! verified against those keys and the TokenReview API is never called: a deleted pod's
//! token keeps working until it expires (Kubernetes can not be asked), so set `issuer` and
//! a role `audience` where tokens carry them. Without `pem_keys` the cluster decides: a
//! TokenReview at `kubernetes_host` (HTTPS with `kubernetes_ca_cert`; plain HTTP only on
//! loopback), 5 s timeout, whose service account name, uid and namespace must equal the
//! JWT's. Either way the service account's name and namespace must be bound by the role.

use std::time::Duration;

use axum::response::Response;
use jsonwebtoken::Validation;
use serde_json::{json, Map, Value};

use super::super::{VaultError, VaultResult};
use super::jwt::{allowed_alg, check_jwks_url, decoding_keys_of_pem, refused, string_list};
use super::token::duration;
use crate::AppState;

/// The largest service account token a login reads.
const MAX_JWT: usize = 16 * 1024;

/// The configuration as written: checked (keys parse, the host is HTTPS or loopback).
pub(super) fn check_config(body: &Value) -> VaultResult<Map<String, Value>> {
    let mut config = super::non_empty_strings(
        body,
        &[
            "kubernetes_host",
            "kubernetes_ca_cert",
            "token_reviewer_jwt",
            "issuer",
        ],
    );
    let pems = string_list(body.get("pem_keys"));
    for pem in &pems {
        decoding_keys_of_pem(pem).map_err(|e| VaultError::bad_request(format!("pem_keys: {e}")))?;
    }
    if !pems.is_empty() {
        config.insert("pem_keys".into(), json!(pems));
    }
    match config.get("kubernetes_host").and_then(Value::as_str) {
        Some(host) => check_jwks_url(host).map_err(|_| {
            VaultError::bad_request("kubernetes_host: HTTPS only (plain HTTP only on loopback)")
        })?,
        None if pems.is_empty() => {
            return Err(VaultError::bad_request(
                "give kubernetes_host (TokenReview) or pem_keys",
            ))
        }
        None => {}
    }
    Ok(config)
}

/// A role as written: bound names and namespaces (`*` for any), scopes.
pub(super) fn check_role(role: &Value) -> VaultResult<()> {
    if string_list(role.get("bound_service_account_names")).is_empty()
        || string_list(role.get("bound_service_account_namespaces")).is_empty()
    {
        return Err(VaultError::bad_request(
            "a role needs bound_service_account_names and bound_service_account_namespaces",
        ));
    }
    if super::role_scopes(role)?.is_empty() {
        return Err(VaultError::bad_request(
            "a role needs token_policies (scopes)",
        ));
    }
    if let (Some(ttl), Some(max)) = (
        duration(role, "token_ttl")?,
        duration(role, "token_max_ttl")?,
    ) {
        if ttl > max {
            return Err(VaultError::bad_request(
                "token_ttl is longer than token_max_ttl",
            ));
        }
    }
    Ok(())
}

/// A service account, as a token names it.
#[derive(Debug, PartialEq, Eq)]
struct ServiceAccount {
    namespace: String,
    name: String,
    uid: Option<String>,
}

/// The service account of a token's claims: the projected form (`kubernetes.io`) or the
/// legacy one (`kubernetes.io/serviceaccount/...`).
fn account_of(claims: &Map<String, Value>) -> Option<ServiceAccount> {
    if let Some(k8s) = claims.get("kubernetes.io") {
        return Some(ServiceAccount {
            namespace: k8s.get("namespace")?.as_str()?.to_owned(),
            name: k8s.get("serviceaccount")?.get("name")?.as_str()?.to_owned(),
            uid: k8s
                .get("serviceaccount")
                .and_then(|s| s.get("uid"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    Some(ServiceAccount {
        namespace: claims
            .get("kubernetes.io/serviceaccount/namespace")?
            .as_str()?
            .to_owned(),
        name: claims
            .get("kubernetes.io/serviceaccount/service-account.name")?
            .as_str()?
            .to_owned(),
        uid: claims
            .get("kubernetes.io/serviceaccount/service-account.uid")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// The claims of a JWT, without checking its signature (the TokenReview decides).
fn unverified_claims(jwt: &str) -> VaultResult<Map<String, Value>> {
    use base64::Engine as _;
    let payload = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| refused("the JWT is malformed"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| refused("the JWT is malformed"))?;
    serde_json::from_slice(&bytes).map_err(|_| refused("the JWT is malformed"))
}

/// `POST auth/{path}/login` `{role, jwt}`.
pub(super) async fn login(
    state: &AppState,
    path: &str,
    body: &Value,
    peer: std::net::IpAddr,
) -> VaultResult<Response> {
    let jwt = body
        .get("jwt")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty())
        .ok_or_else(|| VaultError::bad_request("missing jwt"))?;
    if jwt.len() > MAX_JWT {
        return Err(refused("the JWT is larger than 16 KiB"));
    }
    let role_name = body
        .get("role")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| VaultError::bad_request("missing role"))?
        .to_owned();
    let secrets = super::super::secrets(state)?;
    let logins = secrets.logins();
    let all = logins
        .get(&super::setting(path))
        .await?
        .unwrap_or_else(|| json!({}));
    let config = all.get("config").cloned().unwrap_or_else(|| json!({}));
    let role = all
        .get("roles")
        .and_then(|r| r.get(&role_name))
        .cloned()
        .ok_or_else(|| VaultError::bad_request(format!("role {role_name:?} could not be found")))?;
    let audience = role
        .get("audience")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty());
    let account = if string_list(config.get("pem_keys")).is_empty() {
        token_review(&config, jwt, audience).await?
    } else {
        offline(&config, jwt, audience)?
    };
    let bound = |field: &str, value: &str| {
        string_list(role.get(field))
            .iter()
            .any(|b| b == "*" || b == value)
    };
    if !bound("bound_service_account_names", &account.name) {
        return Err(refused(
            "the service account's name is not bound to the role",
        ));
    }
    if !bound("bound_service_account_namespaces", &account.namespace) {
        return Err(refused(
            "the service account's namespace is not bound to the role",
        ));
    }
    let display = format!("{}-{}", account.namespace, account.name);
    let extras = super::LoginExtras::metadata(serde_json::Map::from_iter([
        (
            "service_account_name".to_owned(),
            Value::String(account.name.clone()),
        ),
        (
            "service_account_namespace".to_owned(),
            Value::String(account.namespace.clone()),
        ),
    ]));
    super::super::quotas::spent_nothing(
        super::issue_login_token(state, path, &role_name, &display, &role, peer, extras).await?,
    )
    .map_err(Into::into)
}

/// Offline: the JWT verified against `pem_keys`, its issuer and audience checked.
fn offline(config: &Value, jwt: &str, audience: Option<&str>) -> VaultResult<ServiceAccount> {
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| refused("the JWT is malformed"))?;
    let alg = allowed_alg(&format!("{:?}", header.alg))
        .map_err(|_| refused("the JWT's algorithm is not accepted"))?;
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_aud = false;
    validation.leeway = 60;
    let keys: Vec<_> = string_list(config.get("pem_keys"))
        .iter()
        .filter_map(|pem| decoding_keys_of_pem(pem).ok())
        .flatten()
        .collect();
    let claims = keys
        .iter()
        .find_map(|key| jsonwebtoken::decode::<Map<String, Value>>(jwt, key, &validation).ok())
        .map(|data| data.claims)
        .ok_or_else(|| refused("the service account token does not verify under pem_keys"))?;
    if let Some(issuer) = config.get("issuer").and_then(Value::as_str) {
        if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
            return Err(refused("the issuer is not the configured issuer"));
        }
    }
    if let Some(audience) = audience {
        let audiences = string_list(claims.get("aud"));
        if !audiences.iter().any(|a| a == audience) {
            return Err(refused("the audience is not the role's"));
        }
    }
    account_of(&claims).ok_or_else(|| refused("the JWT names no service account"))
}

/// Through the cluster: a TokenReview, whose answer must name the JWT's own account.
async fn token_review(
    config: &Value,
    jwt: &str,
    audience: Option<&str>,
) -> VaultResult<ServiceAccount> {
    let claimed = account_of(&unverified_claims(jwt)?)
        .ok_or_else(|| refused("the JWT names no service account"))?;
    let host = config
        .get("kubernetes_host")
        .and_then(Value::as_str)
        .ok_or_else(|| refused("the method has no kubernetes_host"))?;
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = config.get("kubernetes_ca_cert").and_then(Value::as_str) {
        let cert = reqwest::Certificate::from_pem(pem.as_bytes())
            .map_err(|_| VaultError::bad_request("kubernetes_ca_cert: not a PEM certificate"))?;
        builder = builder.add_root_certificate(cert);
    }
    let client = builder.build().map_err(|_| {
        VaultError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal error",
        )
    })?;
    // The reviewer's own token, else the pod's (which may review itself).
    let reviewer_token = config
        .get("token_reviewer_jwt")
        .and_then(Value::as_str)
        .unwrap_or(jwt);
    let mut spec = json!({ "token": jwt });
    if let Some(audience) = audience {
        spec["audiences"] = json!([audience]);
    }
    let review =
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec});
    let url = format!(
        "{}/apis/authentication.k8s.io/v1/tokenreviews",
        host.trim_end_matches('/')
    );
    let answer: Value = client
        .post(url)
        .bearer_auth(reviewer_token)
        .json(&review)
        .send()
        .await
        .map_err(|_| refused("the Kubernetes API could not be reached for a TokenReview"))?
        .json()
        .await
        .map_err(|_| refused("the TokenReview answer is not JSON"))?;
    let status = &answer["status"];
    if status["authenticated"] != Value::Bool(true) {
        return Err(refused("the cluster does not authenticate this token"));
    }
    let username = status["user"]["username"].as_str().unwrap_or_default();
    let reviewed = username
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
        .map(|(namespace, name)| ServiceAccount {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: status["user"]["uid"].as_str().map(str::to_owned),
        })
        .ok_or_else(|| refused("the TokenReview names no service account"))?;
    let same_uid = match (&claimed.uid, &reviewed.uid) {
        (Some(a), Some(b)) => a == b,
        (None, _) => true,
        (Some(_), None) => false,
    };
    if reviewed.namespace != claimed.namespace || reviewed.name != claimed.name || !same_uid {
        return Err(refused(
            "the TokenReview names another service account than the token",
        ));
    }
    Ok(reviewed)
}
