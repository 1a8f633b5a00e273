//! One client connection: the version handshake, then requests in and responses and
//! terminal output out. Outgoing frames pass through a bounded queue; a forwarder per
//! attached terminal moves live output into it.

use std::{collections::HashMap, sync::Arc};

use protocol::{
    ErrorCode, Frame, Message, ReadError, TerminalId, VERSION, read_frame, write_frame,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::{broadcast::error::RecvError, mpsc},
    task::JoinHandle,
};

use crate::{
    files::{FileError, Workspace},
    terminals::{self, Event, Terminals},
};

/// Frames queued for one client before the forwarders wait for it.
pub const OUTGOING_FRAMES: usize = 256;
/// Output already waiting is joined into frames of up to this many bytes.
pub const COALESCE: usize = 64 * 1024;

fn error(id: u32, code: ErrorCode, message: impl Into<String>) -> Frame {
    Frame::new(
        id,
        Message::Error {
            code,
            message: message.into(),
        },
    )
}

fn terminal_error(id: u32, error: &terminals::Error) -> Frame {
    let code = match error {
        terminals::Error::NotFound => ErrorCode::NotFound,
        terminals::Error::TooMany => ErrorCode::TooManyTerminals,
        terminals::Error::Pty(_) | terminals::Error::Io(_) => ErrorCode::Io,
    };
    self::error(id, code, error.to_string())
}

