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

use std::{path::PathBuf, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Bytes,
    extract::{
        Request, State,
        ws::{Message as WsMessage, WebSocket, WebSocketUpgrade},
    },
    response::{IntoResponse, Response},
    routing::get,
};
use kube_fake::{FakeApi, NAMESPACE, query_pairs, ready_status};
use protocol::Message;
use sandbox::{
    AgentClient, Runtime, SandboxId,
    kube::{
        KubeConfig, KubeRuntime,
        pod::{self, Role},
    },
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn agent_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("codepod-agent");
    assert!(
        bin.exists(),
        "build the agent first (cargo build -p agent): {}",
        bin.display()
    );
    bin
}

/// What the fake kubelet needs to run an exec'd command "inside the pod".
struct Pod {
    api: FakeApi,
    socket: PathBuf,
    /// Protocols the client offered on the last exec.
    offered: std::sync::Mutex<Vec<String>>,
    execs: std::sync::atomic::AtomicUsize,
}

async fn exec(
    State(pod): State<Arc<Pod>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    ws: WebSocketUpgrade,
    request: Request,
) -> Response {
    if pod.api.pod(&name).is_none() {
        let status = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("pods \"{name}\" not found"), "reason": "NotFound", "code": 404,
        });
        return (
            http::StatusCode::NOT_FOUND,
            [("content-type", "application/json")],
            serde_json::to_vec(&status).unwrap(),
        )
            .into_response();
    }
    let query = request.uri().query().unwrap_or("").to_owned();
    let offered = request
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(',')
        .map(|p| p.trim().to_owned())
        .collect();
    *pod.offered.lock().unwrap() = offered;
    pod.execs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let pairs = query_pairs(&query);
    let command: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    assert!(
        pairs.contains(&("container".to_owned(), "agent".to_owned())),
        "{pairs:?}"
    );
    assert!(
        pairs.contains(&("stdin".to_owned(), "true".to_owned())),
        "{pairs:?}"
    );
    ws.protocols(["v5.channel.k8s.io"])
        .on_upgrade(move |socket| relay(socket, command, pod))
}

/// The kubelet's side: runs the command with the pod's paths and pipes it to the socket.
async fn relay(mut socket: WebSocket, command: Vec<String>, pod: Arc<Pod>) {
    assert_eq!(
        command,
        pod::attach_command(),
        "the server execs the agent's relay"
    );
    let mut child = tokio::process::Command::new(agent_bin())
        .arg("attach")
        .arg(&pod.socket)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take().unwrap();
    let mut buffer = vec![0u8; 64 * 1024];
    // The API server's first frame on each output channel is the bare channel number.
    let _ = socket
        .send(WsMessage::Binary(Bytes::from_static(&[1])))
        .await;
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(WsMessage::Binary(data))) if !data.is_empty() => match data[0] {
                    0 => {
                        if let Some(stdin) = stdin.as_mut() {
                            stdin.write_all(&data[1..]).await.unwrap();
                        }
                    }
                    255 if data.get(1) == Some(&0) => stdin = None,
                    other => panic!("unexpected channel {other}"),
                },
                Some(Ok(_)) => {}
                // The client went away: the kubelet ends the exec'd process.
                Some(Err(_)) | None => return,
            },
            read = stdout.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut frame = Vec::with_capacity(n + 1);
                    frame.push(1);
                    frame.extend_from_slice(&buffer[..n]);
                    if socket.send(WsMessage::Binary(frame.into())).await.is_err() {
                        return;
                    }
                }
            },
        }
    }
    let _ = child.wait().await;
    let status = serde_json::json!({"metadata": {}, "status": "Success"});
    let mut frame = vec![3];
    frame.extend_from_slice(&serde_json::to_vec(&status).unwrap());
    let _ = socket.send(WsMessage::Binary(frame.into())).await;
    let _ = socket.send(WsMessage::Close(None)).await;
}

/// Everything but exec: the in-memory pod API.
async fn pod_api(State(pod): State<Arc<Pod>>, request: Request) -> impl IntoResponse {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let (code, value) = pod.api.answer(
        parts.method,
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        &body,
    );
    (
        http::StatusCode::from_u16(code).unwrap(),
        [("content-type", "application/json")],
        serde_json::to_vec(&value).unwrap(),
    )
}

struct Cluster {
    url: String,
    pod: Arc<Pod>,
    _agent: tokio::process::Child,
    _dir: tempfile::TempDir,
}

async fn cluster(id: &SandboxId) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let workspace = dir.path().join("workspace");
    std::fs::create_dir(&workspace).unwrap();
    let agent = tokio::process::Command::new(agent_bin())
        .arg("--socket")
        .arg(&socket)
        .arg("--workspace")
        .arg(&workspace)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let api = FakeApi::new();
    let mut running = pod::sandbox_pod(&config(), Role::Workspace(id));
    running.status = Some(ready_status());
    api.seed(running);
    let pod = Arc::new(Pod {
        api,
        socket,
        offered: std::sync::Mutex::new(Vec::new()),
        execs: std::sync::atomic::AtomicUsize::new(0),
    });
    let app = Router::new()
        .route(
            &format!("/api/v1/namespaces/{NAMESPACE}/pods/{{name}}/exec"),
            get(exec),
        )
        .fallback(pod_api)
        .with_state(pod.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Cluster {
        url,
        pod,
        _agent: agent,
        _dir: dir,
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
async fn type_and_wait(client: &mut AgentClient, terminal: u32, line: &str, until: &str) -> String {
    client
        .send(Message::Input {
            terminal,
            data: line.as_bytes().to_vec(),
        })
        .await
        .unwrap();
    read_until(client, until).await
}

async fn read_until(client: &mut AgentClient, until: &str) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains(until) {
        let frame = tokio::time::timeout_at(deadline, client.next())
            .await
            .unwrap_or_else(|_| panic!("no {until:?} in {seen:?}"))
            .expect("the agent is reachable");
        if let Message::Output { data, .. } = frame.message {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_reaches_the_agent_through_exec_and_terminals_outlive_it() {
    let id = SandboxId::parse("6f1c4a9e-0000-4000-8000-0000000000e1").unwrap();
    let cluster = cluster(&id).await;

    let first = replica(&cluster);
    first.ensure(&id).await.unwrap();
    let mut client = first.connect(&id).await.unwrap();
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
    let terminal = match client
        .request(Message::OpenTerminal { cols: 80, rows: 24 })
        .await
        .unwrap()
    {
        Message::TerminalOpened { terminal } => terminal,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        client.request(Message::Attach { terminal }).await.unwrap(),
        Message::Ok
    );
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
    let mut client = second.connect(&id).await.unwrap();
    match client.request(Message::ListTerminals).await.unwrap() {
        Message::TerminalList { terminals } => {
            assert!(
                terminals.iter().any(|t| t.terminal == terminal),
                "{terminals:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        client.request(Message::Attach { terminal }).await.unwrap(),
        Message::Ok
    );
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
    for pod in cluster.pod.api.pods() {
        cluster.pod.api.answer(
            http::Method::DELETE,
            &format!(
                "/api/v1/namespaces/{NAMESPACE}/pods/{}",
                pod.metadata.name.unwrap()
            ),
            "",
            b"",
        );
    }
    let result = tokio::time::timeout(Duration::from_secs(10), runtime.connect(&id))
        .await
        .expect("connect gives up");
    assert!(result.is_err());
    // It looks the pod up afresh the next time, and finds none.
    assert!(matches!(
        runtime.connect(&id).await,
        Err(sandbox::Error::NotFound)
    ));
}
