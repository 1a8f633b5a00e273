//! Starting (with admission control), filling, stopping and reporting on a workspace's
//! sandbox, and opening terminal sessions in it — each only for the workspace's owner.

use std::time::Instant;

use model::{FileKind, SandboxState, SandboxStatus, WorkspaceId};
use sandbox::{AgentConnection, SandboxId, agent::TerminalSession};

use super::{Entry, RefusalLabels, runtime_error};
use crate::{Error, Result, Services, accounts::CurrentUser, now_ms};

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
            sandboxes.touch(ws);
            return Ok(sandboxes.status(ws).await);
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
                    control: None,
                    sync: None,
                },
            );
            // A failed start left its entry (for its status); it was counted as active.
            if previous.is_none() {
                sandboxes.metrics.active.inc();
            }
        }
        let result = self.boot(user, ws).await;
        if let Some(entry) = sandboxes.entries().get_mut(&ws) {
            match &result {
                Ok(control) => {
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
        match result {
            Ok(_) => self.spawn_sync(user.id, ws),
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

    /// Runs the sandbox, opens its control connection and copies every file and folder of
    /// the workspace into it.
    async fn boot(&self, user: &CurrentUser, ws: WorkspaceId) -> Result<AgentConnection> {
        let id = SandboxId::from(ws);
        let runtime = &self.sandboxes.runtime;
        runtime.ensure(&id).await.map_err(runtime_error)?;
        let transport = runtime.connect(&id).await.map_err(runtime_error)?;
        let control = AgentConnection::open(transport)
            .await
            .map_err(runtime_error)?;
        for entry in self.store.list_files(user.id, ws).await? {
            if entry.kind == FileKind::Dir {
                control.make_dir(&entry.path).await.map_err(runtime_error)?;
            } else {
                let content = self
                    .store
                    .read_file(user.id, ws, &entry.path)
                    .await?
                    .content;
                control
                    .write_file(&entry.path, &content)
                    .await
                    .map_err(runtime_error)?;
            }
        }
        Ok(control)
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

    /// A terminal session (one per IDE tab) in the workspace's ready sandbox.
    pub async fn terminal_session(
        &self,
        user: &CurrentUser,
        ws: WorkspaceId,
    ) -> Result<TerminalSession> {
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
        TerminalSession::open(transport)
            .await
            .map_err(runtime_error)
    }
}
