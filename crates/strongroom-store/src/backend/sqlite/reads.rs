//! Row reads on a reader connection, and the row mappings the writer shares.

use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::{params, Connection, OptionalExtension};

use super::db;
use crate::backend::rows::u32_of;
use crate::backend::sql::{self, SqlValue};
use crate::backend::{
    History, KekUsage, KeptValue, LinkedEvent, ListFilter, ListPage, RecordedKey,
    RotationCandidate, SecretSettings, StoredInfo, StoredSecret, StoredValue, StoredVersion,
    TiePage, TokenRecord, VersionState, VersionTie,
};
use crate::{Action, AuditEvent, AuditQuery, Result, SecretId};

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Self::Int(v) => ToSqlOutput::Owned(Value::Integer(*v)),
            Self::Text(v) => ToSqlOutput::Borrowed(v.as_str().into()),
        })
    }
}

fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A secret's identity from three consecutive columns starting at `at`.
pub(super) fn id_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<SecretId> {
    Ok(SecretId::new(
        r.get::<_, String>(at)?,
        r.get::<_, String>(at + 1)?,
        r.get::<_, String>(at + 2)?,
    ))
}

/// An audit event from [`sql::EVENT_COLUMNS`].
pub(super) fn audit_event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEvent> {
    let action: String = r.get(3)?;
    Ok(AuditEvent {
        id: r.get(0)?,
        time: crate::model::Timestamp(r.get(1)?),
        actor: r.get(2)?,
        action: Action::parse(&action).unwrap_or(Action::Read),
        namespace: r.get(4)?,
        env: r.get(5)?,
        key: r.get(6)?,
        version: r.get::<_, Option<i64>>(7)?.map(u32_of),
        kek_version: r.get::<_, Option<i64>>(8)?.map(u32_of),
    })
}

/// Attributes from [`INFO_COLUMNS`](crate::backend::sql::INFO_COLUMNS).
pub(super) fn info_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredInfo> {
    info_with(row, id_at(row, 1)?, 4)
}

/// Attributes of `id`: the row id in column 0, and the columns that follow the identity
/// in [`INFO_COLUMNS`](crate::backend::sql::INFO_COLUMNS) (`s.version` to `v.destroyed`)
/// starting at `at`.
fn info_with(row: &rusqlite::Row<'_>, id: SecretId, at: usize) -> rusqlite::Result<StoredInfo> {
    Ok(StoredInfo {
        row_id: row.get(0)?,
        id,
        version: u32_of(row.get(at)?),
        kek_version: u32_of(row.get(at + 1)?),
        description: row.get(at + 2)?,
        metadata: row.get(at + 3)?,
        kind: row.get(at + 4)?,
        expires_at: row.get(at + 5)?,
        created: row.get(at + 6)?,
        updated: row.get(at + 7)?,
        state: VersionState {
            deleted_at: row.get(at + 8)?,
            destroyed: row.get(at + 9)?,
        },
    })
}

/// A sealed value from three consecutive columns starting at `at`.
pub(super) fn value_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<StoredValue> {
    Ok(StoredValue {
        value: r.get(at)?,
        value_hash: r.get(at + 1)?,
        kek_version: u32_of(r.get(at + 2)?),
    })
}

fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<T>>) -> Result<Vec<T>> {
    rows.collect::<rusqlite::Result<_>>().map_err(db)
}

pub(super) fn meta(c: &Connection, name: &str) -> Result<Option<String>> {
    c.prepare_cached("SELECT value FROM meta WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
        .map_err(db)
}

pub(super) fn recorded_keys(c: &Connection) -> Result<Vec<RecordedKey>> {
    let mut stmt = c
        .prepare("SELECT kek_version, fingerprint FROM key_fingerprints ORDER BY kek_version")
        .map_err(db)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(RecordedKey {
                version: u32_of(r.get(0)?),
                fingerprint: r.get(1)?,
            })
        })
        .map_err(db)?;
    collect(rows)
}

pub(super) fn kek_versions_in_use(c: &Connection) -> Result<Vec<u32>> {
    let mut stmt = c
        .prepare("SELECT DISTINCT kek_version FROM secret_versions WHERE destroyed = FALSE ORDER BY kek_version")
        .map_err(db)?;
    let rows = stmt.query_map([], |r| Ok(u32_of(r.get(0)?))).map_err(db)?;
    collect(rows)
}

/// The current version of a secret: the row id, the attributes in the order of
/// [`INFO_COLUMNS`](crate::backend::sql::INFO_COLUMNS) without the identity (the caller
/// has it, so it is not read back), then the value.
const FETCH: &str = "SELECT s.row_id, s.version, v.kek_version, s.description, s.metadata, s.kind,
        s.expires_at, s.created, s.updated, v.deleted_at, v.destroyed, v.value, v.value_hash
     FROM secrets s JOIN secret_versions v ON v.sid = s.sid AND v.version = s.version
     WHERE s.namespace = ?1 AND s.env = ?2 AND s.key = ?3";

