-- API keys can be revoked (`vidi api-key revoke`). A revoked key is kept, marked with the time of
-- its revocation, so `vidi api-key list` still shows it; lookups skip it.
-- The SQLite twin of this file has the same version number and the same change.
ALTER TABLE api_keys ADD COLUMN revoked_at BIGINT;
-- Revoking a key deletes its refresh tokens.
CREATE INDEX refresh_tokens_by_key ON refresh_tokens (key_id);
