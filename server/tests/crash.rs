//! Crash consistency, on SQLite and on PostgreSQL: a `kill -9` of the server in the middle
//! of a stream of saves loses no save that was answered 200 and tears none; PostgreSQL
//! restarted under a running server is waited out (`/readyz` says so meanwhile, saves are
//! refused with 503 and nothing acknowledged is lost). The server here is the real
//! `codepod` binary in its own process, so that it can be killed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a failure is a failed test"
)]

mod common;

use std::{
    collections::HashMap,
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{Browser, PASSWORD, fresh_postgres_url, spawn_app_configured};
use serde_json::{Value, json};

/// Writers saving their own file over and over.
const WRITERS: usize = 6;

/// The content of save number `n` of a writer: large enough to span pages, and every byte
/// of it says which save it belongs to (a torn write would mix two).
fn content(writer: usize, n: u64) -> String {
    format!("writer {writer} save {n:08}\n").repeat(2000)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real server binary, on `port`, over `data` (and `database`, if given).
fn start_server(port: u16, data: &Path, database: Option<&str>) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_codepod"));
    command
        .env("CODEPOD_LISTEN", format!("127.0.0.1:{port}"))
        .env("CODEPOD_METRICS_LISTEN", "127.0.0.1:0")
        .env("CODEPOD_DATA_DIR", data)
        .env("CODEPOD_SITE_DIR", data.join("site"))
        .env("CODEPOD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(url) = database {
        command.env("CODEPOD_DATABASE_URL", url);
    }
    command.spawn().expect("the server starts")
}

async fn wait_until_up(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not come up");
}

fn browser(base: &str) -> Browser {
    Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: base.to_owned(),
        metrics: String::new(),
    }
}

/// Saves in a loop until the server dies; returns the last save answered 200 per writer.
async fn save_until_killed(ada: &Browser, ws: &str) -> HashMap<usize, u64> {
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (ada, ws) = (ada.clone(), ws.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut acknowledged = 0;
            let mut version: Option<i64> = None;
            for n in 1.. {
                let body = json!({
                    "workspace": ws,
                    "path": format!("w{writer}.txt"),
                    "content": { "encoding": "utf8", "data": content(writer, n) },
                    "base_version": version,
                });
                let Ok(response) = ada
                    .http
                    .post(ada.url("/api/files/write"))
                    .json(&body)
                    .send()
                    .await
                else {
                    break;
                };
                if response.status() != 200 {
                    break;
                }
                let Ok(entry) = response.json::<Value>().await else {
                    break;
                };
                version = entry["version"].as_i64();
                acknowledged = n;
            }
            (writer, acknowledged)
        }));
    }
    let mut acknowledged = HashMap::new();
    for task in tasks {
        let (writer, n) = task.await.unwrap();
        acknowledged.insert(writer, n);
    }
    acknowledged
}

/// Each file holds one whole save, no older than the last one acknowledged (a save cut off
/// before its answer may have landed, or not).
async fn assert_every_acknowledged_save_is_there(
    ada: &Browser,
    ws: &str,
    acknowledged: &HashMap<usize, u64>,
) {
    for (writer, last) in acknowledged {
        assert!(*last > 0, "writer {writer} saved nothing before the kill");
        let (status, file) = ada
            .post(
                "/api/files/read",
                json!({ "workspace": ws, "path": format!("w{writer}.txt") }),
            )
            .await;
        assert_eq!(status, 200, "{file}");
        let data = file["data"].as_str().unwrap();
        let whole = [*last, last + 1]
            .into_iter()
            .find(|n| data == content(*writer, *n));
        assert!(
            whole.is_some(),
            "writer {writer}: acknowledged save {last} is lost or torn (stored {} bytes starting {:?})",
            data.len(),
            &data[..data.len().min(40)]
        );
    }
}

