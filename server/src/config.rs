//! The one place that reads the environment: every setting is a `CODEPOD_*` variable or the
//! matching command-line flag (`codepod --help` lists them), and every one has a default so
//! the server runs with nothing set.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use clap::{Args, Parser, ValueEnum};

/// The server's configuration.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "codepod",
    version,
    about = "Codepod: a Python IDE in the browser"
)]
pub struct Config {
    /// Address and port to listen on. Port 0 picks a free port (tests use it).
    #[arg(long, env = "CODEPOD_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Where `/metrics` (Prometheus) is served: an address of its own, never the public
    /// listener (as Prometheus exporters do), so that it is not on the internet with the app.
    #[arg(long, env = "CODEPOD_METRICS_LISTEN", default_value = "127.0.0.1:9464")]
    pub metrics_listen: SocketAddr,

    /// The origin browsers use to reach this server, e.g. `https://codepod.example.org`.
    /// Defaults to `http://` + the listen address.
    #[arg(long, env = "CODEPOD_PUBLIC_ORIGIN")]
    pub public_origin: Option<String>,

    /// Directory for the SQLite database and the workspaces of local sandboxes.
    #[arg(long, env = "CODEPOD_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// `sqlite://path/to/file.db` or `postgres://user:password@host/db`. Defaults to a
    /// SQLite file in the data directory.
    #[arg(long, env = "CODEPOD_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// IPs of reverse proxies whose `X-Forwarded-For` is believed (comma-separated).
    /// Requests from anywhere else are attributed to their socket's address.
    #[arg(long, env = "CODEPOD_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpAddr>,

    #[command(flatten)]
    pub sessions: SessionConfig,

    #[command(flatten)]
    pub limits: LimitsConfig,

    #[command(flatten)]
    pub sandbox: SandboxConfig,

    #[command(flatten)]
    pub kube: KubeConfig,

    /// Print the sandbox pod this configuration creates on Kubernetes (JSON) and exit: for
    /// review, `kubectl apply --dry-run=server -f -`, or schema validation.
    #[arg(long)]
    pub print_sandbox_pod: bool,

    /// Directory holding the built site: `pkg/` (wasm, js, css), `vendor/` and the public
    /// assets. The build scripts and `cargo leptos` write it to `target/site`.
    #[arg(long, env = "CODEPOD_SITE_DIR", default_value = "target/site")]
    pub site_dir: PathBuf,

    /// A WebSocket whose browser has not taken a message for this long is dropped (it
    /// stopped reading; its terminals keep running and it may reconnect).
    #[arg(long, env = "CODEPOD_WS_SEND_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    pub ws_send_timeout: Duration,

    /// How often the server pings each WebSocket; one that leaves two pings unanswered is
    /// dropped (its terminals keep running).
    #[arg(long, env = "CODEPOD_WS_PING_INTERVAL", default_value = "20s", value_parser = parse_duration)]
    pub ws_ping_interval: Duration,

    /// How long to wait for open connections to finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "CODEPOD_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    #[command(flatten)]
    pub log: LogConfig,
}

/// Sign-in sessions and their protection.
#[derive(Debug, Clone, Args)]
pub struct SessionConfig {
    /// A session unused for this long ends.
    #[arg(id = "session_idle_timeout", long = "session-idle-timeout", env = "CODEPOD_SESSION_IDLE_TIMEOUT", default_value = "7d", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// A session ends this long after sign-in, however much it is used.
    #[arg(long, env = "CODEPOD_SESSION_MAX_AGE", default_value = "30d", value_parser = parse_duration)]
    pub max_age: Duration,

    /// Failed sign-ins per account and client IP before the account is refused to that IP
    /// (429) for the rest of the window; ten times as many from all IPs refuse it to all.
    #[arg(long, env = "CODEPOD_LOGIN_FAILURES_PER_ACCOUNT", default_value_t = 5)]
    pub login_failures_per_account: u32,

    /// Failed sign-ins for unknown accounts per client IP; past it every failed attempt from
    /// that IP is answered 429 for the rest of the window (a right password still signs in).
    #[arg(long, env = "CODEPOD_LOGIN_FAILURES_PER_IP", default_value_t = 20)]
    pub login_failures_per_ip: u32,

