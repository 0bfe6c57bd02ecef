//! Where a jwt method's keys come from: PEM keys, a JWKS (cached per URL for at most 10
//! minutes, refetched for an unknown `kid` at most once per 10 s, one fetch in flight that
//! no login with a known key waits on, the last good set kept while the issuer is down or
//! slow, at most 1 MiB read), or OIDC discovery naming the JWKS and the issuer.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::super::VaultResult;
use super::jwt::{check_jwks_url, decoding_keys_of_pem, refused, string_list};

/// How often an unknown `kid` may refetch a JWKS.
const REFETCH_EVERY: Duration = Duration::from_secs(10);

/// Drops the cached keys a method's configuration `config` names (it was just written):
/// its JWKS, its discovery document and the JWKS that document named. Other methods' keys
/// stay: a write to one mount never makes another's logins wait on their issuer.
pub(super) fn forget_keys_of(config: &Value) {
    let named = |field: &str| config.get(field).and_then(Value::as_str).map(str::to_owned);
    let mut urls: Vec<String> = named("jwks_url").into_iter().collect();
    if let Some(discovery) = named("oidc_discovery_url") {
        let discovered = DISCOVERY
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&discovery);
        urls.extend(discovered.map(|(jwks_uri, _, _)| jwks_uri));
    }
    let mut cached = JWKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for url in urls {
        cached.remove(&url);
    }
}

/// What OIDC discovery found for an issuer: its `jwks_uri` and `issuer`, and when.
type Discovered = (String, String, Instant);

/// Discovery documents per URL (kept an hour; the JWKS they name is cached as any other).
static DISCOVERY: LazyLock<std::sync::Mutex<HashMap<String, Discovered>>> =
    LazyLock::new(|| std::sync::Mutex::new(HashMap::new()));

/// `config` with OIDC discovery resolved: the provider's `jwks_uri` as `jwks_url`, and its
/// `issuer` as `bound_issuer` unless one is set. The document's `issuer` must be the
/// discovery URL itself (OpenID Connect Discovery, section 4.3), so a document can not
/// claim another issuer's name; its `jwks_uri` must be HTTPS (or loopback HTTP).
pub(super) async fn with_discovery(config: &Value) -> VaultResult<Value> {
    let Some(url) = config.get("oidc_discovery_url").and_then(Value::as_str) else {
        return Ok(config.clone());
    };
    let cached = DISCOVERY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(url)
        .filter(|(_, _, at)| at.elapsed() < Duration::from_secs(3600))
        .cloned();
    let (jwks_uri, issuer) = match cached {
        Some((jwks_uri, issuer, _)) => (jwks_uri, issuer),
        None => {
            let document = format!(
                "{}/.well-known/openid-configuration",
                url.trim_end_matches('/')
            );
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|_| refused("the OIDC discovery document could not be fetched"))?;
            let found: Value = client
                .get(&document)
                .send()
                .await
                .map_err(|_| refused("the OIDC discovery document could not be fetched"))?
                .json()
                .await
                .map_err(|_| refused("the OIDC discovery document is not JSON"))?;
            let issuer = found["issuer"].as_str().unwrap_or_default().to_owned();
            let jwks_uri = found["jwks_uri"].as_str().unwrap_or_default().to_owned();
            if issuer.trim_end_matches('/') != url.trim_end_matches('/') {
                return Err(refused("the OIDC discovery document names another issuer"));
            }
            check_jwks_url(&jwks_uri)
                .map_err(|_| refused("the discovered jwks_uri is not HTTPS"))?;
            DISCOVERY
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(
                    url.to_owned(),
                    (jwks_uri.clone(), issuer.clone(), Instant::now()),
                );
            (jwks_uri, issuer)
        }
    };
    let mut resolved = config.clone();
    resolved["jwks_url"] = Value::String(jwks_uri);
    if resolved.get("bound_issuer").is_none() {
        resolved["bound_issuer"] = Value::String(issuer);
    }
    Ok(resolved)
}

/// How long a fetched JWKS is trusted: the next login after this refetches it, so a key the
/// issuer removed stops verifying within this time (at once, if a new `kid` refetches).
const MAX_AGE: Duration = Duration::from_secs(600);

/// The largest JWKS read.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// One JWKS URL's cache: the last good set and when it was fetched (read without
/// waiting on a fetch), and the lock that keeps one fetch in flight (holding when an
/// unknown `kid` last refetched).
struct CachedJwks {
    keys: std::sync::Mutex<Option<(JwkSet, Instant)>>,
    fetch: tokio::sync::Mutex<Option<Instant>>,
}

