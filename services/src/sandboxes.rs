//! Workspace sandboxes over their lifetime: start on open (filled from the database), reuse
//! while active, stop on request, on workspace delete, when idle too long, when past their
//! maximum lifetime, and at shutdown. The database stays the source of truth: a sandbox is
//! disposable and every start materializes the workspace's files afresh.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use model::{FileKind, SandboxState, SandboxStatus, WorkspaceId};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use protocol::Message;
use sandbox::{AgentClient, Runtime, SandboxId};

use crate::{
    Error, Result, Services, accounts::CurrentUser, duration_ms, events::FileEvent, now_ms,
};

/// Lifetimes of sandboxes.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// Stopped after this long with no activity (start, keepalive, terminal traffic, saves).
    pub idle_timeout: Duration,
    /// Stopped this long after start, whatever happens.
    pub max_lifetime: Duration,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            max_lifetime: Duration::from_secs(2 * 3600),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CullLabels {
    reason: String,
}

/// Prometheus metrics of the sandbox lifecycle.
#[derive(Clone)]
pub struct SandboxMetrics {
    starts: Counter,
    start_seconds: Histogram,
    active: Gauge,
    culls: Family<CullLabels, Counter>,
}

impl SandboxMetrics {
    fn new() -> Self {
        Self {
            starts: Counter::default(),
            start_seconds: Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            active: Gauge::default(),
            culls: Family::default(),
        }
    }

    /// Registers the metrics (`codepod_sandbox_…`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register("sandbox_starts", "Sandboxes started", self.starts.clone());
        registry.register(
            "sandbox_start_seconds",
            "Time from start request to a ready, filled sandbox",
            self.start_seconds.clone(),
        );
        registry.register(
            "sandbox_active",
            "Sandboxes running now",
            self.active.clone(),
        );
        registry.register(
            "sandbox_culls",
            "Sandboxes stopped, by reason",
            self.culls.clone(),
        );
    }
}

/// Content hashes the server wrote into sandbox files, and when, per (workspace, path).
type Mirrored = HashMap<(WorkspaceId, String), VecDeque<(String, Instant)>>;

/// How long a mirrored write is remembered (far longer than the watcher's debounce).
const MIRROR_MEMORY: Duration = Duration::from_secs(30);
/// Mirrored writes remembered per file.
const MIRRORS_PER_FILE: usize = 16;

#[derive(Debug, Clone)]
struct Entry {
    state: SandboxState,
    started_at: i64,
    last_active: i64,
    /// When activity was last recorded with the runtime (shared with other replicas).
    shared_at: i64,
    error: Option<String>,
}

/// The running sandboxes of this server.
#[derive(Clone)]
pub struct Sandboxes {
    runtime: Arc<dyn Runtime>,
    settings: SandboxSettings,
    entries: Arc<Mutex<HashMap<WorkspaceId, Entry>>>,
    /// One start at a time per workspace.
    starting: Arc<Mutex<HashMap<WorkspaceId, Arc<tokio::sync::Mutex<()>>>>>,
    /// Hashes of contents recently written into each sandbox file by the server, so that
    /// the watcher's report of them (possibly after a newer save) is not taken for a change
    /// made inside.
    mirrored: Arc<Mutex<Mirrored>>,
    pub metrics: SandboxMetrics,
}

fn sandbox_id(ws: WorkspaceId) -> Result<SandboxId> {
    SandboxId::parse(&ws.to_string()).map_err(|error| Error::Internal(error.to_string()))
}

fn runtime_error(error: sandbox::Error) -> Error {
    use sandbox::Error as S;
    match error {
        S::Capacity(message) | S::ImagePull(message) => Error::Unavailable(message),
        S::StartTimeout(after) => Error::Unavailable(format!(
            "the sandbox did not come up within {} s; try again",
            after.as_secs()
        )),
        S::Unavailable(message) => {
            // The details (API server messages) go to the log, not to the user.
            tracing::warn!(error = %message, "sandbox runtime unavailable");
            Error::Unavailable(
                "the sandbox service is unavailable right now; try again shortly".into(),
            )
        }
        other => Error::Internal(format!("sandbox: {other}")),
    }
}