    /// The window the two limits above count in.
    #[arg(long, env = "CODEPOD_LOGIN_WINDOW", default_value = "15m", value_parser = parse_duration)]
    pub login_window: Duration,

    /// Accounts that may be created from one client IP per window (429 past it).
    #[arg(long, env = "CODEPOD_SIGNUPS_PER_IP", default_value_t = 20)]
    pub signups_per_ip: u32,

    /// The window sign-ups are counted in.
    #[arg(long, env = "CODEPOD_SIGNUP_WINDOW", default_value = "10m", value_parser = parse_duration)]
    pub signup_window: Duration,
}

/// Per-user and per-workspace limits.
#[derive(Debug, Clone, Args)]
pub struct LimitsConfig {
    /// Largest file (e.g. `10MiB`).
    #[arg(long, env = "CODEPOD_MAX_FILE_SIZE", default_value = "10MiB", value_parser = parse_size)]
    pub max_file_bytes: u64,

    /// Most files and folders in one workspace.
    #[arg(long, env = "CODEPOD_MAX_FILES_PER_WORKSPACE", default_value_t = 5_000)]
    pub max_files_per_workspace: u64,

    /// Most bytes of file content in one workspace.
    #[arg(long, env = "CODEPOD_MAX_WORKSPACE_SIZE", default_value = "200MiB", value_parser = parse_size)]
    pub max_workspace_bytes: u64,

    /// Most workspaces per user.
    #[arg(long, env = "CODEPOD_MAX_WORKSPACES_PER_USER", default_value_t = 50)]
    pub max_workspaces_per_user: u64,

    /// Largest upload request.
    #[arg(long, env = "CODEPOD_MAX_UPLOAD_SIZE", default_value = "100MiB", value_parser = parse_size)]
    pub max_upload_bytes: u64,
}

impl LimitsConfig {
    pub fn limits(&self) -> model::Limits {
        model::Limits {
            max_file_bytes: self.max_file_bytes,
            max_files_per_workspace: self.max_files_per_workspace,
            max_workspace_bytes: self.max_workspace_bytes,
            max_workspaces_per_user: self.max_workspaces_per_user,
            max_upload_bytes: self.max_upload_bytes,
        }
    }
}

/// Where sandboxes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeKind {
    /// A bubblewrap sandbox per workspace on this machine.
    Local,
    /// A pod per workspace on Kubernetes (the `CODEPOD_KUBE_*` settings).
    Kube,
}

/// Sandboxes.
#[derive(Debug, Clone, Args)]
pub struct SandboxConfig {
    /// `local` (bubblewrap on this machine) or `kube` (a pod per workspace).
    #[arg(long, env = "CODEPOD_RUNTIME", default_value = "local")]
    pub runtime: RuntimeKind,

    /// The `codepod-agent` binary. Defaults to the one beside `codepod`.
    #[arg(long, env = "CODEPOD_AGENT_BIN")]
    pub agent_bin: Option<PathBuf>,

