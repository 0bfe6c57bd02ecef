//! Row reads on a pooled connection, and the row mappings the transactions share.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::cached::Cached;
use super::db;
use crate::backend::rows::u32_of;
use crate::backend::sql::{self, Query, SqlValue, EVENT_COLUMNS, INFO_COLUMNS};
use crate::backend::{
    History, KekUsage, KeptValue, LinkedEvent, ListFilter, ListPage, RecordedKey,
    RotationCandidate, SecretSettings, StoredInfo, StoredSecret, StoredValue, StoredVersion,
    TiePage, TokenRecord, VersionState, VersionTie,
};
use crate::{Action, AuditEvent, AuditQuery, Result, SecretId};

fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A query's values as driver parameters.
fn parameters(query: &Query) -> Vec<Box<dyn ToSql + Sync + Send>> {
    query
        .values
        .iter()
        .map(|value| -> Box<dyn ToSql + Sync + Send> {
            match value {
                SqlValue::Int(v) => Box::new(*v),
                SqlValue::Text(v) => Box::new(v.clone()),
            }
        })
        .collect()
}

fn refs(values: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    values
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// A secret's identity from three consecutive columns starting at `at`.
pub(super) fn id_at(r: &Row, at: usize) -> SecretId {
    SecretId::new(
        r.get::<_, String>(at),
        r.get::<_, String>(at + 1),
        r.get::<_, String>(at + 2),
    )
}

/// A sealed value from three consecutive columns starting at `at`.
pub(super) fn value_at(r: &Row, at: usize) -> StoredValue {
    StoredValue {
        value: r.get(at),
        value_hash: r.get(at + 1),
        kek_version: u32_of(r.get(at + 2)),
    }
}

/// Attributes from [`INFO_COLUMNS`].
pub(super) fn info_from_row(row: &Row) -> StoredInfo {
    StoredInfo {
        row_id: row.get(0),
        id: id_at(row, 1),
        version: u32_of(row.get(4)),
        kek_version: u32_of(row.get(5)),
        description: row.get(6),
        metadata: row.get(7),
        kind: row.get(8),
        expires_at: row.get(9),
        created: row.get(10),
        updated: row.get(11),
        state: VersionState {
            deleted_at: row.get(12),
            destroyed: row.get(13),
        },
    }
}

/// An audit event from [`EVENT_COLUMNS`].
fn audit_event_from_row(r: &Row) -> AuditEvent {
    AuditEvent {
        id: r.get(0),
        time: crate::model::Timestamp(r.get(1)),
        actor: r.get(2),
        action: Action::parse(r.get(3)).unwrap_or(Action::Read),
        namespace: r.get(4),
        env: r.get(5),
        key: r.get(6),
        version: r.get::<_, Option<i64>>(7).map(u32_of),
        kek_version: r.get::<_, Option<i64>>(8).map(u32_of),
    }
}

pub(super) async fn meta(c: &impl GenericClient, name: &str) -> Result<Option<String>> {
    let row = Cached::new(c)
        .query_opt(
            "SELECT value FROM strongroom_meta WHERE name = $1",
            &[&name],
        )
        .await
        .map_err(db)?;
    Ok(row.map(|r| r.get(0)))
}

pub(super) async fn recorded_keys(c: &impl GenericClient) -> Result<Vec<RecordedKey>> {
    let rows = Cached::new(c)
        .query(
            "SELECT kek_version, fingerprint FROM strongroom_key_fingerprints ORDER BY kek_version",
            &[],
        )
        .await
        .map_err(db)?;
    Ok(rows
        .iter()
        .map(|r| RecordedKey {
            version: u32_of(r.get(0)),
            fingerprint: r.get(1),
        })
        .collect())
}

pub(super) async fn kek_versions_in_use(c: &impl GenericClient) -> Result<Vec<u32>> {
    let rows = Cached::new(c)
        .query(
            // Only versions of a secret: since schema 13 no foreign key keeps a row written
            // by someone else from naming none, and such a row is never read.
            "SELECT DISTINCT v.kek_version FROM strongroom_secret_versions v
             WHERE v.destroyed = FALSE AND EXISTS (SELECT 1 FROM strongroom_secrets s WHERE s.sid = v.sid)
             ORDER BY v.kek_version",
            &[],
        )
        .await
        .map_err(db)?;
    Ok(rows.iter().map(|r| u32_of(r.get(0))).collect())
}

pub(super) async fn fetch(c: &impl GenericClient, id: &SecretId) -> Result<Option<StoredSecret>> {
    let row = Cached::new(c)
        .query_opt(
            &format!(
                "SELECT {INFO_COLUMNS}, v.value, v.value_hash
                 FROM strongroom_secrets s JOIN strongroom_secret_versions v ON v.sid = s.sid AND v.version = s.version
                 WHERE s.namespace = $1 AND s.env = $2 AND s.key = $3"
            ),
            &[&id.namespace, &id.env, &id.key],
        )
        .await
        .map_err(db)?;
    Ok(row.as_ref().map(stored_secret))
}

/// The current value of each of `ids`, in order: one statement for all of them (each name
/// found by its own index lookup: the `LIMIT` keeps the planner from turning the lookups
/// into one join over every secret).
pub(super) async fn fetch_many(
    c: &impl GenericClient,
    ids: &[SecretId],
) -> Result<Vec<Option<StoredSecret>>> {
    let namespaces: Vec<&str> = ids.iter().map(|id| id.namespace.as_str()).collect();
    let envs: Vec<&str> = ids.iter().map(|id| id.env.as_str()).collect();
    let keys: Vec<&str> = ids.iter().map(|id| id.key.as_str()).collect();
    let rows = Cached::new(c)
        .query(
            &format!(
                "SELECT found.*, wanted.place
                 FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[]) WITH ORDINALITY
                      AS wanted (namespace, env, key, place)
                 CROSS JOIN LATERAL (
                     SELECT {INFO_COLUMNS}, v.value, v.value_hash
                     FROM strongroom_secrets s
                     JOIN strongroom_secret_versions v ON v.sid = s.sid AND v.version = s.version
                     WHERE s.namespace = wanted.namespace AND s.env = wanted.env AND s.key = wanted.key
                     LIMIT 1) AS found"
            ),
            &[&namespaces, &envs, &keys],
        )
        .await
        .map_err(db)?;
    by_place(ids.len(), &rows, stored_secret)
}

