//! A workspace's files: tree, read, write (optimistic concurrency), mkdir, move, delete.
//! Content crosses JSON as UTF-8 text when it is valid UTF-8 and as base64 otherwise.

use base64::Engine as _;
use model::{Content, FileEntry, FileKind, FileView, WorkspaceId, WorkspacePath};
use store::WriteFile;

use crate::{
    Error, Result, Services, accounts::CurrentUser, events::FileEvent, now_ms, sandboxes::Mirror,
};

/// Turns stored bytes into wire content.
pub fn encode(content: Vec<u8>) -> Content {
    match String::from_utf8(content) {
        Ok(text) => Content::Utf8(text),
        Err(error) => {
            Content::Base64(base64::engine::general_purpose::STANDARD.encode(error.into_bytes()))
        }
    }
}

/// Turns wire content into bytes; bad base64 is invalid input.
pub fn decode(content: Content) -> Result<Vec<u8>> {
    match content {
        Content::Utf8(text) => Ok(text.into_bytes()),
        Content::Base64(data) => base64::engine::general_purpose::STANDARD
            .decode(data.as_bytes())
            .map_err(|_| Error::Invalid("content is not valid base64".into())),
    }
}

impl Services {
    /// Every file and folder of the workspace, sorted by path.
    pub async fn tree(&self, user: &CurrentUser, ws: WorkspaceId) -> Result<Vec<FileEntry>> {
        Ok(self.store.list_files(user.id, ws).await?)
    }

    /// A file with its content. Folders have no content to read.
    pub async fn read_file(
        &self,
        user: &CurrentUser,
        ws: WorkspaceId,
        path: &WorkspacePath,
    ) -> Result<FileView> {
        let record = self.read_raw(user, ws, path).await?;
        Ok(FileView {
            entry: record.0,
            content: encode(record.1),
        })
    }

    /// A file's entry and raw bytes (for downloads).
    pub async fn read_raw(
        &self,
        user: &CurrentUser,
        ws: WorkspaceId,
        path: &WorkspacePath,
    ) -> Result<(FileEntry, Vec<u8>)> {
        let record = self.store.read_file(user.id, ws, path).await?;
        if record.entry.kind == FileKind::Dir {
            return Err(Error::WrongKind(format!("{path} is a folder")));
        }
        Ok((record.entry, record.content))
    }

    /// Writes a file. `base_version` is the version the client edited (`None` creates a new
    /// file); if the file changed since, the write is a `VersionConflict` carrying the
    /// current version and nothing is lost.
    #[tracing::instrument(skip_all, fields(workspace.id = %ws, path = %path), err(level = "info", Display))]
    pub async fn write_file(
        &self,
        user: &CurrentUser,
        ws: WorkspaceId,
        path: &WorkspacePath,
        content: Vec<u8>,
        base_version: Option<i64>,
    ) -> Result<FileEntry> {
        let write = WriteFile {
            path,
            content: &content,
            base_version,
        };
        let _saving = self.sandboxes.saving(ws).await;
        let entry = self
            .store
            .write_file(user.id, ws, write, &self.limits, now_ms())
            .await?;
        self.events.publish(
            ws,
            FileEvent::Changed {
                path: path.to_string(),
                version: Some(entry.version),
            },
        );
        self.mirror(
            ws,
            Mirror::Write {
                path,
                content: &content,
            },
        )
        .await;
        Ok(entry)
    }

    /// Saves an uploaded file: created, or replacing what is stored there (a new version of
    /// it); a folder in its place is `WrongKind`.
    pub async fn upload_file(
        &self,
        user: &CurrentUser,
        ws: WorkspaceId,
        path: &WorkspacePath,
        content: Vec<u8>,
    ) -> Result<FileEntry> {
        let current = match self.read_raw(user, ws, path).await {
            Ok((entry, _)) => Some(entry.version),
            Err(Error::NotFound) => None,
            Err(error) => return Err(error),
        };
        self.write_file(user, ws, path, content, current).await
    }

    pub async fn make_dir(
        &self,
        user: &CurrentUser,
        ws: WorkspaceId,
        path: &WorkspacePath,
    ) -> Result<FileEntry> {
        let _saving = self.sandboxes.saving(ws).await;
        let entry = self
            .store
            .make_dir(user.id, ws, path, &self.limits, now_ms())
            .await?;
        self.events.publish(
            ws,
            FileEvent::Changed {
                path: path.to_string(),
                version: None,
            },
        );
        self.mirror(ws, Mirror::MakeDir(path)).await;
        Ok(entry)
    }

    pub async fn move_path(
        &self,
        user: &CurrentUser,
        ws: WorkspaceId,
        from: &WorkspacePath,
        to: &WorkspacePath,
    ) -> Result<FileEntry> {
        let _saving = self.sandboxes.saving(ws).await;
        let entry = self
            .store
            .move_path(user.id, ws, from, to, &self.limits, now_ms())
            .await?;
        self.events.publish(
            ws,
            FileEvent::Removed {
                path: from.to_string(),
            },
        );
        self.events.publish(
            ws,
            FileEvent::Changed {
                path: to.to_string(),
                version: (entry.kind == FileKind::File).then_some(entry.version),
            },
        );
        self.mirror(ws, Mirror::Move { from, to }).await;
        Ok(entry)
    }

    /// Deletes a file, or a folder and everything in it; returns how many entries went.
    pub async fn delete_path(
        &self,
        user: &CurrentUser,
        ws: WorkspaceId,
        path: &WorkspacePath,
    ) -> Result<u64> {
        let _saving = self.sandboxes.saving(ws).await;
        let deleted = self.store.delete_path(user.id, ws, path, now_ms()).await?;
        self.events.publish(
            ws,
            FileEvent::Removed {
                path: path.to_string(),
            },
        );
        self.mirror(ws, Mirror::Delete(path)).await;
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_travels_as_utf8_and_bytes_as_base64() {
        assert_eq!(
            encode(b"print(1)\n".to_vec()),
            Content::Utf8("print(1)\n".into())
        );
        let binary = vec![0xff, 0x00, 0xfe];
        let encoded = encode(binary.clone());
        assert_eq!(encoded, Content::Base64("/wD+".into()));
        assert_eq!(decode(encoded).unwrap(), binary);
        assert!(decode(Content::Base64("not base64!".into())).is_err());
    }
}