/// How often activity is recorded where other replicas see it (the runtime's `touch`).
const SHARED_TOUCH_EVERY_MS: i64 = 60_000;

impl Sandboxes {
    pub fn new(runtime: Arc<dyn Runtime>, settings: SandboxSettings) -> Self {
        Self {
            runtime,
            settings,
            entries: Arc::new(Mutex::new(HashMap::new())),
            starting: Arc::new(Mutex::new(HashMap::new())),
            mirrored: Arc::new(Mutex::new(HashMap::new())),
            metrics: SandboxMetrics::new(),
        }
    }

    pub fn runtime_name(&self) -> &'static str {
        self.runtime.name()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<WorkspaceId, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_for(&self, ws: WorkspaceId) -> Arc<tokio::sync::Mutex<()>> {
        self.starting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(ws)
            .or_default()
            .clone()
    }

    fn is_ready(&self, ws: WorkspaceId) -> bool {
        self.entries()
            .get(&ws)
            .is_some_and(|entry| entry.state == SandboxState::Ready)
    }

    fn mirrored(&self) -> std::sync::MutexGuard<'_, Mirrored> {
        self.mirrored
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes that the server is writing `hash` into `path` of the sandbox.
    fn remember_mirror(&self, ws: WorkspaceId, path: &str, hash: String) {
        let now = Instant::now();
        let mut mirrored = self.mirrored();
        mirrored.retain(|_, writes| {
            writes.retain(|(_, at)| now.duration_since(*at) < MIRROR_MEMORY);
            !writes.is_empty()
        });
        let writes = mirrored.entry((ws, path.to_owned())).or_default();
        if writes.len() >= MIRRORS_PER_FILE {
            writes.pop_front();
        }
        writes.push_back((hash, now));
    }

    /// Whether `hash` is a content the server itself wrote into `path` lately.
    fn is_own_mirror(&self, ws: WorkspaceId, path: &str, hash: &str) -> bool {
        self.mirrored()
            .get(&(ws, path.to_owned()))
            .is_some_and(|writes| {
                writes
                    .iter()
                    .any(|(known, at)| known == hash && at.elapsed() < MIRROR_MEMORY)
            })
    }

    /// The state of a workspace's sandbox on this server.
    pub fn state(&self, ws: WorkspaceId) -> SandboxState {
        self.entries()
            .get(&ws)
            .map_or(SandboxState::Stopped, |entry| entry.state)
    }

