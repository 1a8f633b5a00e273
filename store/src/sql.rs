//! The SQL behind both backends. One macro body, instantiated for SQLite and PostgreSQL:
//! the queries are identical text (`$N` parameters, `||`, `substr`, `RETURNING` and
//! `ON DELETE CASCADE` mean the same in both); what differs is passed in — the pool and
//! connection types, how a write transaction begins (SQLite: `BEGIN IMMEDIATE`, so writers
//! queue on the busy timeout instead of failing to upgrade a read lock), and the row-lock
//! suffix (Postgres: `FOR UPDATE` on the workspace row serialises its writers, so quota
//! checks cannot race).

use std::{str::FromStr, time::Duration};

use async_trait::async_trait;
use model::{FileEntry, FileKind, Language, Limits, UserId, WorkspaceId, WorkspacePath};
use sqlx::{
    Connection as _, PgConnection, Row, SqliteConnection,
    postgres::{PgPool, PgPoolOptions},
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    },
};
use uuid::Uuid;

use crate::{
    Applied, EnvironmentRecord, EnvironmentSummary, Error, Expect, FileRecord, Limit, NewWorkspace,
    Result, SandboxWrite, SessionRecord, Store, Taken, Usage, UserRecord, WorkspaceRecord,
    WriteFile, content_hash, kind_from,
};

/// SQLite, the zero-configuration default: one file in the data directory, WAL mode.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` and applies migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // Migrations on a connection of their own with foreign keys off, as SQLite's way of
        // changing a table (rebuild, drop the old one) needs: dropping a parent table with
        // them on would cascade to its children.
        let mut migrating =
            SqliteConnection::connect_with(&options.clone().foreign_keys(false)).await?;
        sqlx::migrate!("../migrations/sqlite")
            .run(&mut migrating)
            .await?;
        migrating.close().await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// PostgreSQL, for production and for more than one backend replica.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` and applies migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'_, sqlx::Postgres>> {
        Ok(self.pool.begin().await?)
    }
}

/// Which unique constraint a database error names, if it is a unique violation. Postgres
/// reports the constraint name; SQLite the columns (`UNIQUE constraint failed: users.email`).
fn unique_violation(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) if db.is_unique_violation() => Some(
            db.constraint()
                .map(str::to_owned)
                .unwrap_or_else(|| db.message().to_owned()),
        ),
        _ => None,
    }
}

fn user_taken(error: sqlx::Error) -> Error {
    match unique_violation(&error) {
        Some(what) if what.contains("username") => Error::Taken(Taken::Username),
        _ => error.into(),
    }
}

fn workspace_taken(error: sqlx::Error) -> Error {
    match unique_violation(&error) {
        Some(_) => Error::Taken(Taken::WorkspaceName),
        None => error.into(),
    }
}

fn char_len(text: &str) -> i64 {
    i64::try_from(text.chars().count()).unwrap_or(i64::MAX)
}

fn len_i64(bytes: &[u8]) -> i64 {
    i64::try_from(bytes.len()).unwrap_or(i64::MAX)
}

fn limit_i64(limit: u64) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// One change of a batch refused (`Ok(Refused)`), or the whole batch failed (a database
/// error, `Err`).
fn refused(error: Error) -> Result<Applied> {
    match error {
        Error::Database(_)
        | Error::Unreachable(_)
        | Error::Migrate(_)
        | Error::UnsupportedUrl(_) => Err(error),
        other => Ok(Applied::Refused(other)),
    }
}

/// Whether `expect` allows changing an entry at `current` (`None`: no entry).
fn expected(expect: Expect, current: Option<i64>) -> bool {
    match expect {
        Expect::Any => true,
        Expect::Absent => current.is_none(),
        Expect::Version(version) => current == Some(version),
    }
}

const USER_COLUMNS: &str = "id, username, email, password_hash, created_at, updated_at";
const WORKSPACE_COLUMNS: &str =
    "id, owner_id, name, language, created_at, updated_at, last_active_at";

/// The shape of a file entry row that the helpers below read.
struct EntryRow {
    id: Uuid,
    entry: FileEntry,
}

/// `path` and everything under it, in one workspace: $1 workspace, $2 path, $3 length of
/// `path/` in characters, $4 `path/`.
macro_rules! subtree_where {
    () => {
        "workspace_id = $1 AND (path = $2 OR substr(path, 1, CAST($3 AS INTEGER)) = $4)"
    };
}

