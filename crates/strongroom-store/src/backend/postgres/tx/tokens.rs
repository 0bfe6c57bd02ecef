//! API token rows inside a PostgreSQL transaction.

use super::*;

#[async_trait]
impl TokenTx for PgTx<'_> {
    async fn insert_token(&mut self, token: &TokenRecord) -> Result<bool> {
        let scopes = serde_json::to_string(&token.scopes).map_err(db)?;
        let inserted = self
            .cached()
            .execute(
                "INSERT INTO strongroom_api_tokens (id, name, secret_hash, superuser, scopes, created, tag)
                 SELECT $1, $2, $3, $4, $5, $6, $7
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
                ],
            )
            .await
            .map_err(db)?;
        Ok(inserted == 1)
    }

    async fn update_token(
        &mut self,
        id: &str,
        expected: Option<Timestamp>,
        revoked: Option<Timestamp>,
        tag: &[u8],
    ) -> Result<bool> {
        let n = self
            .cached()
            .execute(
                "UPDATE strongroom_api_tokens SET revoked = $3, tag = $4
                 WHERE id = $1 AND revoked IS NOT DISTINCT FROM $2",
                &[&id, &expected, &revoked, &tag],
            )
            .await
            .map_err(db)?;
        Ok(n == 1)
    }
}
