//! One client connection: the version handshake, then requests in and responses and
//! terminal output out. Everything outgoing goes through the connection's [`Outbox`]: the
//! terminals it is attached to put their output there themselves, and one writer task
//! drains it.

use std::sync::Arc;

use protocol::{ErrorCode, Frame, Message, ReadError, VERSION, read_frame};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::broadcast::error::RecvError,
    task::JoinHandle,
};

use crate::{
    environment::{Environment, Saved},
    files::{FileError, Workspace},
    lsp::Lsp,
    outbox::Outbox,
    plots::Plots,
    terminals::{self, Terminals},
};

fn error(id: u32, code: ErrorCode, message: impl Into<String>) -> Frame {
    let mut message: String = message.into();
    if message.len() > protocol::MAX_ERROR_MESSAGE {
        let mut end = protocol::MAX_ERROR_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    Frame::new(id, Message::Error { code, message })
}

fn terminal_error(id: u32, error: &terminals::Error) -> Frame {
    let code = match error {
        terminals::Error::NotFound => ErrorCode::NotFound,
        terminals::Error::TooMany => ErrorCode::TooManyTerminals,
        terminals::Error::Pty(_) | terminals::Error::Io(_) => ErrorCode::Io,
    };
    self::error(id, code, error.to_string())
}

/// What every connection of the sandbox shares. Cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    pub terminals: Terminals,
    pub workspace: Arc<Workspace>,
    /// The watcher's changes (`None`: the workspace is not watched).
    pub changes: Option<tokio::sync::broadcast::Sender<Message>>,
    pub lsp: Lsp,
    pub environment: Environment,
    pub plots: Plots,
}

