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

use common::{TestApp, spawn_app_configured, ws_client::*};
use futures_util::SinkExt;
use std::time::Duration;

use model::{
    TerminalId,
    ws::{ACK_WINDOW, ClientMessage, ServerMessage},
};
use serde_json::json;
use tokio_tungstenite::tungstenite::{Message as Ws, protocol::frame::coding::CloseCode};

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
        matches!(error, ServerMessage::Error { code, .. } if code == model::ErrorCode::BadRequest),
        "{error:?}"
    );
    socket.send(Ws::binary(vec![0u8, 1])).await.unwrap();
    let error = control_until(&mut socket, |m| matches!(m, ServerMessage::Error { .. })).await;
    assert!(
        matches!(error, ServerMessage::Error { code, .. } if code == model::ErrorCode::BadFrame),
        "{error:?}"
    );
    send(
        &mut socket,
        ClientMessage::Attach {
            terminal: TerminalId(999),
        },
    )
    .await;
    let error = control_until(&mut socket, |m| matches!(m, ServerMessage::Error { .. })).await;
    assert_eq!(
        error,
        ServerMessage::Error {
            code: model::ErrorCode::NotFound,
            message: "no such terminal".into(),
            terminal: Some(TerminalId(999))
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

/// A socket held to the flow-control window from its first byte (`ack 0`), with a shell
/// at its prompt: the socket, the terminal, and the output bytes it has had so far.
async fn acknowledging_shell(app: &TestApp, cookie: &str, ws: &str) -> (Socket, TerminalId, u64) {
    let mut socket = connect(app, cookie, ws).await;
    send(&mut socket, ClientMessage::Ack { bytes: 0 }).await;
    let terminal = ready_with_terminal(&mut socket).await;
    type_in(&mut socket, terminal, "echo go-$((1+1))\r").await;
    let seen = output_until(&mut socket, terminal, "go-2\r\n").await.len() as u64;
    (socket, terminal, seen)
}

#[tokio::test]
async fn a_browser_that_acknowledges_output_is_sent_no_more_than_a_window_ahead() {
    let app = spawn_app_configured(|_| {}).await;
    let (cookie, ws) = user_with_workspace(&app, "ada").await;
    let (mut socket, terminal, mut seen) = acknowledging_shell(&app, &cookie, &ws).await;

    // 2.7 MB of output, read as fast as it comes but not acknowledged: it stops a window
    // (plus at most the one message in flight) past the last acknowledgement.
    type_in(
        &mut socket,
        terminal,
        "seq 1 400000; echo E\"\"ND-$((1+1))\r",
    )
    .await;
    let mut output = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_millis(1500), receive(&mut socket)).await;
        match next {
            Err(_) => break,
            Ok(Received::Data(t, data)) if t == terminal => output.extend_from_slice(&data),
            Ok(Received::Closed(code)) => panic!("closed {code:?}"),
            Ok(_) => {}
        }
    }
    let held = seen + output.len() as u64;
    assert!(
        (ACK_WINDOW..=ACK_WINDOW + 128 * 1024).contains(&held),
        "{held} bytes sent on an acknowledgement of 0 (window {ACK_WINDOW})"
    );
    assert!(!String::from_utf8_lossy(&output).contains("END-2"));
    // An older acknowledgement changes nothing.
    send(&mut socket, ClientMessage::Ack { bytes: 0 }).await;
    let more = tokio::time::timeout(Duration::from_millis(1000), receive(&mut socket)).await;
    assert!(
        !matches!(more, Ok(Received::Data(..))),
        "output after a stale acknowledgement"
    );

    // Acknowledging as it draws, the browser gets all of it, in order.
    seen = held;
    send(&mut socket, ClientMessage::Ack { bytes: seen }).await;
    while !output.windows(5).any(|w| w == b"END-2") {
        match receive(&mut socket).await {
            Received::Data(t, data) if t == terminal => {
                seen += data.len() as u64;
                output.extend_from_slice(&data);
                send(&mut socket, ClientMessage::Ack { bytes: seen }).await;
            }
            Received::Closed(code) => panic!("closed {code:?}"),
            _ => {}
        }
    }
    let text = String::from_utf8_lossy(&output);
    let start = text.find("1\r\n2\r\n3\r\n").unwrap();
    let numbers: Vec<u32> = text[start..]
        .split("\r\n")
        .filter_map(|line| line.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 400_000);
    assert!(numbers.iter().zip(1..).all(|(n, i)| *n == i));
}

