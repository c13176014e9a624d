-- Quality of experience beyond views (issue 22): who watched, for unique viewers (`v:` and the
-- player's own viewer id, or `h:` and a daily hash of the client address and User-Agent; NULL for
-- sessions stored before), and the rendition a `qoe.rendition` or `qoe.watch` event reports
-- (height in pixels, bitrate in bits per second). Nullable columns: adding them rewrites nothing.
ALTER TABLE player_sessions ADD COLUMN viewer TEXT;
ALTER TABLE player_events ADD COLUMN height BIGINT;
ALTER TABLE player_events ADD COLUMN bitrate BIGINT;