/// Serves one connection until the client goes away or breaks the protocol.
pub async fn serve<R, W>(
    mut reader: R,
    writer: W,
    terminals: Terminals,
    workspace: Arc<Workspace>,
    changes: Option<tokio::sync::broadcast::Sender<Message>>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out, mut queue) = mpsc::channel::<Frame>(OUTGOING_FRAMES);
    let writer_task = tokio::spawn(async move {
        let mut writer = writer;
        while let Some(frame) = queue.recv().await {
            if write_frame(&mut writer, &frame).await.is_err() {
                break;
            }
        }
    });

    // Handshake: the first frame must be Hello with our version.
    match read_frame(&mut reader).await {
        Ok(Some(Frame {
            id,
            message: Message::Hello { version },
        })) if version == VERSION => {
            let _ = out
                .send(Frame::new(id, Message::Hello { version: VERSION }))
                .await;
        }
        Ok(Some(Frame {
            id,
            message: Message::Hello { version },
        })) => {
            let _ = out
                .send(error(
                    id,
                    ErrorCode::UnsupportedVersion,
                    format!("agent speaks {VERSION}, not {version}"),
                ))
                .await;
            drop(out);
            let _ = writer_task.await;
            return;
        }
        Ok(Some(frame)) => {
            let _ = out
                .send(error(
                    frame.id,
                    ErrorCode::UnsupportedVersion,
                    "the first frame must be Hello",
                ))
                .await;
            drop(out);
            let _ = writer_task.await;
            return;
        }
        _ => return,
    }

    let mut forwarders: HashMap<TerminalId, JoinHandle<()>> = HashMap::new();
    let mut watchers: Vec<JoinHandle<()>> = Vec::new();
    loop {
        let frame = match read_frame(&mut reader).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(ReadError::Decode(decode)) if decode.is_recoverable() => {
                let (id, code) = match decode {
                    protocol::DecodeError::UnknownTag { id, .. } => (id, ErrorCode::UnknownTag),
                    protocol::DecodeError::Malformed { id, .. } => (id, ErrorCode::MalformedFrame),
                    protocol::DecodeError::BadLength(_) => (0, ErrorCode::MalformedFrame),
                };
                if out.send(error(id, code, decode.to_string())).await.is_err() {
                    break;
                }
                continue;
            }
            Err(failure) => {
                tracing::warn!(error = %failure, "closing a connection that broke the protocol");
                let _ = out
                    .send(error(0, ErrorCode::MalformedFrame, failure.to_string()))
                    .await;
                break;
            }
        };
        let id = frame.id;
        let reply = match frame.message {
            Message::Ping => Some(Frame::new(id, Message::Pong)),
            Message::ListTerminals => Some(Frame::new(
                id,
                Message::TerminalList {
                    terminals: terminals.infos(),
                },
            )),
            Message::OpenTerminal { cols, rows } => Some(match terminals.open(cols, rows) {
                Ok(terminal) => Frame::new(id, Message::TerminalOpened { terminal }),
                Err(failure) => terminal_error(id, &failure),
            }),
            Message::Watch => Some(match &changes {
                Some(changes) => {
                    let mut events = changes.subscribe();
                    let out = out.clone();
                    watchers.push(tokio::spawn(async move {
                        loop {
                            let message = match events.recv().await {
                                Ok(message) => message,
                                Err(RecvError::Lagged(missed)) => {
                                    let _ = out
                                        .send(error(
                                            0,
                                            ErrorCode::Lagged,
                                            format!(
                                                "{missed} file changes missed; take a snapshot"
                                            ),
                                        ))
                                        .await;
                                    return;
                                }
                                Err(RecvError::Closed) => return,
                            };
                            if out.send(Frame::new(0, message)).await.is_err() {
                                return;
                            }
                        }
                    }));
                    Frame::new(id, Message::Ok)
                }
                None => error(
                    id,
                    ErrorCode::Unsupported,
                    "this agent does not watch its workspace",
                ),
            }),
            Message::Run {
                command,
                cols,
                rows,
            } => Some(match terminals.run(&command, cols, rows) {
                Ok(terminal) => Frame::new(id, Message::TerminalOpened { terminal }),
                Err(failure) => terminal_error(id, &failure),
            }),
            Message::Attach { terminal } => Some(match terminals.attach(terminal) {
                Ok(attached) => {
                    if let Some(old) = forwarders.remove(&terminal) {
                        old.abort();
                    }
                    forwarders.insert(
                        terminal,
                        tokio::spawn(forward(terminal, attached, out.clone())),
                    );
                    Frame::new(id, Message::Ok)
                }
                Err(failure) => terminal_error(id, &failure),
            }),
            // The hot path: no reply unless something is wrong.
            Message::Input { terminal, data } => terminals
                .input(terminal, &data)
                .await
                .err()
                .map(|failure| terminal_error(id, &failure)),
            Message::Resize {
                terminal,
                cols,
                rows,
            } => Some(match terminals.resize(terminal, cols, rows).await {
                Ok(()) => Frame::new(id, Message::Ok),
                Err(failure) => terminal_error(id, &failure),
            }),
            Message::CloseTerminal { terminal } => Some(match terminals.close(terminal) {
                Ok(()) => Frame::new(id, Message::Ok),
                Err(failure) => terminal_error(id, &failure),
            }),
            Message::WriteFile { path, data } => Some(file_reply(
                id,
                run_file(&workspace, move |w| w.write(&path, &data)).await,
            )),
            Message::MakeDir { path } => Some(file_reply(
                id,
                run_file(&workspace, move |w| w.make_dir(&path)).await,
            )),
            Message::Delete { path } => Some(file_reply(
                id,
                run_file(&workspace, move |w| w.delete(&path)).await,
            )),
            Message::Move { from, to } => Some(file_reply(
                id,
                run_file(&workspace, move |w| w.rename(&from, &to)).await,
            )),
            Message::Snapshot => Some(
                match run_file(&workspace, |w| {
                    let ignores = crate::watch::Ignores::load(w.path());
                    w.snapshot(|path, is_dir| ignores.is_ignored(path, is_dir))
                })
                .await
                {
                    Ok(files) => Frame::new(id, Message::SnapshotResult { files }),
                    Err(failure) => error(id, failure.code, failure.message),
                },
            ),
            Message::ReadFile { path } => {
                let name = path.clone();
                Some(match run_file(&workspace, move |w| w.read(&path)).await {
                    Ok(data) => Frame::new(id, Message::FileContent { path: name, data }),
                    Err(failure) => error(id, failure.code, failure.message),
                })
            }
            other => Some(error(
                id,
                ErrorCode::Unsupported,
                format!("the agent does not accept {:?} requests", other.tag()),
            )),
        };
        if let Some(reply) = reply
            && out.send(reply).await.is_err()
        {
            break;
        }
    }
    for (_, forwarder) in forwarders {
        forwarder.abort();
    }
    for watcher in watchers {
        watcher.abort();
    }
    drop(out);
    let _ = writer_task.await;
}