#[tokio::test]
async fn a_browser_that_stops_acknowledging_is_detached_and_the_shell_goes_on() {
    let app = spawn_app_configured(|_| {}).await;
    let (cookie, ws) = user_with_workspace(&app, "ada").await;
    let (mut socket, terminal, mut seen) = acknowledging_shell(&app, &cookie, &ws).await;

    // Another tab that reads everything (and acknowledges nothing, so it is not held).
    let mut other = connect(&app, &cookie, &ws).await;
    control_until(&mut other, |m| matches!(m, ServerMessage::Terminals { .. })).await;
    send(&mut other, ClientMessage::Attach { terminal }).await;
    output_until(&mut other, terminal, "go-2").await;

    // 6.9 MB of output (more than every buffer on the way holds) is held at the first socket's window and it acknowledges nothing more: the
    // shell waits for it until the agent's stall time (10 s) has passed, then detaches it
    // and goes on — the other tab sees the end.
    type_in(
        &mut socket,
        terminal,
        "seq 1 1000000; echo E\"\"ND-$((1+1))\r",
    )
    .await;
    let started = std::time::Instant::now();
    let other_tab = tokio::spawn(async move {
        let mut tail = Vec::new();
        while !tail.windows(5).any(|w| w == b"END-2") {
            match tokio::time::timeout(Duration::from_secs(60), receive(&mut other)).await {
                Ok(Received::Data(_, data)) => {
                    tail.extend_from_slice(&data);
                    if tail.len() > 4096 {
                        tail.drain(..tail.len() - 64);
                    }
                }
                Ok(Received::Closed(code)) => panic!("the other tab closed {code:?}"),
                Ok(Received::Control(_)) => {}
                Err(_) => panic!("the shell is still held after a minute"),
            }
        }
    });
    // (Reading on meanwhile, which answers the server's pings.)
    while !other_tab.is_finished() {
        if let Ok(received) =
            tokio::time::timeout(Duration::from_millis(200), receive(&mut socket)).await
        {
            match received {
                Received::Data(_, data) => seen += data.len() as u64,
                Received::Closed(code) => panic!("closed {code:?}"),
                Received::Control(_) => {}
            }
        }
    }
    other_tab.await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "the shell went on after {:?}, before the stall time",
        started.elapsed()
    );

    // Acknowledging again, it gets what was on the way, then `lagged`.
    send(&mut socket, ClientMessage::Ack { bytes: seen }).await;
    loop {
        match receive(&mut socket).await {
            Received::Data(_, data) => {
                seen += data.len() as u64;
                send(&mut socket, ClientMessage::Ack { bytes: seen }).await;
            }
            Received::Control(ServerMessage::Lagged { .. }) => break,
            Received::Control(_) => {}
            Received::Closed(code) => panic!("closed {code:?} before lagged"),
        }
    }
    // Attaching again replays the end it missed.
    send(&mut socket, ClientMessage::Attach { terminal }).await;
    let mut replay = Vec::new();
    while !replay.windows(5).any(|w| w == b"END-2") {
        match receive(&mut socket).await {
            Received::Data(_, data) => {
                seen += data.len() as u64;
                replay.extend_from_slice(&data);
                send(&mut socket, ClientMessage::Ack { bytes: seen }).await;
            }
            Received::Closed(code) => panic!("closed {code:?} during the replay"),
            Received::Control(_) => {}
        }
    }
    let replay = String::from_utf8_lossy(&replay);
    let tail = &replay[replay.len().saturating_sub(200)..];
    assert!(replay.contains("\r\n1000000\r\n"), "{tail:?}");
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

