//! Workspace sandboxes over their lifetime: start on open (filled from the database), reuse
//! while active, stop on request, on workspace delete, when idle too long, when past their
//! maximum lifetime, and at shutdown. The database stays the source of truth: a sandbox is
//! disposable and every start materializes the workspace's files afresh.
//!
//! - this module: the registry of this server's sandboxes (state, activity, the control
//!   connection to each one's agent), the reaper and the metrics;
//! - [`lifecycle`]: start (with admission control), boot and fill, stop, status, terminal
//!   sessions;
//! - [`sync`]: both directions of file sync — changes made inside the sandbox into the
//!   database, and changes saved to the database mirrored into the sandbox.
//!
//! Everything here speaks the typed agent API of `sandbox::agent`; the agent is untrusted
//! and each call is bounded in size and time there.

mod lifecycle;
mod packages;
mod sync;

pub use lifecycle::Activity;
pub(crate) use sync::Mirror;
pub use sync::ResyncReport;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use model::{NotKept, SandboxState, SandboxStatus, UserId, WorkspaceId};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use sandbox::{AgentConnection, Runtime, SandboxId};

use crate::{Error, Result, duration_ms, now_ms};

/// Lifetimes of sandboxes, and how many may run.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// Stopped after this long with no activity (start, keepalive, terminal traffic, saves).
    pub idle_timeout: Duration,
    /// Stopped this long after start, whatever happens.
    pub max_lifetime: Duration,
    /// Sandboxes one user may have running at once on this server.
    pub max_per_user: usize,
    /// Sandboxes this server runs at once (for the local runtime: what the machine's
    /// memory holds at each sandbox's memory cap).
    pub max_total: usize,
    /// Largest packed size of a workspace's installed packages that is kept.
    pub packages_quota_bytes: u64,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            max_lifetime: Duration::from_secs(2 * 3600),
            max_per_user: 3,
            max_total: 64,
            packages_quota_bytes: 256 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CullLabels {
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResyncLabels {
    /// `lag` (the change stream dropped changes), `reconnect` (a new connection to the
    /// agent) or `error` (the database failed a batch).
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    /// `per_user` or `total`.
    limit: String,
}

/// Prometheus metrics of the sandbox lifecycle.
#[derive(Clone)]
pub struct SandboxMetrics {
    starts: Counter,
    start_seconds: Histogram,
    active: Gauge,
    culls: Family<CullLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    watch_lags: Counter,
    sync_reconnects: Counter,
    resyncs: Family<ResyncLabels, Counter>,
    resync_seconds: Histogram,
    not_kept: Counter,
}

impl SandboxMetrics {
    fn new() -> Self {
        Self {
            starts: Counter::default(),
            start_seconds: Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            active: Gauge::default(),
            culls: Family::default(),
            refusals: Family::default(),
            watch_lags: Counter::default(),
            sync_reconnects: Counter::default(),
            resyncs: Family::default(),
            resync_seconds: Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            not_kept: Counter::default(),
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
        registry.register(
            "sandbox_refusals",
            "Sandbox starts refused by admission control, by the limit that refused them",
            self.refusals.clone(),
        );
        registry.register(
            "sandbox_watch_lags",
            "Times a sandbox's change stream dropped changes (a burst larger than its queues)",
            self.watch_lags.clone(),
        );
        registry.register(
            "sandbox_sync_reconnects",
            "Times the sync of a running sandbox had to open a new connection to its agent",
            self.sync_reconnects.clone(),
        );
        registry.register(
            "sandbox_resyncs",
            "Times the database was brought to a sandbox's state from a snapshot, by why",
            self.resyncs.clone(),
        );
        registry.register(
            "sandbox_resync_seconds",
            "Time from the snapshot request to the last change of a resync written",
            self.resync_seconds.clone(),
        );
        registry.register(
            "sandbox_changes_not_kept",
            "Changes made inside sandboxes that the database refused (file, size and count limits)",
            self.not_kept.clone(),
        );
    }
}

struct Entry {
    owner: UserId,
    state: SandboxState,
    started_at: i64,
    last_active: i64,
    /// When activity was last recorded with the runtime (shared with other replicas).
    shared_at: i64,
    /// Why it failed, in words safe to show its owner.
    error: Option<String>,
    /// The latest changes made inside that the database did not take.
    not_kept: Option<NotKept>,
    /// The control connection to its agent, opened at boot and again whenever it ends.
    control: Option<AgentConnection>,
    /// The task following its changes into the database.
    sync: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(sync) = self.sync.take() {
            sync.abort();
        }
    }
}

/// The running sandboxes of this server.
#[derive(Clone)]
pub struct Sandboxes {
    runtime: Arc<dyn Runtime>,
    settings: SandboxSettings,
    entries: Arc<Mutex<HashMap<WorkspaceId, Entry>>>,
    /// One start at a time per workspace.
    starting: Arc<Mutex<HashMap<WorkspaceId, Arc<tokio::sync::Mutex<()>>>>>,
    /// Admission is decided and the entry made under this lock, so that two starts cannot
    /// both take the last place.
    admission: Arc<tokio::sync::Mutex<()>>,
    mirrors: Arc<sync::Mirrors>,
    /// Per workspace: saves hold it shared from their commit to their mirror; a resync holds
    /// it alone while it lists the database and snapshots the sandbox.
    mutations: Arc<MutationLocks>,
    pub metrics: SandboxMetrics,
    /// Where installed packages are kept ([`packages`]); set by `Services::new`.
    package_store: Arc<std::sync::OnceLock<Arc<dyn store::Store>>>,
    /// Why a workspace's latest packages were not kept (over the quota).
    packages_not_kept: Arc<Mutex<HashMap<WorkspaceId, String>>>,
}

type MutationLocks = Mutex<HashMap<WorkspaceId, Arc<tokio::sync::RwLock<()>>>>;

fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A held [`Sandboxes::saving`] or [`Sandboxes::quiet`]; the workspace's lock is forgotten
/// once nobody holds or waits for it (so workspaces never synced cost nothing).
pub(crate) struct MutationGuard<G> {
    ws: WorkspaceId,
    locks: Arc<MutationLocks>,
    guard: Option<G>,
}

impl<G> MutationGuard<G> {
    fn new(sandboxes: &Sandboxes, ws: WorkspaceId, guard: G) -> Self {
        Self {
            ws,
            locks: sandboxes.mutations.clone(),
            guard: Some(guard),
        }
    }
}

impl<G> Drop for MutationGuard<G> {
    fn drop(&mut self) {
        // The guard holds the lock's Arc: let it go first.
        drop(self.guard.take());
        let mut locks = lock_ignoring_poison(&self.locks);
        if locks
            .get(&self.ws)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            locks.remove(&self.ws);
        }
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
            admission: Arc::new(tokio::sync::Mutex::new(())),
            mirrors: Arc::new(sync::Mirrors::default()),
            mutations: Arc::default(),
            metrics: SandboxMetrics::new(),
            package_store: Arc::default(),
            packages_not_kept: Arc::default(),
        }
    }

    pub fn runtime_name(&self) -> &'static str {
        self.runtime.name()
    }

    /// What contains this server's sandboxes (for the start log and `/readyz`).
    pub fn containment(&self) -> sandbox::Containment {
        self.runtime.containment()
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

    fn mutation_lock(&self, ws: WorkspaceId) -> Arc<tokio::sync::RwLock<()>> {
        lock_ignoring_poison(&self.mutations)
            .entry(ws)
            .or_default()
            .clone()
    }

    /// Held by a save from its commit until it is mirrored into the sandbox.
    pub(crate) async fn saving(
        &self,
        ws: WorkspaceId,
    ) -> MutationGuard<tokio::sync::OwnedRwLockReadGuard<()>> {
        let guard = self.mutation_lock(ws).read_owned().await;
        MutationGuard::new(self, ws, guard)
    }

    /// Held while no save may be between its commit and its mirror.
    async fn quiet(
        &self,
        ws: WorkspaceId,
    ) -> MutationGuard<tokio::sync::OwnedRwLockWriteGuard<()>> {
        let guard = self.mutation_lock(ws).write_owned().await;
        MutationGuard::new(self, ws, guard)
    }

    fn is_ready(&self, ws: WorkspaceId) -> bool {
        self.entries()
            .get(&ws)
            .is_some_and(|entry| entry.state == SandboxState::Ready)
    }

    /// The state of a workspace's sandbox on this server.
    pub fn state(&self, ws: WorkspaceId) -> SandboxState {
        self.entries()
            .get(&ws)
            .map_or(SandboxState::Stopped, |entry| entry.state)
    }

    /// The state of a workspace's sandbox on this server, and when it was last used (terminal
    /// input, saves, editor activity; Unix ms) while it ran here.
    pub fn state_and_activity(&self, ws: WorkspaceId) -> (SandboxState, Option<i64>) {
        self.entries()
            .get(&ws)
            .map_or((SandboxState::Stopped, None), |entry| {
                (entry.state, Some(entry.last_active))
            })
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
        if share && let Ok(handle) = tokio::runtime::Handle::try_current() {
            let runtime = self.runtime.clone();
            let id = SandboxId::from(ws);
            handle.spawn(async move {
                if let Err(error) = runtime.touch(&id).await {
                    tracing::debug!(sandbox = %id, error = %error, "could not record activity");
                }
            });
        }
    }

    /// The control connection to a ready sandbox's agent: the one held for it, or a new one
    /// if that has ended (the agent restarted, broke the protocol or stopped answering).
    pub(crate) async fn control(&self, ws: WorkspaceId) -> Result<AgentConnection> {
        let held = match self.entries().get(&ws) {
            Some(entry) if entry.state == SandboxState::Ready => entry.control.clone(),
            _ => return Err(Error::NotFound),
        };
        if let Some(control) = held
            && !control.is_closed()
        {
            return Ok(control);
        }
        let id = SandboxId::from(ws);
        let transport = self.runtime.connect(&id).await.map_err(runtime_error)?;
        let control = AgentConnection::open(transport)
            .await
            .map_err(runtime_error)?;
        match self.entries().get_mut(&ws) {
            Some(entry) if entry.state == SandboxState::Ready => {
                entry.control = Some(control.clone());
                Ok(control)
            }
            _ => Err(Error::NotFound),
        }
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
                not_kept: entry.not_kept.clone(),
            },
        }
    }

    async fn status(&self, ws: WorkspaceId) -> SandboxStatus {
        let mut status = self.status_of(ws);
        if status.state == SandboxState::Ready
            && let Ok(stats) = self.runtime.stats(&SandboxId::from(ws)).await
        {
            status.memory_bytes = stats.memory_bytes;
            status.processes = stats.processes;
        }
        status
    }

    /// Stops a workspace's sandbox if it runs; `reason` labels the cull metric. Its
    /// installed packages are saved first, unless the workspace is being deleted or its
    /// agent is lost.
    pub async fn stop(&self, ws: WorkspaceId, reason: &str) -> Result<()> {
        if !matches!(reason, "deleted" | "account_deleted" | "agent_lost") {
            self.save_packages_or_log(ws).await;
        }
        lock_ignoring_poison(&self.packages_not_kept).remove(&ws);
        let entry = self.entries().remove(&ws);
        // Counted together with the entry's removal, so that anyone who sees the sandbox
        // stopped also sees it counted.
        if entry.is_some() {
            self.metrics.active.dec();
            self.metrics
                .culls
                .get_or_create(&CullLabels {
                    reason: reason.to_owned(),
                })
                .inc();
        }
        if let Some(control) = entry.as_ref().and_then(|entry| entry.control.clone()) {
            control.close().await;
        }
        drop(entry);
        self.runtime
            .stop(&SandboxId::from(ws))
            .await
            .map_err(runtime_error)?;
        self.mirrors.forget(ws);
        tracing::info!(workspace.id = %ws, reason, "sandbox stopped");
        Ok(())
    }

    /// Stops every sandbox of `owner` (an account being deleted).
    pub async fn stop_all_of(&self, owner: UserId, reason: &str) {
        let theirs: Vec<WorkspaceId> = self
            .entries()
            .iter()
            .filter(|(_, entry)| entry.owner == owner)
            .map(|(ws, _)| *ws)
            .collect();
        for ws in theirs {
            if let Err(error) = self.stop(ws, reason).await {
                tracing::warn!(workspace.id = %ws, error = %error, "could not stop a sandbox");
            }
        }
    }

    /// Saves the packages of every running sandbox that changed them, then stops every
    /// sandbox idle too long or past its lifetime. Run periodically.
    pub async fn reap(&self) -> usize {
        let running: Vec<WorkspaceId> = self
            .entries()
            .iter()
            .filter(|(_, entry)| entry.state == SandboxState::Ready)
            .map(|(ws, _)| *ws)
            .collect();
        for ws in running {
            self.save_packages_or_log(ws).await;
        }
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
                && let Ok(Some(shared)) = self.runtime.last_active(&SandboxId::from(ws)).await
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

/// A runtime's or agent's error as the services report it: what is safe to show is shown,
/// the rest is logged and summarised.
fn runtime_error(error: sandbox::Error) -> Error {
    use sandbox::Error as S;
    match error {
        S::Capacity(message) | S::ImagePull(message) => Error::Unavailable(message),
        S::StartTimeout(after) => Error::Unavailable(format!(
            "the sandbox did not come up within {} s; try again",
            after.as_secs()
        )),
        S::Uncontained(why) => {
            tracing::error!(
                why,
                "refusing to start a sandbox this machine cannot contain"
            );
            Error::Unavailable(
                "sandboxes are disabled on this server: it cannot contain them (its log says why)"
                    .into(),
            )
        }
        S::Timeout(_) | S::Closed | S::Busy => {
            tracing::warn!(error = %error, "the sandbox's agent is not answering");
            Error::Unavailable("the sandbox is not answering; try again shortly".into())
        }
        S::Unavailable(message) => {
            // The details (API server messages) go to the log, not to the user.
            tracing::warn!(error = %message, "sandbox runtime unavailable");
            Error::Unavailable(
                "the sandbox service is unavailable right now; try again shortly".into(),
            )
        }
        other => Error::Internal(Box::new(other)),
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
        async fn connect(&self, _id: &SandboxId) -> sandbox::Result<sandbox::Transport> {
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
                ..SandboxSettings::default()
            },
        );
        let ws = WorkspaceId(uuid::Uuid::new_v4());
        let long_ago = now_ms() - 120_000;
        sandboxes.entries().insert(
            ws,
            Entry {
                owner: UserId(uuid::Uuid::new_v4()),
                state: SandboxState::Ready,
                started_at: long_ago,
                last_active: long_ago,
                shared_at: long_ago,
                error: None,
                not_kept: None,
                control: None,
                sync: None,
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
