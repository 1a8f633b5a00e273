//! A WebSocket client for the IDE socket, shared by the WebSocket tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a failure is a failed test"
)]

use std::time::Duration;

use super::{PASSWORD, TestApp};
use futures_util::{SinkExt, StreamExt};
use model::ws::{ClientMessage, ServerMessage, TerminalId, decode_data, encode_data};
use serde_json::json;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, Message as Ws, client::IntoClientRequest},
};

pub type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Registers `username` and creates a workspace; returns the session cookie and its id.
pub async fn user_with_workspace(app: &TestApp, username: &str) -> (String, String) {
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

pub fn request(
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
pub async fn refused(request: tungstenite::handshake::client::Request) -> u16 {
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

pub async fn connect(app: &TestApp, cookie: &str, workspace: &str) -> Socket {
    let origin = app.url("");
    let (socket, response) =
        tokio_tungstenite::connect_async(request(app, workspace, Some(cookie), Some(&origin)))
            .await
            .unwrap();
    assert_eq!(response.status(), 101);
    socket
}

pub async fn send(socket: &mut Socket, message: ClientMessage) {
    socket
        .send(Ws::text(serde_json::to_string(&message).unwrap()))
        .await
        .unwrap();
}

pub async fn type_in(socket: &mut Socket, terminal: TerminalId, keys: &str) {
    socket
        .send(Ws::binary(encode_data(terminal, keys.as_bytes())))
        .await
        .unwrap();
}

/// What the server sent next: a control message or terminal bytes.
#[derive(Debug)]
pub enum Received {
    Control(ServerMessage),
    Data(TerminalId, Vec<u8>),
    Closed(Option<u16>),
}

pub async fn receive(socket: &mut Socket) -> Received {
    // One deadline for the message, not per frame: pings (every 20 s) are skipped here.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let next = tokio::time::timeout_at(deadline, socket.next())
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
pub async fn control_until(
    socket: &mut Socket,
    want: impl Fn(&ServerMessage) -> bool,
) -> ServerMessage {
    // The last status seen, for the failure message: it says why a start failed.
    let mut status = None;
    loop {
        match receive(socket).await {
            Received::Control(message) if want(&message) => return message,
            Received::Control(ServerMessage::Status { status: seen }) => status = Some(seen),
            Received::Closed(code) => {
                panic!("closed ({code:?}) while waiting; last status: {status:?}")
            }
            _ => {}
        }
    }
}

/// Reads terminal output until it contains `needle`; returns everything read.
pub async fn output_until(socket: &mut Socket, terminal: TerminalId, needle: &str) -> String {
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
pub async fn ready_with_terminal(socket: &mut Socket) -> TerminalId {
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

pub async fn closed_with(socket: &mut Socket) -> Option<u16> {
    loop {
        if let Received::Closed(code) = receive(socket).await {
            return code;
        }
    }
}

pub async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.metrics().await;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}
