//! `pip install` of a mid-size wheel (lxml, 5 MB, a C extension) in a sandbox through the
//! host's package index: the first install (the index downloads from upstream into its
//! cache) and a second workspace's (from the cache), against pip on the host installing
//! straight from the same upstream (no Codepod in between).
//!
//!     bench/run.sh packages
//!
//! Then, against the whole server (in this process, SQLite): `POST /api/workspaces/start`
//! of a workspace that keeps three installed packages (idna, markupsafe, lxml: unpacked into
//! every new sandbox) against one that keeps none, each stopped and started in turn.
//!
//! The upstream is a local index of the wheels setup downloaded (`server/tests/wheels.txt`),
//! served by `python3 -m http.server` (`CODEPOD_BENCH_INDEX`), so the network's speed is not
//! in the numbers: what is measured is the path through the agent, the host and the cache.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark run aborts on the first failure; there is nothing to recover"
)]

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use codepod_bench::{Samples, agent_bin, drain, machine, open_attached};
use model::TerminalId;
use sandbox::{
    Runtime, SandboxId,
    agent::{TerminalEvent, TerminalSession},
    index::{IndexConfig, PackageIndex},
    local::{LocalConfig, LocalRuntime},
};

const ROUNDS: usize = 7;
const STARTS: usize = 15;
const PACKAGE: &str = "lxml";

fn id(n: usize) -> SandboxId {
    SandboxId::parse(&format!("cccccccc-0000-4000-8000-{n:012x}")).expect("id")
}

