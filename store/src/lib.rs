//! Persistence for Codepod: the [`Store`] trait and its two implementations, SQLite (the
//! embedded default, WAL) and PostgreSQL (production, several backend replicas), chosen by
//! the scheme of the database URL. Migrations for each live in `migrations/<backend>` and
//! are embedded into the binary and applied by [`connect`].
//!
//! Both implementations run the same SQL text (numbered `$N` parameters work in both) from
//! one macro, so they cannot drift apart; the same test suite runs against each.
//!
//! Every workspace and file operation takes the owner and checks it inside the same
//! transaction: a workspace that is not the caller's is indistinguishable from a missing one.

mod sql;

use std::sync::Arc;

use async_trait::async_trait;
use model::{FileEntry, FileKind, Language, Limits, UserId, WorkspaceId, WorkspacePath};

pub use sql::{PostgresStore, SqliteStore};

/// Result of a store operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which unique constraint a write ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Username,
    WorkspaceName,
}

/// Which limit a write would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    FileBytes,
    WorkspaceBytes,
    WorkspaceFiles,
    Workspaces,
}

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A unique value is already used.
    #[error("{0:?} is already taken")]
    Taken(Taken),
    /// The row (or the workspace it belongs to, for this owner) does not exist.
    #[error("not found")]
    NotFound,
    /// Something already exists at the target path.
    #[error("{0} already exists")]
    Exists(WorkspacePath),
    /// A write named a version that is no longer current; `current` is (`None`: the file
    /// no longer exists).
    #[error("stale version; current is {current:?}")]
    VersionConflict { current: Option<i64> },
    /// A path component that must be a folder is a file, or the reverse.
    #[error("{path} is not a {expected}")]
    WrongKind {
        path: WorkspacePath,
        expected: &'static str,
    },
    /// A folder cannot be moved into its own subtree.
    #[error("cannot move a folder into itself")]
    MoveIntoSelf,
    #[error("limit exceeded: {0:?}")]
    Limit(Limit),
    #[error("unsupported database URL: {0}")]
    UnsupportedUrl(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database cannot be reached now (down, restarting, every connection busy): worth
    /// trying again, unlike [`Error::Database`].
    #[error("the database is unreachable: {0}")]
    Unreachable(sqlx::Error),
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        let unreachable = match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            // Postgres: connection exceptions (08…), operator intervention (57P01 admin
            // shutdown, 57P02 crash shutdown, 57P03 cannot connect now) and every connection
            // slot taken (53300 too many connections, for the server or for its role).
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("08") || code.starts_with("57P") || code == "53300"
            }),
            _ => false,
        };
        if unreachable {
            Self::Unreachable(error)
        } else {
            Self::Database(error)
        }
    }
}

/// A user row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An auth session row. The token itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub token_hash: Vec<u8>,
    pub user_id: UserId,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub user_agent: Option<String>,
}

/// A workspace row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceRecord {
    pub id: WorkspaceId,
    pub owner_id: UserId,
    pub name: String,
    pub language: Language,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_active_at: i64,
}

/// A file with its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub entry: FileEntry,
    pub content: Vec<u8>,
}

/// A new workspace with the files it starts with.
#[derive(Debug, Clone)]
pub struct NewWorkspace {
    pub owner_id: UserId,
    pub name: String,
    pub language: Language,
    pub seed: Vec<(WorkspacePath, Vec<u8>)>,
}

/// A file write: `base_version` is the version the writer edited, or `None` to create a
/// new file (which conflicts if one exists).
#[derive(Debug, Clone)]
pub struct WriteFile<'a> {
    pub path: &'a WorkspacePath,
    pub content: &'a [u8],
    pub base_version: Option<i64>,
}

/// What must be stored at a path for a [`SandboxWrite`] to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Whatever is there (a change the sandbox's watcher saw: it is what the user's code
    /// just did).
    Any,
    /// Nothing.
    Absent,
    /// This version of the entry: anything newer was saved after the caller looked, and wins.
    Version(i64),
}

