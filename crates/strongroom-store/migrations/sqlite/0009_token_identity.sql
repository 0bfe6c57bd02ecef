-- Tokens become identities (docs/identity.md): an expiry and a hard maximum, renewal, a
-- use count, who made each token and how, and the token it was made under (revoking a
-- token revokes the tokens made under it). The keyed tag covers every field (format v2,
-- docs/format.md, "Token rows"); rows without these fields keep their v1 tags.
-- Append a new file for a change; never edit this one.
ALTER TABLE api_tokens ADD COLUMN expires INTEGER;
ALTER TABLE api_tokens ADD COLUMN max_expires INTEGER;
ALTER TABLE api_tokens ADD COLUMN ttl_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN renewable INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN num_uses INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN uses INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN creator TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN method TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN parent TEXT;
CREATE INDEX api_tokens_parent ON api_tokens (parent) WHERE parent IS NOT NULL;
