-- Rotation re-keys the audit chain: an event's link (and nothing else) may be replaced
-- while the store marks a re-key in progress; every other update is still refused.
-- Append a new file for a change; never edit this one.
CREATE TABLE audit_rekey (active INTEGER NOT NULL) STRICT;
DROP TRIGGER audit_events_no_update;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
WHEN NOT EXISTS (SELECT 1 FROM audit_rekey)
    OR NEW.id IS NOT OLD.id OR NEW.time IS NOT OLD.time OR NEW.actor IS NOT OLD.actor
    OR NEW.action IS NOT OLD.action OR NEW.namespace IS NOT OLD.namespace
    OR NEW.env IS NOT OLD.env OR NEW.key IS NOT OLD.key OR NEW.version IS NOT OLD.version
    OR NEW.kek_version IS NOT OLD.kek_version
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
