//! The whole server on the Kubernetes runtime, against the scripted fake API server on a
//! loopback port whose exec endpoint runs the real `codepod-agent attach` next to a real
//! agent (no real cluster runs here). A workspace opened over the IDE WebSocket gets a pod
//! created from the template, its files arrive in the pod through exec, a shell answers,
//! changes made inside sync back, stop deletes the pod and a server shutdown leaves it
//! running for the other replicas.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure here is a failed test"
)]

mod common;
#[path = "../../sandbox/tests/kube_fake/mod.rs"]
mod kube_fake;

use std::time::Duration;

use common::{Browser, spawn_app_configured, ws_client::*};
use kube_fake::{
    FakeApi, NAMESPACE, Startup,
    loopback::{AgentInPod, Loopback, agent_bin},
};
use sandbox::kube::pod::{self, WORKSPACE_LABEL};
use serde_json::json;

fn browser_with(cookie: &str, base: String) -> Browser {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("cookie", cookie.parse().unwrap());
    Browser {
        http: reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap(),
        base,
        metrics: String::new(),
    }
}

fn workspace_pods(api: &FakeApi, ws: &str) -> usize {
    api.pods()
        .iter()
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(WORKSPACE_LABEL))
                .map(String::as_str)
                == Some(ws)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_runs_in_a_pod_reached_through_exec() {
    let api = FakeApi::new();
    api.set_startup(Startup::ReadyAfter(2));
    let in_pod = AgentInPod::start(api.clone()).await;
    let cluster = &in_pod.loopback;
    let inside = in_pod.workspace.clone();

    let app = spawn_app_configured(|config| {
        config.sandbox.runtime = server::RuntimeKind::Kube;
        config.kube.kube_api_url = Some(cluster.url.clone());
        config.kube.kube_namespace = NAMESPACE.to_owned();
    })
    .await;
    let (cookie, ws) = user_with_workspace(&app, "ada").await;
    let ada = browser_with(&cookie, app.url(""));
    let (status, _) = ada
        .post("/api/files/write", json!({ "workspace": ws, "path": "hello.py", "content": { "encoding": "utf8", "data": "print(6*7)\n" } }))
        .await;
    assert_eq!(status, 200);

    let mut socket = connect(&app, &cookie, &ws).await;
    let terminal = ready_with_terminal(&mut socket).await;
    assert_eq!(workspace_pods(&api, &ws), 1, "one pod for the workspace");
    let pod = api.pods().into_iter().next().unwrap();
    assert_eq!(pod::restricted_violations(&pod), Vec::<String>::new());

    // The file went into the pod through exec; the shell in the pod answers.
    type_in(&mut socket, terminal, "cat hello.py; echo $((6*7))\r").await;
    let seen = output_until(&mut socket, terminal, "42\r\n").await;
    assert!(seen.contains("print(6*7)"), "{seen}");
    assert_eq!(
        std::fs::read_to_string(inside.join("hello.py")).unwrap(),
        "print(6*7)\n"
    );

    // A file made inside comes back into the database.
    type_in(&mut socket, terminal, "echo made-in-pod > made.txt\r").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = ada
            .post(
                "/api/files/read",
                json!({ "workspace": ws, "path": "made.txt" }),
            )
            .await;
        if status == 200 {
            assert_eq!(body["data"], "made-in-pod\n", "{body}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "made.txt never synced: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Saves ride the sandbox's one control connection: an exec session opened at boot,
    // not one per save (each would be a round trip through the API server to the kubelet).
    let execs = || {
        cluster
            .kubelet
            .execs
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    let before = execs();
    for n in 0..10 {
        let (status, body) = ada
            .post("/api/files/write", json!({ "workspace": ws, "path": format!("saved{n}.py"), "content": { "encoding": "utf8", "data": "x = 1\n" } }))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        std::fs::read_to_string(inside.join("saved9.py")).unwrap(),
        "x = 1\n"
    );
    assert_eq!(execs(), before, "saves opened exec sessions of their own");
    drop(socket);

    // Stop deletes the pod.
    let (status, body) = ada.post("/api/workspaces/stop", json!({ "id": ws })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(workspace_pods(&api, &ws), 0);

    // Start again, then shut the server down: the pod stays for the next replica.
    let (status, body) = ada.post("/api/workspaces/start", json!({ "id": ws })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "ready", "{body}");
    assert_eq!(workspace_pods(&api, &ws), 1);
    // The runtime's metrics are served: two cold starts so far, no warm pool.
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("codepod_kube_start_seconds_count{source=\"cold\"} 2"),
        "{metrics}"
    );
    assert_eq!(metric(&app, "codepod_kube_pool_misses_total").await, 0.0);
    assert!(
        metrics.contains("codepod_kube_pool_hits_total 0"),
        "{metrics}"
    );
    // Ready without a local agent binary: the pods bring theirs.
    let ready = ada.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    app.shutdown().await.unwrap();
    assert_eq!(
        workspace_pods(&api, &ws),
        1,
        "a shutdown leaves kube sandboxes running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_cannot_start_is_a_clear_503_for_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeApi::new();
    api.set_startup(Startup::ImagePull);
    let cluster = Loopback::start(api.clone(), agent_bin(), dir.path().join("none.sock")).await;
    let app = spawn_app_configured(|config| {
        config.sandbox.runtime = server::RuntimeKind::Kube;
        config.kube.kube_api_url = Some(cluster.url.clone());
        config.kube.kube_namespace = NAMESPACE.to_owned();
    })
    .await;
    let (cookie, ws) = user_with_workspace(&app, "ada").await;
    let ada = browser_with(&cookie, app.url(""));
    let (status, body) = ada.post("/api/workspaces/start", json!({ "id": ws })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "failed", "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("image cannot be pulled"), "{error}");
    assert_eq!(workspace_pods(&api, &ws), 0, "the broken pod was removed");

    // The quota case, through the same path.
    api.set_startup(Startup::ReadyAfter(1));
    api.fail_next(
        http::Method::POST,
        403,
        "pods \"x\" is forbidden: exceeded quota: sandboxes",
    );
    let (_, body) = ada.post("/api/workspaces/start", json!({ "id": ws })).await;
    assert_eq!(body["state"], "failed", "{body}");
    assert!(body["error"].as_str().unwrap().contains("quota"), "{body}");

    // An API server that keeps answering 503: a few retries, then a plain answer — not
    // kube-rs's default of retrying for many minutes.
    for _ in 0..4 {
        api.fail_next(http::Method::POST, 503, "etcdserver: request timed out");
    }
    let posts_before = api.count(http::Method::POST);
    let (_, body) = ada.post("/api/workspaces/start", json!({ "id": ws })).await;
    assert_eq!(body["state"], "failed", "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("unavailable right now"), "{error}");
    assert!(
        !error.contains("etcd"),
        "API server details stay in the log: {error}"
    );
    // Exactly our four attempts: a retry layer underneath would have tried a fifth time
    // (and succeeded, the faults being used up).
    let posts = api.count(http::Method::POST);
    assert_eq!(posts - posts_before, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_deploy_keeps_the_users_shell() {
    let api = FakeApi::new();
    let in_pod = AgentInPod::start(api.clone()).await;
    let cluster = &in_pod.loopback;
    // Two replicas of the server, one after the other, on one Postgres database.
    let database = common::fresh_postgres_url().await;
    let replica = || {
        let url = cluster.url.clone();
        let database = database.clone();
        move |config: &mut server::Config| {
            config.sandbox.runtime = server::RuntimeKind::Kube;
            config.kube.kube_api_url = Some(url);
            config.kube.kube_namespace = NAMESPACE.to_owned();
            config.database_url = Some(database.parse().unwrap());
        }
    };

    let old = spawn_app_configured(replica()).await;
    let (cookie, ws) = user_with_workspace(&old, "ada").await;
    let mut socket = connect(&old, &cookie, &ws).await;
    let terminal = ready_with_terminal(&mut socket).await;
    type_in(&mut socket, terminal, "X=21; echo $((X*2))\r").await;
    output_until(&mut socket, terminal, "42\r\n").await;
    old.shutdown().await.unwrap();
    assert_eq!(workspace_pods(&api, &ws), 1, "the pod outlives the replica");

    // The new replica: same session, same pod, same shell, with its scrollback and state.
    let new = spawn_app_configured(replica()).await;
    let mut socket = connect(&new, &cookie, &ws).await;
    let model::ws::ServerMessage::Terminals { terminals } = control_until(&mut socket, |m| {
        matches!(m, model::ws::ServerMessage::Terminals { .. })
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(terminals.len(), 1, "{terminals:?}");
    assert_eq!(terminals[0].terminal, terminal);
    send(&mut socket, model::ws::ClientMessage::Attach { terminal }).await;
    let replay = output_until(&mut socket, terminal, "42\r\n").await;
    assert!(replay.contains("X=21"), "{replay}");
    type_in(&mut socket, terminal, "echo $((X+1))\r").await;
    output_until(&mut socket, terminal, "22\r\n").await;
    assert_eq!(workspace_pods(&api, &ws), 1, "no second pod");
    new.shutdown().await.unwrap();
}
