//! The IDE's WebSocket, `/ws/workspaces/{id}`: one per browser tab.
//!
//! - **Binary frames** carry terminal bytes: a 4-byte big-endian terminal id, then the data.
//!   Browser → server is keyboard input; server → browser is terminal output.
//!   A binary frame on [`LSP_CHANNEL`] carries instead one message of the workspace's
//!   Python language server (JSON-RPC, as the Language Server Protocol writes it without
//!   its `Content-Length` header), either way; it counts towards [`ClientMessage::Ack`]
//!   like terminal output. One on [`PLOT_CHANNEL`] (server → browser) carries a figure a
//!   program in the sandbox showed, and counts too.
//! - **Text frames** carry JSON control messages, [`ClientMessage`] one way and
//!   [`ServerMessage`] the other, tagged by `"type"`.
//!
//! Terminals belong to the workspace's sandbox, not to the socket: they outlive it, and a
//! new socket (a reconnect, a reload, another tab) attaches to them again and gets their
//! scrollback first.

use serde::{Deserialize, Serialize};

use crate::{NotKept, SandboxStatus};

/// A terminal of a workspace, allocated by its sandbox's agent and never reused while it
/// runs. On the wire it is a plain number (JSON) or a big-endian `u32` (binary frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TerminalId(pub u32);

impl std::fmt::Display for TerminalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Close codes of the IDE socket, and what the browser does on each.
pub mod close {
    /// The sandbox stopped (idle cull, maximum lifetime, stop request): do not reconnect on
    /// your own, or an open tab would keep it alive for ever.
    pub const SANDBOX_STOPPED: u16 = 4000;
    /// Dropped for not reading (it may reconnect).
    pub const TOO_SLOW: u16 = 4001;
    /// The sandbox could not be started.
    pub const START_FAILED: u16 = 4002;
    /// The session ended — signed out here or everywhere, the password changed, the account
    /// deleted, or expired: sign in again; reconnecting cannot help.
    pub const SIGNED_OUT: u16 = 4003;
    /// Standard "service restart": the server is shutting down; reconnect with backoff.
    pub const RESTARTING: u16 = 1012;
}

/// Longest command a `run` may carry (a command line, not a script: scripts are files).
pub const MAX_COMMAND: usize = 16 * 1024;

/// Bytes before the data in a binary frame.
pub const CHANNEL_HEADER: usize = 4;

/// The channel id of language-server messages in binary frames; no terminal has it.
pub const LSP_CHANNEL: TerminalId = TerminalId(u32::MAX);
/// The channel of figures shown in the sandbox (`plt.show()`): each binary frame on it is
/// one figure, its id (8 bytes, big-endian, growing) then a PNG.
pub const PLOT_CHANNEL: TerminalId = TerminalId(u32::MAX - 1);

/// A binary frame for `terminal` carrying `data`.
pub fn encode_data(terminal: TerminalId, data: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(CHANNEL_HEADER + data.len());
    frame.extend_from_slice(&terminal.0.to_be_bytes());
    frame.extend_from_slice(data);
    frame
}

/// Splits a binary frame into its terminal and data; `None` if it is too short.
pub fn decode_data(frame: &[u8]) -> Option<(TerminalId, &[u8])> {
    let (header, data) = frame.split_first_chunk::<CHANNEL_HEADER>()?;
    Some((TerminalId(u32::from_be_bytes(*header)), data))
}