    /// The Python environment (numpy, pandas, scipy) bound into sandboxes, if it exists.
    #[arg(
        long,
        env = "CODEPOD_PYTHON_ENV",
        default_value = "/opt/codepod/python"
    )]
    pub python_env: PathBuf,

    /// A sandbox with no activity for this long is stopped.
    #[arg(id = "sandbox_idle_timeout", long = "sandbox-idle-timeout", env = "CODEPOD_IDLE_TIMEOUT", default_value = "30m", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// A sandbox is stopped this long after it started, whatever happens.
    #[arg(long, env = "CODEPOD_MAX_LIFETIME", default_value = "2h", value_parser = parse_duration)]
    pub max_lifetime: Duration,

    /// How often idle and expired sandboxes are looked for.
    #[arg(long, env = "CODEPOD_REAPER_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub reaper_interval: Duration,

    /// Sandboxes one user may have running at once (429 past it: "stop another workspace
    /// first").
    #[arg(long, env = "CODEPOD_MAX_SANDBOXES_PER_USER", default_value_t = 3)]
    pub max_per_user: usize,

    /// Sandboxes this server runs at once (503 past it). Default: the local runtime, this
    /// machine's memory divided by CODEPOD_SANDBOX_MEMORY; Kubernetes, no limit of its own
    /// (the namespace's ResourceQuota is the bound).
    #[arg(long, env = "CODEPOD_MAX_SANDBOXES")]
    pub max_total: Option<usize>,

    /// Memory for all processes of one sandbox.
    #[arg(long, env = "CODEPOD_SANDBOX_MEMORY", default_value = "1GiB", value_parser = parse_size)]
    pub memory_bytes: u64,

    /// Processes and threads in one sandbox.
    #[arg(long, env = "CODEPOD_SANDBOX_PROCESSES", default_value_t = 256)]
    pub max_processes: u64,

    /// CPU of all processes of one sandbox together, in cores (`1`, `0.5`, `500m`); `0`
    /// for no cap.
    #[arg(long, env = "CODEPOD_SANDBOX_CPUS", default_value = "1", value_parser = parse_cpus)]
    pub cpu_millis: u32,

    /// Let sandboxes reach the internet (HTTP and HTTPS, e.g. `pip install`) through the
    /// server's filtering proxy: public addresses only, never this host's loopback, private
    /// ranges or the 169.254.169.254 metadata service. Off: no network at all.
    #[arg(long = "sandbox-egress", env = "CODEPOD_SANDBOX_EGRESS")]
    pub egress: bool,

    /// The Python package index `pip install` in a sandbox reaches, with or without egress:
    /// a simple index (PEP 503/691) such as PyPI, a mirror or a private index (credentials
    /// may go in the URL; sandboxes never see it). `off`: none.
    #[arg(
        long,
        env = "CODEPOD_PACKAGE_INDEX",
        default_value = sandbox::index::DEFAULT_UPSTREAM
    )]
    pub package_index: String,

    /// Where the package index keeps what it downloaded, shared by every workspace.
    /// Default: `package-cache` in the data directory.
    #[arg(long, env = "CODEPOD_PACKAGE_CACHE")]
    pub package_cache: Option<PathBuf>,

    /// Also serve the package index on this address, for Kubernetes sandbox pods (through
    /// the `codepod-index` Service; local sandboxes reach it without a port).
    #[arg(long, env = "CODEPOD_PACKAGE_INDEX_LISTEN")]
    pub package_index_listen: Option<SocketAddr>,

    /// Largest packed size of one workspace's installed packages (`pip install`) kept with it
    /// between sandboxes; over it, the latest packages live only as long as the sandbox.
    #[arg(long, env = "CODEPOD_PACKAGES_QUOTA", default_value = "256MiB", value_parser = parse_size)]
    pub packages_quota_bytes: u64,

    /// Size of that cache; past it the least recently used files go.
    #[arg(long, env = "CODEPOD_PACKAGE_CACHE_SIZE", default_value = "10GiB", value_parser = parse_size)]
    pub package_cache_bytes: u64,

    /// Size of a sandbox's workspace (and of each of its home, /tmp and /dev/shm).
    #[arg(long, env = "CODEPOD_SANDBOX_DISK", default_value = "512MiB", value_parser = parse_size)]
    pub disk_bytes: u64,

    /// Files and folders in each of those (local runtime, server running as root).
    #[arg(long, env = "CODEPOD_SANDBOX_INODES", default_value_t = 65_536)]
    pub max_inodes: u64,

    /// Host uids for local sandboxes, one per running sandbox (`first-last`): the server,
    /// running as root, refuses to start if any of them is a known user, group or
    /// subordinate id.
    #[arg(long, env = "CODEPOD_SANDBOX_UIDS", default_value = "1900000000-1900065535", value_parser = parse_uid_range)]
    pub uids: std::ops::RangeInclusive<u32>,

    /// Start local sandboxes even where no cgroup hierarchy can cap their memory, processes
    /// and CPU (only rlimits then, which are no boundary). `/readyz` and the start log say
    /// containment is degraded.
    #[arg(long = "sandbox-uncontained", env = "CODEPOD_SANDBOX_UNCONTAINED")]
    pub allow_uncontained: bool,
}

