//! Resolving a route's header templates into header values.

use std::collections::BTreeMap;

use http::{HeaderName, HeaderValue};
use strongroom_crypto::secrecy::{ExposeSecret as _, SecretSlice};

use crate::config::Route;
use crate::source::{SecretSource, SourceError};

/// Why a route's headers could not be built. Names, never values.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A secret the templates need does not exist (for the route's namespace and env).
    #[error("secret {0} is not set for this route")]
    Missing(String),
    /// A secret's value holds CR, LF, NUL or another byte a header can not carry.
    #[error(
        "secret {0} contains CR, LF, NUL or another control byte; it is never put into a header"
    )]
    Unsafe(String),
    /// The source failed.
    #[error("{0}")]
    Unavailable(String),
}

impl ResolveError {
    /// The secret's name, when the error is about one.
    pub fn secret(&self) -> Option<&str> {
        match self {
            Self::Missing(name) | Self::Unsafe(name) => Some(name),
            Self::Unavailable(_) => None,
        }
    }
}

/// Resolves every template of `route` (each secret once) into sensitive header values.
/// Fails as a whole: a request is never sent with a header missing.
pub async fn resolve_headers(
    route: &Route,
    source: &dyn SecretSource,
) -> Result<Vec<(HeaderName, HeaderValue)>, ResolveError> {
    let mut names: Vec<&str> = Vec::new();
    for (_, template) in &route.headers {
        for name in template.secrets() {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let resolved = source
        .resolve_all(&route.namespace, &route.env, &names)
        .await
        .map_err(|e| match e {
            SourceError::NotFound(name) => ResolveError::Missing(name),
            other @ SourceError::Unavailable { .. } => ResolveError::Unavailable(other.to_string()),
        })?;
    let values: BTreeMap<&str, SecretSlice<u8>> = names.into_iter().zip(resolved).collect();
    if let Some((name, _)) = values.iter().find(|(_, value)| {
        value
            .expose_secret()
            .iter()
            .any(|b| matches!(b, b'\r' | b'\n' | 0))
    }) {
        return Err(ResolveError::Unsafe((*name).to_owned()));
    }
    let mut headers = Vec::with_capacity(route.headers.len());
    for (header, template) in &route.headers {
        let bytes = template.render(|name| {
            values
                .get(name)
                .map(|v| v.expose_secret().to_vec())
                .ok_or_else(|| ResolveError::Missing(name.to_owned()))
        })?;
        let mut value = HeaderValue::from_bytes(&bytes).map_err(|_| {
            ResolveError::Unsafe(
                template
                    .secrets()
                    .next()
                    .unwrap_or(header.as_str())
                    .to_owned(),
            )
        })?;
        value.set_sensitive(true);
        headers.push((header.clone(), value));
    }
    Ok(headers)
}
