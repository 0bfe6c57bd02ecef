-- Token rows carry a keyed tag over every field (docs/format.md, "Token rows"): a row
-- inserted or edited without the key is refused. Rows from before this migration are
-- tagged, audited, at the first open with the key (once: see docs/security.md).
-- Append a new file for a change; never edit this one.
ALTER TABLE strongroom_api_tokens ADD COLUMN tag BYTEA;
