//! File sync between the database and a running sandbox, both ways, converging whatever
//! the watcher misses.
//!
//! - **Sandbox → database**: a task per running sandbox follows the change stream of its
//!   control connection and writes the changes to the database in batches (one transaction
//!   for everything already queued: a `git clone` is one commit, not thousands). The
//!   sandbox's view wins over the stored version: it is what the user's code just did.
//! - **Resync**: when changes were lost — the watcher fell behind a burst, the kernel's
//!   inotify queue overflowed, the connection to the agent ended and a new one was opened —
//!   a snapshot of the sandbox (paths, sizes, hashes) is compared with the database and
//!   only what differs is read and written: the database ends up equal to the sandbox's
//!   workspace, within the limits and the ignore list. The snapshot and the database
//!   listing it is compared with are taken while no save is between its commit and its
//!   mirror ([`Sandboxes::quiet`]), and every write of a resync names the version it saw,
//!   so a save made after them is never undone.
//! - **Database → sandbox**: every save, mkdir, move and delete is mirrored into the running
//!   sandbox after it is committed. The database write stands whatever happens there; a
//!   sandbox that missed it is refilled on its next start.
//!
//! The watcher reports the server's own mirror writes too; the hashes of recent mirror
//! writes ([`Mirrors`]) tell those echoes from changes made inside. What a limit refused is
//! told to the user ([`NotKept`]), logged and counted.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

use model::{
    FileEntry, FileKind, NotKept, UserId, WorkspaceId, WorkspacePath, workspaces::NOT_KEPT_EXAMPLES,
};
use sandbox::agent::{
    AgentConnection, Changes, Failure, MAX_SNAPSHOT_ENTRIES, SandboxChange, Snapshot,
};
use store::{Applied, Expect, SandboxWrite};

use super::ResyncLabels;
use crate::{Error, Result, Services, events::FileEvent, now_ms};

/// How long a mirrored write is remembered (far longer than the watcher's debounce).
const MIRROR_MEMORY: Duration = Duration::from_secs(30);
/// Mirrored writes remembered per file: enough that an echo reported while saves keep
/// landing (the sync task behind by a burst of them, 5 ms apart) is still known as ours.
const MIRRORS_PER_FILE: usize = 128;
/// Pause before the sync opens a new connection after one ended.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);
/// Attempts to reach an agent whose connection ended before its sandbox is taken for dead.
const RECONNECT_ATTEMPTS: u32 = 5;
/// Changes written in one transaction at most…
const BATCH: usize = 1000;
/// … and their content bytes.
const BATCH_BYTES: usize = 16 * 1024 * 1024;
/// After a lag, the stream must be quiet this long before the snapshot is taken (during a
/// burst it would be stale at once, and another lag would follow)…
const SETTLE_QUIET: Duration = Duration::from_millis(300);
/// … but the snapshot is not put off for longer than this.
const SETTLE_MAX: Duration = Duration::from_secs(5);
/// Files read from the agent at once during a resync.
const RESYNC_READS: usize = 32;
/// Past this many changes, a resync tells open tabs to reload their tree once instead of
/// sending an event per file.
const EVENTS_PER_RESYNC: usize = 64;
/// A resync that failed (the database or the agent did not answer) is tried again after
/// this long.
const RESYNC_RETRY: Duration = Duration::from_secs(2);

/// Content hashes the server wrote into one sandbox file lately, and when.
type Writes = VecDeque<(String, Instant)>;

/// Content hashes the server wrote into sandbox files, and when, per (workspace, path).
#[derive(Default)]
pub(super) struct Mirrors(Mutex<HashMap<(WorkspaceId, WorkspacePath), Writes>>);

impl Mirrors {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(WorkspaceId, WorkspacePath), Writes>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes that the server is writing `hash` into `path` of the sandbox.
    fn remember(&self, ws: WorkspaceId, path: &WorkspacePath, hash: String) {
        let now = Instant::now();
        let mut mirrored = self.lock();
        mirrored.retain(|_, writes| {
            writes.retain(|(_, at)| now.duration_since(*at) < MIRROR_MEMORY);
            !writes.is_empty()
        });
        let writes = mirrored.entry((ws, path.clone())).or_default();
        if writes.len() >= MIRRORS_PER_FILE {
            writes.pop_front();
        }
        writes.push_back((hash, now));
    }

