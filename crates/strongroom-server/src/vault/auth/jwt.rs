//! The `jwt` auth method: a workload proves who it is with a JWT its platform issued (a
//! GitHub Actions or GitLab CI OIDC token, a cloud workload identity) and gets a token
//! that dies on its own. Vault's API: `auth/{path}/config`, `auth/{path}/role/{name}`,
//! `auth/{path}/login` `{role, jwt}`.
//!
//! What is refused, each before any token is made: a JWT over 16 KiB; `alg: none` and
//! every HMAC algorithm (a token "signed" with the public key as an HMAC secret included);
//! an algorithm outside `jwt_supported_algs`; an unknown `kid`; a bad signature (a tampered
//! payload, another key's signature); `exp` past, `nbf` or `iat` ahead (60 s leeway by
//! default); a JWT with none of `exp`, `nbf`, `iat`; an issuer other than `bound_issuer`;
//! an audience outside `bound_audiences` (and any `aud` for a role without them); a
//! subject other than `bound_subject`; a claim outside `bound_claims`; no `user_claim`.
//!
//! Keys: `jwt_validation_pubkeys` (PEM), or a JWKS at `jwks_url` — HTTPS (plain HTTP only
//! on loopback), cached; an unknown `kid` refetches at most once per 10 s per URL, one
//! fetch in flight; a JWKS that is down or slow (5 s) leaves the last good set in use.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Map, Value};

use super::super::{VaultBody, VaultCaller, VaultError, VaultResult};
use super::token::duration;
use crate::AppState;

/// The largest JWT a login reads.
const MAX_JWT: usize = 16 * 1024;

/// Default leeway for `exp`, `nbf` and `iat`.
const DEFAULT_LEEWAY: u64 = 60;

/// The method at `path` must be a jwt method.
async fn jwt_method(state: &AppState, path: &str) -> VaultResult<()> {
    match super::method_at(state, path).await?.as_deref() {
        Some("jwt") => Ok(()),
        _ => Err(VaultError::unsupported_path()),
    }
}

/// `POST auth/{path}/config`: keys (`jwks_url`, `jwt_validation_pubkeys`), `bound_issuer`,
/// `default_role`, `jwt_supported_algs`. Checked on write: the keys parse, the URL is
/// HTTPS (or loopback HTTP).
pub(super) async fn write_config(
    State(state): State<AppState>,
    VaultCaller(caller): VaultCaller,
    Path(path): Path<String>,
    body: VaultBody,
) -> VaultResult {
    let body = body.json()?;
    jwt_method(&state, &path).await?;
    let mut all = super::stored(&state, &caller, &path).await?;
    let mut config = super::non_empty_strings(
        &body,
        &[
            "jwks_url",
            "jwks_ca_pem",
            "oidc_discovery_url",
            "bound_issuer",
            "default_role",
        ],
    );
    let keys = string_list(body.get("jwt_validation_pubkeys"));
    for pem in &keys {
        decoding_keys_of_pem(pem)
            .map_err(|e| VaultError::bad_request(format!("jwt_validation_pubkeys: {e}")))?;
    }
    if !keys.is_empty() {
        config.insert("jwt_validation_pubkeys".into(), json!(keys));
    }
    let algs = string_list(body.get("jwt_supported_algs"));
    for alg in &algs {
        allowed_alg(alg)?;
    }
    if !algs.is_empty() {
        config.insert("jwt_supported_algs".into(), json!(algs));
    }
    let sources = [
        config.contains_key("jwks_url"),
        !keys.is_empty(),
        config.contains_key("oidc_discovery_url"),
    ];
    if sources.iter().filter(|given| **given).count() != 1 {
        return Err(VaultError::bad_request(
            "give one of jwks_url, jwt_validation_pubkeys, oidc_discovery_url",
        ));
    }
    for field in ["jwks_url", "oidc_discovery_url"] {
        if let Some(url) = config.get(field).and_then(Value::as_str) {
            check_jwks_url(url).map_err(|_| {
                VaultError::bad_request(format!(
                    "{field}: HTTPS only (plain HTTP only on loopback)"
                ))
            })?;
        }
    }
    all.insert("config".into(), Value::Object(config));
    super::save(&state, &caller, &path, all).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A list of strings from a list, or from one comma-separated string.
pub(crate) fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
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
        _ => Vec::new(),
    }
}