/// The answers of a batched read, each row put back at its `place` (1-based, as `WITH
/// ORDINALITY` numbers them); `None` where no row came back. A place out of range is a
/// defect, never another asker's slot.
fn by_place<T>(asked: usize, rows: &[Row], of: impl Fn(&Row) -> T) -> Result<Vec<Option<T>>> {
    let mut answers: Vec<Option<T>> = (0..asked).map(|_| None).collect();
    for row in rows {
        let place: i64 = row.get("place");
        let slot = usize::try_from(place - 1)
            .ok()
            .and_then(|at| answers.get_mut(at))
            .ok_or(crate::StoreError::Defect(
                "a batched read answered a place it was not asked",
            ))?;
        *slot = Some(of(row));
    }
    Ok(answers)
}

/// A [`StoredSecret`] from [`INFO_COLUMNS`] and the value and its hash after them.
fn stored_secret(row: &Row) -> StoredSecret {
    let info = info_from_row(row);
    let kek_version = info.kek_version;
    StoredSecret {
        info,
        value: StoredValue {
            value: row.get(14),
            value_hash: row.get(15),
            kek_version,
        },
    }
}

pub(super) async fn fetch_version(
    c: &impl GenericClient,
    id: &SecretId,
    version: u32,
) -> Result<Option<KeptValue>> {
    let row = Cached::new(c)
        .query_opt(
            "SELECT v.value, v.value_hash, v.kek_version, v.deleted_at, v.destroyed
             FROM strongroom_secrets s JOIN strongroom_secret_versions v ON v.sid = s.sid
             WHERE s.namespace = $1 AND s.env = $2 AND s.key = $3 AND v.version = $4",
            &[&id.namespace, &id.env, &id.key, &i64::from(version)],
        )
        .await
        .map_err(db)?;
    Ok(row.map(|r| KeptValue {
        value: value_at(&r, 0),
        state: VersionState {
            deleted_at: r.get(3),
            destroyed: r.get(4),
        },
    }))
}

pub(super) async fn settings(
    c: &impl GenericClient,
    id: &SecretId,
) -> Result<Option<SecretSettings>> {
    let row = Cached::new(c)
        .query_opt(
            "SELECT t.max_versions, coalesce(t.cas_required, FALSE)
             FROM strongroom_secrets s LEFT JOIN strongroom_secret_settings t ON t.sid = s.sid
             WHERE s.namespace = $1 AND s.env = $2 AND s.key = $3",
            &[&id.namespace, &id.env, &id.key],
        )
        .await
        .map_err(db)?;
    Ok(row.map(|r| SecretSettings {
        max_versions: r.get::<_, Option<i64>>(0).map(u32_of),
        cas_required: r.get(1),
    }))
}