/// The Kubernetes runtime (used with `CODEPOD_RUNTIME=kube`). The cluster is reached with
/// the in-cluster service account, or the kubeconfig outside a cluster.
#[derive(Debug, Clone, Args)]
pub struct KubeConfig {
    /// The API server's URL, e.g. `http://127.0.0.1:8001` behind `kubectl proxy`. Unset:
    /// the in-cluster service account, or the current kubeconfig context.
    #[arg(long, env = "CODEPOD_KUBE_API_URL")]
    pub kube_api_url: Option<String>,

    /// Namespace of the sandbox pods.
    #[arg(
        long,
        env = "CODEPOD_KUBE_NAMESPACE",
        default_value = "codepod-sandboxes"
    )]
    pub kube_namespace: String,

    /// Label value telling this installation's pods from another's.
    #[arg(long, env = "CODEPOD_KUBE_INSTANCE", default_value = "codepod")]
    pub kube_instance: String,

    /// The sandbox image (built from `images/sandbox.Dockerfile`).
    #[arg(
        long,
        env = "CODEPOD_KUBE_IMAGE",
        default_value = "codepod-sandbox:latest"
    )]
    pub kube_image: String,

    /// `Always`, `IfNotPresent` or `Never`; unset: the cluster's default.
    #[arg(long, env = "CODEPOD_KUBE_IMAGE_PULL_POLICY")]
    pub kube_image_pull_policy: Option<String>,

    /// CPU limit of a sandbox pod.
    #[arg(long, env = "CODEPOD_KUBE_CPU", default_value = "500m")]
    pub kube_cpu: String,

    /// CPU request of a sandbox pod (what the scheduler reserves).
    #[arg(long, env = "CODEPOD_KUBE_CPU_REQUEST", default_value = "100m")]
    pub kube_cpu_request: String,

    /// Memory of a sandbox pod (request and limit).
    #[arg(long, env = "CODEPOD_KUBE_MEMORY", default_value = "768MiB", value_parser = parse_size)]
    pub kube_memory: u64,

    /// The package index's simple URL as sandbox pods reach it, e.g.
    /// `http://codepod-index.codepod.svc.cluster.local:3141/simple/` (the Service in front of
    /// the replicas' CODEPOD_PACKAGE_INDEX_LISTEN). Its host is resolved by the server at
    /// start, since sandbox pods have no DNS. Unset: pods get no package index.
    #[arg(long, env = "CODEPOD_KUBE_PACKAGE_INDEX_URL")]
    pub kube_package_index_url: Option<String>,

    /// Generic pods kept ready to be claimed when a workspace opens.
    #[arg(long, env = "CODEPOD_KUBE_WARM_POOL", default_value_t = 0)]
    pub kube_warm_pool: usize,

    /// How long a sandbox pod may take to become ready.
    #[arg(long, env = "CODEPOD_KUBE_READY_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub kube_ready_timeout: Duration,

    /// RuntimeClass of sandbox pods, e.g. `gvisor`.
    #[arg(long, env = "CODEPOD_KUBE_RUNTIME_CLASS")]
    pub kube_runtime_class: Option<String>,

    /// Node selector of sandbox pods: `key=value` pairs, comma-separated.
    #[arg(long, env = "CODEPOD_KUBE_NODE_SELECTOR", value_parser = parse_label, value_delimiter = ',')]
    pub kube_node_selector: Vec<(String, String)>,

    /// Tolerations of sandbox pods, as a JSON array of Kubernetes tolerations.
    #[arg(long, env = "CODEPOD_KUBE_TOLERATIONS", value_parser = parse_tolerations)]
    pub kube_tolerations: Option<Tolerations>,
}

/// Tolerations parsed from JSON.
#[derive(Debug, Clone)]
pub struct Tolerations(pub Vec<k8s_openapi::api::core::v1::Toleration>);

fn parse_tolerations(text: &str) -> Result<Tolerations, String> {
    serde_json::from_str(text)
        .map(Tolerations)
        .map_err(|error| format!("not a JSON array of tolerations: {error}"))
}

/// Parses `key=value`.
fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("`{text}` is not key=value")),
    }
}

