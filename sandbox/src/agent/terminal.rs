//! Terminal sessions: one connection per IDE tab, so that each browser's flow control
//! reaches the agent on its own (a slow tab pauses only what it is attached to, and the
//! agent detaches it, not others, when it stalls). The sending half takes the browser's
//! requests; the receiving half turns what the agent says into [`TerminalEvent`]s, output
//! of one terminal already waiting joined into one event.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Instant,
};

use model::{TerminalId, TerminalInfo, ws::MAX_COMMAND};
use protocol::{Frame, Message};

use super::{
    Failure, MAX_PENDING, REQUEST_TIMEOUT,
    frames::{FrameReader, FrameWriter, Transport},
};
use crate::{Error, Result};

/// Output for one terminal already waiting is joined into events of up to this size.
const COALESCE: usize = 64 * 1024;

/// What an answer from the agent will be for.
#[derive(Debug, Clone)]
enum Purpose {
    List,
    Open {
        command: Option<String>,
    },
    /// An attach: its answer follows the replay.
    Attach(TerminalId),
    About(TerminalId),
}

type Pending = Arc<Mutex<HashMap<u32, (Purpose, Instant)>>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What happened on a session, for the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminalEvent {
    Output {
        terminal: TerminalId,
        data: Vec<u8>,
    },
    /// The sandbox's terminals (the answer to [`TerminalSender::list`]).
    Terminals(Vec<TerminalInfo>),
    /// The scrollback replayed after an attach has all been sent: what follows is live.
    /// A terminal emulator must not answer queries in the replay (their program is long
    /// gone, and the answer would be typed into the shell).
    Attached {
        terminal: TerminalId,
    },
    /// A shell or a run was started; `command` is the run's.
    Opened {
        terminal: TerminalId,
        command: Option<String>,
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
    /// This session fell too far behind `terminal`'s output and was detached from it
    /// (only); attach again to catch up from the scrollback.
    Lagged {
        terminal: TerminalId,
    },
    /// A message of the workspace's language server for this session.
    Lsp(Vec<u8>),
    /// A figure a program showed (a PNG); `id` grows with each figure of the sandbox.
    Plot {
        id: u64,
        data: Vec<u8>,
    },
    /// A request failed; `terminal` is the one it was about, if any.
    Failed {
        terminal: Option<TerminalId>,
        failure: Failure,
        message: String,
    },
}

/// A terminal session with an agent.
pub struct TerminalSession {
    pub sender: TerminalSender,
    pub events: TerminalEvents,
}

impl TerminalSession {
    /// Performs the handshake over `transport`.
    pub async fn open(transport: Transport) -> Result<Self> {
        let (reader, writer) = transport.handshake().await?;
        let pending = Pending::default();
        Ok(Self {
            sender: TerminalSender {
                writer,
                pending: pending.clone(),
            },
            events: TerminalEvents {
                reader,
                pending,
                held: None,
            },
        })
    }
}

/// The sending half of a session.
pub struct TerminalSender {
    writer: FrameWriter,
    pending: Pending,
}

impl TerminalSender {
    /// Sends a request whose answer is for `purpose` (`None`: no answer is expected unless
    /// it fails).
    async fn request(&mut self, message: Message, purpose: Option<Purpose>) -> Result<()> {
        if let Some(purpose) = purpose {
            let mut pending = lock(&self.pending);
            if pending.len() >= MAX_PENDING {
                return Err(Error::Busy);
            }
            // Noted before it is sent: the answer can reach the other half first.
            pending.insert(self.writer.next_id(), (purpose, Instant::now()));
        }
        let id = self.writer.next_id();
        let sent = self.writer.send(message).await;
        if sent.is_err() {
            lock(&self.pending).remove(&id);
        }
        sent.map(drop)
    }

    /// Asks for the sandbox's terminals: answered by [`TerminalEvent::Terminals`].
    pub async fn list(&mut self) -> Result<()> {
        self.request(Message::ListTerminals, Some(Purpose::List))
            .await
    }

    /// Starts a shell: answered by [`TerminalEvent::Opened`].
    pub async fn open(&mut self, cols: u16, rows: u16) -> Result<()> {
        self.request(
            Message::OpenTerminal { cols, rows },
            Some(Purpose::Open { command: None }),
        )
        .await
    }

    /// Runs a command in a new terminal: answered by [`TerminalEvent::Opened`], later
    /// [`TerminalEvent::RunFinished`].
    pub async fn run(&mut self, command: &str, cols: u16, rows: u16) -> Result<()> {
        if command.len() > MAX_COMMAND {
            return Err(Error::Protocol(format!(
                "a command longer than {MAX_COMMAND} bytes"
            )));
        }
        self.request(
            Message::Run {
                command: command.to_owned(),
                cols,
                rows,
            },
            Some(Purpose::Open {
                command: Some(command.to_owned()),
            }),
        )
        .await
    }

    /// Receives `terminal`'s scrollback, then [`TerminalEvent::Attached`], then its live
    /// output.
    pub async fn attach(&mut self, terminal: TerminalId) -> Result<()> {
        self.request(
            Message::Attach { terminal },
            Some(Purpose::Attach(terminal)),
        )
        .await
    }

    /// Types into `terminal` (answered only if it fails).
    pub async fn input(&mut self, terminal: TerminalId, data: &[u8]) -> Result<()> {
        self.request(
            Message::Input {
                terminal,
                data: data.to_vec(),
            },
            None,
        )
        .await
    }

    pub async fn resize(&mut self, terminal: TerminalId, cols: u16, rows: u16) -> Result<()> {
        self.request(
            Message::Resize {
                terminal,
                cols,
                rows,
            },
            Some(Purpose::About(terminal)),
        )
        .await
    }

    /// Passes one message to the workspace's language server (its messages back come as
    /// [`TerminalEvent::Lsp`]).
    pub async fn lsp(&mut self, data: &[u8]) -> Result<()> {
        self.request(
            Message::LspSend {
                data: data.to_vec(),
            },
            None,
        )
        .await
    }

    /// Subscribes to the sandbox's figures (`plt.show()`): the recent ones, then each new
    /// one, come as [`TerminalEvent::Plot`].
    pub async fn watch_plots(&mut self) -> Result<()> {
        self.request(Message::WatchPlots, None).await
    }

    /// Kills the terminal's shell and forgets it.
    pub async fn close(&mut self, terminal: TerminalId) -> Result<()> {
        self.request(
            Message::CloseTerminal { terminal },
            Some(Purpose::About(terminal)),
        )
        .await
    }

    /// Ends the session (the agent detaches it from its terminals, which go on).
    pub async fn shutdown(self) {
        self.writer.close().await;
    }
}

/// The receiving half of a session.
pub struct TerminalEvents {
    reader: FrameReader,
    pending: Pending,
    /// A frame taken while joining output, to handle next.
    held: Option<Frame>,
}

impl TerminalEvents {
    /// The next event; `None` once the agent has closed the session, `Err` if it broke the
    /// protocol or left a request unanswered for [`REQUEST_TIMEOUT`]. Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<TerminalEvent>> {
        loop {
            let frame = match self.held.take() {
                Some(frame) => frame,
                None => {
                    let oldest = lock(&self.pending).values().map(|(_, at)| *at).min();
                    let received = match oldest {
                        Some(at) => {
                            let deadline = tokio::time::Instant::from_std(at + REQUEST_TIMEOUT);
                            match tokio::time::timeout_at(deadline, self.reader.recv()).await {
                                Ok(received) => received,
                                Err(_) => return Some(Err(Error::Timeout("the agent's answer"))),
                            }
                        }
                        None => self.reader.recv().await,
                    };
                    match received {
                        Ok(Some(frame)) => frame,
                        Ok(None) => return None,
                        Err(error) => return Some(Err(error)),
                    }
                }
            };
            if let Some(event) = self.event(frame) {
                return Some(Ok(event));
            }
        }
    }

    /// The browser's view of one frame; `None` for answers nobody needs to see.
    fn event(&mut self, frame: Frame) -> Option<TerminalEvent> {
        let purpose = match frame.id {
            0 => None,
            id => lock(&self.pending).remove(&id).map(|(purpose, _)| purpose),
        };
        Some(match frame.message {
            Message::Output { terminal, mut data } => {
                while data.len() < COALESCE {
                    match self.reader.try_recv() {
                        Ok(Some(Frame {
                            message:
                                Message::Output {
                                    terminal: more_for,
                                    data: more,
                                },
                            ..
                        })) if more_for == terminal => data.extend_from_slice(&more),
                        Ok(Some(other)) => {
                            self.held = Some(other);
                            break;
                        }
                        // An error surfaces at the next read.
                        Ok(None) | Err(_) => break,
                    }
                }
                TerminalEvent::Output { terminal, data }
            }
            Message::TerminalOpened { terminal } => TerminalEvent::Opened {
                terminal,
                command: match purpose {
                    Some(Purpose::Open { command }) => command,
                    _ => None,
                },
            },
            Message::TerminalList { terminals } if matches!(purpose, Some(Purpose::List)) => {
                TerminalEvent::Terminals(terminals)
            }
            Message::TerminalExited { terminal, status } => {
                TerminalEvent::Exited { terminal, status }
            }
            Message::RunFinished {
                terminal,
                exit_code,
                wall_ms,
                peak_rss_kib,
            } => TerminalEvent::RunFinished {
                terminal,
                exit_code,
                wall_ms,
                peak_rss_kib,
            },
            Message::TerminalLagged { terminal } => TerminalEvent::Lagged { terminal },
            Message::LspReceive { data } => TerminalEvent::Lsp(data),
            Message::Plot { id, data } => TerminalEvent::Plot { id, data },
            Message::Ok => match purpose {
                Some(Purpose::Attach(terminal)) => TerminalEvent::Attached { terminal },
                _ => return None,
            },
            Message::Error { code, message } => TerminalEvent::Failed {
                terminal: match purpose {
                    Some(Purpose::About(terminal) | Purpose::Attach(terminal)) => Some(terminal),
                    _ => None,
                },
                failure: Failure::from(code),
                message,
            },
            // `Ok` answers, pongs, anything else: nothing the browser is waiting for.
            _ => return None,
        })
    }
}
