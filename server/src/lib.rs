//! The Codepod server: configuration, the HTTP router (pages, server functions, assets,
//! health, metrics), startup and graceful shutdown.
//!
//! `main` is a shim over [`Application::build`] and [`Application::run_until`]; tests build
//! the same application on port 0.

mod api_errors;
mod assets;
mod config;
mod files;
mod health;
mod metrics;
mod openapi;
mod pages;
mod security;
pub mod telemetry;
pub mod ws;

use std::{
    future::{Future, IntoFuture},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use app::api_context::{ApiContext, SessionCookie};
use axum::{
    Router,
    extract::{DefaultBodyLimit, FromRef},
    middleware,
    routing::{any, get, post},
    serve::ListenerExt,
};
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tower_http::{
    compression::{
        CompressionLayer, CompressionLevel, DefaultPredicate, Predicate,
        predicate::NotForContentType,
    },
    limit::RequestBodyLimitLayer,
    trace::TraceLayer,
};

pub use crate::config::{
    Config, KubeConfig, LimitsConfig, LogConfig, LogFormat, RuntimeKind, SandboxConfig, Secret,
    SessionConfig, Tolerations, parse_duration, parse_size,
};
use crate::{assets::AssetHashes, health::Readiness, metrics::Metrics, security::Security};

/// The name the build gives the wasm, js and css files under `/pkg`.
const OUTPUT_NAME: &str = "codepod";

/// Errors that stop the server from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Store(#[from] store::Error),
    #[error("cannot start the services: {0}")]
    Services(#[from] services::Error),
    #[error("cannot reach the Kubernetes API: {0}")]
    Kube(String),
    #[error("cannot prepare the sandbox runtime: {0}")]
    Sandbox(#[source] sandbox::Error),
    #[error("cannot prepare the package index: {0}")]
    PackageIndex(String),
    #[error("server error: {0}")]
    Serve(#[source] std::io::Error),
}

/// Shared state handed to every handler and server function.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub metrics: Metrics,
    pub readiness: Readiness,
    pub build_info: Arc<model::BuildInfo>,
    pub site_assets: app::SiteAssets,
    pub api: ApiContext,
    pub security: Security,
    pub hub: ws::Hub,
}

/// A built, bound, not yet serving server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    local_addr: SocketAddr,
    /// `/metrics`, on a listener of its own.
    metrics_listener: TcpListener,
    metrics_router: Router,
    metrics_addr: SocketAddr,
    shutdown_grace: Duration,
    sandboxes: services::Sandboxes,
    reaper_interval: Duration,
    /// Set when shutting down; open WebSockets watch it and close.
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Application {
    /// Prepares everything and binds the listener (port 0 picks a free one).
    pub async fn build(config: Config) -> Result<Self, Error> {
        tokio::fs::create_dir_all(&config.data_dir)
            .await
            .map_err(|source| Error::DataDir {
                path: config.data_dir.clone(),
                source,
            })?;

        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                address: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Bind {
            address: config.listen,
            source,
        })?;
        let metrics_listener =
            TcpListener::bind(config.metrics_listen)
                .await
                .map_err(|source| Error::Bind {
                    address: config.metrics_listen,
                    source,
                })?;
        let metrics_addr = metrics_listener
            .local_addr()
            .map_err(|source| Error::Bind {
                address: config.metrics_listen,
                source,
            })?;

        let store = store::connect(&config.database_url()).await?;
        let auth = services::AuthSettings {
            idle_timeout: config.sessions.idle_timeout,
            absolute_timeout: config.sessions.max_age,
            login_failures_per_account: config.sessions.login_failures_per_account,
            login_failures_per_ip: config.sessions.login_failures_per_ip,
            login_window: config.sessions.login_window,
            signups_per_ip: config.sessions.signups_per_ip,
            signup_window: config.sessions.signup_window,
            ..services::AuthSettings::default()
        };
        // The package index sandboxes install from (sandbox::index), shared by the local
        // runtime's sandboxes and, on its own port, by Kubernetes sandbox pods.
        let package_index = config
            .sandbox
            .package_index(&config.data_dir)
            .map(sandbox::index::PackageIndex::new)
            .transpose()
            .map_err(Error::PackageIndex)?;
        if let Some(index) = &package_index {
            tracing::info!(upstream = %index.upstream(), "package index for sandboxes");
        }
        if let (Some(address), Some(index)) = (config.sandbox.package_index_listen, &package_index)
        {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|source| Error::Bind { address, source })?;
            let router = index.router();
            tokio::spawn(async move { axum::serve(listener, router).await });
        }
        let runtime: Arc<dyn sandbox::Runtime> =
            if config.sandbox.runtime == config::RuntimeKind::Kube {
                let mut kube_config = match &config.kube.kube_api_url {
                    Some(url) => {
                        let url = url.parse().map_err(|error| {
                            Error::Kube(format!("CODEPOD_KUBE_API_URL: {error}"))
                        })?;
                        let mut kube_config = kube::Config::new(url);
                        kube_config.default_namespace = config.kube.kube_namespace.clone();
                        kube_config
                    }
                    None => kube::Config::infer()
                        .await
                        .map_err(|error| Error::Kube(error.to_string()))?,
                };
                // The runtime retries 5xx and 429 itself, a bounded number of times, and
                // tells the user; kube-rs's own default would retry for many minutes.
                kube_config.default_retry = false;
                let client = kube::Client::try_from(kube_config)
                    .map_err(|error| Error::Kube(error.to_string()))?;
                let mut runtime_config = config.kube.runtime_config(&config.sandbox);
                if let Some(url) = runtime_config.package_index_url.take() {
                    runtime_config.package_index_url = Some(sandbox::index::resolved(&url).await);
                }
                Arc::new(sandbox::kube::KubeRuntime::new(client, runtime_config))
            } else {
                let mut local = sandbox::local::LocalConfig::new(
                    config.data_dir.join("sandboxes"),
                    config.sandbox.agent_bin(),
                );
                local.limits = sandbox::Limits {
                    memory_bytes: config.sandbox.memory_bytes,
                    max_processes: config.sandbox.max_processes,
                    cpu_millis: config.sandbox.cpu_millis,
                    workspace_bytes: config.sandbox.disk_bytes,
                    max_inodes: config.sandbox.max_inodes,
                    ..sandbox::Limits::default()
                };
                local.egress = config.sandbox.egress;
                local.package_index = package_index
                    .as_ref()
                    .map(sandbox::index::PackageIndex::serve_sandboxes);
                local.uids = config.sandbox.uids.clone();
                local.allow_uncontained = config.sandbox.allow_uncontained;
                local.python_env = config
                    .sandbox
                    .python_env
                    .exists()
                    .then(|| config.sandbox.python_env.clone());
                Arc::new(sandbox::local::LocalRuntime::new(local).map_err(Error::Sandbox)?)
            };
        let containment = runtime.containment();
        if containment.missing.is_empty() {
            tracing::info!(runtime = runtime.name(), layers = %containment.layers.join(", "), "sandbox containment");
        } else if containment.starts {
            tracing::warn!(runtime = runtime.name(), layers = %containment.layers.join(", "), missing = %containment.missing.join("; "), "sandbox containment is degraded");
        } else {
            tracing::error!(runtime = runtime.name(), missing = %containment.missing.join("; "), "sandboxes cannot be contained here and will not start (CODEPOD_SANDBOX_UNCONTAINED=true starts them anyway)");
        }
        let sandboxes = services::Sandboxes::new(
            runtime,
            services::SandboxSettings {
                idle_timeout: config.sandbox.idle_timeout,
                max_lifetime: config.sandbox.max_lifetime,
                max_per_user: config.sandbox.max_per_user,
                packages_quota_bytes: config.sandbox.packages_quota_bytes,
                max_total: config.sandbox.max_total.unwrap_or_else(|| {
                    match config.sandbox.runtime {
                        config::RuntimeKind::Kube => usize::MAX,
                        config::RuntimeKind::Local => {
                            sandboxes_that_fit(config.sandbox.memory_bytes)
                        }
                    }
                }),
            },
        );
        match sandboxes.cleanup_orphans().await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed sandboxes left by an earlier run"),
            Err(error) => tracing::warn!(error = %error, "orphan cleanup failed"),
        }
        let services = services::Services::new(
            store.clone(),
            config.limits.limits(),
            auth,
            sandboxes.clone(),
        )
        .await?;
        let public_origin = match &config.public_origin {
            Some(_) => config.public_origin(),
            None => format!("http://{local_addr}"),
        };
        let api = ApiContext {
            services,
            cookie: SessionCookie::for_origin(
                public_origin.starts_with("https://"),
                config.sessions.max_age.as_secs(),
            ),
        };
        tracing::info!(store = store.backend(), origin = %public_origin, "services ready");

        let hashes = AssetHashes::read(&assets::hash_file_path());
        let leptos_options = LeptosOptions::builder()
            .output_name(OUTPUT_NAME)
            .site_root(config.site_dir.to_string_lossy().as_ref())
            .site_pkg_dir("pkg")
            .site_addr(local_addr)
            .hash_files(hashes.is_complete())
            .build();
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let hub = ws::Hub {
            send_timeout: config.ws_send_timeout,
            ping_interval: config.ws_ping_interval,
            metrics: ws::HubMetrics::default(),
            shutdown: shutdown_rx,
        };
        let state = AppState {
            leptos_options,
            metrics: Metrics::new(|registry| {
                sandboxes.metrics.register(registry);
                sandboxes.register_runtime_metrics(registry);
                hub.metrics.register(registry);
            }),
            hub,
            readiness: Readiness {
                data_dir: config.data_dir.clone(),
                site_dir: config.site_dir.clone(),
                store: store.clone(),
                // Kubernetes sandboxes bring their own agent in their image.
                agent_bin: (config.sandbox.runtime == config::RuntimeKind::Local)
                    .then(|| config.sandbox.agent_bin()),
                containment: sandboxes.containment(),
            },
            build_info: Arc::new(model::BuildInfo {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                store: store.backend().to_owned(),
                runtime: sandboxes.runtime_name().to_owned(),
            }),
            api,
            security: Security {
                public_origin,
                trusted_proxies: config.trusted_proxies.clone(),
            },
            site_assets: app::SiteAssets {
                stylesheet: hashes.stylesheet_href(OUTPUT_NAME),
                vendor_manifest: assets::vendor_manifest(&config.site_dir),
            },
        };

        let metrics_router = Router::new()
            .route("/metrics", get(metrics::serve))
            .with_state(state.metrics.clone());
        Ok(Self {
            router: router(state, &config),
            listener,
            local_addr,
            metrics_router,
            metrics_listener,
            metrics_addr,
            shutdown_grace: config.shutdown_grace,
            sandboxes,
            reaper_interval: config.sandbox.reaper_interval,
            shutdown,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address `/metrics` is served on.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// Serves until `shutdown` resolves, then lets open connections finish for up to the
    /// configured grace period.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        // The reaper: stops sandboxes idle too long or past their lifetime, and lets the
        // runtime keep house (orphans, warm pool).
        let reaper = {
            let sandboxes = self.sandboxes.clone();
            let interval = self.reaper_interval;
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(interval);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    sandboxes.reap().await;
                    sandboxes.maintain().await;
                }
            })
        };
        let sandboxes = self.sandboxes.clone();
        let stop_tx = self.shutdown;
        let stop_rx = stop_tx.subscribe();
        let grace = self.shutdown_grace;
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        // No Nagle: streamed HTML and terminal frames are small writes that must leave now,
        // not after the peer's delayed ACK (measured: 17 ms → under 1 ms per keep-alive page).
        let listener = self.listener.tap_io(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::warn!(error = %error, "cannot set TCP_NODELAY");
            }
        });
        // `/metrics` on its own listener, for as long as the server runs.
        let metrics = tokio::spawn({
            let mut stopped = stop_rx.clone();
            axum::serve(self.metrics_listener, self.metrics_router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .into_future()
        });
        let server = axum::serve(listener, service).with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!(grace_seconds = grace.as_secs(), "shutting down");
            let _sent = stop_tx.send(true);
        });
        let mut stopped = stop_rx.clone();
        let deadline = async move {
            // Waits for the shutdown signal, then for the grace period.
            let signalled = stopped.wait_for(|stop| *stop).await.is_ok();
            if signalled {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let result = tokio::select! {
            result = server => result.map_err(Error::Serve),
            () = deadline => {
                tracing::warn!("grace period over; closing remaining connections");
                Ok(())
            }
        };
        reaper.abort();
        metrics.abort();
        sandboxes.stop_all().await;
        result
    }
}

