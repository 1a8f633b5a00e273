//! The local runtime: one bubblewrap sandbox per workspace on this machine. The boundary,
//! layer by layer (docs/security.md has the threat model and the tests that attack each):
//!
//! - **A host uid of its own.** When the server runs as root, every sandbox's processes run
//!   as an unprivileged uid leased for it from a reserved range ([`uids`]); bwrap runs
//!   unprivileged as that uid and maps it to `user` (1000) inside. No sandbox process is
//!   ever host root or shares a uid with another sandbox or the server. (A server that is not
//!   root runs its sandboxes as its own uid.)
//! - **Namespaces**: every one unshared (user, pid, net, ipc, uts, cgroup) — no network but
//!   loopback, no view of host processes; no nested user namespaces; capabilities dropped.
//! - **Files**: a read-only root; `/usr`, a handful of `/etc` files, the Python environment
//!   and the agent bound read-only at the same paths as outside, so `/proc/self/mountinfo`
//!   shows no host path the sandbox does not see at that place; `passwd`, `group` and
//!   `profile` copied in. The writable places — `/workspace`, `/home/user`, `/tmp`,
//!   `/dev/shm` — are tmpfs capped in size and, when the server is root, in inodes: the stage
//!   mounts them in a private mount namespace made for the sandbox before it starts (so they
//!   exist nowhere else and vanish with it). Nothing of the host is bound writable.
//! - **The server↔agent channel**: the agent's listening socket is made by the server in a
//!   root-only directory and handed to the agent as its stdin; the server connects to its
//!   own socket, never to a path the sandbox can write. Egress (when enabled) is a datagram
//!   socket handed over the same way, through which the agent passes the host one end of a
//!   socket pair per connection.
//! - **seccomp** ([`seccomp`]): what Docker's and Flatpak's default profiles deny.
//! - **cgroups** ([`cgroups`], v2 or v1): memory with swap off, process count, CPU quota and
//!   a weight below the server's. Where no hierarchy is usable, sandboxes are refused unless
//!   the operator opts in ([`LocalConfig::allow_uncontained`]); rlimits (open files, file
//!   size, CPU time, core dumps; address space and processes where there is no cgroup) apply
//!   either way.
//!
//! The launch chain: the stage (`codepod-agent stage`, `agent/src/stage.rs`: joins the
//! cgroup; as root, mounts the capped tmpfs in a private mount namespace; opens the seccomp
//! program and the copied files; sets the rlimits; as root, drops to the sandbox's uid with
//! no groups, no capabilities and no new privileges) → `bwrap` → the agent. The stage
//! `exec`s bwrap, so the child the server holds is bwrap, and `--die-with-parent` ends the
//! sandbox with the server.

mod cgroups;
pub mod seccomp;
pub mod uids;

use std::{
    collections::HashMap,
    ops::RangeInclusive,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use tokio::process::{Child, Command};

pub use self::cgroups::{SANDBOXES_CPU_SHARES, SANDBOXES_CPU_WEIGHT, Version as CgroupVersion};
use self::{
    cgroups::{Cgroups, Group},
    uids::{Lease, Uids},
};
use crate::{Containment, Error, Limits, Result, Runtime, SandboxId, Stats, Transport};

/// Where the agent is, and where sandboxes live.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// One root-only directory per sandbox is made here (the agent's socket, the files
    /// copied in); no user file is ever written to it.
    pub root: PathBuf,
    /// The `codepod-agent` binary, bound read-only into every sandbox.
    pub agent_bin: PathBuf,
    /// `bwrap`.
    pub bwrap: PathBuf,
    pub limits: Limits,
    pub start_timeout: Duration,
    /// Where the cgroup hierarchy is mounted, normally `/sys/fs/cgroup`.
    pub cgroup_root: PathBuf,
    /// A Python virtual environment (numpy, pandas, scipy) bound read-only at the same
    /// path inside, its `bin` first on `PATH`. Made by scripts/setup.sh.
    pub python_env: Option<PathBuf>,
    /// Outbound network through the host's filtering proxy ([`crate::egress`]): public
    /// addresses only. Off: no network but the package index.
    pub egress: bool,
    /// The package index sandboxes reach at `127.0.0.1:3141` ([`crate::index`]), if any.
    pub package_index: Option<crate::index::IndexConnections>,
    /// Host uids for sandboxes, one per running sandbox (when the server runs as root).
    pub uids: RangeInclusive<u32>,
    /// This machine's Codepod directory, shared by every server on it (root only): uid
    /// leases, the agent binary sandboxes run, and an empty directory the sandboxes'
    /// private file systems are mounted on (in their own mount namespaces).
    pub run_dir: PathBuf,
    /// Start sandboxes even where no cgroup hierarchy can contain them (memory, processes
    /// and CPU then rest on rlimits, which are no boundary).
    pub allow_uncontained: bool,
}

