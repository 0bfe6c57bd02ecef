-- Per-secret settings (Vault's max_versions and cas_required): how many versions to keep
-- (NULL: the server's STRONGROOM_HISTORY_DEPTH) and whether every write must name the
-- version it expects. A row exists only for a secret with settings of its own.
-- Append a new file for a change; never edit this one.
CREATE TABLE strongroom_secret_settings (
    sid          BIGINT PRIMARY KEY REFERENCES strongroom_secrets (sid) ON DELETE CASCADE,
    max_versions BIGINT,
    cas_required BOOLEAN NOT NULL DEFAULT FALSE
);