/// Serves one connection until the client goes away or breaks the protocol.
pub async fn serve<R, W>(mut reader: R, writer: W, sandbox: Sandbox)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let Sandbox {
        terminals,
        workspace,
        changes,
        lsp,
        environment,
        plots,
    } = sandbox;
    let out = Outbox::new();
    let writer_task = tokio::spawn(out.clone().write_to(writer));

    // Handshake: the first frame must be Hello with our version.
    match read_frame(&mut reader).await {
        Ok(Some(Frame {
            id,
            message: Message::Hello { version },
        })) if version == VERSION => {
            let _ = out
                .send(&Frame::new(id, Message::Hello { version: VERSION }))
                .await;
        }
        Ok(Some(Frame {
            id,
            message: Message::Hello { version },
        })) => {
            let _ = out
                .send(&error(
                    id,
                    ErrorCode::UnsupportedVersion,
                    format!("agent speaks {VERSION}, not {version}"),
                ))
                .await;
            out.close();
            let _ = writer_task.await;
            return;
        }
        Ok(Some(frame)) => {
            let _ = out
                .send(&error(
                    frame.id,
                    ErrorCode::UnsupportedVersion,
                    "the first frame must be Hello",
                ))
                .await;
            out.close();
            let _ = writer_task.await;
            return;
        }
        _ => {
            out.close();
            return;
        }
    }

    let mut watchers: Vec<JoinHandle<()>> = Vec::new();
    // Dropped at the end: the language server forgets this client's documents.
    let mut language = lsp.client(out.clone());
    loop {
        let frame = match read_frame(&mut reader).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(ReadError::Decode(decode)) if decode.is_recoverable() => {
                let (id, code) = match decode {
                    protocol::DecodeError::UnknownTag { id, .. } => (id, ErrorCode::UnknownTag),
                    protocol::DecodeError::Malformed { id, .. } => (id, ErrorCode::MalformedFrame),
                    protocol::DecodeError::BadLength(_)
                    | protocol::DecodeError::TooLarge { .. } => (0, ErrorCode::MalformedFrame),
                };
                if out
                    .send(&error(id, code, decode.to_string()))
                    .await
                    .is_err()
                {
                    break;
                }
                continue;
            }
            Err(failure) => {
                tracing::warn!(error = %failure, "closing a connection that broke the protocol");
                let _ = out
                    .send(&error(0, ErrorCode::MalformedFrame, failure.to_string()))
                    .await;
                break;
            }
        };
        let id = frame.id;
        let reply = match frame.message {
            Message::Ping => Some(Frame::new(id, Message::Pong)),
            // Not answered: the server's messages come as `LspReceive` events.
            Message::LspSend { data } => {
                language.send(data);
                None
            }
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
                                // The client was too slow for a burst of changes: it hears
                                // how many it missed (and takes a snapshot); the watch goes on
                                // from the oldest change still queued.
                                Err(RecvError::Lagged(missed)) => Message::WatchLagged { missed },
                                Err(RecvError::Closed) => return,
                            };
                            if out.send(&Frame::new(0, message)).await.is_err() {
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
            // Answered inside `attach`, ahead of the replay.
            Message::Attach { terminal } => terminals
                .attach(terminal, &out, &Frame::new(id, Message::Ok))
                .err()
                .map(|failure| terminal_error(id, &failure)),
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
                    Ok(snapshot) => Frame::new(
                        id,
                        Message::SnapshotResult {
                            files: snapshot.files,
                            unlisted: snapshot.unlisted,
                            complete: snapshot.complete,
                        },
                    ),
                    Err(failure) => error(id, failure.code, failure.message),
                },
            ),
            // These take seconds (tar): answered from a task of their own, so that the
            // connection's other requests (saves) do not wait behind them.
            Message::SaveEnvironment { max_bytes, unless } => {
                let (environment, out) = (environment.clone(), out.clone());
                tokio::spawn(async move {
                    let reply = match environment.save(max_bytes, &unless).await {
                        Ok(Saved::Unchanged) => Frame::new(id, Message::EnvironmentUnchanged),
                        Ok(Saved::Packed {
                            bytes,
                            signature,
                            packages,
                        }) => Frame::new(
                            id,
                            Message::EnvironmentSaved {
                                bytes,
                                signature,
                                packages,
                            },
                        ),
                        Err(failure) => error(id, failure.code, failure.message),
                    };
                    let _ = out.send(&reply).await;
                });
                None
            }
            Message::WatchPlots => {
                let (recent, mut events) = plots.subscribe();
                let out = out.clone();
                // The answer first, then the figures kept so far, then each new one.
                let answered = Frame::new(id, Message::Ok);
                watchers.push(tokio::spawn(async move {
                    if out.send(&answered).await.is_err() {
                        return;
                    }
                    let mut last = 0;
                    for plot in recent {
                        last = plot.id;
                        if out.send(&plot_frame(&plot)).await.is_err() {
                            return;
                        }
                    }
                    loop {
                        let plot = match events.recv().await {
                            Ok(plot) if plot.id > last => plot,
                            Ok(_) => continue,
                            // Too slow for a burst of figures: the newer ones still come.
                            Err(RecvError::Lagged(_)) => continue,
                            Err(RecvError::Closed) => return,
                        };
                        if out.send(&plot_frame(&plot)).await.is_err() {
                            return;
                        }
                    }
                }));
                None
            }
            Message::ReadEnvironment { offset } => Some(Frame::new(
                id,
                Message::EnvironmentData {
                    data: environment.read(offset),
                },
            )),
            // A piece is only appended: in order, at once.
            Message::RestoreEnvironment { data, last: false } => {
                Some(match environment.restore(data, false).await {
                    Ok(()) => Frame::new(id, Message::Ok),
                    Err(failure) => error(id, failure.code, failure.message),
                })
            }
            Message::RestoreEnvironment { data, last: true } => {
                let (environment, out) = (environment.clone(), out.clone());
                tokio::spawn(async move {
                    let reply = match environment.restore(data, true).await {
                        Ok(()) => Frame::new(id, Message::Ok),
                        Err(failure) => error(id, failure.code, failure.message),
                    };
                    let _ = out.send(&reply).await;
                });
                None
            }
            Message::ClearEnvironment => {
                let (environment, out) = (environment.clone(), out.clone());
                tokio::spawn(async move {
                    let reply = match environment.clear().await {
                        Ok(()) => Frame::new(id, Message::Ok),
                        Err(failure) => error(id, failure.code, failure.message),
                    };
                    let _ = out.send(&reply).await;
                });
                None
            }
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
            && out.send(&reply).await.is_err()
        {
            break;
        }
    }
    terminals.detach_all(&out);
    for watcher in watchers {
        watcher.abort();
    }
    out.close();
    let _ = writer_task.await;
}

fn plot_frame(plot: &crate::plots::Plot) -> Frame {
    Frame::new(
        0,
        Message::Plot {
            id: plot.id,
            data: plot.data.as_ref().clone(),
        },
    )
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
