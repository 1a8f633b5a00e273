//! The real agent binary on a temporary workspace, and a protocol client for tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    reason = "test helpers: a failure is a failed test; each test file uses a part"
)]

use std::{path::PathBuf, process::Stdio, time::Duration};

use model::{TerminalId, WorkspacePath};
use protocol::{Frame, Message, Tag, VERSION, read_frame, write_frame};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

pub struct Agent {
    child: tokio::process::Child,
    first_process: bool,
    pub socket: PathBuf,
    pub workspace: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

pub async fn start_agent() -> Agent {
    start(Launch::Plain).await
}

/// The agent started by a shell that ignores `signals` (say `"INT QUIT"`), as `nohup` or
/// `&` in a script start a program: it inherits them ignored.
pub async fn start_agent_ignoring(signals: &str) -> Agent {
    start(Launch::Ignoring(signals)).await
}

/// The agent as the first process (PID 1) of a new PID namespace with its own `/proc`, as
/// a sandbox pod's container starts it. The child process is `bwrap`, outside.
pub async fn start_agent_as_first_process() -> Agent {
    start(Launch::FirstProcess).await
}

enum Launch<'a> {
    Plain,
    Ignoring(&'a str),
    FirstProcess,
}

async fn start(launch: Launch<'_>) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let workspace = dir.path().join("workspace");
    std::fs::create_dir(&workspace).unwrap();
    let agent = env!("CARGO_BIN_EXE_codepod-agent");
    let first_process = matches!(launch, Launch::FirstProcess);
    let mut command = match launch {
        Launch::Plain => tokio::process::Command::new(agent),
        Launch::Ignoring(signals) => {
            let mut command = tokio::process::Command::new("sh");
            command.args([
                "-c",
                &format!("trap '' {signals}; exec \"$0\" \"$@\""),
                agent,
            ]);
            command
        }
        Launch::FirstProcess => {
            let mut command = tokio::process::Command::new("bwrap");
            command.args([
                "--dev-bind",
                "/",
                "/",
                "--unshare-pid",
                "--as-pid-1",
                "--proc",
                "/proc",
                "--die-with-parent",
                "--",
                agent,
            ]);
            command
        }
    };
    let child = command
        .args([
            "--socket",
            socket.to_str().unwrap(),
            "--workspace",
            workspace.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if UnixStream::connect(&socket).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Agent {
        child,
        first_process,
        socket,
        workspace,
        dir,
    }
}

impl Agent {
    /// The host's pid of the agent's first process, when started by
    /// [`start_agent_as_first_process`]: `bwrap`'s one child.
    fn first_process_pid(&self) -> u32 {
        let bwrap = self.child.id().unwrap();
        let children =
            std::fs::read_to_string(format!("/proc/{bwrap}/task/{bwrap}/children")).unwrap();
        let mut pids = children.split_whitespace();
        let pid = pids
            .next()
            .expect("bwrap has started the agent")
            .parse()
            .unwrap();
        assert_eq!(pids.next(), None, "bwrap has one child");
        pid
    }

    /// Sends the agent `signal` (say `"TERM"`) and waits for it to exit.
    /// (For one started by [`start_agent_as_first_process`], its first process; and waits
    /// for `bwrap`.)
    pub async fn signal_and_wait(&mut self, signal: &str) -> std::process::ExitStatus {
        let pid = if self.first_process {
            self.first_process_pid()
        } else {
            self.child.id().unwrap()
        }
        .to_string();
        let sent = tokio::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .await
            .unwrap();
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("the agent exits")
            .unwrap()
    }
}

/// A workspace path, for messages (a test's paths are valid).
pub fn p(path: &str) -> WorkspacePath {
    WorkspacePath::parse(path).unwrap()
}

pub struct Client {
    pub stream: UnixStream,
    next_id: u32,
    /// Frames read while waiting for a reply, for `next` to hand out in order.
    held: std::collections::VecDeque<Frame>,
}

impl Client {
    pub async fn connect(agent: &Agent) -> Client {
        let mut client = Client {
            stream: UnixStream::connect(&agent.socket).await.unwrap(),
            next_id: 1,
            held: std::collections::VecDeque::new(),
        };
        let reply = client.request(Message::Hello { version: VERSION }).await;
        assert_eq!(reply, Message::Hello { version: VERSION });
        client
    }

    pub async fn send(&mut self, message: Message) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        write_frame(&mut self.stream, &Frame::new(id, message))
            .await
            .unwrap();
        id
    }

    pub async fn next(&mut self) -> Frame {
        if let Some(frame) = self.held.pop_front() {
            return frame;
        }
        self.read().await
    }

    async fn read(&mut self) -> Frame {
        tokio::time::timeout(Duration::from_secs(10), read_frame(&mut self.stream))
            .await
            .expect("the agent answers")
            .unwrap()
            .expect("the connection is open")
    }

    /// Sends a frame of `tag` with a payload made by hand (what a typed `Message` cannot
    /// express, such as a path leaving the workspace); returns its id.
    pub async fn send_raw(&mut self, tag: Tag, payload: &[u8]) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        let mut bytes = ((protocol::HEADER_LEN + payload.len()) as u32)
            .to_be_bytes()
            .to_vec();
        bytes.extend_from_slice(&(tag as u16).to_be_bytes());
        bytes.extend_from_slice(&id.to_be_bytes());
        bytes.extend_from_slice(payload);
        self.stream.write_all(&bytes).await.unwrap();
        id
    }

    /// The reply to the frame `id`; events in between are kept for `next`.
    pub async fn reply_to(&mut self, id: u32) -> Message {
        if let Some(at) = self.held.iter().position(|frame| frame.id == id) {
            return self.held.remove(at).unwrap().message;
        }
        loop {
            let frame = self.read().await;
            if frame.id == id {
                return frame.message;
            }
            self.held.push_back(frame);
        }
    }

    /// Sends a request and returns its reply; events in between are kept for `next`.
    pub async fn request(&mut self, message: Message) -> Message {
        let id = self.send(message).await;
        self.reply_to(id).await
    }

    /// Attaches to `terminal` (its scrollback, then live output).
    pub async fn attach(&mut self, terminal: TerminalId) {
        assert_eq!(
            self.request(Message::Attach { terminal }).await,
            Message::Ok
        );
    }

    /// Opens an 80×24 terminal and attaches to it.
    pub async fn open_attached(&mut self) -> TerminalId {
        let terminal = self.open(80, 24).await;
        self.attach(terminal).await;
        terminal
    }

    /// Types `keys` into `terminal`.
    pub async fn keys(&mut self, terminal: TerminalId, keys: impl Into<Vec<u8>>) {
        self.send(Message::Input {
            terminal,
            data: keys.into(),
        })
        .await;
    }

    pub async fn open(&mut self, cols: u16, rows: u16) -> TerminalId {
        match self.request(Message::OpenTerminal { cols, rows }).await {
            Message::TerminalOpened { terminal } => terminal,
            other => panic!("expected TerminalOpened, got {other:?}"),
        }
    }

    /// Runs `command` in a new terminal (a `Run` request) and attaches to it.
    pub async fn run_attached(&mut self, command: &str) -> TerminalId {
        let terminal = match self
            .request(Message::Run {
                command: command.into(),
                cols: 80,
                rows: 24,
            })
            .await
        {
            Message::TerminalOpened { terminal } => terminal,
            other => panic!("expected TerminalOpened, got {other:?}"),
        };
        self.attach(terminal).await;
        terminal
    }

    /// Reads terminal output until it contains `needle`; returns all of it.
    pub async fn output_until(&mut self, terminal: TerminalId, needle: &str) -> String {
        let mut seen = String::new();
        loop {
            let frame = self.next().await;
            if let Message::Output { terminal: t, data } = frame.message {
                assert_eq!(t, terminal);
                seen.push_str(&String::from_utf8_lossy(&data));
                if seen.contains(needle) {
                    return seen;
                }
            }
        }
    }
}
