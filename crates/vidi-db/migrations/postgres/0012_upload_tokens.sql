-- Delegated upload tokens. The token is a bearer secret that api.video lists and shows back to
-- its owner, so it is stored as is (unlike API keys, which are shown once and kept as hashes).
CREATE TABLE upload_tokens (
    token TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    ttl BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);
CREATE INDEX upload_tokens_by_workspace ON upload_tokens (workspace_id, created_at);

