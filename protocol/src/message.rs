//! The messages. Each variant has a fixed numeric [`Tag`]; a tag, once published, is never
//! given to another message (retired tags stay listed as reserved).

use serde::{Deserialize, Serialize};

/// A terminal inside one agent. Allocated by the agent, never reused while it runs.
pub type TerminalId = u32;

/// Stable wire tags. Never renumber; never reuse a retired number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Tag {
    Hello = 1,
    Error = 2,
    Ok = 3,
    Ping = 4,
    Pong = 5,
    OpenTerminal = 10,
    TerminalOpened = 11,
    Attach = 12,
    Input = 13,
    Output = 14,
    Resize = 15,
    CloseTerminal = 16,
    TerminalExited = 17,
    Run = 18,
    RunFinished = 19,
    ListTerminals = 20,
    TerminalList = 21,
    WriteFile = 30,
    ReadFile = 31,
    FileContent = 32,
    MakeDir = 33,
    Move = 34,
    Delete = 35,
    Snapshot = 36,
    SnapshotResult = 37,
    FileChanged = 38,
    FileRemoved = 39,
    Watch = 40,
}

impl Tag {
    /// The tag for a wire number, or `None` for an unknown one.
    pub fn from_u16(value: u16) -> Option<Self> {
        use Tag::*;
        Some(match value {
            1 => Hello,
            2 => Error,
            3 => Ok,
            4 => Ping,
            5 => Pong,
            10 => OpenTerminal,
            11 => TerminalOpened,
            12 => Attach,
            13 => Input,
            14 => Output,
            15 => Resize,
            16 => CloseTerminal,
            17 => TerminalExited,
            18 => Run,
            19 => RunFinished,
            20 => ListTerminals,
            21 => TerminalList,
            30 => WriteFile,
            31 => ReadFile,
            32 => FileContent,
            33 => MakeDir,
            34 => Move,
            35 => Delete,
            36 => Snapshot,
            37 => SnapshotResult,
            38 => FileChanged,
            39 => FileRemoved,
            40 => Watch,
            _ => return None,
        })
    }
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    UnsupportedVersion,
    MalformedFrame,
    UnknownTag,
    NotFound,
    AlreadyExists,
    /// A path would leave the workspace (symlink, `..`), or names something not allowed.
    Forbidden,
    TooLarge,
    Io,
    /// A message the receiver does not accept as a request (an event, or a request this
    /// build of the agent does not serve).
    Unsupported,
    /// A live-output subscriber fell too far behind and was detached; attach again.
    Lagged,
    TooManyTerminals,
}

/// One file in a snapshot of the workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub path: String,
    pub is_dir: bool,
    pub size: u64,
    /// Hex SHA-256 of the content; empty for folders.
    pub hash: String,
}

/// One terminal in a [`Message::TerminalList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalInfo {
    pub terminal: TerminalId,
    /// The command of a run; `None` for an interactive shell.
    pub command: Option<String>,
    /// The exit status once it has ended (it stays listed until closed).
    pub exited: Option<i32>,
}

