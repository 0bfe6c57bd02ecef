//! API token rows inside a PostgreSQL transaction.

use super::*;

#[async_trait]
impl TokenTx for PgTx<'_> {
    async fn count_live_tokens(
        &mut self,
        method: Option<&str>,
        creator: Option<&str>,
        now: Timestamp,
    ) -> Result<u64> {
        let row = self
            .cached()
            .query_one(
                "SELECT count(*) FROM strongroom_api_tokens
                 WHERE revoked IS NULL AND (expires IS NULL OR expires > $3)
                     AND (num_uses = 0 OR uses < num_uses)
                     AND ($1::text IS NULL OR method = $1) AND ($2::text IS NULL OR creator = $2)",
                &[&method, &creator, &now],
            )
            .await
            .map_err(db)?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    async fn insert_token(&mut self, token: &TokenRecord) -> Result<bool> {
        let scopes = serde_json::to_string(&token.scopes).map_err(db)?;
        let inserted = self
            .cached()
            .execute(
                "INSERT INTO strongroom_api_tokens (id, name, secret_hash, superuser, scopes, created, tag,
                     expires, max_expires, ttl_ms, renewable, num_uses, uses, creator, method, parent, bound_cidrs)
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17
                 WHERE NOT EXISTS
                     (SELECT 1 FROM strongroom_api_tokens WHERE lower(name) = lower($2))
                 ON CONFLICT DO NOTHING",
                &[
                    &token.id,
                    &token.name,
                    &token.secret_hash,
                    &token.superuser,
                    &scopes,
                    &token.created,
                    &token.tag,
                    &token.expires,
                    &token.max_expires,
                    &token.ttl_ms,
                    &token.renewable,
                    &i64::from(token.num_uses),
                    &i64::from(token.uses),
                    &token.creator,
                    &token.method,
                    &token.parent,
                    &token.bound_cidrs.join(","),
                ],
            )
            .await
            .map_err(db)?;
        Ok(inserted == 1)
    }

    async fn update_token(&mut self, expected: &TokenRecord, new: &TokenRecord) -> Result<bool> {
        let n = self
            .cached()
            .execute(
                "UPDATE strongroom_api_tokens SET revoked = $5, expires = $6, uses = $7, tag = $8
                 WHERE id = $1 AND revoked IS NOT DISTINCT FROM $2
                     AND expires IS NOT DISTINCT FROM $3 AND uses = $4",
                &[
                    &expected.id,
                    &expected.revoked,
                    &expected.expires,
                    &i64::from(expected.uses),
                    &new.revoked,
                    &new.expires,
                    &i64::from(new.uses),
                    &new.tag,
                ],
            )
            .await
            .map_err(db)?;
        Ok(n == 1)
    }
}