/// Runs a blocking file operation off the async threads.
async fn run_file<T: Send + 'static>(
    workspace: &Arc<Workspace>,
    operation: impl FnOnce(&Workspace) -> Result<T, FileError> + Send + 'static,
) -> Result<T, FileError> {
    let workspace = workspace.clone();
    tokio::task::spawn_blocking(move || operation(&workspace))
        .await
        .unwrap_or_else(|_| {
            Err(FileError {
                code: ErrorCode::Io,
                message: "file operation panicked".into(),
            })
        })
}

fn file_reply(id: u32, result: Result<(), FileError>) -> Frame {
    match result {
        Ok(()) => Frame::new(id, Message::Ok),
        Err(failure) => error(id, failure.code, failure.message),
    }
}

/// Sends a terminal's scrollback, then its live output, to one client.
async fn forward(terminal: TerminalId, attached: terminals::Attached, out: mpsc::Sender<Frame>) {
    let mut events = attached.events;
    if !attached.replay.is_empty()
        && out
            .send(Frame::new(
                0,
                Message::Output {
                    terminal,
                    data: attached.replay,
                },
            ))
            .await
            .is_err()
    {
        return;
    }
    if let Some(result) = attached.finished {
        let finished = Message::RunFinished {
            terminal,
            exit_code: result.exit_code,
            wall_ms: result.wall_ms,
            peak_rss_kib: result.peak_rss_kib,
        };
        if out.send(Frame::new(0, finished)).await.is_err() {
            return;
        }
    }
    if let Some(status) = attached.exited {
        let _ = out
            .send(Frame::new(0, Message::TerminalExited { terminal, status }))
            .await;
        return;
    }
    // An event taken while coalescing output, to handle next.
    let mut held: Option<Event> = None;
    loop {
        let event = match held.take() {
            Some(event) => Ok(event),
            None => events.recv().await,
        };
        let frame = match event {
            Ok(Event::Output(data)) => {
                // Whatever else is already waiting goes in the same frame: under a flood
                // one frame carries up to COALESCE bytes instead of one PTY read each.
                let mut data = data.to_vec();
                while data.len() < COALESCE {
                    match events.try_recv() {
                        Ok(Event::Output(more)) => data.extend_from_slice(&more),
                        Ok(other) => {
                            held = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                Frame::new(0, Message::Output { terminal, data })
            }
            Ok(Event::Finished(result)) => Frame::new(
                0,
                Message::RunFinished {
                    terminal,
                    exit_code: result.exit_code,
                    wall_ms: result.wall_ms,
                    peak_rss_kib: result.peak_rss_kib,
                },
            ),
            Ok(Event::Exited(status)) => {
                let _ = out
                    .send(Frame::new(0, Message::TerminalExited { terminal, status }))
                    .await;
                return;
            }
            Err(RecvError::Lagged(missed)) => {
                // Too slow to keep up: detach rather than buffer without bound.
                let _ = out
                    .send(error(
                        0,
                        ErrorCode::Lagged,
                        format!("terminal {terminal}: {missed} chunks behind; attach again"),
                    ))
                    .await;
                return;
            }
            Err(RecvError::Closed) => return,
        };
        if out.send(frame).await.is_err() {
            return;
        }
    }
}
