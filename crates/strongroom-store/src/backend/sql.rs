//! SQL shared by the backends: a small dialect (placeholders, table names, prefix
//! matching, byte order) and a query builder that binds every value as a parameter, as
//! `sqlx`'s `QueryBuilder` does. The list and audit queries are written once, here.

use super::ListFilter;
use crate::{AuditQuery, State};

/// A parameter value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
}

impl From<i64> for SqlValue {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<&str> for SqlValue {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<String> for SqlValue {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

/// How one database spells what differs.
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    /// The prefix of every table name (`strongroom_` on a shared PostgreSQL database).
    pub table_prefix: &'static str,
    /// Placeholder `n` (1-based): `?1` or `$1`.
    pub placeholder: fn(usize) -> String,
    /// Whether text column `column` starts with the text bound at `placeholder` (never
    /// `LIKE`, which treats `_` in keys as a wildcard).
    pub starts_with: fn(&str, &str) -> String,
    /// `column`, compared and ordered byte by byte whatever the database's locale.
    pub bytewise: fn(&str) -> String,
}

/// SQLite: `?N`, unprefixed tables, binary collation by default.
pub const SQLITE: Dialect = Dialect {
    table_prefix: "",
    placeholder: |n| format!("?{n}"),
    starts_with: |column, p| format!("substr({column}, 1, length({p})) = {p}"),
    bytewise: |column| column.to_owned(),
};

/// PostgreSQL: `$N`, `strongroom_` tables, `COLLATE "C"` for byte order.
pub const POSTGRES: Dialect = Dialect {
    table_prefix: "strongroom_",
    placeholder: |n| format!("${n}"),
    starts_with: |column, p| format!("starts_with({column}, {p})"),
    bytewise: |column| format!("{column} COLLATE \"C\""),
};

impl Dialect {
    /// A table's name in this dialect.
    pub fn table(&self, name: &str) -> String {
        format!("{}{name}", self.table_prefix)
    }
}

/// A query under construction: SQL text and the values bound to its placeholders.
#[derive(Debug, Clone)]
pub struct QueryBuilder {
    dialect: Dialect,
    conditions: Vec<String>,
    values: Vec<SqlValue>,
}

/// Finished SQL and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The SQL text.
    pub sql: String,
    /// The values, in placeholder order.
    pub values: Vec<SqlValue>,
}

impl QueryBuilder {
    /// An empty `WHERE` clause.
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            conditions: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Binds `value`; returns its placeholder.
    pub fn bind(&mut self, value: impl Into<SqlValue>) -> String {
        self.values.push(value.into());
        (self.dialect.placeholder)(self.values.len())
    }

    /// Adds a condition (joined by `AND`).
    pub fn and(&mut self, condition: String) {
        self.conditions.push(condition);
    }

    /// The conditions so far, or `1 = 1`.
    pub fn conditions(&self) -> String {
        if self.conditions.is_empty() {
            "1 = 1".to_owned()
        } else {
            self.conditions.join(" AND ")
        }
    }