    /// Whether `hash` is a content the server itself wrote into `path` lately.
    fn is_own(&self, ws: WorkspaceId, path: &WorkspacePath, hash: &str) -> bool {
        self.lock().get(&(ws, path.clone())).is_some_and(|writes| {
            writes
                .iter()
                .any(|(known, at)| known == hash && at.elapsed() < MIRROR_MEMORY)
        })
    }

    /// Forgets a stopped sandbox's writes.
    pub(super) fn forget(&self, ws: WorkspaceId) {
        self.lock().retain(|(of, _), _| *of != ws);
    }
}

/// A change already committed to the database, to mirror into the sandbox.
pub(crate) enum Mirror<'a> {
    Write {
        path: &'a WorkspacePath,
        content: &'a [u8],
    },
    MakeDir(&'a WorkspacePath),
    Move {
        from: &'a WorkspacePath,
        to: &'a WorkspacePath,
    },
    Delete(&'a WorkspacePath),
}

/// One change to write to the database, owning what it writes.
#[derive(Debug)]
enum Change {
    File {
        path: WorkspacePath,
        content: Vec<u8>,
        expect: Expect,
    },
    Dir(WorkspacePath),
    Remove {
        path: WorkspacePath,
        expect: Expect,
    },
}

impl Change {
    fn path(&self) -> &WorkspacePath {
        match self {
            Self::File { path, .. } | Self::Dir(path) | Self::Remove { path, .. } => path,
        }
    }

    fn as_write(&self) -> SandboxWrite<'_> {
        match self {
            Self::File {
                path,
                content,
                expect,
            } => SandboxWrite::File {
                path,
                content,
                expect: *expect,
            },
            Self::Dir(path) => SandboxWrite::Dir { path },
            Self::Remove { path, expect } => SandboxWrite::Remove {
                path,
                expect: *expect,
            },
        }
    }
}

/// What the database did not take in one sync, gathered for the user.
#[derive(Default)]
struct Refusals {
    count: u64,
    reason: Option<String>,
    examples: Vec<String>,
}

impl Refusals {
    fn add(&mut self, path: &WorkspacePath, reason: String) {
        self.count += 1;
        self.reason.get_or_insert(reason);
        if self.examples.len() < NOT_KEPT_EXAMPLES {
            self.examples.push(path.to_string());
        }
    }

    fn into_not_kept(self) -> Option<NotKept> {
        (self.count > 0).then(|| NotKept {
            count: self.count,
            reason: self.reason.unwrap_or_default(),
            examples: self.examples,
            at: now_ms(),
        })
    }
}

/// A file read from the sandbox for a change event without content.
enum Read {
    Content(Vec<u8>),
    /// Larger than the agent reads, so larger than any file the database takes.
    TooLarge,
    Gone,
}

/// Why the database refused a change, in words for the user; `None` for a change that lost
/// to a newer save (nothing is lost: the newer save is there).
fn refusal_reason(error: &store::Error, services: &Services) -> Option<String> {
    use store::{Error as S, Limit};
    let limits = &services.limits;
    Some(match error {
        S::Limit(Limit::FileBytes) => services.file_size_reason(),
        S::Limit(Limit::WorkspaceBytes) => format!(
            "the workspace holds at most {} of files",
            size_words(limits.max_workspace_bytes)
        ),
        S::Limit(Limit::WorkspaceFiles) => format!(
            "the workspace holds at most {} files and folders",
            limits.max_files_per_workspace
        ),
        S::WrongKind { path, expected } => format!("{path} is not a {expected} in the database"),
        S::VersionConflict { .. } => return None,
        other => other.to_string(),
    })
}

/// `10 MiB`, `512 KiB`.
fn size_words(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1024 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// What a resync did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ResyncReport {
    /// Files and folders written or made in the database.
    pub saved: u64,
    /// Entries deleted from the database.
    pub removed: u64,
    /// Changes the database refused (limits).
    pub not_kept: u64,
}

impl Services {
    fn file_size_reason(&self) -> String {
        format!(
            "files larger than {} are not saved",
            size_words(self.limits.max_file_bytes)
        )
    }

