//! The fake API server behind a loopback socket, with the one endpoint a mock service cannot
//! carry: exec, a WebSocket upgrade. Its "kubelet" runs the exec'd command — the real
//! `codepod-agent attach` — against a real agent's socket, speaking `v5.channel.k8s.io`
//! (channel 0 stdin, 1 stdout, 3 status, 255 close) to the client.

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
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{FakeApi, NAMESPACE, query_pairs};

/// What the fake kubelet needs to run an exec'd command "inside the pod".
pub struct Kubelet {
    pub api: FakeApi,
    /// The agent binary and its socket "inside the pod".
    agent_bin: PathBuf,
    socket: PathBuf,
    /// Protocols the client offered on the last exec.
    pub offered: std::sync::Mutex<Vec<String>>,
    pub execs: std::sync::atomic::AtomicUsize,
}

async fn exec(
    State(pod): State<Arc<Kubelet>>,
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
async fn relay(mut socket: WebSocket, command: Vec<String>, pod: Arc<Kubelet>) {
    assert_eq!(
        command,
        sandbox::kube::pod::attach_command(),
        "the server execs the agent's relay"
    );
    let mut child = tokio::process::Command::new(&pod.agent_bin)
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
async fn pod_api(State(pod): State<Arc<Kubelet>>, request: Request) -> impl IntoResponse {
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

/// A running loopback API server.
pub struct Loopback {
    pub url: String,
    pub kubelet: Arc<Kubelet>,
}

impl Loopback {
    /// Serves `api` on a free loopback port; exec sessions reach the agent at `socket`.
    pub async fn start(api: FakeApi, agent_bin: PathBuf, socket: PathBuf) -> Self {
        let kubelet = Arc::new(Kubelet {
            api,
            agent_bin,
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
            .with_state(kubelet.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        // As the real API server (Go sets TCP_NODELAY on every connection): without it,
        // the 101 response and the first frame meet Nagle and a delayed ACK (40 ms).
        let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
            let _ = stream.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, kubelet }
    }
}

/// The `codepod-agent` binary cargo built beside the running test or benchmark.
pub fn agent_bin() -> PathBuf {
    // target/<profile>/deps/<this binary> → target/<profile>/codepod-agent; a benchmark
    // (target/release/<it>) prefers the release agent.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap();
    let candidates = [
        dir.join("codepod-agent"),
        dir.parent().unwrap().join("codepod-agent"),
    ];
    candidates
        .into_iter()
        .find(|bin| bin.exists())
        .expect("build the agent first (cargo build -p agent)")
}

/// A real agent in a temporary "pod" (its workspace folder and socket), served by a
/// loopback fake API server.
pub struct AgentInPod {
    pub loopback: Loopback,
    /// The pod's /workspace, and the agent's socket.
    pub workspace: PathBuf,
    pub socket: PathBuf,
    agent: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl AgentInPod {
    pub async fn start(api: FakeApi) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let workspace = dir.path().join("workspace");
        std::fs::create_dir(&workspace).unwrap();
        let agent = spawn_agent(&agent_bin(), &socket, &workspace).await;
        let loopback = Loopback::start(api, agent_bin(), socket.clone()).await;
        Self {
            loopback,
            workspace,
            socket,
            agent,
            _dir: dir,
        }
    }

    pub fn agent_pid(&self) -> u32 {
        self.agent.id().unwrap_or(0)
    }
}

/// Starts a real agent serving `workspace` on `socket`, as the pod's main process would.
pub async fn spawn_agent(
    agent_bin: &std::path::Path,
    socket: &std::path::Path,
    workspace: &std::path::Path,
) -> tokio::process::Child {
    let agent = tokio::process::Command::new(agent_bin)
        .arg("--socket")
        .arg(socket)
        .arg("--workspace")
        .arg(workspace)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..500 {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    agent
}
