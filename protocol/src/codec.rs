//! Framing: encode a [`Frame`] to bytes, decode bytes to frames (sans-IO [`Decoder`] or the
//! async [`read_frame`]), with the length checked before any allocation.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use model::TerminalId;

use crate::message::{Message, Tag};

/// The largest frame, counting everything after the length field. Terminal output is sent
/// in chunks well below this; file contents up to the file size limit fit.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Bytes of a frame header after the length: tag (2) and id (4).
pub const HEADER_LEN: usize = 6;

/// One message with its request id (0 for unsolicited events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub id: u32,
    pub message: Message,
}

impl Frame {
    pub fn new(id: u32, message: Message) -> Self {
        Self { id, message }
    }
}

/// Why bytes did not make a frame.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The announced length is over [`MAX_FRAME`] or under the header: the stream cannot be
    /// trusted any more and must be closed.
    #[error("frame length {0} is out of bounds")]
    BadLength(usize),
    /// A well-framed message with a tag this build does not know. The frame was consumed;
    /// the connection may answer with an error and go on.
    #[error("unknown tag {tag} (request {id})")]
    UnknownTag { id: u32, tag: u16 },
    /// A well-framed message whose payload does not parse. Consumed, like `UnknownTag`.
    #[error("malformed {tag:?} payload (request {id})")]
    Malformed { id: u32, tag: Tag },
    /// The frame's payload is over what the receiver takes for its message type
    /// ([`PayloadLimits`]); refused as soon as its header arrived, before the payload was
    /// buffered. The stream is not to be trusted any more.
    #[error("a {tag} frame of {length} bytes is over this receiver's limit for it")]
    TooLarge { tag: u16, length: usize },
}

impl DecodeError {
    /// Whether the connection can go on after this error.
    pub fn is_recoverable(&self) -> bool {
        !matches!(self, Self::BadLength(_) | Self::TooLarge { .. })
    }
}

/// The largest payload, in bytes, a receiver takes for each message type (`None`: a tag it
/// does not know). A receiver that distrusts its peer (the server, of an agent) decodes
/// with one, so a peer cannot make it buffer or decode more than a message can need.
pub type PayloadLimits = fn(Option<Tag>) -> usize;

/// Appends the encoded frame to `out`. Fails only if the frame would exceed [`MAX_FRAME`].
pub fn encode(frame: &Frame, out: &mut Vec<u8>) -> Result<(), std::io::Error> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(frame.message.tag() as u16).to_be_bytes());
    out.extend_from_slice(&frame.id.to_be_bytes());
    frame
        .message
        .encode_payload(out)
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))?;
    let length = out.len() - start - 4;
    if length > MAX_FRAME {
        out.truncate(start);
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "frame over MAX_FRAME",
        ));
    }
    let length = u32::try_from(length)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too long"))?;
    out[start..start + 4].copy_from_slice(&length.to_be_bytes());
    Ok(())
}

/// Appends an [`Message::Output`] event frame for `data` without building the message:
/// the same bytes as encoding `Frame::new(0, Message::Output { terminal, data })`. `data`
/// must stay under [`MAX_FRAME`] (terminal output is sent in far smaller pieces).
pub fn encode_output(terminal: TerminalId, data: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(Tag::Output as u16).to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    crate::message::put_data(terminal, data, out);
    let length = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&length.to_be_bytes());
}

fn check_length(length: usize) -> Result<(), DecodeError> {
    if !(HEADER_LEN..=MAX_FRAME).contains(&length) {
        return Err(DecodeError::BadLength(length));
    }
    Ok(())
}

/// Parses the bytes after the length field.
fn parse(body: &[u8]) -> Result<Frame, DecodeError> {
    let tag = u16::from_be_bytes([body[0], body[1]]);
    let id = u32::from_be_bytes([body[2], body[3], body[4], body[5]]);
    let Some(known) = Tag::from_u16(tag) else {
        return Err(DecodeError::UnknownTag { id, tag });
    };
    let message = Message::decode_payload(known, &body[HEADER_LEN..])
        .map_err(|_| DecodeError::Malformed { id, tag: known })?;
    Ok(Frame { id, message })
}

/// Incremental decoder over a byte buffer (for transports that hand over chunks).
#[derive(Debug, Default)]
pub struct Decoder {
    buffer: Vec<u8>,
    /// Where the undecoded bytes start: decoded frames are dropped in one go when more
    /// bytes arrive, not one at a time.
    start: usize,
    limits: Option<PayloadLimits>,
}

