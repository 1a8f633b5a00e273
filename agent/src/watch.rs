//! Changes made inside the sandbox (a file created in the terminal, a script's output),
//! found with inotify, debounced, filtered through the ignore list, and broadcast to the
//! clients that asked to `Watch`.
//!
//! The ignore list keeps caches and installed packages out of the database: by default
//! `__pycache__/`, `*.pyc`, `.venv/`, `venv/`, `node_modules/`, `.cache/`, `.git/`, plus the
//! workspace's own `.codepodignore` in gitignore syntax (re-read when it changes). Ignored
//! directories are not even watched, so a `pip install` into `.venv` costs nothing.

use std::{
    collections::{BTreeSet, HashMap},
    mem::MaybeUninit,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use protocol::Message;
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use tokio::sync::{broadcast, mpsc};

use crate::files::Workspace;

/// Changes are collected for this long after the first one before they are sent.
pub const DEBOUNCE: Duration = Duration::from_millis(100);
/// Files larger than this are announced without their content.
pub const CONTENT_CAP: u64 = protocol::MAX_WATCHED_CONTENT;
/// Changed paths queued between the inotify thread and the debouncer.
const PATH_QUEUE: usize = 4096;
/// Events buffered per watching client before it is detached as lagging.
pub const EVENT_QUEUE: usize = 1024;

/// The default ignore list, in gitignore syntax.
pub const DEFAULT_IGNORES: [&str; 7] = [
    "__pycache__/",
    "*.pyc",
    ".venv/",
    "venv/",
    "node_modules/",
    ".cache/",
    ".git/",
];

/// The ignore rules of one workspace.
#[derive(Clone)]
pub struct Ignores(Arc<Mutex<Gitignore>>);

impl Ignores {
    pub fn load(root: &Path) -> Self {
        Self(Arc::new(Mutex::new(Self::build(root))))
    }

    fn build(root: &Path) -> Gitignore {
        let mut builder = GitignoreBuilder::new(root);
        for pattern in DEFAULT_IGNORES {
            let _ = builder.add_line(None, pattern);
        }
        if let Ok(text) = std::fs::read_to_string(root.join(".codepodignore")) {
            for line in text.lines() {
                let _ = builder.add_line(None, line);
            }
        }
        builder.build().unwrap_or_else(|_| Gitignore::empty())
    }

    pub fn reload(&self, root: &Path) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Self::build(root);
    }

    /// Whether `relative` (or a folder it is in) is ignored.
    pub fn is_ignored(&self, relative: &str, is_dir: bool) -> bool {
        let rules = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rules
            .matched_path_or_any_parents(relative, is_dir)
            .is_ignore()
    }
}

/// What the inotify thread passes to the debouncer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    /// A path changed.
    Path(String),
    /// The kernel's event queue overflowed: changes were lost (the watches have been
    /// renewed over the whole tree since).
    Overflow,
}

/// Starts watching `root`; returns the broadcast that `Watch` clients subscribe to.
pub fn start(
    root: PathBuf,
    workspace: Arc<Workspace>,
) -> std::io::Result<broadcast::Sender<Message>> {
    let fd = inotify::init(CreateFlags::CLOEXEC)?;
    let (paths_tx, paths_rx) = mpsc::channel(PATH_QUEUE);
    let (events, _) = broadcast::channel(EVENT_QUEUE);
    let ignores = Ignores::load(&root);
    // The initial watches are in place before this returns, so nothing written after the
    // agent starts serving can be missed.
    let mut watches = HashMap::new();
    add_tree(&fd, &root, "", &ignores, &mut watches, &mut Vec::new());
    {
        let ignores = ignores.clone();
        let root = root.clone();
        std::thread::Builder::new()
            .name("watch".into())
            .spawn(move || watch_loop(fd, root, ignores, watches, paths_tx))?;
    }
    tokio::spawn(debounce(paths_rx, workspace, ignores, root, events.clone()));
    Ok(events)
}

const MASK: WatchFlags = WatchFlags::CREATE
    .union(WatchFlags::CLOSE_WRITE)
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::MOVED_FROM)
    .union(WatchFlags::DELETE);

/// Adds a watch on `relative` and every folder below it that is not ignored; reports every
/// entry found (they may have appeared before the watch existed).
fn add_tree(
    fd: &std::os::fd::OwnedFd,
    root: &Path,
    relative: &str,
    ignores: &Ignores,
    watches: &mut HashMap<i32, String>,
    found: &mut Vec<String>,
) {
    let absolute = if relative.is_empty() {
        root.to_path_buf()
    } else {
        root.join(relative)
    };
    let Ok(wd) = inotify::add_watch(
        fd,
        &absolute,
        MASK | WatchFlags::DONT_FOLLOW | WatchFlags::ONLYDIR,
    ) else {
        return;
    };
    watches.insert(wd, relative.to_owned());
    let Ok(entries) = std::fs::read_dir(&absolute) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = if relative.is_empty() {
            name
        } else {
            format!("{relative}/{name}")
        };
        let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
        if ignores.is_ignored(&child, is_dir) {
            continue;
        }
        found.push(child.clone());
        if is_dir {
            add_tree(fd, root, &child, ignores, watches, found);
        }
    }
}

