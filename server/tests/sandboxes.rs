//! Workspace sandboxes through the API: start fills the sandbox from the database, saves
//! reach it, status and keepalive report deadlines, stop and delete end it, the reaper culls
//! idle ones, and nobody but the owner can touch it. Real bubblewrap, real agent.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a failed test"
)]

mod common;

use common::{TestApp, spawn_app_configured};
use model::{TerminalId, WorkspacePath};
use sandbox::{
    AgentConnection, Transport,
    agent::{TerminalEvent, TerminalSession},
};
use serde_json::json;

fn agent_socket(app: &TestApp, workspace: &str) -> std::path::PathBuf {
    app.data_dir()
        .join("sandboxes")
        .join(workspace)
        .join("agent.sock")
}

async fn agent(app: &TestApp, workspace: &str) -> Transport {
    Transport::unix(&agent_socket(app, workspace))
        .await
        .unwrap()
}

/// A file's content as the sandbox has it.
async fn read_in_sandbox(app: &TestApp, workspace: &str, path: &str) -> Vec<u8> {
    let control = AgentConnection::open(agent(app, workspace).await)
        .await
        .unwrap();
    let content = control
        .read_file(&WorkspacePath::parse(path).unwrap())
        .await
        .unwrap();
    control.close().await;
    content
}

/// A shell in the sandbox, as a user's terminal has it.
async fn shell(app: &TestApp, workspace: &str) -> (TerminalSession, TerminalId) {
    let mut session = TerminalSession::open(agent(app, workspace).await)
        .await
        .unwrap();
    session.sender.open(80, 24).await.unwrap();
    loop {
        match session.events.next().await.unwrap().unwrap() {
            TerminalEvent::Opened { terminal, .. } => return (session, terminal),
            _ => continue,
        }
    }
}

