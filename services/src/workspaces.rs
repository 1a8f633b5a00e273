//! Workspaces: create (seeded with a starter file), list, get, rename, delete. Every call
//! is scoped to the signed-in owner; another user's workspace is `NotFound`.

use model::{Language, WorkspaceId, WorkspaceName, WorkspacePath, WorkspaceView};
use store::{NewWorkspace, WorkspaceRecord};

use crate::{Error, Result, Services, accounts::CurrentUser, now_ms};

/// The file a new Python workspace starts with.
pub const STARTER_FILE: &str = "main.py";
const STARTER_PYTHON: &str = "\
# Welcome to Codepod. Edit this file, save with Ctrl+S, and run it with the Run button
# or `python3 main.py` in the terminal below.

def greet(name: str) -> str:
    return f\"Hello, {name}!\"


if __name__ == \"__main__\":
    print(greet(\"Codepod\"))
";

pub(crate) fn view(record: WorkspaceRecord, sandbox: model::SandboxState) -> WorkspaceView {
    live_view(record, (sandbox, None))
}

/// The view with what the running sandbox knows: its state, and activity newer than the
/// stored `last_active_at` (which is written when a sandbox starts).
fn live_view(
    record: WorkspaceRecord,
    (sandbox, active): (model::SandboxState, Option<i64>),
) -> WorkspaceView {
    WorkspaceView {
        sandbox,
        id: record.id,
        name: record.name,
        language: record.language,
        created_at: record.created_at,
        updated_at: record.updated_at,
        last_active_at: active.map_or(record.last_active_at, |active| {
            active.max(record.last_active_at)
        }),
    }
}

impl Services {
    /// Creates a workspace with a starter `main.py`.
    #[tracing::instrument(skip_all, fields(user.id = %user.id), err(level = "info", Display))]
    pub async fn create_workspace(
        &self,
        user: &CurrentUser,
        name: WorkspaceName,
        language: Language,
    ) -> Result<WorkspaceView> {
        let starter = WorkspacePath::parse(STARTER_FILE)?;
        let new = NewWorkspace {
            owner_id: user.id,
            name: name.to_string(),
            language,
            seed: vec![(starter, STARTER_PYTHON.as_bytes().to_vec())],
        };
        Ok(view(
            self.store
                .create_workspace(&new, &self.limits, now_ms())
                .await?,
            model::SandboxState::Stopped,
        ))
    }

    /// The user's workspaces, the most recently used first (live activity counts).
    pub async fn list_workspaces(&self, user: &CurrentUser) -> Result<Vec<WorkspaceView>> {
        let mut list: Vec<WorkspaceView> = self
            .store
            .list_workspaces(user.id)
            .await?
            .into_iter()
            .map(|record| {
                let live = self.sandboxes.state_and_activity(record.id);
                live_view(record, live)
            })
            .collect();
        list.sort_by(|a, b| {
            b.last_active_at
                .cmp(&a.last_active_at)
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(list)
    }

    pub async fn workspace(&self, user: &CurrentUser, id: WorkspaceId) -> Result<WorkspaceView> {
        self.store
            .workspace(user.id, id)
            .await?
            .map(|record| live_view(record, self.sandboxes.state_and_activity(id)))
            .ok_or(Error::NotFound)
    }

    #[tracing::instrument(skip_all, fields(workspace.id = %id), err(level = "info", Display))]
    pub async fn rename_workspace(
        &self,
        user: &CurrentUser,
        id: WorkspaceId,
        name: WorkspaceName,
    ) -> Result<WorkspaceView> {
        Ok(view(
            self.store
                .rename_workspace(user.id, id, name.as_str(), now_ms())
                .await?,
            self.sandboxes.state(id),
        ))
    }

    #[tracing::instrument(skip_all, fields(workspace.id = %id), err(level = "info", Display))]
    pub async fn delete_workspace(&self, user: &CurrentUser, id: WorkspaceId) -> Result<()> {
        self.store.delete_workspace(user.id, id).await?;
        if let Err(error) = self.sandboxes.stop(id, "deleted").await {
            tracing::warn!(workspace.id = %id, error = %error, "could not stop the sandbox of a deleted workspace");
        }
        Ok(())
    }
}