/// Control messages from the browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Start a new shell of this size; answered by [`ServerMessage::Opened`].
    Open { cols: u16, rows: u16 },
    /// Run a command in a new terminal; answered by `Opened`, later `RunFinished`.
    Run {
        command: String,
        cols: u16,
        rows: u16,
    },
    /// Receive a terminal's output: its scrollback first, then [`ServerMessage::Attached`],
    /// then live output. Attaching again replays the scrollback again (after a reset of the
    /// screen, say). A terminal emulator must not answer the queries in a replay.
    Attach { terminal: TerminalId },
    Resize {
        terminal: TerminalId,
        cols: u16,
        rows: u16,
    },
    /// Kill the terminal's shell and forget it.
    Close { terminal: TerminalId },
    /// Answered by `Pong` with the same `nonce` (latency probes, keeping proxies awake).
    Ping { nonce: u64 },
    /// The user is working in this tab (typing in the editor): it keeps the sandbox from
    /// the idle stop, as terminal traffic does. Send it at most every few seconds.
    Activity,
    /// Flow control: this socket has taken in (for a browser: drawn) `bytes` bytes of
    /// terminal output, counted over the data of every binary frame the server sent on
    /// it, headers excluded. A socket that has sent one `Ack` is held to
    /// [`ACK_WINDOW`]: the server sends no more output while that many bytes are
    /// unacknowledged (the terminals pause, as for a slow reader). Send `{"bytes":0}`
    /// first to be held from the start; a client that never sends one is bounded only by
    /// its socket.
    Ack { bytes: u64 },
}

/// Unacknowledged output bytes after which the server holds a socket's output, once the
/// socket acknowledges ([`ClientMessage::Ack`]).
pub const ACK_WINDOW: u64 = 1024 * 1024;

/// A client's side of [`ClientMessage::Ack`]: counts the output it takes in and says when
/// an acknowledgement is due — every eighth of the window, so one is always on the way
/// well before the server stops. Start a new one for each socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Acknowledger {
    received: u64,
    acknowledged: u64,
}

impl Acknowledger {
    /// Output data bytes taken in on this socket so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Counts `bytes` more of output (the data of a binary frame, header excluded).
    pub fn take(&mut self, bytes: usize) {
        self.received += bytes as u64;
    }

    /// The count to acknowledge, if a step has passed since the last acknowledgement.
    pub fn due(&self) -> Option<u64> {
        (self.received >= self.acknowledged + ACK_WINDOW / 8).then_some(self.received)
    }

    /// Notes that `bytes` has been (or is being) acknowledged.
    pub fn acknowledged(&mut self, bytes: u64) {
        self.acknowledged = self.acknowledged.max(bytes);
    }
}

/// One of the workspace's terminals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalInfo {
    pub terminal: TerminalId,
    /// The command for a run; `None` for an interactive shell.
    pub command: Option<String>,
    /// The exit status, once the shell has ended.
    pub exited: Option<i32>,
}

/// Control messages from the server.
///
/// Read through [`wire::ServerMessage`] (the same JSON): serde reads an internally tagged
/// enum by buffering each message into a generic value first, which put about 60 KB of code
/// into the browser's bundle for this one type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    try_from = "wire::ServerMessage"
)]
pub enum ServerMessage {
    /// The sandbox's state: sent first (`starting` while it boots), and again when it
    /// changes.
    Status {
        status: SandboxStatus,
    },
    /// The terminals that exist, sent once the sandbox is ready: attach to them to resume.
    Terminals {
        terminals: Vec<TerminalInfo>,
    },
    Opened {
        terminal: TerminalId,
        command: Option<String>,
    },
    /// The scrollback replayed for an `attach` has all been sent: output from here on is
    /// live. Until then the browser's terminal must not answer queries (device attributes,
    /// cursor position, colours) found in the replay: the program that asked is gone and
    /// the answer would be typed into the shell.
    Attached {
        terminal: TerminalId,
    },
    Exited {
        terminal: TerminalId,
        status: i32,
    },
    RunFinished {
        terminal: TerminalId,
        exit_code: i32,
        wall_ms: u64,
        peak_rss_kib: u64,
    },
    /// This socket fell too far behind `terminal`'s output and was detached from it;
    /// attach again (after resetting its screen) to catch up from the scrollback. The other
    /// terminals go on.
    Lagged {
        terminal: TerminalId,
    },
    Pong {
        nonce: u64,
    },
    /// A file or folder was created or changed (by a save in any tab, or inside the
    /// sandbox); `version` is a file's new version, `None` for a folder.
    FileChanged {
        path: String,
        version: Option<i64>,
    },
    /// A file or folder was deleted or moved away.
    FileRemoved {
        path: String,
    },
    /// Reload the tree and check open files: sent first on every socket (events before
    /// it were not seen by this socket), and whenever it missed events (it fell behind).
    FilesResync,
    /// Changes made inside the sandbox were not saved, and why.
    FilesNotKept {
        not_kept: NotKept,
    },
    /// A request failed; `terminal` names the one it was about, when there is one.
    Error {
        code: crate::ErrorCode,
        message: String,
        terminal: Option<TerminalId>,
    },
}

