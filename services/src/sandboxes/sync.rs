//! File sync between the database and a running sandbox, both ways.
//!
//! - **Sandbox → database**: a task per running sandbox follows the change stream of its
//!   control connection and writes each change to the database (the sandbox's view wins
//!   over the stored version: it is what the user's code just did). When the connection
//!   ends while the sandbox runs, the task opens a new one and watches again.
//! - **Database → sandbox**: every save, mkdir, move and delete is mirrored into the running
//!   sandbox after it is committed. The database write stands whatever happens there; a
//!   sandbox that missed it is refilled on its next start.
//!
//! The watcher reports the server's own mirror writes too; the hashes of recent mirror
//! writes ([`Mirrors`]) tell those echoes from changes made inside.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

use model::{UserId, WorkspaceId, WorkspacePath};
use sandbox::agent::SandboxChange;

use crate::{Result, Services, events::FileEvent, now_ms};

/// How long a mirrored write is remembered (far longer than the watcher's debounce).
const MIRROR_MEMORY: Duration = Duration::from_secs(30);
/// Mirrored writes remembered per file.
const MIRRORS_PER_FILE: usize = 16;
/// Pause before the sync opens a new connection after one ended.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

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

impl Services {
    /// Starts following the ready sandbox's changes into the database, until it stops.
    pub(super) fn spawn_sync(&self, owner: UserId, ws: WorkspaceId) {
        let services = self.clone();
        let task = tokio::spawn(async move { services.follow_changes(owner, ws).await });
        match self.sandboxes.entries().get_mut(&ws) {
            Some(entry) => entry.sync = Some(task),
            None => task.abort(),
        }
    }

    async fn follow_changes(&self, owner: UserId, ws: WorkspaceId) {
        let mut first = true;
        loop {
            let watched = match self.sandboxes.control(ws).await {
                Ok(control) => control.watch().await,
                // Stopped: nothing more to follow.
                Err(crate::Error::NotFound) => return,
                Err(error) => Err(sandbox::Error::Protocol(error.to_string())),
            };
            let mut changes = match watched {
                Ok(changes) => changes,
                Err(error) => {
                    if !self.sandboxes.is_ready(ws) {
                        return;
                    }
                    tracing::warn!(workspace.id = %ws, error = %error, "cannot watch the sandbox; trying again");
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            };
            if !first {
                self.sandboxes.metrics.sync_reconnects.inc();
                tracing::info!(workspace.id = %ws, "sandbox sync reconnected");
            }
            first = false;
            while let Some(change) = changes.next().await {
                self.apply_sandbox_change(owner, ws, change).await;
            }
            if !self.sandboxes.is_ready(ws) {
                tracing::debug!(workspace.id = %ws, "sandbox sync ended");
                return;
            }
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }

    /// Applies one change seen inside the sandbox to the database. An unchanged content
    /// (an echo of our own mirror write) is skipped.
    async fn apply_sandbox_change(&self, owner: UserId, ws: WorkspaceId, change: SandboxChange) {
        let now = now_ms();
        let result = match change {
            SandboxChange::Changed {
                path, is_dir: true, ..
            } => {
                self.sandboxes.touch(ws);
                match self
                    .store
                    .make_dir(owner, ws, &path, &self.limits, now)
                    .await
                {
                    Err(store::Error::Exists(_)) => Ok(()),
                    other => other.map(|_| {
                        self.events.publish(
                            ws,
                            FileEvent::Changed {
                                path: path.to_string(),
                                version: None,
                            },
                        );
                    }),
                }
            }
            SandboxChange::Changed {
                path,
                content: Some(data),
                ..
            } => {
                self.sandboxes.touch(ws);
                let hash = store::content_hash(&data);
                // Our own write coming back (maybe after a newer save): not a change.
                if self.sandboxes.mirrors.is_own(ws, &path, &hash) {
                    return;
                }
                let current = match self.store.read_file(owner, ws, &path).await {
                    Ok(record) if record.entry.hash == hash => return,
                    Ok(record) => Some(record.entry.version),
                    Err(store::Error::NotFound) => None,
                    Err(error) => {
                        tracing::warn!(workspace.id = %ws, error = %error, "cannot read a file to sync it");
                        return;
                    }
                };
                let write = store::WriteFile {
                    path: &path,
                    content: &data,
                    base_version: current,
                };
                self.store
                    .write_file(owner, ws, write, &self.limits, now)
                    .await
                    .map(|entry| {
                        self.events.publish(
                            ws,
                            FileEvent::Changed {
                                path: path.to_string(),
                                version: Some(entry.version),
                            },
                        );
                    })
            }
            SandboxChange::Changed { path, .. } => {
                tracing::info!(workspace.id = %ws, path = %path, "a file over the sync size cap stays in the sandbox only");
                Ok(())
            }
            SandboxChange::Removed { path } => {
                match self.store.delete_path(owner, ws, &path, now).await {
                    Err(store::Error::NotFound) => Ok(()),
                    other => other.map(|_| {
                        self.events.publish(
                            ws,
                            FileEvent::Removed {
                                path: path.to_string(),
                            },
                        );
                    }),
                }
            }
            SandboxChange::Lagged => {
                self.sandboxes.metrics.watch_lags.inc();
                tracing::warn!(workspace.id = %ws, "changes made in the sandbox were dropped (a burst beyond the watch queues)");
                Ok(())
            }
        };
        if let Err(error) = result {
            tracing::warn!(workspace.id = %ws, error = %error, "a change made in the sandbox could not be saved");
        }
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
}
