//! The local runtime: one bubblewrap sandbox per workspace on this machine.
//!
//! Inside: every namespace unshared (user, pid, net, ipc, uts, cgroup), so no network at
//! all and no view of host processes; `/usr` read-only and only a handful of `/etc` files;
//! private `/dev`, `/proc`, and size-capped tmpfs for `/tmp`, `/workspace` and
//! `/home/user` (the database holds the files, so the workspace needs no host disk); all
//! capabilities dropped; no nested user namespaces; a cleared environment; the agent as the
//! main process, its socket bound in from a host directory; killed with the server.
//!
//! Limits: memory and process count through cgroup v1 (`memory`, `pids`) where the machine
//! lets us create groups, open files, file size and CPU time through rlimits (`prlimit`);
//! without cgroups, address space and process count fall back to rlimits. Where the `cpu`
//! controller is there too, each sandbox is its own CPU group (equal shares, so one
//! sandbox's busy processes cannot crowd out another's shell) with a CFS quota, and the
//! group holding them all has a quarter of one task's weight, so sandboxes cannot crowd
//! out the server that carries their output.

use std::{
    collections::HashMap,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Stdio,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use tokio::process::{Child, Command};

use crate::{AgentClient, Error, Limits, Result, Runtime, SandboxId, Stats};

/// Where the agent is, and where sandboxes live.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// One directory per sandbox is made here (`<root>/<id>/run` holds the agent socket).
    pub root: PathBuf,
    /// The `codepod-agent` binary, bound read-only into every sandbox.
    pub agent_bin: PathBuf,
    /// `bwrap`.
    pub bwrap: PathBuf,
    pub limits: Limits,
    pub start_timeout: Duration,
    /// The cgroup v1 hierarchies' mount point, normally `/sys/fs/cgroup`.
    pub cgroup_root: PathBuf,
    /// A Python virtual environment (numpy, pandas, scipy) bound read-only at the same
    /// path inside, its `bin` first on `PATH`. Made by scripts/setup.sh.
    pub python_env: Option<PathBuf>,
    /// Outbound network through the host's filtering proxy ([`crate::egress`]): public
    /// addresses only. Off: no network at all.
    pub egress: bool,
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
    cgroups: Vec<PathBuf>,
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

/// `cpu.shares` of the group holding every sandbox's CPU group: a quarter of one task's
/// weight (1024). Measured in docs/benchmarks.md: with 50 shells typing while another
/// floods output, the typists' p99 echo went from 6–39 ms to 3.5–9 ms.
pub const SANDBOXES_CPU_SHARES: u32 = 256;

/// The cgroup v1 controllers a sandbox may have a group in.
const CONTROLLERS: [&str; 3] = ["pids", "memory", "cpu"];

/// How long a sandbox's cgroup may stay empty before orphan cleanup removes it, though no
/// sandbox directory names it: a new cgroup is empty until its sandbox joins it, moments
/// after it is made.
const STALE_CGROUP: Duration = Duration::from_secs(600);

/// Bubblewrap sandboxes on this machine.
pub struct LocalRuntime {
    config: LocalConfig,
    running: tokio::sync::Mutex<HashMap<SandboxId, Running>>,
    cgroups_usable: Mutex<Option<bool>>,
}

/// The sandbox's user, as `/etc/passwd` and `/etc/group` inside show it.
const PASSWD: &str = "root:x:0:0:root:/root:/usr/sbin/nologin\nuser:x:1000:1000:Codepod:/home/user:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n";

/// Host `/etc` entries a shell and Python need; nothing else of `/etc` is visible.
const ETC_FILES: [&str; 11] = [
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
];

impl LocalRuntime {
    pub fn new(config: LocalConfig) -> Self {
        Self {
            config,
            running: tokio::sync::Mutex::new(HashMap::new()),
            cgroups_usable: Mutex::new(None),
        }
    }

    fn dir(&self, id: &SandboxId) -> PathBuf {
        self.config.root.join(id.as_str())
    }

    fn socket(&self, id: &SandboxId) -> PathBuf {
        self.dir(id).join("run").join("agent.sock")
    }

    /// Creates the sandbox's cgroups and sets their limits; empty if cgroups are not usable.
    fn make_cgroups(&self, id: &SandboxId) -> Vec<PathBuf> {
        let mut usable = self
            .cgroups_usable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *usable == Some(false) {
            return Vec::new();
        }
        let limits = &self.config.limits;
        let groups = [
            ("pids", vec![("pids.max", limits.max_processes.to_string())]),
            (
                "memory",
                vec![
                    ("memory.limit_in_bytes", limits.memory_bytes.to_string()),
                    // Not inherited from the host's swappiness: the limit is on RAM use.
                    ("memory.swappiness", "0".to_owned()),
                ],
            ),
        ];
        let mut made = Vec::new();
        for (controller, settings) in groups {
            let Some(dir) = self.make_group(controller, id, &settings) else {
                tracing::warn!(
                    controller,
                    "cgroups are not usable here; falling back to rlimits"
                );
                *usable = Some(false);
                for dir in &made {
                    let _ = std::fs::remove_dir(dir);
                }
                return Vec::new();
            };
            made.push(dir);
        }
        *usable = Some(true);
        drop(usable);
        made.extend(self.make_cpu_cgroup(id));
        made
    }

    /// Makes `<cgroup root>/<controller>/codepod/<id>` and writes its settings (the first
    /// must take, the others are best effort); `None`, leaving nothing behind, if it cannot.
    fn make_group(
        &self,
        controller: &str,
        id: &SandboxId,
        settings: &[(&str, String)],
    ) -> Option<PathBuf> {
        let dir = self.cgroups_of(controller).join(id.as_str());
        let ok = std::fs::create_dir_all(&dir).is_ok()
            && settings
                .iter()
                .enumerate()
                .all(|(i, (file, value))| std::fs::write(dir.join(file), value).is_ok() || i > 0);
        if ok {
            Some(dir)
        } else {
            let _ = std::fs::remove_dir(&dir);
            None
        }
    }

    /// Where a controller's sandbox cgroups live: `<cgroup root>/<controller>/codepod`.
    fn cgroups_of(&self, controller: &str) -> PathBuf {
        self.config.cgroup_root.join(controller).join("codepod")
    }

    /// The sandbox's CPU group, with its quota; `None` (and a warning) where the `cpu`
    /// controller cannot be used, as sandboxes work without it.
    fn make_cpu_cgroup(&self, id: &SandboxId) -> Option<PathBuf> {
        if !self
            .config
            .cgroup_root
            .join("cpu/cpu.cfs_quota_us")
            .exists()
        {
            tracing::warn!("no cgroup v1 cpu controller here; sandboxes have no CPU cap");
            return None;
        }
        // A new group's period is the kernel's default, 100 ms.
        let quota = match self.config.limits.cpu_millis {
            0 => "-1".to_owned(),
            millis => (u64::from(millis) * 100).max(1000).to_string(),
        };
        let made = self.make_group("cpu", id, &[("cpu.cfs_quota_us", quota)]);
        if made.is_none() {
            tracing::warn!("cannot make a CPU cgroup; this sandbox has no CPU cap");
        } else {
            // All sandboxes together weigh less than one of the server's threads (the
            // parent group's shares against a task's 1024), so when the machine is short of
            // CPU the server, the kernel's PTY workers and whatever carries output to the
            // browser come first, and sandboxes share what is left; idle CPU still goes to
            // them all. Best effort, and written with every sandbox: the parent group may
            // have been made anew by the line above.
            let _ = std::fs::write(
                self.cgroups_of("cpu").join("cpu.shares"),
                SANDBOXES_CPU_SHARES.to_string(),
            );
        }
        made
    }

    fn bwrap_args(&self, id: &SandboxId) -> Vec<String> {
        let dir = self.dir(id);
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
        for etc in ETC_FILES {
            args.extend(["--ro-bind-try".into(), etc.into(), etc.into()]);
        }
        if let Some(env) = &self.config.python_env {
            let env = env.to_string_lossy().into_owned();
            args.extend(["--ro-bind".into(), env.clone(), env]);
        }
        let size = |bytes: u64| bytes.to_string();
        let path = |p: PathBuf| p.to_string_lossy().into_owned();
        args.extend([
            "--ro-bind".into(),
            path(dir.join("etc/passwd")),
            "/etc/passwd".into(),
            "--ro-bind".into(),
            path(dir.join("etc/group")),
            "/etc/group".into(),
            "--ro-bind".into(),
            path(dir.join("etc/profile")),
            "/etc/profile".into(),
            "--proc".into(),
            "/proc".into(),
            "--dev".into(),
            "/dev".into(),
            "--size".into(),
            size(limits.workspace_bytes),
            "--tmpfs".into(),
            "/tmp".into(),
            "--size".into(),
            size(limits.workspace_bytes),
            "--tmpfs".into(),
            "/workspace".into(),
            "--size".into(),
            size(limits.workspace_bytes),
            "--tmpfs".into(),
            "/home/user".into(),
            "--bind".into(),
            path(dir.join("run")),
            "/run/codepod".into(),
            "--ro-bind".into(),
            path(self.config.agent_bin.clone()),
            "/opt/codepod/agent".into(),
            "--chdir".into(),
            "/workspace".into(),
            "--".into(),
            "/opt/codepod/agent".into(),
            "--socket".into(),
            "/run/codepod/agent.sock".into(),
            "--workspace".into(),
            "/workspace".into(),
            "--home".into(),
            "/home/user".into(),
        ]);
        if self.config.egress {
            args.extend(["--egress-socket".into(), "/run/codepod/egress.sock".into()]);
        }
        args
    }

    async fn wait_for_agent(&self, id: &SandboxId) -> Result<()> {
        let deadline = Instant::now() + self.config.start_timeout;
        let socket = self.socket(id);
        loop {
            if let Ok(client) = AgentClient::connect_unix(&socket).await {
                client.close().await;
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::StartTimeout(self.config.start_timeout));
            }
            if let Some(sandbox) = self.running.lock().await.get_mut(id)
                && let Ok(Some(status)) = sandbox.child.try_wait()
            {
                return Err(Error::Unavailable(format!(
                    "bwrap exited with {status} before the agent answered"
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn read_u64(path: &Path) -> Option<u64> {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
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
                for controller in CONTROLLERS {
                    let _ = std::fs::remove_dir(self.cgroups_of(controller).join(id.as_str()));
                }
                if std::fs::remove_dir_all(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        self.remove_stale_cgroups();
        Ok(removed)
    }

    /// Removes sandbox cgroups of any server that have been empty since long before now:
    /// those of sandboxes whose directory is gone with their server (a killed test run, a
    /// deleted data directory). A cgroup with a process in it cannot be removed, and one
    /// made moments ago (its sandbox about to join it) is younger than [`STALE_CGROUP`].
    fn remove_stale_cgroups(&self) {
        for controller in CONTROLLERS {
            let Ok(groups) = std::fs::read_dir(self.cgroups_of(controller)) else {
                continue;
            };
            for group in groups.flatten() {
                let stale = group
                    .metadata()
                    .and_then(|meta| meta.modified())
                    .is_ok_and(|made| made.elapsed().is_ok_and(|age| age >= STALE_CGROUP));
                let name = group.file_name();
                if stale && SandboxId::parse(&name.to_string_lossy()).is_ok() {
                    // Fails (EBUSY) while a process is in it.
                    let _ = std::fs::remove_dir(group.path());
                }
            }
        }
    }
}

#[async_trait]
impl Runtime for LocalRuntime {
    fn name(&self) -> &'static str {
        "local"
    }

    #[tracing::instrument(skip_all, fields(sandbox.id = %id), err)]
    async fn ensure(&self, id: &SandboxId) -> Result<()> {
        let mut running = self.running.lock().await;
        if let Some(sandbox) = running.get_mut(id) {
            let alive = sandbox.child.try_wait()?.is_none();
            if alive && AgentClient::connect_unix(&self.socket(id)).await.is_ok() {
                return Ok(());
            }
            // Dead, or alive without an answering agent: replace it.
            tracing::warn!(alive, "sandbox lost its agent; restarting it");
            drop(running);
            self.stop(id).await?;
            running = self.running.lock().await;
        }
        let dir = self.dir(id);
        std::fs::create_dir_all(dir.join("run"))?;
        std::fs::create_dir_all(dir.join("etc"))?;
        std::fs::write(dir.join("etc/passwd"), PASSWD)?;
        std::fs::write(dir.join("etc/group"), GROUP)?;
        // Our own /etc/profile: the host's would reset PATH and drop the Python environment.
        std::fs::write(
            dir.join("etc/profile"),
            format!(
                "# Codepod sandbox login profile.\nexport PATH=\"{}\"\n\
                 if [ -n \"$BASH_VERSION\" ] && [ -r /etc/bash.bashrc ]; then . /etc/bash.bashrc; fi\n\
                 for f in /etc/profile.d/*.sh; do [ -r \"$f\" ] && . \"$f\"; done\nunset f\n",
                self.config.path_env()
            ),
        )?;
        let _ = std::fs::remove_file(self.socket(id));
        let cgroups = self.make_cgroups(id);
        let limits = &self.config.limits;

        // sh joins the cgroups with its own pid, then execs prlimit, which execs bwrap: the
        // sandbox is inside its limits before its first instruction.
        let mut command = Command::new("/bin/sh");
        command.arg("-c").arg(
            "for f; do [ \"$f\" = -- ] && break; echo $$ > \"$f\" || exit 70; shift; done; shift; exec \"$@\"",
        );
        command.arg("sh");
        for group in &cgroups {
            command.arg(group.join("cgroup.procs"));
        }
        command.arg("--").arg("prlimit");
        command.arg(format!("--nofile={0}:{0}", limits.max_open_files));
        command.arg(format!("--fsize={0}:{0}", limits.max_file_bytes));
        command.arg(format!("--cpu={0}:{0}", limits.cpu_seconds));
        command.arg("--core=0:0");
        if cgroups.is_empty() {
            command.arg(format!("--as={0}:{0}", limits.memory_bytes));
            command.arg(format!("--nproc={0}:{0}", limits.max_processes));
        }
        command
            .arg("--")
            .arg(&self.config.bwrap)
            .args(self.bwrap_args(id));
        command
            .env_clear()
            // bwrap passes these to the agent, which gives its shells PATH.
            .env("PATH", self.config.path_env())
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let started = Instant::now();
        let child = command
            .spawn()
            .map_err(|error| Error::Unavailable(format!("cannot start bwrap: {error}")))?;
        // The agent connects to the proxy only when a program inside opens a connection.
        let egress = if self.config.egress {
            let socket = dir.join("run/egress.sock");
            let _ = std::fs::remove_file(&socket);
            let listener = tokio::net::UnixListener::bind(&socket)?;
            std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))?;
            Some(tokio::spawn(crate::egress::serve(listener, id.to_string())))
        } else {
            None
        };
        running.insert(
            id.clone(),
            Running {
                child,
                cgroups,
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
            "sandbox ready"
        );
        Ok(())
    }

    async fn connect(&self, id: &SandboxId) -> Result<AgentClient> {
        if !self.running.lock().await.contains_key(id) {
            return Err(Error::NotFound);
        }
        AgentClient::connect_unix(&self.socket(id)).await
    }

    #[tracing::instrument(skip_all, fields(sandbox.id = %id), err)]
    async fn stop(&self, id: &SandboxId) -> Result<()> {
        let Some(mut sandbox) = self.running.lock().await.remove(id) else {
            return Ok(());
        };
        // Killing bwrap kills the sandbox's pid 1 (die-with-parent), and with it the
        // whole pid namespace.
        let _ = sandbox.child.start_kill();
        let _ = sandbox.child.wait().await;
        for group in &sandbox.cgroups {
            // The group empties as the kernel reaps the namespace; give it a moment.
            for _ in 0..50 {
                if std::fs::remove_dir(group).is_ok() || !group.exists() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let _ = std::fs::remove_dir_all(self.dir(id));
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
        self.remove_stale_cgroups();
        Ok(())
    }

    async fn stats(&self, id: &SandboxId) -> Result<Stats> {
        let running = self.running.lock().await;
        let sandbox = running.get(id).ok_or(Error::NotFound)?;
        let mut stats = Stats::default();
        for group in &sandbox.cgroups {
            if group.join("pids.current").exists() {
                stats.processes = Self::read_u64(&group.join("pids.current"));
            }
            if group.join("memory.usage_in_bytes").exists() {
                stats.memory_bytes = Self::read_u64(&group.join("memory.usage_in_bytes"));
            }
        }
        Ok(stats)
    }
}
