-- Codepod schema, SQLite dialect. Ids are UUIDs (16-byte blobs), times Unix milliseconds.

CREATE TABLE users (
    id            BLOB PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    CONSTRAINT users_username_key UNIQUE (username),
    CONSTRAINT users_email_key UNIQUE (email)
);

-- Only a SHA-256 of the session token is stored: a leaked table cannot be replayed.
CREATE TABLE auth_sessions (
    token_hash   BLOB PRIMARY KEY NOT NULL,
    user_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    user_agent   TEXT
);
CREATE INDEX auth_sessions_user_id ON auth_sessions (user_id);

CREATE TABLE workspaces (
    id             BLOB PRIMARY KEY NOT NULL,
    owner_id       BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    language       TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    last_active_at INTEGER NOT NULL,
    CONSTRAINT workspaces_owner_name_key UNIQUE (owner_id, name)
);

-- `path` (the full relative path) duplicates what parent_id + name say, so that a lookup by
-- path is one index probe; uniqueness of (workspace, path) implies uniqueness of
-- (parent, name).
CREATE TABLE files (
    id           BLOB PRIMARY KEY NOT NULL,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    parent_id    BLOB REFERENCES files (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    path         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('file', 'dir')),
    content      BLOB NOT NULL,
    size         INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    CONSTRAINT files_workspace_path_key UNIQUE (workspace_id, path)
);
CREATE INDEX files_parent_id ON files (parent_id);
