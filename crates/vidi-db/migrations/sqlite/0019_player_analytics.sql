-- Player analytics (contract §12, issue 22): viewing sessions reported by players and their
-- events, kept raw. No foreign key to videos or live streams: raw data is appended without a
-- check per row, and outlives the subject it was about (the API answers 404 for a deleted
-- subject anyway, and every read is scoped by workspace).
CREATE TABLE player_sessions (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    -- A video (`vi…`) or a live stream (`li…`): their prefixes never collide.
    media_id TEXT NOT NULL,
    loaded_at BIGINT NOT NULL,
    -- `[{key, value}]`, as the API returns it; filtered through player_session_metadata.
    metadata TEXT NOT NULL,
    referrer_url TEXT,
    referrer_medium TEXT NOT NULL,
    referrer_source TEXT NOT NULL,
    search_term TEXT NOT NULL,
    device_type TEXT NOT NULL,
    device_vendor TEXT NOT NULL,
    device_model TEXT NOT NULL,
    os_name TEXT NOT NULL,
    os_shortname TEXT NOT NULL,
    os_version TEXT NOT NULL,
    client_name TEXT NOT NULL,
    client_version TEXT NOT NULL,
    client_type TEXT NOT NULL,
    country TEXT NOT NULL,
    city TEXT
);
-- One video's sessions of a period, newest first.
CREATE INDEX player_sessions_by_media ON player_sessions (media_id, loaded_at);
-- The oldest sessions first, for the retention sweep (`VIDI_ANALYTICS_RETENTION_DAYS`).
CREATE INDEX player_sessions_by_time ON player_sessions (loaded_at);

-- The `metadata[k]=v` filter: one row per pair, so the filter is an indexed lookup per pair.
CREATE TABLE player_session_metadata (
    session_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (session_id, key)
);
CREATE INDEX player_session_metadata_by_pair ON player_session_metadata (key, value);

-- Append-only: a batch is one INSERT. `seq` is the player's own numbering within the session,
-- so a batch sent twice is stored once. `at`/`from_s`/`to_s` are playheads in seconds;
-- `value` the measure of a quality-of-experience event (ms).
CREATE TABLE player_events (
    session_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    emitted_at BIGINT NOT NULL,
    media_id TEXT NOT NULL,
    type TEXT NOT NULL,
    at BIGINT,
    from_s BIGINT,
    to_s BIGINT,
    value BIGINT,
    PRIMARY KEY (session_id, seq, emitted_at)
);
-- A session's events in order (the primary key serves lookups by session; this one the order),
-- and a subject's events over time (quality of experience, retention).
CREATE INDEX player_events_by_session ON player_events (session_id, emitted_at);
CREATE INDEX player_events_by_media ON player_events (media_id, emitted_at);

-- The collector checks that a private subject's session is open: found by its session.
CREATE INDEX private_tokens_by_session ON private_tokens (session);
CREATE INDEX live_private_tokens_by_session ON live_private_tokens (session);
