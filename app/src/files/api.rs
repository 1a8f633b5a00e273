//! `POST /api/files/…`: tree, read, write, mkdir, move, delete; `POST /api/markdown`. (Upload and download are
//! plain HTTP endpoints in the server crate: multipart in, raw bytes and zip out.)

use leptos::{prelude::*, server_fn::codec::Json};
use model::{Content, FileEntry, FileView, Preview, WorkspaceId, WorkspacePath};
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::api_context::current_user;
use crate::error::ApiError;

/// Markdown rendered as HTML for the editor's preview: raw HTML in it is shown as text, and
/// only `http`, `https`, `mailto` and relative links are kept. At most 1 MiB of `text`.
#[server(
    prefix = "/api",
    endpoint = "markdown",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn markdown(text: String) -> Result<Preview, ApiError> {
    let (api, _user) = current_user().await?;
    Ok(api.services.markdown(&text)?)
}

/// Every file and folder of a workspace, sorted by path.
#[server(
    prefix = "/api",
    endpoint = "files/tree",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn tree(workspace: WorkspaceId) -> Result<Vec<FileEntry>, ApiError> {
    let (api, user) = current_user().await?;
    Ok(api.services.tree(&user, workspace).await?)
}

/// A file with its content (UTF-8 text, or base64 for binary files).
#[server(
    prefix = "/api",
    endpoint = "files/read",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn read_file(workspace: WorkspaceId, path: WorkspacePath) -> Result<FileView, ApiError> {
    let (api, user) = current_user().await?;
    Ok(api.services.read_file(&user, workspace, &path).await?)
}

/// Writes a file. `base_version` is the version the edit started from (omit or `null` to
/// create a new file); if the file has changed since, the answer is 409 `version_conflict`
/// with `current_version`.
#[server(
    prefix = "/api",
    endpoint = "files/write",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn write_file(
    workspace: WorkspaceId,
    path: WorkspacePath,
    content: Content,
    #[server(default)] base_version: Option<i64>,
) -> Result<FileEntry, ApiError> {
    let (api, user) = current_user().await?;
    let bytes = services::files::decode(content)?;
    Ok(api
        .services
        .write_file(&user, workspace, &path, bytes, base_version)
        .await?)
}

/// Creates a folder (and missing parents).
#[server(
    prefix = "/api",
    endpoint = "files/mkdir",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn make_dir(workspace: WorkspaceId, path: WorkspacePath) -> Result<FileEntry, ApiError> {
    let (api, user) = current_user().await?;
    Ok(api.services.make_dir(&user, workspace, &path).await?)
}

/// Moves or renames a file or folder.
#[server(
    prefix = "/api",
    endpoint = "files/move",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn move_path(
    workspace: WorkspaceId,
    from: WorkspacePath,
    to: WorkspacePath,
) -> Result<FileEntry, ApiError> {
    let (api, user) = current_user().await?;
    Ok(api.services.move_path(&user, workspace, &from, &to).await?)
}

/// How many entries a delete removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Deleted {
    pub deleted: u64,
}

/// Deletes a file, or a folder with everything inside it.
#[server(
    prefix = "/api",
    endpoint = "files/delete",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn delete_path(workspace: WorkspaceId, path: WorkspacePath) -> Result<Deleted, ApiError> {
    let (api, user) = current_user().await?;
    let deleted = api.services.delete_path(&user, workspace, &path).await?;
    Ok(Deleted { deleted })
}
