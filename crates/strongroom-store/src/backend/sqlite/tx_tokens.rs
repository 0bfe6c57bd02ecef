//! API token rows inside a SQLite transaction.

use async_trait::async_trait;
use rusqlite::params;

use super::super::db;
use super::SqliteTx;
use crate::backend::{TokenRecord, TokenTx};
use crate::{Result, StoreError, Timestamp};

#[async_trait]
impl TokenTx for SqliteTx<'_> {
    async fn count_live_tokens(
        &mut self,
        method: Option<&str>,
        creator: Option<&str>,
        now: Timestamp,
    ) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM api_tokens
                 WHERE revoked IS NULL AND (expires IS NULL OR expires > ?3)
                     AND (num_uses = 0 OR uses < num_uses)
                     AND (?1 IS NULL OR method = ?1) AND (?2 IS NULL OR creator = ?2)",
                params![method, creator, now],
                |r| r.get(0),
            )
            .map_err(db)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn insert_token(&mut self, token: &TokenRecord) -> Result<bool> {
        let scopes = serde_json::to_string(&token.scopes)
            .map_err(|_| StoreError::Defect("token scopes failed to serialise"))?;
        self.execute(
            "INSERT INTO api_tokens (id, name, secret_hash, superuser, scopes, created, tag,
                 expires, max_expires, ttl_ms, renewable, num_uses, uses, creator, method, parent, bound_cidrs)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17
             WHERE NOT EXISTS (SELECT 1 FROM api_tokens WHERE lower(name) = lower(?2))
             ON CONFLICT DO NOTHING",
            params![
                token.id,
                token.name,
                token.secret_hash,
                token.superuser,
                scopes,
                token.created,
                token.tag,
                token.expires,
                token.max_expires,
                token.ttl_ms,
                token.renewable,
                i64::from(token.num_uses),
                i64::from(token.uses),
                token.creator,
                token.method,
                token.parent,
                token.bound_cidrs.join(","),
            ],
        )
        .map(|n| n == 1)
    }

    async fn update_token(&mut self, expected: &TokenRecord, new: &TokenRecord) -> Result<bool> {
        self.execute(
            "UPDATE api_tokens SET revoked = ?5, expires = ?6, uses = ?7, tag = ?8
             WHERE id = ?1 AND revoked IS ?2 AND expires IS ?3 AND uses = ?4",
            params![
                expected.id,
                expected.revoked,
                expected.expires,
                i64::from(expected.uses),
                new.revoked,
                new.expires,
                i64::from(new.uses),
                new.tag,
            ],
        )
        .map(|n| n == 1)
    }
}
