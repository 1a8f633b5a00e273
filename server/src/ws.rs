//! `/ws/workspaces/{id}`: the IDE tab's one WebSocket, relaying terminal channels between
//! the browser and the workspace's sandbox agent (see `model::ws` for the frames).
//!
//! Checked before the upgrade, in this order: Origin (403 `cross_site`), the session cookie
//! (401), the workspace's owner (404, the same answer as a missing workspace).
//!
//! Memory is bounded by construction: nothing is queued without a limit. Output moves
//! agent → browser one frame at a time; while the browser is slow the relay stops reading
//! the agent, the agent's own bounded queues fill, and its terminals pause (the programs
//! writing block) or, after a long stall, detach this client (`lagged`, the browser
//! re-attaches from the scrollback). A browser that stops reading altogether is dropped
//! once a send has waited `send_timeout`, or once it has left two pings unanswered.
//!
//! "Slow" also counts what the browser has taken in but not yet drawn: a browser that
//! acknowledges output (`ack`, as Codepod's does after xterm.js has parsed it) gets no more
//! than [`ACK_WINDOW`] bytes ahead of its acknowledgements, so a flood cannot pile up in
//! xterm.js's write buffer (which discards data past 50 MB) on a slow device.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use app::{
    ApiError,
    api_context::{ApiContext, AuthUser},
};
use axum::{
    extract::{
        FromRef, Path, State,
        ws::{
            CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade,
            rejection::WebSocketUpgradeRejection,
        },
    },
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use futures_util::{SinkExt, StreamExt, stream::SplitSink};
use model::{
    ErrorCode, SandboxState, SandboxStatus, TerminalId, WorkspaceId,
    ws::{
        ACK_WINDOW, ClientMessage, LSP_CHANNEL, MAX_COMMAND, PLOT_CHANNEL, ServerMessage,
        decode_data, encode_data,
    },
};
use prometheus_client::{
    metrics::{counter::Counter, gauge::Gauge},
    registry::Registry,
};
use sandbox::agent::{TerminalEvent, TerminalEvents, TerminalSender, TerminalSession};
use services::events::FileEvent;
use services::{
    Activity,
    accounts::{CurrentUser, SessionsEnded},
};
use tokio::sync::{broadcast, mpsc, watch};

use crate::{api_errors::error_response, security::Security};

pub use model::ws::close::{
    RESTARTING as CLOSE_RESTARTING, SANDBOX_STOPPED as CLOSE_SANDBOX_STOPPED,
    SIGNED_OUT as CLOSE_SIGNED_OUT, START_FAILED as CLOSE_START_FAILED, TOO_SLOW as CLOSE_TOO_SLOW,
};

/// How often an open socket checks that its session is still valid (a sign-out on another
/// replica, an expiry); sign-outs on this server close it at once.
const SESSION_RECHECK: Duration = Duration::from_secs(10);
/// Largest message a browser may send (a big paste).
const MAX_CLIENT_MESSAGE: usize = 1024 * 1024;
/// Bytes the socket may hold unsent before a send fails (the slow-client bound).
const MAX_WRITE_BUFFER: usize = 4 * 1024 * 1024;
/// Server-originated replies (pongs, errors) waiting for the writer.
const CONTROL_QUEUE: usize = 64;
/// Activity marks (which keep a sandbox from the idle cull) at most this often.
const TOUCH_EVERY: Duration = Duration::from_secs(1);
/// After sending this much output at once the relay lets other sessions' tasks run: a
/// flooding terminal would otherwise keep its worker thread for many sends in a row (its
/// socket is always ready) while keystroke echoes of other sessions wait.
const YIELD_AFTER: usize = 16 * 1024;

/// Prometheus metrics of the WebSocket hub.
#[derive(Clone, Default)]
pub struct HubMetrics {
    sessions: Gauge,
    reattaches: Counter,
    slow_drops: Counter,
}

impl HubMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register("ws_sessions", "Open IDE WebSockets", self.sessions.clone());
        registry.register(
            "ws_reattaches",
            "Attaches to terminals that existed before the socket connected (reconnects, reloads)",
            self.reattaches.clone(),
        );
        registry.register(
            "ws_slow_client_drops",
            "WebSockets dropped because the browser stopped reading",
            self.slow_drops.clone(),
        );
    }
}

