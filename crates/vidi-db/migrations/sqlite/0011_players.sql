-- Player themes. The colours and switches are one JSON document (`settings`, typed in
-- vidi_core::player::ThemeSettings): they are read and written whole and never filtered on;
-- `name` and the times are columns because lists sort by them.
CREATE TABLE players (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name TEXT,
    settings TEXT NOT NULL,
    logo_key TEXT,
    logo_link TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX players_by_workspace ON players (workspace_id, created_at);