pub(super) async fn history(c: &impl GenericClient, id: &SecretId) -> Result<Option<History>> {
    let Some(secret) = Cached::new(c)
        .query_opt(
            "SELECT sid, version FROM strongroom_secrets WHERE namespace = $1 AND env = $2 AND key = $3",
            &[&id.namespace, &id.env, &id.key],
        )
        .await
        .map_err(db)?
    else {
        return Ok(None);
    };
    let (sid, current): (i64, i64) = (secret.get(0), secret.get(1));
    let rows = Cached::new(c)
        .query(
            "SELECT version, kek_version, created, actor, deleted_at, destroyed
             FROM strongroom_secret_versions WHERE sid = $1 ORDER BY version DESC",
            &[&sid],
        )
        .await
        .map_err(db)?;
    let versions = rows
        .iter()
        .map(|r| StoredVersion {
            version: u32_of(r.get(0)),
            kek_version: u32_of(r.get(1)),
            created: r.get(2),
            actor: r.get(3),
            state: VersionState {
                deleted_at: r.get(4),
                destroyed: r.get(5),
            },
        })
        .collect();
    Ok(Some(History {
        current: u32_of(current),
        versions,
    }))
}

pub(super) async fn list(c: &impl GenericClient, filter: &ListFilter) -> Result<ListPage> {
    let (count, page) = sql::list(sql::POSTGRES, filter);
    let count_values = parameters(&count);
    let total: i64 = Cached::new(c)
        .query_one(&count.sql, &refs(&count_values))
        .await
        .map_err(db)?
        .get(0);
    let page_values = parameters(&page);
    let rows = c.query(&page.sql, &refs(&page_values)).await.map_err(db)?;
    Ok(ListPage {
        rows: rows.iter().map(info_from_row).collect(),
        total: u64::try_from(total).unwrap_or(0),
    })
}

pub(super) async fn audit_events(
    c: &impl GenericClient,
    query: &AuditQuery,
    limit: usize,
) -> Result<Vec<AuditEvent>> {
    let query = sql::audit_events(sql::POSTGRES, query, limit);
    let values = parameters(&query);
    let rows = c.query(&query.sql, &refs(&values)).await.map_err(db)?;
    Ok(rows.iter().map(audit_event_from_row).collect())
}

pub(super) async fn rotation_candidates(
    c: &impl GenericClient,
    target: u32,
    from: Option<u32>,
    after: i64,
    limit: usize,
) -> Result<Vec<RotationCandidate>> {
    let rows = Cached::new(c)
        .query(
            "SELECT v.vid, s.namespace, s.env, s.key, v.version, v.value, v.value_hash, v.kek_version, s.row_id
             FROM strongroom_secret_versions v JOIN strongroom_secrets s ON s.sid = v.sid
             WHERE v.kek_version != $1 AND ($2::BIGINT IS NULL OR v.kek_version = $2) AND v.vid > $3
               AND v.destroyed = FALSE
             ORDER BY v.vid LIMIT $4",
            &[&i64::from(target), &from.map(i64::from), &after, &limit_of(limit)],
        )
        .await
        .map_err(db)?;
    Ok(rows
        .iter()
        .map(|r| RotationCandidate {
            position: r.get(0),
            id: id_at(r, 1),
            row_id: r.get(8),
            version: u32_of(r.get(4)),
            value: value_at(r, 5),
        })
        .collect())
}

pub(super) async fn count_rotation_candidates(
    c: &impl GenericClient,
    target: u32,
    from: Option<u32>,
) -> Result<u64> {
    let n: i64 = Cached::new(c)
        .query_one(
            "SELECT count(*) FROM strongroom_secret_versions v JOIN strongroom_secrets s ON s.sid = v.sid
             WHERE v.kek_version != $1 AND ($2::BIGINT IS NULL OR v.kek_version = $2) AND v.destroyed = FALSE",
            &[&i64::from(target), &from.map(i64::from)],
        )
        .await
        .map_err(db)?
        .get(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(super) async fn rotation_status(c: &impl GenericClient) -> Result<Vec<KekUsage>> {
    let rows = Cached::new(c)
        .query(
            "SELECT v.kek_version,
                    count(*) FILTER (WHERE v.version = s.version),
                    count(*) FILTER (WHERE v.version != s.version)
             FROM strongroom_secret_versions v JOIN strongroom_secrets s ON s.sid = v.sid
             WHERE v.destroyed = FALSE
             GROUP BY v.kek_version ORDER BY v.kek_version",
            &[],
        )
        .await
        .map_err(db)?;
    Ok(rows
        .iter()
        .map(|r| KekUsage {
            kek_version: u32_of(r.get(0)),
            current: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
            history: u64::try_from(r.get::<_, i64>(2)).unwrap_or(0),
        })
        .collect())
}

pub(super) async fn audit_links(
    c: &impl GenericClient,
    after: i64,
    limit: usize,
) -> Result<Vec<LinkedEvent>> {
    let rows = Cached::new(c)
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS}, link FROM strongroom_audit_events WHERE id > $1 ORDER BY id LIMIT $2"
            ),
            &[&after, &limit_of(limit)],
        )
        .await
        .map_err(db)?;
    Ok(rows
        .iter()
        .map(|r| LinkedEvent {
            event: audit_event_from_row(r),
            link: r.get(9),
        })
        .collect())
}

