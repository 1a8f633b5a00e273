//! The control connection: one per running sandbox, held by the server for the sandbox's
//! life, carrying its file operations and the stream of changes made inside it. Requests
//! are multiplexed (each has an id; any number may be in flight, up to [`MAX_PENDING`]), so
//! a save does not wait for a connection or a handshake — on Kubernetes an exec session —
//! of its own.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError, Weak,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use model::{TerminalInfo, WorkspacePath};
use protocol::{FileInfo, Message};
use tokio::sync::{Notify, mpsc, oneshot};

use super::{
    Failure,
    frames::{FrameWriter, Transport},
};
use crate::{Error, Result};

/// How long a request may wait for its answer. Past it the connection is taken to be
/// wedged (an agent that stopped, or one that never answers) and closed; the next call
/// opens a new one.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long packing or unpacking the installed packages may take (tar and gzip of up to
/// the quota inside the sandbox).
pub const LONG_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Requests in flight on one connection (a control connection or a terminal session).
pub const MAX_PENDING: usize = 256;
/// Changes queued for the consumer of [`AgentConnection::watch`]…
const MAX_QUEUED_CHANGES: usize = 4096;
/// … and their contents' bytes. Beyond either the stream reports [`SandboxChange::Lagged`].
const MAX_QUEUED_BYTES: usize = 64 * 1024 * 1024;

/// A change made inside the sandbox, as the agent's watcher saw it (ignore list applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxChange {
    /// A file or folder was created or changed; `content` is `None` for a folder and for a
    /// file over [`protocol::MAX_WATCHED_CONTENT`].
    Changed {
        path: WorkspacePath,
        is_dir: bool,
        content: Option<Vec<u8>>,
    },
    Removed {
        path: WorkspacePath,
    },
    /// Changes were lost (the agent's or this queue's bound was hit): take a
    /// [`AgentConnection::snapshot`] to catch up. The stream goes on.
    Lagged,
}

impl SandboxChange {
    fn weight(&self) -> usize {
        match self {
            Self::Changed { path, content, .. } => {
                path.as_str().len() + content.as_ref().map_or(0, Vec::len)
            }
            Self::Removed { path } => path.as_str().len(),
            Self::Lagged => 0,
        }
    }
}

/// What [`AgentConnection::save_environment`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvironmentSave {
    /// Nothing changed since the signature passed.
    Unchanged,
    /// The installed packages, packed (empty: none), with their signature and names.
    Saved {
        archive: Vec<u8>,
        signature: String,
        packages: Vec<String>,
    },
}

/// The workspace as the agent sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Regular files (size, hash) and folders, in path order, ignore list applied.
    pub files: Vec<FileInfo>,
    /// What exists but is not listed — ignored paths, symlinks, special files — without
    /// what lies below them.
    pub unlisted: Vec<WorkspacePath>,
    /// False when the agent stopped listing at [`protocol::MAX_SNAPSHOT_ENTRIES`].
    pub complete: bool,
}

type Pending = HashMap<u32, oneshot::Sender<Message>>;

