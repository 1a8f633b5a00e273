//! Live sync, both ways, against the real server (in this process), a real sandbox and
//! the real agent:
//!
//! - save → visible in the sandbox: `/api/files/write`, then read back inside the sandbox
//!   through the agent until the new content is there;
//! - terminal change → tree: `echo N > f.txt` typed into a terminal over the IDE WebSocket,
//!   until the socket announces `file_changed` for it (what makes the tree reload). This
//!   includes the agent's 100 ms debounce; the table also shows it without;
//! - a burst: 20,000 files made by one command, then an edit a second later, until all of
//!   them are in the database (through the watcher, its lags and the resyncs from a
//!   snapshot that follow them); then 2,000 more beside those 20,000, whose resync compares
//!   22,000 entries (the time of each resync, from `/metrics`).
//!
//!     cargo run --release -p codepod-bench --bin sync

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark run aborts on the first failure; there is nothing to recover"
)]

use std::time::{Duration, Instant};

use codepod_bench::{Samples, machine, ms};
use futures_util::{SinkExt, StreamExt};
use model::ws::{ClientMessage, ServerMessage, encode_data};
use serde_json::json;
use server::{Application, Config};
use tokio_tungstenite::tungstenite::{Message as Ws, client::IntoClientRequest};

const SAVES: usize = 200;
const CHANGES: usize = 100;
const BURST: usize = 20_000;
const MORE: usize = 2_000;
const DEBOUNCE: Duration = Duration::from_millis(100);