/// One change made inside a running sandbox, for [`Store::apply_sandbox_changes`].
#[derive(Debug, Clone, Copy)]
pub enum SandboxWrite<'a> {
    /// Create or replace a file (creating missing parent folders).
    File {
        path: &'a WorkspacePath,
        content: &'a [u8],
        expect: Expect,
    },
    /// Create a folder and its missing parents.
    Dir { path: &'a WorkspacePath },
    /// Delete an entry. With [`Expect::Any`] a folder goes with everything inside it; with
    /// [`Expect::Version`] only that entry goes, and a folder only once nothing is left in it.
    Remove {
        path: &'a WorkspacePath,
        expect: Expect,
    },
}

/// What became of one [`SandboxWrite`].
#[derive(Debug)]
pub enum Applied {
    /// A file written or a folder made: its entry now.
    Saved(FileEntry),
    /// Entries deleted (a folder counts with what was in it).
    Removed(u64),
    /// Already so (the same content, an existing folder, nothing to delete).
    Unchanged,
    /// Not applied, and why: a limit, the wrong kind, or what is stored is not what was
    /// expected ([`Error::VersionConflict`]).
    Refused(Error),
}

/// A workspace's installed packages as kept: the agent's archive of `~/.local`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentRecord {
    pub archive: Vec<u8>,
    pub signature: String,
    /// `name==version` of each.
    pub packages: Vec<String>,
    pub updated_at: i64,
}

/// What is kept of a workspace's packages, without the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentSummary {
    pub size: i64,
    pub signature: String,
    pub packages: Vec<String>,
    pub updated_at: i64,
}

/// How a workspace's files add up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub entries: i64,
    pub bytes: i64,
}

