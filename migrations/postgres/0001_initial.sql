-- Codepod schema, PostgreSQL dialect. Times are Unix milliseconds, as in SQLite.

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    username      TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    CONSTRAINT users_username_key UNIQUE (username),
    CONSTRAINT users_email_key UNIQUE (email)
);

-- Only a SHA-256 of the session token is stored: a leaked table cannot be replayed.
CREATE TABLE auth_sessions (
    token_hash   BYTEA PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    user_agent   TEXT
);
CREATE INDEX auth_sessions_user_id ON auth_sessions (user_id);

CREATE TABLE workspaces (
    id             UUID PRIMARY KEY,
    owner_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    language       TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    last_active_at BIGINT NOT NULL,
    CONSTRAINT workspaces_owner_name_key UNIQUE (owner_id, name)
);

-- `path` duplicates parent_id + name so that a lookup by path is one index probe.
CREATE TABLE files (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    parent_id    UUID REFERENCES files (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    path         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('file', 'dir')),
    content      BYTEA NOT NULL,
    size         BIGINT NOT NULL,
    version      BIGINT NOT NULL,
    content_hash TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    CONSTRAINT files_workspace_path_key UNIQUE (workspace_id, path)
);
CREATE INDEX files_parent_id ON files (parent_id);