impl LocalConfig {
    pub fn new(root: PathBuf, agent_bin: PathBuf) -> Self {
        Self {
            root,
            agent_bin,
            bwrap: PathBuf::from("bwrap"),
            limits: Limits::default(),
            start_timeout: Duration::from_secs(10),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            python_env: None,
            egress: false,
            package_index: None,
            uids: uids::DEFAULT_UIDS,
            run_dir: PathBuf::from("/run/codepod"),
            allow_uncontained: false,
        }
    }

    /// `PATH` inside the sandbox.
    fn path_env(&self) -> String {
        match &self.python_env {
            Some(env) => format!("{}:/usr/local/bin:/usr/bin:/bin", env.join("bin").display()),
            None => "/usr/local/bin:/usr/bin:/bin".to_owned(),
        }
    }
}

struct Running {
    child: Child,
    group: Option<Group>,
    /// The sandbox's host uid; given back once its processes are gone.
    lease: Option<Lease>,
    /// The egress proxy serving this sandbox, if egress is on.
    egress: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(egress) = self.egress.take() {
            egress.abort();
        }
    }
}

/// How long a sandbox's cgroup may stay empty before orphan cleanup removes it, though no
/// sandbox directory names it: a new cgroup is empty until its sandbox joins it, moments
/// after it is made.
const STALE_CGROUP: Duration = Duration::from_secs(600);

/// The sandbox's user, as `/etc/passwd` and `/etc/group` inside show it.
const PASSWD: &str = "root:x:0:0:root:/root:/usr/sbin/nologin\nuser:x:1000:1000:Codepod:/home/user:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n";

/// Host `/etc` entries a shell and Python need; nothing else of `/etc` is visible.
const ETC_FILES: [&str; 12] = [
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/bash.bashrc",
    "/etc/profile.d",
    "/etc/inputrc",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/mime.types",
    // Fontconfig's configuration (matplotlib, Pillow): without it every plot warns.
    "/etc/fonts",
];

/// The sandbox's writable places: (name of its tmpfs, where it is inside).
const WRITABLE: [(&str, &str); 4] = [
    ("workspace", "/workspace"),
    ("home", "/home/user"),
    ("tmp", "/tmp"),
    ("shm", "/dev/shm"),
];

/// What the server may do on this machine as the user it runs as.
struct Privileged {
    uids: Uids,
    /// Where the private tmpfs are mounted (in each sandbox's own mount namespace).
    mount_point: PathBuf,
    /// Where the agent is copied to, so that its path says nothing about the host's layout.
    agent_dir: PathBuf,
    /// The copy, once made (at start, or at the first sandbox if the binary was missing
    /// then: readiness reports that meanwhile).
    agent: std::sync::Mutex<Option<PathBuf>>,
}

/// Bubblewrap sandboxes on this machine.
pub struct LocalRuntime {
    config: LocalConfig,
    running: tokio::sync::Mutex<HashMap<SandboxId, Running>>,
    cgroups: Cgroups,
    /// `Some` when the server runs as root.
    privileged: Option<Privileged>,
    seccomp: Vec<u8>,
    containment: Containment,
}

