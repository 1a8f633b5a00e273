//! The user's installed packages: everything under `~/.local` (where pip installs, the
//! shared environment being read-only), packed for the server to keep with the workspace
//! and unpacked at the next start — so that a `pip install` outlives the sandbox (the idle
//! cull, the lifetime cap, a server restart, another replica's pod).
//!
//! The archive is a gzip'd tar made and read by the system's `tar` inside the sandbox; the
//! server keeps it as opaque bytes (within the workspace's quota) and gives it back only to
//! the same workspace's sandbox. A signature of the tree (paths, sizes, modification times)
//! lets the server ask cheaply whether anything changed since the last save.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::UNIX_EPOCH,
};

use protocol::{ErrorCode, MAX_ENVIRONMENT_CHUNK, MAX_PACKAGE_NAME, MAX_PACKAGES};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest archive taken back for unpacking (the server's quota is far below).
const MAX_RESTORE: usize = 4 * 1024 * 1024 * 1024;

/// What a save found.
#[derive(Debug, PartialEq, Eq)]
pub enum Saved {
    /// The signature is still the one the server has.
    Unchanged,
    Packed {
        bytes: u64,
        signature: String,
        packages: Vec<String>,
    },
}

#[derive(Debug)]
pub struct Failure {
    pub code: ErrorCode,
    pub message: String,
}

impl Failure {
    fn io(what: &str, error: impl std::fmt::Display) -> Self {
        Self {
            code: ErrorCode::Io,
            message: format!("{what}: {error}"),
        }
    }
}

/// The packages of one sandbox. Cheap to clone; shared by every connection.
#[derive(Clone)]
pub struct Environment {
    home: PathBuf,
    /// The last archive packed, read in pieces by the server.
    packed: Arc<Mutex<Vec<u8>>>,
    /// Pieces of an archive being restored.
    restoring: Arc<Mutex<Vec<u8>>>,
    /// One save or restore at a time.
    busy: Arc<tokio::sync::Mutex<()>>,
}

impl Environment {
    pub fn new(home: PathBuf) -> Self {
        Self {
            home,
            packed: Arc::default(),
            restoring: Arc::default(),
            busy: Arc::default(),
        }
    }

    fn local(&self) -> PathBuf {
        self.home.join(".local")
    }

    /// Packs `~/.local` unless its signature is `unless`; refused past `max_bytes`.
    pub async fn save(&self, max_bytes: u64, unless: &str) -> Result<Saved, Failure> {
        let _busy = self.busy.lock().await;
        let local = self.local();
        let (signature, packages) = {
            let local = local.clone();
            tokio::task::spawn_blocking(move || (signature(&local), packages(&local)))
                .await
                .map_err(|error| Failure::io("signature", error))?
        };
        if signature == unless {
            return Ok(Saved::Unchanged);
        }
        let archive = if packages.is_empty() && !has_entries(&local) {
            Vec::new()
        } else {
            pack(&self.home, max_bytes).await?
        };
        let bytes = archive.len() as u64;
        *lock(&self.packed) = archive;
        Ok(Saved::Packed {
            bytes,
            signature,
            packages,
        })
    }

    /// Up to [`MAX_ENVIRONMENT_CHUNK`] bytes of the last archive from `offset`.
    pub fn read(&self, offset: u64) -> Vec<u8> {
        let packed = lock(&self.packed);
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(packed.len());
        let end = start
            .saturating_add(MAX_ENVIRONMENT_CHUNK)
            .min(packed.len());
        packed[start..end].to_vec()
    }

    /// Takes a piece of an archive; with the last one, unpacks it all into `~/.local`.
    pub async fn restore(&self, data: Vec<u8>, last: bool) -> Result<(), Failure> {
        let archive = {
            let mut restoring = lock(&self.restoring);
            if restoring.len() + data.len() > MAX_RESTORE {
                restoring.clear();
                return Err(Failure {
                    code: ErrorCode::TooLarge,
                    message: "the packages' archive is too large".into(),
                });
            }
            restoring.extend_from_slice(&data);
            if !last {
                return Ok(());
            }
            std::mem::take(&mut *restoring)
        };
        let _busy = self.busy.lock().await;
        unpack(&self.home, &archive).await
    }

    /// Removes every installed package.
    pub async fn clear(&self) -> Result<(), Failure> {
        let _busy = self.busy.lock().await;
        let local = self.local();
        tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&local) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(Failure::io("cannot remove ~/.local", error)),
        })
        .await
        .map_err(|error| Failure::io("clear", error))?
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn has_entries(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

/// A hash of every path under `dir` with its kind, size and modification time (symlinks not
/// followed), in sorted order.
pub fn signature(dir: &Path) -> String {
    let mut entries = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in read.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            let modified = meta
                .modified()
                .ok()
                .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |since| since.as_nanos());
            let kind = if meta.is_dir() {
                'd'
            } else if meta.is_symlink() {
                'l'
            } else {
                'f'
            };
            let relative = path.strip_prefix(dir).unwrap_or(&path);
            entries.push(format!(
                "{}\0{kind}\0{}\0{modified}",
                relative.display(),
                meta.len()
            ));
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    entries.sort();
    let mut hasher = Sha256::new();
    for entry in entries {
        hasher.update(entry.as_bytes());
        hasher.update(b"\n");
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `name==version` of every distribution in the user site-packages under `local`, sorted.
pub fn packages(local: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(lib) = std::fs::read_dir(local.join("lib")) else {
        return found;
    };
    for python in lib.flatten() {
        let Ok(site) = std::fs::read_dir(python.path().join("site-packages")) else {
            continue;
        };
        for entry in site.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".dist-info") else {
                continue;
            };
            // `name-version.dist-info`: the name has no dash (wheels write it with `_`).
            if let Some((name, version)) = stem.rsplit_once('-') {
                let entry = format!("{name}=={version}");
                if entry.len() <= MAX_PACKAGE_NAME {
                    found.push(entry);
                }
            }
        }
    }
    found.sort_by_key(|entry| entry.to_ascii_lowercase());
    found.dedup();
    found.truncate(MAX_PACKAGES);
    found
}

