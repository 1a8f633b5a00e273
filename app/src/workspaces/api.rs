//! `POST /api/workspaces/…`: create, list, get, rename, delete, start, stop, status, keepalive, packages.

use leptos::{prelude::*, server_fn::codec::Json};
use model::{Language, Packages, SandboxStatus, WorkspaceId, WorkspaceName, WorkspaceView};

#[cfg(feature = "ssr")]
use crate::api_context::current_user;
use crate::error::ApiError;

/// Creates a workspace seeded with `main.py`.
#[server(
    prefix = "/api",
    endpoint = "workspaces/create",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn create_workspace(
    name: WorkspaceName,
    #[server(default)] language: Option<Language>,
) -> Result<WorkspaceView, ApiError> {
    let (api, user) = current_user().await?;
    Ok(api
        .services
        .create_workspace(&user, name, language.unwrap_or_default())
        .await?)
}

/// The signed-in user's workspaces, most recently active first.
#[server(
    prefix = "/api",
    endpoint = "workspaces/list",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn list_workspaces() -> Result<Vec<WorkspaceView>, ApiError> {
    let (api, user) = current_user().await?;
    Ok(api.services.list_workspaces(&user).await?)
}

/// One of the signed-in user's workspaces.
#[server(
    prefix = "/api",
    endpoint = "workspaces/get",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn get_workspace(id: WorkspaceId) -> Result<WorkspaceView, ApiError> {
    let (api, user) = current_user().await?;
    Ok(api.services.workspace(&user, id).await?)
}

/// Renames a workspace (names are unique among the owner's workspaces).
#[server(
    prefix = "/api",
    endpoint = "workspaces/rename",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn rename_workspace(
    id: WorkspaceId,
    name: WorkspaceName,
) -> Result<WorkspaceView, ApiError> {
    let (api, user) = current_user().await?;
    Ok(api.services.rename_workspace(&user, id, name).await?)
}

/// Deletes a workspace and all its files.
#[server(
    prefix = "/api",
    endpoint = "workspaces/delete",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn delete_workspace(id: WorkspaceId) -> Result<(), ApiError> {
    let (api, user) = current_user().await?;
    Ok(api.services.delete_workspace(&user, id).await?)
}

/// Starts the workspace's sandbox (or reuses the running one) and fills it with the
/// workspace's files; answers when it is ready (or failed).
#[server(
    prefix = "/api",
    endpoint = "workspaces/start",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn start_workspace(id: WorkspaceId) -> Result<SandboxStatus, ApiError> {
    let (api, user) = current_user().await?;
    Ok(api.services.start_workspace(&user, id).await?)
}

/// Stops the workspace's sandbox. Saved files are in the database and stay.
#[server(
    prefix = "/api",
    endpoint = "workspaces/stop",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn stop_workspace(id: WorkspaceId) -> Result<SandboxStatus, ApiError> {
    let (api, user) = current_user().await?;
    Ok(api.services.stop_workspace(&user, id).await?)
}

/// The sandbox's state, deadlines and usage.
#[server(
    prefix = "/api",
    endpoint = "workspaces/status",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn workspace_status(id: WorkspaceId) -> Result<SandboxStatus, ApiError> {
    let (api, user) = current_user().await?;
    Ok(api.services.workspace_status(&user, id).await?)
}

/// Pushes the idle deadline back.
#[server(
    prefix = "/api",
    endpoint = "workspaces/keepalive",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn keepalive(id: WorkspaceId) -> Result<SandboxStatus, ApiError> {
    let (api, user) = current_user().await?;
    Ok(api.services.keepalive(&user, id).await?)
}

/// The packages installed in the workspace (`pip install`) and kept with it between
/// sandboxes: saved from the running sandbox first.
#[server(
    prefix = "/api",
    endpoint = "workspaces/packages",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn workspace_packages(id: WorkspaceId) -> Result<Packages, ApiError> {
    let (api, user) = current_user().await?;
    Ok(api.services.packages(&user, id).await?)
}

/// Removes every installed package, from the running sandbox and from what is kept.
#[server(
    prefix = "/api",
    endpoint = "workspaces/packages/clear",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn clear_packages(id: WorkspaceId) -> Result<Packages, ApiError> {
    let (api, user) = current_user().await?;
    Ok(api.services.clear_packages(&user, id).await?)
}
