//! One client's outgoing bytes: encoded frames waiting for the connection's writer task.
//!
//! Terminal output goes in straight from the PTY pump that read it — no task or queue in
//! between — and joins the output of the same terminal still waiting, so a flood leaves in
//! frames of up to [`COALESCE`] bytes while a keystroke's echo leaves at once.
//!
//! Flow control, as a terminal has it: once a client is [`HIGH_WATER`] bytes behind, the
//! pumps of its terminals stop reading their PTYs until it catches up ([`Outbox::drained`]),
//! so the program writing blocks and nothing is lost. A client that makes no progress for
//! [`STALL`] is detached (it attaches again from the scrollback), so one stuck client does
//! not hold a shell forever. The backlog is bounded in bytes: output that would take it
//! over [`LIMIT`] is refused (then detached likewise), and replies wait for room, which
//! stops the connection reading requests until the client reads.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use model::TerminalId;
use protocol::{Frame, encode, encode_output};
use tokio::{
    io::{AsyncWrite, AsyncWriteExt},
    sync::Notify,
};

/// Bytes a client may fall behind by: a hard cap the pumps' flow control keeps well away
/// from (several terminals and replays share one outbox).
pub const LIMIT: usize = 8 * 1024 * 1024;
/// Backlog at which the pumps of a client's terminals stop reading until it catches up.
pub const HIGH_WATER: usize = 1024 * 1024;
/// How long a client above [`HIGH_WATER`] may go without taking any bytes before the
/// terminals waiting for it detach it.
pub const STALL: std::time::Duration = std::time::Duration::from_secs(10);
/// The writer reports progress (wakes whoever waits for room) after each piece this big.
const PROGRESS_PIECE: usize = 256 * 1024;
/// Output of one terminal already waiting is joined into frames of up to this many bytes.
pub const COALESCE: usize = 64 * 1024;
/// A writer keeps at most this much buffer capacity between bursts.
const KEEP_CAPACITY: usize = 256 * 1024;

/// Why output was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The client is more than [`LIMIT`] bytes behind.
    Behind,
    /// The connection has ended.
    Closed,
}

#[derive(Default)]
struct State {
    /// Encoded frames, oldest first.
    encoded: Vec<u8>,
    /// Output of one terminal after `encoded`, not yet framed, for more to join.
    tail: Option<(TerminalId, Vec<u8>)>,
    closed: bool,
}

impl State {
    fn backlog(&self) -> usize {
        self.encoded.len() + self.tail.as_ref().map_or(0, |(_, data)| data.len())
    }

    fn seal(&mut self) {
        if let Some((terminal, data)) = self.tail.take() {
            encode_output(terminal, &data, &mut self.encoded);
        }
    }

    fn push(&mut self, frame: &Frame) {
        self.seal();
        // Only a frame over MAX_FRAME fails, and the agent never makes one.
        if let Err(error) = encode(frame, &mut self.encoded) {
            tracing::error!(%error, "dropping an outgoing frame");
        }
    }
}

/// Shared by a connection's request loop, the pumps of the terminals it is attached to,
/// its file watchers, and its writer task.
#[derive(Default)]
pub struct Outbox {
    state: Mutex<State>,
    /// Wakes the writer.
    ready: Notify,
    /// Wakes senders waiting for room, and tells them the connection closed.
    room: Notify,
}

