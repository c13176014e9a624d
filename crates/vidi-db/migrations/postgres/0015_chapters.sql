-- Chapters: one WebVTT file per (video, language) (contract §10), stored like captions (see
-- 0014), without a default.
CREATE TABLE chapters (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    video_id TEXT NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    language TEXT NOT NULL,
    file_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (video_id, language)
);
