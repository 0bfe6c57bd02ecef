-- Rotation re-keys the audit chain: an event's link (and nothing else) may be replaced
-- while the store's transaction marks a re-key; every other update is still refused.
-- Append a new file for a change; never edit this one.
CREATE OR REPLACE FUNCTION strongroom_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('strongroom.retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND current_setting('strongroom.rekey', true) = 'on'
        AND (to_jsonb(NEW) - 'link') = (to_jsonb(OLD) - 'link') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit events are append-only';
END $$;
