//! Starts the real server on port 0 with a fresh data directory and a fake built site.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failure here is a failed test"
)]

use std::{net::SocketAddr, path::Path};

use server::{Application, Config};
use tokio::sync::oneshot;

/// A running server and the handles a test needs.
pub struct TestApp {
    pub address: SocketAddr,
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
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = data_dir.path().to_path_buf();
    config.site_dir = site_dir.path().to_path_buf();
    config.shutdown_grace = std::time::Duration::from_secs(2);
    let app = Application::build(config).await.expect("server builds");
    let address = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
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
