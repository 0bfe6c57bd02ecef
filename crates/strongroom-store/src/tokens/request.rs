//! A new token's request checked: its name, its scopes against its kind, its lifetimes.

use super::{TokenRequest, RESERVED_NAMES};
use crate::{Result, StoreError};

/// A duration in ms: longer than zero and finite.
pub(super) fn ms_of(duration: std::time::Duration) -> Result<i64> {
    i64::try_from(duration.as_millis())
        .ok()
        .filter(|ms| *ms > 0)
        .ok_or_else(|| StoreError::InvalidInput("a ttl must be longer than zero and finite".into()))
}

/// The name and scope rules of a new token.
pub(super) fn check_request(request: &TokenRequest) -> Result<()> {
    let name = request.name.as_str();
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(StoreError::InvalidInput(
            "token name: expected 1-64 characters of A-Z a-z 0-9 _ . -".into(),
        ));
    }
    if RESERVED_NAMES.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(StoreError::InvalidInput(format!(
            "token name {name:?} is reserved (admin is STRONGROOM_ADMIN_TOKEN; cli and \
             library are audit actors of their own)"
        )));
    }
    if request.superuser != request.scopes.is_empty() {
        return Err(StoreError::InvalidInput(
            "a token is either --superuser or has at least one --scope".into(),
        ));
    }
    Ok(())
}

/// A new token's ttl and max ttl in ms, checked against each other.
pub(super) fn lifetimes(request: &TokenRequest) -> Result<(Option<i64>, Option<i64>)> {
    let ttl = request.ttl.map(ms_of).transpose()?;
    let max_ttl = request.max_ttl.map(ms_of).transpose()?;
    if let (Some(ttl), Some(max)) = (ttl, max_ttl) {
        if ttl > max {
            return Err(StoreError::InvalidInput(
                "the ttl is longer than the max ttl".into(),
            ));
        }
    }
    if request.renewable && ttl.is_none() {
        return Err(StoreError::InvalidInput(
            "a renewable token needs a ttl (renewal extends it by its ttl)".into(),
        ));
    }
    Ok((ttl, max_ttl))
}