impl KubeConfig {
    /// The runtime's settings, with the sandbox limits and lifetimes shared with `local`.
    pub fn runtime_config(&self, sandbox: &SandboxConfig) -> sandbox::kube::KubeConfig {
        let mut config = sandbox::kube::KubeConfig::new(&self.kube_namespace, &self.kube_image);
        config.instance = self.kube_instance.clone();
        config.image_pull_policy = self.kube_image_pull_policy.clone();
        config.limits.memory_bytes = self.kube_memory;
        config.limits.workspace_bytes = sandbox.disk_bytes;
        config.cpu_limit = self.kube_cpu.clone();
        config.cpu_request = self.kube_cpu_request.clone();
        config.max_lifetime = sandbox.max_lifetime;
        config.idle_timeout = sandbox.idle_timeout;
        config.ready_timeout = self.kube_ready_timeout;
        config.warm_pool = self.kube_warm_pool;
        config.runtime_class = self.kube_runtime_class.clone();
        config.package_index_url = self.kube_package_index_url.clone();
        config.node_selector = self.kube_node_selector.iter().cloned().collect();
        config.tolerations = self
            .kube_tolerations
            .as_ref()
            .map(|t| t.0.clone())
            .unwrap_or_default();
        config
    }
}

impl SandboxConfig {
    /// The package index sandboxes reach, unless turned `off`.
    pub fn package_index(&self, data_dir: &std::path::Path) -> Option<sandbox::index::IndexConfig> {
        let upstream = self.package_index.trim();
        if upstream.is_empty() || upstream.eq_ignore_ascii_case("off") {
            return None;
        }
        let mut index = sandbox::index::IndexConfig::new(
            upstream,
            self.package_cache
                .clone()
                .unwrap_or_else(|| data_dir.join("package-cache")),
        );
        index.max_cache_bytes = self.package_cache_bytes;
        Some(index)
    }

    /// The agent binary: configured, or `codepod-agent` beside this executable (or one
    /// directory up, where cargo puts binaries when this is a test).
    pub fn agent_bin(&self) -> PathBuf {
        if let Some(path) = &self.agent_bin {
            return path.clone();
        }
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(std::path::Path::to_path_buf))
            .unwrap_or_default();
        let beside = exe_dir.join("codepod-agent");
        if beside.exists() {
            return beside;
        }
        exe_dir
            .parent()
            .map_or(beside.clone(), |up| up.join("codepod-agent"))
    }
}

/// A secret string (a database URL with its password). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

/// Logging settings.
#[derive(Debug, Clone, Args)]
pub struct LogConfig {
    /// Log filter in `tracing` syntax, e.g. `info` or `server=debug,tower_http=info`.
    #[arg(long = "log", env = "CODEPOD_LOG", default_value = "info")]
    pub filter: String,

    /// Log line format: human-readable `text` or one JSON object per line.
    #[arg(
        long = "log-format",
        env = "CODEPOD_LOG_FORMAT",
        default_value = "text"
    )]
    pub format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl Config {
    /// A configuration with every default, as if no variable or flag were set. Tests start
    /// from it.
    pub fn defaults() -> Self {
        Self::parse_from(["codepod"]).with_defaults_only()
    }

    // `parse_from` also reads CODEPOD_* variables; tests must not depend on the caller's
    // environment, so the values that could come from it are reset here.
    fn with_defaults_only(self) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            metrics_listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            public_origin: None,
            data_dir: PathBuf::from("data"),
            database_url: None,
            trusted_proxies: Vec::new(),
            site_dir: PathBuf::from("target/site"),
            print_sandbox_pod: false,
            shutdown_grace: Duration::from_secs(10),
            ws_send_timeout: Duration::from_secs(15),
            ws_ping_interval: Duration::from_secs(20),
            ..self
        }
    }

    /// The database URL, defaulting to `sqlite://<data dir>/codepod.db`.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("codepod.db").display()),
        }
    }

    /// The public origin (`scheme://host[:port]`, no trailing slash).
    pub fn public_origin(&self) -> String {
        match &self.public_origin {
            Some(origin) => origin.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }
}

/// Splits `10MiB` into the trimmed text, 10 and `MiB`; `what` names the expected form.
fn number_and_unit<'a>(text: &'a str, what: &str) -> Result<(&'a str, u64, &'a str), String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number = number
        .parse()
        .map_err(|_| format!("`{text}` is not {what}"))?;
    Ok((text, number, unit))
}