/// The packages column: one `name==version` per line.
fn split_packages(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

macro_rules! sql_store {
    ($store:ty, $conn:ty, $row:ty, $backend:literal, $lock:literal) => {
        impl $store {
            fn user_from(row: &$row) -> Result<UserRecord> {
                Ok(UserRecord {
                    id: UserId(row.try_get("id")?),
                    username: row.try_get("username")?,
                    email: row.try_get("email")?,
                    password_hash: row.try_get("password_hash")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            fn workspace_from(row: &$row) -> Result<WorkspaceRecord> {
                let language: String = row.try_get("language")?;
                Ok(WorkspaceRecord {
                    id: WorkspaceId(row.try_get("id")?),
                    owner_id: UserId(row.try_get("owner_id")?),
                    name: row.try_get("name")?,
                    language: Language::parse(&language).unwrap_or_default(),
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                    last_active_at: row.try_get("last_active_at")?,
                })
            }

            fn entry_from(row: &$row) -> Result<EntryRow> {
                let path: String = row.try_get("path")?;
                let kind: String = row.try_get("kind")?;
                Ok(EntryRow {
                    id: row.try_get("id")?,
                    entry: FileEntry {
                        // Every stored path was a WorkspacePath when written.
                        path: WorkspacePath::parse(&path).map_err(|error| {
                            Error::Database(sqlx::Error::Decode(Box::new(error)))
                        })?,
                        kind: kind_from(&kind),
                        size: row.try_get("size")?,
                        version: row.try_get("version")?,
                        hash: row.try_get("content_hash")?,
                        updated_at: row.try_get("updated_at")?,
                    },
                })
            }

            /// Checks that `ws` exists and belongs to `owner`, locking its row where the
            /// backend supports it.
            async fn owned(conn: &mut $conn, owner: UserId, ws: WorkspaceId) -> Result<()> {
                sqlx::query(concat!("SELECT id FROM workspaces WHERE id = $1 AND owner_id = $2", $lock))
                    .bind(ws.0)
                    .bind(owner.0)
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|_| ())
                    .ok_or(Error::NotFound)
            }

            async fn entry(conn: &mut $conn, ws: WorkspaceId, path: &WorkspacePath) -> Result<Option<EntryRow>> {
                let row = sqlx::query(
                    "SELECT id, path, kind, size, version, content_hash, updated_at FROM files \
                     WHERE workspace_id = $1 AND path = $2",
                )
                .bind(ws.0)
                .bind(path.as_str())
                .fetch_optional(&mut *conn)
                .await?;
                row.as_ref().map(Self::entry_from).transpose()
            }

            async fn usage_in(conn: &mut $conn, ws: WorkspaceId) -> Result<Usage> {
                let row = sqlx::query(
                    "SELECT COUNT(*) AS entries, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes \
                     FROM files WHERE workspace_id = $1",
                )
                .bind(ws.0)
                .fetch_one(&mut *conn)
                .await?;
                Ok(Usage {
                    entries: row.try_get("entries")?,
                    bytes: row.try_get("bytes")?,
                })
            }

            #[allow(clippy::too_many_arguments, reason = "one row's columns")]
            async fn insert_entry(
                conn: &mut $conn,
                ws: WorkspaceId,
                parent: Option<Uuid>,
                path: &WorkspacePath,
                kind: FileKind,
                content: &[u8],
                now: i64,
            ) -> Result<EntryRow> {
                let id = Uuid::new_v4();
                let hash = if kind == FileKind::Dir { String::new() } else { content_hash(content) };
                let result = sqlx::query(
                    "INSERT INTO files (id, workspace_id, parent_id, name, path, kind, content, size, \
                     version, content_hash, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10, $10)",
                )
                .bind(id)
                .bind(ws.0)
                .bind(parent)
                .bind(path.name())
                .bind(path.as_str())
                .bind(kind.as_str())
                .bind(content)
                .bind(len_i64(content))
                .bind(&hash)
                .bind(now)
                .execute(&mut *conn)
                .await;
                match result {
                    Ok(_) => Ok(EntryRow {
                        id,
                        entry: FileEntry {
                            path: path.clone(),
                            kind,
                            size: len_i64(content),
                            version: 1,
                            hash,
                            updated_at: now,
                        },
                    }),
                    Err(error) if unique_violation(&error).is_some() => Err(Error::Exists(path.clone())),
                    Err(error) => Err(error.into()),
                }
            }

            /// Makes sure every ancestor of `path` is a folder, creating the missing ones
            /// (counted against the entry limit). Returns the id of the direct parent.
            async fn ensure_parents(
                conn: &mut $conn,
                ws: WorkspaceId,
                path: &WorkspacePath,
                limits: &Limits,
                usage: &mut Usage,
                now: i64,
            ) -> Result<Option<Uuid>> {
                let mut parent = None;
                for ancestor in path.ancestors() {
                    match Self::entry(conn, ws, &ancestor).await? {
                        Some(row) if row.entry.kind == FileKind::Dir => parent = Some(row.id),
                        Some(_) => {
                            return Err(Error::WrongKind { path: ancestor, expected: "folder" });
                        }
                        None => {
                            if usage.entries >= limit_i64(limits.max_files_per_workspace) {
                                return Err(Error::Limit(Limit::WorkspaceFiles));
                            }
                            let row = Self::insert_entry(conn, ws, parent, &ancestor, FileKind::Dir, &[], now).await?;
                            usage.entries += 1;
                            parent = Some(row.id);
                        }
                    }
                }
                Ok(parent)
            }
            /// One change of [`Store::apply_sandbox_changes`], inside its transaction;
            /// `usage` is kept up to date as entries come and go.
            async fn apply_one(
                conn: &mut $conn,
                ws: WorkspaceId,
                change: &SandboxWrite<'_>,
                limits: &Limits,
                usage: &mut Usage,
                now: i64,
            ) -> Result<Applied> {
                let conflict = |current| Ok(Applied::Refused(Error::VersionConflict { current }));
                match *change {
                    SandboxWrite::File { path, content, expect } => {
                        let size = len_i64(content);
                        if size > limit_i64(limits.max_file_bytes) {
                            return Ok(Applied::Refused(Error::Limit(Limit::FileBytes)));
                        }
                        let existing = Self::entry(conn, ws, path).await?;
                        if !expected(expect, existing.as_ref().map(|row| row.entry.version)) {
                            return conflict(existing.map(|row| row.entry.version));
                        }
                        match existing {
                            Some(row) if row.entry.kind == FileKind::Dir => Ok(Applied::Refused(
                                Error::WrongKind { path: path.clone(), expected: "file" },
                            )),
                            Some(row) => {
                                let hash = content_hash(content);
                                if hash == row.entry.hash {
                                    return Ok(Applied::Unchanged);
                                }
                                if usage.bytes - row.entry.size + size > limit_i64(limits.max_workspace_bytes) {
                                    return Ok(Applied::Refused(Error::Limit(Limit::WorkspaceBytes)));
                                }
                                sqlx::query(
                                    "UPDATE files SET content = $1, size = $2, version = version + 1, \
                                     content_hash = $3, updated_at = $4 WHERE id = $5",
                                )
                                .bind(content)
                                .bind(size)
                                .bind(&hash)
                                .bind(now)
                                .bind(row.id)
                                .execute(&mut *conn)
                                .await?;
                                usage.bytes += size - row.entry.size;
                                Ok(Applied::Saved(FileEntry {
                                    size,
                                    version: row.entry.version + 1,
                                    hash,
                                    updated_at: now,
                                    ..row.entry
                                }))
                            }
                            None => {
                                if usage.bytes + size > limit_i64(limits.max_workspace_bytes) {
                                    return Ok(Applied::Refused(Error::Limit(Limit::WorkspaceBytes)));
                                }
                                if usage.entries >= limit_i64(limits.max_files_per_workspace) {
                                    return Ok(Applied::Refused(Error::Limit(Limit::WorkspaceFiles)));
                                }
                                let parent = match Self::ensure_parents(conn, ws, path, limits, usage, now).await {
                                    Ok(parent) => parent,
                                    Err(error) => return refused(error),
                                };
                                if usage.entries >= limit_i64(limits.max_files_per_workspace) {
                                    return Ok(Applied::Refused(Error::Limit(Limit::WorkspaceFiles)));
                                }
                                let row = Self::insert_entry(conn, ws, parent, path, FileKind::File, content, now).await?;
                                usage.entries += 1;
                                usage.bytes += size;
                                Ok(Applied::Saved(row.entry))
                            }
                        }
                    }
                    SandboxWrite::Dir { path } => match Self::entry(conn, ws, path).await? {
                        Some(row) if row.entry.kind == FileKind::Dir => Ok(Applied::Unchanged),
                        Some(_) => Ok(Applied::Refused(Error::WrongKind { path: path.clone(), expected: "folder" })),
                        None => {
                            let parent = match Self::ensure_parents(conn, ws, path, limits, usage, now).await {
                                Ok(parent) => parent,
                                Err(error) => return refused(error),
                            };
                            if usage.entries >= limit_i64(limits.max_files_per_workspace) {
                                return Ok(Applied::Refused(Error::Limit(Limit::WorkspaceFiles)));
                            }
                            let row = Self::insert_entry(conn, ws, parent, path, FileKind::Dir, &[], now).await?;
                            usage.entries += 1;
                            Ok(Applied::Saved(row.entry))
                        }
                    },
                    SandboxWrite::Remove { path, expect } => {
                        let Some(row) = Self::entry(conn, ws, path).await? else {
                            return Ok(Applied::Unchanged);
                        };
                        if !expected(expect, Some(row.entry.version)) {
                            return conflict(Some(row.entry.version));
                        }
                        if expect == Expect::Any {
                            let prefix_len = char_len(path.as_str()) + 1;
                            let prefix = format!("{path}/");
                            let subtree = |sql| {
                                sqlx::query(sql).bind(ws.0).bind(path.as_str()).bind(prefix_len).bind(prefix.clone())
                            };
                            let counted = subtree(concat!(
                                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes FROM files WHERE ",
                                subtree_where!()
                            ))
                            .fetch_one(&mut *conn)
                            .await?;
                            let (count, bytes): (i64, i64) = (counted.try_get("n")?, counted.try_get("bytes")?);
                            subtree(concat!("DELETE FROM files WHERE ", subtree_where!())).execute(&mut *conn).await?;
                            usage.entries -= count;
                            usage.bytes -= bytes;
                            return Ok(Applied::Removed(u64::try_from(count).unwrap_or_default()));
                        }
                        if row.entry.kind == FileKind::Dir {
                            let inside = sqlx::query("SELECT id FROM files WHERE parent_id = $1 LIMIT 1")
                                .bind(row.id)
                                .fetch_optional(&mut *conn)
                                .await?;
                            if inside.is_some() {
                                return conflict(Some(row.entry.version));
                            }
                        }
                        sqlx::query("DELETE FROM files WHERE id = $1").bind(row.id).execute(&mut *conn).await?;
                        usage.entries -= 1;
                        usage.bytes -= row.entry.size;
                        Ok(Applied::Removed(1))
                    }
                }
            }
        }

        #[async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(user.id = %user.id), err(level = "debug"))]
            async fn create_user(&self, user: &UserRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO users (id, username, email, password_hash, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(user.id.0)
                .bind(&user.username)
                .bind(&user.email)
                .bind(&user.password_hash)
                .bind(user.created_at)
                .bind(user.updated_at)
                .execute(&self.pool)
                .await
                .map_err(user_taken)?;
                Ok(())
            }

            async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>> {
                let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"))
                    .bind(username)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::user_from).transpose()
            }

            async fn users_by_email(&self, email: &str, most: u32) -> Result<Vec<UserRecord>> {
                let rows = sqlx::query(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE email = $1 ORDER BY created_at LIMIT $2"
                ))
                .bind(email)
                .bind(i64::from(most))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::user_from).collect()
            }

            async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>> {
                let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::user_from).transpose()
            }

            async fn set_password_hash(&self, id: UserId, hash: &str, now: i64) -> Result<()> {
                let done = sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                    .bind(hash)
                    .bind(now)
                    .bind(id.0)
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(Error::NotFound);
                }
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(user.id = %id), err(level = "debug"))]
            async fn delete_user(&self, id: UserId) -> Result<()> {
                let done = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id.0)
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(Error::NotFound);
                }
                Ok(())
            }

            async fn create_session(&self, session: &SessionRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO auth_sessions (token_hash, user_id, created_at, last_seen_at, expires_at, user_agent) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&session.token_hash)
                .bind(session.user_id.0)
                .bind(session.created_at)
                .bind(session.last_seen_at)
                .bind(session.expires_at)
                .bind(&session.user_agent)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn session(&self, token_hash: &[u8], now: i64, idle_ms: i64) -> Result<Option<(SessionRecord, UserRecord)>> {
                let row = sqlx::query(
                    "SELECT s.token_hash, s.user_id, s.created_at AS s_created_at, s.last_seen_at, s.expires_at, \
                     s.user_agent, u.id, u.username, u.email, u.password_hash, u.created_at, u.updated_at \
                     FROM auth_sessions s JOIN users u ON u.id = s.user_id \
                     WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.last_seen_at + $3 > $2",
                )
                .bind(token_hash)
                .bind(now)
                .bind(idle_ms)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let session = SessionRecord {
                    token_hash: row.try_get("token_hash")?,
                    user_id: UserId(row.try_get("user_id")?),
                    created_at: row.try_get("s_created_at")?,
                    last_seen_at: row.try_get("last_seen_at")?,
                    expires_at: row.try_get("expires_at")?,
                    user_agent: row.try_get("user_agent")?,
                };
                Ok(Some((session, Self::user_from(&row)?)))
            }

            async fn touch_session(&self, token_hash: &[u8], now: i64) -> Result<()> {
                sqlx::query("UPDATE auth_sessions SET last_seen_at = $1 WHERE token_hash = $2")
                    .bind(now)
                    .bind(token_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn delete_session(&self, token_hash: &[u8]) -> Result<()> {
                sqlx::query("DELETE FROM auth_sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn delete_sessions_of(&self, user: UserId, keep: Option<&[u8]>) -> Result<u64> {
                let done = match keep {
                    Some(keep) => sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1 AND token_hash <> $2")
                        .bind(user.0)
                        .bind(keep)
                        .execute(&self.pool)
                        .await?,
                    None => sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1")
                        .bind(user.0)
                        .execute(&self.pool)
                        .await?,
                };
                Ok(done.rows_affected())
            }

            #[tracing::instrument(skip_all, fields(user.id = %new.owner_id), err(level = "debug"))]
            async fn create_workspace(&self, new: &NewWorkspace, limits: &Limits, now: i64) -> Result<WorkspaceRecord> {
                let mut tx = self.begin().await?;
                // Locks the owner's row (Postgres) so two creates cannot both pass the count.
                sqlx::query(concat!("SELECT id FROM users WHERE id = $1", $lock))
                    .bind(new.owner_id.0)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(Error::NotFound)?;
                let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM workspaces WHERE owner_id = $1")
                    .bind(new.owner_id.0)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("n")?;
                if count >= limit_i64(limits.max_workspaces_per_user) {
                    return Err(Error::Limit(Limit::Workspaces));
                }
                let record = WorkspaceRecord {
                    id: WorkspaceId(Uuid::new_v4()),
                    owner_id: new.owner_id,
                    name: new.name.clone(),
                    language: new.language,
                    created_at: now,
                    updated_at: now,
                    last_active_at: now,
                };
                sqlx::query(&format!("INSERT INTO workspaces ({WORKSPACE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $5, $5)"))
                    .bind(record.id.0)
                    .bind(record.owner_id.0)
                    .bind(&record.name)
                    .bind(record.language.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(workspace_taken)?;
                let mut usage = Usage::default();
                for (path, content) in &new.seed {
                    let parent = Self::ensure_parents(&mut tx, record.id, path, limits, &mut usage, now).await?;
                    Self::insert_entry(&mut tx, record.id, parent, path, FileKind::File, content, now).await?;
                    usage.entries += 1;
                }
                tx.commit().await?;
                Ok(record)
            }

            async fn list_workspaces(&self, owner: UserId) -> Result<Vec<WorkspaceRecord>> {
                let rows = sqlx::query(&format!(
                    "SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE owner_id = $1 ORDER BY last_active_at DESC, name"
                ))
                .bind(owner.0)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::workspace_from).collect()
            }

            async fn workspace(&self, owner: UserId, id: WorkspaceId) -> Result<Option<WorkspaceRecord>> {
                let row = sqlx::query(&format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE id = $1 AND owner_id = $2"))
                    .bind(id.0)
                    .bind(owner.0)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::workspace_from).transpose()
            }

            #[tracing::instrument(skip_all, fields(workspace.id = %id), err(level = "debug"))]
            async fn rename_workspace(&self, owner: UserId, id: WorkspaceId, name: &str, now: i64) -> Result<WorkspaceRecord> {
                let row = sqlx::query(&format!(
                    "UPDATE workspaces SET name = $1, updated_at = $2 WHERE id = $3 AND owner_id = $4 RETURNING {WORKSPACE_COLUMNS}"
                ))
                .bind(name)
                .bind(now)
                .bind(id.0)
                .bind(owner.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(workspace_taken)?;
                row.as_ref().map(Self::workspace_from).transpose()?.ok_or(Error::NotFound)
            }

            #[tracing::instrument(skip_all, fields(workspace.id = %id), err(level = "debug"))]
            async fn delete_workspace(&self, owner: UserId, id: WorkspaceId) -> Result<()> {
                let done = sqlx::query("DELETE FROM workspaces WHERE id = $1 AND owner_id = $2")
                    .bind(id.0)
                    .bind(owner.0)
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(Error::NotFound);
                }
                Ok(())
            }

            async fn touch_workspace(&self, owner: UserId, id: WorkspaceId, now: i64) -> Result<()> {
                let done = sqlx::query("UPDATE workspaces SET last_active_at = $1 WHERE id = $2 AND owner_id = $3")
                    .bind(now)
                    .bind(id.0)
                    .bind(owner.0)
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(Error::NotFound);
                }
                Ok(())
            }

            async fn environment(&self, ws: WorkspaceId) -> Result<Option<EnvironmentRecord>> {
                let row = sqlx::query(
                    "SELECT archive, signature, packages, updated_at FROM environments \
                     WHERE workspace_id = $1",
                )
                .bind(ws.0)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row| -> Result<EnvironmentRecord> {
                    Ok(EnvironmentRecord {
                        archive: row.try_get("archive")?,
                        signature: row.try_get("signature")?,
                        packages: split_packages(&row.try_get::<String, _>("packages")?),
                        updated_at: row.try_get("updated_at")?,
                    })
                })
                .transpose()
            }

            async fn environment_summary(
                &self,
                ws: WorkspaceId,
            ) -> Result<Option<EnvironmentSummary>> {
                let row = sqlx::query(
                    "SELECT size, signature, packages, updated_at FROM environments \
                     WHERE workspace_id = $1",
                )
                .bind(ws.0)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row| -> Result<EnvironmentSummary> {
                    Ok(EnvironmentSummary {
                        size: row.try_get("size")?,
                        signature: row.try_get("signature")?,
                        packages: split_packages(&row.try_get::<String, _>("packages")?),
                        updated_at: row.try_get("updated_at")?,
                    })
                })
                .transpose()
            }

            async fn put_environment(
                &self,
                ws: WorkspaceId,
                record: &EnvironmentRecord,
            ) -> Result<()> {
                let done = sqlx::query(
                    "INSERT INTO environments \
                     (workspace_id, archive, size, signature, packages, updated_at) \
                     SELECT id, $2, $3, $4, $5, $6 FROM workspaces WHERE id = $1 \
                     ON CONFLICT (workspace_id) DO UPDATE SET archive = excluded.archive, \
                     size = excluded.size, signature = excluded.signature, \
                     packages = excluded.packages, updated_at = excluded.updated_at",
                )
                .bind(ws.0)
                .bind(&record.archive)
                .bind(record.archive.len() as i64)
                .bind(&record.signature)
                .bind(record.packages.join("\n"))
                .bind(record.updated_at)
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(Error::NotFound);
                }
                Ok(())
            }

            async fn delete_environment(&self, ws: WorkspaceId) -> Result<()> {
                sqlx::query("DELETE FROM environments WHERE workspace_id = $1")
                    .bind(ws.0)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn list_files(&self, owner: UserId, ws: WorkspaceId) -> Result<Vec<FileEntry>> {
                let mut conn = self.pool.acquire().await?;
                sqlx::query("SELECT id FROM workspaces WHERE id = $1 AND owner_id = $2")
                    .bind(ws.0)
                    .bind(owner.0)
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or(Error::NotFound)?;
                let rows = sqlx::query(
                    "SELECT id, path, kind, size, version, content_hash, updated_at FROM files \
                     WHERE workspace_id = $1 ORDER BY path",
                )
                .bind(ws.0)
                .fetch_all(&mut *conn)
                .await?;
                rows.iter().map(|row| Self::entry_from(row).map(|row| row.entry)).collect()
            }

            async fn read_file(&self, owner: UserId, ws: WorkspaceId, path: &WorkspacePath) -> Result<FileRecord> {
                let row = sqlx::query(
                    "SELECT f.id, f.path, f.kind, f.size, f.version, f.content_hash, f.updated_at, f.content \
                     FROM files f JOIN workspaces w ON w.id = f.workspace_id \
                     WHERE w.id = $1 AND w.owner_id = $2 AND f.path = $3",
                )
                .bind(ws.0)
                .bind(owner.0)
                .bind(path.as_str())
                .fetch_optional(&self.pool)
                .await?
                .ok_or(Error::NotFound)?;
                Ok(FileRecord {
                    entry: Self::entry_from(&row)?.entry,
                    content: row.try_get("content")?,
                })
            }

            #[tracing::instrument(skip_all, fields(workspace.id = %ws, path = %write.path), err(level = "debug"))]
            async fn write_file(&self, owner: UserId, ws: WorkspaceId, write: WriteFile<'_>, limits: &Limits, now: i64) -> Result<FileEntry> {
                let size = len_i64(write.content);
                if size > limit_i64(limits.max_file_bytes) {
                    return Err(Error::Limit(Limit::FileBytes));
                }
                let mut tx = self.begin().await?;
                Self::owned(&mut tx, owner, ws).await?;
                let existing = Self::entry(&mut tx, ws, write.path).await?;
                let mut usage = Self::usage_in(&mut tx, ws).await?;
                let old_size = existing.as_ref().map_or(0, |row| row.entry.size);
                if usage.bytes - old_size + size > limit_i64(limits.max_workspace_bytes) {
                    return Err(Error::Limit(Limit::WorkspaceBytes));
                }
                let entry = match (existing, write.base_version) {
                    (Some(row), _) if row.entry.kind == FileKind::Dir => {
                        return Err(Error::WrongKind { path: write.path.clone(), expected: "file" });
                    }
                    (Some(row), Some(base)) if row.entry.version == base => {
                        let hash = content_hash(write.content);
                        let done = sqlx::query(
                            "UPDATE files SET content = $1, size = $2, version = version + 1, content_hash = $3, \
                             updated_at = $4 WHERE id = $5 AND version = $6",
                        )
                        .bind(write.content)
                        .bind(size)
                        .bind(&hash)
                        .bind(now)
                        .bind(row.id)
                        .bind(base)
                        .execute(&mut *tx)
                        .await?;
                        if done.rows_affected() == 0 {
                            let current = Self::entry(&mut tx, ws, write.path).await?.map(|row| row.entry.version);
                            return Err(Error::VersionConflict { current });
                        }
                        FileEntry { size, version: base + 1, hash, updated_at: now, ..row.entry }
                    }
                    (Some(row), _) => {
                        return Err(Error::VersionConflict { current: Some(row.entry.version) });
                    }
                    (None, Some(_)) => return Err(Error::VersionConflict { current: None }),
                    (None, None) => {
                        if usage.entries >= limit_i64(limits.max_files_per_workspace) {
                            return Err(Error::Limit(Limit::WorkspaceFiles));
                        }
                        let parent = Self::ensure_parents(&mut tx, ws, write.path, limits, &mut usage, now).await?;
                        if usage.entries >= limit_i64(limits.max_files_per_workspace) {
                            return Err(Error::Limit(Limit::WorkspaceFiles));
                        }
                        Self::insert_entry(&mut tx, ws, parent, write.path, FileKind::File, write.content, now)
                            .await?
                            .entry
                    }
                };
                tx.commit().await?;
                Ok(entry)
            }

            #[tracing::instrument(skip_all, fields(workspace.id = %ws, path = %path), err(level = "debug"))]
            async fn make_dir(&self, owner: UserId, ws: WorkspaceId, path: &WorkspacePath, limits: &Limits, now: i64) -> Result<FileEntry> {
                let mut tx = self.begin().await?;
                Self::owned(&mut tx, owner, ws).await?;
                if Self::entry(&mut tx, ws, path).await?.is_some() {
                    return Err(Error::Exists(path.clone()));
                }
                let mut usage = Self::usage_in(&mut tx, ws).await?;
                let parent = Self::ensure_parents(&mut tx, ws, path, limits, &mut usage, now).await?;
                if usage.entries >= limit_i64(limits.max_files_per_workspace) {
                    return Err(Error::Limit(Limit::WorkspaceFiles));
                }
                let row = Self::insert_entry(&mut tx, ws, parent, path, FileKind::Dir, &[], now).await?;
                tx.commit().await?;
                Ok(row.entry)
            }

            #[tracing::instrument(skip_all, fields(workspace.id = %ws, from = %from, to = %to), err(level = "debug"))]
            async fn move_path(&self, owner: UserId, ws: WorkspaceId, from: &WorkspacePath, to: &WorkspacePath, limits: &Limits, now: i64) -> Result<FileEntry> {
                let mut tx = self.begin().await?;
                // Whose workspace it is, and whether the source exists, come first: another
                // user's workspace answers not_found whatever the paths.
                Self::owned(&mut tx, owner, ws).await?;
                let source = Self::entry(&mut tx, ws, from).await?.ok_or(Error::NotFound)?;
                if to.is_within(from) {
                    return Err(if to == from { Error::Exists(to.clone()) } else { Error::MoveIntoSelf });
                }
                if Self::entry(&mut tx, ws, to).await?.is_some() {
                    return Err(Error::Exists(to.clone()));
                }
                let mut usage = Self::usage_in(&mut tx, ws).await?;
                let parent = Self::ensure_parents(&mut tx, ws, to, limits, &mut usage, now).await?;
                let prefix_len = char_len(from.as_str()) + 1;
                sqlx::query(
                    "UPDATE files SET path = $1 || substr(path, CAST($2 AS INTEGER)), updated_at = $3 \
                     WHERE workspace_id = $4 AND (path = $5 OR substr(path, 1, CAST($2 AS INTEGER)) = $6)",
                )
                .bind(to.as_str())
                .bind(prefix_len)
                .bind(now)
                .bind(ws.0)
                .bind(from.as_str())
                .bind(format!("{from}/"))
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE files SET parent_id = $1, name = $2 WHERE id = $3")
                    .bind(parent)
                    .bind(to.name())
                    .bind(source.id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(FileEntry { path: to.clone(), updated_at: now, ..source.entry })
            }

            #[tracing::instrument(skip_all, fields(workspace.id = %ws, path = %path), err(level = "debug"))]
            async fn delete_path(&self, owner: UserId, ws: WorkspaceId, path: &WorkspacePath, _now: i64) -> Result<u64> {
                let mut tx = self.begin().await?;
                Self::owned(&mut tx, owner, ws).await?;
                // Counted first: cascading deletes (parent_id) are not in SQLite's row count.
                let prefix_len = char_len(path.as_str()) + 1;
                let prefix = format!("{path}/");
                let subtree = |sql| {
                    sqlx::query(sql).bind(ws.0).bind(path.as_str()).bind(prefix_len).bind(prefix.clone())
                };
                let count: i64 = subtree(concat!("SELECT COUNT(*) AS n FROM files WHERE ", subtree_where!()))
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("n")?;
                if count == 0 {
                    return Err(Error::NotFound);
                }
                subtree(concat!("DELETE FROM files WHERE ", subtree_where!())).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(u64::try_from(count).unwrap_or_default())
            }

            async fn usage(&self, owner: UserId, ws: WorkspaceId) -> Result<Usage> {
                let mut tx = self.begin().await?;
                Self::owned(&mut tx, owner, ws).await?;
                let usage = Self::usage_in(&mut tx, ws).await?;
                tx.commit().await?;
                Ok(usage)
            }

            #[tracing::instrument(skip_all, fields(workspace.id = %ws, changes = changes.len()), err(level = "debug"))]
            async fn apply_sandbox_changes(
                &self,
                owner: UserId,
                ws: WorkspaceId,
                changes: &[SandboxWrite<'_>],
                limits: &Limits,
                now: i64,
            ) -> Result<Vec<Applied>> {
                let mut tx = self.begin().await?;
                Self::owned(&mut tx, owner, ws).await?;
                let mut usage = Self::usage_in(&mut tx, ws).await?;
                let mut applied = Vec::with_capacity(changes.len());
                for change in changes {
                    applied.push(Self::apply_one(&mut tx, ws, change, limits, &mut usage, now).await?);
                }
                tx.commit().await?;
                Ok(applied)
            }
        }
    };
}

sql_store!(
    SqliteStore,
    SqliteConnection,
    sqlx::sqlite::SqliteRow,
    "sqlite",
    ""
);
sql_store!(
    PostgresStore,
    PgConnection,
    sqlx::postgres::PgRow,
    "postgres",
    " FOR UPDATE"
);