pub(super) fn fetch(c: &Connection, id: &SecretId) -> Result<Option<StoredSecret>> {
    let mut stmt = c.prepare_cached(FETCH).map_err(db)?;
    stmt.query_row(params![id.namespace, id.env, id.key], |row| {
        let info = info_with(row, id.clone(), 1)?;
        let kek_version = info.kek_version;
        Ok(StoredSecret {
            info,
            value: StoredValue {
                value: row.get(11)?,
                value_hash: row.get(12)?,
                kek_version,
            },
        })
    })
    .optional()
    .map_err(db)
}

pub(super) fn fetch_version(
    c: &Connection,
    id: &SecretId,
    version: u32,
) -> Result<Option<KeptValue>> {
    c.prepare_cached(
        "SELECT v.value, v.value_hash, v.kek_version, v.deleted_at, v.destroyed
         FROM secrets s JOIN secret_versions v ON v.sid = s.sid
         WHERE s.namespace = ?1 AND s.env = ?2 AND s.key = ?3 AND v.version = ?4",
    )
    .and_then(|mut s| {
        s.query_row(params![id.namespace, id.env, id.key, version], |r| {
            Ok(KeptValue {
                value: value_at(r, 0)?,
                state: VersionState {
                    deleted_at: r.get(3)?,
                    destroyed: r.get(4)?,
                },
            })
        })
        .optional()
    })
    .map_err(db)
}

pub(super) fn settings(c: &Connection, id: &SecretId) -> Result<Option<SecretSettings>> {
    c.prepare_cached(
        "SELECT t.max_versions, coalesce(t.cas_required, FALSE)
         FROM secrets s LEFT JOIN secret_settings t ON t.sid = s.sid
         WHERE s.namespace = ?1 AND s.env = ?2 AND s.key = ?3",
    )
    .and_then(|mut s| {
        s.query_row(params![id.namespace, id.env, id.key], |r| {
            Ok(SecretSettings {
                max_versions: r.get::<_, Option<i64>>(0)?.map(u32_of),
                cas_required: r.get(1)?,
            })
        })
        .optional()
    })
    .map_err(db)
}

pub(super) fn history(c: &Connection, id: &SecretId) -> Result<Option<History>> {
    let current: Option<(i64, i64)> = c
        .prepare_cached(
            "SELECT sid, version FROM secrets WHERE namespace = ?1 AND env = ?2 AND key = ?3",
        )
        .and_then(|mut s| {
            s.query_row(params![id.namespace, id.env, id.key], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
        })
        .map_err(db)?;
    let Some((sid, current)) = current else {
        return Ok(None);
    };
    let mut stmt = c
        .prepare_cached(
            "SELECT version, kek_version, created, actor, deleted_at, destroyed FROM secret_versions
             WHERE sid = ?1 ORDER BY version DESC",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map([sid], |r| {
            Ok(StoredVersion {
                version: u32_of(r.get(0)?),
                kek_version: u32_of(r.get(1)?),
                created: r.get(2)?,
                actor: r.get(3)?,
                state: VersionState {
                    deleted_at: r.get(4)?,
                    destroyed: r.get(5)?,
                },
            })
        })
        .map_err(db)?;
    Ok(Some(History {
        current: u32_of(current),
        versions: collect(rows)?,
    }))
}

pub(super) fn list(c: &Connection, filter: &ListFilter) -> Result<ListPage> {
    let (count, page) = sql::list(sql::SQLITE, filter);
    let total: i64 = c
        .query_row(&count.sql, rusqlite::params_from_iter(&count.values), |r| {
            r.get(0)
        })
        .map_err(db)?;
    let mut stmt = c.prepare(&page.sql).map_err(db)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(&page.values), info_from_row)
        .map_err(db)?;
    Ok(ListPage {
        rows: collect(rows)?,
        total: u64::try_from(total).unwrap_or(0),
    })
}

pub(super) fn audit_events(
    c: &Connection,
    query: &AuditQuery,
    limit: usize,
) -> Result<Vec<AuditEvent>> {
    let query = sql::audit_events(sql::SQLITE, query, limit);
    let mut stmt = c.prepare(&query.sql).map_err(db)?;
    let rows = stmt
        .query_map(
            rusqlite::params_from_iter(&query.values),
            audit_event_from_row,
        )
        .map_err(db)?;
    collect(rows)
}

pub(super) fn rotation_candidates(
    c: &Connection,
    target: u32,
    from: Option<u32>,
    after: i64,
    limit: usize,
) -> Result<Vec<RotationCandidate>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT v.vid, s.namespace, s.env, s.key, v.version, v.value, v.value_hash, v.kek_version, s.row_id
             FROM secret_versions v JOIN secrets s ON s.sid = v.sid
             WHERE v.kek_version != ?1 AND (?2 IS NULL OR v.kek_version = ?2) AND v.vid > ?3
               AND v.destroyed = FALSE
             ORDER BY v.vid LIMIT ?4",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map(params![target, from, after, limit_of(limit)], |r| {
            Ok(RotationCandidate {
                position: r.get(0)?,
                id: id_at(r, 1)?,
                row_id: r.get(8)?,
                version: u32_of(r.get(4)?),
                value: value_at(r, 5)?,
            })
        })
        .map_err(db)?;
    collect(rows)
}

