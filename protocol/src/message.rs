//! The messages. Each has a fixed numeric [`Tag`]; a tag, once published, is never given to
//! another message (retired tags stay listed as reserved). One table, [`messages!`], makes the
//! tag enum, the message enum and both directions of the payload encoding, so a message
//! is written down once.
//!
//! A payload is the message's fields in order, encoded with postcard (as a tuple, which
//! postcard encodes exactly as it would a struct of those fields).

use model::{TerminalId, TerminalInfo, WorkspacePath};
use serde::{Deserialize, Serialize};

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
    /// Retired (version 1's lag report); [`Message::TerminalLagged`] and
    /// [`Message::WatchLagged`] replaced it. Kept so that the codes after it keep their
    /// numbers.
    Lagged,
    TooManyTerminals,
}

/// One file in a snapshot of the workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub path: WorkspacePath,
    pub is_dir: bool,
    pub size: u64,
    /// Hex SHA-256 of the content; empty for folders.
    pub hash: String,
}

/// Defines [`Tag`] and [`Message`] from one table of `number => Name { field: Type, … }`,
/// with the payload encoding and decoding of every message.
macro_rules! messages {
    ($(
        $(#[$doc:meta])*
        $tag:literal => $name:ident $({ $($field:ident : $ty:ty),* $(,)? })?
    ),* $(,)?) => {
        /// Stable wire tags. Never renumber; never reuse a retired number.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum Tag {
            $($name = $tag),*
        }

        impl Tag {
            /// The tag for a wire number, or `None` for an unknown one.
            pub fn from_u16(value: u16) -> Option<Self> {
                match value {
                    $($tag => Some(Self::$name),)*
                    _ => None,
                }
            }
        }

        /// Everything the server and the agent say to each other.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Message {
            $(
                $(#[$doc])*
                $name $({ $($field: $ty),* })?
            ),*
        }

        impl Message {
            pub fn tag(&self) -> Tag {
                match self {
                    $(Self::$name { .. } => Tag::$name),*
                }
            }

            /// Appends the payload bytes.
            pub(crate) fn encode_payload(&self, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
                // The hot path (keystrokes and terminal output) is written without copying
                // the data twice; the bytes are postcard's (a test checks they are the same).
                if let Self::Input { terminal, data } | Self::Output { terminal, data } = self {
                    put_data(*terminal, data, out);
                    return Ok(());
                }
                match self {
                    $(
                        Self::$name $({ $($field),* })? => put(&( $($($field,)*)? ), out),
                    )*
                }
            }

            /// Parses a payload for `tag`. Trailing bytes are an error, so a frame has one
            /// meaning.
            pub(crate) fn decode_payload(tag: Tag, payload: &[u8]) -> Result<Self, postcard::Error> {
                match tag {
                    $(
                        Tag::$name => {
                            #[allow(unused_parens, clippy::let_unit_value, reason = "unit messages have no fields")]
                            let ( $($($field,)*)? ): ( $($($ty,)*)? ) = get(payload)?;
                            Ok(Self::$name $({ $($field),* })?)
                        }
                    )*
                }
            }
        }
    };
}