impl Decoder {
    /// A decoder bounded by [`MAX_FRAME`] only.
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder that also refuses any frame over `limits` for its message type.
    pub fn with_limits(limits: PayloadLimits) -> Self {
        Self {
            limits: Some(limits),
            ..Self::default()
        }
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed. After a recoverable
    /// error the bad frame has been consumed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        let rest = &self.buffer[self.start..];
        if rest.len() < 4 {
            return Ok(None);
        }
        let length = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        check_length(length)?;
        if let Some(limits) = self.limits
            && rest.len() >= 6
        {
            let tag = u16::from_be_bytes([rest[4], rest[5]]);
            if length - HEADER_LEN > limits(Tag::from_u16(tag)) {
                return Err(DecodeError::TooLarge { tag, length });
            }
        }
        if rest.len() < 4 + length {
            return Ok(None);
        }
        let result = parse(&rest[4..4 + length]);
        self.start += 4 + length;
        result.map(Some)
    }

    /// Bytes received but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buffer.len() - self.start
    }
}

/// Why reading a frame from a stream failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one frame; `Ok(None)` on a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Option<Frame>, ReadError> {
    let mut length = [0u8; 4];
    match reader.read_exact(&mut length).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error.into()),
    }
    let length = u32::from_be_bytes(length) as usize;
    // Checked before allocating: a hostile length cannot make us reserve gigabytes.
    check_length(length)?;
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).await?;
    Ok(Some(parse(&body)?))
}

