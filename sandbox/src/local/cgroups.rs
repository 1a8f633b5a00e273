//! The cgroups of local sandboxes, on either hierarchy.
//!
//! - **cgroup v2** (the unified hierarchy, the default of every current distribution): one
//!   group per sandbox, `<root>/codepod/<id>`, with `memory.max`, `memory.swap.max` 0,
//!   `pids.max` and `cpu.max`; the parent `codepod` group has the `memory`, `pids` and
//!   `cpu` controllers enabled for its children and `cpu.weight` [`SANDBOXES_CPU_WEIGHT`].
//!   A sandbox is stopped with `cgroup.kill`, which takes every process in it at once.
//! - **cgroup v1**: a group per controller, `<root>/<controller>/codepod/<id>`, with
//!   `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes` where swap is accounted,
//!   else `memory.swappiness` 0), `pids.max` and `cpu.cfs_quota_us`; the parent `cpu`
//!   group has `cpu.shares` [`SANDBOXES_CPU_SHARES`].
//!
//! Either way every sandbox is its own CPU group (a busy sandbox cannot crowd out another's
//! shell by running many processes), and all sandboxes together weigh a quarter of one
//! process against the server (when the machine is short of CPU the server, the kernel's PTY
//! workers and whatever carries output to browsers run first).
//!
//! Which one is usable is found once, when the runtime is made, by making and removing a
//! probe group: [`Cgroups::detect`]. A hybrid machine (v1 controllers mounted, an empty v2
//! tree beside them) uses v1.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{Limits, SandboxId, Stats};

/// `cpu.shares` (v1) of the group holding every sandbox's CPU group: a quarter of one task's
/// weight (1024). Measured in docs/benchmarks.md: with 50 shells typing while another
/// floods output, the typists' p99 echo went from 6–39 ms to 3.5–9 ms.
pub const SANDBOXES_CPU_SHARES: u32 = 256;
/// `cpu.weight` (v2) of the same group: the v2 scale has 100 where v1 has 1024, so this is
/// the same quarter.
pub const SANDBOXES_CPU_WEIGHT: u32 = 25;

/// The name of the group holding all sandboxes, under the root (v2) or each controller (v1).
const PARENT: &str = "codepod";
/// The v1 controllers a sandbox may have a group in; `cpu` is optional.
const V1_CONTROLLERS: [&str; 3] = ["pids", "memory", "cpu"];
/// CFS period of a new group (the kernel's default), for the quota.
const CPU_PERIOD_US: u64 = 100_000;

/// Which cgroup hierarchy contains the sandboxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }
}

/// The cgroup hierarchy as this server may use it.
#[derive(Debug, Clone)]
pub struct Cgroups {
    root: PathBuf,
    /// `None`: sandboxes cannot be given cgroups here ([`Cgroups::unusable_because`]).
    version: Option<Version>,
    /// Whether sandbox groups get a CPU quota and weight (the `cpu` controller is there).
    cpu: bool,
    why_not: Option<String>,
}

impl Cgroups {
    /// Finds which hierarchy `root` (normally `/sys/fs/cgroup`) holds and whether this
    /// process may make sandbox groups in it, by making and removing a probe group. Makes the
    /// parent groups and sets their CPU weight.
    pub fn detect(root: &Path) -> Self {
        let unusable = |why: String| Self {
            root: root.to_path_buf(),
            version: None,
            cpu: false,
            why_not: Some(why),
        };
        let result = if root.join("cgroup.controllers").exists() {
            prepare_v2(root).map(|cpu| (Version::V2, cpu))
        } else if root.join("memory").join("memory.limit_in_bytes").exists()
            // The root group of v1's pids controller has no pids.max; `tasks` is v1's own.
            && root.join("pids").join("tasks").exists()
        {
            prepare_v1(root).map(|cpu| (Version::V1, cpu))
        } else {
            Err(format!(
                "{} holds neither a cgroup v2 hierarchy nor cgroup v1 memory and pids controllers",
                root.display()
            ))
        };
        match result {
            Ok((version, cpu)) => Self {
                root: root.to_path_buf(),
                version: Some(version),
                cpu,
                why_not: None,
            },
            Err(why) => unusable(why),
        }
    }

