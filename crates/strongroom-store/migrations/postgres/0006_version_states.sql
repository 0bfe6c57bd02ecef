-- Single versions can be soft-deleted (kept sealed, read by nobody until undeleted) and
-- destroyed (their sealed bytes erased for good).
-- Append a new file for a change; never edit this one.
ALTER TABLE strongroom_secret_versions ADD COLUMN deleted_at BIGINT;
ALTER TABLE strongroom_secret_versions ADD COLUMN destroyed BOOLEAN NOT NULL DEFAULT FALSE;