/// Writes one frame and flushes.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    frame: &Frame,
) -> std::io::Result<()> {
    let mut bytes = Vec::new();
    encode(frame, &mut bytes)?;
    writer.write_all(&bytes).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use model::{TerminalInfo, WorkspacePath};

    use crate::{ErrorCode, FileInfo};

    fn path(text: &str) -> WorkspacePath {
        WorkspacePath::parse(text).unwrap()
    }

    fn samples() -> Vec<Message> {
        vec![
            Message::Hello {
                version: crate::VERSION,
            },
            Message::Error {
                code: ErrorCode::Forbidden,
                message: "no".into(),
            },
            Message::Ok,
            Message::Ping,
            Message::Pong,
            Message::OpenTerminal { cols: 80, rows: 24 },
            Message::TerminalOpened {
                terminal: TerminalId(7),
            },
            Message::Attach {
                terminal: TerminalId(7),
            },
            Message::Input {
                terminal: TerminalId(7),
                data: b"ls\r".to_vec(),
            },
            Message::Output {
                terminal: TerminalId(7),
                data: vec![0, 255, 27, b'['],
            },
            Message::Resize {
                terminal: TerminalId(7),
                cols: 120,
                rows: 40,
            },
            Message::CloseTerminal {
                terminal: TerminalId(7),
            },
            Message::TerminalExited {
                terminal: TerminalId(7),
                status: -9,
            },
            Message::Run {
                command: "python3 main.py".into(),
                cols: 80,
                rows: 24,
            },
            Message::RunFinished {
                terminal: TerminalId(7),
                exit_code: 1,
                wall_ms: 12,
                peak_rss_kib: 9000,
            },
            Message::WriteFile {
                path: path("a/b.py"),
                data: b"x".to_vec(),
            },
            Message::ReadFile {
                path: path("a/b.py"),
            },
            Message::FileContent {
                path: path("a/b.py"),
                data: vec![],
            },
            Message::MakeDir { path: path("a") },
            Message::Move {
                from: path("a"),
                to: path("b"),
            },
            Message::Delete { path: path("b") },
            Message::Snapshot,
            Message::Watch,
            Message::ListTerminals,
            Message::TerminalList {
                terminals: vec![
                    TerminalInfo {
                        terminal: TerminalId(1),
                        command: None,
                        exited: None,
                    },
                    TerminalInfo {
                        terminal: TerminalId(2),
                        command: Some("python3 main.py".into()),
                        exited: Some(1),
                    },
                ],
            },
            Message::SnapshotResult {
                files: vec![FileInfo {
                    path: path("main.py"),
                    is_dir: false,
                    size: 3,
                    hash: "ab".into(),
                }],
                unlisted: vec![path(".venv")],
                complete: true,
            },
            Message::FileChanged {
                path: path("made.txt"),
                is_dir: false,
                data: Some(b"hi\n".to_vec()),
            },
            Message::FileChanged {
                path: path("big.bin"),
                is_dir: false,
                data: None,
            },
            Message::FileRemoved { path: path("gone") },
            Message::TerminalLagged {
                terminal: TerminalId(3),
            },
            Message::WatchLagged { missed: 1200 },
        ]
    }

    #[test]
    fn every_message_round_trips_through_the_decoder() {
        let mut decoder = Decoder::new();
        let mut bytes = Vec::new();
        for (id, message) in samples().into_iter().enumerate() {
            encode(&Frame::new(id as u32, message), &mut bytes).unwrap();
        }
        // Fed one byte at a time, as a slow transport would.
        let mut decoded = Vec::new();
        for byte in bytes {
            decoder.push(&[byte]);
            while let Some(frame) = decoder.next_frame().unwrap() {
                decoded.push(frame);
            }
        }
        let expected: Vec<_> = samples()
            .into_iter()
            .enumerate()
            .map(|(id, m)| Frame::new(id as u32, m))
            .collect();
        assert_eq!(decoded, expected);
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn tags_are_stable() {
        // Published numbers; changing one breaks every deployed agent.
        assert_eq!(Tag::Hello as u16, 1);
        assert_eq!(Tag::Input as u16, 13);
        assert_eq!(Tag::Output as u16, 14);
        assert_eq!(Tag::WriteFile as u16, 30);
        assert_eq!(Tag::FileRemoved as u16, 39);
        assert_eq!(Tag::TerminalLagged as u16, 22);
        assert_eq!(Tag::WatchLagged as u16, 41);
        for message in samples() {
            assert_eq!(Tag::from_u16(message.tag() as u16), Some(message.tag()));
        }
    }

    #[test]
    fn an_oversized_length_is_refused_before_allocating() {
        let mut decoder = Decoder::new();
        decoder.push(&u32::MAX.to_be_bytes());
        assert_eq!(
            decoder.next_frame(),
            Err(DecodeError::BadLength(u32::MAX as usize))
        );
        let mut short = Decoder::new();
        short.push(&[0, 0, 0, 2, 0, 1]);
        assert!(matches!(short.next_frame(), Err(DecodeError::BadLength(2))));
    }

    #[test]
    fn a_receiver_with_limits_refuses_an_oversized_frame_from_its_header() {
        fn limits(tag: Option<Tag>) -> usize {
            match tag {
                Some(Tag::Pong) => 0,
                _ => 16,
            }
        }
        let mut bytes = Vec::new();
        encode(
            &Frame::new(
                2,
                Message::Output {
                    terminal: TerminalId(1),
                    data: vec![b'x'; 1000],
                },
            ),
            &mut bytes,
        )
        .unwrap();
        let mut decoder = Decoder::with_limits(limits);
        // The header alone is enough to refuse it.
        decoder.push(&bytes[..10]);
        let error = decoder.next_frame().unwrap_err();
        assert!(
            matches!(error, DecodeError::TooLarge { tag: 14, .. }),
            "{error}"
        );
        assert!(!error.is_recoverable());
        // Within the limit: decoded as usual.
        let mut small = Vec::new();
        encode(&Frame::new(3, Message::Pong), &mut small).unwrap();
        let mut decoder = Decoder::with_limits(limits);
        decoder.push(&small);
        assert_eq!(
            decoder.next_frame().unwrap(),
            Some(Frame::new(3, Message::Pong))
        );
    }

    #[test]
    fn a_path_that_would_leave_the_workspace_does_not_decode() {
        // A WriteFile whose path is "../x": postcard's string, as a peer could send it.
        let payload = postcard::to_allocvec(&("../x", vec![1u8])).unwrap();
        let mut bytes = ((HEADER_LEN + payload.len()) as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&(Tag::WriteFile as u16).to_be_bytes());
        bytes.extend_from_slice(&5u32.to_be_bytes());
        bytes.extend_from_slice(&payload);
        let mut decoder = Decoder::new();
        decoder.push(&bytes);
        assert_eq!(
            decoder.next_frame(),
            Err(DecodeError::Malformed {
                id: 5,
                tag: Tag::WriteFile
            })
        );
    }

    #[test]
    fn an_unknown_tag_is_consumed_and_the_stream_goes_on() {
        let mut bytes = vec![0, 0, 0, 6, 0xff, 0xfe, 0, 0, 0, 9];
        encode(&Frame::new(10, Message::Ping), &mut bytes).unwrap();
        let mut decoder = Decoder::new();
        decoder.push(&bytes);
        let error = decoder.next_frame().unwrap_err();
        assert_eq!(error, DecodeError::UnknownTag { id: 9, tag: 0xfffe });
        assert!(error.is_recoverable());
        assert_eq!(
            decoder.next_frame().unwrap(),
            Some(Frame::new(10, Message::Ping))
        );
    }

    #[test]
    fn trailing_payload_bytes_are_malformed() {
        let mut bytes = Vec::new();
        encode(&Frame::new(1, Message::Ping), &mut bytes).unwrap();
        bytes[3] += 1;
        bytes.push(0);
        let mut decoder = Decoder::new();
        decoder.push(&bytes);
        assert_eq!(
            decoder.next_frame(),
            Err(DecodeError::Malformed {
                id: 1,
                tag: Tag::Ping
            })
        );
    }

    #[tokio::test]
    async fn frames_cross_an_async_stream() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            for message in samples() {
                write_frame(&mut a, &Frame::new(3, message)).await.unwrap();
            }
        });
        for message in samples() {
            assert_eq!(
                read_frame(&mut b).await.unwrap(),
                Some(Frame::new(3, message))
            );
        }
        writer.await.unwrap();
        assert!(
            read_frame(&mut b).await.unwrap().is_none(),
            "clean end of stream"
        );
    }

    #[tokio::test]
    async fn a_hostile_length_on_a_stream_is_an_error_not_an_allocation() {
        let mut bytes: &[u8] = &[0x7f, 0xff, 0xff, 0xff, 0, 1];
        assert!(matches!(
            read_frame(&mut bytes).await,
            Err(ReadError::Decode(DecodeError::BadLength(_)))
        ));
    }

    proptest! {
        #[test]
        fn the_decoder_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut decoder = Decoder::new();
            decoder.push(&bytes);
            for _ in 0..64 {
                match decoder.next_frame() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(error) if error.is_recoverable() => {}
                    Err(_) => break,
                }
            }
        }

        #[test]
        fn terminal_data_round_trips(terminal in any::<u32>(), data in proptest::collection::vec(any::<u8>(), 0..4096), id in any::<u32>()) {
            let terminal = TerminalId(terminal);
            let frame = Frame::new(id, Message::Output { terminal, data });
            let mut bytes = Vec::new();
            encode(&frame, &mut bytes).unwrap();
            let mut decoder = Decoder::new();
            decoder.push(&bytes);
            prop_assert_eq!(decoder.next_frame().unwrap(), Some(frame));
        }

        #[test]
        fn terminal_data_is_encoded_as_postcard_would(terminal in any::<u32>(), data in proptest::collection::vec(any::<u8>(), 0..20_000), id in any::<u32>()) {
            let terminal = TerminalId(terminal);
            let reference = |tag: Tag, id: u32, data: &[u8]| {
                let payload = postcard::to_allocvec(&(terminal, data.to_vec())).unwrap();
                let mut bytes = ((HEADER_LEN + payload.len()) as u32).to_be_bytes().to_vec();
                bytes.extend_from_slice(&(tag as u16).to_be_bytes());
                bytes.extend_from_slice(&id.to_be_bytes());
                bytes.extend_from_slice(&payload);
                bytes
            };
            let mut fast = vec![7u8];
            encode_output(terminal, &data, &mut fast);
            prop_assert_eq!(&fast[1..], &reference(Tag::Output, 0, &data)[..]);
            let mut input = Vec::new();
            encode(&Frame::new(id, Message::Input { terminal, data: data.clone() }), &mut input).unwrap();
            prop_assert_eq!(input, reference(Tag::Input, id, &data));
        }

        #[test]
        fn any_well_framed_body_decodes_or_errors_recoverably(tag in 0u16..64, id in any::<u32>(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut bytes = ((HEADER_LEN + payload.len()) as u32).to_be_bytes().to_vec();
            bytes.extend_from_slice(&tag.to_be_bytes());
            bytes.extend_from_slice(&id.to_be_bytes());
            bytes.extend_from_slice(&payload);
            let mut decoder = Decoder::new();
            decoder.push(&bytes);
            match decoder.next_frame() {
                Ok(frame) => prop_assert!(frame.is_some()),
                Err(error) => prop_assert!(error.is_recoverable()),
            }
            prop_assert_eq!(decoder.buffered(), 0);
        }
    }
}
