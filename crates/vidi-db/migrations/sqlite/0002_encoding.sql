-- Encoding: a durable job queue shared by every worker, and what each video's encoding produced.
-- The PostgreSQL twin of this file has the same version number and the same tables.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    -- Set while the job is queued or running: a second enqueue of the same work is a no-op.
    unique_key TEXT UNIQUE,
    status TEXT NOT NULL,
    run_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    locked_by TEXT,
    heartbeat_at BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_ready ON jobs (status, run_at);

CREATE TABLE video_qualities (
    video_id TEXT NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    quality TEXT NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (video_id, kind, quality)
);

ALTER TABLE videos ADD COLUMN playable BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE videos ADD COLUMN thumbnail_key TEXT;
ALTER TABLE videos ADD COLUMN encode_error TEXT;

-- Private videos: every read of a private video's asset URLs mints a token that opens its media.
CREATE TABLE private_tokens (
    token TEXT PRIMARY KEY,
    video_id TEXT NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);
CREATE INDEX private_tokens_by_expiry ON private_tokens (expires_at);