/// Parses a size: bytes, or with a `KiB`, `MiB` or `GiB` suffix.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (text, number, unit) = number_and_unit(text, "a size such as 1048576, 512KiB or 10MiB")?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(format!("`{text}` has an unknown unit; use KiB, MiB or GiB")),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Parses a CPU amount in cores (`2`, `0.5`) or thousandths of one (`500m`) into
/// thousandths.
pub fn parse_cpus(text: &str) -> Result<u32, String> {
    let invalid = || format!("`{text}` is not a CPU amount such as 1, 0.5 or 500m");
    let millis = match text.trim().strip_suffix('m') {
        Some(millis) => millis.parse::<u32>().map_err(|_| invalid())?,
        None => {
            let cores: f64 = text.trim().parse().map_err(|_| invalid())?;
            if !(0.0..=1024.0).contains(&cores) {
                return Err(invalid());
            }
            (cores * 1000.0).round() as u32
        }
    };
    if millis > 0 && millis < 10 {
        return Err(format!("`{text}` is under the smallest CPU cap, 10m"));
    }
    Ok(millis)
}

/// Parses a uid range, `first-last`.
pub fn parse_uid_range(text: &str) -> Result<std::ops::RangeInclusive<u32>, String> {
    let invalid = || format!("`{text}` is not a uid range such as 1900000000-1900065535");
    let (first, last) = text.trim().split_once('-').ok_or_else(invalid)?;
    let first: u32 = first.trim().parse().map_err(|_| invalid())?;
    let last: u32 = last.trim().parse().map_err(|_| invalid())?;
    if first == 0 || last < first || last == u32::MAX {
        return Err(invalid());
    }
    Ok(first..=last)
}

/// Parses `500ms`, `10s`, `5m`, `2h`, `7d` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (text, number, unit) = number_and_unit(text, "a duration such as 30s, 5m or 2h")?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(number)),
        "" | "s" => number,
        "m" => number.saturating_mul(60),
        "h" => number.saturating_mul(3600),
        "d" => number.saturating_mul(86_400),
        _ => return Err(format!("`{text}` has an unknown unit; use ms, s, m or h")),
    };
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_duration_accepts_each_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
    }

    #[test]
    fn parse_duration_rejects_garbage() {
        assert!(parse_duration("").is_err());
        assert!(parse_duration("ten seconds").is_err());
        assert!(parse_duration("10w").is_err());
        assert!(parse_duration("-5s").is_err());
    }

    #[test]
    fn parse_cpus_accepts_cores_and_millicores() {
        assert_eq!(parse_cpus("1"), Ok(1000));
        assert_eq!(parse_cpus("0.5"), Ok(500));
        assert_eq!(parse_cpus("250m"), Ok(250));
        assert_eq!(parse_cpus("0"), Ok(0));
        for bad in ["", "-1", "1.5x", "5m", "many", "NaN", "1e9"] {
            assert!(parse_cpus(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parse_uid_range_wants_a_nonempty_range_without_root() {
        assert_eq!(parse_uid_range("100-200"), Ok(100..=200));
        for bad in ["", "0-10", "10-5", "5", "a-b", "1-4294967295"] {
            assert!(parse_uid_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parse_size_accepts_binary_units() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("10MB").is_err());
        assert!(parse_size("99999999999GiB").is_err());
    }

    #[test]
    fn the_database_url_never_shows_in_debug_output() {
        let config = Config::try_parse_from([
            "codepod",
            "--database-url",
            "postgres://u:hunter2@db/codepod",
        ])
        .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert_eq!(config.database_url(), "postgres://u:hunter2@db/codepod");
    }

    #[test]
    fn defaults_put_sqlite_in_the_data_dir() {
        let config = Config::defaults();
        assert_eq!(config.database_url(), "sqlite://data/codepod.db");
        assert_eq!(config.public_origin(), "http://127.0.0.1:3000");
    }

    #[test]
    fn config_parses_with_no_arguments_or_variables() {
        let config = Config::try_parse_from(["codepod"]).unwrap();
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 3000)));
        assert_eq!(config.log.format, LogFormat::Text);
    }

    #[test]
    fn config_rejects_a_bad_listen_address() {
        assert!(Config::try_parse_from(["codepod", "--listen", "nowhere"]).is_err());
    }
}
