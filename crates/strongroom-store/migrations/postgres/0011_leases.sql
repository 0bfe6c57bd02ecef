-- Leases on dynamic credentials (docs/dynamic-credentials.md). A lease is recorded before
-- its login is made and kept until the login is dropped. `sealed` holds, under the key and
-- bound to the lease's id, everything its revocation needs (the connection, the login's
-- name, the statements) and its real times; the plain columns only schedule the work
-- (`next_attempt`) and let one server instance claim it (`claimed_until`).
-- Append a new file for a change; never edit this one.
CREATE TABLE strongroom_leases (
    id TEXT PRIMARY KEY,
    issued BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt BIGINT NOT NULL,
    claimed_until BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    sealed BYTEA NOT NULL
);
CREATE INDEX strongroom_leases_due ON strongroom_leases (next_attempt) WHERE state <> 'revoked';