/// Everything Codepod keeps. Object-safe, so the server holds an `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// A cheap round trip, for `/readyz`.
    async fn ping(&self) -> Result<()>;

    // --- users ---------------------------------------------------------------------
    async fn create_user(&self, user: &UserRecord) -> Result<()>;
    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>>;
    /// The accounts with this email address (not unique: sign-up does not reveal whether
    /// an address is registered), oldest first, at most `most`.
    async fn users_by_email(&self, email: &str, most: u32) -> Result<Vec<UserRecord>>;
    async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>>;
    async fn set_password_hash(&self, id: UserId, hash: &str, now: i64) -> Result<()>;
    /// Deletes the user and, by cascade, their sessions, workspaces and files.
    async fn delete_user(&self, id: UserId) -> Result<()>;

    // --- auth sessions ------------------------------------------------------------
    async fn create_session(&self, session: &SessionRecord) -> Result<()>;
    /// The live session for this token hash and its user; `None` if missing or expired
    /// (absolute expiry `expires_at`, idle expiry `last_seen_at + idle_ms`).
    async fn session(
        &self,
        token_hash: &[u8],
        now: i64,
        idle_ms: i64,
    ) -> Result<Option<(SessionRecord, UserRecord)>>;
    async fn touch_session(&self, token_hash: &[u8], now: i64) -> Result<()>;
    async fn delete_session(&self, token_hash: &[u8]) -> Result<()>;
    /// Deletes every session of the user except `keep`; returns how many.
    async fn delete_sessions_of(&self, user: UserId, keep: Option<&[u8]>) -> Result<u64>;

    // --- workspaces -----------------------------------------------------------------
    async fn create_workspace(
        &self,
        new: &NewWorkspace,
        limits: &Limits,
        now: i64,
    ) -> Result<WorkspaceRecord>;
    async fn list_workspaces(&self, owner: UserId) -> Result<Vec<WorkspaceRecord>>;
    async fn workspace(&self, owner: UserId, id: WorkspaceId) -> Result<Option<WorkspaceRecord>>;
    async fn rename_workspace(
        &self,
        owner: UserId,
        id: WorkspaceId,
        name: &str,
        now: i64,
    ) -> Result<WorkspaceRecord>;
    async fn delete_workspace(&self, owner: UserId, id: WorkspaceId) -> Result<()>;
    async fn touch_workspace(&self, owner: UserId, id: WorkspaceId, now: i64) -> Result<()>;

    /// The workspace's packed packages, if any were kept. Not scoped by owner: for the
    /// sandbox's start, which has checked it already.
    async fn environment(&self, ws: WorkspaceId) -> Result<Option<EnvironmentRecord>>;
    /// What is kept of them, without the archive.
    async fn environment_summary(&self, ws: WorkspaceId) -> Result<Option<EnvironmentSummary>>;
    /// Keeps (replaces) the workspace's packed packages; `NotFound` if it is gone.
    async fn put_environment(&self, ws: WorkspaceId, record: &EnvironmentRecord) -> Result<()>;
    /// Forgets them (nothing kept is fine).
    async fn delete_environment(&self, ws: WorkspaceId) -> Result<()>;

    // --- files ------------------------------------------------------------------------
    async fn list_files(&self, owner: UserId, ws: WorkspaceId) -> Result<Vec<FileEntry>>;
    async fn read_file(
        &self,
        owner: UserId,
        ws: WorkspaceId,
        path: &WorkspacePath,
    ) -> Result<FileRecord>;
    /// Creates or replaces a file (creating missing parent folders) under optimistic
    /// concurrency; see [`WriteFile`].
    async fn write_file(
        &self,
        owner: UserId,
        ws: WorkspaceId,
        write: WriteFile<'_>,
        limits: &Limits,
        now: i64,
    ) -> Result<FileEntry>;
    /// Creates a folder and any missing parents. An existing folder is [`Error::Exists`].
    async fn make_dir(
        &self,
        owner: UserId,
        ws: WorkspaceId,
        path: &WorkspacePath,
        limits: &Limits,
        now: i64,
    ) -> Result<FileEntry>;
    /// Moves or renames a file or a folder with everything inside it.
    async fn move_path(
        &self,
        owner: UserId,
        ws: WorkspaceId,
        from: &WorkspacePath,
        to: &WorkspacePath,
        limits: &Limits,
        now: i64,
    ) -> Result<FileEntry>;
    /// Deletes a file, or a folder with everything inside it; returns how many entries.
    async fn delete_path(
        &self,
        owner: UserId,
        ws: WorkspaceId,
        path: &WorkspacePath,
        now: i64,
    ) -> Result<u64>;
    async fn usage(&self, owner: UserId, ws: WorkspaceId) -> Result<Usage>;
    /// Applies changes made inside a running sandbox, in order, in one transaction: one
    /// result per change, each refused alone (a limit, a conflict) without undoing the
    /// others. Many changes at once (a `git clone`, a resync) cost one commit, and the
    /// workspace's usage is counted once, not per file.
    async fn apply_sandbox_changes(
        &self,
        owner: UserId,
        ws: WorkspaceId,
        changes: &[SandboxWrite<'_>],
        limits: &Limits,
        now: i64,
    ) -> Result<Vec<Applied>>;
}

/// Opens the store named by `url` (`sqlite://…` or `postgres://…`) and applies migrations.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        let scheme = url.split(':').next().unwrap_or_default();
        Err(Error::UnsupportedUrl(format!(
            "scheme `{scheme}` (use sqlite: or postgres:)"
        )))
    }
}

/// Hex SHA-256 of file content, as stored in `content_hash`.
pub fn content_hash(content: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(content);
    let mut out = String::with_capacity(64);
    for byte in digest {
        use std::fmt::Write;
        let _ = write!(out, "{byte:02x}");
    }
    out
}

pub(crate) fn kind_from(text: &str) -> FileKind {
    FileKind::parse(text).unwrap_or(FileKind::File)
}
