-- The collector's cost per event (issue 22: GETs and uploads beside it). Each event was a heap
-- row and three index entries: the primary key (session_id, seq, emitted_at),
-- player_events_by_session (session_id, emitted_at) and player_events_by_media. The first two
-- held nearly the same key. The primary key in the order (session_id, emitted_at, seq) is the
-- same uniqueness (the same three columns, the partition key among them as PostgreSQL
-- requires: a batch sent twice is still stored once) and serves every lookup by session: a
-- session's events in order (emitted_at, seq), its last event (endedAt), the QoE summary's and
-- the retention sweep's joins on session_id. One index entry fewer per event.
--
-- On the partitioned table both statements reach every month's partition and the default one;
-- the new key's index is built over the rows already there (which stay where they are). The
-- table is locked while it is built: minutes for hundreds of millions of events.
ALTER TABLE player_events DROP CONSTRAINT player_events_pkey;
ALTER TABLE player_events ADD PRIMARY KEY (session_id, emitted_at, seq);
DROP INDEX player_events_by_session;
