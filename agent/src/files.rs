//! File operations confined to the workspace. Every path is a validated `WorkspacePath`,
//! and every lookup goes through `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`,
//! one directory at a time: a symlink planted by user code (to `/etc`, to `..`) makes the
//! operation fail with `Forbidden`; it is never followed. Deleting a symlink removes the
//! link, not its target.

use std::{
    io::{Read, Write},
    os::fd::OwnedFd,
    path::{Path, PathBuf},
};

use model::WorkspacePath;
use protocol::{ErrorCode, FileInfo};
use rustix::{
    fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, ResolveFlags},
    io::Errno,
};
use sha2::{Digest, Sha256};

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// Largest file the agent reads into one frame.
pub const MAX_READ: u64 = protocol::MAX_READ;
/// Most entries a snapshot lists (the answer must fit in one frame).
pub const MAX_SNAPSHOT_ENTRIES: usize = protocol::MAX_SNAPSHOT_ENTRIES;

/// The workspace as it is: what a `SnapshotResult` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Regular files (with size and hash) and folders the ignore list keeps.
    pub files: Vec<FileInfo>,
    /// Entries that exist but are not listed (ignored, symlinks, special files); nothing
    /// below them is looked at.
    pub unlisted: Vec<WorkspacePath>,
    /// False when the listing stopped at [`MAX_SNAPSHOT_ENTRIES`].
    pub complete: bool,
}

impl Snapshot {
    fn full(&mut self) -> bool {
        if self.files.len() + self.unlisted.len() >= MAX_SNAPSHOT_ENTRIES {
            self.complete = false;
        }
        !self.complete
    }
}

/// A failed file operation, as the protocol reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub code: ErrorCode,
    pub message: String,
}

impl From<Errno> for FileError {
    fn from(errno: Errno) -> Self {
        let code = match errno {
            Errno::NOENT => ErrorCode::NotFound,
            Errno::EXIST | Errno::NOTEMPTY => ErrorCode::AlreadyExists,
            // ELOOP: a symlink on the way; EXDEV: the path would leave the workspace.
            Errno::LOOP
            | Errno::XDEV
            | Errno::NOTDIR
            | Errno::ISDIR
            | Errno::PERM
            | Errno::ACCESS => ErrorCode::Forbidden,
            Errno::FBIG | Errno::NOSPC | Errno::DQUOT => ErrorCode::TooLarge,
            _ => ErrorCode::Io,
        };
        Self {
            code,
            message: errno.to_string(),
        }
    }
}

impl From<std::io::Error> for FileError {
    fn from(error: std::io::Error) -> Self {
        match error.raw_os_error() {
            Some(code) => Errno::from_raw_os_error(code).into(),
            None => Self {
                code: ErrorCode::Io,
                message: error.to_string(),
            },
        }
    }
}

type Result<T, E = FileError> = std::result::Result<T, E>;

/// Opens `path` (beneath `dir`, never through a symlink) without blocking — a FIFO or a
/// device planted where a file was expected must not hang the agent — and checks it is a
/// regular file.
fn open_regular(dir: &OwnedFd, path: &str, flags: OFlags) -> Result<std::fs::File> {
    // openat2 wants no mode unless it may create the file.
    let mode = if flags.contains(OFlags::CREATE) {
        Mode::from_raw_mode(0o644)
    } else {
        Mode::empty()
    };
    let fd = rustix::fs::openat2(
        dir,
        path,
        flags | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        mode,
        RESOLVE,
    )?;
    let stat = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(FileError {
            code: ErrorCode::Forbidden,
            message: format!("{path} is not a regular file"),
        });
    }
    // Regular files ignore O_NONBLOCK; cleared anyway so later reads and writes are plain.
    rustix::fs::fcntl_setfl(&fd, rustix::fs::OFlags::empty())?;
    Ok(std::fs::File::from(fd))
}

/// Held for writing while the agent replaces a file's content (truncate, then write) and
/// for reading while it reads one: the watcher, reading what changed, never sees a file the
/// agent is halfway through writing. (It saw one empty between the truncate and the write,
/// and the server took that for a change made in the sandbox — an empty file saved over
/// the user's save.) One per agent, i.e. per workspace; writes are short.
static CONTENT: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// The workspace directory, held open.
pub struct Workspace {
    root: OwnedFd,
    path: PathBuf,
}