/// [`ServerMessage`] as it is read: every variant's fields side by side, then checked
/// against its `type`.
mod wire {
    use serde::{
        Deserialize, Deserializer,
        de::{self, MapAccess, Unexpected, Visitor, value::MapAccessDeserializer},
    };

    use super::{TerminalId, TerminalInfo};
    use crate::{ErrorCode, NotKept, SandboxStatus};

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Status,
        Terminals,
        Opened,
        Attached,
        Exited,
        RunFinished,
        Lagged,
        Pong,
        FileChanged,
        FileRemoved,
        FilesResync,
        FilesNotKept,
        Error,
    }

    #[derive(Deserialize)]
    pub(super) struct ServerMessage {
        #[serde(rename = "type")]
        kind: Kind,
        /// The sandbox's (`status`) or a shell's exit status (`exited`).
        status: Option<Status>,
        terminals: Option<Vec<TerminalInfo>>,
        terminal: Option<TerminalId>,
        command: Option<String>,
        exit_code: Option<i32>,
        wall_ms: Option<u64>,
        peak_rss_kib: Option<u64>,
        nonce: Option<u64>,
        path: Option<String>,
        version: Option<i64>,
        not_kept: Option<NotKept>,
        code: Option<ErrorCode>,
        message: Option<String>,
    }

    enum Status {
        Sandbox(Box<SandboxStatus>),
        Exit(i32),
    }

    impl<'de> Deserialize<'de> for Status {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Either;
            impl<'de> Visitor<'de> for Either {
                type Value = Status;

                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a sandbox status or an exit status")
                }

                fn visit_i64<E: de::Error>(self, value: i64) -> Result<Status, E> {
                    i32::try_from(value)
                        .map(Status::Exit)
                        .map_err(|_| E::invalid_value(Unexpected::Signed(value), &self))
                }

                fn visit_u64<E: de::Error>(self, value: u64) -> Result<Status, E> {
                    i32::try_from(value)
                        .map(Status::Exit)
                        .map_err(|_| E::invalid_value(Unexpected::Unsigned(value), &self))
                }

                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Status, A::Error> {
                    SandboxStatus::deserialize(MapAccessDeserializer::new(map))
                        .map(|status| Status::Sandbox(Box::new(status)))
                }
            }
            deserializer.deserialize_any(Either)
        }
    }

    impl TryFrom<ServerMessage> for super::ServerMessage {
        type Error = String;

        fn try_from(wire: ServerMessage) -> Result<Self, String> {
            fn field<T>(value: Option<T>, name: &str) -> Result<T, String> {
                value.ok_or_else(|| format!("missing field `{name}`"))
            }
            let terminal = || field(wire.terminal, "terminal");
            Ok(match wire.kind {
                Kind::Status => match field(wire.status, "status")? {
                    Status::Sandbox(status) => Self::Status { status: *status },
                    Status::Exit(_) => return Err("`status` is not a sandbox status".into()),
                },
                Kind::Terminals => Self::Terminals {
                    terminals: field(wire.terminals, "terminals")?,
                },
                Kind::Opened => Self::Opened {
                    terminal: terminal()?,
                    command: wire.command,
                },
                Kind::Attached => Self::Attached {
                    terminal: terminal()?,
                },
                Kind::Exited => match field(wire.status, "status")? {
                    Status::Exit(status) => Self::Exited {
                        terminal: terminal()?,
                        status,
                    },
                    Status::Sandbox(_) => return Err("`status` is not an exit status".into()),
                },
                Kind::RunFinished => Self::RunFinished {
                    terminal: terminal()?,
                    exit_code: field(wire.exit_code, "exit_code")?,
                    wall_ms: field(wire.wall_ms, "wall_ms")?,
                    peak_rss_kib: field(wire.peak_rss_kib, "peak_rss_kib")?,
                },
                Kind::Lagged => Self::Lagged {
                    terminal: terminal()?,
                },
                Kind::Pong => Self::Pong {
                    nonce: field(wire.nonce, "nonce")?,
                },
                Kind::FileChanged => Self::FileChanged {
                    path: field(wire.path, "path")?,
                    version: wire.version,
                },
                Kind::FileRemoved => Self::FileRemoved {
                    path: field(wire.path, "path")?,
                },
                Kind::FilesResync => Self::FilesResync,
                Kind::FilesNotKept => Self::FilesNotKept {
                    not_kept: field(wire.not_kept, "not_kept")?,
                },
                Kind::Error => Self::Error {
                    code: field(wire.code, "code")?,
                    message: field(wire.message, "message")?,
                    terminal: wire.terminal,
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_frames_round_trip() {
        let frame = encode_data(TerminalId(7), b"ls\r");
        assert_eq!(&frame[..4], &[0, 0, 0, 7]);
        assert_eq!(decode_data(&frame), Some((TerminalId(7), &b"ls\r"[..])));
        assert_eq!(decode_data(&[0, 0, 1]), None);
        assert_eq!(decode_data(&[0, 0, 0, 1]), Some((TerminalId(1), &b""[..])));
    }

    #[test]
    fn acknowledgements_fall_due_every_eighth_of_the_window() {
        let step = ACK_WINDOW / 8;
        let mut acks = Acknowledger::default();
        acks.take(usize::try_from(step).unwrap_or(usize::MAX) - 1);
        assert_eq!(acks.due(), None);
        acks.take(10);
        assert_eq!(acks.due(), Some(step + 9));
        // Still due until noted, so one cancelled send does not lose it.
        assert_eq!(acks.due(), Some(step + 9));
        acks.acknowledged(step + 9);
        assert_eq!(acks.due(), None);
        acks.take(usize::try_from(step).unwrap_or(usize::MAX));
        assert_eq!(acks.due(), Some(2 * step + 9));
        assert_eq!(acks.received(), 2 * step + 9);
    }

    #[test]
    fn control_messages_are_tagged_json() -> Result<(), serde_json::Error> {
        let open: ClientMessage = serde_json::from_str(r#"{"type":"open","cols":80,"rows":24}"#)?;
        assert_eq!(open, ClientMessage::Open { cols: 80, rows: 24 });
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"open","cols":80}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"sudo"}"#).is_err());
        let ack: ClientMessage = serde_json::from_str(r#"{"type":"ack","bytes":131072}"#)?;
        assert_eq!(ack, ClientMessage::Ack { bytes: 131_072 });
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"ack","bytes":-1}"#).is_err());
        let exited = serde_json::to_string(&ServerMessage::Exited {
            terminal: TerminalId(3),
            status: 0,
        })?;
        assert_eq!(exited, r#"{"type":"exited","terminal":3,"status":0}"#);
        Ok(())
    }

    /// One message of every kind, with every optional field both ways.
    fn every_server_message() -> Vec<ServerMessage> {
        let running = SandboxStatus {
            started_at: Some(1),
            idle_deadline: Some(2),
            max_deadline: Some(3),
            memory_bytes: Some(4),
            processes: Some(5),
            error: Some("no".into()),
            not_kept: Some(not_kept()),
            ..SandboxStatus::stopped()
        };
        vec![
            ServerMessage::Status {
                status: SandboxStatus::stopped(),
            },
            ServerMessage::Status { status: running },
            ServerMessage::Terminals {
                terminals: vec![
                    TerminalInfo {
                        terminal: TerminalId(1),
                        command: None,
                        exited: None,
                    },
                    TerminalInfo {
                        terminal: TerminalId(2),
                        command: Some("python main.py".into()),
                        exited: Some(-9),
                    },
                ],
            },
            ServerMessage::Opened {
                terminal: TerminalId(1),
                command: None,
            },
            ServerMessage::Opened {
                terminal: TerminalId(2),
                command: Some("python main.py".into()),
            },
            ServerMessage::Attached {
                terminal: TerminalId(3),
            },
            ServerMessage::Exited {
                terminal: TerminalId(4),
                status: -1,
            },
            ServerMessage::RunFinished {
                terminal: TerminalId(5),
                exit_code: 1,
                wall_ms: 1234,
                peak_rss_kib: u64::MAX,
            },
            ServerMessage::Lagged {
                terminal: TerminalId(6),
            },
            ServerMessage::Pong { nonce: u64::MAX },
            ServerMessage::FileChanged {
                path: "a/b.py".into(),
                version: Some(7),
            },
            ServerMessage::FileChanged {
                path: "a".into(),
                version: None,
            },
            ServerMessage::FileRemoved { path: "a".into() },
            ServerMessage::FilesResync,
            ServerMessage::FilesNotKept {
                not_kept: not_kept(),
            },
            ServerMessage::Error {
                code: crate::ErrorCode::Exists,
                message: "taken".into(),
                terminal: Some(TerminalId(8)),
            },
            ServerMessage::Error {
                code: crate::ErrorCode::Internal,
                message: "oops".into(),
                terminal: None,
            },
        ]
    }

    fn not_kept() -> NotKept {
        NotKept {
            count: 2,
            reason: "too big".into(),
            examples: vec!["big.bin".into()],
            at: 9,
        }
    }

    #[test]
    fn every_server_message_reads_back_as_written() -> Result<(), serde_json::Error> {
        for message in every_server_message() {
            let json = serde_json::to_string(&message)?;
            assert_eq!(
                serde_json::from_str::<ServerMessage>(&json)?,
                message,
                "{json}"
            );
            // In any order: the tag need not come first.
            let mut fields = serde_json::to_value(&message)?;
            let object = fields.as_object_mut().unwrap();
            let kind = object.remove("type").unwrap();
            object.insert("type".into(), kind);
            assert_eq!(serde_json::from_value::<ServerMessage>(fields)?, message);
        }
        Ok(())
    }

    #[test]
    fn server_messages_missing_or_mistyped_fields_are_refused() {
        for (json, error) in [
            (
                r#"{"type":"exited","terminal":1}"#,
                "missing field `status`",
            ),
            (r#"{"type":"pong"}"#, "missing field `nonce`"),
            (
                r#"{"type":"run_finished","terminal":1,"exit_code":0,"wall_ms":1}"#,
                "missing field `peak_rss_kib`",
            ),
            (
                r#"{"type":"exited","terminal":1,"status":{"state":"ready"}}"#,
                "not an exit status",
            ),
            (r#"{"type":"status","status":0}"#, "not a sandbox status"),
            (
                r#"{"type":"exited","terminal":1,"status":4294967296}"#,
                "invalid value",
            ),
            (
                r#"{"type":"exited","terminal":1,"status":"0"}"#,
                "invalid type",
            ),
            (r#"{"type":"reboot"}"#, "unknown variant `reboot`"),
            (r#"{"terminal":1}"#, "missing field `type`"),
        ] {
            let refused = serde_json::from_str::<ServerMessage>(json).unwrap_err();
            assert!(refused.to_string().contains(error), "{json}: {refused}");
        }
        // Fields a newer server adds are ignored, as before.
        let pong: ServerMessage =
            serde_json::from_str(r#"{"type":"pong","nonce":1,"sent_at":2}"#).unwrap();
        assert_eq!(pong, ServerMessage::Pong { nonce: 1 });
    }
}