    /// Marks activity, pushing the idle deadline back.
    pub fn touch(&self, ws: WorkspaceId) {
        let now = now_ms();
        let share = match self.entries().get_mut(&ws) {
            Some(entry) => {
                entry.last_active = now;
                let due = now - entry.shared_at >= SHARED_TOUCH_EVERY_MS;
                if due {
                    entry.shared_at = now;
                }
                due
            }
            None => false,
        };
        // Other replicas consult the shared record before culling for idleness.
        if share
            && let Ok(id) = sandbox_id(ws)
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let runtime = self.runtime.clone();
            handle.spawn(async move {
                if let Err(error) = runtime.touch(&id).await {
                    tracing::debug!(sandbox = %id, error = %error, "could not record activity");
                }
            });
        }
    }

    /// A connection to a ready sandbox's agent.
    pub async fn agent(&self, ws: WorkspaceId) -> Result<AgentClient> {
        if !self.is_ready(ws) {
            return Err(Error::NotFound);
        }
        self.runtime
            .connect(&sandbox_id(ws)?)
            .await
            .map_err(runtime_error)
    }

    fn status_of(&self, ws: WorkspaceId) -> SandboxStatus {
        match self.entries().get(&ws) {
            None => SandboxStatus::stopped(),
            Some(entry) => SandboxStatus {
                state: entry.state,
                started_at: Some(entry.started_at),
                idle_deadline: Some(
                    entry
                        .last_active
                        .saturating_add(duration_ms(self.settings.idle_timeout)),
                ),
                max_deadline: Some(
                    entry
                        .started_at
                        .saturating_add(duration_ms(self.settings.max_lifetime)),
                ),
                memory_bytes: None,
                processes: None,
                error: entry.error.clone(),
            },
        }
    }

    async fn status(&self, ws: WorkspaceId) -> SandboxStatus {
        let mut status = self.status_of(ws);
        if status.state == SandboxState::Ready
            && let Ok(id) = sandbox_id(ws)
            && let Ok(stats) = self.runtime.stats(&id).await
        {
            status.memory_bytes = stats.memory_bytes;
            status.processes = stats.processes;
        }
        status
    }

    /// Stops a workspace's sandbox if it runs; `reason` labels the cull metric.
    pub async fn stop(&self, ws: WorkspaceId, reason: &str) -> Result<()> {
        let known = self.entries().remove(&ws).is_some();
        // Counted together with the entry's removal, so that anyone who sees the sandbox
        // stopped also sees it counted.
        if known {
            self.metrics.active.dec();
            self.metrics
                .culls
                .get_or_create(&CullLabels {
                    reason: reason.to_owned(),
                })
                .inc();
        }
        self.runtime
            .stop(&sandbox_id(ws)?)
            .await
            .map_err(runtime_error)?;
        if known {
            tracing::info!(workspace.id = %ws, reason, "sandbox stopped");
        }
        Ok(())
    }

    /// Stops every sandbox idle too long or past its lifetime. Run periodically.
    pub async fn reap(&self) -> usize {
        let now = now_ms();
        let idle = duration_ms(self.settings.idle_timeout);
        let max = duration_ms(self.settings.max_lifetime);
        let doomed: Vec<(WorkspaceId, &str)> = self
            .entries()
            .iter()
            .filter_map(|(ws, entry)| {
                if now - entry.started_at >= max {
                    Some((*ws, "max_lifetime"))
                } else if now - entry.last_active >= idle {
                    Some((*ws, "idle"))
                } else {
                    None
                }
            })
            .collect();
        let mut count = 0;
        for (ws, reason) in doomed {
            // Another replica may be serving this sandbox: its record of activity counts.
            if reason == "idle"
                && let Ok(id) = sandbox_id(ws)
                && let Ok(Some(shared)) = self.runtime.last_active(&id).await
                && now - shared < idle
            {
                if let Some(entry) = self.entries().get_mut(&ws) {
                    entry.last_active = entry.last_active.max(shared);
                }
                continue;
            }
            count += 1;
            if let Err(error) = self.stop(ws, reason).await {
                tracing::warn!(workspace.id = %ws, error = %error, "reaper could not stop a sandbox");
            }
        }
        count
    }

    /// Stops everything (shutdown) — unless sandboxes outlive this process (Kubernetes),
    /// where another replica takes over their users and the terminals keep running.
    pub async fn stop_all(&self) {
        if self.runtime.outlives_server() {
            let left = self.entries().drain().count();
            self.metrics.active.set(0);
            tracing::info!(
                sandboxes = left,
                "leaving sandboxes running for the other replicas"
            );
            return;
        }
        let all: Vec<WorkspaceId> = self.entries().keys().copied().collect();
        for ws in all {
            let _ = self.stop(ws, "shutdown").await;
        }
    }

    /// The runtime's periodic housekeeping (orphans, warm pool); run with the reaper.
    pub async fn maintain(&self) {
        if let Err(error) = self.runtime.maintain().await {
            tracing::warn!(error = %error, "sandbox runtime housekeeping failed");
        }
    }

    /// Registers the runtime's own metrics (e.g. the warm pool's).
    pub fn register_runtime_metrics(&self, registry: &mut Registry) {
        self.runtime.register_metrics(registry);
    }

    /// Removes sandboxes left by an earlier server process.
    pub async fn cleanup_orphans(&self) -> Result<usize> {
        self.runtime.cleanup_orphans().await.map_err(runtime_error)
    }
}

/// Sends one request to the agent and checks for `Ok`.
async fn agent_ok(agent: &mut AgentClient, message: Message) -> Result<()> {
    match agent.request(message).await.map_err(runtime_error)? {
        Message::Ok => Ok(()),
        other => Err(Error::Internal(format!("agent answered {other:?}"))),
    }
}