pub(super) async fn audit_event_at(
    c: &impl GenericClient,
    seq: i64,
) -> Result<Option<LinkedEvent>> {
    Ok(c.query_opt(
        &format!("SELECT {EVENT_COLUMNS}, link FROM strongroom_audit_events WHERE id = $1"),
        &[&seq],
    )
    .await
    .map_err(db)?
    .map(|r| LinkedEvent {
        event: audit_event_from_row(&r),
        link: r.get(9),
    }))
}

pub(super) async fn version_ties(
    c: &impl GenericClient,
    after: i64,
    limit: usize,
) -> Result<TiePage> {
    let rows = Cached::new(c)
        .query(
            "SELECT v.vid, s.row_id, s.namespace, s.env, s.key, v.version, v.audit_seq, v.audit_tag
             FROM strongroom_secret_versions v JOIN strongroom_secrets s ON s.sid = v.sid
             WHERE v.vid > $1 ORDER BY v.vid LIMIT $2",
            &[&after, &limit_of(limit)],
        )
        .await
        .map_err(db)?;
    let last = rows.last().map_or(after, |r| r.get(0));
    let ties = rows
        .iter()
        .map(|r| VersionTie {
            position: r.get(0),
            row_id: r.get(1),
            id: id_at(r, 2),
            version: u32_of(r.get(5)),
            audit_seq: r.get(6),
            audit_tag: r.get(7),
        })
        .collect();
    Ok(TiePage {
        ties,
        last_position: last,
    })
}

const TOKEN_COLUMNS: &str = "id, name, secret_hash, superuser, scopes, created, revoked, tag, \
    expires, max_expires, ttl_ms, renewable, num_uses, uses, creator, method, parent, bound_cidrs";

fn token_from_row(row: &Row) -> TokenRecord {
    let scopes: String = row.get(4);
    TokenRecord {
        id: row.get(0),
        name: row.get(1),
        secret_hash: row.get(2),
        superuser: row.get(3),
        scopes: serde_json::from_str(&scopes).unwrap_or_default(),
        created: row.get(5),
        revoked: row.get(6),
        tag: row.get(7),
        expires: row.get(8),
        max_expires: row.get(9),
        ttl_ms: row.get(10),
        renewable: row.get(11),
        num_uses: u32_of(row.get(12)),
        uses: u32_of(row.get(13)),
        creator: row.get(14),
        method: row.get(15),
        parent: row.get(16),
        bound_cidrs: super::super::rows::split_cidrs(&row.get::<_, String>(17)),
    }
}

pub(super) async fn token_by_id(c: &impl GenericClient, id: &str) -> Result<Option<TokenRecord>> {
    let row = Cached::new(c)
        .query_opt(
            &format!("SELECT {TOKEN_COLUMNS} FROM strongroom_api_tokens WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(db)?;
    Ok(row.as_ref().map(token_from_row))
}

/// The row of each of `ids`, in order: one statement for all of them.
pub(super) async fn tokens_by_ids(
    c: &impl GenericClient,
    ids: &[String],
) -> Result<Vec<Option<TokenRecord>>> {
    let rows = Cached::new(c)
        .query(
            &format!(
                "SELECT found.*, wanted.place
                 FROM UNNEST($1::TEXT[]) WITH ORDINALITY AS wanted (id, place)
                 CROSS JOIN LATERAL (
                     SELECT {TOKEN_COLUMNS} FROM strongroom_api_tokens t WHERE t.id = wanted.id
                 ) AS found"
            ),
            &[&ids],
        )
        .await
        .map_err(db)?;
    by_place(ids.len(), &rows, token_from_row)
}

pub(super) async fn tokens(c: &impl GenericClient) -> Result<Vec<TokenRecord>> {
    let rows = Cached::new(c)
        .query(
            &format!("SELECT {TOKEN_COLUMNS} FROM strongroom_api_tokens ORDER BY created, name"),
            &[],
        )
        .await
        .map_err(db)?;
    Ok(rows.iter().map(token_from_row).collect())
}
