-- A private token is single-use (contract §6): the first request binds it to a playback
-- session (a browser), and from then on only that session may use it, for 24 hours.
ALTER TABLE private_tokens ADD COLUMN session TEXT;