impl Services {
    /// Starts (or reuses) the workspace's sandbox and fills it from the database.
    #[tracing::instrument(skip_all, fields(workspace.id = %ws), err(level = "info", Display))]
    pub async fn start_workspace(
        &self,
        user: &CurrentUser,
        ws: WorkspaceId,
    ) -> Result<SandboxStatus> {
        self.workspace(user, ws).await?;
        let sandboxes = &self.sandboxes;
        let lock = sandboxes.lock_for(ws);
        let _guard = lock.lock().await;
        if sandboxes.is_ready(ws) {
            sandboxes.touch(ws);
            return Ok(sandboxes.status(ws).await);
        }
        let started = Instant::now();
        let now = now_ms();
        sandboxes.entries().insert(
            ws,
            Entry {
                state: SandboxState::Starting,
                started_at: now,
                last_active: now,
                shared_at: now,
                error: None,
            },
        );
        sandboxes.metrics.active.inc();
        let result = self.boot(user, ws).await;
        if let Some(entry) = sandboxes.entries().get_mut(&ws) {
            match &result {
                Ok(()) => entry.state = SandboxState::Ready,
                Err(error) => {
                    entry.state = SandboxState::Failed;
                    entry.error = Some(error.to_string());
                }
            }
        }
        sandboxes.metrics.starts.inc();
        sandboxes
            .metrics
            .start_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Err(error) = result {
            tracing::error!(error = %error, "sandbox failed to start");
            let _ = sandboxes.runtime.stop(&sandbox_id(ws)?).await;
        }
        let _ = self.store.touch_workspace(user.id, ws, now_ms()).await;
        Ok(sandboxes.status(ws).await)
    }

    /// Runs the sandbox and copies every file and folder of the workspace into it.
    async fn boot(&self, user: &CurrentUser, ws: WorkspaceId) -> Result<()> {
        let id = sandbox_id(ws)?;
        self.sandboxes
            .runtime
            .ensure(&id)
            .await
            .map_err(runtime_error)?;
        let mut agent = self
            .sandboxes
            .runtime
            .connect(&id)
            .await
            .map_err(runtime_error)?;
        for entry in self.store.list_files(user.id, ws).await? {
            let path = entry.path.to_string();
            if entry.kind == FileKind::Dir {
                agent_ok(&mut agent, Message::MakeDir { path }).await?;
            } else {
                let content = self
                    .store
                    .read_file(user.id, ws, &entry.path)
                    .await?
                    .content;
                agent_ok(
                    &mut agent,
                    Message::WriteFile {
                        path,
                        data: content,
                    },
                )
                .await?;
            }
        }
        agent.close().await;
        self.spawn_sync(user.id, ws, id).await
    }

    /// Follows the sandbox's file changes into the database until the sandbox goes away.
    async fn spawn_sync(&self, owner: model::UserId, ws: WorkspaceId, id: SandboxId) -> Result<()> {
        let mut agent = self
            .sandboxes
            .runtime
            .connect(&id)
            .await
            .map_err(runtime_error)?;
        agent_ok(&mut agent, Message::Watch).await?;
        let services = self.clone();
        tokio::spawn(async move {
            while let Some(frame) = agent.next().await {
                services
                    .apply_sandbox_change(owner, ws, frame.message)
                    .await;
            }
            tracing::debug!(workspace.id = %ws, "sandbox sync ended");
        });
        Ok(())
    }

