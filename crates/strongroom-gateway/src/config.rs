//! Gateway configuration: routes with upstreams and header templates, checked at load.

use std::collections::BTreeMap;

use http::{HeaderName, Method};
use serde::Deserialize;

use crate::template::{Template, TemplateError};
use crate::upstream::{RequestPath, Upstream};

/// One proxied route.
#[derive(Debug, Clone)]
pub struct Route {
    /// The route's name: the first path segment under the gateway mount.
    pub name: String,
    /// The upstream base URL, parsed once; every request stays on its scheme, host and
    /// port, under its path.
    pub upstream: Upstream,
    /// Namespace the secrets are read from.
    pub namespace: String,
    /// Env the secrets are read from (the store's fallback applies).
    pub env: String,
    /// Headers to set on every upstream request.
    pub headers: Vec<(HeaderName, Template)>,
    /// Upstream timeout in seconds.
    pub timeout_seconds: u64,
    /// Methods the route forwards (default [`DEFAULT_METHODS`]; never TRACE or CONNECT).
    pub methods: Vec<Method>,
    /// Path prefixes (after the route segment) the route forwards; empty: any path.
    pub paths: Vec<String>,
}

/// Methods a route forwards when its configuration lists none.
pub const DEFAULT_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

impl Route {
    /// Whether the route forwards `method`.
    pub fn allows_method(&self, method: &Method) -> bool {
        self.methods.contains(method)
    }

    /// Whether the route forwards `path` (its `paths` allowlist, if any).
    pub fn allows_path(&self, path: &RequestPath) -> bool {
        self.paths.is_empty() || self.paths.iter().any(|prefix| path.is_under(prefix))
    }
}

/// All routes.
#[derive(Debug, Clone, Default)]
pub struct GatewayConfig {
    /// Routes by name.
    pub routes: BTreeMap<String, Route>,
}

/// A configuration error: which route, which header, what and where.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is not valid TOML/JSON of the expected shape.
    #[error("gateway configuration: {0}")]
    Syntax(String),
    /// A header template does not parse.
    #[error("gateway route {route:?}, header {header:?}: {error}")]
    Template {
        /// Route name.
        route: String,
        /// Header name.
        header: String,
        /// The parse error, with its byte position.
        error: TemplateError,
    },
    /// Anything else about a route.
    #[error("gateway route {route:?}: {reason}")]
    Route {
        /// Route name.
        route: String,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    routes: Vec<RawRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: String,
    upstream: String,
    #[serde(default = "default_namespace")]
    namespace: String,
    #[serde(default = "default_env")]
    env: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default = "default_timeout")]
    timeout_seconds: u64,
    #[serde(default)]
    methods: Option<Vec<String>>,
    #[serde(default)]
    paths: Vec<String>,
}

fn default_namespace() -> String {
    "default".into()
}
fn default_env() -> String {
    "global".into()
}
fn default_timeout() -> u64 {
    60
}

/// Hop-by-hop and framing headers a route may not set.
const RESERVED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

impl GatewayConfig {
    /// Parses TOML (`[[routes]]` tables).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.message().to_owned()))?;
        Self::build(raw)
    }

    /// Parses JSON (`{"routes": [...]}`).
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig =
            serde_json::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        Self::build(raw)
    }

    /// Reads a `.toml` or `.json` file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Syntax(format!("cannot read {}: {e}", path.display())))?;
        if path.extension().is_some_and(|e| e == "json") {
            Self::from_json(&text)
        } else {
            Self::from_toml(&text)
        }
    }

    fn build(raw: RawConfig) -> Result<Self, ConfigError> {
        let mut routes = BTreeMap::new();
        for route in raw.routes {
            let name = route.name.clone();
            let fail = |reason: String| ConfigError::Route {
                route: name.clone(),
                reason,
            };
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(fail("the name must be 1 or more of A-Z a-z 0-9 - _".into()));
            }
            let upstream = Upstream::parse(&route.upstream).map_err(&fail)?;
            let methods = parse_methods(route.methods.as_deref()).map_err(&fail)?;
            for prefix in &route.paths {
                let checked = RequestPath::parse(prefix.trim_end_matches('/'))
                    .map_err(|e| fail(format!("paths entry {prefix:?}: {e}")))?;
                if !prefix.starts_with('/') || checked.decoded() != prefix.trim_end_matches('/') {
                    return Err(fail(format!(
                        "paths entry {prefix:?} must be a plain path starting with / (no %-escapes, no dot segments)"
                    )));
                }
            }
            for (what, value) in [("namespace", &route.namespace), ("env", &route.env)] {
                if value.is_empty()
                    || !value.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                    })
                {
                    return Err(fail(format!("{what} must be 1 or more of a-z 0-9 - _")));
                }
            }
            let mut headers = Vec::new();
            for (header, text) in route.headers {
                let header_name = HeaderName::from_bytes(header.as_bytes())
                    .map_err(|_| fail(format!("{header:?} is not a valid header name")))?;
                if RESERVED.contains(&header_name.as_str()) {
                    return Err(fail(format!(
                        "header {header:?} is hop-by-hop or framing and can not be set"
                    )));
                }
                let template = Template::parse(&text).map_err(|error| ConfigError::Template {
                    route: name.clone(),
                    header: header.clone(),
                    error,
                })?;
                headers.push((header_name, template));
            }
            if route.timeout_seconds == 0 {
                return Err(fail("timeout_seconds must be at least 1".into()));
            }
            if routes.contains_key(&name) {
                return Err(fail("defined twice".into()));
            }
            routes.insert(
                name.clone(),
                Route {
                    name,
                    upstream,
                    namespace: route.namespace,
                    env: route.env,
                    headers,
                    timeout_seconds: route.timeout_seconds,
                    methods,
                    paths: route.paths,
                },
            );
        }
        Ok(Self { routes })
    }
}

/// The route's methods: `listed`, or the defaults; TRACE and CONNECT are never allowed.
fn parse_methods(listed: Option<&[String]>) -> Result<Vec<Method>, String> {
    let names: Vec<&str> = match listed {
        Some(listed) => listed.iter().map(String::as_str).collect(),
        None => DEFAULT_METHODS.to_vec(),
    };
    if names.is_empty() {
        return Err("methods must list at least one method".into());
    }
    names
        .into_iter()
        .map(|name| {
            let upper = name.to_ascii_uppercase();
            if upper == "TRACE" || upper == "CONNECT" {
                return Err(format!("method {name} is never forwarded"));
            }
            Method::from_bytes(upper.as_bytes())
                .map_err(|_| format!("{name:?} is not an HTTP method"))
        })
        .collect()
}
