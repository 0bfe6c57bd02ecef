-- Every event linked under the key, its sequence number in the link; each version
-- tied to the event that wrote it; values bound to their version. The events of an
-- older database are set aside here and appended again to the keyed chain by the
-- store at its next open (it holds the key; this migration does not).
-- Append a new file for a change; never edit this one.
ALTER TABLE secret_versions ADD COLUMN audit_seq INTEGER;
ALTER TABLE secret_versions ADD COLUMN audit_tag BLOB;
CREATE TABLE audit_events_legacy (
    id          INTEGER PRIMARY KEY,
    time        INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    env         TEXT NOT NULL,
    key         TEXT NOT NULL,
    version     INTEGER,
    kek_version INTEGER
) STRICT;
INSERT INTO audit_events_legacy
    SELECT id, time, actor, action, namespace, env, key, version, kek_version FROM audit_events;
INSERT INTO audit_retention (active) VALUES (1);
DELETE FROM audit_events;
DELETE FROM audit_retention;
DELETE FROM meta WHERE name = 'audit_anchor';
