-- Every event linked under the key, its sequence number in the link; each version
-- tied to the event that wrote it; values bound to their version. The events of an
-- older database are set aside and appended again to the keyed chain by the store at
-- its next open (it holds the key; this migration does not).
-- Append a new file for a change; never edit this one.
ALTER TABLE strongroom_secret_versions ADD COLUMN audit_seq BIGINT;
ALTER TABLE strongroom_secret_versions ADD COLUMN audit_tag BYTEA;
CREATE TABLE strongroom_audit_events_legacy (
    id BIGINT PRIMARY KEY,
    time BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    namespace TEXT NOT NULL, env TEXT NOT NULL, key TEXT NOT NULL,
    version BIGINT, kek_version BIGINT);
INSERT INTO strongroom_audit_events_legacy
    SELECT id, time, actor, action, namespace, env, key, version, kek_version FROM strongroom_audit_events;
SET LOCAL strongroom.retention = 'on';
DELETE FROM strongroom_audit_events;
SET LOCAL strongroom.retention = 'off';
DELETE FROM strongroom_meta WHERE name = 'audit_anchor';
