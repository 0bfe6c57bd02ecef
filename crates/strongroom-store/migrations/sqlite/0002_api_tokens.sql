-- API tokens, stored hashed.
-- Append a new file for a change; never edit this one.
CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    secret_hash BLOB NOT NULL,
    superuser   INTEGER NOT NULL,
    scopes      TEXT NOT NULL,
    created     INTEGER NOT NULL,
    revoked     INTEGER
) STRICT;