pub(super) fn count_rotation_candidates(
    c: &Connection,
    target: u32,
    from: Option<u32>,
) -> Result<u64> {
    let n: i64 = c
        .query_row(
            "SELECT count(*) FROM secret_versions WHERE kek_version != ?1 AND (?2 IS NULL OR kek_version = ?2) AND destroyed = FALSE",
            params![target, from],
            |r| r.get(0),
        )
        .map_err(db)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(super) fn rotation_status(c: &Connection) -> Result<Vec<KekUsage>> {
    let mut stmt = c
        .prepare(
            "SELECT v.kek_version,
                    sum(CASE WHEN v.version = s.version THEN 1 ELSE 0 END),
                    sum(CASE WHEN v.version = s.version THEN 0 ELSE 1 END)
             FROM secret_versions v JOIN secrets s ON s.sid = v.sid
             WHERE v.destroyed = FALSE
             GROUP BY v.kek_version ORDER BY v.kek_version",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(KekUsage {
                kek_version: u32_of(r.get(0)?),
                current: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                history: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            })
        })
        .map_err(db)?;
    collect(rows)
}

pub(super) fn audit_links(c: &Connection, after: i64, limit: usize) -> Result<Vec<LinkedEvent>> {
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {}, link FROM audit_events WHERE id > ?1 ORDER BY id LIMIT ?2",
            sql::EVENT_COLUMNS
        ))
        .map_err(db)?;
    let rows = stmt
        .query_map(params![after, limit_of(limit)], |r| {
            Ok(LinkedEvent {
                event: audit_event_from_row(r)?,
                link: r.get(9)?,
            })
        })
        .map_err(db)?;
    collect(rows)
}

pub(super) fn audit_event_at(c: &Connection, seq: i64) -> Result<Option<LinkedEvent>> {
    c.prepare_cached(&format!(
        "SELECT {}, link FROM audit_events WHERE id = ?1",
        sql::EVENT_COLUMNS
    ))
    .and_then(|mut s| {
        s.query_row([seq], |r| {
            Ok(LinkedEvent {
                event: audit_event_from_row(r)?,
                link: r.get(9)?,
            })
        })
        .optional()
    })
    .map_err(db)
}

pub(super) fn version_ties(c: &Connection, after: i64, limit: usize) -> Result<TiePage> {
    let mut stmt = c
        .prepare_cached(
            "SELECT v.vid, s.row_id, s.namespace, s.env, s.key, v.version, v.audit_seq, v.audit_tag
             FROM secret_versions v JOIN secrets s ON s.sid = v.sid
             WHERE v.vid > ?1 ORDER BY v.vid LIMIT ?2",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map(params![after, limit_of(limit)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                VersionTie {
                    position: r.get(0)?,
                    row_id: r.get(1)?,
                    id: id_at(r, 2)?,
                    version: u32_of(r.get(5)?),
                    audit_seq: r.get(6)?,
                    audit_tag: r.get(7)?,
                },
            ))
        })
        .map_err(db)?;
    let rows = collect(rows)?;
    let last = rows.last().map_or(after, |(vid, _)| *vid);
    Ok(TiePage {
        ties: rows.into_iter().map(|(_, tie)| tie).collect(),
        last_position: last,
    })
}

const TOKEN_COLUMNS: &str = "id, name, secret_hash, superuser, scopes, created, revoked, tag, \
    expires, max_expires, ttl_ms, renewable, num_uses, uses, creator, method, parent, bound_cidrs";

fn token_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRecord> {
    let scopes: String = row.get(4)?;
    Ok(TokenRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        secret_hash: row.get(2)?,
        superuser: row.get(3)?,
        scopes: serde_json::from_str(&scopes).unwrap_or_default(),
        created: row.get(5)?,
        revoked: row.get(6)?,
        tag: row.get(7)?,
        expires: row.get(8)?,
        max_expires: row.get(9)?,
        ttl_ms: row.get(10)?,
        renewable: row.get(11)?,
        num_uses: u32_of(row.get(12)?),
        uses: u32_of(row.get(13)?),
        creator: row.get(14)?,
        method: row.get(15)?,
        parent: row.get(16)?,
        bound_cidrs: super::super::rows::split_cidrs(&row.get::<_, String>(17)?),
    })
}

pub(super) fn token_by_id(c: &Connection, id: &str) -> Result<Option<TokenRecord>> {
    static BY_ID: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = ?1")
    });
    c.prepare_cached(&BY_ID)
        .and_then(|mut s| s.query_row([id], token_from_row).optional())
        .map_err(db)
}

pub(super) fn tokens(c: &Connection) -> Result<Vec<TokenRecord>> {
    let mut stmt = c
        .prepare(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created, name"
        ))
        .map_err(db)?;
    let rows = stmt.query_map([], token_from_row).map_err(db)?;
    collect(rows)
}

/// The `id, link` columns of an audit event row.
pub(super) fn chain_head(r: &rusqlite::Row<'_>) -> rusqlite::Result<crate::backend::ChainHead> {
    Ok(crate::backend::ChainHead {
        seq: r.get(0)?,
        link: r.get(1)?,
    })
}