impl Workspace {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let root = rustix::fs::open(
            path,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self {
            root,
            path: path.to_path_buf(),
        })
    }

    /// Where the workspace is (for the ignore rules, which read `.codepodignore`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every folder and regular file, with sizes and SHA-256 hashes, skipping what
    /// `ignored(path, is_dir)` says (ignored folders are not entered) and every symlink or
    /// special file. Sorted by path.
    pub fn snapshot(&self, ignored: impl Fn(&str, bool) -> bool) -> Result<Snapshot> {
        let mut snapshot = Snapshot {
            files: Vec::new(),
            unlisted: Vec::new(),
            complete: true,
        };
        let root = self.dir(None)?;
        snapshot_dir(&root, "", &ignored, &mut snapshot)?;
        snapshot.files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(snapshot)
    }

    /// A directory inside the workspace (`None`: the root), never through a symlink.
    fn dir(&self, path: Option<&WorkspacePath>) -> Result<OwnedFd> {
        let relative = path.map_or(".", WorkspacePath::as_str);
        Ok(rustix::fs::openat2(
            &self.root,
            relative,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )?)
    }

    /// Creates `path` and its missing parents, one component at a time.
    fn make_dirs(&self, path: &WorkspacePath) -> Result<()> {
        let mut chain = path.ancestors();
        chain.push(path.clone());
        for dir in chain {
            let parent = self.dir(dir.parent().as_ref())?;
            match rustix::fs::mkdirat(&parent, dir.name(), Mode::from_raw_mode(0o755)) {
                Ok(()) => {}
                // Exists: fine if it is a real directory (dir() refuses symlinks and files).
                Err(Errno::EXIST) => {
                    self.dir(Some(&dir))?;
                }
                Err(errno) => return Err(errno.into()),
            }
        }
        Ok(())
    }

    pub fn make_dir(&self, path: &WorkspacePath) -> Result<()> {
        self.make_dirs(path)
    }

    /// Creates or replaces a file (creating missing parent folders). Only a regular file is
    /// replaced: a FIFO, device or socket in its place is refused, never opened for long.
    pub fn write(&self, path: &WorkspacePath, data: &[u8]) -> Result<()> {
        if let Some(parent) = path.parent() {
            self.make_dirs(&parent)?;
        }
        let parent = self.dir(path.parent().as_ref())?;
        let mut file = open_regular(&parent, path.name(), OFlags::WRONLY | OFlags::CREATE)?;
        let _writing = CONTENT
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.set_len(0)?;
        file.write_all(data)?;
        Ok(())
    }

    pub fn read(&self, path: &WorkspacePath) -> Result<Vec<u8>> {
        self.read_capped(path, MAX_READ)?.ok_or_else(|| FileError {
            code: ErrorCode::TooLarge,
            message: format!("{path} is larger than {MAX_READ} bytes"),
        })
    }

    /// `Some(true)` for a folder, `Some(false)` for a regular file, `None` for anything else
    /// (a symlink, a device); `NotFound` if nothing is there.
    pub fn kind(&self, path: &WorkspacePath) -> Result<Option<bool>> {
        let parent = self.dir(path.parent().as_ref())?;
        let stat = rustix::fs::statat(&parent, path.name(), AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => Some(true),
            FileType::RegularFile => Some(false),
            _ => None,
        })
    }

    /// A regular file's content if it is at most `cap` bytes, `None` if larger.
    pub fn read_capped(&self, path: &WorkspacePath, cap: u64) -> Result<Option<Vec<u8>>> {
        let mut data = Vec::new();
        let file = open_regular(&self.root, path.as_str(), OFlags::RDONLY)?;
        let _reading = CONTENT
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.take(cap + 1).read_to_end(&mut data)?;
        Ok((data.len() as u64 <= cap).then_some(data))
    }

    /// Deletes a file, a symlink (not its target), or a folder with everything inside.
    pub fn delete(&self, path: &WorkspacePath) -> Result<()> {
        let parent = self.dir(path.parent().as_ref())?;
        let stat = rustix::fs::statat(&parent, path.name(), AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
            let dir = rustix::fs::openat2(
                &parent,
                path.name(),
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE,
            )?;
            remove_tree(&dir)?;
            rustix::fs::unlinkat(&parent, path.name(), AtFlags::REMOVEDIR)?;
        } else {
            rustix::fs::unlinkat(&parent, path.name(), AtFlags::empty())?;
        }
        Ok(())
    }

    /// Moves or renames; the target must not exist.
    pub fn rename(&self, from: &WorkspacePath, to: &WorkspacePath) -> Result<()> {
        if to.is_within(from) {
            return Err(FileError {
                code: ErrorCode::Forbidden,
                message: "cannot move a folder into itself".into(),
            });
        }
        if let Some(parent) = to.parent() {
            self.make_dirs(&parent)?;
        }
        let from_parent = self.dir(from.parent().as_ref())?;
        let to_parent = self.dir(to.parent().as_ref())?;
        rustix::fs::renameat_with(
            &from_parent,
            from.name(),
            &to_parent,
            to.name(),
            RenameFlags::NOREPLACE,
        )?;
        Ok(())
    }
}