    /// `sql` with its values bound so far.
    pub fn finish(&self, sql: String) -> Query {
        Query {
            sql,
            values: self.values.clone(),
        }
    }
}

/// The attribute columns backends map to [`super::StoredInfo`], in this order, over
/// `secrets s JOIN secret_versions v` (the current version).
pub const INFO_COLUMNS: &str =
    "s.row_id, s.namespace, s.env, s.key, s.version, v.kek_version, s.description, \
     s.metadata, s.kind, s.expires_at, s.created, s.updated, v.deleted_at, v.destroyed";

/// The audit event columns backends map to [`crate::AuditEvent`], in this order.
pub const EVENT_COLUMNS: &str =
    "id, time, actor, action, namespace, env, key, version, kek_version";

fn i64_of(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The count and the page of a list: `(count, page)`; the page selects [`INFO_COLUMNS`].
pub fn list(dialect: Dialect, filter: &ListFilter) -> (Query, Query) {
    let secrets = dialect.table("secrets");
    let versions = dialect.table("secret_versions");
    let mut q = QueryBuilder::new(dialect);
    let p = q.bind(filter.namespace.as_str());
    q.and(format!("s.namespace = {p}"));
    if let Some(env) = &filter.env {
        let p = q.bind(env.as_str());
        q.and(format!("s.env = {p}"));
    }
    if let Some(prefix) = &filter.prefix {
        let p = q.bind(prefix.as_str());
        q.and((dialect.starts_with)("s.key", &p));
    }
    // A state is the current version's: destroyed, else deleted, else expired, else
    // active (`read.rs::info_of` decides the same way for each row).
    let live = "v.deleted_at IS NULL AND NOT v.destroyed";
    match filter.state {
        Some(State::Expired) => {
            let p = q.bind(filter.now.unix_ms());
            q.and(format!(
                "s.expires_at IS NOT NULL AND s.expires_at <= {p} AND {live}"
            ));
        }
        Some(State::Active) => {
            let p = q.bind(filter.now.unix_ms());
            q.and(format!(
                "(s.expires_at IS NULL OR s.expires_at > {p}) AND {live}"
            ));
        }
        Some(State::Deleted) => q.and("v.deleted_at IS NOT NULL AND NOT v.destroyed".into()),
        Some(State::Destroyed) => q.and("v.destroyed".into()),
        None => {}
    }
    let count = q.finish(format!(
        "SELECT count(*) FROM {secrets} s
         JOIN {versions} v ON v.sid = s.sid AND v.version = s.version
         WHERE {}",
        q.conditions()
    ));
    let (env, key) = ((dialect.bytewise)("s.env"), (dialect.bytewise)("s.key"));
    if let Some(super::ListCursor {
        env: after_env,
        key: after_key,
    }) = &filter.after
    {
        let e = q.bind(after_env.as_str());
        let k = q.bind(after_key.as_str());
        q.and(format!("({env} > {e} OR (s.env = {e} AND {key} > {k}))"));
    }
    let limit = q.bind(i64_of(filter.limit));
    let offset = q.bind(if filter.after.is_some() {
        0
    } else {
        i64_of(filter.offset)
    });
    let page = q.finish(format!(
        "SELECT {INFO_COLUMNS} FROM {secrets} s
         JOIN {versions} v ON v.sid = s.sid AND v.version = s.version
         WHERE {} ORDER BY {env}, {key} LIMIT {limit} OFFSET {offset}",
        q.conditions()
    ));
    (count, page)
}

/// A page of audit events, newest first; selects [`EVENT_COLUMNS`].
pub fn audit_events(dialect: Dialect, query: &AuditQuery, limit: usize) -> Query {
    let mut q = QueryBuilder::new(dialect);
    let text_filters = [
        ("namespace", query.namespace.as_deref()),
        ("env", query.env.as_deref()),
        ("key", query.key.as_deref()),
        ("action", query.action.map(crate::Action::as_str)),
        ("actor", query.actor.as_deref()),
    ];
    for (column, value) in text_filters {
        if let Some(value) = value {
            let p = q.bind(value);
            q.and(format!("{column} = {p}"));
        }
    }
    if let Some(since) = query.since_ms {
        let p = q.bind(since);
        q.and(format!("time >= {p}"));
    }
    if let Some(until) = query.until_ms {
        let p = q.bind(until);
        q.and(format!("time < {p}"));
    }
    if let Some(before) = query.before_id {
        let p = q.bind(before);
        q.and(format!("id < {p}"));
    }
    let limit = q.bind(i64_of(limit));
    q.finish(format!(
        "SELECT {EVENT_COLUMNS} FROM {} WHERE {} ORDER BY id DESC LIMIT {limit}",
        dialect.table("audit_events"),
        q.conditions()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> ListFilter {
        ListFilter {
            namespace: "default".into(),
            env: Some("prod".into()),
            prefix: Some("DB_".into()),
            state: Some(State::Active),
            now: crate::Timestamp(5),
            limit: 10,
            after: Some(crate::backend::ListCursor {
                env: "prod".into(),
                key: "DB_A".into(),
            }),
            offset: 3,
        }
    }

    #[test]
    fn every_value_is_a_parameter_never_sql_text() {
        let mut hostile = filter();
        hostile.prefix = Some("x' OR 1=1 --".into());
        for dialect in [SQLITE, POSTGRES] {
            let (count, page) = list(dialect, &hostile);
            assert!(!count.sql.contains("OR 1=1"), "{}", count.sql);
            assert!(!page.sql.contains("OR 1=1"), "{}", page.sql);
            assert!(page.values.contains(&SqlValue::Text("x' OR 1=1 --".into())));
        }
    }

    #[test]
    fn dialects_differ_only_in_spelling() {
        let (count, page) = list(SQLITE, &filter());
        assert_eq!(count.values.len(), 4);
        assert!(page.sql.contains("substr(s.key, 1, length(?3)) = ?3"));
        assert!(page.sql.contains("LIMIT ?7 OFFSET ?8"), "{}", page.sql);
        assert_eq!(page.values.last(), Some(&SqlValue::Int(0)), "a cursor wins");
        let (_, page) = list(POSTGRES, &filter());
        assert!(page.sql.contains("starts_with(s.key, $3)"));
        assert!(page.sql.contains("FROM strongroom_secrets s"));
        assert!(page.sql.contains("ORDER BY s.env COLLATE \"C\""));
    }
}
