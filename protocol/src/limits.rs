//! What a well-behaved agent sends at most, so that the server can refuse anything more
//! (the agent is the sandbox's voice: it may be replaced by the sandbox's user). The agent
//! holds itself to these; the server's decoder checks them.

/// Terminals one sandbox may have open.
pub const MAX_TERMINALS: usize = 16;
/// Largest file content the agent reads into one `FileContent`.
pub const MAX_READ: u64 = 12 * 1024 * 1024;
/// Most entries (listed and unlisted together) in one `SnapshotResult`.
pub const MAX_SNAPSHOT_ENTRIES: usize = 50_000;
/// Largest content a `FileChanged` carries (larger files are announced without it).
pub const MAX_WATCHED_CONTENT: u64 = 2 * 1024 * 1024;
/// Largest terminal output in one `Output` frame: a terminal's whole scrollback, replayed
/// on attach (live output leaves in far smaller frames).
pub const MAX_OUTPUT: usize = 256 * 1024;
/// Largest language-server message either way (`LspSend`, `LspReceive`): a whole file
/// opened in the editor, a completion list.
pub const MAX_LSP_MESSAGE: usize = 4 * 1024 * 1024;
/// Longest `Error` message text.
pub const MAX_ERROR_MESSAGE: usize = 1024;
/// Largest piece of a packed environment in one `EnvironmentData` or `RestoreEnvironment`.
pub const MAX_ENVIRONMENT_CHUNK: usize = 4 * 1024 * 1024;
/// Most packages listed in one `EnvironmentSaved`, and the longest entry.
pub const MAX_PACKAGES: usize = 2_000;
pub const MAX_PACKAGE_NAME: usize = 256;
/// Largest figure (a PNG) in one `Plot`.
pub const MAX_PLOT: usize = 8 * 1024 * 1024;
