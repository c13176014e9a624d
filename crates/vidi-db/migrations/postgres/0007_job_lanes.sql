-- Jobs run in lanes, each with workers of its own (short work never waits behind a ladder); a
-- worker claims only the jobs of its lane. Jobs queued before lanes existed were all encodes and
-- pieces, hence the default.
-- The SQLite twin of this file has the same version number and the same change.
ALTER TABLE jobs ADD COLUMN lane TEXT NOT NULL DEFAULT 'encode';
CREATE INDEX jobs_lane_ready ON jobs (lane, status, run_at);
