-- A workspace's installed packages (everything pip put under the sandbox user's ~/.local),
-- packed by the agent and unpacked at the next start: they outlive the sandbox. Kept apart
-- from the files (not synced, not in the tree); gone with the workspace.
CREATE TABLE environments (
    workspace_id UUID PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    archive      BYTEA NOT NULL,
    size         BIGINT NOT NULL,
    signature    TEXT NOT NULL,
    packages     TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
);