fn snapshot_dir(
    dir: &OwnedFd,
    prefix: &str,
    ignored: &impl Fn(&str, bool) -> bool,
    snapshot: &mut Snapshot,
) -> Result<()> {
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        if name == "." || name == ".." {
            continue;
        }
        let path = format!("{prefix}{name}");
        // Names the database could not hold (control characters…) stay sandbox-only.
        let Ok(parsed) = WorkspacePath::parse(&path) else {
            continue;
        };
        if snapshot.full() {
            return Ok(());
        }
        let is_dir = match entry.file_type() {
            FileType::Directory => true,
            FileType::RegularFile => false,
            _ => {
                snapshot.unlisted.push(parsed);
                continue;
            }
        };
        if ignored(&path, is_dir) {
            snapshot.unlisted.push(parsed);
            continue;
        }
        if is_dir {
            let child = rustix::fs::openat2(
                dir,
                name,
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE,
            )?;
            snapshot.files.push(FileInfo {
                path: parsed,
                is_dir: true,
                size: 0,
                hash: String::new(),
            });
            snapshot_dir(&child, &format!("{path}/"), ignored, snapshot)?;
        } else {
            // Swapped for a FIFO since the listing: skipped, never waited on.
            let Ok(mut file) = open_regular(dir, name, OFlags::RDONLY) else {
                snapshot.unlisted.push(parsed);
                continue;
            };
            let mut hasher = Sha256::new();
            let mut buffer = [0u8; 64 * 1024];
            let mut size = 0u64;
            loop {
                let n = file.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                size += n as u64;
                hasher.update(&buffer[..n]);
            }
            snapshot.files.push(FileInfo {
                path: parsed,
                is_dir: false,
                size,
                hash: hex(&hasher.finalize()),
            });
        }
    }
    Ok(())
}

/// Lower-case hex, as the store writes content hashes.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

/// Empties a directory without following any symlink in it.
fn remove_tree(dir: &OwnedFd) -> Result<()> {
    let entries = rustix::fs::Dir::read_from(dir)?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_owned();
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        if entry.file_type() == FileType::Directory {
            let child = rustix::fs::openat2(
                dir,
                name.as_c_str(),
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE,
            )?;
            remove_tree(&child)?;
            rustix::fs::unlinkat(dir, name.as_c_str(), AtFlags::REMOVEDIR)?;
        } else {
            rustix::fs::unlinkat(dir, name.as_c_str(), AtFlags::empty())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The attack on sync: a reader racing the agent's own writes. Every read sees one
    /// whole content, never the empty or half-written file between truncate and write.
    #[test]
    fn a_file_being_written_is_never_read_half_written()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let workspace = std::sync::Arc::new(Workspace::open(dir.path())?);
        let path = WorkspacePath::parse("data.txt")?;
        let size = 2 * 1024 * 1024;
        let (a, b) = (vec![b'a'; size], vec![b'b'; size]);
        workspace.write(&path, &a).map_err(|error| error.message)?;
        let writer = {
            let (workspace, path) = (workspace.clone(), path.clone());
            let (a, b) = (a.clone(), b.clone());
            std::thread::spawn(move || {
                for round in 0..100 {
                    let content = if round % 2 == 0 { &b } else { &a };
                    let _ = workspace.write(&path, content);
                }
            })
        };
        let mut reads = 0;
        while !writer.is_finished() {
            let data = workspace
                .read_capped(&path, u64::MAX / 2)
                .map_err(|error| error.message)?
                .unwrap_or_default();
            assert!(
                data == a || data == b,
                "read {} bytes mid-write",
                data.len()
            );
            reads += 1;
        }
        writer.join().map_err(|_| "the writer panicked")?;
        assert!(reads > 0);
        Ok(())
    }
}
