//! Sync that converges: whatever happens in the sandbox — a burst of 20,000 files, an
//! overflowing watcher, a file larger than a change event carries, more entries than the
//! workspace may hold — the database ends up equal to the sandbox's workspace within the
//! limits, and the user is told what was not kept. Real server, real agent, real bubblewrap.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failure is a failed test"
)]

mod common;

use std::time::{Duration, Instant};

use common::{
    TestApp, spawn_app_configured,
    ws_client::{self, Socket, control_until, output_until, type_in},
};
use model::ws::ServerMessage;
use serde_json::{Value, json};

/// A signed-up user with a running workspace, and a socket with a shell in it.
async fn shell_in_workspace(app: &TestApp) -> (common::Browser, String, Socket, model::TerminalId) {
    let (cookie, ws) = ws_client::user_with_workspace(app, "ada").await;
    let ada = app.browser_with_cookie(&cookie);
    let mut socket = ws_client::connect(app, &cookie, &ws).await;
    let terminal = ws_client::ready_with_terminal(&mut socket).await;
    (ada, ws, socket, terminal)
}

/// Runs `command` in the shell and waits for it to finish.
async fn run(socket: &mut Socket, terminal: model::TerminalId, command: &str) {
    type_in(
        socket,
        terminal,
        &format!("{command}; echo finished-$((40+2))\r"),
    )
    .await;
    output_until(socket, terminal, "finished-42").await;
}

