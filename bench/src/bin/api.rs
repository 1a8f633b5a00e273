//! `/api/files/write` latency and sustained write throughput, and sign-in latency (the
//! argon2id cost), against the real server on SQLite and on PostgreSQL.
//!
//!     cargo run --release -p codepod-bench --bin api
//!
//! The server runs in this process on port 0; the client is reqwest over loopback. On a
//! 2-core machine client and server share the cores, which the numbers include.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark run aborts on the first failure; there is nothing to recover"
)]

use std::time::{Duration, Instant};

use codepod_bench::{Samples, machine};
use serde_json::json;
use server::{Application, Config};

const PASSWORD: &str = "correct horse battery";
const SEQUENTIAL_WRITES: usize = 500;
const CONCURRENT_WRITERS: usize = 8;
const SUSTAINED_FOR: Duration = Duration::from_secs(10);
const LOGINS: usize = 30;
const FILE_BYTES: usize = 1024;

struct Running {
    base: String,
    _data: tempfile::TempDir,
}

async fn start(database_url: Option<String>) -> Running {
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.metrics_listen = "127.0.0.1:0".parse().expect("address");
    config.data_dir = data.path().to_path_buf();
    config.database_url = database_url.map(|url| url.parse().expect("url"));
    config.sessions.login_failures_per_account = u32::MAX;
    config.sessions.login_failures_per_ip = u32::MAX;
    config.log.filter = "warn".into();
    let app = Application::build(config).await.expect("server starts");
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    Running { base, _data: data }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client")
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = client.post(url).json(&body).send().await.expect("request");
    let status = response.status().as_u16();
    (
        status,
        response.json().await.unwrap_or(serde_json::Value::Null),
    )
}

async fn fresh_postgres() -> Option<String> {
    use sqlx::Connection;
    let admin = std::env::var("CODEPOD_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        "postgres://codepod_test:codepod_test@127.0.0.1:5432/postgres".to_owned()
    });
    let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
    let name = format!("codepod_test_bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .ok()?;
    let (base, _) = admin.rsplit_once('/')?;
    Some(format!("{base}/{name}"))
}

async fn run(label: &str, database_url: Option<String>) {
    let server = start(database_url).await;
    let url = |path: &str| format!("{}{path}", server.base);
    let ada = client();
    let (status, _) = post(
        &ada,
        &url("/api/users/register"),
        json!({ "username": "ada", "email": "ada@example.org", "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, 200, "register");

    let mut logins = Samples::default();
    for _ in 0..LOGINS {
        let fresh = client();
        let started = Instant::now();
        let (status, _) = post(
            &fresh,
            &url("/api/users/login"),
            json!({ "login": "ada", "password": PASSWORD }),
        )
        .await;
        logins.push(started.elapsed());
        assert_eq!(status, 200, "login");
    }

    let (_, workspace) = post(
        &ada,
        &url("/api/workspaces/create"),
        json!({ "name": "bench" }),
    )
    .await;
    let ws = workspace["id"].as_str().expect("workspace id").to_owned();
    let content = "x".repeat(FILE_BYTES - 1) + "\n";

    // Sequential: one client saving the same file again and again, as an editor does.
    let mut writes = Samples::default();
    let mut version = 1;
    for _ in 0..SEQUENTIAL_WRITES {
        let body = json!({ "workspace": ws, "path": "main.py", "content": { "encoding": "utf8", "data": content }, "base_version": version });
        let started = Instant::now();
        let (status, entry) = post(&ada, &url("/api/files/write"), body).await;
        writes.push(started.elapsed());
        assert_eq!(status, 200, "write: {entry}");
        version = entry["version"].as_i64().expect("version");
    }

    // Sustained: several writers, each on its own file, for a fixed time.
    let deadline = Instant::now() + SUSTAINED_FOR;
    let mut tasks = Vec::new();
    for writer in 0..CONCURRENT_WRITERS {
        let (ada, ws, content, url) = (
            ada.clone(),
            ws.clone(),
            content.clone(),
            url("/api/files/write"),
        );
        tasks.push(tokio::spawn(async move {
            let path = format!("w{writer}.py");
            let mut version: Option<i64> = None;
            let mut samples = Samples::default();
            while Instant::now() < deadline {
                let body = json!({ "workspace": ws, "path": path, "content": { "encoding": "utf8", "data": content }, "base_version": version });
                let started = Instant::now();
                let (status, entry) = post(&ada, &url, body).await;
                samples.push(started.elapsed());
                assert_eq!(status, 200, "sustained write: {entry}");
                version = entry["version"].as_i64();
            }
            samples
        }));
    }
    let mut sustained = Samples::default();
    for task in tasks {
        sustained.extend(task.await.expect("writer"));
    }
    let per_second = sustained.len() as f64 / SUSTAINED_FOR.as_secs_f64();

    println!("## {label}");
    println!(
        "sign-in (argon2id m=19456 t=2 p=1), sequential: {}",
        logins.summary()
    );
    println!(
        "/api/files/write 1 KiB, sequential:            {}",
        writes.summary()
    );
    println!(
        "/api/files/write 1 KiB, {CONCURRENT_WRITERS} writers for {}s:      {}",
        SUSTAINED_FOR.as_secs(),
        sustained.summary()
    );
    println!("sustained writes/s:                            {per_second:.0}");
    println!();
}

#[tokio::main]
async fn main() {
    println!("machine: {}", machine());
    println!();
    run("SQLite (WAL, synchronous=NORMAL)", None).await;
    match fresh_postgres().await {
        Some(url) => run("PostgreSQL 15 (local, default settings)", Some(url)).await,
        None => println!("## PostgreSQL: not reachable (set CODEPOD_TEST_POSTGRES_URL); skipped"),
    }
}
