//! The Kubernetes runtime's own hop, measured: the same real agent reached directly over its
//! Unix socket (the local runtime's path) and through kube-rs exec over the API server's
//! WebSocket protocol (`v5.channel.k8s.io`) to `codepod-agent attach` (the kube runtime's
//! path). The API server here is the tests' loopback fake (sandbox/tests/kube_fake), so a
//! real cluster adds its own hops on top (API server → kubelet → container runtime); what
//! this measures is the part Codepod owns. Also: what an exec session costs in memory.
//!
//!     cargo build --release -p agent && cargo run --release -p codepod-bench --bin kube

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark run aborts on the first failure; there is nothing to recover"
)]

#[path = "../../../sandbox/tests/kube_fake/mod.rs"]
mod kube_fake;

use std::time::{Duration, Instant};

use codepod_bench::{Samples, agent_echoes, drain, machine, open_attached};
use kube_fake::{FakeApi, NAMESPACE, loopback, ready_status};
use model::TerminalId;
use sandbox::{
    AgentConnection, Runtime, SandboxId, Transport,
    agent::{TerminalEvent, TerminalSession},
    kube::{KubeConfig, KubeRuntime, pod},
};

const CONNECTS: usize = 50;
const ECHOES: usize = 500;
const BULK_BYTES: usize = 50_000_000;
const SESSIONS: usize = 100;

async fn open_terminal(client: &mut TerminalSession) -> TerminalId {
    let terminal = open_attached(client).await;
    // Let the prompt arrive, then drain it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    drain(client, Duration::from_millis(50)).await;
    terminal
}

/// MB/s of terminal output from `head -c BULK_BYTES`, until its end marker arrives.
async fn throughput(client: &mut TerminalSession, terminal: TerminalId) -> f64 {
    // Ctrl-U first: the echo test may have left keys on the line.
    let line =
        format!("\u{15}head -c {BULK_BYTES} /dev/zero | tr '\\0' x; echo; echo BULK$((40+2))\r");
    let started = Instant::now();
    client
        .sender
        .input(terminal, line.as_bytes())
        .await
        .expect("input");
    let mut bytes = 0usize;
    let mut tail = Vec::new();
    loop {
        let event = client
            .events
            .next()
            .await
            .expect("agent")
            .expect("protocol");
        if let TerminalEvent::Output { data, .. } = event {
            bytes += data.len();
            tail.extend_from_slice(&data);
            if tail.len() > 64 {
                tail.drain(..tail.len() - 64);
            }
            if tail.windows(6).any(|w| w == b"BULK42") {
                break;
            }
        }
    }
    bytes as f64 / 1e6 / started.elapsed().as_secs_f64()
}

fn rss_kib(pid: u32) -> u64 {
    memory_kib(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// Proportional set size: shared pages (the binary's text) divided among their users.
fn pss_kib(pid: u32) -> u64 {
    memory_kib(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}

fn memory_kib(path: &str, field: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// RSS of every `codepod-agent attach` relay running now.
fn relay_rss_kib() -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmd| cmd.split(|b| *b == 0).nth(1) == Some(b"attach"))
        })
        .map(pss_kib)
        .collect()
}

#[tokio::main]
async fn main() {
    println!("machine: {}", machine());
    let id = SandboxId::parse("bbbbbbbb-0000-4000-8000-00000000c0de").expect("id");
    let config = KubeConfig::new(NAMESPACE, "codepod-sandbox:bench");
    let api = FakeApi::new();
    let mut running = pod::sandbox_pod(&config, pod::Role::Workspace(&id));
    running.status = Some(ready_status());
    api.seed(running);
    let in_pod = loopback::AgentInPod::start(api).await;
    let cluster = &in_pod.loopback;
    let socket = in_pod.socket.clone();
    let mut kube_config = kube::Config::new(cluster.url.parse().expect("url"));
    kube_config.default_namespace = NAMESPACE.to_owned();
    let runtime = KubeRuntime::new(kube::Client::try_from(kube_config).expect("client"), config);
    runtime.ensure(&id).await.expect("ensure");

    println!("connect + handshake ({CONNECTS} each):");
    let mut direct = Samples::default();
    let mut exec = Samples::default();
    for _ in 0..CONNECTS {
        let started = Instant::now();
        let client = AgentConnection::open(Transport::unix(&socket).await.expect("unix"))
            .await
            .expect("handshake");
        direct.push(started.elapsed());
        client.close().await;
        let started = Instant::now();
        let client = AgentConnection::open(runtime.connect(&id).await.expect("exec"))
            .await
            .expect("handshake");
        exec.push(started.elapsed());
        client.close().await;
    }
    println!("  unix socket (local runtime)   {}", direct.summary());
    println!("  exec over the API WebSocket   {}", exec.summary());

    println!("keystroke → echo ({ECHOES} keys each):");
    let mut client = TerminalSession::open(Transport::unix(&socket).await.expect("unix"))
        .await
        .expect("handshake");
    let terminal = open_terminal(&mut client).await;
    let mut direct = agent_echoes(&mut client, terminal, ECHOES).await;
    let direct_mbs = throughput(&mut client, terminal).await;
    drop(client);
    let mut client = TerminalSession::open(runtime.connect(&id).await.expect("exec"))
        .await
        .expect("handshake");
    let terminal = open_terminal(&mut client).await;
    let mut exec = agent_echoes(&mut client, terminal, ECHOES).await;
    let exec_mbs = throughput(&mut client, terminal).await;
    drop(client);
    let ratio = |a: &mut Samples, b: &mut Samples| {
        a.quantile(0.5).as_secs_f64() / b.quantile(0.5).as_secs_f64()
    };
    println!("  unix socket                   {}", direct.summary());
    println!(
        "  exec                          {}   (p50 ×{:.2} of unix)",
        exec.summary(),
        ratio(&mut exec, &mut direct)
    );
    println!("terminal output, {} MB:", BULK_BYTES / 1_000_000);
    println!("  unix socket                   {direct_mbs:>8.1} MB/s");
    println!(
        "  exec                          {exec_mbs:>8.1} MB/s   (×{:.2} of unix)",
        exec_mbs / direct_mbs
    );

    // What holding exec sessions costs: this process (the server's side) and the relays
    // (inside the pods).
    let me = std::process::id();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(me);
    let mut sessions = Vec::with_capacity(SESSIONS);
    for _ in 0..SESSIONS {
        sessions.push(
            AgentConnection::open(runtime.connect(&id).await.expect("exec"))
                .await
                .expect("handshake"),
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(me);
    let relays = relay_rss_kib();
    let relay_avg = relays.iter().sum::<u64>() as f64 / relays.len().max(1) as f64;
    println!("{SESSIONS} idle exec sessions:");
    println!(
        "  server side (kube-rs client, buffers)   {:.1} KiB per session",
        after.saturating_sub(before) as f64 / SESSIONS as f64
    );
    println!(
        "  in the pod (`codepod-agent attach`)     {relay_avg:.0} KiB PSS per relay ({} relays)",
        relays.len()
    );
    println!("agent PSS: {} KiB", pss_kib(in_pod.agent_pid()));
    drop(sessions);
}
