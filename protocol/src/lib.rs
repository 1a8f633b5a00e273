//! The agent wire protocol, spoken between the server and the agent inside each sandbox
//! (over a Unix socket locally, over `kubectl exec`'s stdio on Kubernetes).
//!
//! A frame on the wire:
//!
//! ```text
//! ┌──────────────┬────────────┬──────────────┬──────────────────────────┐
//! │ length: u32  │ tag: u16   │ id: u32      │ payload (postcard)       │
//! │ big endian   │ big endian │ big endian   │ length − 6 bytes         │
//! └──────────────┴────────────┴──────────────┴──────────────────────────┘
//! ```
//!
//! `length` counts the bytes after itself and is checked against [`MAX_FRAME`] before
//! anything is allocated. `tag` names the message type; tags are stable and never reused
//! (see [`Tag`]). `id` pairs a request with its response (0 for events). The first frame
//! each way is [`Message::Hello`] carrying [`VERSION`]; a peer that does not speak it answers
//! [`Message::Error`] with [`ErrorCode::UnsupportedVersion`] and closes.
//!
//! Decoding never panics: an unknown tag, a short frame or a payload that does not parse
//! (a path that is not a valid `WorkspacePath` included) is a [`DecodeError`], which the
//! receiver answers with an error frame or by closing. A receiver that distrusts its peer
//! decodes with [`PayloadLimits`]: a frame over its message type's limit is refused from its
//! header, before the payload is buffered.

mod codec;
pub mod from_agent;
pub mod limits;
mod message;

pub use codec::{
    DecodeError, Decoder, Frame, HEADER_LEN, MAX_FRAME, PayloadLimits, ReadError, encode,
    encode_output, read_frame, write_frame,
};
pub use limits::*;
pub use message::{ErrorCode, FileInfo, Message, Tag};

/// The protocol version this build speaks. 2: paths are validated `WorkspacePath`s on the
/// wire, and lag is reported per terminal (`TerminalLagged`) and per watch (`WatchLagged`,
/// after which the watch goes on) instead of as an error. 3: a snapshot says what it did
/// not list and whether it is complete; `Attach` is answered after the replay.
pub const VERSION: u16 = 3;