impl LocalRuntime {
    /// Finds what this machine can contain sandboxes with (cgroups, uids) and prepares it.
    /// Fails if the uid range is unusable or the run directory cannot be made.
    pub fn new(config: LocalConfig) -> Result<Self> {
        let cgroups = Cgroups::detect(&config.cgroup_root);
        let privileged = if rustix::process::geteuid().is_root() {
            let uids = Uids::new(config.uids.clone(), &config.run_dir.join("uids"))
                .map_err(Error::Unavailable)?;
            let mount_point = config.run_dir.join("mnt");
            make_dir(&config.run_dir, 0o755)?;
            make_dir(&mount_point, 0o755)?;
            let agent_dir = config.run_dir.join("bin");
            let agent = match install_agent(&config.agent_bin, &agent_dir) {
                Ok(agent) => Some(agent),
                Err(error) => {
                    tracing::warn!(error = %error, "no agent to run in sandboxes yet");
                    None
                }
            };
            Some(Privileged {
                uids,
                mount_point,
                agent_dir,
                agent: std::sync::Mutex::new(agent),
            })
        } else {
            None
        };
        let seccomp = seccomp::program().map_err(|error| {
            Error::Unavailable(format!("cannot build the seccomp filter: {error}"))
        })?;
        let containment = containment(&cgroups, privileged.is_some(), config.allow_uncontained);
        Ok(Self {
            config,
            running: tokio::sync::Mutex::new(HashMap::new()),
            cgroups,
            privileged,
            seccomp,
            containment,
        })
    }

    fn dir(&self, id: &SandboxId) -> PathBuf {
        self.config.root.join(id.as_str())
    }

    /// The host uid a running sandbox's processes run as (`None` when the server is not
    /// root: they run as its own).
    pub async fn uid(&self, id: &SandboxId) -> Option<u32> {
        self.running
            .lock()
            .await
            .get(id)?
            .lease
            .as_ref()
            .map(Lease::uid)
    }

    /// The host pids of a running sandbox's processes (from its cgroup), for diagnostics.
    pub async fn pids(&self, id: &SandboxId) -> Vec<u32> {
        self.running
            .lock()
            .await
            .get(id)
            .and_then(|sandbox| sandbox.group.as_ref().map(Group::pids))
            .unwrap_or_default()
    }

    fn socket(&self, id: &SandboxId) -> PathBuf {
        self.dir(id).join("agent.sock")
    }

    /// The agent binary as bound into sandboxes.
    fn agent_path(&self) -> Result<PathBuf> {
        let Some(privileged) = &self.privileged else {
            return Ok(std::fs::canonicalize(&self.config.agent_bin)?);
        };
        let mut agent = privileged
            .agent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match agent.as_ref() {
            // Another server may have tidied it away (it tidies copies of other builds).
            Some(copy) if copy.exists() => Ok(copy.clone()),
            _ => {
                let copy = install_agent(&self.config.agent_bin, &privileged.agent_dir)?;
                *agent = Some(copy.clone());
                Ok(copy)
            }
        }
    }