#[tokio::test]
async fn start_fills_the_sandbox_from_the_database_and_saves_reach_it() {
    server::telemetry::init(&server::LogConfig {
        filter: "warn".into(),
        format: server::LogFormat::Text,
    });
    let app = spawn_app_configured(|_| {}).await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    ada.post("/api/files/write", json!({ "workspace": ws, "path": "pkg/data.bin", "content": { "encoding": "base64", "data": "AP8=" } })).await;
    ada.post(
        "/api/files/mkdir",
        json!({ "workspace": ws, "path": "empty" }),
    )
    .await;

    let (status, before) = ada
        .post("/api/workspaces/status", json!({ "id": ws }))
        .await;
    assert_eq!((status, before["state"].as_str()), (200, Some("stopped")));
    let (status, started) = ada.post("/api/workspaces/start", json!({ "id": ws })).await;
    assert_eq!(
        (status, started["state"].as_str()),
        (200, Some("ready")),
        "{started}"
    );
    assert!(started["idle_deadline"].as_i64().unwrap() > started["started_at"].as_i64().unwrap());

    let (_, main) = ada
        .post(
            "/api/files/read",
            json!({ "workspace": ws, "path": "main.py" }),
        )
        .await;
    let expected = main["data"].as_str().unwrap().as_bytes().to_vec();
    assert_eq!(read_in_sandbox(&app, &ws, "main.py").await, expected);
    assert_eq!(
        read_in_sandbox(&app, &ws, "pkg/data.bin").await,
        vec![0, 255]
    );

    // A save goes to the database, then into the running sandbox.
    let (status, _) = ada
        .post("/api/files/write", json!({ "workspace": ws, "path": "main.py", "content": { "encoding": "utf8", "data": "print('saved')\n" }, "base_version": 1 }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        read_in_sandbox(&app, &ws, "main.py").await,
        b"print('saved')\n".to_vec()
    );
    ada.post(
        "/api/files/move",
        json!({ "workspace": ws, "from": "pkg", "to": "lib" }),
    )
    .await;
    assert_eq!(
        read_in_sandbox(&app, &ws, "lib/data.bin").await,
        vec![0, 255]
    );

    // Starting again reuses the running sandbox.
    let (_, again) = ada.post("/api/workspaces/start", json!({ "id": ws })).await;
    assert_eq!(again["started_at"], started["started_at"]);

    let (status, stopped) = ada.post("/api/workspaces/stop", json!({ "id": ws })).await;
    assert_eq!((status, stopped["state"].as_str()), (200, Some("stopped")));
    assert!(!agent_socket(&app, &ws).exists());
    // The files are still in the database, and the next start recovers them.
    let (_, restarted) = ada.post("/api/workspaces/start", json!({ "id": ws })).await;
    assert_eq!(restarted["state"], "ready");
    assert_eq!(
        read_in_sandbox(&app, &ws, "main.py").await,
        b"print('saved')\n".to_vec()
    );
    let metrics = ada.metrics().await;
    assert!(
        metrics.contains("codepod_sandbox_starts_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"codepod_sandbox_culls_total{reason="requested"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("codepod_sandbox_active 1"), "{metrics}");
}

#[tokio::test]
async fn keepalive_pushes_the_idle_deadline_back() {
    let app = spawn_app_configured(|_| {}).await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    let (_, started) = ada.post("/api/workspaces/start", json!({ "id": ws })).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (status, kept) = ada
        .post("/api/workspaces/keepalive", json!({ "id": ws }))
        .await;
    assert_eq!(status, 200);
    assert!(
        kept["idle_deadline"].as_i64() > started["idle_deadline"].as_i64(),
        "{kept} vs {started}"
    );
    assert_eq!(
        kept["max_deadline"], started["max_deadline"],
        "the lifetime is not extended"
    );
}

#[tokio::test]
async fn the_reaper_stops_an_idle_sandbox() {
    let app = spawn_app_configured(|config| {
        config.sandbox.idle_timeout = std::time::Duration::from_millis(300);
        config.sandbox.reaper_interval = std::time::Duration::from_millis(100);
    })
    .await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    assert_eq!(
        ada.post("/api/workspaces/start", json!({ "id": ws }))
            .await
            .1["state"],
        "ready"
    );
    let mut state = String::new();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        state = ada
            .post("/api/workspaces/status", json!({ "id": ws }))
            .await
            .1["state"]
            .as_str()
            .unwrap()
            .to_owned();
        if state == "stopped" {
            break;
        }
    }
    assert_eq!(state, "stopped");
    let metrics = ada.metrics().await;
    assert!(
        metrics.contains(r#"codepod_sandbox_culls_total{reason="idle"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn deleting_a_workspace_stops_its_sandbox() {
    let app = spawn_app_configured(|_| {}).await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    ada.post("/api/workspaces/start", json!({ "id": ws })).await;
    assert!(agent_socket(&app, &ws).exists());
    assert_eq!(
        ada.post("/api/workspaces/delete", json!({ "id": ws }))
            .await
            .0,
        200
    );
    assert!(!agent_socket(&app, &ws).exists());
}

#[tokio::test]
async fn another_user_cannot_start_stop_or_see_a_sandbox() {
    let app = spawn_app_configured(|_| {}).await;
    let ada = app.signed_up("ada").await;
    let eve = app.signed_up("eve").await;
    let ws = ada.workspace("demo").await;
    ada.post("/api/workspaces/start", json!({ "id": ws })).await;
    for path in [
        "/api/workspaces/start",
        "/api/workspaces/stop",
        "/api/workspaces/status",
        "/api/workspaces/keepalive",
    ] {
        let (status, error) = eve.post(path, json!({ "id": ws })).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
    assert_eq!(
        ada.post("/api/workspaces/status", json!({ "id": ws }))
            .await
            .1["state"],
        "ready"
    );
}

#[tokio::test]
async fn shutdown_stops_every_sandbox() {
    let app = spawn_app_configured(|_| {}).await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    ada.post("/api/workspaces/start", json!({ "id": ws })).await;
    let socket = agent_socket(&app, &ws);
    assert!(socket.exists());
    app.shutdown().await.unwrap();
    assert!(!socket.exists());
}

#[tokio::test]
async fn a_file_made_in_the_terminal_reaches_the_database() {
    let app = spawn_app_configured(|_| {}).await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    assert_eq!(
        ada.post("/api/workspaces/start", json!({ "id": ws }))
            .await
            .1["state"],
        "ready"
    );
    // Typed into a real shell in the sandbox, as a user would.
    let (mut agent, terminal) = shell(&app, &ws).await;
    let typed = b"echo hi > made.txt && mkdir -p out && printf 'x' > out/r.txt && mkdir -p __pycache__ && echo c > __pycache__/m.pyc\r";
    agent.sender.input(terminal, typed).await.unwrap();
    let mut paths = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (_, tree) = ada
            .post("/api/files/tree", json!({ "workspace": ws }))
            .await;
        paths = tree
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>();
        if paths.iter().any(|p| p == "out/r.txt") && paths.iter().any(|p| p == "made.txt") {
            break;
        }
    }
    assert!(
        paths.contains(&"made.txt".to_owned()) && paths.contains(&"out/r.txt".to_owned()),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.contains("__pycache__")),
        "ignored paths stay out: {paths:?}"
    );
    let (_, made) = ada
        .post(
            "/api/files/read",
            json!({ "workspace": ws, "path": "made.txt" }),
        )
        .await;
    assert_eq!(made["data"], "hi\n");
    // A save from the API is not echoed back as a new version.
    let (_, saved) = ada
        .post("/api/files/write", json!({ "workspace": ws, "path": "made.txt", "content": { "encoding": "utf8", "data": "edited\n" }, "base_version": made["version"] }))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_, after) = ada
        .post(
            "/api/files/read",
            json!({ "workspace": ws, "path": "made.txt" }),
        )
        .await;
    assert_eq!(
        (after["data"].as_str(), after["version"].as_i64()),
        (Some("edited\n"), saved["version"].as_i64())
    );
    // Removing it in the sandbox removes it from the database.
    agent
        .sender
        .input(terminal, b"rm made.txt\r")
        .await
        .unwrap();
    let mut gone = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if ada
            .post(
                "/api/files/read",
                json!({ "workspace": ws, "path": "made.txt" }),
            )
            .await
            .0
            == 404
        {
            gone = true;
            break;
        }
    }
    assert!(gone);
}

/// Found by the sync benchmark: saves in quick succession were each reported back by the
/// sandbox's watcher, sometimes after the next save had landed, and the stale content was
/// written over the newer save. Our own writes coming back must never count as changes.
#[tokio::test]
async fn rapid_saves_are_not_overwritten_by_their_own_echoes() {
    let app = spawn_app_configured(|_| {}).await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    let (status, _) = ada.post("/api/workspaces/start", json!({ "id": ws })).await;
    assert_eq!(status, 200);
    let mut version = 1;
    for i in 0..200 {
        let (status, entry) = ada
            .post(
                "/api/files/write",
                json!({ "workspace": ws, "path": "main.py", "content": { "encoding": "utf8", "data": format!("print({i})\n") }, "base_version": version }),
            )
            .await;
        assert_eq!(status, 200, "save {i}: {entry}");
        version = entry["version"].as_i64().unwrap();
    }
    assert_eq!(version, 201);
    // Give the watcher (100 ms debounce) ample time to report everything it saw.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (_, read) = ada
        .post(
            "/api/files/read",
            json!({ "workspace": ws, "path": "main.py" }),
        )
        .await;
    assert_eq!(read["data"], "print(199)\n");
    assert_eq!(read["version"], 201, "an echo was saved as a new version");
    assert_eq!(
        read_in_sandbox(&app, &ws, "main.py").await,
        b"print(199)\n".to_vec()
    );
}

/// The attack: one user had 8 sandboxes of 1 GiB running at once, and a server any number
/// (50 workspaces would ask for 50 GiB of a 23 GiB host). Now a user's next start past the
/// limit is a 429 with a sentence the IDE shows, the server's past its limit a 503, and
/// nothing was started for either.
#[tokio::test]
async fn sandboxes_past_a_users_or_the_servers_limit_are_refused_with_a_reason() {
    let app = spawn_app_configured(|config| {
        config.sandbox.max_per_user = 2;
        config.sandbox.max_total = Some(3);
    })
    .await;
    let (cookie, first) = common::ws_client::user_with_workspace(&app, "ada").await;
    let ada = app.browser_with_cookie(&cookie);
    let mut ids = vec![first];
    for name in ["two", "three"] {
        ids.push(ada.workspace(name).await);
    }
    for ws in &ids[..2] {
        let (status, body) = ada.post("/api/workspaces/start", json!({ "id": ws })).await;
        assert_eq!(
            (status, body["state"].as_str()),
            (200, Some("ready")),
            "{body}"
        );
    }
    let (status, body) = ada
        .post("/api/workspaces/start", json!({ "id": ids[2] }))
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "too_many_sandboxes");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("stop another workspace first"),
        "{body}"
    );
    assert!(!agent_socket(&app, &ids[2]).exists(), "nothing started");
    // Its IDE tab hears the same sentence.
    let mut socket = common::ws_client::connect(&app, &cookie, &ids[2]).await;
    let failed = common::ws_client::control_until(&mut socket, |m| {
        matches!(m, model::ws::ServerMessage::Status { status } if status.state == model::SandboxState::Failed)
    })
    .await;
    let model::ws::ServerMessage::Status { status } = failed else {
        unreachable!()
    };
    assert!(
        status
            .error
            .unwrap()
            .contains("stop another workspace first"),
        "the IDE is told why"
    );
    // Stopping one makes room.
    ada.post("/api/workspaces/stop", json!({ "id": ids[0] }))
        .await;
    let (status, _) = ada
        .post("/api/workspaces/start", json!({ "id": ids[2] }))
        .await;
    assert_eq!(status, 200);
    // The server's own limit: a second user's second sandbox is one too many (3 running).
    let bob = app.signed_up("bob").await;
    let (bob_one, bob_two) = (bob.workspace("one").await, bob.workspace("two").await);
    let (status, _) = bob
        .post("/api/workspaces/start", json!({ "id": bob_one }))
        .await;
    assert_eq!(status, 200);
    let (status, body) = bob
        .post("/api/workspaces/start", json!({ "id": bob_two }))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    let metrics = ada.metrics().await;
    for limit in ["per_user", "total"] {
        assert!(
            metrics.contains(&format!(
                "codepod_sandbox_refusals_total{{limit=\"{limit}\"}}"
            )),
            "{metrics}"
        );
    }
}