    /// Applies one change seen inside the sandbox to the database. The sandbox's view wins
    /// over the stored version (it is what the user's code just did); an unchanged content
    /// (an echo of our own mirror write) is skipped.
    async fn apply_sandbox_change(&self, owner: model::UserId, ws: WorkspaceId, message: Message) {
        let now = now_ms();
        let result = match message {
            Message::FileChanged { path, is_dir, data } => {
                let Ok(path) = model::WorkspacePath::parse(&path) else {
                    return;
                };
                self.sandboxes.touch(ws);
                if is_dir {
                    match self
                        .store
                        .make_dir(owner, ws, &path, &self.limits, now)
                        .await
                    {
                        Err(store::Error::Exists(_)) => Ok(()),
                        other => other.map(|_| {
                            self.events.publish(
                                ws,
                                FileEvent::Changed {
                                    path: path.to_string(),
                                    version: None,
                                },
                            );
                        }),
                    }
                } else if let Some(data) = data {
                    // Our own write coming back (maybe after a newer save): not a change.
                    if self
                        .sandboxes
                        .is_own_mirror(ws, path.as_str(), &store::content_hash(&data))
                    {
                        return;
                    }
                    let current = match self.store.read_file(owner, ws, &path).await {
                        Ok(record) if record.entry.hash == store::content_hash(&data) => return,
                        Ok(record) => Some(record.entry.version),
                        Err(store::Error::NotFound) => None,
                        Err(error) => {
                            tracing::warn!(workspace.id = %ws, error = %error, "cannot read a file to sync it");
                            return;
                        }
                    };
                    let write = store::WriteFile {
                        path: &path,
                        content: &data,
                        base_version: current,
                    };
                    self.store
                        .write_file(owner, ws, write, &self.limits, now)
                        .await
                        .map(|entry| {
                            self.events.publish(
                                ws,
                                FileEvent::Changed {
                                    path: path.to_string(),
                                    version: Some(entry.version),
                                },
                            );
                        })
                } else {
                    tracing::info!(workspace.id = %ws, path = %path, "a file over the sync size cap stays in the sandbox only");
                    Ok(())
                }
            }
            Message::FileRemoved { path } => {
                let Ok(path) = model::WorkspacePath::parse(&path) else {
                    return;
                };
                match self.store.delete_path(owner, ws, &path, now).await {
                    Err(store::Error::NotFound) => Ok(()),
                    other => other.map(|_| {
                        self.events.publish(
                            ws,
                            FileEvent::Removed {
                                path: path.to_string(),
                            },
                        );
                    }),
                }
            }
            _ => Ok(()),
        };
        if let Err(error) = result {
            tracing::warn!(workspace.id = %ws, error = %error, "a change made in the sandbox could not be saved");
        }
    }

    pub async fn stop_workspace(
        &self,
        user: &CurrentUser,
        ws: WorkspaceId,
    ) -> Result<SandboxStatus> {
        self.workspace(user, ws).await?;
        self.sandboxes.stop(ws, "requested").await?;
        Ok(SandboxStatus::stopped())
    }

    pub async fn workspace_status(
        &self,
        user: &CurrentUser,
        ws: WorkspaceId,
    ) -> Result<SandboxStatus> {
        self.workspace(user, ws).await?;
        Ok(self.sandboxes.status(ws).await)
    }

    /// Pushes the idle deadline back ("keep alive").
    pub async fn keepalive(&self, user: &CurrentUser, ws: WorkspaceId) -> Result<SandboxStatus> {
        self.workspace(user, ws).await?;
        self.sandboxes.touch(ws);
        Ok(self.sandboxes.status(ws).await)
    }

    /// Mirrors a change already committed to the database into the running sandbox, if
    /// there is one. The database write stands whatever happens here; a sandbox that
    /// missed it is refilled on its next start.
    pub(crate) async fn mirror(&self, ws: WorkspaceId, message: Message) {
        if !self.sandboxes.is_ready(ws) {
            return;
        }
        self.sandboxes.touch(ws);
        if let Message::WriteFile { path, data } = &message {
            self.sandboxes
                .remember_mirror(ws, path, store::content_hash(data));
        }
        let result = async {
            let mut agent = self.sandboxes.agent(ws).await?;
            let result = agent_ok(&mut agent, message).await;
            agent.close().await;
            result
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(workspace.id = %ws, error = %error, "could not mirror a change into the sandbox");
        }
    }
}

#[cfg(test)]
mod tests {
    //! The reaper's and shutdown's decisions when sandboxes are shared between server
    //! replicas (Kubernetes). The runtime here only records what it is asked; the real
    //! runtimes are exercised in `sandbox/tests` and `server/tests`.
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[derive(Default)]
    struct Shared {
        outlives: bool,
        last_active: Mutex<Option<i64>>,
        stopped: Mutex<Vec<SandboxId>>,
    }