messages! {
    /// First frame in each direction.
    1 => Hello { version: u16 },
    2 => Error { code: ErrorCode, message: String },
    /// Success without data.
    3 => Ok,
    4 => Ping,
    5 => Pong,
    /// Start a bash login shell in the workspace; answered by `TerminalOpened`.
    10 => OpenTerminal { cols: u16, rows: u16 },
    11 => TerminalOpened { terminal: TerminalId },
    /// Subscribe to a terminal: its scrollback is replayed as `Output`, then the answer
    /// (`Ok`, which so marks the end of the replay), then live output.
    12 => Attach { terminal: TerminalId },
    13 => Input { terminal: TerminalId, data: Vec<u8> },
    14 => Output { terminal: TerminalId, data: Vec<u8> },
    15 => Resize { terminal: TerminalId, cols: u16, rows: u16 },
    16 => CloseTerminal { terminal: TerminalId },
    17 => TerminalExited { terminal: TerminalId, status: i32 },
    /// Run a command (through `bash -lc`) in a new terminal of the given size; answered by
    /// `TerminalOpened`, then `RunFinished` reports how it ended to the attached clients.
    18 => Run { command: String, cols: u16, rows: u16 },
    19 => RunFinished { terminal: TerminalId, exit_code: i32, wall_ms: u64, peak_rss_kib: u64 },
    /// Which terminals exist; answered by `TerminalList`.
    20 => ListTerminals,
    21 => TerminalList { terminals: Vec<TerminalInfo> },
    /// Pushed to a client that fell too far behind `terminal`'s output: it is detached from
    /// that terminal (only), and attaches again to catch up from the scrollback.
    22 => TerminalLagged { terminal: TerminalId },
    30 => WriteFile { path: WorkspacePath, data: Vec<u8> },
    31 => ReadFile { path: WorkspacePath },
    32 => FileContent { path: WorkspacePath, data: Vec<u8> },
    33 => MakeDir { path: WorkspacePath },
    34 => Move { from: WorkspacePath, to: WorkspacePath },
    35 => Delete { path: WorkspacePath },
    /// Every file and folder of the workspace (ignore list applied); answered by
    /// `SnapshotResult`.
    36 => Snapshot,
    /// `files`: every regular file and folder the ignore list keeps, in path order.
    /// `unlisted`: what exists but is not listed (ignored paths, symlinks, special files),
    /// without descending into it — a receiver comparing its copy keeps what lies there.
    /// `complete` is false when the listing stopped at [`crate::MAX_SNAPSHOT_ENTRIES`]:
    /// what is missing from it may still exist.
    37 => SnapshotResult { files: Vec<FileInfo>, unlisted: Vec<WorkspacePath>, complete: bool },
    /// Pushed by the watcher: a file was created or changed inside the sandbox. `data` is
    /// `None` when the file is over the size cap.
    38 => FileChanged { path: WorkspacePath, is_dir: bool, data: Option<Vec<u8>> },
    39 => FileRemoved { path: WorkspacePath },
    /// Subscribe to changes made inside the sandbox: answered `Ok`, then `FileChanged` and
    /// `FileRemoved` events (debounced, ignore list applied).
    40 => Watch,
    /// Pushed to a watching client that fell behind: `missed` changes were dropped. The
    /// watch goes on; take a `Snapshot` to catch up.
    41 => WatchLagged { missed: u64 },
    /// One language-server message (a JSON-RPC message, without the `Content-Length`
    /// header) from this client to the workspace's Python language server, which the agent
    /// starts when first needed and shares between its clients. Not answered itself: what
    /// the server says back comes as `LspReceive` events (see `agent::lsp`).
    50 => LspSend { data: Vec<u8> },
    /// Pushed: one language-server message for this client.
    51 => LspReceive { data: Vec<u8> },
    /// Pack the user's installed packages (everything under `~/.local`) for the server to
    /// keep with the workspace: answered `EnvironmentUnchanged` when their signature is still
    /// `unless`, else `EnvironmentSaved` (the archive is then read with `ReadEnvironment`),
    /// or `TooLarge` past `max_bytes`.
    60 => SaveEnvironment { max_bytes: u64, unless: String },
    61 => EnvironmentUnchanged,
    /// `bytes`: the archive's size (0: nothing installed); `signature`: what the next
    /// `SaveEnvironment` passes as `unless`; `packages`: `name==version` of each.
    62 => EnvironmentSaved { bytes: u64, signature: String, packages: Vec<String> },
    /// Up to [`crate::MAX_ENVIRONMENT_CHUNK`] bytes of the last saved archive from `offset`;
    /// answered `EnvironmentData` (empty past the end).
    63 => ReadEnvironment { offset: u64 },
    64 => EnvironmentData { data: Vec<u8> },
    /// One piece of an archive to unpack into `~/.local` (the workspace's packages, at
    /// start); the agent unpacks when `last` comes. Answered `Ok`.
    65 => RestoreEnvironment { data: Vec<u8>, last: bool },
    /// Removes every installed package (`~/.local`). Answered `Ok`.
    66 => ClearEnvironment,
    /// Subscribe to the figures the sandbox's matplotlib backend shows (`plt.show()`):
    /// answered `Ok`, then the recent ones and every new one as `Plot` events.
    70 => WatchPlots,
    /// Pushed: one figure, a PNG of at most [`crate::MAX_PLOT`] bytes; `id` grows by one
    /// with each figure of the sandbox.
    71 => Plot { id: u64, data: Vec<u8> },
}

fn put<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
    let bytes = postcard::to_allocvec(value)?;
    out.extend_from_slice(&bytes);
    Ok(())
}

fn get<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, postcard::Error> {
    let (value, rest) = postcard::take_from_bytes(payload)?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(postcard::Error::DeserializeBadEncoding)
    }
}

/// Appends an `Input`/`Output` payload as postcard encodes it: the terminal id and the data
/// length as LEB128 varints, then the bytes.
pub(crate) fn put_data(terminal: TerminalId, data: &[u8], out: &mut Vec<u8>) {
    fn varint(mut value: u64, out: &mut Vec<u8>) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }
    varint(u64::from(terminal.0), out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}