/// The asymmetric algorithms a JWT may use; `none` and HMAC never.
pub(super) fn allowed_alg(name: &str) -> VaultResult<Algorithm> {
    let alg = match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        other => {
            return Err(VaultError::bad_request(format!(
                "JWT algorithm {other:?} is not accepted (asymmetric signatures only)"
            )))
        }
    };
    Ok(alg)
}

/// A JWKS URL: HTTPS, or plain HTTP on loopback (tests, a sidecar).
pub(super) fn check_jwks_url(text: &str) -> VaultResult<()> {
    let url =
        reqwest::Url::parse(text).map_err(|_| VaultError::bad_request("jwks_url: not a URL"))?;
    let loopback = matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || url.host_str() == Some("localhost");
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(VaultError::bad_request(
            "jwks_url: HTTPS only (plain HTTP only on loopback)",
        )),
    }
}

/// The decoding keys of one PEM: a public key or certificate, RSA, EC or Ed25519.
pub(super) fn decoding_keys_of_pem(pem: &str) -> Result<Vec<DecodingKey>, String> {
    let bytes = pem.as_bytes();
    let keys: Vec<DecodingKey> = [
        DecodingKey::from_rsa_pem(bytes).ok(),
        DecodingKey::from_ec_pem(bytes).ok(),
        DecodingKey::from_ed_pem(bytes).ok(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if keys.is_empty() {
        Err("not a PEM public key (RSA, EC or Ed25519)".into())
    } else {
        Ok(keys)
    }
}

/// A jwt role as written (merged with the stored one): a `role_type` of `jwt` (or none),
/// `user_claim` and a binding (`bound_audiences`, `bound_subject`, `bound_claims`),
/// `token_policies` that parse as scopes, `token_ttl` not over `token_max_ttl`.
pub(super) fn check_role(role: &Value) -> VaultResult<()> {
    match role.get("role_type").and_then(Value::as_str) {
        None | Some("jwt") => {}
        Some("oidc") => {
            return Err(VaultError::bad_request(
                "role_type oidc (browser logins) is not supported; use jwt",
            ))
        }
        Some(other) => {
            return Err(VaultError::bad_request(format!(
                "unknown role_type {other:?}"
            )))
        }
    }
    let checked = Role::parse(role)?;
    if checked.user_claim.is_empty() {
        return Err(VaultError::bad_request("a role needs user_claim"));
    }
    if checked.bound_audiences.is_empty()
        && checked.bound_subject.is_none()
        && checked.bound_claims.is_empty()
        && super::approle::cidrs(role.get("token_bound_cidrs"))?.is_empty()
    {
        return Err(VaultError::bad_request(
            "a role needs a binding: bound_audiences, bound_subject, bound_claims or \
             token_bound_cidrs",
        ));
    }
    Ok(())
}

/// A role, as a login applies it.
struct Role {
    bound_audiences: Vec<String>,
    bound_subject: Option<String>,
    bound_claims: Map<String, Value>,
    glob_claims: bool,
    user_claim: String,
    /// `iat` may be this far ahead (`clock_skew_leeway`).
    leeway: u64,
    /// `exp` may be this far behind (`expiration_leeway`, else `clock_skew_leeway`).
    exp_leeway: u64,
    /// `nbf` may be this far ahead (`not_before_leeway`, else `clock_skew_leeway`).
    nbf_leeway: u64,
    /// Claims copied into the login's metadata: claim → metadata key.
    claim_mappings: Map<String, Value>,
}

impl Role {
    fn parse(role: &Value) -> VaultResult<Self> {
        // The token's settings are checked here and applied by `issue_login_token`.
        super::role_scopes(role)?;
        let ttl = duration(role, "token_ttl")?;
        let max_ttl = duration(role, "token_max_ttl")?;
        if let (Some(ttl), Some(max)) = (ttl, max_ttl) {
            if ttl > max {
                return Err(VaultError::bad_request(
                    "token_ttl is longer than token_max_ttl",
                ));
            }
        }
        let leeway = leeway_of(role, "clock_skew_leeway", DEFAULT_LEEWAY)?;
        let claim_mappings = match role.get("claim_mappings") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) if map.values().all(Value::is_string) => map.clone(),
            Some(_) => {
                return Err(VaultError::bad_request(
                    "claim_mappings: expected an object of claim names to metadata keys",
                ))
            }
        };
        Ok(Self {
            bound_audiences: string_list(role.get("bound_audiences")),
            bound_subject: role
                .get("bound_subject")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            bound_claims: role
                .get("bound_claims")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            glob_claims: role.get("bound_claims_type").and_then(Value::as_str) == Some("glob"),
            user_claim: role
                .get("user_claim")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            exp_leeway: leeway_of(role, "expiration_leeway", leeway)?,
            nbf_leeway: leeway_of(role, "not_before_leeway", leeway)?,
            leeway,
            claim_mappings,
        })
    }

    /// The login's metadata: each mapped claim that is a string, number or bool.
    fn metadata(&self, claims: &Map<String, Value>) -> Map<String, Value> {
        self.claim_mappings
            .iter()
            .filter_map(|(claim, key)| {
                let text = match claims.get(claim)? {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                Some((key.as_str()?.to_owned(), Value::String(text)))
            })
            .collect()
    }
}

/// A leeway in seconds (a number, or a duration such as `90s`; `0` or absent: `default`;
/// at most an hour).
fn leeway_of(role: &Value, field: &str, default: u64) -> VaultResult<u64> {
    let seconds =
        match role.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(|| {
                VaultError::bad_request(format!("{field}: expected whole seconds"))
            })?),
            Some(Value::String(s)) => duration(&json!({ field: s }), field)?.map(|d| d.as_secs()),
            Some(_) => return Err(VaultError::bad_request(format!("invalid {field}"))),
        };
    match seconds {
        None | Some(0) => Ok(default),
        Some(s) if s <= 3600 => Ok(s),
        Some(_) => Err(VaultError::bad_request(format!("{field}: at most an hour"))),
    }
}

