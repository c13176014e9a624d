-- The master playlist is built from state when it is requested: what it lists per rendition is
-- stored when the encode plans the rendition. Subtitle and audio-track groups will join it from
-- their own tables. The twin of this file in the other dialect is identical.
CREATE TABLE video_renditions (
    video_id TEXT NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    -- Master playlist order (the ladder's, lowest first).
    position BIGINT NOT NULL,
    -- The folder of its media playlist (`<name>/index.m3u8`) and its NAME.
    name TEXT NOT NULL,
    -- 'variant' (EXT-X-STREAM-INF) or 'audio' (EXT-X-MEDIA TYPE=AUDIO of audio_group).
    role TEXT NOT NULL,
    bandwidth BIGINT NOT NULL,
    average_bandwidth BIGINT NOT NULL,
    codecs TEXT NOT NULL,
    width BIGINT,
    height BIGINT,
    -- A variant: the audio group it plays with; an audio rendition: the group it belongs to.
    audio_group TEXT,
    channels BIGINT,
    PRIMARY KEY (video_id, name)
);