    /// Writes the files the sandbox gets copies of into its (root-only) directory.
    fn prepare_dir(&self, dir: &Path) -> Result<()> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        make_dir(dir, 0o700)?;
        std::fs::write(dir.join("seccomp.bpf"), &self.seccomp)?;
        std::fs::write(dir.join("passwd"), PASSWD)?;
        std::fs::write(dir.join("group"), GROUP)?;
        // Our own /etc/profile: the host's would reset PATH and drop the Python environment.
        std::fs::write(
            dir.join("profile"),
            format!(
                "# Codepod sandbox login profile.\nexport PATH=\"{}\"\n\
                 if [ -n \"$BASH_VERSION\" ] && [ -r /etc/bash.bashrc ]; then . /etc/bash.bashrc; fi\n\
                 for f in /etc/profile.d/*.sh; do [ -r \"$f\" ] && . \"$f\"; done\nunset f\n{}",
                self.config.path_env(),
                if self.config.package_index.is_some() {
                    crate::index::PIP_HINT
                } else {
                    ""
                }
            ),
        )?;
        Ok(())
    }

    /// bwrap's arguments, up to and including the agent's command line.
    fn bwrap_args(&self, agent: &Path) -> Vec<String> {
        let limits = &self.config.limits;
        let mut args: Vec<String> = [
            "--unshare-all",
            // --unshare-all only *tries* a user namespace; as root it would skip it.
            "--unshare-user",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--disable-userns",
            "--uid",
            "1000",
            "--gid",
            "1000",
            "--hostname",
            "codepod",
            "--ro-bind",
            "/usr",
            "/usr",
        ]
        .map(str::to_owned)
        .to_vec();
        // Merged-/usr systems link /bin and friends into /usr; others have real directories.
        for top in ["/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"] {
            let path = Path::new(top);
            match std::fs::read_link(path) {
                Ok(target) => args.extend([
                    "--symlink".into(),
                    target.to_string_lossy().into_owned(),
                    top.into(),
                ]),
                Err(_) if path.is_dir() => {
                    args.extend(["--ro-bind".into(), top.into(), top.into()])
                }
                Err(_) => {}
            }
        }
        // A symlink (/etc/localtime into /usr/share/zoneinfo) is made a symlink inside: a
        // bind would show its target's host path in the mount table.
        for etc in ETC_FILES {
            match std::fs::read_link(etc) {
                Ok(target) => args.extend([
                    "--symlink".into(),
                    target.to_string_lossy().into_owned(),
                    etc.into(),
                ]),
                Err(_) => args.extend(["--ro-bind-try".into(), etc.into(), etc.into()]),
            }
        }
        if let Some(env) = &self.config.python_env {
            let env = env.to_string_lossy().into_owned();
            args.extend(["--ro-bind".into(), env.clone(), env]);
        }
        // (The stage adds the seccomp program and the copies of passwd, group and profile,
        // from the descriptors it opened.)
        let agent = agent.to_string_lossy().into_owned();
        args.extend([
            "--ro-bind".into(),
            agent.clone(),
            agent.clone(),
            "--proc".into(),
            "/proc".into(),
            "--dev".into(),
            "/dev".into(),
        ]);
        // As root the stage mounted capped tmpfs for these; else bwrap makes size-capped ones.
        match &self.privileged {
            Some(privileged) => {
                for (name, inside) in WRITABLE {
                    args.extend([
                        "--bind".into(),
                        privileged
                            .mount_point
                            .join(name)
                            .to_string_lossy()
                            .into_owned(),
                        inside.into(),
                    ]);
                }
            }
            None => {
                for (_, inside) in WRITABLE {
                    args.extend([
                        "--size".into(),
                        limits.workspace_bytes.to_string(),
                        "--tmpfs".into(),
                        inside.into(),
                    ]);
                }
            }
        }
        args.extend(
            [
                "--remount-ro",
                "/",
                "--chdir",
                "/workspace",
                "--",
                &agent,
                "--listen-stdin",
                "--workspace",
                "/workspace",
                "--home",
                "/home/user",
            ]
            .map(str::to_owned),
        );
        if self.config.egress || self.config.package_index.is_some() {
            args.push("--egress-stdout".into());
        }
        if self.config.egress {
            args.push("--proxy".into());
        }
        if self.config.package_index.is_some() {
            args.push("--package-index".into());
        }
        args
    }

    /// The launch chain for one sandbox (see the module docs): the stage, then bwrap.
    fn command(
        &self,
        dir: &Path,
        agent: &Path,
        group: Option<&Group>,
        uid: Option<u32>,
    ) -> Command {
        let limits = &self.config.limits;
        let mut command = Command::new(agent);
        command.arg("stage");
        for file in group.map(Group::procs_files).unwrap_or_default() {
            command.arg("--join").arg(file);
        }
        if let (Some(privileged), Some(uid)) = (&self.privileged, uid) {
            command.arg("--box").arg(&privileged.mount_point);
            for (name, _) in WRITABLE {
                let mode = if name == "shm" || name == "tmp" {
                    "1777"
                } else {
                    "0755"
                };
                command.arg("--tmpfs").arg(name).arg(format!(
                    "size={},nr_inodes={},mode={mode},uid={uid},gid={uid}",
                    limits.workspace_bytes, limits.max_inodes
                ));
            }
            command.arg("--as").arg(format!("{uid}:{uid}"));
        }
        let mut rlimits = vec![
            ("nofile", limits.max_open_files),
            ("fsize", limits.max_file_bytes),
            ("cpu", limits.cpu_seconds),
            ("core", 0),
        ];
        // Without a cgroup (the operator's opt-in): address space, and processes counted per
        // host uid — with a uid per sandbox, a cap of its own.
        if group.is_none() {
            rlimits.push(("as", limits.memory_bytes));
            rlimits.push(("nproc", limits.max_processes));
        }
        for (name, value) in rlimits {
            command.arg("--rlimit").arg(format!("{name}={value}"));
        }
        for (flag, file) in [
            ("--seccomp", "seccomp.bpf"),
            ("--passwd", "passwd"),
            ("--group", "group"),
            ("--profile", "profile"),
        ] {
            command.arg(flag).arg(dir.join(file));
        }
        command
            .arg("--")
            .arg(&self.config.bwrap)
            .args(self.bwrap_args(agent));
        command
            .env_clear()
            // bwrap passes these to the agent, which gives its shells PATH.
            .env("PATH", self.config.path_env())
            .env("LANG", "C.UTF-8")
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        command
    }

    /// Waits until the agent answers on its socket, the sandbox dies, or the start times
    /// out. The socket is listening before the sandbox runs, so the connection is accepted
    /// at once and the handshake is what waits for the agent.
    async fn wait_for_agent(&self, id: &SandboxId) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.config.start_timeout;
        let socket = self.socket(id);
        let handshake = async { Transport::unix(&socket).await?.probe().await };
        tokio::pin!(handshake);
        loop {
            tokio::select! {
                result = &mut handshake => {
                    return result.map_err(|error| {
                        Error::Unavailable(format!("the agent did not answer: {error}"))
                    });
                }
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::StartTimeout(self.config.start_timeout));
            }
            if let Some(sandbox) = self.running.lock().await.get_mut(id)
                && let Ok(Some(status)) = sandbox.child.try_wait()
            {
                return Err(Error::Unavailable(format!(
                    "the sandbox exited with {status} before its agent answered"
                )));
            }
        }
    }

    /// Removes what earlier runs left behind: sandbox directories under this runtime's root
    /// with no running sandbox, and their cgroups. Their bwrap processes died with the
    /// server that started them. Only this root's sandboxes are touched: another server on
    /// the machine (another data directory) shares the cgroup hierarchy, and a cgroup it
    /// has just made is empty until its sandbox joins it.
    async fn remove_orphans(&self) -> Result<usize> {
        let running = self.running.lock().await;
        let mut removed = 0;
        if let Ok(entries) = std::fs::read_dir(&self.config.root) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Ok(id) = SandboxId::parse(&name) else {
                    continue;
                };
                if running.contains_key(&id) {
                    continue;
                }
                if let Some(group) = self.cgroups.existing(&id) {
                    group.remove_now();
                }
                if std::fs::remove_dir_all(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        self.cgroups.remove_stale(STALE_CGROUP);
        Ok(removed)
    }
}