/// JWKS per URL.
static JWKS: LazyLock<std::sync::Mutex<HashMap<String, Arc<CachedJwks>>>> =
    LazyLock::new(|| std::sync::Mutex::new(HashMap::new()));

/// What the cache holds for a JWT: the keys that match it, and whether the set is fresh.
fn cached_keys(
    entry: &CachedJwks,
    find: impl Fn(&JwkSet) -> Vec<DecodingKey>,
) -> (Vec<DecodingKey>, bool, bool) {
    let guard = entry
        .keys
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match &*guard {
        Some((set, at)) => (find(set), at.elapsed() < MAX_AGE, true),
        None => (Vec::new(), false, false),
    }
}

/// The decoding keys a JWT with `kid` may be verified under.
pub(super) async fn keys_for(
    config: &Value,
    kid: Option<&str>,
    alg: Algorithm,
) -> VaultResult<Vec<DecodingKey>> {
    let pems = string_list(config.get("jwt_validation_pubkeys"));
    if !pems.is_empty() {
        return Ok(pems
            .iter()
            .filter_map(|pem| decoding_keys_of_pem(pem).ok())
            .flatten()
            .collect());
    }
    let url = config
        .get("jwks_url")
        .and_then(Value::as_str)
        .ok_or_else(|| refused("the method has no keys configured"))?;
    let entry = {
        let mut cache = JWKS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(cache.entry(url.to_owned()).or_insert_with(|| {
            Arc::new(CachedJwks {
                keys: std::sync::Mutex::new(None),
                fetch: tokio::sync::Mutex::new(None),
            })
        }))
    };
    let find = |set: &JwkSet| -> Vec<DecodingKey> {
        set.keys
            .iter()
            .filter(|k| match kid {
                Some(kid) => k.common.key_id.as_deref() == Some(kid),
                None => true,
            })
            .filter(|k| {
                k.common
                    .key_algorithm
                    .is_none_or(|a| format!("{a:?}") == format!("{alg:?}"))
            })
            .filter_map(|k| DecodingKey::from_jwk(k).ok())
            .collect()
    };
    // A fresh set that knows the kid: no waiting, even while a fetch is in flight.
    let (found, fresh, _) = cached_keys(&entry, find);
    if fresh && !found.is_empty() {
        return Ok(found);
    }
    // One fetch in flight per URL; look again once it is ours (another may have fetched).
    let mut last_refetch = entry.fetch.lock().await;
    let (found, fresh, held) = cached_keys(&entry, find);
    if fresh && !found.is_empty() {
        return Ok(found);
    }
    // Nothing held, or a stale set: fetch. An unknown kid in a fresh set: at most once
    // per 10 s per URL (many random kids cause few fetches).
    let unknown_kid = held && fresh;
    let may_fetch = !unknown_kid || last_refetch.is_none_or(|at| at.elapsed() >= REFETCH_EVERY);
    if may_fetch {
        if unknown_kid {
            *last_refetch = Some(Instant::now());
        }
        let fetched = fetch_jwks(url, config.get("jwks_ca_pem").and_then(Value::as_str)).await;
        let mut keys = entry
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match fetched {
            Ok(set) => *keys = Some((set, Instant::now())),
            // The issuer is down or slow: the last good set stays in use, retried in 10 s
            // (not by every login meanwhile).
            Err(_) => {
                if let Some((_, at)) = keys.as_mut() {
                    *at = Instant::now()
                        .checked_sub(MAX_AGE.saturating_sub(REFETCH_EVERY))
                        .unwrap_or_else(Instant::now);
                }
            }
        }
    }
    drop(last_refetch);
    let (found, _, _) = cached_keys(&entry, find);
    if found.is_empty() {
        return Err(refused("no key of the issuer matches the JWT's kid"));
    }
    Ok(found)
}

/// Fetches a JWKS (5 s timeout; HTTPS with the system roots or `ca_pem`).
async fn fetch_jwks(url: &str, ca_pem: Option<&str>) -> Result<JwkSet, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = ca_pem {
        let cert = reqwest::Certificate::from_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
        builder = builder.add_root_certificate(cert);
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("JWKS answered {}", response.status()));
    }
    // Read at most 1 MiB, whatever the issuer sends or claims to send.
    let too_large = || "JWKS larger than 1 MiB".to_owned();
    if response
        .content_length()
        .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut response = response;
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if bytes.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}
