-- The initial schema.
-- Append a new file for a change; never edit this one.
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- The fingerprint of every KEK that has written, so a wrong key is caught at open.
CREATE TABLE key_fingerprints (
    kek_version INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    recorded    INTEGER NOT NULL
) STRICT;

CREATE TABLE secrets (
    sid         INTEGER PRIMARY KEY,
    row_id      TEXT NOT NULL UNIQUE,
    namespace   TEXT NOT NULL,
    env         TEXT NOT NULL,
    key         TEXT NOT NULL,
    version     INTEGER NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    metadata    TEXT,
    kind        TEXT NOT NULL DEFAULT 'generic',
    expires_at  INTEGER,
    created     INTEGER NOT NULL,
    updated     INTEGER NOT NULL,
    UNIQUE (namespace, env, key)
) STRICT;
CREATE INDEX secrets_expiry ON secrets (expires_at) WHERE expires_at IS NOT NULL;

-- Every kept version, the current one included. Values are envelopes (0x01).
CREATE TABLE secret_versions (
    vid         INTEGER PRIMARY KEY,
    sid         INTEGER NOT NULL REFERENCES secrets (sid) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    value       BLOB NOT NULL,
    value_hash  BLOB NOT NULL,
    kek_version INTEGER NOT NULL,
    created     INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    UNIQUE (sid, version)
) STRICT;
CREATE INDEX secret_versions_kek ON secret_versions (kek_version, vid);

CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    time        INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    env         TEXT NOT NULL,
    key         TEXT NOT NULL,
    version     INTEGER,
    kek_version INTEGER
) STRICT;
CREATE INDEX audit_events_key ON audit_events (namespace, key, id);
CREATE INDEX audit_events_time ON audit_events (time);

-- Audit events are append-only: no update, and deletes only through retention
-- cleanup, which runs in a transaction that first sets the `retention` marker.
CREATE TABLE audit_retention (active INTEGER NOT NULL) STRICT;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN NOT EXISTS (SELECT 1 FROM audit_retention)
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
