//! The package index every sandbox reaches by default, without a network of its own: a
//! pull-through cache of one configured Python package index (PyPI unless the operator names
//! a mirror or a private index), on the host.
//!
//! pip in a sandbox asks `http://127.0.0.1:3141/simple/<project>/` (`PIP_INDEX_URL`); the
//! agent hands each such connection to the host over the channel it already has for egress
//! ([`crate::egress`]), and the host answers here. A project page is fetched from the
//! upstream index (PEP 691 JSON or PEP 503 HTML), kept for a few minutes, and given to pip
//! as JSON whose file links point back here (`/files/<sha256>/<name>`); only files the
//! upstream page gives a SHA-256 for are listed. A file is downloaded from upstream once,
//! checked against that hash while it streams to the first pip that asked, and kept in a
//! cache shared by every workspace (content-addressed, so no sandbox can put a file there
//! another will get: it only ever sends GET requests for hashes the upstream listed). The
//! cache is bounded; the least recently used files go first.
//!
//! Nothing else is reachable this way: the upstream host is the operator's setting, not the
//! sandbox's, and general egress stays off unless the operator turns it on.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use axum::{
    Router,
    body::Body,
    extract::{Path as UrlPath, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::{io::AsyncWriteExt, net::UnixStream, sync::mpsc};

/// Where pip finds the index inside a sandbox (the agent listens there).
pub const SANDBOX_ADDRESS: &str = "127.0.0.1:3141";
/// PyPI's simple index, the default upstream.
pub const DEFAULT_UPSTREAM: &str = "https://pypi.org/simple/";
const JSON_TYPE: &str = "application/vnd.pypi.simple.v1+json";
/// How long a project page is served from the cache before upstream is asked again.
const PAGE_FRESH: Duration = Duration::from_secs(10 * 60);
/// How long an upstream failure is reported by `/codepod/health`.
const FAILURE_REMEMBERED: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest project page taken from upstream (numpy's JSON page is about 1 MiB).
const MAX_PAGE: usize = 16 * 1024 * 1024;
/// Connections from sandboxes waiting to be served.
const QUEUE: usize = 256;

/// Shell functions for a sandbox's login profile: when `pip` fails, ask the index whether
/// upstream could be reached, and say so (pip itself only says "no matching distribution").
pub const PIP_HINT: &str = include_str!("../pip-hint.sh");

#[derive(Debug, Clone)]
pub struct IndexConfig {
    /// The upstream simple index, e.g. `https://pypi.org/simple/`.
    pub upstream: String,
    /// Where pages and files are kept (made if missing).
    pub cache_dir: PathBuf,
    /// Files kept at most, in bytes; past it the least recently used go.
    pub max_cache_bytes: u64,
    /// Largest single file served (a wheel), in bytes.
    pub max_file_bytes: u64,
}

impl IndexConfig {
    pub fn new(upstream: impl Into<String>, cache_dir: PathBuf) -> Self {
        Self {
            upstream: upstream.into(),
            cache_dir,
            max_cache_bytes: 10 * 1024 * 1024 * 1024,
            max_file_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}

/// The host's package index cache. Cheap to clone.
#[derive(Clone)]
pub struct PackageIndex {
    inner: Arc<Inner>,
}

struct Inner {
    config: IndexConfig,
    upstream: reqwest::Url,
    client: reqwest::Client,
    /// sha256 → where upstream has the file, from the pages seen since start.
    files: Mutex<HashMap<String, KnownFile>>,
    /// The last upstream failure, cleared by the next success.
    failure: Mutex<Option<(Instant, String)>>,
    /// Serialises cache eviction.
    evicting: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct KnownFile {
    filename: String,
    url: String,
}

/// One project as kept on disk and given to pip.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Project {
    name: String,
    files: Vec<ProjectFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ProjectFile {
    filename: String,
    /// Upstream's URL of the file (absolute).
    url: String,
    sha256: String,
    requires_python: Option<String>,
    /// `Some(reason)` (possibly empty) when yanked.
    yanked: Option<String>,
}

#[derive(Debug)]
enum Failure {
    /// Upstream has no such project.
    NotFound,
    /// Upstream could not be asked, or answered nonsense.
    Upstream(String),
}

impl PackageIndex {
    pub fn new(config: IndexConfig) -> Result<Self, String> {
        let mut upstream = reqwest::Url::parse(&config.upstream)
            .map_err(|error| format!("package index {}: {error}", config.upstream))?;
        if !matches!(upstream.scheme(), "http" | "https") {
            return Err(format!(
                "package index {}: only http and https indexes are supported",
                config.upstream
            ));
        }
        if !upstream.path().ends_with('/') {
            upstream.set_path(&format!("{}/", upstream.path()));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("codepod/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| format!("package index client: {error}"))?;
        for dir in ["pages", "files", "partial"] {
            std::fs::create_dir_all(config.cache_dir.join(dir)).map_err(|error| {
                format!(
                    "package cache {}: {error}",
                    config.cache_dir.join(dir).display()
                )
            })?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                upstream,
                client,
                files: Mutex::new(HashMap::new()),
                failure: Mutex::new(None),
                evicting: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The upstream index, for messages (credentials removed).
    pub fn upstream(&self) -> String {
        let mut url = self.inner.upstream.clone();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.to_string()
    }

    /// The index as HTTP routes: `/simple/<project>/`, `/files/<sha256>/<name>` and
    /// `/codepod/health` (200, or 503 with why upstream cannot be reached).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/simple/{project}/", get(project_page))
            .route("/simple/{project}", get(project_page))
            .route("/files/{sha256}/{filename}", get(file))
            .route("/codepod/health", get(health))
            .fallback(|| async {
                text(
                    StatusCode::NOT_FOUND,
                    "this is Codepod's package index: /simple/<project>/ only".into(),
                )
            })
            .with_state(self.clone())
    }

    /// Serves connections sandboxes hand over (see [`crate::egress`]) until every sender is
    /// gone. The sender is what a runtime gives its sandboxes' channels.
    pub fn serve_sandboxes(&self) -> IndexConnections {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let router = self.router();
        tokio::spawn(async move {
            let listener = Handed { receiver };
            let _ = axum::serve(listener, router).await;
        });
        IndexConnections(sender)
    }

    fn failed(&self, why: String) -> String {
        if let Ok(mut failure) = self.inner.failure.lock() {
            *failure = Some((Instant::now(), why.clone()));
        }
        why
    }

    fn succeeded(&self) {
        if let Ok(mut failure) = self.inner.failure.lock() {
            *failure = None;
        }
    }

    fn page_path(&self, name: &str) -> PathBuf {
        self.inner
            .config
            .cache_dir
            .join("pages")
            .join(format!("{name}.json"))
    }

    fn file_path(&self, sha256: &str) -> PathBuf {
        self.inner.config.cache_dir.join("files").join(sha256)
    }

    /// The project, from the cache while fresh, else from upstream (and the stale copy when
    /// upstream fails).
    async fn project(&self, name: &str) -> Result<Project, Failure> {
        let path = self.page_path(name);
        let cached = read_cached_page(&path).await;
        if let Some((project, age)) = &cached
            && *age < PAGE_FRESH
        {
            self.remember(project);
            return Ok(project.clone());
        }
        match self.fetch_project(name).await {
            Ok(project) => {
                self.succeeded();
                if let Ok(bytes) = serde_json::to_vec(&project) {
                    let partial = self
                        .inner
                        .config
                        .cache_dir
                        .join("partial")
                        .join(format!("page-{name}-{}", std::process::id()));
                    if tokio::fs::write(&partial, bytes).await.is_ok() {
                        let _ = tokio::fs::rename(&partial, &path).await;
                    }
                }
                self.remember(&project);
                Ok(project)
            }
            Err(Failure::Upstream(why)) => match cached {
                Some((project, _)) => {
                    tracing::warn!(
                        project = name,
                        why,
                        "package index unreachable; serving the cached page"
                    );
                    self.remember(&project);
                    Ok(project)
                }
                None => Err(Failure::Upstream(self.failed(why))),
            },
            Err(Failure::NotFound) => {
                self.succeeded();
                Err(Failure::NotFound)
            }
        }
    }

    fn remember(&self, project: &Project) {
        if let Ok(mut files) = self.inner.files.lock() {
            // Bounded: past a million entries (a few hundred MB of pages) start over.
            if files.len() > 1_000_000 {
                files.clear();
            }
            for file in &project.files {
                files.insert(
                    file.sha256.clone(),
                    KnownFile {
                        filename: file.filename.clone(),
                        url: file.url.clone(),
                    },
                );
            }
        }
    }

    async fn fetch_project(&self, name: &str) -> Result<Project, Failure> {
        let url = self
            .inner
            .upstream
            .join(&format!("{name}/"))
            .map_err(|error| Failure::Upstream(error.to_string()))?;
        let upstream = self.upstream();
        let unreachable =
            |error: String| Failure::Upstream(format!("{upstream} cannot be reached: {error}"));
        let response = self
            .inner
            .client
            .get(url.clone())
            .header(
                header::ACCEPT,
                format!("{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"),
            )
            .timeout(PAGE_TIMEOUT)
            .send()
            .await
            .map_err(|error| unreachable(error_chain(&error)))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(Failure::NotFound);
        }
        if !status.is_success() {
            return Err(Failure::Upstream(format!(
                "{upstream} answered {status} for {name}"
            )));
        }
        let final_url = response.url().clone();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| unreachable(error_chain(&error)))?;
            if body.len() + chunk.len() > MAX_PAGE {
                return Err(Failure::Upstream(format!(
                    "{upstream}: the page of {name} is over {MAX_PAGE} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let files = if content_type.starts_with(JSON_TYPE) || content_type.contains("json") {
            parse_json_page(&body, &final_url)
        } else {
            Ok(parse_html_page(&String::from_utf8_lossy(&body), &final_url))
        }
        .map_err(|error| {
            Failure::Upstream(format!(
                "{upstream}: the page of {name} is malformed: {error}"
            ))
        })?;
        Ok(Project {
            name: name.to_owned(),
            files,
        })
    }

    /// A cached file, or the stream of its download (into the cache) from upstream.
    async fn file(&self, sha256: &str, filename: &str) -> Response {
        let path = self.file_path(sha256);
        if let Ok(file) = std::fs::File::open(&path) {
            // Recently used: the eviction goes by modification time.
            let _ = file.set_modified(SystemTime::now());
            let length = file.metadata().map(|meta| meta.len()).ok();
            let mut response = Body::from_stream(read_in_chunks(file)).into_response();
            set_file_headers(&mut response, filename, length);
            return response;
        }
        let known = self
            .inner
            .files
            .lock()
            .ok()
            .and_then(|files| files.get(sha256).cloned());
        let Some(known) = known.filter(|known| known.filename == filename) else {
            return text(
                StatusCode::NOT_FOUND,
                "unknown file: ask for its project's page first".into(),
            );
        };
        let response = match self
            .inner
            .client
            .get(&known.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
        {
            Ok(response) => response,
            Err(error) => {
                let why = self.failed(format!(
                    "{} cannot be reached for {filename}: {}",
                    self.upstream(),
                    error_chain(&error)
                ));
                return text(StatusCode::BAD_GATEWAY, why);
            }
        };
        let max = self.inner.config.max_file_bytes;
        let length = response.content_length();
        if length.is_some_and(|length| length > max) {
            return text(
                StatusCode::BAD_GATEWAY,
                format!("{filename} is over the package cache's limit of {max} bytes"),
            );
        }
        self.succeeded();
        let (sender, receiver) = mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(16);
        tokio::spawn(self.clone().download(
            response,
            sha256.to_owned(),
            filename.to_owned(),
            sender,
        ));
        let mut response = Body::from_stream(tokio_stream_from(receiver)).into_response();
        set_file_headers(&mut response, filename, length);
        response
    }

    /// Streams `response` to `sender` and into the cache, which keeps it only when its
    /// SHA-256 is the one upstream's page gave. The download goes on when pip goes away.
    async fn download(
        self,
        response: reqwest::Response,
        sha256: String,
        filename: String,
        sender: mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
    ) {
        let partial = self
            .inner
            .config
            .cache_dir
            .join("partial")
            .join(format!("{sha256}-{}", random_suffix()));
        let mut file = tokio::fs::File::create(&partial).await.ok();
        let mut hasher = Sha256::new();
        let mut total: u64 = 0;
        let max = self.inner.config.max_file_bytes;
        let mut stream = response.bytes_stream();
        let mut sender = Some(sender);
        let mut failed = None;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) => {
                    failed = Some(format!("download of {filename}: {}", error_chain(&error)));
                    break;
                }
            };
            total += chunk.len() as u64;
            if total > max {
                failed = Some(format!("{filename} is over {max} bytes"));
                break;
            }
            hasher.update(&chunk);
            if let Some(writer) = file.as_mut()
                && writer.write_all(&chunk).await.is_err()
            {
                file = None;
            }
            if let Some(to_pip) = &sender
                && to_pip.send(Ok(chunk)).await.is_err()
            {
                sender = None;
            }
        }
        let digest = hex(&hasher.finalize());
        if failed.is_none() && digest != sha256 {
            failed = Some(format!(
                "{filename} from upstream has SHA-256 {digest}, its page said {sha256}"
            ));
        }
        match failed {
            Some(why) => {
                tracing::warn!(why, "package download failed");
                if let Some(to_pip) = sender {
                    let _ = to_pip.send(Err(std::io::Error::other(why))).await;
                }
                let _ = tokio::fs::remove_file(&partial).await;
            }
            None => {
                let kept = match file {
                    Some(mut writer) => {
                        writer.flush().await.is_ok() && writer.sync_all().await.is_ok()
                    }
                    None => false,
                };
                if kept
                    && tokio::fs::rename(&partial, self.file_path(&sha256))
                        .await
                        .is_ok()
                {
                    tracing::info!(file = filename, bytes = total, "package file cached");
                    self.evict().await;
                } else {
                    let _ = tokio::fs::remove_file(&partial).await;
                }
            }
        }
    }

    /// Removes the least recently used files until the cache is within its size.
    async fn evict(&self) {
        let _guard = self.inner.evicting.lock().await;
        let dir = self.inner.config.cache_dir.join("files");
        let max = self.inner.config.max_cache_bytes;
        let _ = tokio::task::spawn_blocking(move || evict_files(&dir, max)).await;
    }

    /// Whether upstream failed lately, and why.
    fn recent_failure(&self) -> Option<String> {
        let failure = self.inner.failure.lock().ok()?;
        let (when, why) = failure.as_ref()?;
        (when.elapsed() < FAILURE_REMEMBERED).then(|| why.clone())
    }
}

/// `url` with its host name replaced by the address it resolves to now (sandbox pods have no
/// DNS); unchanged when its host is an address already or does not resolve (with a warning).
pub async fn resolved(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        tracing::warn!(url, "the package index's URL for pods is not a URL");
        return url.to_owned();
    };
    let Some(host) = parsed.host_str().map(str::to_owned) else {
        return url.to_owned();
    };
    if host
        .trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .is_ok()
    {
        return url.to_owned();
    }
    let port = parsed.port_or_known_default().unwrap_or(80);
    match tokio::net::lookup_host((host.as_str(), port)).await {
        Ok(mut addresses) => match addresses.next() {
            Some(address) if parsed.set_ip_host(address.ip()).is_ok() => parsed.to_string(),
            _ => url.to_owned(),
        },
        Err(error) => {
            tracing::warn!(url, error = %error, "the package index's host does not resolve; pods get its name");
            url.to_owned()
        }
    }
}

/// The size of the cache's files (what `/metrics` and the docs call the package cache).
pub fn cache_bytes(cache_dir: &Path) -> u64 {
    std::fs::read_dir(cache_dir.join("files"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| entry.metadata().ok())
                .filter(std::fs::Metadata::is_file)
                .map(|meta| meta.len())
                .sum()
        })
        .unwrap_or(0)
}

fn evict_files(dir: &Path, max: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            meta.is_file().then(|| {
                (
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    meta.len(),
                    entry.path(),
                )
            })
        })
        .collect();
    let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
    files.sort();
    for (_, len, path) in files {
        if total <= max {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

/// Connections from sandboxes to the index; given to each sandbox's egress channel.
#[derive(Clone)]
pub struct IndexConnections(mpsc::Sender<UnixStream>);

impl IndexConnections {
    /// Queues `stream` to be served; dropped when the queue is full.
    pub fn hand_over(&self, stream: UnixStream) {
        let _ = self.0.try_send(stream);
    }
}

impl std::fmt::Debug for IndexConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexConnections")
    }
}

/// The handed-over connections as a listener axum serves.
struct Handed {
    receiver: mpsc::Receiver<UnixStream>,
}

impl axum::serve::Listener for Handed {
    type Io = UnixStream;
    type Addr = ();

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.receiver.recv().await {
            Some(stream) => (stream, ()),
            // Every sender is gone: nothing will come again.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(())
    }
}

/// A file's bytes in 1 MiB chunks, read on a blocking thread.
fn read_in_chunks(
    mut file: std::fs::File,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    let (sender, receiver) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        loop {
            let mut chunk = vec![0u8; 1024 * 1024];
            let read = match file.read(&mut chunk) {
                Ok(0) => return,
                Ok(read) => read,
                Err(error) => {
                    let _ = sender.blocking_send(Err(error));
                    return;
                }
            };
            chunk.truncate(read);
            if sender.blocking_send(Ok(bytes::Bytes::from(chunk))).is_err() {
                return;
            }
        }
    });
    tokio_stream_from(receiver)
}

fn tokio_stream_from(
    mut receiver: mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |context| receiver.poll_recv(context))
}

async fn read_cached_page(path: &Path) -> Option<(Project, Duration)> {
    let meta = tokio::fs::metadata(path).await.ok()?;
    let age = meta.modified().ok()?.elapsed().unwrap_or(Duration::ZERO);
    let bytes = tokio::fs::read(path).await.ok()?;
    Some((serde_json::from_slice(&bytes).ok()?, age))
}

fn set_file_headers(response: &mut Response, filename: &str, length: Option<u64>) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(length) = length
        && let Ok(value) = HeaderValue::from_str(&length.to_string())
    {
        headers.insert(header::CONTENT_LENGTH, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
}

fn text(status: StatusCode, body: String) -> Response {
    let mut response = (status, format!("{body}\n")).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn project_page(
    State(index): State<PackageIndex>,
    UrlPath(project): UrlPath<String>,
) -> Response {
    let Some(name) = normalize(&project) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("{project:?} is not a project name"),
        );
    };
    match index.project(&name).await {
        Ok(project) => {
            let files: Vec<serde_json::Value> = project
                .files
                .iter()
                .map(|file| {
                    let mut entry = serde_json::json!({
                        "filename": file.filename,
                        "url": format!("/files/{}/{}", file.sha256, file.filename),
                        "hashes": { "sha256": file.sha256 },
                    });
                    if let Some(requires) = &file.requires_python {
                        entry["requires-python"] = requires.clone().into();
                    }
                    entry["yanked"] = match &file.yanked {
                        Some(reason) if !reason.is_empty() => reason.clone().into(),
                        Some(_) => true.into(),
                        None => false.into(),
                    };
                    entry
                })
                .collect();
            let body = serde_json::json!({
                "meta": { "api-version": "1.0" },
                "name": project.name,
                "files": files,
            });
            let mut response = body.to_string().into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_TYPE));
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=60"),
            );
            response
        }
        Err(Failure::NotFound) => text(
            StatusCode::NOT_FOUND,
            format!("{} has no project {name}", index.upstream()),
        ),
        Err(Failure::Upstream(why)) => text(StatusCode::BAD_GATEWAY, why),
    }
}

