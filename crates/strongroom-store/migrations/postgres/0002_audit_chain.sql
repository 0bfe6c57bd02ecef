-- The tamper-evident audit chain.
-- Append a new file for a change; never edit this one.
ALTER TABLE strongroom_audit_events ADD COLUMN link BYTEA;