/// Settings and shared state of the hub.
#[derive(Clone)]
pub struct Hub {
    pub send_timeout: Duration,
    /// How often the server pings; a browser silent for two intervals (it does not even
    /// answer pings: it stopped reading) is dropped.
    pub ping_interval: Duration,
    pub metrics: HubMetrics,
    /// Flips to `true` when the server shuts down: every socket closes with 1012.
    pub shutdown: watch::Receiver<bool>,
}

/// `GET /ws/workspaces/{id}`.
pub async fn upgrade<S>(
    State(state): State<S>,
    Path(id): Path<String>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response
where
    ApiContext: FromRef<S>,
    Security: FromRef<S>,
    Hub: FromRef<S>,
{
    let security = Security::from_ref(&state);
    if !crate::security::same_origin(&headers, &security.public_origin) {
        tracing::warn!("cross-site WebSocket refused");
        return error_response(ApiError::new(
            ErrorCode::CrossSite,
            "cross-site WebSocket connections are not allowed",
        ));
    }
    let api = ApiContext::from_ref(&state);
    // Listening before the session is checked: a sign-out right after the check still
    // reaches this socket.
    let ended = api.services.ended_sessions();
    let user = match AuthUser::from_headers(&api, &headers).await {
        Ok(AuthUser(user)) => user,
        Err(error) => return error_response(error),
    };
    let not_found = || error_response(ApiError::from(services::Error::NotFound));
    let Ok(workspace) = id.parse::<WorkspaceId>() else {
        return not_found();
    };
    if let Err(error) = api.services.workspace(&user, workspace).await {
        return error_response(ApiError::from(error));
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return error_response(ApiError::new(ErrorCode::BadRequest, rejection.body_text()));
        }
    };
    let hub = Hub::from_ref(&state);
    upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .on_upgrade(move |socket| async move {
            hub.metrics.sessions.inc();
            session(socket, api.services, user, ended, workspace, hub.clone()).await;
            hub.metrics.sessions.dec();
        })
        .into_response()
}

/// State shared by the two halves of one session.
#[derive(Default)]
struct Shared {
    /// Terminals that existed when this socket connected: attaching to one is a reattach.
    listed: HashSet<TerminalId>,
}

type Sink = SplitSink<WebSocket, WsMessage>;

fn text(message: &ServerMessage) -> WsMessage {
    // Serialising these plain enums cannot fail.
    WsMessage::Text(serde_json::to_string(message).unwrap_or_default().into())
}

fn close(code: u16, reason: &str) -> WsMessage {
    WsMessage::Close(Some(CloseFrame {
        code,
        reason: reason.to_owned().into(),
    }))
}

async fn send_within(sink: &mut Sink, message: WsMessage, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, sink.send(message)).await,
        Ok(Ok(()))
    )
}