/// Everything the server and the agent say to each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// First frame in each direction.
    Hello {
        version: u16,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    /// Success without data.
    Ok,
    Ping,
    Pong,
    /// Start a bash login shell in the workspace; answered by `TerminalOpened`.
    OpenTerminal {
        cols: u16,
        rows: u16,
    },
    TerminalOpened {
        terminal: TerminalId,
    },
    /// Subscribe to a terminal: its scrollback is replayed as `Output`, then live output.
    Attach {
        terminal: TerminalId,
    },
    Input {
        terminal: TerminalId,
        data: Vec<u8>,
    },
    Output {
        terminal: TerminalId,
        data: Vec<u8>,
    },
    Resize {
        terminal: TerminalId,
        cols: u16,
        rows: u16,
    },
    CloseTerminal {
        terminal: TerminalId,
    },
    TerminalExited {
        terminal: TerminalId,
        status: i32,
    },
    /// Run a command (through `bash -lc`) in a new terminal of the given size; answered by
    /// `TerminalOpened`, then `RunFinished` reports how it ended to the attached clients.
    Run {
        command: String,
        cols: u16,
        rows: u16,
    },
    RunFinished {
        terminal: TerminalId,
        exit_code: i32,
        wall_ms: u64,
        peak_rss_kib: u64,
    },
    /// Which terminals exist; answered by `TerminalList`.
    ListTerminals,
    TerminalList {
        terminals: Vec<TerminalInfo>,
    },
    WriteFile {
        path: String,
        data: Vec<u8>,
    },
    ReadFile {
        path: String,
    },
    FileContent {
        path: String,
        data: Vec<u8>,
    },
    MakeDir {
        path: String,
    },
    Move {
        from: String,
        to: String,
    },
    Delete {
        path: String,
    },
    Snapshot,
    SnapshotResult {
        files: Vec<FileInfo>,
    },
    /// Subscribe to changes made inside the sandbox: answered `Ok`, then `FileChanged` and
    /// `FileRemoved` events (debounced, ignore list applied).
    Watch,
    /// Pushed by the watcher: a file was created or changed inside the sandbox. `data` is
    /// `None` when the file is over the size cap.
    FileChanged {
        path: String,
        is_dir: bool,
        data: Option<Vec<u8>>,
    },
    FileRemoved {
        path: String,
    },
}

// Payload shapes, one per message with fields, serialised with postcard.
#[derive(Serialize, Deserialize)]
pub(crate) struct HelloP {
    pub version: u16,
}
#[derive(Serialize, Deserialize)]
pub(crate) struct ErrorP {
    pub code: ErrorCode,
    pub message: String,
}
#[derive(Serialize, Deserialize)]
pub(crate) struct SizeP {
    pub terminal: TerminalId,
    pub cols: u16,
    pub rows: u16,
}
#[derive(Serialize, Deserialize)]
pub(crate) struct OpenP {
    pub cols: u16,
    pub rows: u16,
}
#[derive(Serialize, Deserialize)]
pub(crate) struct TermP {
    pub terminal: TerminalId,
}
#[derive(Serialize, Deserialize)]
pub(crate) struct DataP {
    pub terminal: TerminalId,
    pub data: Vec<u8>,
}
#[derive(Serialize, Deserialize)]
pub(crate) struct ExitP {
    pub terminal: TerminalId,
    pub status: i32,
}
#[derive(Serialize, Deserialize)]
pub(crate) struct RunP {
    pub command: String,
    pub cols: u16,
    pub rows: u16,
}
#[derive(Serialize, Deserialize)]
pub(crate) struct RunDoneP {
    pub terminal: TerminalId,
    pub exit_code: i32,
    pub wall_ms: u64,
    pub peak_rss_kib: u64,
}
#[derive(Serialize, Deserialize)]
pub(crate) struct PathDataP {
    pub path: String,
    pub data: Vec<u8>,
}
#[derive(Serialize, Deserialize)]
pub(crate) struct PathP {
    pub path: String,
}
#[derive(Serialize, Deserialize)]
pub(crate) struct MoveP {
    pub from: String,
    pub to: String,
}
#[derive(Serialize, Deserialize)]
pub(crate) struct SnapshotP {
    pub files: Vec<FileInfo>,
}
#[derive(Serialize, Deserialize)]
pub(crate) struct TerminalsP {
    pub terminals: Vec<TerminalInfo>,
}
#[derive(Serialize, Deserialize)]
pub(crate) struct ChangedP {
    pub path: String,
    pub is_dir: bool,
    pub data: Option<Vec<u8>>,
}

