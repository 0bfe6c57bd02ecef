-- Per-secret settings (Vault's max_versions and cas_required): how many versions to keep
-- (NULL: the server's STRONGROOM_HISTORY_DEPTH) and whether every write must name the
-- version it expects. A row exists only for a secret with settings of its own.
-- Append a new file for a change; never edit this one.
CREATE TABLE secret_settings (
    sid          INTEGER PRIMARY KEY REFERENCES secrets (sid) ON DELETE CASCADE,
    max_versions INTEGER,
    cas_required INTEGER NOT NULL DEFAULT 0
) STRICT;
