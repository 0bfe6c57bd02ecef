//! Tokens over their lifetime: looked up and renewed by the token itself or by accessor,
//! revoked with every token made under them, a use spent at a time.

use super::{accessor_of, info_of, ms_of, record, Principal, TokenInfo, Tokens};
use crate::backend::TokenRecord;
use crate::model::{now_ms, Timestamp};
use crate::{Result, Store, StoreError};

impl Tokens {
    /// The token `principal` authenticated as (`None` for the bootstrap admin token).
    ///
    /// # Errors
    /// When the database can not be read.
    pub async fn lookup_self(&self, principal: &Principal) -> Result<Option<TokenInfo>> {
        let Some(id) = &principal.id else {
            return Ok(None);
        };
        Ok(self.backend.token_by_id(id).await?.map(|r| self.info(r)))
    }

    /// The token with `accessor`, as `by` may see it: a superuser sees any, another token
    /// itself and those made under it. `None` for any other (no difference between "no such
    /// token" and "not yours").
    ///
    /// # Errors
    /// When the database can not be read.
    pub async fn lookup_accessor(
        &self,
        accessor: &str,
        by: &Principal,
    ) -> Result<Option<TokenInfo>> {
        Ok(self
            .record_by_accessor(accessor, by)
            .await?
            .map(|r| self.info(r)))
    }

    async fn record_by_accessor(
        &self,
        accessor: &str,
        by: &Principal,
    ) -> Result<Option<TokenRecord>> {
        let found = self
            .backend
            .tokens()
            .await?
            .into_iter()
            .find(|r| accessor_of(&r.id) == accessor);
        Ok(found.filter(|r| {
            by.superuser
                || by
                    .id
                    .as_ref()
                    .is_some_and(|id| *id == r.id || r.parent.as_ref() == Some(id))
        }))
    }

    /// Renews the token `principal` authenticated as: its expiry becomes now plus
    /// `increment` (else its own ttl), never past its max; audited as `token_renew`.
    /// Returns it as renewed.
    ///
    /// # Errors
    /// Not renewable (nothing moves), the bootstrap admin token, a concurrent change, no
    /// keys.
    pub async fn renew_self(
        &self,
        principal: &Principal,
        increment: Option<std::time::Duration>,
    ) -> Result<TokenInfo> {
        let record = match &principal.id {
            Some(id) => self.backend.token_by_id(id).await?,
            None => None,
        }
        .ok_or_else(|| {
            StoreError::InvalidInput(
                "this token has no row to renew (the bootstrap admin token)".into(),
            )
        })?;
        self.renew_record(record, increment).await
    }

    /// Renews the token with `accessor`, as `by` may (see [`Tokens::lookup_accessor`]).
    ///
    /// # Errors
    /// As [`Tokens::renew_self`]; [`StoreError::TokenNotFound`] when `by` may not see it.
    pub async fn renew_accessor(
        &self,
        accessor: &str,
        by: &Principal,
        increment: Option<std::time::Duration>,
    ) -> Result<TokenInfo> {
        let record = self
            .record_by_accessor(accessor, by)
            .await?
            .ok_or_else(|| StoreError::TokenNotFound {
                name: accessor.to_owned(),
            })?;
        self.renew_record(record, increment).await
    }

    async fn renew_record(
        &self,
        record: TokenRecord,
        increment: Option<std::time::Duration>,
    ) -> Result<TokenInfo> {
        let store = self.keyed()?;
        let now = now_ms();
        let info = self.info(record.clone());
        if !info.usable_at(Timestamp(now)) || !info.intact {
            return Err(StoreError::TokenNotFound { name: record.name });
        }
        if !record.renewable {
            return Err(StoreError::InvalidInput(
                "this token is not renewable; nothing was changed".into(),
            ));
        }
        let period = match increment {
            Some(increment) => ms_of(increment)?,
            None => record.ttl_ms,
        };
        let mut expires = Timestamp(now.saturating_add(period));
        if let Some(max) = record.max_expires {
            expires = expires.min(max);
        }
        let renewed = TokenRecord {
            expires: Some(expires),
            ..record.clone()
        };
        if !store
            .rewrite_token_rows(
                vec![(record, renewed.clone())],
                Some(crate::Action::TokenRenew),
            )
            .await?
        {
            return Err(StoreError::conflict(
                crate::ConflictKind::ChangedMeanwhile,
                "the token changed meanwhile; nothing was renewed, try again",
            ));
        }
        Ok(info_of(renewed, true))
    }

