//! The terminals of one workspace: a bash login shell per terminal on a PTY, its scrollback
//! ring, and the clients attached to it. Each read from the PTY goes into the ring and, in
//! the same step, into every attached client's [`Outbox`].

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use model::{TerminalId, TerminalInfo};
use protocol::{Frame, Message};
use pty_process::{OwnedWritePty, Size};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::{oneshot, watch},
};

use crate::{
    outbox::{HIGH_WATER, Outbox, Refused},
    ring::Ring,
};

/// Scrollback kept per terminal and replayed on attach (in one frame).
pub const SCROLLBACK_BYTES: usize = protocol::MAX_OUTPUT;
/// Largest single read from a PTY.
const READ_CHUNK: usize = 16 * 1024;
/// Most terminals one workspace may have open.
pub const MAX_TERMINALS: usize = protocol::MAX_TERMINALS;

/// How shells are started.
#[derive(Debug, Clone)]
pub struct ShellConfig {
    /// The program, normally `bash`.
    pub program: PathBuf,
    /// Its arguments, normally `["--login"]`.
    pub args: Vec<String>,
    /// The working directory: the workspace.
    pub cwd: PathBuf,
    /// The complete environment (nothing is inherited).
    pub env: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such terminal")]
    NotFound,
    #[error("too many terminals (at most {MAX_TERMINALS})")]
    TooMany,
    #[error("pty: {0}")]
    Pty(#[from] pty_process::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// How a `run` ended, measured by the `measure` helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunResult {
    pub exit_code: i32,
    pub wall_ms: u64,
    pub peak_rss_kib: u64,
}

impl RunResult {
    /// Parses the helper's result file: `exit wall_ms peak_rss_kib`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut fields = text.split_whitespace();
        Some(Self {
            exit_code: fields.next()?.parse().ok()?,
            wall_ms: fields.next()?.parse().ok()?,
            peak_rss_kib: fields.next()?.parse().ok()?,
        })
    }
}

impl RunResult {
    fn message(self, terminal: TerminalId) -> Message {
        Message::RunFinished {
            terminal,
            exit_code: self.exit_code,
            wall_ms: self.wall_ms,
            peak_rss_kib: self.peak_rss_kib,
        }
    }
}

struct Terminal {
    writer: tokio::sync::Mutex<OwnedWritePty>,
    /// Fired by `close` to kill the shell.
    kill: Mutex<Option<oneshot::Sender<()>>>,
    /// Scrollback and clients, under one lock: that makes "replay, then attach" gap-free.
    output: Mutex<Output>,
    exit: watch::Receiver<Option<i32>>,
    /// The command of a run; `None` for a shell.
    command: Option<String>,
}

struct Output {
    ring: Ring,
    clients: Vec<Arc<Outbox>>,
    /// A run's result, kept for clients that attach after it ended.
    finished: Option<RunResult>,
}

