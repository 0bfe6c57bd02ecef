//! The keyed tag of a token row (docs/format.md, "Token rows"): HMAC-SHA-256 under the key
//! ring's keyed-hash subkey over every field of the row, bound to its id, so a row written
//! by anyone without the key (inserted, widened, un-revoked, a flipped superuser flag) is
//! refused wherever tokens are checked.
//!
//! The input is a length-prefixed encoding under the label `api-token-v1` for a row whose
//! identity fields (expiry, maximum, period, renewable, uses, creator, method, parent) are
//! all at their defaults — every row written before them — and under `api-token-v2`,
//! which adds them, for every other row. So old rows keep their tags, and a row that
//! carries any identity field is authenticated over all of them: emptying a field to fall
//! back to the v1 input does not match the v2 tag the row was written with. A row bound to
//! networks (`bound_cidrs`) is tagged under `api-token-v3`: the v2 input and then the
//! count and each CIDR block, so unbinding a row breaks its tag.

use strongroom_crypto::{Context, KeyRing, KeyedHash};

use crate::backend::TokenRecord;

fn tag_context() -> Context {
    Context::new("api-token")
}

/// Whether every field added with tokens as identities is at its default (a row from
/// before them, or one made without them): such a row is tagged over the v1 input.
fn is_v1(record: &TokenRecord) -> bool {
    record.expires.is_none()
        && record.max_expires.is_none()
        && record.ttl_ms == 0
        && !record.renewable
        && record.num_uses == 0
        && record.uses == 0
        && record.creator.is_empty()
        && record.method.is_empty()
        && record.parent.is_none()
        && record.bound_cidrs.is_empty()
}

/// The bytes the tag covers: every stored field but the tag itself.
fn tag_input(record: &TokenRecord) -> Vec<u8> {
    let time = |t: Option<crate::Timestamp>| {
        t.map(|t| t.unix_ms().to_be_bytes().to_vec())
            .unwrap_or_default()
    };
    let label = if is_v1(record) {
        "api-token-v1"
    } else if record.bound_cidrs.is_empty() {
        "api-token-v2"
    } else {
        "api-token-v3"
    };
    let mut context = Context::new(label)
        .with(&record.id)
        .with(&record.name)
        .with(&record.secret_hash)
        .with([u8::from(record.superuser)])
        .with(
            u32::try_from(record.scopes.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
    for scope in &record.scopes {
        context = context.with(scope);
    }
    context = context
        .with(record.created.unix_ms().to_be_bytes())
        .with(time(record.revoked));
    if !is_v1(record) {
        context = context
            .with(time(record.expires))
            .with(time(record.max_expires))
            .with(record.ttl_ms.to_be_bytes())
            .with([u8::from(record.renewable)])
            .with(record.num_uses.to_be_bytes())
            .with(record.uses.to_be_bytes())
            .with(&record.creator)
            .with(&record.method)
            .with(record.parent.as_deref().unwrap_or_default());
    }
    if !record.bound_cidrs.is_empty() {
        context = context.with(
            u32::try_from(record.bound_cidrs.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        for cidr in &record.bound_cidrs {
            context = context.with(cidr);
        }
    }
    context.as_bytes().to_vec()
}

/// The tag of `record` under the ring's active key (stored form, with its KEK version).
pub(crate) fn tag(ring: &KeyRing, record: &TokenRecord) -> Vec<u8> {
    ring.keyed_hash(&tag_context(), &tag_input(record))
        .to_bytes()
}

/// What checking a row's tag found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowCheck {
    /// The tag matches every field under a key of the ring.
    Intact,
    /// The row has no tag: written by hand, or left from before tags (and not migrated).
    Untagged,
    /// The tag does not match: a field was edited, or the row was forged.
    Altered,
    /// The tag was made under a KEK version the ring lacks.
    KeyUnavailable(u32),
}

/// Checks `record`'s stored tag (constant time).
pub(crate) fn check(ring: &KeyRing, record: &TokenRecord) -> RowCheck {
    let Some(stored) = &record.tag else {
        return RowCheck::Untagged;
    };
    let Ok(stored) = KeyedHash::from_bytes(stored) else {
        return RowCheck::Altered;
    };
    match ring.verify_keyed_hash(&tag_context(), &tag_input(record), &stored) {
        Ok(true) => RowCheck::Intact,
        Err(strongroom_crypto::Error::KeyVersionUnavailable { version }) => {
            RowCheck::KeyUnavailable(version)
        }
        Ok(false) | Err(_) => RowCheck::Altered,
    }
}

impl RowCheck {
    /// Why a row that is not intact is refused, for `doctor` and the backup checks.
    pub(crate) fn problem(self) -> Option<String> {
        match self {
            Self::Intact => None,
            Self::Untagged => {
                Some("the row carries no tag under the key: it was inserted without the key".into())
            }
            Self::Altered => Some(
                "the row's tag does not match: a field (scopes, superuser, revocation, hash) \
                 was edited, or the row was forged"
                    .into(),
            ),
            Self::KeyUnavailable(version) => Some(format!(
                "the row is tagged under KEK version {version}, which is not configured"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_crypto::Key;

    fn bound_row() -> TokenRecord {
        TokenRecord {
            id: "0123456789ab".into(),
            name: "ci".into(),
            secret_hash: vec![1; 32],
            superuser: false,
            scopes: vec!["default/dev:read".into()],
            created: crate::Timestamp(1_700_000_000_000),
            revoked: None,
            expires: Some(crate::Timestamp(1_700_000_600_000)),
            max_expires: None,
            ttl_ms: 600_000,
            renewable: true,
            num_uses: 0,
            uses: 0,
            creator: "approle:ci".into(),
            method: "approle".into(),
            parent: None,
            bound_cidrs: vec!["10.0.0.0/8".into()],
            tag: None,
        }
    }

    /// A database writer without the key can not unbind, widen or move a token's networks.
    #[test]
    fn bound_networks_are_under_the_tag() {
        let ring = KeyRing::single(&Key::from_bytes(&[7; 32]));
        let mut row = bound_row();
        row.tag = Some(tag(&ring, &row));
        assert_eq!(check(&ring, &row), RowCheck::Intact);
        for cidrs in [
            vec![],
            vec!["0.0.0.0/0".to_owned()],
            vec!["10.0.0.0/8".to_owned(), "192.168.0.0/16".to_owned()],
        ] {
            let edited = TokenRecord {
                bound_cidrs: cidrs.clone(),
                ..row.clone()
            };
            assert_eq!(check(&ring, &edited), RowCheck::Altered, "{cidrs:?}");
        }
    }
}
