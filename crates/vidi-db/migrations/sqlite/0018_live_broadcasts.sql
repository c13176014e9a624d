-- Live broadcasts (issue 21). `broadcasting` is the wire field: true while media flows, flipped in
-- the transaction that records `live-stream.broadcast.started` / `.ended` in the outbox.
ALTER TABLE live_streams ADD COLUMN broadcasting BOOLEAN NOT NULL DEFAULT FALSE;

-- One row per broadcast: from a publisher's first media to the end of its reconnect grace. The
-- node holding it heartbeats it; a broadcast whose heartbeat is stale lost its node, and any
-- node ends it (the flag flipped back, its recording queued from what reached storage).
-- `video_id` is chosen when the broadcast opens, so recording it again makes the same video.
CREATE TABLE live_broadcasts (
    id TEXT PRIMARY KEY,
    live_stream_id TEXT NOT NULL REFERENCES live_streams(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    node TEXT NOT NULL,
    record BOOLEAN NOT NULL,
    video_id TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX live_broadcasts_open ON live_broadcasts (ended_at, heartbeat_at);
CREATE INDEX live_broadcasts_by_stream ON live_broadcasts (live_stream_id, started_at);
