-- When a job's current attempt was claimed: against run_at (when it was due), how long it queued.
-- NULL for jobs not claimed yet (and for those that ended before this column existed).
-- The PostgreSQL twin of this file has the same version number and the same change.
ALTER TABLE jobs ADD COLUMN started_at BIGINT;