/// The stored tree: (path, size) of every entry.
async fn tree(ada: &common::Browser, ws: &str) -> Vec<(String, i64)> {
    let (status, tree) = ada
        .post("/api/files/tree", json!({ "workspace": ws }))
        .await;
    assert_eq!(status, 200, "{tree}");
    tree.as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["path"].as_str().unwrap().to_owned(),
                entry["size"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

/// Polls the stored tree until `done` holds for it, for at most `within`.
async fn until_tree(
    ada: &common::Browser,
    ws: &str,
    within: Duration,
    done: impl Fn(&[(String, i64)]) -> bool,
) -> Vec<(String, i64)> {
    let deadline = Instant::now() + within;
    loop {
        let entries = tree(ada, ws).await;
        if done(&entries) || Instant::now() > deadline {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn read(ada: &common::Browser, ws: &str, path: &str) -> (u16, Value) {
    ada.post("/api/files/read", json!({ "workspace": ws, "path": path }))
        .await
}

fn in_burst(entries: &[(String, i64)]) -> usize {
    entries
        .iter()
        .filter(|(path, _)| path.starts_with("burst/"))
        .count()
}

/// The attack: 10,000 files made in the terminal at once overflowed the watcher, whose lag
/// ended the sync for good — none of them, nor any later edit, was ever saved. Now a lag
/// (the agent's queue, the kernel's) is followed by a resync from a snapshot.
#[tokio::test]
async fn a_burst_of_twenty_thousand_files_and_a_later_edit_all_reach_the_database() {
    let app = spawn_app_configured(|config| {
        config.limits.max_files_per_workspace = 25_000;
    })
    .await;
    let (ada, ws, mut socket, terminal) = shell_in_workspace(&app).await;
    let started = Instant::now();
    run(
        &mut socket,
        terminal,
        "python3 -c \"import os; os.mkdir('burst'); [open(f'burst/f{i}.txt', 'w').write(str(i)) for i in range(20000)]\"; sleep 1; echo edited > burst/f7.txt",
    )
    .await;
    let entries = until_tree(&ada, &ws, Duration::from_secs(240), |entries| {
        in_burst(entries) == 20_000 && entries.contains(&("burst/f7.txt".to_owned(), 7))
    })
    .await;
    eprintln!(
        "20,000 files in the database {:.1} s after the burst began",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        in_burst(&entries),
        20_000,
        "files missing from the database"
    );
    let (_, edited) = read(&ada, &ws, "burst/f7.txt").await;
    assert_eq!(edited["data"], "edited\n", "the later edit is missing");
    let (_, last) = read(&ada, &ws, "burst/f19999.txt").await;
    assert_eq!(last["data"], "19999");

    // The lag was counted, and each one was followed by a resync.
    let lags = ws_client::metric(&app, "codepod_sandbox_watch_lags_total").await;
    let resyncs = ws_client::metric(&app, r#"codepod_sandbox_resyncs_total{reason="lag"}"#).await;
    eprintln!("watch lags: {lags}, resyncs after a lag: {resyncs}");
    assert!(lags == 0.0 || resyncs > 0.0, "a lag without a resync");

    // Deleting them all at once is a burst too.
    run(&mut socket, terminal, "rm -rf burst").await;
    let entries = until_tree(&ada, &ws, Duration::from_secs(120), |entries| {
        in_burst(entries) == 0 && !entries.iter().any(|(path, _)| path == "burst")
    })
    .await;
    assert_eq!(in_burst(&entries), 0, "deleted files are still stored");
    assert!(entries.iter().any(|(path, _)| path == "main.py"));
}

/// A resync compares hashes: what did not change is neither read nor written again.
#[tokio::test]
async fn a_resync_writes_only_what_differs() {
    let app = spawn_app_configured(|config| {
        config.limits.max_files_per_workspace = 25_000;
    })
    .await;
    let (ada, ws, mut socket, terminal) = shell_in_workspace(&app).await;
    let (_, before) = read(&ada, &ws, "main.py").await;
    run(
        &mut socket,
        terminal,
        "python3 -c \"import os; os.mkdir('burst'); [open(f'burst/f{i}.txt', 'w').write(str(i)) for i in range(6000)]\"",
    )
    .await;
    until_tree(&ada, &ws, Duration::from_secs(120), |entries| {
        in_burst(entries) == 6000
    })
    .await;
    // Files untouched in the sandbox keep their versions through every resync.
    let (_, after) = read(&ada, &ws, "main.py").await;
    assert_eq!(after["version"], before["version"]);
    let (_, first) = read(&ada, &ws, "burst/f0.txt").await;
    assert_eq!(first["version"], 1, "a file was written twice: {first}");
}

/// Past the entry limit the sandbox holds more than the database may: the user hears how
/// many were not kept and why, on the socket and in the sandbox's status.
#[tokio::test]
async fn changes_beyond_the_entry_limit_are_reported_with_their_reason() {
    let app = spawn_app_configured(|config| {
        config.limits.max_files_per_workspace = 30;
    })
    .await;
    let (ada, ws, mut socket, terminal) = shell_in_workspace(&app).await;
    type_in(
        &mut socket,
        terminal,
        "mkdir many && for i in $(seq 60); do echo $i > many/$i.txt; done\r",
    )
    .await;
    let ServerMessage::FilesNotKept { not_kept } = control_until(&mut socket, |message| {
        matches!(message, ServerMessage::FilesNotKept { .. })
    })
    .await
    else {
        unreachable!()
    };
    assert!(not_kept.count >= 1, "{not_kept:?}");
    assert_eq!(
        not_kept.reason,
        "the workspace holds at most 30 files and folders"
    );
    assert!(
        not_kept
            .examples
            .iter()
            .all(|path| path.starts_with("many/")),
        "{not_kept:?}"
    );
    let entries = until_tree(&ada, &ws, Duration::from_secs(10), |entries| {
        entries.len() == 30
    })
    .await;
    assert_eq!(entries.len(), 30, "{entries:?}");
    let (_, status) = ada
        .post("/api/workspaces/status", json!({ "id": ws }))
        .await;
    assert_eq!(
        status["not_kept"]["reason"],
        "the workspace holds at most 30 files and folders"
    );
    assert!(ws_client::metric(&app, "codepod_sandbox_changes_not_kept_total").await >= 1.0);
}

/// A file larger than a change event carries (2 MiB) stayed in the sandbox only; the file
/// size limit, not the event's, decides now.
#[tokio::test]
async fn a_file_larger_than_a_change_event_is_saved_and_one_over_the_limit_is_reported() {
    let app = spawn_app_configured(|config| {
        config.limits.max_file_bytes = 4 * 1024 * 1024;
    })
    .await;
    let (ada, ws, mut socket, terminal) = shell_in_workspace(&app).await;
    run(
        &mut socket,
        terminal,
        "head -c 3145728 /dev/zero | tr '\\0' 'a' > three.txt; head -c 5242880 /dev/zero > five.bin",
    )
    .await;
    let entries = until_tree(&ada, &ws, Duration::from_secs(20), |entries| {
        entries.contains(&("three.txt".to_owned(), 3 * 1024 * 1024))
    })
    .await;
    assert!(
        entries.contains(&("three.txt".to_owned(), 3 * 1024 * 1024)),
        "{entries:?}"
    );
    assert!(!entries.iter().any(|(path, _)| path == "five.bin"));
    let ServerMessage::FilesNotKept { not_kept } = control_until(&mut socket, |message| {
        matches!(message, ServerMessage::FilesNotKept { .. })
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(not_kept.reason, "files larger than 4 MiB are not saved");
    assert_eq!(not_kept.examples, ["five.bin"]);
}

/// Every socket starts with `files_resync`, after it has subscribed to file events: a tree
/// loaded before it reloads, and an event right after the page loaded is not lost between
/// the load and the subscription.
#[tokio::test]
async fn every_socket_is_told_to_resync_once_it_is_subscribed() {
    let app = spawn_app_configured(|_| {}).await;
    let (cookie, ws) = ws_client::user_with_workspace(&app, "ada").await;
    let ada = app.browser_with_cookie(&cookie);
    let mut socket = ws_client::connect(&app, &cookie, &ws).await;
    control_until(&mut socket, |message| {
        matches!(message, ServerMessage::FilesResync)
    })
    .await;
    // From here, a write through the API reaches the socket.
    let (status, _) = ada
        .post("/api/files/write", json!({ "workspace": ws, "path": "new.py", "content": { "encoding": "utf8", "data": "x = 1\n" } }))
        .await;
    assert_eq!(status, 200);
    control_until(
        &mut socket,
        |message| matches!(message, ServerMessage::FileChanged { path, .. } if path == "new.py"),
    )
    .await;
}