impl Outbox {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends a terminal's output without waiting; the backlog it makes.
    pub fn output(&self, terminal: TerminalId, data: &[u8]) -> Result<usize, Refused> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.backlog() + data.len() > LIMIT {
            return Err(Refused::Behind);
        }
        match &mut state.tail {
            Some((waiting, tail))
                if *waiting == terminal && tail.len() + data.len() <= COALESCE =>
            {
                tail.extend_from_slice(data);
            }
            _ => {
                state.seal();
                let mut tail = Vec::with_capacity(data.len().max(4096));
                tail.extend_from_slice(data);
                state.tail = Some((terminal, tail));
            }
        }
        let backlog = state.backlog();
        drop(state);
        self.ready.notify_one();
        Ok(backlog)
    }

    /// Appends a frame whatever the backlog: the few that must not be lost or wait — a
    /// terminal's replay (bounded by the scrollback), its exit, a detach notice.
    pub fn force(&self, frame: &Frame) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        state.push(frame);
        drop(state);
        self.ready.notify_one();
    }

    /// Appends a frame once the backlog is under [`LIMIT`]; `Err` if the connection ended.
    pub async fn send(&self, frame: &Frame) -> Result<(), Refused> {
        loop {
            let room = self.room.notified();
            let mut room = std::pin::pin!(room);
            room.as_mut().enable();
            {
                let mut state = self.lock();
                if state.closed {
                    return Err(Refused::Closed);
                }
                if state.backlog() < LIMIT {
                    state.push(frame);
                    drop(state);
                    self.ready.notify_one();
                    return Ok(());
                }
            }
            room.await;
        }
    }

    /// Waits until the backlog is under [`HIGH_WATER`]: `Behind` if the client took no bytes
    /// for [`STALL`] meanwhile, `Closed` if the connection ended.
    pub async fn drained(&self) -> Result<(), Refused> {
        self.drained_within(STALL).await
    }

    async fn drained_within(&self, stall: std::time::Duration) -> Result<(), Refused> {
        loop {
            let room = self.room.notified();
            let mut room = std::pin::pin!(room);
            room.as_mut().enable();
            {
                let state = self.lock();
                if state.closed {
                    return Err(Refused::Closed);
                }
                if state.backlog() < HIGH_WATER {
                    return Ok(());
                }
            }
            if tokio::time::timeout(stall, room).await.is_err() {
                return Err(Refused::Behind);
            }
        }
    }

    /// Ends the connection's output once what is waiting has been written.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
        self.room.notify_waiters();
    }

    /// Bytes waiting to be written.
    pub fn backlog(&self) -> usize {
        self.lock().backlog()
    }

    /// The writer task: writes whatever is waiting, in one write per batch, until the
    /// outbox is closed and empty or the client stops accepting bytes.
    pub async fn write_to<W: AsyncWrite + Unpin>(self: Arc<Self>, mut writer: W) {
        let mut batch = Vec::new();
        loop {
            let finished = {
                let mut state = self.lock();
                state.seal();
                std::mem::swap(&mut state.encoded, &mut batch);
                batch.is_empty() && state.closed
            };
            if finished {
                break;
            }
            if batch.is_empty() {
                self.ready.notified().await;
                continue;
            }
            let mut written = true;
            for piece in batch.chunks(PROGRESS_PIECE) {
                written = writer.write_all(piece).await.is_ok();
                if !written {
                    break;
                }
                self.room.notify_waiters();
            }
            written = written && writer.flush().await.is_ok();
            batch.clear();
            batch.shrink_to(KEEP_CAPACITY);
            self.room.notify_waiters();
            if !written {
                let mut state = self.lock();
                state.encoded = Vec::new();
                state.tail = None;
                drop(state);
                self.close();
                break;
            }
        }
        let _ = writer.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use protocol::{Decoder, Message};

    use super::*;

    fn frames(bytes: &[u8]) -> Vec<Frame> {
        let mut decoder = Decoder::new();
        decoder.push(bytes);
        std::iter::from_fn(|| decoder.next_frame().unwrap()).collect()
    }

    #[tokio::test]
    async fn output_of_one_terminal_is_joined_and_order_is_kept() {
        let outbox = Outbox::new();
        outbox.output(TerminalId(1), b"ab").unwrap();
        outbox.output(TerminalId(1), b"cd").unwrap();
        outbox.output(TerminalId(2), b"x").unwrap();
        outbox.send(&Frame::new(5, Message::Ok)).await.unwrap();
        outbox.output(TerminalId(1), b"ef").unwrap();
        outbox.close();
        let (client, server) = tokio::io::duplex(1 << 20);
        outbox.clone().write_to(server).await;
        let mut bytes = Vec::new();
        let mut client = client;
        tokio::io::AsyncReadExt::read_to_end(&mut client, &mut bytes)
            .await
            .unwrap();
        let output = |terminal, data: &[u8]| {
            Frame::new(
                0,
                Message::Output {
                    terminal,
                    data: data.to_vec(),
                },
            )
        };
        assert_eq!(
            frames(&bytes),
            vec![
                output(TerminalId(1), b"abcd"),
                output(TerminalId(2), b"x"),
                Frame::new(5, Message::Ok),
                output(TerminalId(1), b"ef"),
            ]
        );
    }

    #[tokio::test]
    async fn joined_output_stays_under_the_frame_size() {
        let outbox = Outbox::new();
        let chunk = vec![b'y'; 4096];
        for _ in 0..40 {
            outbox.output(TerminalId(3), &chunk).unwrap();
        }
        outbox.close();
        let (mut client, server) = tokio::io::duplex(1 << 20);
        outbox.clone().write_to(server).await;
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut client, &mut bytes)
            .await
            .unwrap();
        let sizes: Vec<usize> = frames(&bytes)
            .into_iter()
            .map(|frame| match frame.message {
                Message::Output { data, .. } => data.len(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sizes.iter().sum::<usize>(), 40 * 4096);
        assert!(sizes.iter().all(|&size| size <= COALESCE), "{sizes:?}");
        assert_eq!(sizes.len(), 3, "{sizes:?}");
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_is_refused_output_and_replies_wait() {
        let outbox = Outbox::new();
        let chunk = vec![b'z'; 16 * 1024];
        let mut taken = 0;
        let refused = loop {
            match outbox.output(TerminalId(1), &chunk) {
                Ok(_) => taken += chunk.len(),
                Err(refused) => break refused,
            }
        };
        assert_eq!(refused, Refused::Behind);
        // Within one chunk of the limit (frame headers count too).
        assert!(taken <= LIMIT && taken + 2 * chunk.len() > LIMIT, "{taken}");
        assert!(outbox.backlog() <= LIMIT);
        // A replay may take it past the limit; a reply then waits for room rather than
        // growing the backlog…
        outbox.force(&Frame::new(
            0,
            Message::Output {
                terminal: TerminalId(2),
                data: chunk.clone(),
            },
        ));
        assert!(outbox.backlog() > LIMIT);
        let waiting = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.send(&Frame::new(9, Message::Pong)).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        // …and is released, refused, when the connection ends.
        outbox.close();
        assert_eq!(waiting.await.unwrap(), Err(Refused::Closed));
        assert_eq!(outbox.output(TerminalId(1), b"late"), Err(Refused::Closed));
    }

    #[tokio::test]
    async fn a_client_behind_is_waited_for_while_it_takes_bytes_and_refused_once_it_stops() {
        let outbox = Outbox::new();
        let chunk = vec![b'f'; 64 * 1024];
        while outbox.backlog() < HIGH_WATER + 512 * 1024 {
            outbox.output(TerminalId(1), &chunk).unwrap();
        }
        let stall = std::time::Duration::from_millis(300);
        // Nobody writes: refused after the stall.
        assert_eq!(outbox.drained_within(stall).await, Err(Refused::Behind));
        // A slow reader (~3 MB/s: the first batch takes longer than the stall): the writer
        // takes the backlog at once, then each piece it gets out is progress, so the wait
        // ends drained however long it takes.
        let (mut client, server) = tokio::io::duplex(16 * 1024);
        let writer = tokio::spawn(outbox.clone().write_to(server));
        let reader = tokio::spawn(async move {
            let mut buffer = vec![0u8; 16 * 1024];
            let mut total = 0;
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                match tokio::io::AsyncReadExt::read(&mut client, &mut buffer).await {
                    Ok(0) | Err(_) => return total,
                    Ok(n) => total += n,
                }
            }
        });
        for _ in 0..40 {
            outbox.output(TerminalId(1), &chunk).unwrap();
        }
        assert_eq!(outbox.drained_within(stall).await, Ok(()));
        assert!(outbox.backlog() < HIGH_WATER);
        outbox.close();
        assert_eq!(outbox.drained_within(stall).await, Err(Refused::Closed));
        writer.await.unwrap();
        assert!(reader.await.unwrap() > HIGH_WATER + 512 * 1024 + 40 * chunk.len());
    }

    #[tokio::test]
    async fn a_writer_whose_client_went_away_closes_the_outbox() {
        let outbox = Outbox::new();
        let (client, server) = tokio::io::duplex(64);
        drop(client);
        outbox.output(TerminalId(1), b"lost").unwrap();
        outbox.clone().write_to(server).await;
        assert_eq!(outbox.output(TerminalId(1), b"more"), Err(Refused::Closed));
        assert_eq!(outbox.backlog(), 0);
    }
}