    /// The runtime as the server sees it; the test keeps the other handle.
    struct Recording(Arc<Shared>);

    #[async_trait::async_trait]
    impl Runtime for Recording {
        fn name(&self) -> &'static str {
            "shared"
        }
        fn containment(&self) -> sandbox::Containment {
            sandbox::Containment::default()
        }
        fn outlives_server(&self) -> bool {
            self.0.outlives
        }
        async fn ensure(&self, _id: &SandboxId) -> sandbox::Result<()> {
            Ok(())
        }
        async fn connect(&self, _id: &SandboxId) -> sandbox::Result<AgentClient> {
            Err(sandbox::Error::NotFound)
        }
        async fn stop(&self, id: &SandboxId) -> sandbox::Result<()> {
            self.0.stopped.lock().unwrap().push(id.clone());
            Ok(())
        }
        async fn list(&self) -> sandbox::Result<Vec<SandboxId>> {
            Ok(Vec::new())
        }
        async fn stats(&self, _id: &SandboxId) -> sandbox::Result<sandbox::Stats> {
            Ok(sandbox::Stats::default())
        }
        async fn cleanup_orphans(&self) -> sandbox::Result<usize> {
            Ok(0)
        }
        async fn last_active(&self, _id: &SandboxId) -> sandbox::Result<Option<i64>> {
            Ok(*self.0.last_active.lock().unwrap())
        }
    }

    fn serving(shared: &Arc<Shared>) -> (Sandboxes, WorkspaceId) {
        let sandboxes = Sandboxes::new(
            Arc::new(Recording(shared.clone())),
            SandboxSettings {
                idle_timeout: Duration::from_secs(60),
                max_lifetime: Duration::from_secs(3600),
            },
        );
        let ws = WorkspaceId(uuid::Uuid::new_v4());
        let long_ago = now_ms() - 120_000;
        sandboxes.entries().insert(
            ws,
            Entry {
                state: SandboxState::Ready,
                started_at: long_ago,
                last_active: long_ago,
                shared_at: long_ago,
                error: None,
            },
        );
        (sandboxes, ws)
    }

    #[tokio::test]
    async fn a_sandbox_another_replica_keeps_busy_is_not_culled_for_idleness() {
        let shared = Arc::new(Shared::default());
        let (sandboxes, ws) = serving(&shared);
        // Idle here, but another replica recorded activity a second ago.
        *shared.last_active.lock().unwrap() = Some(now_ms() - 1000);
        assert_eq!(sandboxes.reap().await, 0);
        assert!(shared.stopped.lock().unwrap().is_empty());
        assert_eq!(sandboxes.state(ws), SandboxState::Ready);
        // What the other replica saw now counts here too.
        let learned = sandboxes.entries()[&ws].last_active;
        assert!(learned >= now_ms() - 2000, "{learned}");
        // A minute later nobody has touched it anywhere: culled.
        sandboxes.entries().get_mut(&ws).unwrap().last_active = now_ms() - 120_000;
        *shared.last_active.lock().unwrap() = Some(now_ms() - 120_000);
        assert_eq!(sandboxes.reap().await, 1);
        assert_eq!(shared.stopped.lock().unwrap().len(), 1);
        assert_eq!(sandboxes.state(ws), SandboxState::Stopped);
    }

    #[tokio::test]
    async fn shutdown_stops_local_sandboxes_and_leaves_shared_ones_running() {
        let local = Arc::new(Shared::default());
        let (sandboxes, _) = serving(&local);
        sandboxes.stop_all().await;
        assert_eq!(local.stopped.lock().unwrap().len(), 1);

        let shared = Arc::new(Shared {
            outlives: true,
            ..Shared::default()
        });
        let (sandboxes, ws) = serving(&shared);
        sandboxes.stop_all().await;
        assert!(shared.stopped.lock().unwrap().is_empty());
        assert_eq!(
            sandboxes.state(ws),
            SandboxState::Stopped,
            "forgotten here, running there"
        );
    }
}
