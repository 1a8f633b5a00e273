//! Starting (with admission control), filling, stopping and reporting on a workspace's
//! sandbox, and opening terminal sessions in it — each only for the workspace's owner.

use std::{collections::HashMap, time::Instant};

use model::{FileEntry, FileKind, SandboxState, SandboxStatus, WorkspaceId, WorkspacePath};
use sandbox::{
    AgentConnection, SandboxId,
    agent::{Changes, TerminalSession},
};

use super::{Entry, RefusalLabels, runtime_error};
use crate::{Error, Result, Services, accounts::CurrentUser, now_ms};

/// Files copied into a new sandbox at once (their writes pipelined on its connection).
const FILL_AT_ONCE: usize = 16;

impl Services {
    /// Starts (or reuses) the workspace's sandbox and fills it from the database. Refused
    /// when its owner already has as many sandboxes running as allowed (429), or this server
    /// as many as it can hold (503).
    #[tracing::instrument(skip_all, fields(workspace.id = %ws), err(level = "info", Display))]
    pub async fn start_workspace(
        &self,
        user: &CurrentUser,
        ws: WorkspaceId,
    ) -> Result<SandboxStatus> {
        self.workspace(user, ws).await?;
        let sandboxes = &self.sandboxes;
        let lock = sandboxes.lock_for(ws);
        let _guard = lock.lock().await;
        if sandboxes.is_ready(ws) {
            // Ready by the registry, and its agent still answers: reused. One that died (its
            // agent killed, its pod gone) is stopped here and a new one filled below. Asked,
            // not assumed: the held connection can be a moment from noticing its agent died.
            let answers = match sandboxes.control(ws).await {
                Ok(control) => control.ping().await.is_ok(),
                Err(_) => false,
            };
            if answers {
                sandboxes.touch(ws);
                return Ok(sandboxes.status(ws).await);
            }
            tracing::warn!(workspace.id = %ws, "the sandbox's agent does not answer; starting a new sandbox");
            sandboxes.stop(ws, "agent_lost").await?;
        }
        let started = Instant::now();
        let now = now_ms();
        {
            let _admission = sandboxes.admission.lock().await;
            self.admit(user, ws)?;
            let previous = sandboxes.entries().insert(
                ws,
                Entry {
                    owner: user.id,
                    state: SandboxState::Starting,
                    started_at: now,
                    last_active: now,
                    shared_at: now,
                    error: None,
                    not_kept: None,
                    control: None,
                    sync: None,
                },
            );
            // A failed start left its entry (for its status); it was counted as active.
            if previous.is_none() {
                sandboxes.metrics.active.inc();
            }
        }
        // Saves wait from the listing the sandbox is filled from until it is ready, and are
        // then mirrored into it.
        let quiet = sandboxes.quiet(ws).await;
        let result = self.boot(user, ws).await;
        if let Some(entry) = sandboxes.entries().get_mut(&ws) {
            match &result {
                Ok((control, _)) => {
                    entry.state = SandboxState::Ready;
                    entry.control = Some(control.clone());
                }
                Err(error) => {
                    entry.state = SandboxState::Failed;
                    entry.error = Some(error.public_message());
                }
            }
        }
        sandboxes.metrics.starts.inc();
        sandboxes
            .metrics
            .start_seconds
            .observe(started.elapsed().as_secs_f64());
        drop(quiet);
        match result {
            Ok((_, changes)) => self.spawn_sync(user.id, ws, changes),
            Err(error) => {
                tracing::error!(error = %error, "sandbox failed to start");
                let _ = sandboxes.runtime.stop(&SandboxId::from(ws)).await;
            }
        }
        let _ = self.store.touch_workspace(user.id, ws, now_ms()).await;
        Ok(sandboxes.status(ws).await)
    }

    /// Whether `user` may start one more sandbox here, and this server run one more.
    fn admit(&self, user: &CurrentUser, ws: WorkspaceId) -> Result<()> {
        let sandboxes = &self.sandboxes;
        let (mine, total) = {
            let entries = sandboxes.entries();
            let running = entries.iter().filter(|(other, entry)| {
                **other != ws && matches!(entry.state, SandboxState::Starting | SandboxState::Ready)
            });
            let (mut mine, mut total) = (0, 0);
            for (_, entry) in running {
                total += 1;
                if entry.owner == user.id {
                    mine += 1;
                }
            }
            (mine, total)
        };
        let refuse = |limit: &str| {
            sandboxes
                .metrics
                .refusals
                .get_or_create(&RefusalLabels {
                    limit: limit.to_owned(),
                })
                .inc();
        };
        if mine >= sandboxes.settings.max_per_user {
            refuse("per_user");
            return Err(Error::SandboxLimit(format!(
                "you already have {mine} workspaces running, as many as allowed: stop another workspace first"
            )));
        }
        if total >= sandboxes.settings.max_total {
            refuse("total");
            return Err(Error::Unavailable(format!(
                "this server is running as many workspaces as it can hold ({total}); try again later"
            )));
        }
        Ok(())
    }

