-- Tokens become identities (docs/identity.md): an expiry and a hard maximum, renewal, a
-- use count, who made each token and how, and the token it was made under (revoking a
-- token revokes the tokens made under it). The keyed tag covers every field (format v2,
-- docs/format.md, "Token rows"); rows without these fields keep their v1 tags.
-- Append a new file for a change; never edit this one.
ALTER TABLE strongroom_api_tokens
    ADD COLUMN expires BIGINT,
    ADD COLUMN max_expires BIGINT,
    ADD COLUMN ttl_ms BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN renewable BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN num_uses BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN uses BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN creator TEXT NOT NULL DEFAULT '',
    ADD COLUMN method TEXT NOT NULL DEFAULT '',
    ADD COLUMN parent TEXT;
CREATE INDEX strongroom_api_tokens_parent ON strongroom_api_tokens (parent) WHERE parent IS NOT NULL;