/// What the machine contains sandboxes with, and whether they may start.
fn containment(cgroups: &Cgroups, root: bool, allow_uncontained: bool) -> Containment {
    let mut layers = vec![
        "namespaces (user, pid, net, ipc, uts, cgroup, mount)".to_owned(),
        "seccomp".to_owned(),
        "read-only root".to_owned(),
    ];
    let mut missing = Vec::new();
    if root {
        layers.push("a host uid per sandbox".to_owned());
        layers.push("size- and inode-capped tmpfs".to_owned());
    } else {
        layers.push("size-capped tmpfs".to_owned());
        missing.push(
            "not running as root: sandboxes run as the server's own uid and their tmpfs have no inode cap"
                .to_owned(),
        );
    }
    let mut essential = false;
    match cgroups.version() {
        Some(version) => {
            layers.push(format!(
                "cgroup {} (memory, processes{})",
                version.as_str(),
                if cgroups.has_cpu() { ", CPU" } else { "" }
            ));
            if !cgroups.has_cpu() {
                missing.push("no cgroup cpu controller: sandboxes have no CPU cap".to_owned());
            }
        }
        None => {
            essential = true;
            missing.push(format!(
                "no cgroups ({}): memory, processes and CPU rest on rlimits, which are no boundary",
                cgroups.unusable_because().unwrap_or("unknown")
            ));
        }
    }
    Containment {
        layers,
        missing,
        starts: !essential || allow_uncontained,
    }
}