async fn file(
    State(index): State<PackageIndex>,
    UrlPath((sha256, filename)): UrlPath<(String, String)>,
) -> Response {
    let valid_hash = sha256.len() == 64
        && sha256
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
    if !valid_hash || filename.contains(['/', '\\', '"']) || filename.starts_with('.') {
        return text(StatusCode::NOT_FOUND, "no such file".into());
    }
    index.file(&sha256, &filename).await
}

async fn health(State(index): State<PackageIndex>) -> Response {
    match index.recent_failure() {
        None => text(StatusCode::OK, format!("ok: {}", index.upstream())),
        Some(why) => text(StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// A project name in its normalized form (PEP 503), or `None` when it is not one.
pub fn normalize(name: &str) -> Option<String> {
    let valid = !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    if !valid {
        return None;
    }
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for char in name.chars() {
        if matches!(char, '-' | '_' | '.') {
            separator = true;
        } else {
            if separator {
                out.push('-');
                separator = false;
            }
            out.push(char.to_ascii_lowercase());
        }
    }
    Some(out)
}

/// Files of a PEP 691 JSON page with a SHA-256 (the rest cannot be checked, so are left out).
fn parse_json_page(body: &[u8], base: &reqwest::Url) -> Result<Vec<ProjectFile>, String> {
    #[derive(Deserialize)]
    struct Page {
        files: Vec<File>,
    }
    #[derive(Deserialize)]
    struct File {
        filename: String,
        url: String,
        #[serde(default)]
        hashes: HashMap<String, String>,
        #[serde(default, rename = "requires-python")]
        requires_python: Option<String>,
        #[serde(default)]
        yanked: serde_json::Value,
    }
    let page: Page = serde_json::from_slice(body).map_err(|error| error.to_string())?;
    Ok(page
        .files
        .into_iter()
        .filter_map(|file| {
            let sha256 = file.hashes.get("sha256")?.to_ascii_lowercase();
            let url = base.join(&file.url).ok()?;
            let yanked = match file.yanked {
                serde_json::Value::Bool(true) => Some(String::new()),
                serde_json::Value::String(reason) => Some(reason),
                _ => None,
            };
            checked_file(file.filename, url, sha256, file.requires_python, yanked)
        })
        .collect())
}

/// Files of a PEP 503 HTML page: its `<a href="…#sha256=…">name</a>` links.
fn parse_html_page(body: &str, base: &reqwest::Url) -> Vec<ProjectFile> {
    let mut files = Vec::new();
    let mut rest = body;
    while let Some(start) = find_ascii_case_insensitive(rest, "<a ") {
        rest = &rest[start + 3..];
        let Some(end) = rest.find('>') else { break };
        let attributes = parse_attributes(&rest[..end]);
        rest = &rest[end + 1..];
        let text_end = find_ascii_case_insensitive(rest, "</a>").unwrap_or(rest.len());
        let filename = unescape(rest[..text_end].trim());
        rest = &rest[text_end..];
        let Some(href) = attributes.get("href") else {
            continue;
        };
        let Ok(mut url) = base.join(href) else {
            continue;
        };
        let Some(sha256) = url
            .fragment()
            .and_then(|fragment| fragment.strip_prefix("sha256="))
            .map(str::to_ascii_lowercase)
        else {
            continue;
        };
        url.set_fragment(None);
        let yanked = attributes.get("data-yanked").cloned();
        let requires_python = attributes.get("data-requires-python").cloned();
        if let Some(file) = checked_file(filename, url, sha256, requires_python, yanked) {
            files.push(file);
        }
    }
    files
}

fn checked_file(
    filename: String,
    url: reqwest::Url,
    sha256: String,
    requires_python: Option<String>,
    yanked: Option<String>,
) -> Option<ProjectFile> {
    let valid_name = !filename.is_empty()
        && filename.len() <= 255
        && !filename.starts_with('.')
        && !filename.contains(['/', '\\', '"', '\0']);
    let valid_hash = sha256.len() == 64 && sha256.bytes().all(|byte| byte.is_ascii_hexdigit());
    (valid_name && valid_hash && matches!(url.scheme(), "http" | "https")).then(|| ProjectFile {
        filename,
        url: url.to_string(),
        sha256,
        requires_python,
        yanked,
    })
}

fn find_ascii_case_insensitive(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// `name="value"` pairs of a tag (names lower-cased, values unescaped).
fn parse_attributes(tag: &str) -> HashMap<String, String> {
    let mut attributes = HashMap::new();
    let mut rest = tag.trim_start();
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| c == '=' || c.is_whitespace() || c == '/')
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        let value = if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (value, remaining) = match after.chars().next() {
                Some(quote @ ('"' | '\'')) => {
                    let inner = &after[1..];
                    let end = inner.find(quote).unwrap_or(inner.len());
                    (&inner[..end], inner.get(end + 1..).unwrap_or(""))
                }
                _ => {
                    let end = after.find(char::is_whitespace).unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            rest = remaining.trim_start();
            unescape(value)
        } else {
            if name.is_empty() {
                rest = rest.get(1..).unwrap_or("").trim_start();
                continue;
            }
            String::new()
        };
        if !name.is_empty() {
            attributes.insert(name, value);
        }
    }
    attributes
}

/// The character references PEP 503 pages use.
fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|semi| *semi <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(char) => {
                out.push(char);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn random_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> reqwest::Url {
        reqwest::Url::parse("https://pypi.example/simple/six/").unwrap_or_else(|_| unreachable!())
    }

    const SHA: &str = "4f7f0ec9c4b8b2d6f3f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4";

    #[test]
    fn names_are_normalized_and_odd_ones_refused() {
        assert_eq!(normalize("Six").as_deref(), Some("six"));
        assert_eq!(
            normalize("zope.interface").as_deref(),
            Some("zope-interface")
        );
        assert_eq!(normalize("Foo__Bar-.baz").as_deref(), Some("foo-bar-baz"));
        for bad in ["", "../etc", "a/b", "-a", "a-", "a b", "%2e%2e", "ä"] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn html_pages_give_their_hashed_links() {
        let page = format!(
            r#"<!DOCTYPE html><html><body>
            <a href="../../packages/six-1.17.0-py2.py3-none-any.whl#sha256={SHA}" data-requires-python="&gt;=2.7">six-1.17.0-py2.py3-none-any.whl</a><br/>
            <A HREF='https://files.example/six-1.0.tar.gz#md5=abc'>six-1.0.tar.gz</A>
            <a data-yanked="broken" href="/f/six-0.9.whl#sha256={SHA}">six-0.9.whl</a>
            <a href="/f/.hidden#sha256={SHA}">.hidden</a>
            </body></html>"#
        );
        let files = parse_html_page(&page, &base());
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(files[0].filename, "six-1.17.0-py2.py3-none-any.whl");
        assert_eq!(
            files[0].url,
            "https://pypi.example/packages/six-1.17.0-py2.py3-none-any.whl"
        );
        assert_eq!(files[0].requires_python.as_deref(), Some(">=2.7"));
        assert_eq!(files[0].yanked, None);
        assert_eq!(files[1].yanked.as_deref(), Some("broken"));
        assert_eq!(files[1].url, "https://pypi.example/f/six-0.9.whl");
    }

    #[test]
    fn json_pages_give_their_hashed_files() {
        let page = serde_json::json!({
            "meta": {"api-version": "1.1"},
            "name": "six",
            "files": [
                {"filename": "six-1.17.0.whl", "url": "https://files.example/six-1.17.0.whl",
                 "hashes": {"sha256": SHA.to_uppercase()}, "requires-python": ">=3.8", "yanked": false},
                {"filename": "six-1.0.whl", "url": "six-1.0.whl", "hashes": {"sha256": SHA}, "yanked": true},
                {"filename": "six-0.1.whl", "url": "six-0.1.whl", "hashes": {"md5": "abc"}},
                {"filename": "../evil.whl", "url": "evil.whl", "hashes": {"sha256": SHA}},
                {"filename": "six-0.2.whl", "url": "file:///etc/passwd", "hashes": {"sha256": SHA}},
            ]
        });
        let files = parse_json_page(page.to_string().as_bytes(), &base()).unwrap_or_default();
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(files[0].sha256, SHA);
        assert_eq!(files[0].requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(files[1].url, "https://pypi.example/simple/six/six-1.0.whl");
        assert_eq!(files[1].yanked.as_deref(), Some(""));
    }

    #[tokio::test]
    async fn the_pods_url_gets_the_address_its_host_resolves_to() {
        let local = resolved("http://localhost:3141/simple/").await;
        assert!(
            ["http://127.0.0.1:3141/simple/", "http://[::1]:3141/simple/"]
                .contains(&local.as_str()),
            "{local}"
        );
        assert_eq!(
            resolved("http://10.96.0.7:3141/simple/").await,
            "http://10.96.0.7:3141/simple/"
        );
        assert_eq!(
            resolved("http://no-such-host.invalid:3141/simple/").await,
            "http://no-such-host.invalid:3141/simple/"
        );
    }

    #[test]
    fn character_references_are_decoded() {
        assert_eq!(unescape("a&amp;b&lt;&#62;&#x3D;&bogus;&"), "a&b<>=&bogus;&");
    }

    #[test]
    fn eviction_removes_the_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap_or_else(|_| unreachable!());
        let now = SystemTime::now();
        for (name, age) in [("old", 300), ("mid", 200), ("new", 100)] {
            let path = dir.path().join(name);
            std::fs::write(&path, vec![0u8; 100]).unwrap_or_else(|_| unreachable!());
            let file = std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap_or_else(|_| unreachable!());
            file.set_modified(now - Duration::from_secs(age))
                .unwrap_or_else(|_| unreachable!());
        }
        evict_files(dir.path(), 200);
        assert!(!dir.path().join("old").exists());
        assert!(dir.path().join("mid").exists());
        assert!(dir.path().join("new").exists());
    }
}