/// A login refused: Vault's 400 with one reason (never the JWT).
pub(super) fn refused(why: &str) -> VaultError {
    VaultError::bad_request(format!("error validating token: {why}"))
}

/// `POST auth/{path}/login` `{role, jwt}` → Vault's `auth` block.
pub(super) async fn login(
    state: &AppState,
    path: &str,
    body: &Value,
    peer: std::net::IpAddr,
) -> VaultResult<Response> {
    let path = path.to_owned();
    let jwt = body
        .get("jwt")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty())
        .ok_or_else(|| VaultError::bad_request("missing jwt"))?;
    if jwt.len() > MAX_JWT {
        return Err(refused("the JWT is larger than 16 KiB"));
    }
    let secrets = super::super::secrets(state)?;
    let logins = secrets.logins();
    let all = logins
        .get(&super::setting(&path))
        .await?
        .unwrap_or_else(|| json!({}));
    let config = all.get("config").cloned().unwrap_or_else(|| json!({}));
    let role_name = match body
        .get("role")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    {
        Some(role) => role.to_owned(),
        None => config
            .get("default_role")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| VaultError::bad_request("missing role"))?,
    };
    let role_value = all
        .get("roles")
        .and_then(|r| r.get(&role_name))
        .cloned()
        .ok_or_else(|| VaultError::bad_request(format!("role {role_name:?} could not be found")))?;
    let role = Role::parse(&role_value)?;
    let claims = verify(jwt, &config, &role).await?;
    let display = match claims.get(&role.user_claim) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(refused(&format!(
                "the JWT has no {:?} claim (the role's user_claim)",
                role.user_claim
            )))
        }
    };
    let extras = super::LoginExtras::metadata(role.metadata(&claims));
    super::super::quotas::spent_nothing(
        super::issue_login_token(
            state,
            &path,
            &role_name,
            &display,
            &role_value,
            peer,
            extras,
        )
        .await?,
    )
    .map_err(Into::into)
}