async fn session(
    socket: WebSocket,
    services: services::Services,
    user: CurrentUser,
    ended: broadcast::Receiver<SessionsEnded>,
    workspace: WorkspaceId,
    hub: Hub,
) {
    let (mut sink, mut stream) = socket.split();
    let timeout = hub.send_timeout;
    let mut starting = SandboxStatus::stopped();
    starting.state = SandboxState::Starting;
    if !send_within(
        &mut sink,
        text(&ServerMessage::Status { status: starting }),
        timeout,
    )
    .await
    {
        return;
    }
    let status = match services.start_workspace(&user, workspace).await {
        Ok(status) => status,
        Err(error) => {
            let mut status = SandboxStatus::stopped();
            status.state = SandboxState::Failed;
            status.error = Some(error.public_message());
            status
        }
    };
    let ready = status.state == SandboxState::Ready;
    if !send_within(&mut sink, text(&ServerMessage::Status { status }), timeout).await {
        return;
    }
    let terminals = match ready {
        true => services.terminal_session(&user, workspace).await.ok(),
        false => None,
    };
    let Some((
        TerminalSession {
            sender: mut agent_tx,
            events: agent_rx,
        },
        activity,
    )) = terminals
    else {
        let _ = send_within(
            &mut sink,
            close(CLOSE_START_FAILED, "the sandbox did not start"),
            timeout,
        )
        .await;
        return;
    };
    let shared = Arc::new(Mutex::new(Shared::default()));
    let (to_out, from_in) = half_link();

    if agent_tx.list().await.is_err() || agent_tx.watch_plots().await.is_err() {
        return;
    }

    let mut outbound = tokio::spawn(relay_out(
        sink,
        agent_rx,
        from_in,
        shared.clone(),
        hub.clone(),
        (services.clone(), user.clone(), ended, activity.clone()),
        workspace,
    ));
    let inbound = async {
        let silent = relay_in(
            &mut stream,
            &mut agent_tx,
            &to_out,
            &shared,
            &hub,
            &activity,
            workspace,
        )
        .await;
        if silent {
            hub.metrics.slow_drops.inc();
            tracing::info!(workspace.id = %workspace, "dropping a WebSocket that stopped answering pings");
        }
    };
    tokio::select! {
        _ = &mut outbound => {}
        () = inbound => outbound.abort(),
    }
    agent_tx.shutdown().await;
    tracing::debug!(workspace.id = %workspace, "WebSocket session ended");
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the browser → agent half passes to the other half.
struct ToRelayOut {
    /// Replies it makes itself (pongs, errors).
    control: mpsc::Sender<ServerMessage>,
    /// The browser's latest acknowledgement of output; `None` until it sends one.
    acked: watch::Sender<Option<u64>>,
}

/// The receiving ends of [`ToRelayOut`].
struct FromRelayIn {
    control: mpsc::Receiver<ServerMessage>,
    acked: watch::Receiver<Option<u64>>,
}

fn half_link() -> (ToRelayOut, FromRelayIn) {
    let (control_tx, control) = mpsc::channel(CONTROL_QUEUE);
    let (acked_tx, acked) = watch::channel(None);
    (
        ToRelayOut {
            control: control_tx,
            acked: acked_tx,
        },
        FromRelayIn { control, acked },
    )
}

/// Browser → agent: keystrokes and control requests. Returns when the browser goes away or
/// breaks the protocol (`false`), or stays silent for two ping intervals (`true`).
async fn relay_in(
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
    agent: &mut TerminalSender,
    out: &ToRelayOut,
    shared: &Mutex<Shared>,
    hub: &Hub,
    activity: &Activity,
    workspace: WorkspaceId,
) -> bool {
    let ToRelayOut { control, acked } = out;
    let mut last_touch = Instant::now();
    loop {
        let message = match tokio::time::timeout(hub.ping_interval * 2, stream.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(_) => return false,
            Err(_) => return true,
        };
        let sent = match message {
            WsMessage::Binary(frame) => {
                let Some((terminal, data)) = decode_data(&frame) else {
                    let _ = control.try_send(error(
                        None,
                        ErrorCode::BadFrame,
                        "a binary frame needs a 4-byte terminal id",
                    ));
                    continue;
                };
                if last_touch.elapsed() >= TOUCH_EVERY {
                    activity.touch();
                    last_touch = Instant::now();
                }
                if terminal == LSP_CHANNEL {
                    // Relayed as it is: the agent reads it (within MAX_CLIENT_MESSAGE).
                    agent.lsp(data).await
                } else {
                    agent.input(terminal, data).await
                }
            }
            WsMessage::Text(json) => {
                match serde_json::from_str::<ClientMessage>(&json) {
                    Ok(ClientMessage::Ping { nonce }) => {
                        if control.try_send(ServerMessage::Pong { nonce }).is_err() {
                            return false;
                        }
                        continue;
                    }
                    Ok(ClientMessage::Activity) => {
                        if last_touch.elapsed() >= TOUCH_EVERY {
                            activity.touch();
                            last_touch = Instant::now();
                        }
                        continue;
                    }
                    Ok(ClientMessage::Ack { bytes }) => {
                        // Only forward: an older acknowledgement arriving late changes nothing.
                        acked.send_if_modified(|acked| {
                            let newer = acked.is_none_or(|before| bytes > before);
                            if newer {
                                *acked = Some(bytes);
                            }
                            newer
                        });
                        continue;
                    }
                    Ok(ClientMessage::Run { command, .. }) if command.len() > MAX_COMMAND => {
                        let _ = control.try_send(error(
                        None,
                        ErrorCode::TooLarge,
                        &format!("a command is at most {MAX_COMMAND} bytes; put longer ones in a file"),
                    ));
                        continue;
                    }
                    Ok(request) => {
                        activity.touch();
                        forward(request, agent, shared, hub).await
                    }
                    Err(failure) => {
                        if control
                            .try_send(error(
                                None,
                                ErrorCode::BadRequest,
                                &format!("not a control message: {failure}"),
                            ))
                            .is_err()
                        {
                            return false;
                        }
                        continue;
                    }
                }
            }
            WsMessage::Close(_) => return false,
            WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
        };
        match sent {
            Ok(()) => {}
            Err(sandbox::Error::Busy) => {
                tracing::warn!(workspace.id = %workspace, "too many requests in flight; dropping the socket");
                return false;
            }
            Err(_) => return false,
        }
    }
}

/// Passes a browser request on to the agent.
async fn forward(
    request: ClientMessage,
    agent: &mut TerminalSender,
    shared: &Mutex<Shared>,
    hub: &Hub,
) -> sandbox::Result<()> {
    match request {
        ClientMessage::Open { cols, rows } => agent.open(cols, rows).await,
        ClientMessage::Run {
            command,
            cols,
            rows,
        } => agent.run(&command, cols, rows).await,
        ClientMessage::Attach { terminal } => {
            if lock(shared).listed.contains(&terminal) {
                hub.metrics.reattaches.inc();
            }
            agent.attach(terminal).await
        }
        ClientMessage::Resize {
            terminal,
            cols,
            rows,
        } => agent.resize(terminal, cols, rows).await,
        ClientMessage::Close { terminal } => agent.close(terminal).await,
        // Handled without the agent, before we get here.
        ClientMessage::Ping { .. } | ClientMessage::Ack { .. } | ClientMessage::Activity => Ok(()),
    }
}

fn error(terminal: Option<TerminalId>, code: ErrorCode, message: &str) -> ServerMessage {
    ServerMessage::Error {
        code,
        message: message.to_owned(),
        terminal,
    }
}

/// Agent → browser: output, answers and events, plus the hub's own replies and pings.
async fn relay_out(
    mut sink: Sink,
    mut agent: TerminalEvents,
    from_in: FromRelayIn,
    shared: Arc<Mutex<Shared>>,
    hub: Hub,
    (services, user, mut ended, activity): (
        services::Services,
        CurrentUser,
        broadcast::Receiver<SessionsEnded>,
        Activity,
    ),
    workspace: WorkspaceId,
) {
    let timeout = hub.send_timeout;
    let FromRelayIn {
        mut control,
        mut acked,
    } = from_in;
    let events = services.events.clone();
    // Sign-outs on this server arrive at once; a session ended elsewhere (another replica,
    // its expiry) is found by checking it every so often.
    let mut recheck = tokio::time::interval(SESSION_RECHECK);
    recheck.reset();
    let signed_out = || close(CLOSE_SIGNED_OUT, "the session ended: sign in again");
    let mut file_events = events.subscribe(workspace);
    // Subscribed: whatever the browser loaded before now, it reloads, and misses nothing
    // from here on.
    if !send_within(&mut sink, text(&ServerMessage::FilesResync), timeout).await {
        return;
    }
    let mut shutdown = hub.shutdown.clone();
    let mut pings = tokio::time::interval(hub.ping_interval);
    pings.reset();
    let mut last_touch = Instant::now();
    // Terminal output sent (data bytes, the unit of the browser's acknowledgements).
    let mut sent: u64 = 0;
    loop {
        // Nothing more from the agent while the browser is a window behind.
        let open = acked
            .borrow_and_update()
            .is_none_or(|acked| sent.saturating_sub(acked) < ACK_WINDOW);
        let message = tokio::select! {
            biased;
            event = agent.next(), if open => match event {
                Some(Ok(event)) => {
                    if let TerminalEvent::Output { data, .. }
                    | TerminalEvent::Lsp(data)
                    | TerminalEvent::Plot { data, .. } = &event
                    {
                        // A figure's frame carries its 8-byte id too.
                        let id = if matches!(event, TerminalEvent::Plot { .. }) { 8 } else { 0 };
                        sent += data.len() as u64 + id;
                        if last_touch.elapsed() >= TOUCH_EVERY {
                            activity.touch();
                            last_touch = Instant::now();
                        }
                    }
                    to_browser(event, &shared)
                }
                ended => {
                    // The agent went away (the sandbox was stopped, or died), broke the
                    // protocol or stopped answering.
                    if let Some(Err(error)) = ended {
                        tracing::warn!(workspace.id = %workspace, error = %error, "ending a terminal session");
                    }
                    let status = ServerMessage::Status { status: SandboxStatus::stopped() };
                    let _ = send_within(&mut sink, text(&status), timeout).await;
                    let _ = send_within(&mut sink, close(CLOSE_SANDBOX_STOPPED, "the sandbox stopped"), timeout).await;
                    return;
                }
            },
            Ok(()) = acked.changed(), if !open => continue,
            Some(reply) = control.recv() => text(&reply),
            event = file_events.recv() => text(&match event {
                Ok(FileEvent::Changed { path, version }) => ServerMessage::FileChanged { path, version },
                Ok(FileEvent::Removed { path }) => ServerMessage::FileRemoved { path },
                Ok(FileEvent::Resync) => ServerMessage::FilesResync,
                Ok(FileEvent::NotKept(not_kept)) => ServerMessage::FilesNotKept { not_kept },
                Err(broadcast::error::RecvError::Lagged(_)) => ServerMessage::FilesResync,
                Err(broadcast::error::RecvError::Closed) => {
                    file_events = events.subscribe(workspace);
                    ServerMessage::FilesResync
                }
            }),
            _ = pings.tick() => WsMessage::Ping(Default::default()),
            gone = ended.recv() => {
                let ours = match gone {
                    Ok(gone) => gone.includes(&user),
                    // Missed some: ask the store.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        !services.still_signed_in(&user).await.unwrap_or(true)
                    }
                    Err(broadcast::error::RecvError::Closed) => false,
                };
                if !ours {
                    continue;
                }
                tracing::info!(workspace.id = %workspace, "closing a WebSocket whose session ended");
                let _ = send_within(&mut sink, signed_out(), timeout).await;
                return;
            }
            _ = recheck.tick() => {
                // A database that does not answer is not a sign-out.
                if services.still_signed_in(&user).await.unwrap_or(true) {
                    continue;
                }
                tracing::info!(workspace.id = %workspace, "closing a WebSocket whose session ended elsewhere");
                let _ = send_within(&mut sink, signed_out(), timeout).await;
                return;
            }
            () = async { let _ = shutdown.wait_for(|stop| *stop).await; } => {
                let _ = send_within(&mut sink, close(CLOSE_RESTARTING, "the server is restarting"), timeout).await;
                return;
            }
        };
        let bulk = matches!(&message, WsMessage::Binary(data) if data.len() >= YIELD_AFTER);
        if !send_within(&mut sink, message, timeout).await {
            hub.metrics.slow_drops.inc();
            tracing::info!(workspace.id = %workspace, "dropping a WebSocket that stopped reading");
            let _ = tokio::time::timeout(
                Duration::from_millis(100),
                sink.send(close(CLOSE_TOO_SLOW, "too slow")),
            )
            .await;
            return;
        }
        if bulk {
            tokio::task::yield_now().await;
        }
    }
}