/// Makes a directory with `mode` (also if it exists), its parents as needed.
fn make_dir(path: &Path, mode: u32) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Spawns `command`, trying again a few times on `ETXTBSY`: the agent's copy was written
/// by this process, and a child another thread forked meanwhile may still hold the writing
/// descriptor (close-on-exec closes it only once that child execs) — the race Go's os/exec
/// works around the same way.
async fn spawn_retrying_busy_text(
    command: &mut tokio::process::Command,
) -> std::io::Result<tokio::process::Child> {
    const ATTEMPTS: u32 = 8;
    let mut attempt = 1;
    loop {
        match command.spawn() {
            Err(error)
                if attempt < ATTEMPTS
                    && error.raw_os_error() == Some(rustix::io::Errno::TXTBSY.raw_os_error()) =>
            {
                tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Copies the agent binary to `<dir>/codepod-agent-<hash of its content>` (unless there
/// already), readable and executable by all; removes copies of other builds not used for an
/// hour. Returns the copy's path.
fn install_agent(binary: &Path, dir: &Path) -> Result<PathBuf> {
    use sha2::Digest as _;
    let content = std::fs::read(binary).map_err(|error| {
        Error::Unavailable(format!(
            "cannot read the agent {}: {error}",
            binary.display()
        ))
    })?;
    let hash = sha2::Sha256::digest(&content);
    let name = format!("codepod-agent-{:x}", hash)
        .chars()
        .take("codepod-agent-".len() + 16)
        .collect::<String>();
    make_dir(dir, 0o755)?;
    let path = dir.join(&name);
    if !path.exists() {
        let staging = dir.join(format!(".{name}.{}", std::process::id()));
        std::fs::write(&staging, &content)?;
        std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&staging, &path)?;
    }
    // Marks ours as in use; other servers tidy only copies idle for an hour.
    let _ =
        std::fs::File::open(&path).and_then(|file| file.set_modified(std::time::SystemTime::now()));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let idle = entry
                .metadata()
                .and_then(|meta| meta.modified())
                .is_ok_and(|at| {
                    at.elapsed()
                        .is_ok_and(|age| age > Duration::from_secs(3600))
                });
            if idle && entry.file_name() != name.as_str() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(path)
}

#[async_trait]
impl Runtime for LocalRuntime {
    fn name(&self) -> &'static str {
        "local"
    }

    fn containment(&self) -> Containment {
        self.containment.clone()
    }

    #[tracing::instrument(skip_all, fields(sandbox.id = %id), err)]
    async fn ensure(&self, id: &SandboxId) -> Result<()> {
        if !self.containment.starts {
            return Err(Error::Uncontained(self.containment.missing.join("; ")));
        }
        let mut running = self.running.lock().await;
        if let Some(sandbox) = running.get_mut(id) {
            let alive = sandbox.child.try_wait()?.is_none();
            let answers = async { Transport::unix(&self.socket(id)).await?.probe().await };
            if alive && answers.await.is_ok() {
                return Ok(());
            }
            // Dead, or alive without an answering agent: replace it.
            tracing::warn!(alive, "sandbox lost its agent; restarting it");
            drop(running);
            self.stop(id).await?;
            running = self.running.lock().await;
        }
        let started = Instant::now();
        let dir = self.dir(id);
        self.prepare_dir(&dir)?;
        let agent = self.agent_path()?;
        // The agent's listening socket, made here and handed over as its stdin.
        let listener = std::os::unix::net::UnixListener::bind(self.socket(id))?;
        let lease =
            match &self.privileged {
                Some(privileged) => Some(privileged.uids.lease().map_err(|error| {
                    Error::Capacity(format!("no sandbox uid is free: {error}"))
                })?),
                None => None,
            };
        let group = match self.cgroups.version() {
            Some(_) => Some(
                self.cgroups
                    .create(id, &self.config.limits)
                    .map_err(|error| {
                        Error::Unavailable(format!("cannot make the sandbox's cgroup: {error}"))
                    })?,
            ),
            None => None,
        };
        let uid = lease.as_ref().map(Lease::uid);
        let mut command = self.command(&dir, &agent, group.as_ref(), uid);
        command.stdin(Stdio::from(std::os::fd::OwnedFd::from(listener)));
        // The channel to the host (egress, the package index), handed over as the agent's
        // stdout.
        let reach = crate::egress::Reach {
            proxy: self.config.egress,
            index: self.config.package_index.clone(),
        };
        let egress = if reach.proxy || reach.index.is_some() {
            let (ours, theirs) = std::os::unix::net::UnixDatagram::pair()?;
            command.stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs)));
            ours.set_nonblocking(true)?;
            let ours = tokio::net::UnixDatagram::from_std(ours)?;
            Some(tokio::spawn(crate::egress::serve(
                ours,
                id.to_string(),
                reach,
            )))
        } else {
            command.stdout(Stdio::null());
            None
        };
        let child = match spawn_retrying_busy_text(&mut command).await {
            Ok(child) => child,
            Err(error) => {
                if let Some(group) = &group {
                    group.remove_now();
                }
                return Err(Error::Unavailable(format!(
                    "cannot start the sandbox: {error}"
                )));
            }
        };
        running.insert(
            id.clone(),
            Running {
                child,
                group,
                lease,
                egress,
            },
        );
        drop(running);
        if let Err(error) = self.wait_for_agent(id).await {
            let _ = self.stop(id).await;
            return Err(error);
        }
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            uid,
            "sandbox ready"
        );
        Ok(())
    }

    async fn connect(&self, id: &SandboxId) -> Result<Transport> {
        if !self.running.lock().await.contains_key(id) {
            return Err(Error::NotFound);
        }
        Transport::unix(&self.socket(id)).await
    }

    #[tracing::instrument(skip_all, fields(sandbox.id = %id), err)]
    async fn stop(&self, id: &SandboxId) -> Result<()> {
        let Some(mut sandbox) = self.running.lock().await.remove(id) else {
            return Ok(());
        };
        // All of its processes at once where the hierarchy can (v2); then bwrap, whose
        // death ends the sandbox's pid namespace (die-with-parent) with everything in it.
        if let Some(group) = &sandbox.group {
            group.kill();
        }
        let _ = sandbox.child.start_kill();
        let _ = sandbox.child.wait().await;
        if let Some(group) = &sandbox.group {
            group.remove().await;
        }
        // Its uid is free again once nothing runs as it; the files it made lived in tmpfs
        // that went with its mount namespace, so this directory holds only ours.
        drop(sandbox.lease.take());
        let dir = self.dir(id);
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<SandboxId>> {
        let mut ids: Vec<_> = self.running.lock().await.keys().cloned().collect();
        ids.sort();
        Ok(ids)
    }

    async fn cleanup_orphans(&self) -> Result<usize> {
        self.remove_orphans().await
    }

    /// Cgroups go stale while the server runs too (another server's, killed): removed on
    /// every reaper tick, not only at the next start.
    async fn maintain(&self) -> Result<()> {
        self.cgroups.remove_stale(STALE_CGROUP);
        Ok(())
    }

    async fn stats(&self, id: &SandboxId) -> Result<Stats> {
        let running = self.running.lock().await;
        let sandbox = running.get(id).ok_or(Error::NotFound)?;
        Ok(sandbox.group.as_ref().map(Group::stats).unwrap_or_default())
    }
}