/// The attack: `kill -STOP` on one's own agent made every save hang for ever (and pin a
/// file descriptor each). Now a save commits to the database and returns once the mirror
/// into the silent sandbox has timed out.
#[tokio::test]
async fn a_stopped_agent_cannot_hang_saves() {
    let app = spawn_app_configured(|_| {}).await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    ada.post("/api/workspaces/start", json!({ "id": ws })).await;
    let (mut shell, terminal) = shell(&app, &ws).await;
    // The shell's parent is the agent.
    shell
        .sender
        .input(terminal, b"kill -STOP $PPID\r")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let save = ada.post("/api/files/write", json!({ "workspace": ws, "path": "saved.py", "content": { "encoding": "utf8", "data": "print('saved while stopped')\n" } }));
    let (status, body) = tokio::time::timeout(std::time::Duration::from_secs(60), save)
        .await
        .expect("the save returns");
    assert_eq!(status, 200, "{body}");
    let (_, read) = ada
        .post(
            "/api/files/read",
            json!({ "workspace": ws, "path": "saved.py" }),
        )
        .await;
    assert_eq!(read["data"], "print('saved while stopped')\n");
    let stop = ada.post("/api/workspaces/stop", json!({ "id": ws }));
    let (status, _) = tokio::time::timeout(std::time::Duration::from_secs(60), stop)
        .await
        .expect("the stopped sandbox can be stopped");
    assert_eq!(status, 200);
}