    /// The hierarchy in use, `None` if sandboxes get no cgroups here.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// Why sandboxes get no cgroups here, if they do not.
    pub fn unusable_because(&self) -> Option<&str> {
        self.why_not.as_deref()
    }

    /// Whether sandbox groups get a CPU quota and a weight below the server's.
    pub fn has_cpu(&self) -> bool {
        self.cpu
    }

    /// Where the groups of one controller live: `<root>/codepod` (v2, all controllers) or
    /// `<root>/<controller>/codepod` (v1).
    fn parent(&self, controller: &str) -> PathBuf {
        match self.version {
            Some(Version::V2) | None => self.root.join(PARENT),
            Some(Version::V1) => self.root.join(controller).join(PARENT),
        }
    }

    /// Makes the sandbox's group(s) with its limits set. Fails, leaving nothing behind, if
    /// a required limit cannot be written.
    pub fn create(&self, id: &SandboxId, limits: &Limits) -> std::io::Result<Group> {
        let version = self
            .version
            .ok_or_else(|| std::io::Error::other(self.why_not.clone().unwrap_or_default()))?;
        let quota = match limits.cpu_millis {
            0 => None,
            millis => Some((u64::from(millis) * CPU_PERIOD_US / 1000).max(1000)),
        };
        let mut group = Group {
            version,
            dirs: Vec::new(),
        };
        let made = match version {
            Version::V2 => {
                let dir = self.parent("").join(id.as_str());
                let cpu_max = match quota {
                    Some(quota) => format!("{quota} {CPU_PERIOD_US}"),
                    None => format!("max {CPU_PERIOD_US}"),
                };
                let mut settings = vec![
                    ("memory.max", limits.memory_bytes.to_string(), true),
                    // The limit is on memory, not memory plus swap.
                    ("memory.swap.max", "0".to_owned(), false),
                    ("pids.max", limits.max_processes.to_string(), true),
                ];
                if self.cpu {
                    settings.push(("cpu.max", cpu_max, true));
                }
                make_group(&dir, &settings).map(|()| group.dirs.push(dir))
            }
            Version::V1 => {
                let memory = limits.memory_bytes.to_string();
                let quota = quota.map_or_else(|| "-1".to_owned(), |quota| quota.to_string());
                let mut groups = vec![
                    (
                        "pids",
                        vec![("pids.max", limits.max_processes.to_string(), true)],
                    ),
                    (
                        "memory",
                        vec![
                            ("memory.limit_in_bytes", memory.clone(), true),
                            // Only where swap is accounted; must not be under the above.
                            ("memory.memsw.limit_in_bytes", memory, false),
                            // Not inherited from the host's swappiness: the limit is on RAM.
                            ("memory.swappiness", "0".to_owned(), false),
                        ],
                    ),
                ];
                if self.cpu {
                    groups.push(("cpu", vec![("cpu.cfs_quota_us", quota, true)]));
                }
                groups.into_iter().try_for_each(|(controller, settings)| {
                    let dir = self.parent(controller).join(id.as_str());
                    make_group(&dir, &settings).map(|()| group.dirs.push(dir))
                })
            }
        };
        match made {
            Ok(()) => Ok(group),
            Err(error) => {
                for dir in &group.dirs {
                    let _ = std::fs::remove_dir(dir);
                }
                Err(error)
            }
        }
    }

    /// The group(s) a sandbox would have (to remove what an earlier process left).
    pub fn existing(&self, id: &SandboxId) -> Option<Group> {
        let version = self.version?;
        let dirs = match version {
            Version::V2 => vec![self.parent("").join(id.as_str())],
            Version::V1 => V1_CONTROLLERS
                .iter()
                .map(|controller| self.parent(controller).join(id.as_str()))
                .collect(),
        };
        Some(Group { version, dirs })
    }

