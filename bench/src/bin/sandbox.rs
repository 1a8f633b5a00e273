//! Local sandboxes: open → first prompt byte, keystroke echo through the agent, and the idle
//! footprint of many sandboxes.
//!
//!     cargo build -p agent && cargo run --release -p codepod-bench --bin sandbox
//!
//! Uses the real bubblewrap runtime and the real agent (from the debug or release target
//! directory, whichever has it), as the server does.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark run aborts on the first failure; there is nothing to recover"
)]

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use codepod_bench::{Samples, agent_bin, agent_echoes, drain, machine, open_attached};
use model::TerminalId;
use sandbox::{
    Runtime, SandboxId,
    agent::{TerminalEvent, TerminalSession},
    local::{LocalConfig, LocalRuntime},
};

const STARTS: usize = 50;
const ECHOES: usize = 500;
const IDLE_SANDBOXES: usize = 100;

fn id(n: usize) -> SandboxId {
    SandboxId::parse(&format!("bbbbbbbb-0000-4000-8000-{n:012x}")).expect("id")
}

/// Connects to the sandbox's agent.
async fn session(runtime: &LocalRuntime, id: &SandboxId) -> TerminalSession {
    TerminalSession::open(runtime.connect(id).await.expect("connect"))
        .await
        .expect("handshake")
}

/// Opens a terminal and waits for its first output byte (the prompt).
async fn first_prompt(session: &mut TerminalSession) -> TerminalId {
    let terminal = open_attached(session).await;
    loop {
        match session
            .events
            .next()
            .await
            .expect("agent alive")
            .expect("protocol")
        {
            TerminalEvent::Output { data, .. } if !data.is_empty() => return terminal,
            _ => {}
        }
    }
}

/// Sums the proportional set size of every process in the sandbox's cgroup.
async fn pss_kib(runtime: &LocalRuntime, id: &SandboxId) -> u64 {
    runtime
        .pids(id)
        .await
        .into_iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok())
        .filter_map(|text| {
            text.lines()
                .find(|line| line.starts_with("Pss:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .sum()
}

#[tokio::main]
async fn main() {
    println!("machine: {}", machine());
    let root = tempfile::tempdir().expect("temp dir");
    let mut config = LocalConfig::new(root.path().to_path_buf(), agent_bin());
    let python = PathBuf::from("/opt/codepod/python");
    config.python_env = python.exists().then_some(python);
    let runtime = LocalRuntime::new(config).expect("the local runtime");

    // Open → first prompt byte: start the sandbox, connect, open a shell, see its prompt.
    let mut starts = Samples::default();
    for n in 0..STARTS {
        let started = Instant::now();
        runtime.ensure(&id(n)).await.expect("start");
        let mut client = session(&runtime, &id(n)).await;
        first_prompt(&mut client).await;
        starts.push(started.elapsed());
        runtime.stop(&id(n)).await.expect("stop");
    }
    println!(
        "open → first prompt byte ({STARTS} starts):  {}",
        starts.summary()
    );

    // Keystroke echo: one character in, its echo out, through the agent and the PTY.
    runtime.ensure(&id(0)).await.expect("start");
    let mut client = session(&runtime, &id(0)).await;
    let terminal = first_prompt(&mut client).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drain(&mut client, Duration::from_millis(50)).await;
    let mut echoes = agent_echoes(&mut client, terminal, ECHOES).await;
    println!(
        "keystroke echo through the agent:         {}",
        echoes.summary()
    );
    runtime.stop(&id(0)).await.expect("stop");

    // Idle footprint: many sandboxes, each with one open shell, doing nothing.
    let mut clients = Vec::new();
    for n in 0..IDLE_SANDBOXES {
        runtime.ensure(&id(1000 + n)).await.expect("start");
        let mut client = session(&runtime, &id(1000 + n)).await;
        first_prompt(&mut client).await;
        clients.push(client);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut pss = Vec::new();
    for n in 0..IDLE_SANDBOXES {
        pss.push(pss_kib(&runtime, &id(1000 + n)).await);
    }
    pss.sort_unstable();
    let total: u64 = pss.iter().sum();
    println!(
        "idle footprint, {IDLE_SANDBOXES} sandboxes with a shell each: PSS per sandbox p50 {:.2} MiB, max {:.2} MiB, total {:.1} MiB",
        pss[pss.len() / 2] as f64 / 1024.0,
        *pss.last().unwrap_or(&0) as f64 / 1024.0,
        total as f64 / 1024.0
    );
    for n in 0..IDLE_SANDBOXES {
        runtime.stop(&id(1000 + n)).await.expect("stop");
    }
}