/// Attaches to `terminal` and reads its replay: every byte before `attached`, which must
/// come (and nothing of the terminal after it until something is typed).
async fn replay_of(socket: &mut Socket, terminal: TerminalId) -> String {
    send(socket, ClientMessage::Attach { terminal }).await;
    let mut replay = Vec::new();
    loop {
        match receive(socket).await {
            Received::Data(t, data) if t == terminal => replay.extend(data),
            Received::Control(ServerMessage::Attached { terminal: t }) if t == terminal => {
                return String::from_utf8_lossy(&replay).into_owned();
            }
            Received::Closed(code) => panic!("closed ({code:?}) during a replay"),
            _ => {}
        }
    }
}

/// The attack: after a program that queries the terminal (vim asks for the device
/// attributes, the cursor position, the colours) had run once, every reload replayed its
/// queries, xterm.js answered them again into the live shell (`2RR0;276;0c10;rgb:…` at the
/// prompt), and the next command failed. Now the server says where a replay ends, so a
/// terminal answers only live queries: this client answers as xterm.js does, and never
/// during a replay.
#[tokio::test]
async fn a_replay_ends_with_attached_and_replayed_queries_never_reach_the_shell() {
    let app = spawn_app_configured(|_| {}).await;
    let (cookie, ws) = user_with_workspace(&app, "ada").await;
    let mut socket = connect(&app, &cookie, &ws).await;
    let terminal = ready_with_terminal(&mut socket).await;
    control_until(
        &mut socket,
        |m| matches!(m, ServerMessage::Attached { terminal: t } if *t == terminal),
    )
    .await;
    // A program asks for the device attributes and reads the answer, as vim does; the live
    // terminal answers.
    type_in(
        &mut socket,
        terminal,
        "printf '\\033[c'; read -rs -d c answer; echo \"answered-${#answer}\"\r",
    )
    .await;
    output_until(&mut socket, terminal, "\x1b[c").await;
    type_in(&mut socket, terminal, "\x1b[?1;2c").await;
    output_until(&mut socket, terminal, "answered-6").await;

    for _ in 0..3 {
        // A reload: a new socket, the scrollback replayed — query included.
        drop(socket);
        socket = connect(&app, &cookie, &ws).await;
        control_until(&mut socket, |m| {
            matches!(m, ServerMessage::Terminals { .. })
        })
        .await;
        let replay = replay_of(&mut socket, terminal).await;
        assert!(
            replay.contains("\x1b[c"),
            "the replay holds the query: {replay:?}"
        );
        assert!(replay.contains("answered-6"), "{replay:?}");
        // Nothing follows the replay unasked: the shell sits at its prompt.
        let quiet = tokio::time::timeout(Duration::from_millis(300), receive(&mut socket)).await;
        assert!(
            !matches!(quiet, Ok(Received::Data(t, _)) if t == terminal),
            "output after the replay: {quiet:?}"
        );
    }
    type_in(&mut socket, terminal, "echo ok-$((1+1))\r").await;
    let clean = output_until(&mut socket, terminal, "ok-2").await;
    assert!(!clean.contains("command not found"), "{clean:?}");
}

/// Typing in the editor counts as activity: a socket's `activity` pushes the idle stop back
/// as terminal traffic does (a 30-minute editing session used to end with the sandbox
/// culled).
#[tokio::test]
async fn editor_activity_on_the_socket_pushes_the_idle_stop_back() {
    let app = spawn_app_configured(|_| {}).await;
    let (cookie, ws) = user_with_workspace(&app, "ada").await;
    let ada = app.browser_with_cookie(&cookie);
    let mut socket = connect(&app, &cookie, &ws).await;
    control_until(&mut socket, |m| {
        matches!(m, ServerMessage::Terminals { .. })
    })
    .await;
    let deadline = || async {
        ada.post("/api/workspaces/status", json!({ "id": ws }))
            .await
            .1["idle_deadline"]
            .as_i64()
            .unwrap()
    };
    // The sandbox's own start-up (the fill's echoes) counts as activity: let it settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = deadline().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    send(&mut socket, ClientMessage::Activity).await;
    // Answered by nothing; a ping after it shows it was read.
    send(&mut socket, ClientMessage::Ping { nonce: 9 }).await;
    control_until(&mut socket, |m| {
        matches!(m, ServerMessage::Pong { nonce: 9 })
    })
    .await;
    let after = deadline().await;
    assert!(after >= before + 1400, "{before} → {after}");
}

