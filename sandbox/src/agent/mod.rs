//! The server's side of the agent protocol, as a typed API: `services` and `server` call
//! these and never build a protocol message themselves.
//!
//! The agent is the sandbox's voice and the sandbox's user may replace it, so everything it
//! says is untrusted input: every frame is checked against a size limit for its kind from its
//! header, before its payload is buffered; every list, string and byte field is checked
//! after decoding, and every path is a valid `WorkspacePath` by its type; every request is
//! answered within a timeout or fails (and the connection is closed as wedged).
//!
//! - [`AgentConnection`]: the control connection, one per running sandbox, held for its
//!   life — file operations multiplexed over it, and the stream of changes made inside.
//! - [`TerminalSession`]: a connection per IDE tab, carrying its terminals' input and
//!   output, so that each browser's flow control reaches the agent on its own.

mod control;
mod frames;
mod terminal;

pub use control::{
    AgentConnection, Changes, EnvironmentSave, LONG_REQUEST_TIMEOUT, MAX_PENDING, REQUEST_TIMEOUT,
    SandboxChange, Snapshot,
};
pub use frames::{HANDSHAKE_TIMEOUT, SEND_TIMEOUT, Transport};
pub use protocol::{FileInfo, MAX_SNAPSHOT_ENTRIES};
pub use terminal::{TerminalEvent, TerminalEvents, TerminalSender, TerminalSession};

/// Why the agent refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    NotFound,
    AlreadyExists,
    /// A path through a symlink, or something that is not a regular file or folder.
    Forbidden,
    TooLarge,
    TooManyTerminals,
    Io,
    /// The request or its answer did not fit the protocol.
    Protocol,
}

impl Failure {
    /// The code the IDE's WebSocket reports it with.
    pub fn code(self) -> model::ErrorCode {
        use model::ErrorCode as C;
        match self {
            Self::NotFound => C::NotFound,
            Self::AlreadyExists => C::Exists,
            Self::Forbidden => C::Forbidden,
            Self::TooLarge => C::TooLarge,
            Self::TooManyTerminals => C::TooManyTerminals,
            Self::Io => C::Io,
            Self::Protocol => C::Protocol,
        }
    }
}

impl From<protocol::ErrorCode> for Failure {
    fn from(code: protocol::ErrorCode) -> Self {
        use protocol::ErrorCode as C;
        match code {
            C::NotFound => Self::NotFound,
            C::AlreadyExists => Self::AlreadyExists,
            C::Forbidden => Self::Forbidden,
            C::TooLarge => Self::TooLarge,
            C::TooManyTerminals => Self::TooManyTerminals,
            C::Io => Self::Io,
            C::UnsupportedVersion
            | C::MalformedFrame
            | C::UnknownTag
            | C::Unsupported
            | C::Lagged => Self::Protocol,
        }
    }
}