#[tokio::main]
async fn main() {
    println!("machine: {}", machine());
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.metrics_listen = "127.0.0.1:0".parse().expect("address");
    config.data_dir = data.path().to_path_buf();
    config.log.filter = "warn".into();
    config.limits.max_files_per_workspace = 30_000;
    let app = Application::build(config).await.expect("server starts");
    let base = format!("http://{}", app.local_addr());
    let metrics = format!("http://{}/metrics", app.metrics_addr());
    tokio::spawn(app.run_until(std::future::pending()));

    let (http, cookie, ws) = codepod_bench::account_with_workspace(&base, "ada").await;

    // The IDE socket starts the sandbox; keep it open for the file events.
    let mut request = format!("{}/ws/workspaces/{ws}", base.replacen("http", "ws", 1))
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("cookie", cookie.parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .expect("socket");
    let mut terminal = None;
    socket
        .send(Ws::text(
            serde_json::to_string(&ClientMessage::Open { cols: 80, rows: 24 }).expect("json"),
        ))
        .await
        .expect("open");
    while terminal.is_none() {
        if let Some(Ok(Ws::Text(text))) = socket.next().await
            && let Ok(ServerMessage::Opened { terminal: id, .. }) = serde_json::from_str(&text)
        {
            terminal = Some(id);
        }
    }
    let terminal = terminal.expect("terminal");

    println!("save → visible in the sandbox, {SAVES} saves of main.py");
    let socket_path = data.path().join("sandboxes").join(&ws).join("agent.sock");
    let agent = sandbox::AgentConnection::open(
        sandbox::Transport::unix(&socket_path).await.expect("agent"),
    )
    .await
    .expect("handshake");
    let main_py = model::WorkspacePath::parse("main.py").expect("path");
    let mut saves = Samples::default();
    let mut version = 1;
    for i in 0..SAVES {
        let text = format!("print({i})\n");
        let started = Instant::now();
        let response: serde_json::Value = http
            .post(format!("{base}/api/files/write"))
            .json(&json!({ "workspace": ws, "path": "main.py", "content": { "encoding": "utf8", "data": text }, "base_version": version }))
            .send()
            .await
            .expect("write")
            .json()
            .await
            .expect("entry");
        version = response["version"]
            .as_i64()
            .unwrap_or_else(|| panic!("write answered {response}"));
        while agent.read_file(&main_py).await.expect("read") != text.as_bytes() {}
        saves.push(started.elapsed());
    }
    println!("  {}", saves.summary());

    println!("terminal change → file_changed on the IDE socket, {CHANGES} changes");
    let mut changes = Samples::default();
    for i in 0..CHANGES {
        let name = format!("made{i}.txt");
        let started = Instant::now();
        socket
            .send(Ws::binary(encode_data(
                terminal,
                format!("echo {i} > {name}\r").as_bytes(),
            )))
            .await
            .expect("type");
        loop {
            match socket.next().await {
                Some(Ok(Ws::Text(text))) => {
                    if let Ok(ServerMessage::FileChanged { path, .. }) =
                        serde_json::from_str::<ServerMessage>(&text)
                        && path == name
                    {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("socket ended: {other:?}"),
            }
        }
        changes.push(started.elapsed());
    }
    println!("  {}", changes.summary());
    let p95 = changes.quantile(0.95);
    println!(
        "  p95 without the {} ms debounce: {:.1} ms",
        DEBOUNCE.as_millis(),
        ms(p95.saturating_sub(DEBOUNCE))
    );
    let burst = burst(&http, &base, &metrics, &ws, &mut socket, terminal).await;
    println!(
        "| save → visible in the sandbox | p50 {:.2} ms | p95 {:.2} ms |",
        ms(saves.quantile(0.5)),
        ms(saves.quantile(0.95))
    );
    println!(
        "| terminal change → tree event | p50 {:.1} ms | p95 {:.1} ms (p95 {:.1} ms without the debounce) |",
        ms(changes.quantile(0.5)),
        ms(p95),
        ms(p95.saturating_sub(DEBOUNCE))
    );
    println!("{burst}");
}

/// Runs `command` in the terminal, then polls the stored tree until `done` holds for the
/// number of entries under `prefix`; the time from the command to then.
/// The server, its client and the workspace.
type Target<'a> = (&'a reqwest::Client, &'a str, &'a str);

async fn until_stored(
    (http, base, ws): Target<'_>,
    socket: &mut Socket,
    terminal: model::TerminalId,
    command: &str,
    prefix: &str,
    want: usize,
) -> Duration {
    let started = Instant::now();
    socket
        .send(Ws::binary(encode_data(
            terminal,
            format!("{command}\r").as_bytes(),
        )))
        .await
        .expect("type");
    loop {
        // Drain what the socket says, so that the server never waits for this client.
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), socket.next()).await
        {
        }
        let tree: serde_json::Value = http
            .post(format!("{base}/api/files/tree"))
            .json(&json!({ "workspace": ws }))
            .send()
            .await
            .expect("tree")
            .json()
            .await
            .expect("json");
        let stored = tree
            .as_array()
            .expect("a list")
            .iter()
            .filter(|entry| {
                entry["path"]
                    .as_str()
                    .is_some_and(|path| path.starts_with(prefix))
            })
            .count();
        if stored >= want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{stored} of {want} after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The sum of the values of every series of `name` in the server's `/metrics`.
async fn metric(metrics: &str, name: &str) -> f64 {
    let text = reqwest::get(metrics)
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn burst(
    http: &reqwest::Client,
    base: &str,
    metrics: &str,
    ws: &str,
    socket: &mut Socket,
    terminal: model::TerminalId,
) -> String {
    println!("a burst of {BURST} files, then an edit a second later, until all are stored");
    let make = |dir: &str, count: usize| {
        format!(
            "python3 -c \"import os; os.mkdir('{dir}'); [open(f'{dir}/f{{i}}.txt', 'w').write(str(i)) for i in range({count})]\""
        )
    };
    let command = format!(
        "{}; sleep 1; echo edited > burst/edited.txt",
        make("burst", BURST)
    );
    let stored = until_stored(
        (http, base, ws),
        socket,
        terminal,
        &command,
        "burst/",
        BURST + 1,
    )
    .await;
    let lags = metric(metrics, "codepod_sandbox_watch_lags_total").await;
    let resyncs = metric(metrics, "codepod_sandbox_resyncs_total").await;
    let seconds = metric(metrics, "codepod_sandbox_resync_seconds_sum").await;
    println!(
        "  all {} stored {:.1} s after the command; {lags} lags, {resyncs} resyncs taking {seconds:.2} s in all",
        BURST + 1,
        stored.as_secs_f64()
    );
    println!(
        "{MORE} more beside them: a resync compares {} entries",
        BURST + MORE + 3
    );
    let more = until_stored(
        (http, base, ws),
        socket,
        terminal,
        &make("more", MORE),
        "more/",
        MORE,
    )
    .await;
    let resyncs_after = metric(metrics, "codepod_sandbox_resyncs_total").await;
    let seconds_after = metric(metrics, "codepod_sandbox_resync_seconds_sum").await;
    let each = if resyncs_after > resyncs {
        (seconds_after - seconds) / (resyncs_after - resyncs)
    } else {
        0.0
    };
    println!(
        "  stored {:.1} s after the command; {} resyncs, {:.2} s each",
        more.as_secs_f64(),
        resyncs_after - resyncs,
        each
    );
    format!(
        "| {BURST} files + an edit → all stored | {:.1} s ({lags} lags, {resyncs} resyncs, {seconds:.2} s resyncing) |\n| resync over {} entries ({MORE} new) | {each:.2} s |",
        stored.as_secs_f64(),
        BURST + MORE + 3
    )
}
