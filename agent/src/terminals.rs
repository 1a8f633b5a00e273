//! The terminals of one workspace: a bash login shell per terminal on a PTY, its scrollback
//! ring, and a bounded broadcast of live output to the attached clients.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use protocol::TerminalId;
use pty_process::{OwnedWritePty, Size};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::{broadcast, oneshot, watch},
};

use crate::ring::Ring;

/// Scrollback kept per terminal and replayed on attach.
pub const SCROLLBACK_BYTES: usize = 256 * 1024;
/// Live output chunks a client may fall behind by before it is detached.
pub const LIVE_CHUNKS: usize = 1024;
/// Largest single read from a PTY (and so the largest `Output` frame).
const READ_CHUNK: usize = 16 * 1024;
/// Most terminals one workspace may have open.
pub const MAX_TERMINALS: usize = 16;

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

/// What a client receives from a terminal it is attached to.
#[derive(Debug, Clone)]
pub enum Event {
    Output(Arc<[u8]>),
    /// A run's measurements, just before its `Exited`.
    Finished(RunResult),
    Exited(i32),
}

struct Terminal {
    writer: tokio::sync::Mutex<OwnedWritePty>,
    /// Fired by `close` to kill the shell.
    kill: Mutex<Option<oneshot::Sender<()>>>,
    /// Scrollback, and the lock that makes "replay, then subscribe" gap-free.
    ring: Mutex<Ring>,
    events: broadcast::Sender<Event>,
    exit: watch::Receiver<Option<i32>>,
    /// A run's result, kept for clients that attach after it ended.
    finished: Mutex<Option<RunResult>>,
    /// The command of a run; `None` for a shell.
    command: Option<String>,
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

/// An attachment: the scrollback at the moment of attaching, and the live events after it.
pub struct Attached {
    pub replay: Vec<u8>,
    pub events: broadcast::Receiver<Event>,
    /// `Some(status)` if the shell had already exited when attaching.
    pub exited: Option<i32>,
    /// A run's result, if it had already ended.
    pub finished: Option<RunResult>,
}

impl Terminals {
    pub fn new(shell: ShellConfig) -> Self {
        Self {
            shell,
            inner: Arc::new(Mutex::new(Inner {
                next_id: 1,
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
        let (events, _) = broadcast::channel(LIVE_CHUNKS);
        let (exit_tx, exit) = watch::channel(None);
        let (kill_tx, mut kill_rx) = oneshot::channel();
        let terminal = Arc::new(Terminal {
            writer: tokio::sync::Mutex::new(writer),
            kill: Mutex::new(Some(kill_tx)),
            finished: Mutex::new(None),
            command: run.map(str::to_owned),
            ring: Mutex::new(Ring::new(SCROLLBACK_BYTES)),
            events,
            exit,
        });
        let id = {
            let mut inner = self.lock();
            let id = inner.next_id;
            inner.next_id += 1;
            inner.terminals.insert(id, terminal.clone());
            id
        };
        // Pump: PTY output → ring + live subscribers. Ends when the shell's side closes.
        tokio::spawn(async move {
            let mut buffer = vec![0u8; READ_CHUNK];
            loop {
                tokio::select! {
                    read = reader.read(&mut buffer) => match read {
                        // EIO once the shell side has closed.
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let chunk: Arc<[u8]> = Arc::from(&buffer[..n]);
                            let mut ring = terminal.ring.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                            ring.push(&chunk);
                            // No receivers is fine: output is kept in the ring for later.
                            let _ = terminal.events.send(Event::Output(chunk));
                        }
                    },
                    _ = &mut kill_rx => {
                        let _ = child.start_kill();
                        break;
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
            let _ring = terminal
                .ring
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(finished) = finished {
                *terminal
                    .finished
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(finished);
                let _ = terminal.events.send(Event::Finished(finished));
            }
            let _ = exit_tx.send(Some(status));
            let _ = terminal.events.send(Event::Exited(status));
            tracing::info!(terminal = id, status, "shell exited");
        });
        Ok(id)
    }

    /// Attaches to a terminal: its scrollback, then live events, with nothing lost or
    /// doubled in between.
    pub fn attach(&self, id: TerminalId) -> Result<Attached, Error> {
        let terminal = self.get(id)?;
        let ring = terminal
            .ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let finished = *terminal
            .finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(Attached {
            replay: ring.contents(),
            events: terminal.events.subscribe(),
            exited: *terminal.exit.borrow(),
            finished,
        })
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
    pub fn infos(&self) -> Vec<protocol::TerminalInfo> {
        let mut infos: Vec<_> = self
            .lock()
            .terminals
            .iter()
            .map(|(id, terminal)| protocol::TerminalInfo {
                terminal: *id,
                command: terminal.command.clone(),
                exited: *terminal.exit.borrow(),
            })
            .collect();
        infos.sort_unstable_by_key(|info| info.terminal);
        infos
    }
}