/// A unique token name from the JWT's `user_claim` value (Vault's display name).
pub(super) fn token_name(display: &str) -> VaultResult<String> {
    let mut random = [0u8; 4];
    getrandom::getrandom(&mut random)
        .map_err(|_| VaultError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?;
    let base: String = display
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(50)
        .collect();
    Ok(format!("{base}-{}", hex::encode(random)))
}

/// Verifies `jwt` under the method's keys and the role's bindings; its claims.
async fn verify(jwt: &str, config: &Value, role: &Role) -> VaultResult<Map<String, Value>> {
    let resolved = super::keys::with_discovery(config).await?;
    let config = &resolved;
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| refused("the JWT is malformed"))?;
    // `none` and HMAC never parse into an accepted algorithm.
    let alg_name = format!("{:?}", header.alg);
    let alg = allowed_alg(&alg_name)
        .map_err(|_| refused(&format!("algorithm {alg_name} is not accepted")))?;
    let supported = string_list(config.get("jwt_supported_algs"));
    if !supported.is_empty() && !supported.contains(&alg_name) {
        return Err(refused(&format!(
            "algorithm {alg_name} is not among jwt_supported_algs"
        )));
    }
    let keys = super::keys::keys_for(config, header.kid.as_deref(), alg).await?;
    let mut validation = Validation::new(alg);
    // Times are checked after the signature, each with its own leeway (check_claims).
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let mut last = None;
    for key in &keys {
        match jsonwebtoken::decode::<Map<String, Value>>(jwt, key, &validation) {
            Ok(data) => return check_claims(data.claims, config, role),
            Err(e) => last = Some(e),
        }
    }
    Err(refused(
        match last.as_ref().map(jsonwebtoken::errors::Error::kind) {
            Some(jsonwebtoken::errors::ErrorKind::ExpiredSignature) => "the JWT has expired",
            Some(jsonwebtoken::errors::ErrorKind::ImmatureSignature) => {
                "the JWT is not valid yet (nbf)"
            }
            Some(jsonwebtoken::errors::ErrorKind::InvalidSignature) => {
                "the signature does not verify"
            }
            _ => "the JWT does not verify under the configured keys",
        },
    ))
}

/// The time, issuer, audience, subject and claim checks after the signature.
fn check_claims(
    claims: Map<String, Value>,
    config: &Value,
    role: &Role,
) -> VaultResult<Map<String, Value>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let number = |name: &str| claims.get(name).and_then(Value::as_u64);
    if number("exp").is_none() && number("nbf").is_none() && number("iat").is_none() {
        return Err(refused("the JWT has none of exp, nbf, iat"));
    }
    if number("iat").is_some_and(|iat| iat > now + role.leeway) {
        return Err(refused("the JWT was issued in the future (iat)"));
    }
    // A time claim that is present but not a number is refused, never skipped.
    for name in ["exp", "nbf", "iat"] {
        if claims.get(name).is_some_and(|v| v.as_u64().is_none()) {
            return Err(refused(&format!("the JWT's {name} is not a time")));
        }
    }
    if number("exp").is_some_and(|exp| exp.saturating_add(role.exp_leeway) <= now) {
        return Err(refused("the JWT has expired"));
    }
    if number("nbf").is_some_and(|nbf| nbf > now + role.nbf_leeway) {
        return Err(refused("the JWT is not valid yet (nbf)"));
    }
    if let Some(issuer) = config.get("bound_issuer").and_then(Value::as_str) {
        if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
            return Err(refused("the issuer is not the bound issuer"));
        }
    }
    let audiences: Vec<String> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    if role.bound_audiences.is_empty() {
        if claims.contains_key("aud") {
            return Err(refused("the JWT names an audience and the role binds none"));
        }
    } else if !audiences.iter().any(|a| role.bound_audiences.contains(a)) {
        return Err(refused("the audience is not bound to the role"));
    }
    if let Some(subject) = &role.bound_subject {
        if claims.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
            return Err(refused("the subject is not the role's bound subject"));
        }
    }
    for (name, wanted) in &role.bound_claims {
        if !claim_matches(claims.get(name), wanted, role.glob_claims) {
            return Err(refused(&format!(
                "claim {name:?} does not match the role's bound_claims"
            )));
        }
    }
    Ok(claims)
}

/// Whether a claim's value matches a bound value (a string, number or bool, or a list of
/// them: any element; `glob`: `*` matches any run of characters, `/` included).
fn claim_matches(actual: Option<&Value>, wanted: &Value, glob: bool) -> bool {
    let Some(actual) = actual else {
        return false;
    };
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let actual_values: Vec<String> = match actual {
        Value::Array(items) => items.iter().filter_map(text).collect(),
        other => text(other).into_iter().collect(),
    };
    let wanted_values: Vec<String> = match wanted {
        Value::Array(items) => items.iter().filter_map(text).collect(),
        other => text(other).into_iter().collect(),
    };
    wanted_values.iter().any(|w| {
        actual_values
            .iter()
            .any(|a| if glob { glob_match(w, a) } else { w == a })
    })
}

/// `*` matches any run of characters (`/` included); everything else literally.
fn glob_match(pattern: &str, text: &str) -> bool {
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: false,
        require_literal_leading_dot: false,
    };
    glob::Pattern::new(&glob::Pattern::escape(pattern).replace("[*]", "*"))
        .is_ok_and(|p| p.matches_with(text, options))
}