impl Terminal {
    fn output(&self) -> std::sync::MutexGuard<'_, Output> {
        self.output
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Output {
    /// Into the ring and out to every client; a client too far behind is detached. Returns
    /// the clients now [`HIGH_WATER`] or more behind, for the pump to wait for.
    fn publish(&mut self, terminal: TerminalId, data: &[u8]) -> Vec<Arc<Outbox>> {
        self.ring.push(data);
        let mut behind = Vec::new();
        self.clients
            .retain(|client| match client.output(terminal, data) {
                Ok(backlog) => {
                    if backlog >= HIGH_WATER {
                        behind.push(client.clone());
                    }
                    true
                }
                Err(Refused::Behind) => {
                    lagged(client, terminal);
                    false
                }
                Err(Refused::Closed) => false,
            });
        behind
    }

    /// Detaches a client that stopped taking bytes (see [`Outbox::drained`]).
    fn detach_stalled(&mut self, terminal: TerminalId, client: &Arc<Outbox>) {
        let before = self.clients.len();
        self.clients.retain(|other| !Arc::ptr_eq(other, client));
        if self.clients.len() < before {
            lagged(client, terminal);
        }
    }
}

/// Tells a client it was detached from `terminal` for falling behind.
fn lagged(client: &Outbox, terminal: TerminalId) {
    client.force(&Frame::new(0, Message::TerminalLagged { terminal }));
}

/// All terminals of the workspace. Cheap to clone.
#[derive(Clone)]
pub struct Terminals {
    shell: ShellConfig,
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    next_id: TerminalId,
    terminals: HashMap<TerminalId, Arc<Terminal>>,
}

impl Terminals {
    pub fn new(shell: ShellConfig) -> Self {
        Self {
            shell,
            inner: Arc::new(Mutex::new(Inner {
                next_id: TerminalId(1),
                terminals: HashMap::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, id: TerminalId) -> Result<Arc<Terminal>, Error> {
        self.lock()
            .terminals
            .get(&id)
            .cloned()
            .ok_or(Error::NotFound)
    }

    /// Starts a shell of the given size; returns its id.
    pub fn open(&self, cols: u16, rows: u16) -> Result<TerminalId, Error> {
        self.spawn(cols, rows, None)
    }

    /// Runs `command` (through `bash -lc`) in a new terminal, measured by this binary's
    /// `measure` helper: its attached clients get its output, then `Finished` with the exit
    /// code, wall time and peak memory, then `Exited`.
    pub fn run(&self, command: &str, cols: u16, rows: u16) -> Result<TerminalId, Error> {
        self.spawn(cols, rows, Some(command))
    }

    fn spawn(&self, cols: u16, rows: u16, run: Option<&str>) -> Result<TerminalId, Error> {
        if self.lock().terminals.len() >= MAX_TERMINALS {
            return Err(Error::TooMany);
        }
        let (pty, pts) = pty_process::open()?;
        pty.resize(Size::new(rows.max(1), cols.max(1)))?;
        let result_file = run.map(|_| {
            static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            std::env::temp_dir().join(format!("codepod-run-{}-{n}", std::process::id()))
        });
        let mut command = match (run, &result_file) {
            (Some(run), Some(result_file)) => pty_process::Command::new(std::env::current_exe()?)
                .arg("measure")
                .arg(result_file)
                .arg("--")
                .arg(&self.shell.program)
                .args(["-lc", run]),
            _ => pty_process::Command::new(&self.shell.program).args(&self.shell.args),
        }
        .current_dir(&self.shell.cwd)
        .env_clear();
        for (key, value) in &self.shell.env {
            command = command.env(key, value);
        }
        let mut child = command.spawn(pts)?;
        let (mut reader, writer) = pty.into_split();
        let (exit_tx, exit) = watch::channel(None);
        let (kill_tx, mut kill_rx) = oneshot::channel();
        let terminal = Arc::new(Terminal {
            writer: tokio::sync::Mutex::new(writer),
            kill: Mutex::new(Some(kill_tx)),
            command: run.map(str::to_owned),
            output: Mutex::new(Output {
                ring: Ring::new(SCROLLBACK_BYTES),
                clients: Vec::new(),
                finished: None,
            }),
            exit,
        });
        let id = {
            let mut inner = self.lock();
            let id = inner.next_id;
            inner.next_id = TerminalId(id.0 + 1);
            inner.terminals.insert(id, terminal.clone());
            id
        };
        // Pump: PTY output → ring + attached clients, no faster than they take it (a client
        // far behind pauses it: the shell's writes block). Ends when the shell's side closes.
        tokio::spawn(async move {
            let mut buffer = vec![0u8; READ_CHUNK];
            'pump: loop {
                let behind = tokio::select! {
                    read = reader.read(&mut buffer) => match read {
                        // EIO once the shell side has closed.
                        Ok(0) | Err(_) => break,
                        Ok(n) => terminal.output().publish(id, &buffer[..n]),
                    },
                    _ = &mut kill_rx => {
                        let _ = child.start_kill();
                        break;
                    }
                };
                for client in behind {
                    tokio::select! {
                        drained = client.drained() => if drained == Err(Refused::Behind) {
                            terminal.output().detach_stalled(id, &client);
                        },
                        _ = &mut kill_rx => {
                            let _ = child.start_kill();
                            break 'pump;
                        }
                    }
                }
            }
            let status = match child.wait().await {
                Ok(status) => status.code().unwrap_or(-1),
                Err(_) => -1,
            };
            let finished = result_file.as_ref().and_then(|file| {
                let result = std::fs::read_to_string(file)
                    .ok()
                    .and_then(|text| RunResult::parse(&text));
                let _ = std::fs::remove_file(file);
                result
            });
            let mut output = terminal.output();
            output.finished = finished;
            let _ = exit_tx.send(Some(status));
            for client in std::mem::take(&mut output.clients) {
                if let Some(finished) = finished {
                    client.force(&Frame::new(0, finished.message(id)));
                }
                client.force(&Frame::new(
                    0,
                    Message::TerminalExited {
                        terminal: id,
                        status,
                    },
                ));
            }
            drop(output);
            tracing::info!(terminal = id.0, status, "shell exited");
        });
        Ok(id)
    }

    /// Attaches a client to a terminal: the scrollback goes out first, then `answer` (the
    /// reply to its request, which so tells the client where the replay ends: a terminal
    /// emulator must not answer the queries in a replay, the program that asked is long
    /// gone), then live output, with nothing lost or doubled in between; an ended
    /// terminal's end goes out at once. Attaching again replays again.
    pub fn attach(
        &self,
        id: TerminalId,
        client: &Arc<Outbox>,
        answer: &Frame,
    ) -> Result<(), Error> {
        let terminal = self.get(id)?;
        let mut output = terminal.output();
        output.clients.retain(|other| !Arc::ptr_eq(other, client));
        let replay = output.ring.contents();
        if !replay.is_empty() {
            client.force(&Frame::new(
                0,
                Message::Output {
                    terminal: id,
                    data: replay,
                },
            ));
        }
        client.force(answer);
        if let Some(finished) = output.finished {
            client.force(&Frame::new(0, finished.message(id)));
        }
        match *terminal.exit.borrow() {
            Some(status) => client.force(&Frame::new(
                0,
                Message::TerminalExited {
                    terminal: id,
                    status,
                },
            )),
            None => output.clients.push(client.clone()),
        }
        Ok(())
    }

    /// Detaches a client from every terminal (its connection ended).
    pub fn detach_all(&self, client: &Arc<Outbox>) {
        let terminals: Vec<_> = self.lock().terminals.values().cloned().collect();
        for terminal in terminals {
            terminal
                .output()
                .clients
                .retain(|other| !Arc::ptr_eq(other, client));
        }
    }

    pub async fn input(&self, id: TerminalId, data: &[u8]) -> Result<(), Error> {
        let terminal = self.get(id)?;
        let mut writer = terminal.writer.lock().await;
        writer.write_all(data).await?;
        Ok(())
    }

    pub async fn resize(&self, id: TerminalId, cols: u16, rows: u16) -> Result<(), Error> {
        let terminal = self.get(id)?;
        let writer = terminal.writer.lock().await;
        writer.resize(Size::new(rows.max(1), cols.max(1)))?;
        Ok(())
    }

    /// Closes a terminal: kills its shell and forgets it.
    pub fn close(&self, id: TerminalId) -> Result<(), Error> {
        let terminal = self.lock().terminals.remove(&id).ok_or(Error::NotFound)?;
        let kill = terminal
            .kill
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(kill) = kill {
            let _ = kill.send(());
        }
        Ok(())
    }

    /// The ids of the open terminals.
    pub fn list(&self) -> Vec<TerminalId> {
        let mut ids: Vec<_> = self.lock().terminals.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The open terminals (running or ended but not closed), oldest first.
    pub fn infos(&self) -> Vec<TerminalInfo> {
        let mut infos: Vec<_> = self
            .lock()
            .terminals
            .iter()
            .map(|(id, terminal)| TerminalInfo {
                terminal: *id,
                command: terminal.command.clone(),
                exited: *terminal.exit.borrow(),
            })
            .collect();
        infos.sort_unstable_by_key(|info| info.terminal);
        infos
    }
}
