-- Leases on dynamic credentials (docs/dynamic-credentials.md). A lease is recorded before
-- its login is made and kept until the login is dropped. `sealed` holds, under the key and
-- bound to the lease's id, everything its revocation needs (the connection, the login's
-- name, the statements) and its real times; the plain columns only schedule the work
-- (`next_attempt`) and let one server instance claim it (`claimed_until`).
-- Append a new file for a change; never edit this one.
CREATE TABLE leases (
    id TEXT PRIMARY KEY,
    issued INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    claimed_until INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sealed BLOB NOT NULL
);
CREATE INDEX leases_due ON leases (next_attempt) WHERE state <> 'revoked';
