//! The IDE WebSocket, `/ws/workspaces/{id}`, against the real server, a real bubblewrap
//! sandbox and the real agent on a real PTY: who may connect, terminals over it, resize,
//! reattach with scrollback, a browser that stops reading, a stopped sandbox, shutdown.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a failure is a failed test"
)]

mod common;

use std::time::Duration;

use common::{PASSWORD, TestApp, spawn_app_configured};
use futures_util::{SinkExt, StreamExt};
use model::ws::{ClientMessage, ServerMessage, TerminalId, decode_data, encode_data};
use serde_json::json;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{
        self, Message as Ws, client::IntoClientRequest, protocol::frame::coding::CloseCode,
    },
};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Registers `username` and creates a workspace; returns the session cookie and its id.
async fn user_with_workspace(app: &TestApp, username: &str) -> (String, String) {
    let browser = app.browser();
    let response = browser
        .post_raw(
            "/api/users/register",
            json!({ "username": username, "email": format!("{username}@example.org"), "password": PASSWORD }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let workspace = browser.workspace("demo").await;
    (cookie, workspace)
}

fn request(
    app: &TestApp,
    workspace: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
) -> tungstenite::handshake::client::Request {
    let mut request = format!("ws://{}/ws/workspaces/{workspace}", app.address)
        .into_client_request()
        .unwrap();
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", cookie.parse().unwrap());
    }
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    request
}

/// The HTTP status a refused handshake got.
async fn refused(request: tungstenite::handshake::client::Request) -> u16 {
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

async fn connect(app: &TestApp, cookie: &str, workspace: &str) -> Socket {
    let origin = app.url("");
    let (socket, response) =
        tokio_tungstenite::connect_async(request(app, workspace, Some(cookie), Some(&origin)))
            .await
            .unwrap();
    assert_eq!(response.status(), 101);
    socket
}

async fn send(socket: &mut Socket, message: ClientMessage) {
    socket
        .send(Ws::text(serde_json::to_string(&message).unwrap()))
        .await
        .unwrap();
}

async fn type_in(socket: &mut Socket, terminal: TerminalId, keys: &str) {
    socket
        .send(Ws::binary(encode_data(terminal, keys.as_bytes())))
        .await
        .unwrap();
}

/// What the server sent next: a control message or terminal bytes.
#[derive(Debug)]
enum Received {
    Control(ServerMessage),
    Data(TerminalId, Vec<u8>),
    Closed(Option<u16>),
}

async fn receive(socket: &mut Socket) -> Received {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("the server answers within 30 s");
        return match next {
            Some(Ok(Ws::Text(text))) => Received::Control(serde_json::from_str(&text).unwrap()),
            Some(Ok(Ws::Binary(frame))) => {
                let (terminal, data) = decode_data(&frame).unwrap();
                Received::Data(terminal, data.to_vec())
            }
            Some(Ok(Ws::Close(frame))) => Received::Closed(frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => Received::Closed(None),
        };
    }
}

/// Reads until a control message matches `want`.
async fn control_until(
    socket: &mut Socket,
    want: impl Fn(&ServerMessage) -> bool,
) -> ServerMessage {
    loop {
        match receive(socket).await {
            Received::Control(message) if want(&message) => return message,
            Received::Closed(code) => panic!("closed ({code:?}) while waiting"),
            _ => {}
        }
    }
}

/// Reads terminal output until it contains `needle`; returns everything read.
async fn output_until(socket: &mut Socket, terminal: TerminalId, needle: &str) -> String {
    let mut seen = Vec::new();
    loop {
        match receive(socket).await {
            Received::Data(t, data) if t == terminal => {
                seen.extend_from_slice(&data);
                let text = String::from_utf8_lossy(&seen);
                if text.contains(needle) {
                    return text.into_owned();
                }
            }
            Received::Closed(code) => panic!(
                "closed ({code:?}) before {needle:?}; saw {:?}",
                String::from_utf8_lossy(&seen)
            ),
            _ => {}
        }
    }
}

/// Waits for the sandbox, checks the terminal list, opens a shell and attaches to it.
async fn ready_with_terminal(socket: &mut Socket) -> TerminalId {
    control_until(socket, |m| matches!(m, ServerMessage::Terminals { .. })).await;
    send(socket, ClientMessage::Open { cols: 80, rows: 24 }).await;
    let ServerMessage::Opened { terminal, .. } =
        control_until(socket, |m| matches!(m, ServerMessage::Opened { .. })).await
    else {
        unreachable!()
    };
    send(socket, ClientMessage::Attach { terminal }).await;
    terminal
}

async fn closed_with(socket: &mut Socket) -> Option<u16> {
    loop {
        if let Received::Closed(code) = receive(socket).await {
            return code;
        }
    }
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn only_the_owner_from_our_origin_gets_an_upgrade() {
    let app = spawn_app_configured(|_| {}).await;
    let (ada, ws) = user_with_workspace(&app, "ada").await;
    let (bob, _) = user_with_workspace(&app, "bob").await;
    let origin = app.url("");

    // Another site's page, even with Ada's cookie: refused before the upgrade.
    let evil = request(&app, &ws, Some(&ada), Some("https://evil.example"));
    assert_eq!(refused(evil).await, 403);
    // No session, or a made-up one.
    assert_eq!(refused(request(&app, &ws, None, Some(&origin))).await, 401);
    let forged = "codepod_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(
        refused(request(&app, &ws, Some(forged), Some(&origin))).await,
        401
    );
    // Bob cannot reach Ada's workspace: the same 404 as one that does not exist.
    assert_eq!(
        refused(request(&app, &ws, Some(&bob), Some(&origin))).await,
        404
    );
    let missing = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        refused(request(&app, &missing, Some(&ada), Some(&origin))).await,
        404
    );
    assert_eq!(
        refused(request(&app, "..%2F..%2Fetc", Some(&ada), Some(&origin))).await,
        404
    );
    // None of that started Ada's sandbox.
    let browser = app.browser();
    let (_, status) = browser
        .post("/api/workspaces/status", json!({ "id": ws }))
        .await;
    assert_eq!(status["code"], "unauthenticated");
    assert!(
        !app.data_dir().join("sandboxes").join(&ws).exists(),
        "a refused socket started a sandbox"
    );

    // A plain HTTP GET (not an upgrade) from the owner is a 400, not a crash.
    let response = reqwest::Client::new()
        .get(app.url(&format!("/ws/workspaces/{ws}")))
        .header("cookie", &ada)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // A non-browser client (no Origin) with the cookie is accepted: CSRF needs a browser.
    let (mut socket, _) = tokio_tungstenite::connect_async(request(&app, &ws, Some(&ada), None))
        .await
        .unwrap();
    control_until(&mut socket, |m| {
        matches!(m, ServerMessage::Terminals { .. })
    })
    .await;
}

#[tokio::test]
async fn a_shell_over_the_socket_types_resizes_and_reattaches_with_its_scrollback() {
    let app = spawn_app_configured(|_| {}).await;
    let (cookie, ws) = user_with_workspace(&app, "ada").await;
    let mut socket = connect(&app, &cookie, &ws).await;

    // The sandbox boots as part of connecting: starting, then ready, then the (empty) list.
    match receive(&mut socket).await {
        Received::Control(ServerMessage::Status { status }) => {
            assert_eq!(status.state, model::SandboxState::Starting);
        }
        other => panic!("{other:?}"),
    }
    let ServerMessage::Status { status } =
        control_until(&mut socket, |m| matches!(m, ServerMessage::Status { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(status.state, model::SandboxState::Ready, "{status:?}");
    assert_eq!(
        control_until(&mut socket, |m| matches!(
            m,
            ServerMessage::Terminals { .. }
        ))
        .await,
        ServerMessage::Terminals { terminals: vec![] }
    );
    send(&mut socket, ClientMessage::Open { cols: 80, rows: 24 }).await;
    let ServerMessage::Opened { terminal, command } =
        control_until(&mut socket, |m| matches!(m, ServerMessage::Opened { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(command, None);
    send(&mut socket, ClientMessage::Attach { terminal }).await;
    type_in(&mut socket, terminal, "echo $((6*7))\r").await;
    output_until(&mut socket, terminal, "42\r\n").await;

    // A resize reaches the PTY.
    send(
        &mut socket,
        ClientMessage::Resize {
            terminal,
            cols: 132,
            rows: 43,
        },
    )
    .await;
    type_in(&mut socket, terminal, "stty size\r").await;
    output_until(&mut socket, terminal, "43 132").await;

    // Drop the socket (a lost network, a reload): the shell lives on.
    drop(socket);
    let mut again = connect(&app, &cookie, &ws).await;
    let ServerMessage::Terminals { terminals } =
        control_until(&mut again, |m| matches!(m, ServerMessage::Terminals { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(terminals.len(), 1);
    assert_eq!(terminals[0].terminal, terminal);
    assert_eq!(terminals[0].exited, None);
    send(&mut again, ClientMessage::Attach { terminal }).await;
    let replay = output_until(&mut again, terminal, "43 132").await;
    assert!(replay.contains("echo $((6*7))"), "{replay}");
    type_in(&mut again, terminal, "echo again-$((40+2))\r").await;
    output_until(&mut again, terminal, "again-42").await;
    assert_eq!(metric(&app, "codepod_ws_reattaches_total").await, 1.0);

    // Two tabs of the same user share the terminal; each sees what the other types.
    let mut other_tab = connect(&app, &cookie, &ws).await;
    control_until(&mut other_tab, |m| {
        matches!(m, ServerMessage::Terminals { .. })
    })
    .await;
    send(&mut other_tab, ClientMessage::Attach { terminal }).await;
    output_until(&mut other_tab, terminal, "again-42").await;
    type_in(&mut other_tab, terminal, "echo shared-$((1+1))\r").await;
    output_until(&mut again, terminal, "shared-2").await;

    // Closing a terminal ends its shell; it is gone from the list.
    send(&mut again, ClientMessage::Close { terminal }).await;
    let exited = control_until(&mut other_tab, |m| {
        matches!(m, ServerMessage::Exited { .. })
    })
    .await;
    assert!(matches!(exited, ServerMessage::Exited { terminal: t, .. } if t == terminal));
    let mut third = connect(&app, &cookie, &ws).await;
    assert_eq!(
        control_until(&mut third, |m| matches!(m, ServerMessage::Terminals { .. })).await,
        ServerMessage::Terminals { terminals: vec![] }
    );
}

#[tokio::test]
async fn bad_requests_get_errors_and_the_socket_goes_on() {
    let app = spawn_app_configured(|_| {}).await;
    let (cookie, ws) = user_with_workspace(&app, "ada").await;
    let mut socket = connect(&app, &cookie, &ws).await;
    let terminal = ready_with_terminal(&mut socket).await;

    socket.send(Ws::text("{\"type\":\"sudo\"}")).await.unwrap();
    let error = control_until(&mut socket, |m| matches!(m, ServerMessage::Error { .. })).await;
    assert!(
        matches!(error, ServerMessage::Error { ref code, .. } if code == "bad_request"),
        "{error:?}"
    );
    socket.send(Ws::binary(vec![0u8, 1])).await.unwrap();
    let error = control_until(&mut socket, |m| matches!(m, ServerMessage::Error { .. })).await;
    assert!(
        matches!(error, ServerMessage::Error { ref code, .. } if code == "bad_frame"),
        "{error:?}"
    );
    send(&mut socket, ClientMessage::Attach { terminal: 999 }).await;
    let error = control_until(&mut socket, |m| matches!(m, ServerMessage::Error { .. })).await;
    assert_eq!(
        error,
        ServerMessage::Error {
            code: "not_found".into(),
            message: "no such terminal".into(),
            terminal: Some(999)
        }
    );
    send(&mut socket, ClientMessage::Ping { nonce: 7 }).await;
    control_until(&mut socket, |m| *m == ServerMessage::Pong { nonce: 7 }).await;

    // A run reports how it ended.
    send(
        &mut socket,
        ClientMessage::Run {
            command: "exit 3".into(),
            cols: 80,
            rows: 24,
        },
    )
    .await;
    let ServerMessage::Opened {
        terminal: run,
        command,
    } = control_until(&mut socket, |m| matches!(m, ServerMessage::Opened { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(command.as_deref(), Some("exit 3"));
    send(&mut socket, ClientMessage::Attach { terminal: run }).await;
    let finished = control_until(&mut socket, |m| {
        matches!(m, ServerMessage::RunFinished { .. })
    })
    .await;
    assert!(
        matches!(finished, ServerMessage::RunFinished { terminal: t, exit_code: 3, .. } if t == run),
        "{finished:?}"
    );

    // After all that, the shell still answers.
    type_in(&mut socket, terminal, "echo fine-$((2*3))\r").await;
    output_until(&mut socket, terminal, "fine-6").await;
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_browser_that_stops_reading_a_flood_is_dropped_and_memory_stays_bounded() {
    let app = spawn_app_configured(|config| {
        config.ws_send_timeout = Duration::from_secs(1);
        config.ws_ping_interval = Duration::from_secs(1);
    })
    .await;
    let (cookie, ws) = user_with_workspace(&app, "ada").await;
    let mut socket = connect(&app, &cookie, &ws).await;
    let terminal = ready_with_terminal(&mut socket).await;
    type_in(&mut socket, terminal, "echo go-$((1+1))\r").await;
    output_until(&mut socket, terminal, "go-2").await;
    let before = rss_kib();

    // Flood, and stop reading: nothing on the server side may queue it all.
    type_in(&mut socket, terminal, "yes flood-flood-flood-flood\r").await;
    let mut dropped = false;
    for _ in 0..600 {
        if metric(&app, "codepod_ws_slow_client_drops_total").await >= 1.0 {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dropped, "a socket that stopped reading was never dropped");
    // Whatever was in flight is bounded by the socket buffers; then the close (or a reset).
    let mut received = 0usize;
    loop {
        match receive(&mut socket).await {
            Received::Data(_, data) => received += data.len(),
            Received::Closed(code) => {
                assert!(matches!(code, None | Some(4001)), "{code:?}");
                break;
            }
            Received::Control(_) => {}
        }
    }
    let grown = rss_kib().saturating_sub(before);
    assert!(
        grown < 128 * 1024,
        "server + test process grew by {grown} KiB under the flood"
    );
    assert!(
        received < 64 * 1024 * 1024,
        "{received} bytes were queued for a stalled client"
    );

    // The terminal survived; a new socket reattaches, interrupts the flood and goes on.
    let mut again = connect(&app, &cookie, &ws).await;
    control_until(&mut again, |m| matches!(m, ServerMessage::Terminals { .. })).await;
    send(&mut again, ClientMessage::Attach { terminal }).await;
    type_in(&mut again, terminal, "\x03").await;
    type_in(&mut again, terminal, "echo calm-$((3*3))\r").await;
    let mut tail: Vec<u8> = Vec::new();
    loop {
        match receive(&mut again).await {
            Received::Data(t, data) if t == terminal => {
                tail.extend_from_slice(&data);
                if tail.windows(6).any(|w| w == b"calm-9") {
                    break;
                }
                if tail.len() > 4096 {
                    tail.drain(..tail.len() - 64);
                }
            }
            // Detached while catching up with the flood: attach again, as the browser does.
            Received::Control(ServerMessage::Lagged { .. }) => {
                send(&mut again, ClientMessage::Attach { terminal }).await;
            }
            Received::Closed(code) => panic!("closed {code:?}"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_stopped_sandbox_closes_the_socket_with_a_code_that_says_do_not_reconnect() {
    let app = spawn_app_configured(|_| {}).await;
    let (cookie, ws) = user_with_workspace(&app, "ada").await;
    let mut socket = connect(&app, &cookie, &ws).await;
    ready_with_terminal(&mut socket).await;
    let stop = reqwest::Client::new()
        .post(app.url("/api/workspaces/stop"))
        .header("cookie", &cookie)
        .json(&json!({ "id": ws }))
        .send()
        .await
        .unwrap();
    assert_eq!(stop.status(), 200);
    control_until(&mut socket, |m| {
        matches!(m, ServerMessage::Status { status } if status.state == model::SandboxState::Stopped)
    })
    .await;
    assert_eq!(closed_with(&mut socket).await, Some(4000));
}

#[tokio::test]
async fn shutdown_closes_sockets_with_service_restart() {
    let app = spawn_app_configured(|_| {}).await;
    let (cookie, ws) = user_with_workspace(&app, "ada").await;
    let mut socket = connect(&app, &cookie, &ws).await;
    ready_with_terminal(&mut socket).await;
    let stopping = tokio::spawn(app.shutdown());
    assert_eq!(
        closed_with(&mut socket).await,
        Some(u16::from(CloseCode::Restart))
    );
    stopping.await.unwrap().unwrap();
}

#[tokio::test]
async fn saves_and_changes_made_in_the_terminal_reach_every_open_socket() {
    let app = spawn_app_configured(|_| {}).await;
    let (cookie, ws) = user_with_workspace(&app, "ada").await;
    let mut socket = connect(&app, &cookie, &ws).await;
    let mut other_tab = connect(&app, &cookie, &ws).await;
    let terminal = ready_with_terminal(&mut socket).await;
    control_until(&mut other_tab, |m| {
        matches!(m, ServerMessage::Terminals { .. })
    })
    .await;

    // A save through the API (another tab's Ctrl+S).
    let save = reqwest::Client::new()
        .post(app.url("/api/files/write"))
        .header("cookie", &cookie)
        .json(&json!({ "workspace": ws, "path": "main.py", "content": { "encoding": "utf8", "data": "print(2)\n" }, "base_version": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(save.status(), 200);
    for tab in [&mut socket, &mut other_tab] {
        assert_eq!(
            control_until(tab, |m| matches!(m, ServerMessage::FileChanged { .. })).await,
            ServerMessage::FileChanged {
                path: "main.py".into(),
                version: Some(2)
            }
        );
    }
    // A file made in the terminal, then removed.
    type_in(&mut socket, terminal, "echo hi > made.txt\r").await;
    assert_eq!(
        control_until(&mut other_tab, |m| matches!(
            m,
            ServerMessage::FileChanged { .. }
        ))
        .await,
        ServerMessage::FileChanged {
            path: "made.txt".into(),
            version: Some(1)
        }
    );
    type_in(&mut socket, terminal, "rm made.txt\r").await;
    assert_eq!(
        control_until(&mut other_tab, |m| matches!(
            m,
            ServerMessage::FileRemoved { .. }
        ))
        .await,
        ServerMessage::FileRemoved {
            path: "made.txt".into()
        }
    );
}