struct Inner {
    writer: tokio::sync::Mutex<Option<FrameWriter>>,
    pending: Mutex<Pending>,
    watch: Mutex<Option<WatchSink>>,
    closed: AtomicBool,
    reader: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(reader) = lock(&self.reader).take() {
            reader.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The server's control connection to one agent. Cheap to clone; every clone is the same
/// connection.
#[derive(Clone)]
pub struct AgentConnection {
    inner: Arc<Inner>,
}

impl AgentConnection {
    /// Performs the handshake over `transport` and starts reading answers and changes.
    pub async fn open(transport: Transport) -> Result<Self> {
        let (mut reader, writer) = transport.handshake().await?;
        let inner = Arc::new(Inner {
            writer: tokio::sync::Mutex::new(Some(writer)),
            pending: Mutex::new(HashMap::new()),
            watch: Mutex::new(None),
            closed: AtomicBool::new(false),
            reader: Mutex::new(None),
        });
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        let task = tokio::spawn(async move {
            loop {
                let frame = reader.recv().await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                match frame {
                    Ok(Some(frame)) => dispatch(&inner, frame.id, frame.message),
                    Ok(None) => {
                        shut(&inner);
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "closing an agent connection that broke the protocol");
                        shut(&inner);
                        return;
                    }
                }
            }
        });
        *lock(&inner.reader) = Some(task);
        Ok(Self { inner })
    }

    /// Whether the connection has ended (the agent went away, broke the protocol, or let a
    /// request time out). A closed connection stays closed; open another.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Ends the connection; requests in flight fail with [`Error::Closed`].
    pub async fn close(&self) {
        shut(&self.inner);
        if let Some(writer) = self.inner.writer.lock().await.take() {
            writer.close().await;
        }
    }

    /// Sends one request and waits for its answer, within [`REQUEST_TIMEOUT`] in all.
    async fn call(&self, message: Message) -> Result<Message> {
        self.call_within(message, REQUEST_TIMEOUT).await
    }

    /// A request whose answer may take up to [`LONG_REQUEST_TIMEOUT`] (the agent answers
    /// it from a task of its own; other requests go on meanwhile).
    async fn call_long(&self, message: Message) -> Result<Message> {
        self.call_within(message, LONG_REQUEST_TIMEOUT).await
    }

    async fn call_within(&self, message: Message, answer_within: Duration) -> Result<Message> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let (answer, answered) = oneshot::channel();
        let sent = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let mut writer = self.inner.writer.lock().await;
            let writer = writer.as_mut().ok_or(Error::Closed)?;
            let id = writer.next_id();
            {
                let mut pending = lock(&self.inner.pending);
                if pending.len() >= MAX_PENDING {
                    return Err(Error::Busy);
                }
                // Noted before it is sent: the answer can come back before `send` returns.
                pending.insert(id, answer);
            }
            if let Err(error) = writer.send(message).await {
                lock(&self.inner.pending).remove(&id);
                return Err(error);
            }
            Ok(id)
        })
        .await;
        let id = match sent {
            Ok(Ok(id)) => id,
            Ok(Err(Error::Busy)) => return Err(Error::Busy),
            Ok(Err(error)) => {
                shut(&self.inner);
                return Err(error);
            }
            Err(_) => {
                shut(&self.inner);
                return Err(Error::Timeout("sending to the agent"));
            }
        };
        match tokio::time::timeout(answer_within, answered).await {
            Ok(Ok(message)) => Ok(message),
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => {
                lock(&self.inner.pending).remove(&id);
                tracing::warn!(
                    "the sandbox's agent did not answer in time; closing its connection"
                );
                shut(&self.inner);
                Err(Error::Timeout("the agent's answer"))
            }
        }
    }

    /// A request answered by `Ok`.
    async fn call_ok(&self, message: Message) -> Result<()> {
        match self.call(message).await? {
            Message::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Answers a `Ping`.
    pub async fn ping(&self) -> Result<()> {
        match self.call(Message::Ping).await? {
            Message::Pong => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Creates or replaces a file (and its missing parent folders).
    pub async fn write_file(&self, path: &WorkspacePath, data: &[u8]) -> Result<()> {
        self.call_ok(Message::WriteFile {
            path: path.clone(),
            data: data.to_vec(),
        })
        .await
    }

    /// Creates a folder and its missing parents.
    pub async fn make_dir(&self, path: &WorkspacePath) -> Result<()> {
        self.call_ok(Message::MakeDir { path: path.clone() }).await
    }

    /// Moves or renames; the target must not exist.
    pub async fn rename(&self, from: &WorkspacePath, to: &WorkspacePath) -> Result<()> {
        self.call_ok(Message::Move {
            from: from.clone(),
            to: to.clone(),
        })
        .await
    }

    /// Deletes a file, or a folder with everything in it.
    pub async fn delete(&self, path: &WorkspacePath) -> Result<()> {
        self.call_ok(Message::Delete { path: path.clone() }).await
    }

    /// A file's content (up to [`protocol::MAX_READ`]).
    pub async fn read_file(&self, path: &WorkspacePath) -> Result<Vec<u8>> {
        match self.call(Message::ReadFile { path: path.clone() }).await? {
            Message::FileContent {
                path: answered,
                data,
            } if &answered == path => Ok(data),
            other => Err(unexpected(other)),
        }
    }

    /// Every file and folder of the workspace with sizes and hashes (ignore list applied),
    /// and what exists but is not listed.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        match self.call(Message::Snapshot).await? {
            Message::SnapshotResult {
                files,
                unlisted,
                complete,
            } => Ok(Snapshot {
                files,
                unlisted,
                complete,
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Packs the user's installed packages unless their signature is still `unless`
    /// ([`EnvironmentSave::Unchanged`]); then reads the archive, at most `max_bytes` of it
    /// (a larger one is [`Error::Agent`] with `TooLarge`).
    pub async fn save_environment(&self, max_bytes: u64, unless: &str) -> Result<EnvironmentSave> {
        let answer = self
            .call_long(Message::SaveEnvironment {
                max_bytes,
                unless: unless.to_owned(),
            })
            .await?;
        let (bytes, signature, packages) = match answer {
            Message::EnvironmentUnchanged => return Ok(EnvironmentSave::Unchanged),
            Message::EnvironmentSaved {
                bytes,
                signature,
                packages,
            } => (bytes, signature, packages),
            other => return Err(unexpected(other)),
        };
        if bytes > max_bytes {
            return Err(Error::Protocol(format!(
                "the agent packed {bytes} bytes, over the {max_bytes} asked for"
            )));
        }
        let mut archive = Vec::with_capacity(usize::try_from(bytes).unwrap_or(0));
        while (archive.len() as u64) < bytes {
            match self
                .call(Message::ReadEnvironment {
                    offset: archive.len() as u64,
                })
                .await?
            {
                Message::EnvironmentData { data } if !data.is_empty() => {
                    let room = usize::try_from(bytes).unwrap_or(usize::MAX) - archive.len();
                    archive.extend_from_slice(&data[..data.len().min(room)]);
                }
                Message::EnvironmentData { .. } => {
                    return Err(Error::Protocol(
                        "the packages' archive ended early".to_owned(),
                    ));
                }
                other => return Err(unexpected(other)),
            }
        }
        Ok(EnvironmentSave::Saved {
            archive,
            signature,
            packages,
        })
    }

    /// Unpacks a saved archive of packages into the sandbox.
    pub async fn restore_environment(&self, archive: &[u8]) -> Result<()> {
        let mut pieces = archive.chunks(protocol::MAX_ENVIRONMENT_CHUNK).peekable();
        while let Some(piece) = pieces.next() {
            let last = pieces.peek().is_none();
            let message = Message::RestoreEnvironment {
                data: piece.to_vec(),
                last,
            };
            match if last {
                self.call_long(message).await?
            } else {
                self.call(message).await?
            } {
                Message::Ok => {}
                other => return Err(unexpected(other)),
            }
        }
        Ok(())
    }

    /// Removes every installed package from the sandbox.
    pub async fn clear_environment(&self) -> Result<()> {
        match self.call_long(Message::ClearEnvironment).await? {
            Message::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// The sandbox's terminals.
    pub async fn terminals(&self) -> Result<Vec<TerminalInfo>> {
        match self.call(Message::ListTerminals).await? {
            Message::TerminalList { terminals } => Ok(terminals),
            other => Err(unexpected(other)),
        }
    }

    /// Starts the stream of changes made inside the sandbox. One per connection.
    pub async fn watch(&self) -> Result<Changes> {
        let (tx, rx) = mpsc::channel(MAX_QUEUED_CHANGES);
        let shared = Arc::new(WatchShared::default());
        {
            let mut watch = lock(&self.inner.watch);
            if watch.is_some() {
                return Err(Error::Protocol(
                    "this connection is already watching".into(),
                ));
            }
            // In place before the request: changes follow its answer at once.
            *watch = Some(WatchSink {
                tx,
                shared: shared.clone(),
            });
        }
        if let Err(error) = self.call_ok(Message::Watch).await {
            lock(&self.inner.watch).take();
            return Err(error);
        }
        Ok(Changes { rx, shared })
    }
}

/// An answer a request does not take: the agent's refusal, or nonsense.
fn unexpected(message: Message) -> Error {
    match message {
        Message::Error { code, message } => Error::Agent {
            failure: Failure::from(code),
            message,
        },
        other => Error::Protocol(format!("unexpected answer {:?}", other.tag())),
    }
}

/// Marks the connection ended: requests in flight fail, the change stream ends.
fn shut(inner: &Inner) {
    inner.closed.store(true, Ordering::Release);
    lock(&inner.pending).clear();
    if let Some(sink) = lock(&inner.watch).take() {
        sink.shared.changed.notify_one();
    }
}

/// Hands one frame from the agent to whoever waits for it.
fn dispatch(inner: &Inner, id: u32, message: Message) {
    if id != 0 {
        if let Some(waiting) = lock(&inner.pending).remove(&id) {
            let _ = waiting.send(message);
        }
        return;
    }
    let change = match message {
        Message::FileChanged { path, is_dir, data } => SandboxChange::Changed {
            path,
            is_dir,
            content: data,
        },
        Message::FileRemoved { path } => SandboxChange::Removed { path },
        Message::WatchLagged { missed } => {
            tracing::info!(missed, "the sandbox's watcher dropped changes");
            SandboxChange::Lagged
        }
        // Nothing else is pushed on a control connection.
        _ => return,
    };
    if let Some(sink) = lock(&inner.watch).as_ref() {
        sink.push(change);
    }
}

#[derive(Default)]
struct WatchShared {
    /// Changes were dropped; the consumer is told once it has taken what is queued.
    lagged: AtomicBool,
    queued_bytes: AtomicUsize,
    changed: Notify,
}

struct WatchSink {
    tx: mpsc::Sender<SandboxChange>,
    shared: Arc<WatchShared>,
}

impl WatchSink {
    /// Queues a change, or notes the stream lagged (queue full, or the agent said so).
    /// While a lag is unreported, later changes are dropped too: the consumer hears of the
    /// lag after everything before it, and catches up from a snapshot taken after that.
    fn push(&self, change: SandboxChange) {
        let shared = &self.shared;
        if change == SandboxChange::Lagged || shared.lagged.load(Ordering::Acquire) {
            shared.lagged.store(true, Ordering::Release);
            shared.changed.notify_one();
            return;
        }
        let weight = change.weight();
        let fits = shared.queued_bytes.load(Ordering::Acquire) + weight <= MAX_QUEUED_BYTES;
        if fits && self.tx.try_send(change).is_ok() {
            shared.queued_bytes.fetch_add(weight, Ordering::AcqRel);
        } else {
            shared.lagged.store(true, Ordering::Release);
        }
        shared.changed.notify_one();
    }
}

/// The changes made inside a sandbox, in order, from [`AgentConnection::watch`]. Ends when
/// the connection does.
pub struct Changes {
    rx: mpsc::Receiver<SandboxChange>,
    shared: Arc<WatchShared>,
}

impl Changes {
    /// A change already queued, if there is one (`next` without the wait), for taking
    /// changes in batches. A lag is left for `next` to report.
    pub fn next_queued(&mut self) -> Option<SandboxChange> {
        let change = self.rx.try_recv().ok()?;
        self.shared
            .queued_bytes
            .fetch_sub(change.weight(), Ordering::AcqRel);
        Some(change)
    }

    /// The next change; `None` once the connection has ended.
    pub async fn next(&mut self) -> Option<SandboxChange> {
        loop {
            match self.rx.try_recv() {
                Ok(change) => {
                    self.shared
                        .queued_bytes
                        .fetch_sub(change.weight(), Ordering::AcqRel);
                    return Some(change);
                }
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    return self
                        .shared
                        .lagged
                        .swap(false, Ordering::AcqRel)
                        .then_some(SandboxChange::Lagged);
                }
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            if self.shared.lagged.swap(false, Ordering::AcqRel) {
                return Some(SandboxChange::Lagged);
            }
            let changed = self.shared.changed.notified();
            tokio::select! {
                change = self.rx.recv() => match change {
                    Some(change) => {
                        self.shared.queued_bytes.fetch_sub(change.weight(), Ordering::AcqRel);
                        return Some(change);
                    }
                    None => {
                        return self
                            .shared
                            .lagged
                            .swap(false, Ordering::AcqRel)
                            .then_some(SandboxChange::Lagged);
                    }
                },
                () = changed => {}
            }
        }
    }
}
