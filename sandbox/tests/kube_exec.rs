//! The exec channel: the Kubernetes runtime reaches a real agent through a loopback fake API
//! server that speaks the API server's exec WebSocket (`v5.channel.k8s.io`: channel 0 stdin,
//! 1 stdout, 3 status, 255 close) and runs the exec'd command — `codepod-agent attach`, the
//! real relay — next to a real agent, as the kubelet would inside the pod. Terminals outlive
//! the connection: a second server (a new client, as after a restart) reattaches to them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure here is a failed test"
)]

mod kube_fake;

use std::{sync::Arc, time::Duration};

use kube_fake::{
    FakeApi, NAMESPACE,
    loopback::{AgentInPod, Kubelet},
    ready_status,
};
use model::TerminalId;
use sandbox::{
    AgentConnection, Runtime, SandboxId,
    agent::{TerminalEvent, TerminalSession},
    kube::{
        KubeConfig, KubeRuntime,
        pod::{self, Role},
    },
};

struct Cluster {
    url: String,
    pod: Arc<Kubelet>,
    _in_pod: AgentInPod,
}

async fn cluster(id: &SandboxId) -> Cluster {
    let api = FakeApi::new();
    let mut running = pod::sandbox_pod(&config(), Role::Workspace(id));
    running.status = Some(ready_status());
    api.seed(running);
    let in_pod = AgentInPod::start(api).await;
    Cluster {
        url: in_pod.loopback.url.clone(),
        pod: in_pod.loopback.kubelet.clone(),
        _in_pod: in_pod,
    }
}

fn config() -> KubeConfig {
    KubeConfig::new(NAMESPACE, "registry.example/codepod-sandbox:1")
}

/// A server replica: its own client and runtime.
fn replica(cluster: &Cluster) -> KubeRuntime {
    let mut kube = kube::Config::new(cluster.url.parse().unwrap());
    kube.default_namespace = NAMESPACE.to_owned();
    KubeRuntime::new(kube::Client::try_from(kube).unwrap(), config())
}

/// Types `line` into `terminal` and returns the output until `until` shows up.
async fn type_and_wait(
    session: &mut TerminalSession,
    terminal: TerminalId,
    line: &str,
    until: &str,
) -> String {
    session
        .sender
        .input(terminal, line.as_bytes())
        .await
        .unwrap();
    read_until(session, until).await
}

/// The next event `pick` takes, within 20 s.
async fn next_event<T>(
    session: &mut TerminalSession,
    mut pick: impl FnMut(TerminalEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let event = tokio::time::timeout_at(deadline, session.events.next())
            .await
            .expect("the agent answers")
            .expect("the agent is reachable")
            .unwrap();
        if let Some(found) = pick(event) {
            return found;
        }
    }
}

async fn read_until(session: &mut TerminalSession, until: &str) -> String {
    let mut seen = String::new();
    while !seen.contains(until) {
        let data = next_event(session, |event| match event {
            TerminalEvent::Output { data, .. } => Some(data),
            _ => None,
        })
        .await;
        seen.push_str(&String::from_utf8_lossy(&data));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_reaches_the_agent_through_exec_and_terminals_outlive_it() {
    let id = SandboxId::parse("6f1c4a9e-0000-4000-8000-0000000000e1").unwrap();
    let cluster = cluster(&id).await;

    let first = replica(&cluster);
    first.ensure(&id).await.unwrap();
    let mut client = TerminalSession::open(first.connect(&id).await.unwrap())
        .await
        .unwrap();
    assert!(
        cluster
            .pod
            .offered
            .lock()
            .unwrap()
            .iter()
            .any(|p| p == "v5.channel.k8s.io"),
        "{:?}",
        cluster.pod.offered.lock().unwrap()
    );
    client.sender.open(80, 24).await.unwrap();
    let terminal = next_event(&mut client, |event| match event {
        TerminalEvent::Opened { terminal, .. } => Some(terminal),
        _ => None,
    })
    .await;
    client.sender.attach(terminal).await.unwrap();
    let seen = type_and_wait(&mut client, terminal, "X=21; echo $((X*2))\r", "42").await;
    assert!(seen.contains("42"), "{seen}");

    // Bulk output crosses the exec stream whole (kube-rs's default 1 KiB pipe would not
    // lose it either, but would crawl).
    let seen = type_and_wait(
        &mut client,
        terminal,
        "head -c 300000 /dev/zero | tr '\\0' x | wc -c; echo END$((1+1))\r",
        "END2",
    )
    .await;
    assert!(seen.contains("300000"), "{seen}");

    // The server goes away (a restart, a rolling deploy): its exec sessions end...
    drop(client);
    drop(first);

    // ...and another replica reattaches to the same shell, with its state and scrollback.
    let second = replica(&cluster);
    second.ensure(&id).await.unwrap();
    let mut client = TerminalSession::open(second.connect(&id).await.unwrap())
        .await
        .unwrap();
    client.sender.list().await.unwrap();
    let terminals = next_event(&mut client, |event| match event {
        TerminalEvent::Terminals(terminals) => Some(terminals),
        _ => None,
    })
    .await;
    assert!(
        terminals.iter().any(|t| t.terminal == terminal),
        "{terminals:?}"
    );
    client.sender.attach(terminal).await.unwrap();
    let replay = read_until(&mut client, "42").await;
    assert!(
        replay.contains("echo $((X*2))"),
        "the scrollback is replayed: {replay}"
    );
    let seen = type_and_wait(&mut client, terminal, "echo $((X+1))\r", "22").await;
    assert!(seen.contains("22"), "the shell kept its variables: {seen}");
    assert_eq!(
        cluster.pod.execs.load(std::sync::atomic::Ordering::SeqCst),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_refused_by_the_api_server_is_an_error_not_a_hang() {
    let id = SandboxId::parse("6f1c4a9e-0000-4000-8000-0000000000e2").unwrap();
    let cluster = cluster(&id).await;
    let runtime = replica(&cluster);
    runtime.ensure(&id).await.unwrap();
    // The pod goes away behind our back (deleted by hand, evicted).
    cluster.pod.api.delete_all();
    let result = tokio::time::timeout(Duration::from_secs(10), runtime.connect(&id))
        .await
        .expect("connect gives up");
    assert!(
        matches!(result, Err(sandbox::Error::NotFound)),
        "{:?}",
        result.err().map(|error| error.to_string())
    );
    // It looked the pod up afresh, and found none.
    assert!(matches!(
        runtime.connect(&id).await,
        Err(sandbox::Error::NotFound)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_replaced_behind_our_back_is_found_again() {
    let id = SandboxId::parse("6f1c4a9e-0000-4000-8000-0000000000e3").unwrap();
    let cluster = cluster(&id).await;
    let runtime = replica(&cluster);
    runtime.ensure(&id).await.unwrap();
    runtime.connect(&id).await.unwrap();
    // Another replica stopped the workspace and started it again: a new pod, a new name.
    cluster.pod.api.delete_all();
    let mut fresh = pod::sandbox_pod(&config(), Role::Workspace(&id));
    fresh.metadata.name = Some("codepod-sandbox-fresh".to_owned());
    fresh.status = Some(ready_status());
    cluster.pod.api.seed(fresh);
    let transport = runtime.connect(&id).await.expect("the new pod is found");
    let control = AgentConnection::open(transport).await.unwrap();
    control.terminals().await.unwrap();
}