/// How many sandboxes of `memory_bytes` each this machine's memory holds (at least one).
fn sandboxes_that_fit(memory_bytes: u64) -> usize {
    let total_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    let fit = total_kib.saturating_mul(1024) / memory_bytes.max(1);
    usize::try_from(fit).unwrap_or(usize::MAX).max(1)
}

/// Slack over the largest file for JSON framing and base64 (4/3) in `/api/files/write`.
const JSON_OVERHEAD: u64 = 64 * 1024;

/// The app's routes, worked out once per process. Leptos works them out by rendering the
/// app with resource loading switched off — for the whole process (a global flag in
/// `leptos_server`) — so a page rendering meanwhile in another server of the same process
/// (tests run many) would wait forever for its data; once, before any server exists, it
/// cannot overlap a render.
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(app::App)).clone()
}

fn router(state: AppState, config: &Config) -> Router {
    let routes = route_list();
    let shell = {
        let options = state.leptos_options.clone();
        let assets = state.site_assets.clone();
        move || app::shell(options.clone(), assets.clone())
    };
    let not_found_shell = {
        let assets = state.site_assets.clone();
        move |options: LeptosOptions| app::shell(options, assets.clone())
    };
    let context = {
        let info = state.build_info.clone();
        let api = state.api.clone();
        move || {
            provide_context((*info).clone());
            provide_context(api.clone());
        }
    };

    let limits = config.limits.limits();
    let json_limit = limits.max_file_bytes.saturating_mul(4) / 3 + JSON_OVERHEAD;
    let json_limit = usize::try_from(json_limit).unwrap_or(usize::MAX);
    let upload_limit = usize::try_from(limits.max_upload_bytes).unwrap_or(usize::MAX);

    // Multipart and downloads: plain handlers, with the upload's own body limit.
    let file_routes = Router::new()
        .route(
            "/api/files/upload",
            post(files::upload)
                .layer::<_, std::convert::Infallible>(DefaultBodyLimit::disable())
                .layer::<_, std::convert::Infallible>(RequestBodyLimitLayer::new(upload_limit)),
        )
        .route("/api/files/download", get(files::download))
        .route("/api/workspaces/download", get(files::download_zip));

    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/ws/workspaces/{id}", get(ws::upgrade::<AppState>))
        .route("/sw.js", {
            let script = assets::service_worker(
                &state.readiness.site_dir,
                &AssetHashes::read(&assets::hash_file_path()),
                OUTPUT_NAME,
            );
            get(move || async move {
                (
                    [
                        (http::header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (http::header::CACHE_CONTROL, "no-cache"),
                    ],
                    script,
                )
            })
        })
        .route("/api/openapi.json", get(openapi::serve))
        .route("/docs", {
            let manifest = state.site_assets.vendor_manifest.clone();
            get(move || std::future::ready(openapi::docs_page(&manifest)))
        })
        .route("/signin", post(pages::sign_in))
        .route("/signup", post(pages::sign_up))
        .route("/signout", post(pages::sign_out))
        .route("/account/password", post(pages::change_password))
        .route("/account/sessions", post(pages::sign_out_others))
        .route("/account/delete", post(pages::delete_account))
        .route("/workspaces/new", post(pages::create_workspace))
        .route("/workspaces/{id}/rename", post(pages::rename_workspace))
        .route("/workspaces/{id}/{action}", post(pages::workspace_action))
        // Pages, and every server function at its `/api/…` path.
        .leptos_routes_with_context(&state, routes, context.clone(), shell)
        .merge(file_routes)
        .route("/api/{*rest}", any(api_errors::unknown_endpoint))
        .merge(assets::routes(&state.readiness.site_dir))
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, not_found_shell))
        .layer(middleware::from_fn_with_state(
            state.api.clone(),
            pages::guard,
        ))
        .layer(middleware::from_fn_with_state(
            json_limit,
            api_errors::json_syntax,
        ))
        .layer(middleware::from_fn(api_errors::normalize))
        .layer(middleware::from_fn_with_state(
            state.security.clone(),
            security::origin_guard,
        ))
        .layer(middleware::from_fn_with_state(
            state.security.clone(),
            security::client_info,
        ))
        .layer(middleware::from_fn_with_state(
            state.security.clone(),
            security::hardening,
        ))
        // Server functions read their bodies through axum's default limit; the upload
        // route disables it for its own, larger one.
        .layer(DefaultBodyLimit::max(json_limit))
        .layer(RequestBodyLimitLayer::new(json_limit.max(upload_limit)))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        // Fast compression for dynamic responses; the big static files come precompressed,
        // and zips are compressed already.
        .layer(
            CompressionLayer::new()
                .quality(CompressionLevel::Fastest)
                .compress_when(
                    DefaultPredicate::new().and(NotForContentType::const_new("application/zip")),
                ),
        )
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(error = %error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
