-- The collector's cost per event (issue 22: GETs and uploads beside it). Each event was a row
-- of a rowid table and three index entries: the primary key (session_id, seq, emitted_at),
-- player_events_by_session (session_id, emitted_at) and player_events_by_media. The first two
-- held nearly the same key. The primary key in the order (session_id, emitted_at, seq) is the
-- same uniqueness (the same three columns: a batch sent twice is still stored once) and serves
-- every lookup by session: a session's events in order (emitted_at, seq), its last event
-- (endedAt), the QoE summary's and the retention sweep's joins on session_id. And the table
-- WITHOUT ROWID: its rows (~100 bytes) are stored in that key's b-tree itself, so an event is
-- written to two b-trees (the table, by media) instead of four.
--
-- SQLite cannot change a table's primary key in place: the table is rebuilt, every row copied
-- (in this migration's transaction: all or nothing).
CREATE TABLE player_events_new (
    session_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    emitted_at BIGINT NOT NULL,
    media_id TEXT NOT NULL,
    type TEXT NOT NULL,
    at BIGINT,
    from_s BIGINT,
    to_s BIGINT,
    value BIGINT,
    height BIGINT,
    bitrate BIGINT,
    PRIMARY KEY (session_id, emitted_at, seq)
) WITHOUT ROWID;
INSERT INTO player_events_new (session_id, seq, emitted_at, media_id, type, at, from_s, to_s, value, height, bitrate)
SELECT session_id, seq, emitted_at, media_id, type, at, from_s, to_s, value, height, bitrate FROM player_events;
DROP TABLE player_events;
ALTER TABLE player_events_new RENAME TO player_events;
-- A subject's events over time (quality of experience).
CREATE INDEX player_events_by_media ON player_events (media_id, emitted_at);
