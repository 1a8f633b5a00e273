//! Frames to and from one agent: the byte stream a runtime opened ([`Transport`]), the
//! handshake, a reader that decodes with the server's limits and a writer that numbers
//! requests. Frames are decoded straight from the stream by whoever reads them (no reader
//! queue in between): the reader's pace is the connection's backpressure.

use std::{path::Path, time::Duration};

use protocol::{Decoder, ErrorCode, Frame, Message, VERSION, write_frame};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::UnixStream,
};

use crate::{Error, Result};
use protocol::from_agent;

/// Bytes read from the stream at a time.
const READ_CHUNK: usize = 64 * 1024;
/// How long the agent may take to answer the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a frame may take to leave (the agent has stopped reading if longer).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// A byte stream to one agent, before the handshake: a Unix socket locally, an exec
/// session's stdio on Kubernetes.
pub struct Transport {
    reader: Reader,
    writer: Writer,
}

impl Transport {
    pub fn new(
        reader: impl AsyncRead + Send + Unpin + 'static,
        writer: impl AsyncWrite + Send + Unpin + 'static,
    ) -> Self {
        Self {
            reader: Box::new(reader),
            writer: Box::new(writer),
        }
    }

    /// Connects to an agent's socket. The path must be one the sandbox cannot write.
    pub async fn unix(path: &Path) -> Result<Self> {
        let (reader, writer) = UnixStream::connect(path).await?.into_split();
        Ok(Self::new(reader, writer))
    }

    /// Exchanges `Hello`s (within [`HANDSHAKE_TIMEOUT`]) and splits the stream.
    pub(crate) async fn handshake(self) -> Result<(FrameReader, FrameWriter)> {
        let mut reader = FrameReader {
            reader: self.reader,
            decoder: Decoder::with_limits(from_agent::limits),
            chunk: vec![0u8; READ_CHUNK].into_boxed_slice(),
        };
        let mut writer = FrameWriter {
            writer: self.writer,
            next_id: 1,
        };
        let exchange = async {
            let id = writer.send(Message::Hello { version: VERSION }).await?;
            loop {
                match reader.recv().await? {
                    Some(Frame {
                        id: answered,
                        message: Message::Hello { version },
                    }) if answered == id && version == VERSION => return Ok(()),
                    Some(Frame { id: answered, .. }) if answered != id => continue,
                    Some(other) => {
                        return Err(Error::Protocol(format!(
                            "the handshake was answered with {:?}",
                            other.message.tag()
                        )));
                    }
                    None => return Err(Error::Closed),
                }
            }
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange).await {
            Ok(Ok(())) => Ok((reader, writer)),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(Error::Timeout("the handshake")),
        }
    }

    /// Whether an agent answers the handshake on this stream.
    pub async fn probe(self) -> Result<()> {
        let (_, writer) = self.handshake().await?;
        writer.close().await;
        Ok(())
    }
}

/// The receiving half of a connection.
pub(crate) struct FrameReader {
    reader: Reader,
    decoder: Decoder,
    chunk: Box<[u8]>,
}

impl FrameReader {
    /// The next frame, checked against the limits for its kind; `Ok(None)` once the agent
    /// has closed the stream. A frame that decodes but fails a check, or whose payload does
    /// not parse, comes back as an `Error` answer to its request (or is skipped if it was an
    /// event); one over its size limit ends the connection. Cancel-safe: a frame is never
    /// lost when this is dropped in a `select!`.
    pub(crate) async fn recv(&mut self) -> Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.try_recv()? {
                return Ok(Some(frame));
            }
            match self.reader.read(&mut self.chunk).await? {
                0 => return Ok(None),
                n => self.decoder.push(&self.chunk[..n]),
            }
        }
    }

    /// A frame already received and buffered, without waiting.
    pub(crate) fn try_recv(&mut self) -> Result<Option<Frame>> {
        loop {
            match self.decoder.next_frame() {
                Ok(Some(frame)) => match from_agent::check(&frame.message) {
                    Ok(()) => return Ok(Some(frame)),
                    Err(why) if frame.id != 0 => return Ok(Some(refused(frame.id, why))),
                    Err(why) => {
                        tracing::warn!(why, "dropped an event the agent sent");
                        continue;
                    }
                },
                Ok(None) => return Ok(None),
                Err(protocol::DecodeError::Malformed { id, tag }) if id != 0 => {
                    return Ok(Some(refused(id, format!("a malformed {tag:?}"))));
                }
                Err(error) if error.is_recoverable() => continue,
                Err(error) => return Err(Error::Protocol(error.to_string())),
            }
        }
    }
}

/// What a caller waiting for request `id` gets when the agent's answer was refused.
fn refused(id: u32, why: String) -> Frame {
    tracing::warn!(why, "refused an answer from the agent");
    Frame::new(
        id,
        Message::Error {
            code: ErrorCode::MalformedFrame,
            message: "the sandbox's agent answered with something this server does not accept"
                .to_owned(),
        },
    )
}

/// The sending half of a connection.
pub(crate) struct FrameWriter {
    writer: Writer,
    next_id: u32,
}

impl FrameWriter {
    /// The request id the next [`FrameWriter::send`] will use, to note what its answer is
    /// for before the answer can arrive.
    pub(crate) fn next_id(&self) -> u32 {
        self.next_id
    }

    /// Sends a message within [`SEND_TIMEOUT`]; returns its request id.
    pub(crate) async fn send(&mut self, message: Message) -> Result<u32> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        match tokio::time::timeout(
            SEND_TIMEOUT,
            write_frame(&mut self.writer, &Frame::new(id, message)),
        )
        .await
        {
            Ok(result) => result.map(|()| id).map_err(Error::from),
            Err(_) => Err(Error::Timeout("sending to the agent")),
        }
    }

    pub(crate) async fn close(mut self) {
        let _ = tokio::time::timeout(SEND_TIMEOUT, self.writer.shutdown()).await;
    }
}