/// `tar -czf - .local` in `home`, refused past `max_bytes`.
async fn pack(home: &Path, max_bytes: u64) -> Result<Vec<u8>, Failure> {
    let mut child = tokio::process::Command::new("tar")
        .arg("-C")
        .arg(home)
        .args([
            "--use-compress-program=gzip -1",
            "--warning=no-file-changed",
            "-cf",
            "-",
            ".local",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| Failure::io("cannot run tar", error))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| Failure::io("tar", "no output"))?;
    let mut archive = Vec::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = stdout
            .read(&mut buffer)
            .await
            .map_err(|error| Failure::io("tar", error))?;
        if read == 0 {
            break;
        }
        archive.extend_from_slice(&buffer[..read]);
        if archive.len() as u64 > max_bytes {
            let _ = child.kill().await;
            return Err(Failure {
                code: ErrorCode::TooLarge,
                message: format!(
                    "the installed packages are over the workspace's quota of {} MiB packed",
                    max_bytes / (1024 * 1024)
                ),
            });
        }
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|error| Failure::io("tar", error))?;
    // 1: some file changed while it was read (pip still at work); the next save sees it.
    if !output.status.success() && output.status.code() != Some(1) {
        return Err(Failure::io(
            "tar failed",
            String::from_utf8_lossy(&output.stderr).trim(),
        ));
    }
    Ok(archive)
}

/// Unpacks `archive` into `home` (it holds `.local/…`).
async fn unpack(home: &Path, archive: &[u8]) -> Result<(), Failure> {
    if archive.is_empty() {
        return Ok(());
    }
    let mut child = tokio::process::Command::new("tar")
        .arg("-C")
        .arg(home)
        .args(["-xzf", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| Failure::io("cannot run tar", error))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| Failure::io("tar", "no input"))?;
    let written = stdin.write_all(archive).await;
    drop(stdin);
    let output = child
        .wait_with_output()
        .await
        .map_err(|error| Failure::io("tar", error))?;
    written.map_err(|error| Failure::io("tar", error))?;
    if !output.status.success() {
        return Err(Failure::io(
            "cannot unpack the packages",
            String::from_utf8_lossy(&output.stderr).trim(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install(home: &Path, name: &str, version: &str) {
        let site = home.join(".local/lib/python3.11/site-packages");
        std::fs::create_dir_all(site.join(format!("{name}-{version}.dist-info"))).unwrap();
        std::fs::write(
            site.join(format!("{name}.py")),
            format!("VERSION = '{version}'\n"),
        )
        .unwrap();
    }

    #[tokio::test]
    async fn packages_saved_are_restored_into_another_home() {
        let first = tempfile::tempdir().unwrap();
        let environment = Environment::new(first.path().to_path_buf());
        let Saved::Packed {
            bytes, signature, ..
        } = environment.save(1 << 20, "").await.unwrap()
        else {
            panic!("nothing installed is still a save");
        };
        assert_eq!(bytes, 0, "nothing installed, nothing packed");
        assert_eq!(
            environment.save(1 << 20, &signature).await.unwrap(),
            Saved::Unchanged
        );

        install(first.path(), "six", "1.17.0");
        install(first.path(), "Markup_Safe", "3.0.2");
        let Saved::Packed {
            bytes,
            signature,
            packages,
        } = environment.save(1 << 20, &signature).await.unwrap()
        else {
            panic!("a change is saved");
        };
        assert!(bytes > 0);
        assert_eq!(packages, ["Markup_Safe==3.0.2", "six==1.17.0"]);
        assert_eq!(
            environment.save(1 << 20, &signature).await.unwrap(),
            Saved::Unchanged
        );
        let mut archive = Vec::new();
        loop {
            let piece = environment.read(archive.len() as u64);
            if piece.is_empty() {
                break;
            }
            archive.extend_from_slice(&piece);
        }
        assert_eq!(archive.len() as u64, bytes);

        let second = tempfile::tempdir().unwrap();
        let restored = Environment::new(second.path().to_path_buf());
        let (head, tail) = archive.split_at(archive.len() / 2);
        restored.restore(head.to_vec(), false).await.unwrap();
        restored.restore(tail.to_vec(), true).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(
                second
                    .path()
                    .join(".local/lib/python3.11/site-packages/six.py")
            )
            .unwrap(),
            "VERSION = '1.17.0'\n"
        );
        assert_eq!(
            packages_of(&restored),
            ["Markup_Safe==3.0.2", "six==1.17.0"]
        );

        restored.clear().await.unwrap();
        assert!(!second.path().join(".local").exists());
    }

    fn packages_of(environment: &Environment) -> Vec<String> {
        packages(&environment.local())
    }

    #[tokio::test]
    async fn packages_over_the_quota_are_refused() {
        let home = tempfile::tempdir().unwrap();
        let site = home.path().join(".local/lib/python3.11/site-packages");
        std::fs::create_dir_all(&site).unwrap();
        // Incompressible: 2 MiB of noise.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let noise: Vec<u8> = (0..2 * 1024 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(site.join("blob.bin"), noise).unwrap();
        let failure = Environment::new(home.path().to_path_buf())
            .save(1024 * 1024, "")
            .await
            .unwrap_err();
        assert_eq!(failure.code, ErrorCode::TooLarge);
        assert!(
            failure.message.contains("quota of 1 MiB"),
            "{}",
            failure.message
        );
    }
}