/// Runs `command` in a fresh sandbox's shell; the time from Enter to its end.
async fn timed_in_sandbox(runtime: &LocalRuntime, n: usize, command: &str) -> Duration {
    runtime.ensure(&id(n)).await.expect("start");
    let mut session = TerminalSession::open(runtime.connect(&id(n)).await.expect("connect"))
        .await
        .expect("handshake");
    let terminal: TerminalId = open_attached(&mut session).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drain(&mut session, Duration::from_millis(100)).await;
    let line = format!("{command} >/tmp/out 2>&1; echo \"DO\"\"NE=$?\"\n");
    let started = Instant::now();
    session
        .sender
        .input(terminal, line.as_bytes())
        .await
        .expect("input");
    let mut seen = Vec::new();
    loop {
        match session.events.next().await {
            Some(Ok(TerminalEvent::Output { data, .. })) => {
                seen.extend_from_slice(&data);
                let text = String::from_utf8_lossy(&seen);
                if let Some(at) = text.find("DONE=") {
                    let elapsed = started.elapsed();
                    assert!(text[at..].starts_with("DONE=0"), "{command} failed: {text}");
                    runtime.stop(&id(n)).await.expect("stop");
                    return elapsed;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("the sandbox went away: {:?}", other.map(|r| r.is_ok())),
        }
    }
}

#[tokio::main]
async fn main() {
    println!("machine: {}", machine());
    let upstream = std::env::var("CODEPOD_BENCH_INDEX").expect("CODEPOD_BENCH_INDEX");
    let python = PathBuf::from(
        std::env::var("CODEPOD_PYTHON_ENV").unwrap_or_else(|_| "/opt/codepod/python".into()),
    );
    let install = format!("pip install --no-cache-dir --quiet {PACKAGE}");
    let (mut first, mut cached, mut direct) =
        (Samples::default(), Samples::default(), Samples::default());
    for round in 0..ROUNDS {
        // A new cache each round: the first install downloads, the second does not.
        let root = tempfile::tempdir().expect("temp dir");
        let index = PackageIndex::new(IndexConfig::new(
            upstream.clone(),
            root.path().join("cache"),
        ))
        .expect("index");
        let mut config = LocalConfig::new(root.path().join("sandboxes"), agent_bin());
        config.python_env = Some(python.clone());
        config.package_index = Some(index.serve_sandboxes());
        let runtime = LocalRuntime::new(config).expect("the local runtime");
        first.push(timed_in_sandbox(&runtime, round * 2, &install).await);
        cached.push(timed_in_sandbox(&runtime, round * 2 + 1, &install).await);

        // The same install by pip on the host, straight from upstream, into a fresh target.
        let target = root.path().join("direct");
        let started = Instant::now();
        let status = std::process::Command::new(python.join("bin/pip"))
            .args([
                "install",
                "--no-cache-dir",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg("--index-url")
            .arg(&upstream)
            .arg("--target")
            .arg(&target)
            .arg(PACKAGE)
            .status()
            .expect("pip");
        assert!(status.success(), "pip on the host failed");
        direct.push(started.elapsed());
    }
    let ratio = |a: &mut Samples, b: &mut Samples| {
        a.quantile(0.5).as_secs_f64() / b.quantile(0.5).as_secs_f64()
    };
    println!("pip install {PACKAGE} (5 MB wheel, C extension), {ROUNDS} rounds, Enter → prompt:");
    println!(
        "  first, through the index (downloads):  {}",
        first.summary()
    );
    println!(
        "  second workspace (from the cache):      {}",
        cached.summary()
    );
    println!(
        "  pip on the host, straight from upstream: {}",
        direct.summary()
    );
    println!(
        "  p50 ratios: cached/first {:.2}×, first/host {:.2}×, cached/host {:.2}×",
        ratio(&mut cached, &mut first),
        ratio(&mut first, &mut direct),
        ratio(&mut cached, &mut direct)
    );
    starts_with_kept_packages(&upstream).await;
}

/// `POST /api/workspaces/<what>`.
async fn call(http: &reqwest::Client, base: &str, what: &str, id: &str) -> serde_json::Value {
    let response = http
        .post(format!("{base}/api/workspaces/{what}"))
        .header("origin", base)
        .json(&serde_json::json!({ "id": id }))
        .send()
        .await
        .expect(what);
    assert!(
        response.status().is_success(),
        "{what}: {}",
        response.status()
    );
    response.json().await.expect("json")
}

async fn starts_with_kept_packages(upstream: &str) {
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = server::Config::defaults();
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.metrics_listen = "127.0.0.1:0".parse().expect("address");
    config.data_dir = data.path().to_path_buf();
    config.log.filter = "warn".into();
    config.sandbox.package_index = upstream.to_owned();
    let app = server::Application::build(config)
        .await
        .expect("server starts");
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    let (http, _, bare) = codepod_bench::account_with_workspace(&base, "bare").await;
    let (http_kept, _, kept) = codepod_bench::account_with_workspace(&base, "kept").await;

    // Three packages installed in one workspace's sandbox, and kept.
    call(&http_kept, &base, "start", &kept).await;
    let socket = data.path().join("sandboxes").join(&kept).join("agent.sock");
    let mut session = TerminalSession::open(
        sandbox::Transport::unix(&socket)
            .await
            .expect("agent socket"),
    )
    .await
    .expect("handshake");
    let terminal = open_attached(&mut session).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drain(&mut session, Duration::from_millis(100)).await;
    session
        .sender
        .input(
            terminal,
            b"pip install --quiet idna markupsafe lxml; echo \"DO\"\"NE=$?\"\n",
        )
        .await
        .expect("input");
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("DONE=0") {
        match session.events.next().await {
            Some(Ok(TerminalEvent::Output { data, .. })) => seen.extend_from_slice(&data),
            Some(Ok(_)) => {}
            other => panic!("the sandbox went away: {:?}", other.map(|r| r.is_ok())),
        }
    }
    drop(session);
    let packages = call(&http_kept, &base, "packages", &kept).await;
    println!(
        "workspace start (POST /api/workspaces/start → ready and filled), {STARTS} each, in turn; \
         kept: {} ({} KiB packed):",
        packages["packages"],
        packages["size_bytes"].as_u64().unwrap_or(0) / 1024
    );

    let (mut none, mut three) = (Samples::default(), Samples::default());
    for _ in 0..STARTS {
        for (http, id, samples) in [(&http, &bare, &mut none), (&http_kept, &kept, &mut three)] {
            call(http, &base, "stop", id).await;
            let started = Instant::now();
            let status = call(http, &base, "start", id).await;
            samples.push(started.elapsed());
            assert_eq!(status["state"], "ready", "{status}");
        }
    }
    let extra = three.quantile(0.5).as_secs_f64() - none.quantile(0.5).as_secs_f64();
    println!("  no packages kept:     {}", none.summary());
    println!("  three packages kept:  {}", three.summary());
    println!("  p50 difference: {:+.1} ms", extra * 1000.0);
}
