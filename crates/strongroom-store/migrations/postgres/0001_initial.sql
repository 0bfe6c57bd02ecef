-- The initial schema (same model as SQLite's migrations 1 and 2).
-- Append a new file for a change; never edit this one.
CREATE TABLE strongroom_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE strongroom_key_fingerprints (
    kek_version BIGINT PRIMARY KEY, fingerprint TEXT NOT NULL, recorded BIGINT NOT NULL);
CREATE TABLE strongroom_secrets (
    sid BIGSERIAL PRIMARY KEY,
    row_id TEXT NOT NULL UNIQUE,
    namespace TEXT NOT NULL, env TEXT NOT NULL, key TEXT NOT NULL,
    version BIGINT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    metadata TEXT,
    kind TEXT NOT NULL DEFAULT 'generic',
    expires_at BIGINT,
    created BIGINT NOT NULL, updated BIGINT NOT NULL,
    UNIQUE (namespace, env, key));
CREATE INDEX strongroom_secrets_expiry ON strongroom_secrets (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE strongroom_secret_versions (
    vid BIGSERIAL PRIMARY KEY,
    sid BIGINT NOT NULL REFERENCES strongroom_secrets (sid) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    value BYTEA NOT NULL, value_hash BYTEA NOT NULL, kek_version BIGINT NOT NULL,
    created BIGINT NOT NULL, actor TEXT NOT NULL,
    UNIQUE (sid, version));
CREATE INDEX strongroom_secret_versions_kek ON strongroom_secret_versions (kek_version, vid);
CREATE TABLE strongroom_audit_events (
    id BIGSERIAL PRIMARY KEY,
    time BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    namespace TEXT NOT NULL, env TEXT NOT NULL, key TEXT NOT NULL,
    version BIGINT, kek_version BIGINT);
CREATE INDEX strongroom_audit_events_key ON strongroom_audit_events (namespace, key, id);
CREATE INDEX strongroom_audit_events_time ON strongroom_audit_events (time);
CREATE FUNCTION strongroom_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('strongroom.retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are append-only';
END $$;
CREATE TRIGGER strongroom_audit_events_append_only BEFORE UPDATE OR DELETE ON strongroom_audit_events
    FOR EACH ROW EXECUTE FUNCTION strongroom_audit_append_only();
CREATE TABLE strongroom_api_tokens (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, secret_hash BYTEA NOT NULL,
    superuser BOOLEAN NOT NULL, scopes TEXT NOT NULL, created BIGINT NOT NULL, revoked BIGINT);
