//! Files and folders as the API shows them, and the limits on them.

use serde::{Deserialize, Serialize};

use crate::WorkspacePath;

/// A file or a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Dir,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Dir => "dir",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "file" => Some(Self::File),
            "dir" => Some(Self::Dir),
            _ => None,
        }
    }
}

/// One entry of a workspace's tree (no content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileEntry {
    pub path: WorkspacePath,
    pub kind: FileKind,
    pub size: i64,
    /// Starts at 1, +1 on every write; writes name the version they edited.
    pub version: i64,
    /// Hex SHA-256 of the content (empty for folders).
    pub hash: String,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// File content on the wire: UTF-8 text as is, anything else as standard base64, so text
/// and binary files both round-trip byte-exact through JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "encoding", content = "data", rename_all = "lowercase")]
pub enum Content {
    Utf8(String),
    Base64(String),
}

/// `POST /api/markdown`: Markdown rendered for the editor's preview (safe HTML).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Preview {
    pub html: String,
}

/// A file with its content: the entry's fields plus `encoding` and `data`.
///
/// Read field by field ([`FlatFileView`]): serde reads flattened fields by buffering the
/// whole object into a generic value first, and that machinery was most of the browser's
/// code for reading JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct FileView {
    #[serde(flatten)]
    pub entry: FileEntry,
    #[serde(flatten)]
    pub content: Content,
}

impl<'de> Deserialize<'de> for FileView {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let flat = FlatFileView::deserialize(deserializer)?;
        Ok(Self {
            entry: FileEntry {
                path: flat.path,
                kind: flat.kind,
                size: flat.size,
                version: flat.version,
                hash: flat.hash,
                updated_at: flat.updated_at,
            },
            content: match flat.encoding {
                Encoding::Utf8 => Content::Utf8(flat.data),
                Encoding::Base64 => Content::Base64(flat.data),
            },
        })
    }
}

/// [`FileView`]'s JSON, as it is read.
#[derive(Deserialize)]
struct FlatFileView {
    path: WorkspacePath,
    kind: FileKind,
    size: i64,
    version: i64,
    hash: String,
    updated_at: i64,
    encoding: Encoding,
    data: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Encoding {
    Utf8,
    Base64,
}

/// Configurable limits. Exceeding a size limit is a 413; a count limit a 422.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest single file, in bytes.
    pub max_file_bytes: u64,
    /// Most files and folders in one workspace.
    pub max_files_per_workspace: u64,
    /// Most bytes of file content in one workspace.
    pub max_workspace_bytes: u64,
    /// Most workspaces one user may own.
    pub max_workspaces_per_user: u64,
    /// Largest upload request body, in bytes.
    pub max_upload_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: 10 * 1024 * 1024,
            max_files_per_workspace: 5_000,
            max_workspace_bytes: 200 * 1024 * 1024,
            max_workspaces_per_user: 50,
            max_upload_bytes: 100 * 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_view_is_flat() {
        let view = FileView {
            entry: FileEntry {
                path: WorkspacePath::parse("a.py").unwrap(),
                kind: FileKind::File,
                size: 1,
                version: 2,
                hash: "h".into(),
                updated_at: 3,
            },
            content: Content::Utf8("x".into()),
        };
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["encoding"], "utf8");
        assert_eq!(json["data"], "x");
        assert_eq!(json["version"], 2);
        let back: FileView = serde_json::from_value(json).unwrap();
        assert_eq!(back, view);
        let binary = FileView {
            content: Content::Base64("AAE=".into()),
            ..view
        };
        let json = serde_json::to_string(&binary).unwrap();
        assert_eq!(serde_json::from_str::<FileView>(&json).unwrap(), binary);
        for (field, refused) in [
            ("data", "missing field `data`"),
            ("encoding", "missing field `encoding`"),
            ("version", "missing field `version`"),
        ] {
            let mut json = serde_json::to_value(&binary).unwrap();
            json.as_object_mut().unwrap().remove(field);
            let error = serde_json::from_value::<FileView>(json).unwrap_err();
            assert!(error.to_string().contains(refused), "{error}");
        }
        let mut json = serde_json::to_value(&binary).unwrap();
        json["encoding"] = "hex".into();
        assert!(serde_json::from_value::<FileView>(json).is_err());
    }

    #[test]
    fn content_is_tagged_by_encoding() {
        let json = serde_json::to_string(&Content::Utf8("print(1)".into())).unwrap();
        assert_eq!(json, r#"{"encoding":"utf8","data":"print(1)"}"#);
        let back: Content = serde_json::from_str(r#"{"encoding":"base64","data":"AAE="}"#).unwrap();
        assert_eq!(back, Content::Base64("AAE=".into()));
    }
}
