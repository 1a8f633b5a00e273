//! Workspaces as the API shows them.

use serde::{Deserialize, Serialize};

use crate::{Invalid, WorkspaceId, accounts::string_newtype_common};

/// A workspace's display name: 1–64 characters, trimmed, no control characters or `/`.
/// Unique per owner.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WorkspaceName(String);

impl TryFrom<String> for WorkspaceName {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Invalid> {
        let value = value.trim().to_owned();
        let len = value.chars().count();
        if !(1..=64).contains(&len) {
            return Err(Invalid("a workspace name has 1 to 64 characters".into()));
        }
        if value
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\')
        {
            return Err(Invalid(
                "a workspace name may not contain control characters, '/' or '\\'".into(),
            ));
        }
        Ok(Self(value))
    }
}
string_newtype_common!(WorkspaceName);

/// The language a workspace is set up for. Decides the seeded files and the Run command.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Python,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Python => "python",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "python" => Some(Self::Python),
            _ => None,
        }
    }
}

/// A workspace as the API shows it. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkspaceView {
    pub id: WorkspaceId,
    pub name: String,
    pub language: Language,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_active_at: i64,
    /// Whether its sandbox runs on this server now.
    #[serde(default)]
    pub sandbox: SandboxState,
}

/// Where a workspace's sandbox is in its life.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SandboxState {
    #[default]
    Stopped,
    Starting,
    Ready,
    Failed,
}

/// `POST /api/workspaces/status`: the sandbox's state, its deadlines (Unix milliseconds)
/// and what it uses, when known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SandboxStatus {
    pub state: SandboxState,
    pub started_at: Option<i64>,
    /// When it will be stopped for inactivity unless something happens (or keepalive).
    pub idle_deadline: Option<i64>,
    /// When it will be stopped whatever happens (its maximum lifetime).
    pub max_deadline: Option<i64>,
    pub memory_bytes: Option<u64>,
    pub processes: Option<u64>,
    /// Why it failed, for `failed`.
    pub error: Option<String>,
    /// The latest changes made inside the sandbox that were not saved (a limit was hit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_kept: Option<NotKept>,
}

/// `POST /api/workspaces/packages`: the packages installed in the workspace (with `pip
/// install`, into the sandbox user's `~/.local`), as kept with it between sandboxes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Packages {
    /// `name==version` of each package kept.
    pub packages: Vec<String>,
    /// Their packed size, counted against `quota_bytes`.
    pub size_bytes: u64,
    pub quota_bytes: u64,
    /// When they were last saved (Unix milliseconds); `None`: nothing kept.
    pub saved_at: Option<i64>,
    /// Why the latest packages were not kept (over the quota), in words for the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_kept: Option<String>,
}

/// Changes made inside a sandbox (in its terminal, by a program) that the database did not
/// take, and why: they exist in the sandbox only and go with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NotKept {
    /// How many files and folders, in the sync that found them.
    pub count: u64,
    /// Why, in words for the user ("the workspace holds at most 5000 files and folders").
    pub reason: String,
    /// A few of their paths.
    pub examples: Vec<String>,
    /// When (Unix milliseconds).
    pub at: i64,
}

/// At most this many paths are named in a [`NotKept`].
pub const NOT_KEPT_EXAMPLES: usize = 5;

impl SandboxStatus {
    pub fn stopped() -> Self {
        Self {
            state: SandboxState::Stopped,
            started_at: None,
            idle_deadline: None,
            max_deadline: None,
            memory_bytes: None,
            processes: None,
            error: None,
            not_kept: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_names_are_trimmed_and_checked() {
        assert_eq!(
            WorkspaceName::try_from("  My project ".to_owned())
                .unwrap()
                .as_str(),
            "My project"
        );
        for bad in ["", "   ", "a/b", "tab\there", &"x".repeat(65)] {
            assert!(WorkspaceName::try_from(bad.to_owned()).is_err(), "{bad:?}");
        }
    }
}
