//! The server's side of the agent protocol: requests with ids, and the events (terminal
//! output, exits, file changes) that arrive in between. Frames are decoded straight from
//! the socket by whoever reads them (no reader task, no queue in between): the reader's
//! pace is the connection's backpressure.

use protocol::{Decoder, Frame, Message, VERSION, write_frame};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::UnixStream,
};

use crate::{Error, Result};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// A connection to one agent.
pub struct AgentClient {
    sender: AgentSender,
    frames: AgentReceiver,
}

/// The receiving half of an [`AgentClient`].
pub struct AgentReceiver {
    reader: Box<dyn AsyncRead + Send + Unpin>,
    decoder: Decoder,
    chunk: Box<[u8]>,
}

impl AgentReceiver {
    /// The next frame; `None` once the agent has gone or broke the protocol. Cancel-safe:
    /// a frame is never lost when this is dropped in a `select!`.
    pub async fn recv(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.try_recv_checked()? {
                return Some(frame);
            }
            match self.reader.read(&mut self.chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.decoder.push(&self.chunk[..n]),
            }
        }
    }

    /// A frame already received and buffered, without waiting.
    pub fn try_recv(&mut self) -> Option<Frame> {
        self.try_recv_checked().flatten()
    }

    /// `Some(None)`: nothing buffered; `None`: the stream is unusable.
    fn try_recv_checked(&mut self) -> Option<Option<Frame>> {
        loop {
            match self.decoder.next_frame() {
                Ok(frame) => return Some(frame),
                // A frame we cannot read (a newer agent's message): skip it.
                Err(error) if error.is_recoverable() => continue,
                Err(_) => return None,
            }
        }
    }
}

impl AgentClient {
    /// Connects over a Unix socket and performs the handshake.
    pub async fn connect_unix(path: &std::path::Path) -> Result<Self> {
        let stream = UnixStream::connect(path).await?;
        let (reader, writer) = stream.into_split();
        Self::handshake(reader, writer).await
    }

    /// Performs the handshake over any byte stream (a socket, or an exec'd relay).
    pub async fn handshake<R, W>(reader: R, writer: W) -> Result<Self>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let frames = AgentReceiver {
            reader: Box::new(reader),
            decoder: Decoder::new(),
            chunk: vec![0u8; READ_CHUNK].into_boxed_slice(),
        };
        let mut client = Self {
            sender: AgentSender {
                writer: Box::new(writer),
                next_id: 1,
            },
            frames,
        };
        match client.request(Message::Hello { version: VERSION }).await? {
            Message::Hello { version } if version == VERSION => Ok(client),
            other => Err(Error::Protocol(format!("handshake answered {other:?}"))),
        }
    }

    /// Sends a message; returns its request id.
    pub async fn send(&mut self, message: Message) -> Result<u32> {
        self.sender.send(message).await
    }

    /// The next frame from the agent (a reply or an event); `None` once it has gone.
    pub async fn next(&mut self) -> Option<Frame> {
        self.frames.recv().await
    }

    /// Sends a request and waits for its reply. Events that arrive meanwhile are dropped:
    /// use [`AgentClient::send`] and [`AgentClient::next`] to keep them.
    pub async fn request(&mut self, message: Message) -> Result<Message> {
        let id = self.send(message).await?;
        while let Some(frame) = self.next().await {
            if frame.id == id {
                return Ok(frame.message);
            }
        }
        Err(Error::Protocol("the agent closed the connection".into()))
    }

    pub async fn close(self) {
        self.sender.close().await;
    }

    /// Splits the connection so that one task can send while another reads: a relay
    /// between the agent and a browser, say.
    pub fn into_split(self) -> (AgentSender, AgentReceiver) {
        (self.sender, self.frames)
    }
}

/// The sending half of an [`AgentClient`].
pub struct AgentSender {
    writer: Box<dyn AsyncWrite + Send + Unpin>,
    next_id: u32,
}

impl AgentSender {
    /// The request id the next [`AgentSender::send`] will use, to note what its answer is
    /// for before the answer can arrive.
    pub fn next_id(&self) -> u32 {
        self.next_id
    }

    /// Sends a message; returns its request id.
    pub async fn send(&mut self, message: Message) -> Result<u32> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        write_frame(&mut self.writer, &Frame::new(id, message)).await?;
        Ok(id)
    }

    pub async fn close(mut self) {
        let _ = self.writer.shutdown().await;
    }
}