    /// Removes sandbox groups of any server that have been empty since longer than `stale`
    /// ago: those of sandboxes whose server is gone (killed, its data directory deleted).
    /// A group with a process in it cannot be removed, and one made moments ago (its sandbox
    /// about to join it) is younger than `stale`.
    pub fn remove_stale(&self, stale: Duration) {
        let parents: Vec<PathBuf> = match self.version {
            None => return,
            Some(Version::V2) => vec![self.parent("")],
            Some(Version::V1) => V1_CONTROLLERS.iter().map(|c| self.parent(c)).collect(),
        };
        for parent in parents {
            let Ok(groups) = std::fs::read_dir(&parent) else {
                continue;
            };
            for group in groups.flatten() {
                let old = group
                    .metadata()
                    .and_then(|meta| meta.modified())
                    .is_ok_and(|made| made.elapsed().is_ok_and(|age| age >= stale));
                let name = group.file_name();
                if old && SandboxId::parse(&name.to_string_lossy()).is_ok() {
                    // Fails (EBUSY) while a process is in it.
                    let _ = std::fs::remove_dir(group.path());
                }
            }
        }
    }
}

/// Writes each setting of a new group; a required one must take. Removes the group again if
/// one does not.
fn make_group(dir: &Path, settings: &[(&str, String, bool)]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (file, value, required) in settings {
        if let Err(error) = std::fs::write(dir.join(file), value)
            && *required
        {
            let _ = std::fs::remove_dir(dir);
            return Err(std::io::Error::new(
                error.kind(),
                format!("{}: {error}", dir.join(file).display()),
            ));
        }
    }
    Ok(())
}

/// A name for a probe group no other probe (of this process or another) uses at once.
fn probe_name() -> String {
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("probe-{}-{n}", std::process::id())
}

/// Makes the v1 parent groups and checks a sandbox group can be made and limited; returns
/// whether the `cpu` controller can be used too.
fn prepare_v1(root: &Path) -> Result<bool, String> {
    let probe = probe_name();
    for (controller, file, value) in [
        ("pids", "pids.max", "64"),
        ("memory", "memory.limit_in_bytes", "1073741824"),
    ] {
        let dir = root.join(controller).join(PARENT).join(&probe);
        make_group(&dir, &[(file, value.to_owned(), true)])
            .map_err(|error| format!("cannot make a cgroup v1 {controller} group: {error}"))?;
        let _ = std::fs::remove_dir(&dir);
    }
    let cpu = root.join("cpu").join("cpu.cfs_quota_us").exists()
        && std::fs::create_dir_all(root.join("cpu").join(PARENT)).is_ok()
        && std::fs::write(
            root.join("cpu").join(PARENT).join("cpu.shares"),
            SANDBOXES_CPU_SHARES.to_string(),
        )
        .is_ok();
    if !cpu {
        tracing::warn!("no usable cgroup v1 cpu controller; sandboxes get no CPU cap");
    }
    Ok(cpu)
}

/// Enables the controllers down to the sandboxes' parent group, sets its weight and checks a
/// sandbox group can be made and limited; returns whether the `cpu` controller is enabled.
fn prepare_v2(root: &Path) -> Result<bool, String> {
    let available = std::fs::read_to_string(root.join("cgroup.controllers"))
        .map_err(|error| format!("cannot read the cgroup v2 controllers: {error}"))?;
    let available: Vec<&str> = available.split_whitespace().collect();
    for required in ["memory", "pids"] {
        if !available.contains(&required) {
            return Err(format!(
                "the cgroup v2 {required} controller is not available in {}",
                root.display()
            ));
        }
    }
    let parent = root.join(PARENT);
    std::fs::create_dir_all(&parent)
        .map_err(|error| format!("cannot make {}: {error}", parent.display()))?;
    let mut cpu = available.contains(&"cpu");
    for dir in [root, parent.as_path()] {
        enable(dir, &["memory", "pids"]).map_err(|error| {
            format!(
                "cannot enable the memory and pids controllers in {}: {error}",
                dir.display()
            )
        })?;
        // The cpu controller is refused, e.g., while realtime tasks run outside the root
        // group; sandboxes then run without a CPU cap rather than not at all.
        if cpu && let Err(error) = enable(dir, &["cpu"]) {
            tracing::warn!(error = %error, dir = %dir.display(), "cannot enable the cgroup v2 cpu controller; sandboxes get no CPU cap");
            cpu = false;
        }
    }
    if cpu {
        let _ = std::fs::write(parent.join("cpu.weight"), SANDBOXES_CPU_WEIGHT.to_string());
    }
    let probe = parent.join(probe_name());
    make_group(
        &probe,
        &[
            ("memory.max", "1073741824".to_owned(), true),
            ("pids.max", "64".to_owned(), true),
        ],
    )
    .map_err(|error| format!("cannot make a cgroup v2 sandbox group: {error}"))?;
    let _ = std::fs::remove_dir(&probe);
    Ok(cpu)
}

