-- Change notifications for the read caches of every process (channel = the schema;
-- payload = `namespace env key`, or `*` for "anything may have changed"). Sent by the
-- server on commit only, whoever wrote.
-- Append a new file for a change; never edit this one.
CREATE FUNCTION strongroom_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    payload TEXT := '*';
BEGIN
    IF TG_LEVEL = 'ROW' AND TG_OP = 'DELETE' THEN
        payload := OLD.namespace || ' ' || OLD.env || ' ' || OLD.key;
    ELSIF TG_LEVEL = 'ROW' THEN
        payload := NEW.namespace || ' ' || NEW.env || ' ' || NEW.key;
    END IF;
    IF octet_length(payload) >= 8000 THEN
        payload := '*';
    END IF;
    PERFORM pg_notify(TG_TABLE_SCHEMA, payload);
    RETURN NULL;
END $$;
CREATE TRIGGER strongroom_secrets_notify AFTER INSERT OR UPDATE OR DELETE ON strongroom_secrets
    FOR EACH ROW EXECUTE FUNCTION strongroom_notify_change();
CREATE TRIGGER strongroom_secret_versions_notify AFTER UPDATE ON strongroom_secret_versions
    FOR EACH STATEMENT EXECUTE FUNCTION strongroom_notify_change();
