-- Vidi's first schema. Kept portable: TEXT ids, BIGINT unix-ms timestamps, JSON as TEXT.
-- The SQLite twin of this file has the same version number and the same tables.
CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    key_id TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    retired_at BIGINT
);

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    heartbeat_at BIGINT NOT NULL
);

CREATE TABLE videos (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    description TEXT,
    public BOOLEAN NOT NULL,
    panoramic BOOLEAN NOT NULL,
    mp4_support BOOLEAN NOT NULL,
    player_id TEXT,
    tags TEXT NOT NULL,
    metadata TEXT NOT NULL,
    source_kind TEXT NOT NULL,
    source_ref TEXT,
    live_stream_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    published_at BIGINT,
    ingest_state TEXT NOT NULL,
    upload_mode TEXT NOT NULL,
    filesize BIGINT,
    parts_total BIGINT,
    upload_session TEXT,
    source_key TEXT,
    probe TEXT,
    -- Bumped by every upload transaction first, so that the transaction holds the row's write lock
    -- (PostgreSQL) or the database's (SQLite) before it reads the upload state.
    lock_seq BIGINT NOT NULL DEFAULT 0
);
-- The list's default order (createdAt, then id as tie-break) reads straight off this index.
CREATE INDEX videos_by_workspace ON videos (workspace_id, created_at, id);

-- Tags and metadata are kept as JSON on the video for reading, and here for filtering.
CREATE TABLE video_tags (
    video_id TEXT NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (video_id, tag)
);
CREATE INDEX video_tags_by_tag ON video_tags (tag);

CREATE TABLE video_metadata (
    video_id TEXT NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX video_metadata_by_pair ON video_metadata (key, value);
CREATE INDEX video_metadata_by_video ON video_metadata (video_id);

CREATE TABLE upload_chunks (
    video_id TEXT NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    idx BIGINT NOT NULL,
    range_from BIGINT,
    range_to BIGINT,
    size BIGINT,
    receipt TEXT,
    claimed_by TEXT,
    claimed_at BIGINT NOT NULL,
    PRIMARY KEY (video_id, idx)
);