    /// Revokes the active token named `name` (an exact match first, else the one name
    /// equal to it ignoring ASCII case), and every token made under it; they stop working
    /// at once. Audited, one `token_revoke` each.
    ///
    /// # Errors
    /// [`StoreError::TokenNotFound`] when no active token has that name; no keys.
    pub async fn revoke(&self, name: &str) -> Result<()> {
        let all = self.backend.tokens().await?;
        let active: Vec<&TokenRecord> = all
            .iter()
            .filter(|t| t.revoked.is_none() && t.name.eq_ignore_ascii_case(name))
            .collect();
        let target = match active.iter().position(|t| t.name == name) {
            Some(exact) => Some(active[exact].clone()),
            None if active.len() == 1 => Some(active[0].clone()),
            None => None,
        };
        let revoked = match target {
            Some(record) => self.revoke_with_children(record, &all).await?,
            None => false,
        };
        if revoked {
            Ok(())
        } else {
            Err(StoreError::TokenNotFound {
                name: name.to_owned(),
            })
        }
    }

    /// Revokes the token with `accessor` and the tokens made under it, as `by` may (a
    /// superuser any; another token those made under it).
    ///
    /// # Errors
    /// [`StoreError::TokenNotFound`] when there is none `by` may see, or it is revoked.
    pub async fn revoke_accessor(&self, accessor: &str, by: &Principal) -> Result<()> {
        let all = self.backend.tokens().await?;
        let revoked = match self.record_by_accessor(accessor, by).await? {
            Some(record) if record.revoked.is_none() => {
                self.revoke_with_children(record, &all).await?
            }
            _ => false,
        };
        if revoked {
            Ok(())
        } else {
            Err(StoreError::TokenNotFound {
                name: accessor.to_owned(),
            })
        }
    }

    /// Revokes every active token issued by the auth method at `method` (the method was
    /// disabled), with the tokens made under them. Returns how many it revoked.
    ///
    /// # Errors
    /// No keys; the database failing.
    pub async fn revoke_issued_by(&self, method: &str) -> Result<usize> {
        let mut revoked = 0;
        // One token (and its descendants) at a time, on a fresh read each time: a
        // descendant revoked with an earlier one is not revoked twice.
        for _ in 0..100_000 {
            let all = self.backend.tokens().await?;
            let Some(record) = all
                .iter()
                .find(|r| r.method == method && r.revoked.is_none())
                .cloned()
            else {
                break;
            };
            if self.revoke_with_children(record, &all).await? {
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// Revokes the token `principal` authenticated as, and the tokens made under it.
    ///
    /// # Errors
    /// [`StoreError::TokenNotFound`] for the bootstrap admin token (no row) or a token
    /// revoked meanwhile; no keys.
    pub async fn revoke_self(&self, principal: &Principal) -> Result<()> {
        let all = self.backend.tokens().await?;
        let record = all
            .iter()
            .find(|r| Some(&r.id) == principal.id.as_ref() && r.revoked.is_none())
            .cloned();
        let revoked = match record {
            Some(record) => self.revoke_with_children(record, &all).await?,
            None => false,
        };
        if revoked {
            Ok(())
        } else {
            Err(StoreError::TokenNotFound {
                name: principal.name.clone(),
            })
        }
    }

    /// Revokes `record` and every active token made under it (at any depth), in one
    /// transaction; false when one changed meanwhile (nothing is revoked then).
    async fn revoke_with_children(&self, record: TokenRecord, all: &[TokenRecord]) -> Result<bool> {
        let store = self.keyed()?;
        let now = Some(Timestamp(now_ms()));
        let mut doomed = vec![record];
        let mut next = 0;
        while next < doomed.len() {
            let id = doomed[next].id.clone();
            let children: Vec<TokenRecord> = all
                .iter()
                .filter(|r| r.parent.as_deref() == Some(id.as_str()) && r.revoked.is_none())
                .filter(|r| !doomed.iter().any(|d| d.id == r.id))
                .cloned()
                .collect();
            doomed.extend(children);
            next += 1;
        }
        let rows = doomed
            .into_iter()
            .map(|old| {
                let new = TokenRecord {
                    revoked: now,
                    ..old.clone()
                };
                (old, new)
            })
            .collect();
        store
            .rewrite_token_rows(rows, Some(crate::Action::TokenRevoke))
            .await
    }

    /// Counts one use of a limited token (a compare-and-swap on its use count, so two
    /// requests racing for its last use do not both get it); false when none is left.
    pub(super) async fn spend_use(&self, store: &Store, mut record: TokenRecord) -> Result<bool> {
        for _ in 0..3 {
            if record.uses >= record.num_uses || record.revoked.is_some() {
                return Ok(false);
            }
            let spent = TokenRecord {
                uses: record.uses + 1,
                ..record.clone()
            };
            if store
                .rewrite_token_rows(vec![(record.clone(), spent)], None)
                .await?
            {
                return Ok(true);
            }
            // Changed meanwhile (another use, a renewal): read it again.
            match self.backend.token_by_id(&record.id).await? {
                Some(fresh) if store.token_row_check(&fresh) == record::RowCheck::Intact => {
                    record = fresh;
                }
                _ => return Ok(false),
            }
        }
        Ok(false)
    }
}
