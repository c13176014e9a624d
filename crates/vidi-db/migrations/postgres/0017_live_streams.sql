-- Live streams (contract §2, §7). The restream destinations are one JSON array (typed in
-- vidi_core::live::Restream): replaced whole by an update and never filtered on.
CREATE TABLE live_streams (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    stream_key TEXT NOT NULL UNIQUE,
    record BOOLEAN NOT NULL,
    public BOOLEAN NOT NULL,
    player_id TEXT,
    restreams TEXT NOT NULL,
    thumbnail_key TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX live_streams_by_workspace ON live_streams (workspace_id, created_at);

-- A private live stream's single-use tokens, as `private_tokens` are for videos: a table of its
-- own, so the videos' path stays as it is.
CREATE TABLE live_private_tokens (
    token TEXT PRIMARY KEY,
    live_stream_id TEXT NOT NULL REFERENCES live_streams(id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    session TEXT
);
CREATE INDEX live_private_tokens_by_expiry ON live_private_tokens (expires_at);
