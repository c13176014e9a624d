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

-- Videos created through a token, with the file and part count they were started with: the
-- one-call uploads of the Node and Python clients send parts 2..N without `videoId`, and this is
-- how such a part finds its video.
CREATE TABLE token_uploads (
    video_id TEXT PRIMARY KEY REFERENCES videos(id) ON DELETE CASCADE,
    token TEXT NOT NULL REFERENCES upload_tokens(token) ON DELETE CASCADE,
    file_name TEXT NOT NULL,
    parts_total BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX token_uploads_by_file ON token_uploads (token, file_name, parts_total);
