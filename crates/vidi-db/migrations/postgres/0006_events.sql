-- The events outbox: each event is appended by the same transaction as the change that caused it,
-- so a change and its event exist together or not at all. `dedup_key` makes "exactly once" a
-- constraint (a rendition completed again by a retried encode adds nothing). Delivery (webhooks)
-- reads it in id order, which is creation order.
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    dedup_key TEXT NOT NULL UNIQUE,
    fields TEXT NOT NULL,
    emitted_at_ns BIGINT NOT NULL
);
CREATE INDEX events_by_workspace ON events (workspace_id, id);