/// Signs `username` in again (another browser): its session cookie.
async fn another_session(app: &TestApp, username: &str) -> String {
    let response = app
        .browser()
        .post_raw(
            "/api/users/login",
            json!({ "login": username, "password": common::PASSWORD }),
        )
        .await;
    assert_eq!(response.status(), 200);
    response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// A socket ready to use (its sandbox running, its terminals listed).
async fn ready_socket(app: &TestApp, cookie: &str, ws: &str) -> Socket {
    let mut socket = connect(app, cookie, ws).await;
    control_until(&mut socket, |m| {
        matches!(m, ServerMessage::Terminals { .. })
    })
    .await;
    socket
}

/// The attack: after "sign out everywhere else", a password change or an account deletion,
/// a terminal already open kept running commands — the session was checked only at the
/// upgrade. Now every socket of an ended session closes with 4003 (the IDE says "signed out"
/// and offers to sign in), and the socket of the session that did it stays.
#[tokio::test]
async fn sockets_close_when_their_session_ends_anywhere() {
    let app = spawn_app_configured(|_| {}).await;
    let (mine, ws) = user_with_workspace(&app, "ada").await;
    let me = app.browser_with_cookie(&mine);

    // Sign out everywhere else: the other browser's socket closes, this one stays.
    let other = another_session(&app, "ada").await;
    let mut theirs = ready_socket(&app, &other, &ws).await;
    let mut ours = ready_socket(&app, &mine, &ws).await;
    assert_eq!(me.post("/api/users/logout_others", json!({})).await.0, 200);
    assert_eq!(
        closed_with(&mut theirs).await,
        Some(model::ws::close::SIGNED_OUT)
    );
    send(&mut ours, ClientMessage::Ping { nonce: 1 }).await;
    control_until(&mut ours, |m| matches!(m, ServerMessage::Pong { nonce: 1 })).await;

    // A password change ends the other sessions too.
    let other = another_session(&app, "ada").await;
    let mut theirs = ready_socket(&app, &other, &ws).await;
    let (status, body) = me
        .post(
            "/api/users/password",
            json!({ "current_password": common::PASSWORD, "new_password": "another long password" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        closed_with(&mut theirs).await,
        Some(model::ws::close::SIGNED_OUT)
    );

    // Signing out ends this session's sockets.
    assert_eq!(me.post("/api/users/logout", json!({})).await.0, 200);
    assert_eq!(
        closed_with(&mut ours).await,
        Some(model::ws::close::SIGNED_OUT)
    );

    // Deleting the account ends every session's sockets (and stops the sandboxes).
    let (bob, bobs) = user_with_workspace(&app, "bob").await;
    let mut first = ready_socket(&app, &bob, &bobs).await;
    let second_cookie = another_session(&app, "bob").await;
    let mut second = ready_socket(&app, &second_cookie, &bobs).await;
    let (status, _) = app
        .browser_with_cookie(&bob)
        .post("/api/users/delete", json!({ "password": common::PASSWORD }))
        .await;
    assert_eq!(status, 200);
    for socket in [&mut first, &mut second] {
        let code = closed_with(socket).await;
        assert!(
            code == Some(model::ws::close::SIGNED_OUT)
                || code == Some(model::ws::close::SANDBOX_STOPPED),
            "{code:?}"
        );
    }
}

/// A session that ends where this server cannot hear it (another replica, its expiry) is
/// found by the socket's periodic check.
#[tokio::test]
async fn a_socket_finds_a_session_ended_behind_its_back() {
    let app = spawn_app_configured(|config| {
        config.sessions.idle_timeout = Duration::from_secs(3);
    })
    .await;
    let (cookie, ws) = user_with_workspace(&app, "ada").await;
    let mut socket = ready_socket(&app, &cookie, &ws).await;
    // Nothing touches the session (a socket is not a request): it expires in 3 s, and the
    // next check (every 10 s) closes the socket.
    assert_eq!(
        closed_with(&mut socket).await,
        Some(model::ws::close::SIGNED_OUT)
    );
}