    /// Follows the ready sandbox's changes into the database until it stops, starting with
    /// the change stream opened at boot.
    pub(super) fn spawn_sync(&self, owner: UserId, ws: WorkspaceId, changes: Changes) {
        let services = self.clone();
        let task = tokio::spawn(async move { services.follow_changes(owner, ws, changes).await });
        match self.sandboxes.entries().get_mut(&ws) {
            Some(entry) => entry.sync = Some(task),
            None => task.abort(),
        }
    }

    async fn follow_changes(&self, owner: UserId, ws: WorkspaceId, first: Changes) {
        let mut changes = Some(first);
        loop {
            let mut stream = match changes.take() {
                Some(stream) => stream,
                None => match self.rewatch(ws).await {
                    Some(stream) => {
                        self.sandboxes.metrics.sync_reconnects.inc();
                        tracing::info!(workspace.id = %ws, "sandbox sync reconnected; resyncing");
                        // What changed while nobody watched.
                        self.resync_until_done(owner, ws, "reconnect").await;
                        stream
                    }
                    None => return,
                },
            };
            while let Some(change) = stream.next().await {
                if change == SandboxChange::Lagged {
                    self.sandboxes.metrics.watch_lags.inc();
                    tracing::warn!(workspace.id = %ws, "the sandbox's change stream dropped changes; resyncing from a snapshot");
                    settle(&mut stream).await;
                    self.resync_until_done(owner, ws, "lag").await;
                    continue;
                }
                let mut batch = vec![change];
                let mut bytes = 0;
                while batch.len() < BATCH && bytes < BATCH_BYTES {
                    let Some(more) = stream.next_queued() else {
                        break;
                    };
                    if let SandboxChange::Changed {
                        content: Some(content),
                        ..
                    } = &more
                    {
                        bytes += content.len();
                    }
                    batch.push(more);
                }
                if let Err(error) = self.apply_sandbox_changes(owner, ws, batch).await {
                    // The database did not answer: the changes are not lost in the sandbox;
                    // a resync brings them in once it answers again.
                    tracing::warn!(workspace.id = %ws, error = %error, "changes made in the sandbox could not be saved; resyncing");
                    self.resync_until_done(owner, ws, "error").await;
                }
            }
            if !self.sandboxes.is_ready(ws) {
                tracing::debug!(workspace.id = %ws, "sandbox sync ended");
                return;
            }
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }

    /// A new change stream for a ready sandbox whose connection ended; `None` once it has
    /// stopped, or when its agent cannot be reached again (it died: the sandbox is then
    /// stopped, and its next start fills a new one from the database).
    async fn rewatch(&self, ws: WorkspaceId) -> Option<Changes> {
        let mut failures = 0;
        loop {
            if !self.sandboxes.is_ready(ws) {
                return None;
            }
            let watched = match self.sandboxes.control(ws).await {
                Ok(control) => control.watch().await.map_err(super::runtime_error),
                Err(Error::NotFound) => return None,
                Err(error) => Err(error),
            };
            match watched {
                Ok(changes) => return Some(changes),
                Err(error) => {
                    failures += 1;
                    if failures >= RECONNECT_ATTEMPTS {
                        tracing::warn!(workspace.id = %ws, error = %error, "the sandbox's agent cannot be reached; stopping the sandbox");
                        // On a task of its own: stopping aborts this one (the entry's sync).
                        // Only this sandbox: a new one may have been started meanwhile.
                        let started_at = self.sandboxes.status_of(ws).started_at;
                        let sandboxes = self.sandboxes.clone();
                        tokio::spawn(async move {
                            if sandboxes.status_of(ws).started_at == started_at {
                                let _ = sandboxes.stop(ws, "agent_lost").await;
                            }
                        });
                        return None;
                    }
                    tracing::info!(workspace.id = %ws, error = %error, "cannot watch the sandbox; trying again");
                    tokio::time::sleep(RECONNECT_PAUSE * failures).await;
                }
            }
        }
    }

    /// Writes changes the watcher reported to the database (one transaction), tells open
    /// tabs, and tells the user what was not kept.
    async fn apply_sandbox_changes(
        &self,
        owner: UserId,
        ws: WorkspaceId,
        batch: Vec<SandboxChange>,
    ) -> Result<()> {
        self.sandboxes.touch(ws);
        let mut changes = Vec::with_capacity(batch.len());
        let mut too_large = Refusals::default();
        for change in batch {
            match change {
                SandboxChange::Changed {
                    path, is_dir: true, ..
                } => changes.push(Change::Dir(path)),
                SandboxChange::Changed {
                    path,
                    content: Some(content),
                    ..
                } => {
                    // Our own write coming back (maybe after a newer save): not a change.
                    if !self
                        .sandboxes
                        .mirrors
                        .is_own(ws, &path, &store::content_hash(&content))
                    {
                        changes.push(Change::File {
                            path,
                            content,
                            expect: Expect::Any,
                        });
                    }
                }
                SandboxChange::Changed { path, .. } => {
                    // Over what a change event carries: read it (the file size limit, not
                    // the event's, decides whether it is kept).
                    match self.read_from_sandbox(ws, &path).await? {
                        Read::Content(content) => changes.push(Change::File {
                            path,
                            content,
                            expect: Expect::Any,
                        }),
                        Read::TooLarge => too_large.add(&path, self.file_size_reason()),
                        Read::Gone => {}
                    }
                }
                SandboxChange::Removed { path } => changes.push(Change::Remove {
                    path,
                    expect: Expect::Any,
                }),
                SandboxChange::Lagged => {}
            }
        }
        let (_, refused) = self.write_changes(owner, ws, &changes, true).await?;
        merge(&mut too_large, refused);
        self.not_kept(ws, too_large);
        Ok(())
    }

    /// A file's content from the sandbox, for a change event that came without it.
    async fn read_from_sandbox(&self, ws: WorkspaceId, path: &WorkspacePath) -> Result<Read> {
        let control = self.sandboxes.control(ws).await?;
        match control.read_file(path).await {
            Ok(content) => Ok(Read::Content(content)),
            Err(sandbox::Error::Agent { failure, .. }) => Ok(match failure {
                Failure::TooLarge => Read::TooLarge,
                // Gone again, or no longer a regular file: the watcher reports what it is.
                _ => Read::Gone,
            }),
            Err(error) => Err(super::runtime_error(error)),
        }
    }

    /// Writes `changes` in one transaction; tells open tabs what changed (one event each, or
    /// one "reload" when there are many and `per_file` is false). Returns how many entries
    /// were saved and removed, and what was refused.
    async fn write_changes(
        &self,
        owner: UserId,
        ws: WorkspaceId,
        changes: &[Change],
        per_file: bool,
    ) -> Result<((u64, u64), Refusals)> {
        let mut refusals = Refusals::default();
        if changes.is_empty() {
            return Ok(((0, 0), refusals));
        }
        let writes: Vec<SandboxWrite<'_>> = changes.iter().map(Change::as_write).collect();
        let applied = self
            .store
            .apply_sandbox_changes(owner, ws, &writes, &self.limits, now_ms())
            .await?;
        let (mut saved, mut removed) = (0, 0);
        let mut events = Vec::new();
        for (change, applied) in changes.iter().zip(applied) {
            let path = change.path();
            match applied {
                Applied::Saved(entry) => {
                    saved += 1;
                    events.push(FileEvent::Changed {
                        path: path.to_string(),
                        version: (entry.kind == FileKind::File).then_some(entry.version),
                    });
                }
                Applied::Removed(count) => {
                    removed += count;
                    events.push(FileEvent::Removed {
                        path: path.to_string(),
                    });
                }
                Applied::Unchanged => {}
                Applied::Refused(error) => match refusal_reason(&error, self) {
                    Some(reason) => {
                        tracing::info!(workspace.id = %ws, path = %path, reason, "a change made in the sandbox was not kept");
                        refusals.add(path, reason);
                    }
                    None => {
                        tracing::debug!(workspace.id = %ws, path = %path, "a change made in the sandbox lost to a newer save");
                    }
                },
            }
        }
        if per_file || events.len() <= EVENTS_PER_RESYNC {
            for event in events {
                self.events.publish(ws, event);
            }
        } else {
            self.events.publish(ws, FileEvent::Resync);
        }
        Ok(((saved, removed), refusals))
    }

    /// Records and announces what the database did not take.
    fn not_kept(&self, ws: WorkspaceId, refusals: Refusals) {
        let count = refusals.count;
        let Some(not_kept) = refusals.into_not_kept() else {
            return;
        };
        self.sandboxes.metrics.not_kept.inc_by(count);
        tracing::warn!(workspace.id = %ws, count, reason = %not_kept.reason, "changes made in the sandbox were not kept");
        if let Some(entry) = self.sandboxes.entries().get_mut(&ws) {
            entry.not_kept = Some(not_kept.clone());
        }
        self.events.publish(ws, FileEvent::NotKept(not_kept));
    }

    /// Resyncs, and tries again (while the sandbox runs) until a resync succeeds.
    async fn resync_until_done(&self, owner: UserId, ws: WorkspaceId, reason: &str) {
        loop {
            match self.resync(owner, ws, reason).await {
                Ok(_) => return,
                Err(Error::NotFound) => return,
                Err(error) => {
                    tracing::warn!(workspace.id = %ws, error = %error, "resync failed; trying again");
                    if !self.sandboxes.is_ready(ws) {
                        return;
                    }
                    tokio::time::sleep(RESYNC_RETRY).await;
                }
            }
        }
    }

    /// Brings the database to the sandbox's state: a snapshot of the sandbox is compared
    /// with the stored entries, and only files whose hash differs are read and written.
    /// `reason` labels the metric and the log line.
    pub async fn resync(
        &self,
        owner: UserId,
        ws: WorkspaceId,
        reason: &str,
    ) -> Result<ResyncReport> {
        let started = Instant::now();
        let control = self.sandboxes.control(ws).await?;
        let (stored, snapshot) = {
            // No save is between its commit and its mirror while these two are taken: the
            // listing and the snapshot agree on everything saved before them.
            let _quiet = self.sandboxes.quiet(ws).await;
            let stored = self.store.list_files(owner, ws).await?;
            let snapshot = control.snapshot().await.map_err(super::runtime_error)?;
            (stored, snapshot)
        };
        let plan = plan(&stored, &snapshot, self.limits.max_file_bytes);
        let mut report = ResyncReport::default();
        let mut refusals = Refusals::default();
        for path in &plan.too_large {
            refusals.add(path, self.file_size_reason());
        }
        let removals: Vec<Change> = plan
            .removals
            .into_iter()
            .map(|(path, version)| Change::Remove {
                path,
                expect: Expect::Version(version),
            })
            .collect();
        for chunk in removals.chunks(BATCH) {
            let ((saved, removed), refused) = self.write_changes(owner, ws, chunk, false).await?;
            report.saved += saved;
            report.removed += removed;
            merge(&mut refusals, refused);
        }
        // Folders and files in path order (parents first), files read in pipelined chunks.
        let mut pending = plan.writes.into_iter().peekable();
        while pending.peek().is_some() {
            let mut chunk = Vec::new();
            let mut bytes = 0u64;
            while chunk.len() < BATCH && bytes < BATCH_BYTES as u64 {
                let Some(write) = pending.next() else { break };
                if let Planned::File { size, .. } = &write {
                    bytes += size;
                }
                chunk.push(write);
            }
            let changes = self.fetch(&control, chunk).await?;
            let ((saved, removed), refused) =
                self.write_changes(owner, ws, &changes, false).await?;
            report.saved += saved;
            report.removed += removed;
            merge(&mut refusals, refused);
        }
        report.not_kept = refusals.count;
        if !snapshot.complete {
            refusals.count += 1;
            refusals.reason = Some(format!(
                "the sandbox holds more than {MAX_SNAPSHOT_ENTRIES} files and folders; only the first were compared"
            ));
        }
        self.not_kept(ws, refusals);
        let seconds = started.elapsed().as_secs_f64();
        self.sandboxes
            .metrics
            .resyncs
            .get_or_create(&ResyncLabels {
                reason: reason.to_owned(),
            })
            .inc();
        self.sandboxes.metrics.resync_seconds.observe(seconds);
        tracing::info!(
            workspace.id = %ws,
            reason,
            saved = report.saved,
            removed = report.removed,
            not_kept = report.not_kept,
            entries = snapshot.files.len(),
            seconds,
            "resynced the database with the sandbox"
        );
        Ok(report)
    }

    /// Mirrors a change already committed to the database into the running sandbox, if
    /// there is one. Failures are logged: the database write stands.
    pub(crate) async fn mirror(&self, ws: WorkspaceId, change: Mirror<'_>) {
        if !self.sandboxes.is_ready(ws) {
            return;
        }
        self.sandboxes.touch(ws);
        if let Mirror::Write { path, content } = &change {
            self.sandboxes
                .mirrors
                .remember(ws, path, store::content_hash(content));
        }
        let result: Result<()> = async {
            let control = self.sandboxes.control(ws).await?;
            let done = match change {
                Mirror::Write { path, content } => control.write_file(path, content).await,
                Mirror::MakeDir(path) => control.make_dir(path).await,
                Mirror::Move { from, to } => control.rename(from, to).await,
                Mirror::Delete(path) => control.delete(path).await,
            };
            done.map_err(super::runtime_error)
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(workspace.id = %ws, error = %error, "could not mirror a change into the sandbox");
        }
    }

    /// Reads the files of a chunk of planned writes from the agent, several at a time.
    async fn fetch(&self, control: &AgentConnection, chunk: Vec<Planned>) -> Result<Vec<Change>> {
        let mut changes = Vec::with_capacity(chunk.len());
        let mut chunk = chunk.into_iter().peekable();
        while chunk.peek().is_some() {
            let group: Vec<Planned> = chunk.by_ref().take(RESYNC_READS).collect();
            let reads = group.iter().map(|planned| async move {
                match planned {
                    Planned::File { path, .. } => Some(control.read_file(path).await),
                    Planned::Dir(_) => None,
                }
            });
            let contents = futures_util::future::join_all(reads).await;
            for (planned, content) in group.into_iter().zip(contents) {
                match (planned, content) {
                    (Planned::Dir(path), _) => changes.push(Change::Dir(path)),
                    (Planned::File { path, expect, .. }, Some(Ok(content))) => {
                        changes.push(Change::File {
                            path,
                            content,
                            expect,
                        });
                    }
                    // Gone or changed since the snapshot: the watcher reports it.
                    (Planned::File { .. }, Some(Err(sandbox::Error::Agent { .. }))) => {}
                    (Planned::File { .. }, Some(Err(error))) => {
                        return Err(super::runtime_error(error));
                    }
                    (Planned::File { .. }, None) => {}
                }
            }
        }
        Ok(changes)
    }
}

fn merge(into: &mut Refusals, from: Refusals) {
    into.count += from.count;
    if into.reason.is_none() {
        into.reason = from.reason;
    }
    for example in from.examples {
        if into.examples.len() < NOT_KEPT_EXAMPLES {
            into.examples.push(example);
        }
    }
}

/// A write a resync will make, before the content is read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Planned {
    File {
        path: WorkspacePath,
        size: u64,
        expect: Expect,
    },
    Dir(WorkspacePath),
}