#[tokio::test]
async fn deleting_an_account_stops_its_sandboxes_at_once() {
    let app = spawn_app_configured(|_| {}).await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    ada.post("/api/workspaces/start", json!({ "id": ws })).await;
    assert!(agent_socket(&app, &ws).exists());
    let (status, _) = ada
        .post("/api/users/delete", json!({ "password": common::PASSWORD }))
        .await;
    assert_eq!(status, 200);
    assert!(!agent_socket(&app, &ws).exists(), "its sandbox still runs");
}

/// The agent killed (by its user, by the OOM killer): the sandbox is gone with it. The next
/// start notices that the sandbox the registry holds no longer answers, starts a new one
/// and fills it from the database — nothing saved is lost.
#[tokio::test]
async fn a_killed_agent_is_replaced_by_a_sandbox_filled_from_the_database() {
    let app = spawn_app_configured(|_| {}).await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    ada.post("/api/workspaces/start", json!({ "id": ws })).await;
    let (status, _) = ada
        .post("/api/files/write", json!({ "workspace": ws, "path": "kept.py", "content": { "encoding": "utf8", "data": "print('kept')\n" } }))
        .await;
    assert_eq!(status, 200);
    let (mut shell, terminal) = shell(&app, &ws).await;
    // The shell's parent is the agent.
    shell
        .sender
        .input(terminal, b"kill -KILL $PPID\r")
        .await
        .unwrap();
    // Its sessions end.
    while let Some(Ok(_)) = shell.events.next().await {}
    let (status, started) = ada.post("/api/workspaces/start", json!({ "id": ws })).await;
    assert_eq!(
        (status, started["state"].as_str()),
        (200, Some("ready")),
        "{started}"
    );
    assert_eq!(
        read_in_sandbox(&app, &ws, "kept.py").await,
        b"print('kept')\n".to_vec()
    );
    // And it works: a shell runs in it.
    let (mut again, terminal) = self::shell(&app, &ws).await;
    again.sender.attach(terminal).await.unwrap();
    again
        .sender
        .input(terminal, b"cat kept.py\r")
        .await
        .unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("print('kept')") {
        match again.events.next().await.unwrap().unwrap() {
            TerminalEvent::Output { data, .. } => seen.extend(data),
            _ => continue,
        }
    }
}