    /// Runs the sandbox, opens its control connection, copies into it every file and folder
    /// of the workspace it does not hold already (a new sandbox holds nothing; one that
    /// outlived a server, on Kubernetes, most), and starts watching it.
    async fn boot(
        &self,
        user: &CurrentUser,
        ws: WorkspaceId,
    ) -> Result<(AgentConnection, Changes)> {
        let id = SandboxId::from(ws);
        let runtime = &self.sandboxes.runtime;
        runtime.ensure(&id).await.map_err(runtime_error)?;
        let transport = runtime.connect(&id).await.map_err(runtime_error)?;
        let control = AgentConnection::open(transport)
            .await
            .map_err(runtime_error)?;
        let held: HashMap<WorkspacePath, (bool, String)> = control
            .snapshot()
            .await
            .map_err(runtime_error)?
            .files
            .into_iter()
            .map(|file| (file.path, (file.is_dir, file.hash)))
            .collect();
        let missing: Vec<FileEntry> = self
            .store
            .list_files(user.id, ws)
            .await?
            .into_iter()
            .filter(|entry| {
                held.get(&entry.path).is_none_or(|(is_dir, hash)| {
                    *is_dir != (entry.kind == FileKind::Dir) || (!is_dir && *hash != entry.hash)
                })
            })
            .collect();
        for group in missing.chunks(FILL_AT_ONCE) {
            let writes = group
                .iter()
                .map(|entry| self.fill_one(user, ws, &control, entry));
            for written in futures_util::future::join_all(writes).await {
                written?;
            }
        }
        self.sandboxes.restore_packages(ws, &control).await;
        // Before anything else can reach the sandbox: nothing it does is missed.
        let changes = control.watch().await.map_err(runtime_error)?;
        Ok((control, changes))
    }

    /// Copies one stored entry into the sandbox.
    async fn fill_one(
        &self,
        user: &CurrentUser,
        ws: WorkspaceId,
        control: &AgentConnection,
        entry: &FileEntry,
    ) -> Result<()> {
        if entry.kind == FileKind::Dir {
            return control.make_dir(&entry.path).await.map_err(runtime_error);
        }
        let content = self
            .store
            .read_file(user.id, ws, &entry.path)
            .await?
            .content;
        control
            .write_file(&entry.path, &content)
            .await
            .map_err(runtime_error)
    }

    pub async fn stop_workspace(
        &self,
        user: &CurrentUser,
        ws: WorkspaceId,
    ) -> Result<SandboxStatus> {
        self.workspace(user, ws).await?;
        self.sandboxes.stop(ws, "requested").await?;
        Ok(SandboxStatus::stopped())
    }

    pub async fn workspace_status(
        &self,
        user: &CurrentUser,
        ws: WorkspaceId,
    ) -> Result<SandboxStatus> {
        self.workspace(user, ws).await?;
        Ok(self.sandboxes.status(ws).await)
    }

    /// Pushes the idle deadline back ("keep alive").
    pub async fn keepalive(&self, user: &CurrentUser, ws: WorkspaceId) -> Result<SandboxStatus> {
        self.workspace(user, ws).await?;
        self.sandboxes.touch(ws);
        Ok(self.sandboxes.status(ws).await)
    }

    /// A terminal session (one per IDE tab) in the workspace's ready sandbox, with the
    /// handle that counts the tab's use as activity.
    pub async fn terminal_session(
        &self,
        user: &CurrentUser,
        ws: WorkspaceId,
    ) -> Result<(TerminalSession, Activity)> {
        self.workspace(user, ws).await?;
        if !self.sandboxes.is_ready(ws) {
            return Err(Error::Unavailable("the sandbox is not running".into()));
        }
        let transport = self
            .sandboxes
            .runtime
            .connect(&SandboxId::from(ws))
            .await
            .map_err(runtime_error)?;
        let session = TerminalSession::open(transport)
            .await
            .map_err(runtime_error)?;
        let activity = Activity {
            sandboxes: self.sandboxes.clone(),
            ws,
        };
        Ok((session, activity))
    }
}

/// Counts use of one workspace's sandbox as activity (pushes its idle deadline back). Only
/// [`Services::terminal_session`] hands one out, after checking the owner.
#[derive(Clone)]
pub struct Activity {
    sandboxes: super::Sandboxes,
    ws: WorkspaceId,
}

impl Activity {
    pub fn touch(&self) {
        self.sandboxes.touch(self.ws);
    }
}
