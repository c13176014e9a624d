-- Captions: one WebVTT file per (video, language) (contract §10). The file is in the media
-- store under `file_key`, which changes with every upload (a replacement never overwrites the
-- file a racing request recorded). `workspace_id` repeats the video's, so every statement
-- filters by the tenant directly; rows go with their video.
CREATE TABLE captions (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    video_id TEXT NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    language TEXT NOT NULL,
    file_key TEXT NOT NULL,
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (video_id, language)
);
-- At most one default caption per video, whatever the code does (the API clears the others in
-- the same transaction; this makes a bug there an error rather than two defaults).
CREATE UNIQUE INDEX captions_one_default ON captions (video_id) WHERE is_default;
