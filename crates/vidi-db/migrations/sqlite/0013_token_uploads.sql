-- The upload in progress on each upload token for a file name and a part total: the one-call
-- uploads of the Node and Python clients send parts 2..N of a large file without `videoId`
-- (contract §4.5, decision revised), and this is how such a part finds its video. One upload in
-- flight per key, which is also what stops two racing parts of one upload from making two videos.
-- A row goes when its upload completes, its video is deleted or its token is deleted.
CREATE TABLE token_uploads (
    token TEXT NOT NULL REFERENCES upload_tokens(token) ON DELETE CASCADE,
    file_name TEXT NOT NULL,
    parts_total BIGINT NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    video_id TEXT NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (token, file_name, parts_total)
);
CREATE INDEX token_uploads_by_video ON token_uploads (video_id);
