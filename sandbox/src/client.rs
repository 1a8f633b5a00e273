//! The server's side of the agent protocol: requests with ids, and the events (terminal
//! output, exits, file changes) that arrive in between, on a bounded channel.

use protocol::{Frame, Message, VERSION, read_frame, write_frame};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt},
    net::UnixStream,
    sync::mpsc,
};

use crate::{Error, Result};

/// Events buffered for the consumer before the reader waits for it.
pub const EVENT_QUEUE: usize = 256;

/// A connection to one agent.
pub struct AgentClient {
    sender: AgentSender,
    frames: mpsc::Receiver<Frame>,
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
        let (tx, frames) = mpsc::channel(EVENT_QUEUE);
        tokio::spawn(async move {
            let mut reader = reader;
            while let Ok(Some(frame)) = read_frame(&mut reader).await {
                if tx.send(frame).await.is_err() {
                    break;
                }
            }
        });
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
    pub fn into_split(self) -> (AgentSender, mpsc::Receiver<Frame>) {
        (self.sender, self.frames)
    }
}

/// The sending half of an [`AgentClient`].
pub struct AgentSender {
    writer: Box<dyn AsyncWrite + Send + Unpin>,
    next_id: u32,
}

impl AgentSender {
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