async fn kill_during_saves(database: Option<String>) {
    let data = tempfile::tempdir().unwrap();
    common::write_fake_site(&data.path().join("site"));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start_server(port, data.path(), database.as_deref());
    wait_until_up(&base).await;
    let ada = browser(&base);
    let (status, body) = ada
        .post(
            "/api/users/register",
            json!({ "username": "ada", "email": "ada@example.org", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let ws = ada.workspace("crash").await;

    let saving = tokio::spawn({
        let (ada, ws) = (ada.clone(), ws.clone());
        async move { save_until_killed(&ada, &ws).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().unwrap(); // SIGKILL: no shutdown, no flush.
    server.wait().unwrap();
    let acknowledged = saving.await.unwrap();

    let mut server = start_server(port, data.path(), database.as_deref());
    wait_until_up(&base).await;
    let ada = browser(&base);
    let (status, _) = ada
        .post(
            "/api/users/login",
            json!({ "login": "ada", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, 200);
    assert_every_acknowledged_save_is_there(&ada, &ws, &acknowledged).await;
    eprintln!("acknowledged before the kill: {acknowledged:?}");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test]
async fn a_kill_9_during_saves_loses_no_acknowledged_save_on_sqlite() {
    kill_during_saves(None).await;
}

#[tokio::test]
async fn a_kill_9_during_saves_loses_no_acknowledged_save_on_postgres() {
    kill_during_saves(Some(fresh_postgres_url().await)).await;
}

/// A PostgreSQL cluster of the test's own (the shared one serves the other tests), run as
/// the `postgres` user, in a temporary directory, on a free port.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn as_postgres(program: &str, args: &[&str]) -> std::process::ExitStatus {
    Command::new("runuser")
        .args(["-u", "postgres", "--", &format!("{PG_BIN}/{program}")])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
}

impl Cluster {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .unwrap();
        let data = dir.path().join("data");
        assert!(
            as_postgres(
                "initdb",
                &[
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-D",
                    data.to_str().unwrap()
                ]
            )
            .success()
        );
        let cluster = Self {
            dir,
            port: free_port(),
        };
        cluster.start();
        cluster
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        assert!(
            as_postgres(
                "pg_ctl",
                &["-D", &self.data(), "-o", &options, "-w", "start"]
            )
            .success()
        );
    }

    fn stop(&self) {
        assert!(as_postgres("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]).success());
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        as_postgres("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
    }
}

async fn readyz(ada: &Browser) -> (u16, Value) {
    let response = ada.http.get(ada.url("/readyz")).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn postgres_restarted_under_a_running_server_is_waited_out_and_loses_nothing() {
    let cluster = Cluster::new();
    let url = cluster.url();
    let app =
        spawn_app_configured(move |config| config.database_url = Some(url.parse().unwrap())).await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("restart").await;
    let save = |n: u64, version: Option<i64>| {
        let ada = ada.clone();
        let ws = ws.clone();
        async move {
            ada.post(
                "/api/files/write",
                json!({ "workspace": ws, "path": "kept.txt", "content": { "encoding": "utf8", "data": content(0, n) }, "base_version": version }),
            )
            .await
        }
    };
    let (status, first) = save(1, None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(readyz(&ada).await.0, 200);

    cluster.stop();
    let (status, ready) = readyz(&ada).await;
    assert_eq!(status, 503, "{ready}");
    assert!(ready.to_string().contains("database"), "{ready}");
    // Refused with a status that says "try again", not lost and not a 500.
    let (status, refused) = save(2, first["version"].as_i64()).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (503, Some("unavailable")),
        "{refused}"
    );

    cluster.start();
    let deadline = Instant::now() + Duration::from_secs(60);
    while readyz(&ada).await.0 != 200 {
        assert!(Instant::now() < deadline, "the server did not reconnect");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, second) = save(2, first["version"].as_i64()).await;
    assert_eq!(status, 200, "{second}");
    let (_, read) = ada
        .post(
            "/api/files/read",
            json!({ "workspace": ws, "path": "kept.txt" }),
        )
        .await;
    assert_eq!(read["data"].as_str(), Some(content(0, 2).as_str()));
    assert_eq!(read["version"], second["version"]);
}