fn watch_loop(
    fd: std::os::fd::OwnedFd,
    root: PathBuf,
    ignores: Ignores,
    mut watches: HashMap<i32, String>,
    paths: mpsc::Sender<Seen>,
) {
    let mut buffer = [MaybeUninit::<u8>::uninit(); 16 * 1024];
    let mut reader = inotify::Reader::new(&fd, &mut buffer);
    loop {
        let event = match reader.next() {
            Ok(event) => event,
            Err(rustix::io::Errno::INTR) => continue,
            Err(error) => {
                tracing::error!(error = %error, "inotify failed; the watcher stops");
                return;
            }
        };
        let flags = event.events();
        if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
            // A burst larger than the kernel's queue (`max_queued_events`): folders made in
            // it may have no watch yet. Watch the whole tree again, and tell the clients
            // (they catch up from a snapshot).
            tracing::warn!("the inotify queue overflowed; watching the tree again");
            add_tree(&fd, &root, "", &ignores, &mut watches, &mut Vec::new());
            if paths.blocking_send(Seen::Overflow).is_err() {
                return;
            }
            continue;
        }
        if flags.contains(ReadFlags::IGNORED) {
            watches.remove(&event.wd());
            continue;
        }
        let (Some(parent), Some(name)) = (watches.get(&event.wd()).cloned(), event.file_name())
        else {
            continue;
        };
        let name = name.to_string_lossy().into_owned();
        let relative = if parent.is_empty() {
            name
        } else {
            format!("{parent}/{name}")
        };
        let is_dir = flags.contains(ReadFlags::ISDIR);
        if ignores.is_ignored(&relative, is_dir) {
            continue;
        }
        let mut changed = vec![relative.clone()];
        if is_dir && flags.intersects(ReadFlags::CREATE | ReadFlags::MOVED_TO) {
            add_tree(&fd, &root, &relative, &ignores, &mut watches, &mut changed);
        }
        for path in changed {
            // Blocking here is the bound: a flood of changes waits for the debouncer (and,
            // past the kernel's queue, overflows it: reported above).
            if paths.blocking_send(Seen::Path(path)).is_err() {
                return;
            }
        }
    }
}

/// Collects changed paths for [`DEBOUNCE`], then announces each one's current state; after
/// an overflow of the kernel's queue, says that changes were lost.
async fn debounce(
    mut paths: mpsc::Receiver<Seen>,
    workspace: Arc<Workspace>,
    ignores: Ignores,
    root: PathBuf,
    events: broadcast::Sender<Message>,
) {
    while let Some(first) = paths.recv().await {
        let mut batch = BTreeSet::from([first]);
        let deadline = tokio::time::Instant::now() + DEBOUNCE;
        while let Ok(Some(seen)) = tokio::time::timeout_at(deadline, paths.recv()).await {
            batch.insert(seen);
        }
        let overflowed = batch.remove(&Seen::Overflow);
        if batch.contains(&Seen::Path(".codepodignore".to_owned())) {
            ignores.reload(&root);
        }
        let workspace = workspace.clone();
        let messages = tokio::task::spawn_blocking(move || {
            batch
                .into_iter()
                .filter_map(|seen| match seen {
                    Seen::Path(path) => describe(&workspace, path),
                    Seen::Overflow => None,
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        // No watcher connected is fine: the next start refills from the database.
        for message in messages {
            let _ = events.send(message);
        }
        if overflowed {
            let _ = events.send(Message::WatchLagged { missed: 0 });
        }
    }
}

/// The current state of a changed path, as an event (symlinks and special files are not
/// announced, nor names the database could not hold).
fn describe(workspace: &Workspace, path: String) -> Option<Message> {
    let path = model::WorkspacePath::parse(&path).ok()?;
    match workspace.kind(&path) {
        Ok(Some(true)) => Some(Message::FileChanged {
            path,
            is_dir: true,
            data: None,
        }),
        Ok(Some(false)) => {
            let data = workspace.read_capped(&path, CONTENT_CAP).ok().flatten();
            Some(Message::FileChanged {
                path,
                is_dir: false,
                data,
            })
        }
        Ok(None) => None,
        Err(error) if error.code == protocol::ErrorCode::NotFound => {
            Some(Message::FileRemoved { path })
        }
        Err(_) => None,
    }
}
