-- A token may be bound to networks (Vault's token_bound_cidrs): it works only from a peer
-- address inside one of them. Comma-separated CIDR blocks, empty when unbound; covered by
-- the keyed tag (format v3, docs/format.md, "Token rows"); unbound rows keep their tags.
-- Append a new file for a change; never edit this one.
ALTER TABLE api_tokens ADD COLUMN bound_cidrs TEXT NOT NULL DEFAULT '';
