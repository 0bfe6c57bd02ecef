-- The tamper-evident audit chain: each event's keyed link to the previous one.
-- Append a new file for a change; never edit this one.
ALTER TABLE audit_events ADD COLUMN link BLOB;