/// What a resync must change in the database to match a snapshot.
#[derive(Debug, Default, PartialEq, Eq)]
struct Plan {
    /// Entries (and the version seen) to delete, deepest first.
    removals: Vec<(WorkspacePath, i64)>,
    /// Folders to make and files to write, in path order.
    writes: Vec<Planned>,
    /// Files over the file size limit, not read.
    too_large: Vec<WorkspacePath>,
}

/// Compares the stored entries with a snapshot. Stored entries the snapshot does not list
/// are deleted only when the snapshot is complete and they are not at or under an unlisted
/// path (an ignored folder, a symlink: what lies there was not looked at).
fn plan(stored: &[FileEntry], snapshot: &Snapshot, max_file_bytes: u64) -> Plan {
    let by_path: HashMap<&WorkspacePath, &FileEntry> =
        stored.iter().map(|entry| (&entry.path, entry)).collect();
    let listed: HashMap<&WorkspacePath, bool> = snapshot
        .files
        .iter()
        .map(|file| (&file.path, file.is_dir))
        .collect();
    let mut plan = Plan::default();
    if snapshot.complete {
        for entry in stored {
            let kept = listed
                .get(&entry.path)
                .is_some_and(|is_dir| *is_dir == (entry.kind == FileKind::Dir));
            let unlisted = snapshot
                .unlisted
                .iter()
                .any(|unlisted| entry.path.is_within(unlisted));
            if !kept && !unlisted {
                plan.removals.push((entry.path.clone(), entry.version));
            }
        }
        plan.removals.sort_by(|(a, _), (b, _)| b.cmp(a));
    }
    for file in &snapshot.files {
        let stored = by_path.get(&file.path);
        let same_kind = stored.is_some_and(|entry| (entry.kind == FileKind::Dir) == file.is_dir);
        // An entry of the other kind is removed first (above), so this one is new.
        let expect = match stored {
            Some(entry) if same_kind => Expect::Version(entry.version),
            _ => Expect::Absent,
        };
        if file.is_dir {
            if !same_kind {
                plan.writes.push(Planned::Dir(file.path.clone()));
            }
        } else if !same_kind || stored.is_some_and(|entry| entry.hash != file.hash) {
            if file.size > max_file_bytes {
                plan.too_large.push(file.path.clone());
            } else {
                plan.writes.push(Planned::File {
                    path: file.path.clone(),
                    size: file.size,
                    expect,
                });
            }
        }
    }
    plan
}

