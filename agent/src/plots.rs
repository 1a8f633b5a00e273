//! Figures shown by programs in the sandbox: matplotlib's `plt.show()` with Codepod's
//! backend (`sandbox/python/codepod_plots.py`, selected by `MPLBACKEND` in every shell)
//! renders each figure to PNG and moves it, whole, into a directory of the sandbox's `/tmp`;
//! inotify tells the agent at once, which reads it (a PNG of at most [`MAX_PLOT`] bytes),
//! removes it and sends it to every connection that asked (`WatchPlots`). The last
//! [`KEPT`] figures are kept for connections that come later (a reloaded IDE tab).
//!
//! Anything the sandbox's user puts in that directory is only ever shown to themselves, as
//! an image: the IDE checks nothing more than that it is a PNG.

use std::{
    collections::VecDeque,
    mem::MaybeUninit,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use protocol::MAX_PLOT;
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use tokio::sync::broadcast;

/// Figures kept for connections that subscribe later.
pub const KEPT: usize = 16;
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// One figure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plot {
    pub id: u64,
    pub data: Arc<Vec<u8>>,
}

/// The sandbox's figures. Cheap to clone.
#[derive(Clone)]
pub struct Plots {
    dir: PathBuf,
    events: broadcast::Sender<Plot>,
    recent: Arc<Mutex<VecDeque<Plot>>>,
}

impl Plots {
    /// Watches `dir` (made if missing) from a thread of its own.
    pub fn start(dir: PathBuf) -> Self {
        let (events, _) = broadcast::channel(KEPT);
        let plots = Self {
            dir,
            events,
            recent: Arc::default(),
        };
        let watcher = plots.clone();
        let spawned = std::thread::Builder::new()
            .name("plots".into())
            .spawn(move || watcher.watch());
        if let Err(error) = spawned {
            tracing::error!(error = %error, "cannot watch for figures; plt.show() shows nothing");
        }
        plots
    }

    /// The environment that selects the backend and tells it where figures go.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("MPLBACKEND".to_owned(), "module://codepod_plots".to_owned()),
            (
                "CODEPOD_PLOTS_DIR".to_owned(),
                self.dir.to_string_lossy().into_owned(),
            ),
        ]
    }

    /// The figures kept so far, and every later one.
    pub fn subscribe(&self) -> (Vec<Plot>, broadcast::Receiver<Plot>) {
        let recent = lock(&self.recent);
        // Under the lock: a figure arriving now is in one or the other, not both.
        (recent.iter().cloned().collect(), self.events.subscribe())
    }

    fn publish(&self, data: Vec<u8>) {
        let mut recent = lock(&self.recent);
        let id = recent.back().map_or(1, |last| last.id + 1);
        let plot = Plot {
            id,
            data: Arc::new(data),
        };
        if recent.len() == KEPT {
            recent.pop_front();
        }
        recent.push_back(plot.clone());
        let _ = self.events.send(plot);
    }

    /// Watches the directory for as long as the agent runs; made again (and watched again)
    /// when the sandbox's user removes it.
    fn watch(&self) {
        loop {
            if let Err(error) = self.watch_once() {
                tracing::warn!(error = %error, dir = %self.dir.display(), "watching for figures failed; trying again");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn watch_once(&self) -> std::io::Result<()> {
        match std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
        {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
        let fd = inotify::init(CreateFlags::CLOEXEC)?;
        inotify::add_watch(
            &fd,
            &self.dir,
            WatchFlags::MOVED_TO | WatchFlags::CLOSE_WRITE | WatchFlags::DELETE_SELF,
        )?;
        // What was there before the watch.
        self.take_all();
        let mut buffer = [MaybeUninit::uninit(); 4096];
        let mut reader = inotify::Reader::new(&fd, &mut buffer);
        loop {
            let event = reader.next().map_err(std::io::Error::from)?;
            if event
                .events()
                .intersects(ReadFlags::DELETE_SELF | ReadFlags::IGNORED)
            {
                return Ok(());
            }
            if let Some(name) = event.file_name() {
                let name = name.to_string_lossy();
                if !name.starts_with('.') {
                    self.take(&self.dir.join(name.as_ref()));
                }
            }
        }
    }

    fn take_all(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut names: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .is_some_and(|name| !name.to_string_lossy().starts_with('.'))
            })
            .collect();
        names.sort();
        for path in names {
            self.take(&path);
        }
    }

    /// Reads and removes one figure; what is not a PNG within the cap is only removed.
    fn take(&self, path: &Path) {
        let data = read_capped(path);
        let _ = std::fs::remove_file(path);
        match data {
            Some(data) if data.starts_with(PNG_MAGIC) => self.publish(data),
            _ => tracing::debug!(path = %path.display(), "not a figure; removed"),
        }
    }
}

/// The file's bytes if it is a regular file (not followed through a symlink) of at most
/// [`MAX_PLOT`] bytes.
fn read_capped(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_o_nofollow())
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_PLOT as u64 {
        return None;
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_PLOT as u64 + 1).read_to_end(&mut data).ok()?;
    (data.len() <= MAX_PLOT).then_some(data)
}

fn libc_o_nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(marker: u8) -> Vec<u8> {
        let mut data = PNG_MAGIC.to_vec();
        data.extend_from_slice(&[marker; 100]);
        data
    }

    #[tokio::test]
    async fn figures_moved_into_the_directory_are_sent_in_order_and_kept_for_later() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("plots");
        // Its parent does not exist yet either (a fresh home).
        let dir = dir.join("cache/codepod/plots");
        let plots = Plots::start(dir.clone());
        let (recent, mut events) = plots.subscribe();
        assert!(recent.is_empty());
        // The backend's way: written under a dot name, then moved in.
        for marker in 1..=3u8 {
            while !dir.exists() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let partial = dir.join(format!(".partial-{marker}"));
            std::fs::write(&partial, png(marker)).unwrap();
            std::fs::rename(&partial, dir.join(format!("{marker}.png"))).unwrap();
            let plot = tokio::time::timeout(Duration::from_secs(10), events.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(plot.id, u64::from(marker));
            assert_eq!(*plot.data, png(marker));
        }
        // Not a PNG, or over the cap: removed, not sent.
        std::fs::write(dir.join("notes.txt"), b"hello").unwrap();
        let mut big = png(9);
        big.resize(MAX_PLOT + 1, 0);
        std::fs::write(dir.join("big.png"), &big).unwrap();
        std::fs::write(dir.join("after.png"), png(4)).unwrap();
        let plot = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(*plot.data, png(4), "only the PNG within the cap came");
        assert!(
            std::fs::read_dir(&dir).unwrap().next().is_none(),
            "all removed"
        );
        // A later subscriber gets the recent ones first.
        let (recent, _) = plots.subscribe();
        assert_eq!(
            recent.iter().map(|plot| plot.id).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        // Removed by the user: made and watched again.
        std::fs::remove_dir_all(&dir).unwrap();
        let mut again = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if dir.exists() {
                std::fs::write(dir.join("again.png"), png(5)).unwrap();
                again = true;
                break;
            }
        }
        assert!(again, "the directory came back");
        let plot = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(*plot.data, png(5));
    }
}
