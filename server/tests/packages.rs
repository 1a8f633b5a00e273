//! `pip install` in a sandbox, by default and without a network: through the host's package
//! index (a pull-through cache of the configured upstream, here a local index of wheels the
//! test serves on loopback). A wheel with a C extension installs and imports, a second
//! workspace is served from the cache, and with no upstream reachable pip fails and the
//! terminal says why. Real bubblewrap, real agent, real pip.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a failure is a failed test"
)]

mod common;

use common::{
    TestApp, json_of, spawn_app_configured,
    wheel_index::WheelIndex,
    ws_client::{self, Socket},
};
use model::TerminalId;

/// Runs `command` in the terminal and returns what it printed and its exit status.
async fn run(socket: &mut Socket, terminal: TerminalId, command: &str) -> (String, i32) {
    // The marker is split in the typed line so that its echo does not match.
    ws_client::type_in(
        socket,
        terminal,
        &format!("{command}; echo \"EXIT\"\"CODE=$?\"\n"),
    )
    .await;
    let mut output = ws_client::output_until(socket, terminal, "EXITCODE=").await;
    while !output[output.rfind("EXITCODE=").unwrap()..].contains('\n') {
        output.push_str(&ws_client::output_until(socket, terminal, "\n").await);
    }
    let at = output.rfind("EXITCODE=").unwrap() + "EXITCODE=".len();
    let status: String = output[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (output[..at].to_owned(), status.parse().unwrap())
}

async fn shell(app: &TestApp, username: &str) -> (Socket, TerminalId) {
    let (cookie, workspace) = ws_client::user_with_workspace(app, username).await;
    let mut socket = ws_client::connect(app, &cookie, &workspace).await;
    let terminal = ws_client::ready_with_terminal(&mut socket).await;
    (socket, terminal)
}

/// `POST /api/workspaces/<what>` for `workspace` with the session `cookie`.
async fn workspace_call(
    app: &TestApp,
    cookie: &str,
    what: &str,
    workspace: &str,
) -> (u16, serde_json::Value) {
    json_of(
        app.client
            .post(app.url(&format!("/api/workspaces/{what}")))
            .header("cookie", cookie)
            .header("origin", app.url(""))
            .json(&serde_json::json!({ "id": workspace }))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// The workspace's sandbox (started by the IDE socket) with a shell.
async fn open(app: &TestApp, cookie: &str, workspace: &str) -> (Socket, TerminalId) {
    let mut socket = ws_client::connect(app, cookie, workspace).await;
    let terminal = ws_client::ready_with_terminal(&mut socket).await;
    (socket, terminal)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pip_installs_through_the_index_and_a_second_workspace_is_served_from_the_cache() {
    let index = WheelIndex::start().await;
    let upstream = index.url.clone();
    let app = spawn_app_configured(|config| config.sandbox.package_index = upstream).await;

    let (mut socket, terminal) = shell(&app, "first").await;
    // No network of its own: the proxy port is closed, the internet unreachable.
    let (output, status) = run(
        &mut socket,
        terminal,
        "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 3128), 2)'",
    )
    .await;
    assert_ne!(status, 0, "{output}");
    assert!(output.contains("ConnectionRefusedError"), "{output}");

    let (output, status) = run(
        &mut socket,
        terminal,
        "pip install markupsafe idna && python3 -c 'import markupsafe._speedups as s, idna; print(\"imported\", idna.__version__, s.__file__.endswith(\".so\"))'",
    )
    .await;
    assert_eq!(status, 0, "{output}");
    assert!(output.contains("Successfully installed"), "{output}");
    assert!(output.contains("imported 3.10 True"), "{output}");
    assert_eq!(index.files_served(), 2, "each wheel downloaded once");

    // Another user's workspace: the same wheels, from the host's cache.
    let (mut socket, terminal) = shell(&app, "second").await;
    let (output, status) = run(
        &mut socket,
        terminal,
        "pip install --no-cache-dir MarkupSafe IDNA && python3 -c 'import markupsafe, idna; print(\"again\")'",
    )
    .await;
    assert_eq!(status, 0, "{output}");
    assert!(output.contains("again"), "{output}");
    assert_eq!(
        index.files_served(),
        2,
        "the second install came from the cache"
    );

    // What the index is asked that it never listed is not fetched anywhere.
    let (output, _) = run(
        &mut socket,
        terminal,
        "python3 -c 'import urllib.request as u\nfor p in (\"/files/\" + \"0\"*64 + \"/x.whl\", \"/simple/..%2f..%2fetc/\", \"/elsewhere\"):\n  try: u.urlopen(\"http://127.0.0.1:3141\" + p)\n  except Exception as e: print(\"refused\", getattr(e, \"code\", e))'",
    )
    .await;
    assert_eq!(output.matches("refused 404").count(), 3, "{output}");
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_reachable_index_pip_fails_and_says_why() {
    // Nothing listens on port 9 here: connections are refused at once.
    let app = spawn_app_configured(|config| {
        config.sandbox.package_index = "http://127.0.0.1:9/simple/".into();
    })
    .await;
    let (mut socket, terminal) = shell(&app, "offline").await;
    let (output, status) = run(&mut socket, terminal, "pip install idna").await;
    assert_ne!(status, 0, "{output}");
    assert!(
        output.contains("codepod: pip could not use the package index")
            && output.contains("http://127.0.0.1:9/simple/ cannot be reached"),
        "{output}"
    );
    app.shutdown().await.unwrap();
}

/// Kubernetes sandbox pods reach the index on its own port (CODEPOD_PACKAGE_INDEX_LISTEN):
/// the same pages and files, over TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_is_served_on_its_own_port_for_sandbox_pods() {
    let index = WheelIndex::start().await;
    let upstream = index.url.clone();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let app = spawn_app_configured(|config| {
        config.sandbox.package_index = upstream;
        config.sandbox.package_index_listen = Some(listen);
    })
    .await;
    let client = reqwest::Client::new();
    let page = client
        .get(format!("http://{listen}/simple/Six/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["content-type"],
        "application/vnd.pypi.simple.v1+json"
    );
    let page: serde_json::Value = page.json().await.unwrap();
    let file = &page["files"][0];
    assert_eq!(file["filename"], "six-1.17.0-py2.py3-none-any.whl");
    let url = file["url"].as_str().unwrap();
    assert!(url.starts_with("/files/"), "{url}");
    let bytes = client
        .get(format!("http://{listen}{url}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let expected =
        std::fs::read(common::wheel_index::wheels_dir().join("six-1.17.0-py2.py3-none-any.whl"))
            .unwrap();
    assert_eq!(bytes.as_ref(), expected.as_slice());
    let health = client
        .get(format!("http://{listen}/codepod/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let missing = client
        .get(format!("http://{listen}/simple/no-such-project/"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    app.shutdown().await.unwrap();
}

/// Installed packages belong to the workspace: kept (packed, counted, listed) when its
/// sandbox stops and when the server shuts down, unpacked into the next sandbox, and
/// removable. Over the quota they are not kept, and the API says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installed_packages_outlive_the_sandbox_and_the_server() {
    let index = WheelIndex::start().await;
    let data = tempfile::tempdir().unwrap();
    let configure = |config: &mut server::Config| {
        config.data_dir = data.path().to_path_buf();
        config.sandbox.package_index = index.url.clone();
    };
    let app = spawn_app_configured(configure).await;
    let (cookie, workspace) = ws_client::user_with_workspace(&app, "keeper").await;
    let (mut socket, terminal) = open(&app, &cookie, &workspace).await;
    let (output, status) = run(&mut socket, terminal, "pip install --quiet markupsafe idna").await;
    assert_eq!(status, 0, "{output}");

    let (code, packages) = workspace_call(&app, &cookie, "packages", &workspace).await;
    assert_eq!(code, 200, "{packages}");
    assert_eq!(
        packages["packages"],
        serde_json::json!(["idna==3.10", "MarkupSafe==3.0.2"])
    );
    assert!(
        packages["size_bytes"].as_u64().unwrap() > 10_000,
        "{packages}"
    );
    assert_eq!(packages["quota_bytes"], 256 * 1024 * 1024);
    // Kept with the workspace, not with its files.
    let (_, tree) = json_of(
        app.client
            .post(app.url("/api/files/tree"))
            .header("cookie", &cookie)
            .header("origin", app.url(""))
            .json(&serde_json::json!({ "workspace": workspace }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(!tree.to_string().contains("markupsafe"), "{tree}");

    // Stopped (as the idle cull and the lifetime cap stop it), started again.
    drop(socket);
    let (code, _) = workspace_call(&app, &cookie, "stop", &workspace).await;
    assert_eq!(code, 200);
    let (mut socket, terminal) = open(&app, &cookie, &workspace).await;
    let import = "python3 -c 'import markupsafe._speedups, idna; print(\"still\", \"here\")'";
    let (output, status) = run(&mut socket, terminal, import).await;
    assert_eq!(status, 0, "{output}");
    assert!(output.contains("still here"), "{output}");

    // A server restart (on the same data directory, as a new process would find it).
    drop(socket);
    app.shutdown().await.unwrap();
    let app = spawn_app_configured(configure).await;
    let (mut socket, terminal) = open(&app, &cookie, &workspace).await;
    let (output, status) = run(&mut socket, terminal, import).await;
    assert_eq!(status, 0, "{output}");

    // Removable: gone from the sandbox and from what is kept.
    let (code, cleared) = workspace_call(&app, &cookie, "packages/clear", &workspace).await;
    assert_eq!(code, 200, "{cleared}");
    assert_eq!(cleared["packages"], serde_json::json!([]));
    assert_eq!(cleared["size_bytes"], 0);
    let (_, status) = run(&mut socket, terminal, import).await;
    assert_ne!(status, 0, "the packages are gone from the running sandbox");
    drop(socket);
    app.shutdown().await.unwrap();

    // Over the quota: not kept, and said so.
    let app = spawn_app_configured(|config| {
        configure(config);
        config.sandbox.packages_quota_bytes = 8 * 1024;
    })
    .await;
    let (mut socket, terminal) = open(&app, &cookie, &workspace).await;
    let (output, status) = run(&mut socket, terminal, "pip install --quiet markupsafe").await;
    assert_eq!(status, 0, "{output}");
    let (code, packages) = workspace_call(&app, &cookie, "packages", &workspace).await;
    assert_eq!(code, 200, "{packages}");
    assert_eq!(packages["packages"], serde_json::json!([]));
    assert!(
        packages["not_kept"]
            .as_str()
            .is_some_and(|why| why.contains("over the workspace's quota")),
        "{packages}"
    );
    // Someone else's workspace: not found.
    let (stranger, _) = ws_client::user_with_workspace(&app, "stranger").await;
    let (code, _) = workspace_call(&app, &stranger, "packages", &workspace).await;
    assert_eq!(code, 404);
    let (code, _) = workspace_call(&app, &stranger, "packages/clear", &workspace).await;
    assert_eq!(code, 404);
    drop(socket);
    app.shutdown().await.unwrap();
}
