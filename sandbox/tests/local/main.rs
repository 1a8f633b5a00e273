//! Hostile tests: a real bubblewrap sandbox running the real agent, attacked from the inside
//! through a real shell. Each test states the claim it attacks. Run as root (as CI does),
//! they exercise the whole boundary: a host uid per sandbox, the private mount namespace,
//! cgroups; the same binary runs inside a cgroup v2 VM (`scripts/vm-test.sh`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure here is a failed test"
)]

mod isolation;
mod lifecycle;
mod limits;
mod network;

use std::{path::PathBuf, time::Duration};

use model::TerminalId;
use sandbox::{
    AgentConnection, Limits, Runtime, SandboxId,
    agent::{TerminalEvent, TerminalSession},
    local::{LocalConfig, LocalRuntime},
};

fn agent_bin() -> PathBuf {
    // target/<profile>/deps/<this test> → target/<profile>/codepod-agent
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

/// The environment scripts/setup.sh installs.
fn python_env() -> PathBuf {
    let env = PathBuf::from(
        std::env::var("CODEPOD_PYTHON_ENV").unwrap_or_else(|_| "/opt/codepod/python".to_owned()),
    );
    assert!(
        env.join("bin/python").exists(),
        "run scripts/setup.sh first: no {}",
        env.display()
    );
    env
}

struct Fixture {
    runtime: LocalRuntime,
    id: SandboxId,
    root: tempfile::TempDir,
}

impl Fixture {
    /// A terminal session in the sandbox, as an IDE tab has one.
    async fn session(&self) -> TerminalSession {
        TerminalSession::open(self.runtime.connect(&self.id).await.unwrap())
            .await
            .unwrap()
    }

    /// A control connection, as the server holds one.
    async fn control(&self) -> AgentConnection {
        AgentConnection::open(self.runtime.connect(&self.id).await.unwrap())
            .await
            .unwrap()
    }

    /// The sandbox's directory on the host.
    fn host_dir(&self) -> PathBuf {
        self.root.path().join(self.id.as_str())
    }

    async fn stop(&self) {
        self.runtime.stop(&self.id).await.unwrap();
    }
}

async fn sandbox_with(limits: Limits) -> Fixture {
    sandbox_configured(|config| config.limits = limits).await
}

async fn sandbox_configured(adjust: impl FnOnce(&mut LocalConfig)) -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let mut config = LocalConfig::new(root.path().to_path_buf(), agent_bin());
    config.python_env = Some(python_env());
    adjust(&mut config);
    let runtime = LocalRuntime::new(config).unwrap();
    let id = new_id();
    runtime.ensure(&id).await.expect("the sandbox starts");
    Fixture { runtime, id, root }
}

async fn sandbox() -> Fixture {
    sandbox_with(Limits::default()).await
}

fn new_id() -> SandboxId {
    SandboxId::parse(&format!(
        "{:08x}-0000-4000-8000-{:012x}",
        std::process::id(),
        rand_suffix()
    ))
    .unwrap()
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    hasher.finish() & 0xffff_ffff_ffff
}

/// The next event of `kind` on the session (others skipped), within 60 s.
async fn event_until<T>(
    session: &mut TerminalSession,
    mut pick: impl FnMut(TerminalEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let event = tokio::time::timeout_at(deadline, session.events.next())
            .await
            .expect("the agent answers")
            .expect("the session is open")
            .expect("the agent keeps to the protocol");
        if let Some(found) = pick(event) {
            return found;
        }
    }
}

/// Opens a shell and attaches to it.
async fn open_attached(session: &mut TerminalSession) -> TerminalId {
    session.sender.open(200, 50).await.unwrap();
    let terminal = event_until(session, |event| match event {
        TerminalEvent::Opened { terminal, .. } => Some(terminal),
        _ => None,
    })
    .await;
    session.sender.attach(terminal).await.unwrap();
    terminal
}

/// Runs `command` in a fresh terminal and returns everything the terminal printed up to the
/// end marker (which carries the exit status).
async fn run(session: &mut TerminalSession, command: &str) -> String {
    let terminal = open_attached(session).await;
    // The marker is split in the typed text so that only the output contains it whole.
    let line = format!("{command}; echo __DO\"\"NE__$?\r");
    session
        .sender
        .input(terminal, line.as_bytes())
        .await
        .unwrap();
    let mut seen = String::new();
    loop {
        let data = event_until(session, |event| match event {
            TerminalEvent::Output { terminal: t, data } if t == terminal => Some(data),
            _ => None,
        })
        .await;
        seen.push_str(&String::from_utf8_lossy(&data));
        let clean = strip_ansi(&seen);
        // What the command printed: after the (last) echo of the typed line; the line is
        // echoed twice when typed before bash is reading.
        let Some(typed) = clean.rfind("__DO\"\"NE__$?") else {
            continue;
        };
        let Some(line_end) = clean[typed..].find('\n') else {
            continue;
        };
        let printed = &clean[typed + line_end + 1..];
        if let Some(at) = printed.find("__DONE__")
            && printed[at..].contains('\n')
        {
            let _ = session.sender.close(terminal).await;
            return printed.to_owned();
        }
    }
}

/// Removes terminal escape sequences (bash's bracketed-paste toggles and the like).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn status_of(output: &str) -> i32 {
    let at = output.find("__DONE__").unwrap() + "__DONE__".len();
    output[at..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The number on the first line of `out` that is one.
fn number_in(out: &str) -> u64 {
    out.lines()
        .find_map(|line| line.trim().parse().ok())
        .unwrap_or_else(|| panic!("no number in {out:?}"))
}

/// Whether this test process can give sandboxes the whole boundary (root).
fn as_root() -> bool {
    rustix::process::geteuid().is_root()
}
