//! Host uids for sandboxes: when the server runs as root, every running sandbox's processes
//! run as a uid of their own from a reserved range (as ioi/isolate gives each box one), so
//! that no kernel check that compares uids — file permissions, signals, `/proc`, per-user
//! limits like inotify instances or `RLIMIT_NPROC` — ever sees host root, the server, or
//! another sandbox.
//!
//! A uid is leased with an exclusive `flock` on `<lock dir>/<uid>`, held by the runtime for
//! as long as the sandbox runs; the kernel drops the lock when its holder dies, so a crashed
//! server's leases free themselves, and servers with different data directories on one
//! machine (and the many runtimes of a test run) never hand out the same uid. A uid is also
//! skipped while any process on the machine still runs as it.

use std::{
    fs::File,
    io,
    ops::RangeInclusive,
    os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

use rustix::fs::{FlockOperation, flock};

/// The default range: above systemd's container range (524288–1879048191), below its
/// foreign range (2147352576…) and the uids some tools read as negative (2^31…).
pub const DEFAULT_UIDS: RangeInclusive<u32> = 1_900_000_000..=1_900_065_535;

/// Leases uids of one range.
#[derive(Debug)]
pub struct Uids {
    range: RangeInclusive<u32>,
    dir: PathBuf,
    /// Where the next search starts, so that a uid just given back is not the next one out.
    cursor: AtomicU32,
}

/// A uid held for one sandbox; given back when dropped.
#[derive(Debug)]
pub struct Lease {
    uid: u32,
    _lock: File,
}

impl Lease {
    pub fn uid(&self) -> u32 {
        self.uid
    }
}

impl Uids {
    /// Uses `range`, with its leases in `dir` (made root-only if missing). Fails if the range
    /// is empty, or names a user, a group or a subordinate-id range the machine knows.
    pub fn new(range: RangeInclusive<u32>, dir: &Path) -> Result<Self, String> {
        if range.is_empty() || *range.start() == 0 {
            return Err(format!(
                "sandbox uid range {range:?} is empty or includes root"
            ));
        }
        for (file, kind) in [("/etc/passwd", "user"), ("/etc/group", "group")] {
            if let Some(name) = std::fs::read_to_string(file)
                .ok()
                .and_then(|text| named_id_in(&text, &range))
            {
                return Err(format!(
                    "sandbox uid range {}-{} includes the {kind} {name} ({file}); set CODEPOD_SANDBOX_UIDS to a free range",
                    range.start(),
                    range.end()
                ));
            }
        }
        for file in ["/etc/subuid", "/etc/subgid"] {
            if let Some(owner) = std::fs::read_to_string(file)
                .ok()
                .and_then(|text| subordinate_overlap(&text, &range))
            {
                return Err(format!(
                    "sandbox uid range {}-{} overlaps {owner}'s subordinate ids ({file}); set CODEPOD_SANDBOX_UIDS to a free range",
                    range.start(),
                    range.end()
                ));
            }
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|error| format!("cannot make {}: {error}", dir.display()))?;
        Ok(Self {
            cursor: AtomicU32::new(*range.start()),
            range,
            dir: dir.to_path_buf(),
        })
    }

    /// A free uid of the range, leased until the lease is dropped.
    pub fn lease(&self) -> io::Result<Lease> {
        let (first, last) = (*self.range.start(), *self.range.end());
        let count = u64::from(last - first) + 1;
        let start = self.cursor.load(Ordering::Relaxed).clamp(first, last);
        let busy = uids_with_processes();
        for step in 0..count {
            let offset = (u64::from(start - first) + step) % count;
            let uid = first + u32::try_from(offset).unwrap_or(0);
            if busy.contains(&uid) {
                continue;
            }
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(self.dir.join(uid.to_string()))?;
            if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_ok() {
                self.cursor
                    .store(if uid == last { first } else { uid + 1 }, Ordering::Relaxed);
                return Ok(Lease { uid, _lock: lock });
            }
        }
        Err(io::Error::other(format!(
            "every sandbox uid of {first}-{last} is in use"
        )))
    }
}

/// The uids that own a process on this machine now (the owners of `/proc/<pid>`).
fn uids_with_processes() -> std::collections::HashSet<u32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter(|entry| {
                    entry
                        .file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .filter_map(|entry| entry.metadata().ok())
                .map(|meta| meta.uid())
                .collect()
        })
        .unwrap_or_default()
}

/// The first `name:x:id:…` line of a passwd or group file whose id is in `range`.
fn named_id_in(text: &str, range: &RangeInclusive<u32>) -> Option<String> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        range.contains(&id).then(|| name.to_owned())
    })
}

/// The owner of the first `owner:start:count` line of a subuid/subgid file overlapping
/// `range`.
fn subordinate_overlap(text: &str, range: &RangeInclusive<u32>) -> Option<String> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let owner = fields.next()?;
        let start: u64 = fields.next()?.parse().ok()?;
        let count: u64 = fields.next()?.parse().ok()?;
        let end = start + count.max(1) - 1;
        let overlaps = start <= u64::from(*range.end()) && u64::from(*range.start()) <= end;
        overlaps.then(|| owner.to_owned())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn a_range_naming_a_known_user_or_subordinate_ids_is_refused() {
        let range = 1000..=1999;
        assert_eq!(
            named_id_in(
                "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
                &range
            ),
            Some("alice".into())
        );
        assert_eq!(named_id_in("root:x:0:0::/root:/bin/sh\n", &range), None);
        assert_eq!(
            subordinate_overlap("alice:100000:65536\n", &(165_535..=170_000)),
            Some("alice".into())
        );
        assert_eq!(
            subordinate_overlap("alice:100000:65536\n", &(165_536..=170_000)),
            None
        );
    }

    #[test]
    fn leases_are_exclusive_and_given_back_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let range = 1_900_100_000..=1_900_100_001;
        let uids = Uids::new(range.clone(), dir.path()).unwrap();
        // Another runtime on the same machine (the same lock directory).
        let other = Uids::new(range, dir.path()).unwrap();
        let a = uids.lease().unwrap();
        let b = other.lease().unwrap();
        assert_ne!(a.uid(), b.uid());
        assert!(uids.lease().is_err(), "both uids are leased");
        let freed = a.uid();
        drop(a);
        assert_eq!(other.lease().unwrap().uid(), freed);
    }
}