/// After a lag: lets a burst of changes finish (their state is in the snapshot about to be
/// taken, so they are dropped), at most [`SETTLE_MAX`].
async fn settle(stream: &mut Changes) {
    let deadline = tokio::time::Instant::now() + SETTLE_MAX;
    loop {
        let quiet = tokio::time::Instant::now() + SETTLE_QUIET;
        match tokio::time::timeout_at(quiet.min(deadline), stream.next()).await {
            // Superseded by the snapshot (a further lag included).
            Ok(Some(_)) if tokio::time::Instant::now() < deadline => {}
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use sandbox::agent::FileInfo;

    use super::*;

    fn path(text: &str) -> WorkspacePath {
        WorkspacePath::parse(text).unwrap()
    }

    fn stored(text: &str, kind: FileKind, hash: &str, version: i64) -> FileEntry {
        FileEntry {
            path: path(text),
            kind,
            size: 1,
            version,
            hash: hash.to_owned(),
            updated_at: 0,
        }
    }

    fn seen(text: &str, is_dir: bool, hash: &str, size: u64) -> FileInfo {
        FileInfo {
            path: path(text),
            is_dir,
            size,
            hash: hash.to_owned(),
        }
    }

    #[test]
    fn a_plan_writes_only_what_differs_and_keeps_what_was_not_looked_at() {
        let stored = vec![
            stored("same.py", FileKind::File, "aa", 3),
            stored("changed.py", FileKind::File, "bb", 4),
            stored("gone.py", FileKind::File, "cc", 2),
            stored("gone", FileKind::Dir, "", 1),
            stored("gone/inner.py", FileKind::File, "dd", 1),
            stored(".venv", FileKind::Dir, "", 1),
            stored(".venv/lib.py", FileKind::File, "ee", 1),
            stored("link", FileKind::File, "ff", 1),
            stored("now-a-dir", FileKind::File, "gg", 5),
        ];
        let snapshot = Snapshot {
            files: vec![
                seen("changed.py", false, "b2", 10),
                seen("huge.bin", false, "h1", 100),
                seen("new", true, "", 0),
                seen("new/file.py", false, "n1", 5),
                seen("now-a-dir", true, "", 0),
                seen("same.py", false, "aa", 1),
            ],
            unlisted: vec![path(".venv"), path("link")],
            complete: true,
        };
        let plan = plan(&stored, &snapshot, 50);
        // Deepest first; ignored and unlisted paths are kept; a file that became a folder
        // goes, to be made again as a folder.
        assert_eq!(
            plan.removals,
            [
                (path("now-a-dir"), 5),
                (path("gone/inner.py"), 1),
                (path("gone.py"), 2),
                (path("gone"), 1),
            ]
        );
        assert_eq!(
            plan.writes,
            [
                Planned::File {
                    path: path("changed.py"),
                    size: 10,
                    expect: Expect::Version(4)
                },
                Planned::Dir(path("new")),
                Planned::File {
                    path: path("new/file.py"),
                    size: 5,
                    expect: Expect::Absent
                },
                Planned::Dir(path("now-a-dir")),
            ]
        );
        assert_eq!(plan.too_large, [path("huge.bin")]);

        // An incomplete snapshot deletes nothing.
        let partial = Snapshot {
            complete: false,
            ..snapshot
        };
        assert!(plan_of(&stored, &partial).removals.is_empty());
    }

    fn plan_of(stored: &[FileEntry], snapshot: &Snapshot) -> Plan {
        plan(stored, snapshot, u64::MAX)
    }
}
