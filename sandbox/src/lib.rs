//! Sandboxes: where a workspace's shell and code run. One [`Runtime`] trait, two backends —
//! [`local::LocalRuntime`] (bubblewrap on this machine) and [`kube::KubeRuntime`] (a pod per
//! workspace on Kubernetes) — and the typed, bounded, timed client of the agent that runs
//! inside each ([`agent`]).
//!
//! A sandbox is disposable: the database holds the files, the sandbox gets them on start.

pub mod agent;
pub mod egress;
pub mod index;
pub mod kube;
pub mod local;

use std::time::Duration;

use async_trait::async_trait;

pub use agent::{AgentConnection, Transport};

/// A sandbox's name: the workspace id it belongs to, in its canonical text form. Only
/// generated ids are used, never user-chosen strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SandboxId(String);

impl From<model::WorkspaceId> for SandboxId {
    fn from(workspace: model::WorkspaceId) -> Self {
        // A UUID's hyphenated lower-case form: always a valid id.
        Self(workspace.to_string())
    }
}

impl SandboxId {
    /// Accepts lower-case hex and dashes only (a UUID), so an id is always safe as a path
    /// component or a label.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let ok = !text.is_empty()
            && text.len() <= 64
            && text
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase() || c == '-');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(Error::InvalidId(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SandboxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Resource limits of one sandbox.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Memory for all its processes together.
    pub memory_bytes: u64,
    /// Processes and threads.
    pub max_processes: u64,
    /// Open files per process.
    pub max_open_files: u64,
    /// Largest file a process may write.
    pub max_file_bytes: u64,
    /// Size of the workspace (and separately of home and /tmp).
    pub workspace_bytes: u64,
    /// CPU time per process, in seconds (a runaway loop ends; an interactive shell does not
    /// accumulate CPU time).
    pub cpu_seconds: u64,
    /// CPU share of all its processes together, in thousandths of a core (1000 = one
    /// core); 0 for no cap. Capped or not, each sandbox is scheduled as one group, so a
    /// busy sandbox cannot starve its neighbours' shells by running many processes.
    pub cpu_millis: u32,
    /// Files and folders in each of its writable file systems (workspace, home, /tmp,
    /// /dev/shm), where the runtime can cap them.
    pub max_inodes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 1024 * 1024 * 1024,
            max_processes: 256,
            max_open_files: 1024,
            max_file_bytes: 256 * 1024 * 1024,
            workspace_bytes: 512 * 1024 * 1024,
            cpu_seconds: 3600,
            cpu_millis: 1000,
            max_inodes: 65_536,
        }
    }
}

/// What can be known about a running sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub memory_bytes: Option<u64>,
    pub processes: Option<u64>,
    /// Forks refused because the sandbox was at its process cap.
    pub process_limit_hits: Option<u64>,
    /// Processes killed for exceeding the memory cap.
    pub oom_kills: Option<u64>,
    /// Scheduler periods in which the CPU cap held the sandbox back.
    pub cpu_throttled_periods: Option<u64>,
}

/// How well a runtime contains its sandboxes on this machine: reported in the start log
/// and by `/readyz`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Containment {
    /// The layers in force ("seccomp", "cgroup v2 (memory, processes, CPU)"…).
    pub layers: Vec<String>,
    /// What is missing; empty when nothing is.
    pub missing: Vec<String>,
    /// Whether sandboxes start: `false` when something essential is missing and the
    /// operator has not opted in to starting them anyway.
    pub starts: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid sandbox id {0:?}")]
    InvalidId(String),
    #[error("no such sandbox")]
    NotFound,
    #[error("the sandbox did not come up within {0:?}")]
    StartTimeout(Duration),
    #[error("the sandbox runtime is unavailable: {0}")]
    Unavailable(String),
    /// No room: a quota is used up, or no node can take another sandbox. Safe to show.
    #[error("{0}")]
    Capacity(String),
    /// The sandbox image cannot be pulled. Safe to show.
    #[error("{0}")]
    ImagePull(String),
    /// The agent broke the protocol (or sent more than it may).
    #[error("agent protocol: {0}")]
    Protocol(String),
    /// The agent refused a request.
    #[error("the agent refused: {message}")]
    Agent {
        failure: agent::Failure,
        message: String,
    },
    /// The agent did not answer in time; its connection was closed.
    #[error("the sandbox did not answer in time ({0})")]
    Timeout(&'static str),
    /// The connection to the agent has ended.
    #[error("the connection to the sandbox has ended")]
    Closed,
    /// Too many requests are in flight on one connection.
    #[error("too many requests are waiting for the sandbox")]
    Busy,
    /// Sandboxes cannot be contained on this machine and the operator has not opted in.
    #[error("sandboxes are disabled: {0}")]
    Uncontained(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Starts, reaches, lists and stops sandboxes.
#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// `local` or `kube`.
    fn name(&self) -> &'static str;
    /// What contains its sandboxes here.
    fn containment(&self) -> Containment;
    /// Starts the sandbox unless it runs already; returns when its agent answers.
    async fn ensure(&self, id: &SandboxId) -> Result<()>;
    /// A new byte stream to the sandbox's agent (before the handshake): open an
    /// [`agent::AgentConnection`] or an [`agent::TerminalSession`] over it.
    async fn connect(&self, id: &SandboxId) -> Result<Transport>;
    /// Stops the sandbox and everything in it. Stopping a stopped sandbox is fine.
    async fn stop(&self, id: &SandboxId) -> Result<()>;
    /// The sandboxes this runtime has running (for orphan cleanup).
    async fn list(&self) -> Result<Vec<SandboxId>>;
    async fn stats(&self, id: &SandboxId) -> Result<Stats>;
    /// Removes sandboxes and their resources that no running server owns (left by a crash
    /// or a restart); returns how many.
    async fn cleanup_orphans(&self) -> Result<usize>;

    /// Whether sandboxes keep running when this server process stops (Kubernetes: yes, the
    /// next replica attaches to them; local: no, they are its children).
    fn outlives_server(&self) -> bool {
        false
    }

    /// Records activity where every server replica can see it.
    async fn touch(&self, _id: &SandboxId) -> Result<()> {
        Ok(())
    }

    /// The last activity any replica recorded with [`Runtime::touch`], in milliseconds since
    /// the epoch; `None` when the runtime keeps no such record.
    async fn last_active(&self, _id: &SandboxId) -> Result<Option<i64>> {
        Ok(None)
    }

    /// Periodic housekeeping (orphans, warm pool); the server runs it with its reaper.
    async fn maintain(&self) -> Result<()> {
        Ok(())
    }

    /// Registers the runtime's own metrics, if it has any.
    fn register_metrics(&self, _registry: &mut prometheus_client::registry::Registry) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuids_only() {
        assert!(SandboxId::parse("6f1c4a9e-0000-4000-8000-000000000000").is_ok());
        for bad in ["", "../etc", "A1", "x y", "a/b", &"a".repeat(65)] {
            assert!(SandboxId::parse(bad).is_err(), "{bad}");
        }
    }
}