/// Enables `controllers` for the children of the v2 group `dir`, unless they are already.
fn enable(dir: &Path, controllers: &[&str]) -> std::io::Result<()> {
    let file = dir.join("cgroup.subtree_control");
    let enabled = std::fs::read_to_string(&file)?;
    let missing: Vec<String> = controllers
        .iter()
        .filter(|controller| !enabled.split_whitespace().any(|on| on == **controller))
        .map(|controller| format!("+{controller}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    std::fs::write(file, missing.join(" "))
}

/// One sandbox's group (v2) or groups (v1, one per controller).
#[derive(Debug, Clone)]
pub struct Group {
    version: Version,
    dirs: Vec<PathBuf>,
}

impl Group {
    /// The `cgroup.procs` files a process writes its pid to, to join the group(s).
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|dir| dir.join("cgroup.procs"))
            .collect()
    }

    /// The group's directory for a v1 controller, or the one group (v2).
    fn dir_for(&self, controller: &str) -> Option<&Path> {
        match self.version {
            Version::V2 => self.dirs.first().map(PathBuf::as_path),
            Version::V1 => self
                .dirs
                .iter()
                .find(|dir| {
                    dir.parent()
                        .and_then(Path::parent)
                        .and_then(Path::file_name)
                        .is_some_and(|name| name == controller)
                })
                .map(PathBuf::as_path),
        }
    }

    /// The host pids of the processes in the group.
    pub fn pids(&self) -> Vec<u32> {
        let Some(dir) = self.dir_for("pids") else {
            return Vec::new();
        };
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .map(|procs| {
                procs
                    .lines()
                    .filter_map(|pid| pid.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What the group's counters say.
    pub fn stats(&self) -> Stats {
        let read = |controller: &str, file: &str| -> Option<String> {
            std::fs::read_to_string(self.dir_for(controller)?.join(file)).ok()
        };
        let number = |text: Option<String>| text?.trim().parse().ok();
        let field = |text: Option<String>, key: &str| -> Option<u64> {
            text?.lines().find_map(|line| {
                let (name, value) = line.split_once(' ')?;
                (name == key).then(|| value.trim().parse().ok()).flatten()
            })
        };
        let (memory, oom) = match self.version {
            Version::V2 => (
                number(read("memory", "memory.current")),
                field(read("memory", "memory.events"), "oom_kill"),
            ),
            Version::V1 => (
                number(read("memory", "memory.usage_in_bytes")),
                field(read("memory", "memory.oom_control"), "oom_kill"),
            ),
        };
        Stats {
            memory_bytes: memory,
            processes: number(read("pids", "pids.current")),
            process_limit_hits: field(read("pids", "pids.events"), "max"),
            oom_kills: oom,
            cpu_throttled_periods: field(read("cpu", "cpu.stat"), "nr_throttled"),
        }
    }

    /// Kills every process in the group at once, where the hierarchy can (v2's
    /// `cgroup.kill`); v1 sandboxes end with their bwrap process, which takes its pid
    /// namespace with it.
    pub fn kill(&self) {
        if self.version == Version::V2
            && let Some(dir) = self.dirs.first()
        {
            let _ = std::fs::write(dir.join("cgroup.kill"), "1");
        }
    }

    /// Removes the group(s) if they are empty, without waiting.
    pub fn remove_now(&self) {
        for dir in &self.dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }

    /// Removes the group(s), waiting (asynchronously) for the kernel to empty them.
    pub async fn remove(&self) {
        for dir in &self.dirs {
            for _ in 0..100 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