/// The browser's view of one terminal event.
fn to_browser(event: TerminalEvent, shared: &Mutex<Shared>) -> WsMessage {
    let message = match event {
        TerminalEvent::Output { terminal, data } => {
            return WsMessage::Binary(encode_data(terminal, &data).into());
        }
        TerminalEvent::Lsp(data) => {
            return WsMessage::Binary(encode_data(LSP_CHANNEL, &data).into());
        }
        TerminalEvent::Plot { id, data } => {
            let mut payload = Vec::with_capacity(8 + data.len());
            payload.extend_from_slice(&id.to_be_bytes());
            payload.extend_from_slice(&data);
            return WsMessage::Binary(encode_data(PLOT_CHANNEL, &payload).into());
        }
        TerminalEvent::Opened { terminal, command } => ServerMessage::Opened { terminal, command },
        TerminalEvent::Attached { terminal } => ServerMessage::Attached { terminal },
        TerminalEvent::Terminals(terminals) => {
            lock(shared)
                .listed
                .extend(terminals.iter().map(|info| info.terminal));
            ServerMessage::Terminals { terminals }
        }
        TerminalEvent::Exited { terminal, status } => ServerMessage::Exited { terminal, status },
        TerminalEvent::RunFinished {
            terminal,
            exit_code,
            wall_ms,
            peak_rss_kib,
        } => ServerMessage::RunFinished {
            terminal,
            exit_code,
            wall_ms,
            peak_rss_kib,
        },
        TerminalEvent::Lagged { terminal } => ServerMessage::Lagged { terminal },
        TerminalEvent::Failed {
            terminal,
            failure,
            message,
        } => error(terminal, failure.code(), &message),
    };
    text(&message)
}
