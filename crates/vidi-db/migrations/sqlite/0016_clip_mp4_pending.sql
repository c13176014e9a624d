-- `clip` on create (the timecodes as written: frames count at the source's rate, known only once
-- it is probed), and an MP4 being made after `mp4Support` was turned on (not listed until it is).
ALTER TABLE videos ADD COLUMN clip_start TEXT;
ALTER TABLE videos ADD COLUMN clip_end TEXT;
ALTER TABLE videos ADD COLUMN mp4_pending BOOLEAN NOT NULL DEFAULT FALSE;
