-- Webhooks (contract §9) and their delivery from the events outbox.
-- `events` holds the subscribed kinds as a JSON array of strings (in the order given); a kind is
-- matched with LIKE '%"kind"%', exact because every kind is a fixed quoted string.
-- `secret` signs deliveries (HMAC-SHA256); it is never part of the 2023 webhook body.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhooks_by_workspace ON webhooks (workspace_id, id);

-- How far each dispatcher has read the outbox: every event up to `event_id` has its deliveries.
-- Restarts resume here, so nothing is skipped; the (event, webhook) key below keeps a re-read
-- from creating anything twice.
CREATE TABLE webhook_cursors (
    name TEXT PRIMARY KEY,
    event_id TEXT NOT NULL
);

-- One row per (event, matching webhook): the exact body sent (signed as stored), its state
-- (`pending` until a 2xx, `delivered`, or `failed` once retries are over), and a lease so one
-- node at a time sends it (`lease_until` in unix ms; a dead node's lease simply expires).
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_status BIGINT,
    created_at BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    next_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    UNIQUE (event_id, webhook_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_at);
-- Order per (webhook, subject): a delivery waits while an earlier one of the same pair is pending.
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (webhook_id, subject, state, event_id);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);

-- The delivery log: every attempt with its time, answer status (NULL: no answer), latency, the
-- error when there was no answer, and at most 1 KiB of the answer's body.
CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    n BIGINT NOT NULL,
    at BIGINT NOT NULL,
    status BIGINT,
    latency_ms BIGINT NOT NULL,
    error TEXT,
    excerpt TEXT NOT NULL,
    PRIMARY KEY (delivery_id, n)
);
