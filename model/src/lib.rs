//! Types shared by the browser and the server.
//!
//! This crate owns the vocabulary of Codepod: ids, validated names and paths, the DTOs that
//! cross the HTTP boundary, and the limits both sides agree on. It performs no IO and
//! compiles to `wasm32-unknown-unknown`. Every validated type parses through
//! `TryFrom<String>` (and serde's `try_from`), so a bad value never reaches a service.

pub mod accounts;
pub mod error;
pub mod files;
pub mod ids;
pub mod meta;
pub mod path;
mod schema;
pub mod workspaces;
pub mod ws;

pub use accounts::{Email, Password, UserView, Username};
pub use error::ErrorCode;
pub use files::{Content, FileEntry, FileKind, FileView, Limits, Preview};
pub use ids::{UserId, WorkspaceId};
pub use meta::{BuildInfo, PRODUCT_NAME};
pub use path::{PathError, WorkspacePath};
pub use workspaces::{
    Language, NotKept, Packages, SandboxState, SandboxStatus, WorkspaceName, WorkspaceView,
};
pub use ws::{TerminalId, TerminalInfo};

/// Why a value was rejected at the boundary. Shown to users as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}