/// Appends a `DataP` payload as postcard encodes it: the terminal id and the data length as
/// LEB128 varints, then the bytes.
pub(crate) fn put_data(terminal: TerminalId, data: &[u8], out: &mut Vec<u8>) {
    fn varint(mut value: u64, out: &mut Vec<u8>) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }
    varint(u64::from(terminal), out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

impl Message {
    pub fn tag(&self) -> Tag {
        match self {
            Self::Hello { .. } => Tag::Hello,
            Self::Error { .. } => Tag::Error,
            Self::Ok => Tag::Ok,
            Self::Ping => Tag::Ping,
            Self::Pong => Tag::Pong,
            Self::OpenTerminal { .. } => Tag::OpenTerminal,
            Self::TerminalOpened { .. } => Tag::TerminalOpened,
            Self::Attach { .. } => Tag::Attach,
            Self::Input { .. } => Tag::Input,
            Self::Output { .. } => Tag::Output,
            Self::Resize { .. } => Tag::Resize,
            Self::CloseTerminal { .. } => Tag::CloseTerminal,
            Self::TerminalExited { .. } => Tag::TerminalExited,
            Self::Run { .. } => Tag::Run,
            Self::RunFinished { .. } => Tag::RunFinished,
            Self::ListTerminals => Tag::ListTerminals,
            Self::TerminalList { .. } => Tag::TerminalList,
            Self::WriteFile { .. } => Tag::WriteFile,
            Self::ReadFile { .. } => Tag::ReadFile,
            Self::FileContent { .. } => Tag::FileContent,
            Self::MakeDir { .. } => Tag::MakeDir,
            Self::Move { .. } => Tag::Move,
            Self::Delete { .. } => Tag::Delete,
            Self::Snapshot => Tag::Snapshot,
            Self::Watch => Tag::Watch,
            Self::SnapshotResult { .. } => Tag::SnapshotResult,
            Self::FileChanged { .. } => Tag::FileChanged,
            Self::FileRemoved { .. } => Tag::FileRemoved,
        }
    }

    /// Appends the payload bytes.
    pub(crate) fn encode_payload(&self, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
        fn put<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
            let bytes = postcard::to_allocvec(value)?;
            out.extend_from_slice(&bytes);
            Ok(())
        }
        // The hot path (keystrokes and terminal output) is written without copying the
        // data twice; the bytes are postcard's (a test checks they are the same).
        if let Self::Input { terminal, data } | Self::Output { terminal, data } = self {
            put_data(*terminal, data, out);
            return Ok(());
        }
        match self.clone() {
            Self::Hello { version } => put(&HelloP { version }, out),
            Self::Error { code, message } => put(&ErrorP { code, message }, out),
            Self::Ok
            | Self::Ping
            | Self::Pong
            | Self::Snapshot
            | Self::Watch
            | Self::ListTerminals => Ok(()),
            Self::OpenTerminal { cols, rows } => put(&OpenP { cols, rows }, out),
            Self::TerminalOpened { terminal }
            | Self::Attach { terminal }
            | Self::CloseTerminal { terminal } => put(&TermP { terminal }, out),
            Self::Input { terminal, data } | Self::Output { terminal, data } => {
                put(&DataP { terminal, data }, out)
            }
            Self::Resize {
                terminal,
                cols,
                rows,
            } => put(
                &SizeP {
                    terminal,
                    cols,
                    rows,
                },
                out,
            ),
            Self::TerminalExited { terminal, status } => put(&ExitP { terminal, status }, out),
            Self::Run {
                command,
                cols,
                rows,
            } => put(
                &RunP {
                    command,
                    cols,
                    rows,
                },
                out,
            ),
            Self::RunFinished {
                terminal,
                exit_code,
                wall_ms,
                peak_rss_kib,
            } => put(
                &RunDoneP {
                    terminal,
                    exit_code,
                    wall_ms,
                    peak_rss_kib,
                },
                out,
            ),
            Self::WriteFile { path, data } | Self::FileContent { path, data } => {
                put(&PathDataP { path, data }, out)
            }
            Self::ReadFile { path }
            | Self::MakeDir { path }
            | Self::Delete { path }
            | Self::FileRemoved { path } => put(&PathP { path }, out),
            Self::Move { from, to } => put(&MoveP { from, to }, out),
            Self::SnapshotResult { files } => put(&SnapshotP { files }, out),
            Self::TerminalList { terminals } => put(&TerminalsP { terminals }, out),
            Self::FileChanged { path, is_dir, data } => put(&ChangedP { path, is_dir, data }, out),
        }
    }

    /// Parses a payload for `tag`. Trailing bytes are an error, so a frame has one meaning.
    pub(crate) fn decode_payload(tag: Tag, payload: &[u8]) -> Result<Self, postcard::Error> {
        fn get<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, postcard::Error> {
            let (value, rest) = postcard::take_from_bytes(payload)?;
            if rest.is_empty() {
                Ok(value)
            } else {
                Err(postcard::Error::DeserializeBadEncoding)
            }
        }
        fn empty(payload: &[u8], message: Message) -> Result<Message, postcard::Error> {
            if payload.is_empty() {
                Ok(message)
            } else {
                Err(postcard::Error::DeserializeBadEncoding)
            }
        }
        Ok(match tag {
            Tag::Hello => get::<HelloP>(payload).map(|p| Self::Hello { version: p.version })?,
            Tag::Error => get::<ErrorP>(payload).map(|p| Self::Error {
                code: p.code,
                message: p.message,
            })?,
            Tag::Ok => empty(payload, Self::Ok)?,
            Tag::Ping => empty(payload, Self::Ping)?,
            Tag::Pong => empty(payload, Self::Pong)?,
            Tag::Snapshot => empty(payload, Self::Snapshot)?,
            Tag::Watch => empty(payload, Self::Watch)?,
            Tag::ListTerminals => empty(payload, Self::ListTerminals)?,
            Tag::TerminalList => get::<TerminalsP>(payload).map(|p| Self::TerminalList {
                terminals: p.terminals,
            })?,
            Tag::OpenTerminal => get::<OpenP>(payload).map(|p| Self::OpenTerminal {
                cols: p.cols,
                rows: p.rows,
            })?,
            Tag::TerminalOpened => get::<TermP>(payload).map(|p| Self::TerminalOpened {
                terminal: p.terminal,
            })?,
            Tag::Attach => get::<TermP>(payload).map(|p| Self::Attach {
                terminal: p.terminal,
            })?,
            Tag::CloseTerminal => get::<TermP>(payload).map(|p| Self::CloseTerminal {
                terminal: p.terminal,
            })?,
            Tag::Input => get::<DataP>(payload).map(|p| Self::Input {
                terminal: p.terminal,
                data: p.data,
            })?,
            Tag::Output => get::<DataP>(payload).map(|p| Self::Output {
                terminal: p.terminal,
                data: p.data,
            })?,
            Tag::Resize => get::<SizeP>(payload).map(|p| Self::Resize {
                terminal: p.terminal,
                cols: p.cols,
                rows: p.rows,
            })?,
            Tag::TerminalExited => get::<ExitP>(payload).map(|p| Self::TerminalExited {
                terminal: p.terminal,
                status: p.status,
            })?,
            Tag::Run => get::<RunP>(payload).map(|p| Self::Run {
                command: p.command,
                cols: p.cols,
                rows: p.rows,
            })?,
            Tag::RunFinished => get::<RunDoneP>(payload).map(|p| Self::RunFinished {
                terminal: p.terminal,
                exit_code: p.exit_code,
                wall_ms: p.wall_ms,
                peak_rss_kib: p.peak_rss_kib,
            })?,
            Tag::WriteFile => get::<PathDataP>(payload).map(|p| Self::WriteFile {
                path: p.path,
                data: p.data,
            })?,
            Tag::FileContent => get::<PathDataP>(payload).map(|p| Self::FileContent {
                path: p.path,
                data: p.data,
            })?,
            Tag::ReadFile => get::<PathP>(payload).map(|p| Self::ReadFile { path: p.path })?,
            Tag::MakeDir => get::<PathP>(payload).map(|p| Self::MakeDir { path: p.path })?,
            Tag::Delete => get::<PathP>(payload).map(|p| Self::Delete { path: p.path })?,
            Tag::FileRemoved => {
                get::<PathP>(payload).map(|p| Self::FileRemoved { path: p.path })?
            }
            Tag::Move => get::<MoveP>(payload).map(|p| Self::Move {
                from: p.from,
                to: p.to,
            })?,
            Tag::SnapshotResult => {
                get::<SnapshotP>(payload).map(|p| Self::SnapshotResult { files: p.files })?
            }
            Tag::FileChanged => get::<ChangedP>(payload).map(|p| Self::FileChanged {
                path: p.path,
                is_dir: p.is_dir,
                data: p.data,
            })?,
        })
    }
}
