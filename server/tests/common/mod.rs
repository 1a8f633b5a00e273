//! Starts the real server on port 0 with a fresh data directory and a fake built site.
// Each test binary uses a different part of these helpers.
#![allow(dead_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failure here is a failed test"
)]

pub mod wheel_index;
pub mod ws_client;

use std::{net::SocketAddr, path::Path};

use server::{Application, Config};
use tokio::sync::oneshot;

/// A running server and the handles a test needs.
pub struct TestApp {
    pub address: SocketAddr,
    /// Where `/metrics` is served (never the public listener).
    pub metrics_address: SocketAddr,
    pub client: reqwest::Client,
    pub site_dir: tempfile::TempDir,
    _data_dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    pub served: tokio::task::JoinHandle<Result<(), server::Error>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// The server's `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.metrics_address))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The server's data directory (SQLite, sandboxes).
    pub fn data_dir(&self) -> &Path {
        self._data_dir.path()
    }

    /// Sends the shutdown signal and waits for the server to stop.
    pub async fn shutdown(mut self) -> Result<(), server::Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.served).await.expect("server task panicked")
    }
}

/// Writes the files a real build puts in the site directory: hashed and unhashed wasm, its
/// brotli and gzip twins, the stylesheet and a public icon.
pub fn write_fake_site(dir: &Path) {
    let pkg = dir.join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::create_dir_all(dir.join("vendor")).unwrap();
    std::fs::create_dir_all(dir.join("icons")).unwrap();
    std::fs::write(
        pkg.join("codepod.0123456789abcdef.wasm"),
        b"\0asm-fake-module",
    )
    .unwrap();
    std::fs::write(
        pkg.join("codepod.0123456789abcdef.wasm.br"),
        b"brotli-bytes",
    )
    .unwrap();
    std::fs::write(pkg.join("codepod.0123456789abcdef.wasm.gz"), b"gzip-bytes").unwrap();
    std::fs::write(pkg.join("codepod.css"), b"body { color: red }").unwrap();
    std::fs::write(dir.join("vendor").join("monaco-AB12CD34.js"), b"// monaco").unwrap();
    std::fs::write(dir.join("icons").join("icon-192.png"), b"\x89PNG").unwrap();
    std::fs::write(dir.join("manifest.webmanifest"), b"{\"name\":\"Codepod\"}").unwrap();
}

pub async fn spawn_app() -> TestApp {
    let site_dir = tempfile::tempdir().unwrap();
    write_fake_site(site_dir.path());
    spawn_app_with_site(site_dir).await
}

pub async fn spawn_app_with_site(site_dir: tempfile::TempDir) -> TestApp {
    spawn_app_with(site_dir, |_| {}).await
}

/// Starts a server with a fake site and a configuration adjusted by `adjust`.
pub async fn spawn_app_configured(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let site_dir = tempfile::tempdir().unwrap();
    write_fake_site(site_dir.path());
    spawn_app_with(site_dir, adjust).await
}

pub async fn spawn_app_with(
    site_dir: tempfile::TempDir,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.metrics_listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = data_dir.path().to_path_buf();
    config.site_dir = site_dir.path().to_path_buf();
    config.shutdown_grace = std::time::Duration::from_secs(2);
    adjust(&mut config);
    let app = Application::build(config).await.expect("server builds");
    let address = app.local_addr();
    let metrics_address = app.metrics_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        metrics_address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        site_dir,
        _data_dir: data_dir,
        stop: Some(stop),
        served,
    }
}

impl TestApp {
    /// A new HTTP client with its own cookie jar: one browser.
    pub fn browser(&self) -> Browser {
        self.browser_from(reqwest::Client::builder().cookie_store(true))
    }

    /// A browser that sends `cookie` (a session's, from `ws_client::user_with_workspace`).
    pub fn browser_with_cookie(&self, cookie: &str) -> Browser {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("cookie", cookie.parse().unwrap());
        self.browser_from(reqwest::Client::builder().default_headers(headers))
    }

    fn browser_from(&self, client: reqwest::ClientBuilder) -> Browser {
        Browser {
            http: client
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: format!("http://{}", self.address),
            metrics: format!("http://{}/metrics", self.metrics_address),
        }
    }

    /// A browser signed in as a freshly registered `username`.
    pub async fn signed_up(&self, username: &str) -> Browser {
        let browser = self.browser();
        let (status, body) = browser
            .post(
                "/api/users/register",
                serde_json::json!({
                    "username": username,
                    "email": format!("{username}@example.org"),
                    "password": PASSWORD,
                }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        browser
    }
}

/// The password every test account registers with.
pub const PASSWORD: &str = "correct horse battery";

/// One client with a cookie jar.
#[derive(Clone)]
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    /// The server's `/metrics` address.
    pub metrics: String,
}

impl Browser {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POSTs JSON; returns the status and the JSON body (`null` when empty).
    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let response = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        json_of(response).await
    }

    /// POSTs JSON and returns the whole response.
    pub async fn post_raw(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// The server's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(&self.metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A page's HTML (redirects not followed).
    pub async fn page(&self, path: &str) -> String {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Creates a workspace and returns its id.
    pub async fn workspace(&self, name: &str) -> String {
        let (status, body) = self
            .post(
                "/api/workspaces/create",
                serde_json::json!({ "name": name }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }
}

pub async fn json_of(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
    };
    (status, body)
}

/// A fresh, empty PostgreSQL database for one test; its URL.
pub async fn fresh_postgres_url() -> String {
    use sqlx::Connection;
    let admin = std::env::var("CODEPOD_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        "postgres://codepod_test:codepod_test@127.0.0.1:5432/postgres".to_owned()
    });
    let name = format!("codepod_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("PostgreSQL is running (scripts/services.sh)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// Ten writers save `main.py` at once, all from version 1: exactly one may win, the other
/// nine must get 409 — never a silent overwrite.
pub async fn assert_exactly_one_of_ten_concurrent_writes_wins(browser: &Browser, ws: &str) {
    let mut tasks = Vec::new();
    for i in 0..10 {
        let browser = browser.clone();
        let body = serde_json::json!({ "workspace": ws, "path": "main.py", "content": { "encoding": "utf8", "data": format!("writer {i}") }, "base_version": 1 });
        tasks.push(tokio::spawn(async move {
            browser.post("/api/files/write", body).await
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap().0);
    }
    statuses.sort();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
    let (_, read) = browser
        .post(
            "/api/files/read",
            serde_json::json!({ "workspace": ws, "path": "main.py" }),
        )
        .await;
    assert_eq!(read["version"], 2);
}
