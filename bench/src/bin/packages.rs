//! `pip install` of a mid-size wheel (lxml, 5 MB, a C extension) in a sandbox through the
//! host's package index: the first install (the index downloads from upstream into its
//! cache) and a second workspace's (from the cache), against pip on the host installing
//! straight from the same upstream (no Codepod in between).
//!
//!     bench/run.sh packages
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

use codepod_bench::{Samples, drain, machine, open_attached};
use model::TerminalId;
use sandbox::{
    Runtime, SandboxId,
    agent::{TerminalEvent, TerminalSession},
    index::{IndexConfig, PackageIndex},
    local::{LocalConfig, LocalRuntime},
};

const ROUNDS: usize = 7;
const PACKAGE: &str = "lxml";

fn agent_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("exe");
    let target = exe.parent().and_then(|p| p.parent()).expect("target dir");
    for profile in ["release", "debug"] {
        let bin = target.join(profile).join("codepod-agent");
        if bin.exists() {
            return bin;
        }
    }
    panic!("build the agent first: cargo build --release -p agent");
}

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
}
