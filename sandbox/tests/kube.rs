//! The Kubernetes runtime against a scripted fake API server at the HTTP wire (kube-rs's
//! `tower_test::mock::pair` pattern): create → ready → delete, reuse, warm-pool claim and
//! refill, quota, 5xx, image-pull and scheduling failures, orphan cleanup, activity records,
//! and the generated pod against the Pod Security Standards' `restricted` profile.
//!
//! No real cluster runs here: these tests pin what the runtime sends and how it reads what
//! comes back, as a real API server would answer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure here is a failed test"
)]

mod kube_fake;

use std::time::Duration;

use http::Method;
use k8s_openapi::api::core::v1::Pod;
use kube_fake::{FakeApi, NAMESPACE, Startup, ready_status, time_ago};
use sandbox::{
    Error, Runtime, SandboxId,
    kube::{
        KubeConfig, KubeRuntime,
        pod::{self, LAST_ACTIVE_ANNOTATION, POOL_LABEL, Role, WORKSPACE_LABEL},
    },
};

fn config() -> KubeConfig {
    let mut config = KubeConfig::new(NAMESPACE, "registry.example/codepod-sandbox:1");
    config.ready_timeout = Duration::from_secs(5);
    config.api_backoff = Duration::from_millis(5);
    config
}

fn id(n: u32) -> SandboxId {
    SandboxId::parse(&format!("6f1c4a9e-0000-4000-8000-{n:012x}")).unwrap()
}

fn runtime_with(config: KubeConfig) -> (KubeRuntime, FakeApi) {
    let (service, handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    let fake = FakeApi::new();
    fake.serve_mock(handle);
    let client = kube::Client::new(service, NAMESPACE);
    (KubeRuntime::new(client, config), fake)
}

fn labels(pod: &Pod) -> std::collections::BTreeMap<String, String> {
    pod.metadata.labels.clone().unwrap_or_default()
}

/// A pod as the runtime would create it, already running.
fn running(config: &KubeConfig, role: Role<'_>) -> Pod {
    let mut pod = pod::sandbox_pod(config, role);
    pod.status = Some(ready_status());
    pod
}

#[tokio::test]
async fn a_sandbox_is_created_waited_for_listed_and_deleted() {
    let (runtime, fake) = runtime_with(config());
    fake.set_startup(Startup::ReadyAfter(2));
    runtime.ensure(&id(1)).await.unwrap();

    let pods = fake.pods();
    assert_eq!(pods.len(), 1);
    let pod = &pods[0];
    assert!(
        pod.metadata
            .name
            .as_ref()
            .unwrap()
            .starts_with("codepod-sandbox-")
    );
    assert_eq!(labels(pod)[WORKSPACE_LABEL], id(1).as_str());
    let seen = fake.seen();
    let methods: Vec<_> = seen.iter().map(|s| s.method.as_str()).collect();
    // Look for an existing pod, create one, poll until the kubelet reports Ready, then
    // check that no other replica created one at the same time.
    assert_eq!(methods, ["GET", "POST", "GET", "GET", "GET"], "{seen:#?}");
    assert!(seen[0].query.contains("labelSelector"), "{:?}", seen[0]);

    assert_eq!(runtime.list().await.unwrap(), vec![id(1)]);
    // A second ensure finds the running pod and creates nothing.
    runtime.ensure(&id(1)).await.unwrap();
    assert_eq!(fake.pods().len(), 1);

    runtime.stop(&id(1)).await.unwrap();
    assert!(fake.pods().is_empty());
    let delete = fake
        .seen()
        .into_iter()
        .find(|s| s.method == Method::DELETE)
        .unwrap();
    assert_eq!(delete.body["gracePeriodSeconds"], 2, "{delete:?}");
    // Stopping a stopped sandbox is fine.
    runtime.stop(&id(1)).await.unwrap();
    assert_eq!(runtime.list().await.unwrap(), vec![]);
}

#[tokio::test]
async fn replicas_that_create_a_pod_for_the_same_workspace_at_once_keep_the_same_one() {
    let (runtime, fake) = runtime_with(config());
    fake.race_next_create();
    runtime.ensure(&id(20)).await.unwrap();
    let pods = fake.pods();
    assert_eq!(pods.len(), 1, "the duplicate was removed: {pods:?}");
    assert_eq!(
        pods[0].metadata.name.as_deref(),
        Some("codepod-sandbox-other-replica"),
        "the older pod wins, whoever settles"
    );
    assert_eq!(runtime.list().await.unwrap(), vec![id(20)]);
}

#[tokio::test]
async fn a_sandbox_of_another_workspace_is_never_taken() {
    let (runtime, fake) = runtime_with(config());
    let other = fake.seed(running(&config(), Role::Workspace(&id(2))));
    runtime.ensure(&id(1)).await.unwrap();
    assert_eq!(fake.pods().len(), 2);
    runtime.stop(&id(1)).await.unwrap();
    assert!(
        fake.pod(&other).is_some(),
        "stopping one workspace left the other alone"
    );
}

#[tokio::test]
async fn the_warm_pool_is_claimed_once_and_refilled() {
    let mut config = config();
    config.warm_pool = 2;
    let (runtime, fake) = runtime_with(config.clone());
    // The pool at startup: maintain fills it.
    runtime.maintain().await.unwrap();
    let warm: Vec<Pod> = fake.pods();
    assert_eq!(warm.len(), 2);
    assert!(warm.iter().all(|p| labels(p)[POOL_LABEL] == "warm"));
    // Make them ready, as the kubelet would.
    for pod in &warm {
        fake.answer(
            Method::GET,
            &format!(
                "/api/v1/namespaces/{NAMESPACE}/pods/{}",
                pod.metadata.name.as_ref().unwrap()
            ),
            "",
            b"",
        );
    }

    // Another replica claims the oldest pod first: our conditional patch of it conflicts
    // and we take the next one.
    fake.fail_next(Method::PATCH, 409, "the object has been modified");
    runtime.ensure(&id(7)).await.unwrap();
    assert_eq!(runtime.metrics().pool_hits(), 1);
    assert_eq!(runtime.metrics().pool_misses(), 0);
    let claimed: Vec<Pod> = fake
        .pods()
        .into_iter()
        .filter(|p| labels(p).get(WORKSPACE_LABEL).map(String::as_str) == Some(id(7).as_str()))
        .collect();
    assert_eq!(claimed.len(), 1, "exactly one pod belongs to the workspace");
    assert!(
        !labels(&claimed[0]).contains_key(POOL_LABEL),
        "a claimed pod leaves the pool"
    );
    assert!(
        claimed[0]
            .metadata
            .annotations
            .as_ref()
            .unwrap()
            .contains_key(LAST_ACTIVE_ANNOTATION)
    );
    let patches: Vec<_> = fake
        .seen()
        .into_iter()
        .filter(|s| s.method == Method::PATCH)
        .collect();
    assert_eq!(patches.len(), 2);
    assert!(
        patches
            .iter()
            .all(|p| p.body["metadata"]["resourceVersion"].is_string()),
        "claims are conditional on the resource version: {patches:?}"
    );

    // The claim set a refill going in the background: the pool is back to two.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while fake
        .pods()
        .iter()
        .filter(|p| labels(p).contains_key(POOL_LABEL))
        .count()
        < 2
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pool was not refilled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fake.pods().len(), 3);
}

#[tokio::test]
async fn an_empty_pool_is_a_miss_and_the_workspace_gets_its_own_pod() {
    let mut config = config();
    config.warm_pool = 1;
    let (runtime, fake) = runtime_with(config);
    runtime.ensure(&id(3)).await.unwrap();
    assert_eq!(runtime.metrics().pool_hits(), 0);
    assert_eq!(runtime.metrics().pool_misses(), 1);
    let mine = fake
        .pods()
        .into_iter()
        .filter(|p| labels(p).get(WORKSPACE_LABEL).map(String::as_str) == Some(id(3).as_str()))
        .count();
    assert_eq!(mine, 1);
}

#[tokio::test]
async fn an_exhausted_quota_is_a_clear_capacity_error() {
    let (runtime, fake) = runtime_with(config());
    fake.fail_next(
        Method::POST,
        403,
        "pods \"codepod-sandbox-x\" is forbidden: exceeded quota: sandboxes, requested: pods=1, used: pods=50, limited: pods=50",
    );
    let error = runtime.ensure(&id(4)).await.unwrap_err();
    assert!(matches!(error, Error::Capacity(_)), "{error:?}");
    assert!(error.to_string().contains("quota"), "{error}");
    // A quota refusal is final: no retry, no pod.
    assert_eq!(fake.count(Method::POST), 1);
    assert!(fake.pods().is_empty());
}

#[tokio::test]
async fn api_server_errors_are_retried_with_backoff() {
    let (runtime, fake) = runtime_with(config());
    fake.fail_next(Method::POST, 503, "etcdserver: leader changed");
    fake.fail_next(Method::POST, 500, "internal error");
    runtime.ensure(&id(5)).await.unwrap();
    assert_eq!(fake.count(Method::POST), 3);
    assert_eq!(fake.pods().len(), 1);
}

#[tokio::test]
async fn an_api_server_that_keeps_failing_is_reported_not_hung_on() {
    let (runtime, fake) = runtime_with(config());
    for _ in 0..4 {
        fake.fail_next(
            Method::POST,
            503,
            "the server is currently unable to handle the request",
        );
    }
    let error = runtime.ensure(&id(6)).await.unwrap_err();
    assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
    assert!(error.to_string().contains("503"), "{error}");
    assert_eq!(fake.count(Method::POST), 4);
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_fails_fast_and_leaves_no_pod() {
    let (runtime, fake) = runtime_with(config());
    fake.set_startup(Startup::ImagePull);
    let error = runtime.ensure(&id(8)).await.unwrap_err();
    assert!(matches!(error, Error::ImagePull(_)), "{error:?}");
    assert!(error.to_string().contains("cannot be pulled"), "{error}");
    assert!(fake.pods().is_empty(), "the broken pod was deleted");
}

#[tokio::test]
async fn a_pod_no_node_can_take_times_out_as_a_capacity_error() {
    let mut config = config();
    config.ready_timeout = Duration::from_millis(300);
    let (runtime, fake) = runtime_with(config);
    fake.set_startup(Startup::Unschedulable);
    let error = runtime.ensure(&id(9)).await.unwrap_err();
    assert!(matches!(error, Error::Capacity(_)), "{error:?}");
    assert!(error.to_string().contains("Insufficient memory"), "{error}");
    assert!(fake.pods().is_empty());
}

#[tokio::test]
async fn orphans_are_found_by_label_and_removed() {
    let mut config = config();
    config.idle_timeout = Duration::from_secs(60);
    config.max_lifetime = Duration::from_secs(3600);
    let (runtime, fake) = runtime_with(config.clone());
    let hour = 3_600_000;

    // An hour-old workspace pod some replica touched `last_active_ago` ms ago.
    let touched = |n: u32, last_active_ago: i64| {
        let mut pod = running(&config, Role::Workspace(&id(n)));
        pod.metadata.creation_timestamp = Some(time_ago(hour));
        let at = jiff::Timestamp::now().as_millisecond() - last_active_ago;
        pod.metadata.annotations =
            Some([(LAST_ACTIVE_ANNOTATION.to_owned(), at.to_string())].into());
        fake.seed(pod)
    };
    let active = touched(10, 1000);
    let idle = touched(11, hour);
    let ended = {
        let mut pod = running(&config, Role::Workspace(&id(12)));
        pod.status.as_mut().unwrap().phase = Some("Failed".to_owned());
        pod.status.as_mut().unwrap().reason = Some("DeadlineExceeded".to_owned());
        fake.seed(pod)
    };
    let fresh_warm = fake.seed(running(&config, Role::Warm));
    let stale_warm = {
        let mut pod = running(&config, Role::Warm);
        pod.metadata.creation_timestamp = Some(time_ago(hour));
        fake.seed(pod)
    };
    let stuck = {
        let mut pod = pod::sandbox_pod(&config, Role::Workspace(&id(13)));
        pod.metadata.creation_timestamp = Some(time_ago(hour));
        fake.seed(pod)
    };
    let foreign = {
        let mut other = config.clone();
        other.instance = "another-install".to_owned();
        let mut pod = running(&other, Role::Workspace(&id(14)));
        pod.metadata.creation_timestamp = Some(time_ago(10 * hour));
        pod.status.as_mut().unwrap().phase = Some("Failed".to_owned());
        fake.seed(pod)
    };

    assert_eq!(runtime.cleanup_orphans().await.unwrap(), 4);
    let left: Vec<String> = fake
        .pods()
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    for kept in [&active, &fresh_warm, &foreign] {
        assert!(left.contains(kept), "{kept} was kept: {left:?}");
    }
    for gone in [&idle, &ended, &stale_warm, &stuck] {
        assert!(!left.contains(gone), "{gone} was removed: {left:?}");
    }
    assert_eq!(runtime.list().await.unwrap(), vec![id(10)]);
}

#[tokio::test]
async fn activity_is_recorded_on_the_pod_for_every_replica() {
    let (runtime, fake) = runtime_with(config());
    runtime.ensure(&id(15)).await.unwrap();
    let before = jiff::Timestamp::now().as_millisecond();
    runtime.touch(&id(15)).await.unwrap();
    let seen = runtime
        .last_active(&id(15))
        .await
        .unwrap()
        .expect("recorded");
    assert!(seen >= before, "{seen} >= {before}");
    // A second replica (another runtime on the same API) sees it too.
    let (service, handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    fake.serve_mock(handle);
    let other = KubeRuntime::new(kube::Client::new(service, NAMESPACE), config());
    assert_eq!(other.last_active(&id(15)).await.unwrap(), Some(seen));
    assert_eq!(other.last_active(&id(16)).await.unwrap(), None);
}

#[tokio::test]
async fn connecting_to_a_workspace_without_a_pod_is_not_found() {
    let (runtime, _fake) = runtime_with(config());
    assert!(matches!(
        runtime.connect(&id(17)).await,
        Err(Error::NotFound)
    ));
}

#[test]
fn pods_install_packages_from_the_servers_index_when_one_is_configured() {
    let env_of = |config: &KubeConfig| -> Vec<(String, String)> {
        pod::sandbox_pod(config, Role::Warm)
            .spec
            .unwrap()
            .containers[0]
            .env
            .clone()
            .unwrap()
            .into_iter()
            .map(|var| (var.name, var.value.unwrap_or_default()))
            .collect()
    };
    let mut config = config();
    assert!(
        !env_of(&config)
            .iter()
            .any(|(name, _)| name.starts_with("PIP_")),
        "no index, no pip settings"
    );
    config.package_index_url = Some("http://10.96.3.4:3141/simple/".to_owned());
    let env = env_of(&config);
    for (name, value) in [
        ("PIP_INDEX_URL", "http://10.96.3.4:3141/simple/"),
        ("PIP_TRUSTED_HOST", "10.96.3.4"),
        ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
    ] {
        assert!(
            env.contains(&(name.to_owned(), value.to_owned())),
            "{name}={value} in {env:?}"
        );
    }
}

#[test]
fn the_sandbox_pod_meets_the_restricted_pod_security_standard() {
    let mut config = config();
    config.runtime_class = Some("gvisor".to_owned());
    config.node_selector = [("codepod.dev/sandboxes".to_owned(), "true".to_owned())].into();
    for role in [Role::Workspace(&id(1)), Role::Warm] {
        let pod = pod::sandbox_pod(&config, role);
        assert_eq!(pod::restricted_violations(&pod), Vec::<String>::new());
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.automount_service_account_token, Some(false));
        assert_eq!(spec.enable_service_links, Some(false));
        assert_eq!(spec.active_deadline_seconds, Some(7200));
        assert_eq!(spec.runtime_class_name.as_deref(), Some("gvisor"));
        let container = &spec.containers[0];
        let sc = container.security_context.as_ref().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        let limits = container
            .resources
            .as_ref()
            .unwrap()
            .limits
            .as_ref()
            .unwrap();
        assert_eq!(limits["cpu"].0, "500m");
        assert_eq!(limits["memory"].0, "768Mi");
        assert!(limits.contains_key("ephemeral-storage"));
        for volume in spec.volumes.as_ref().unwrap() {
            let dir = volume.empty_dir.as_ref().expect("only emptyDirs");
            assert!(dir.size_limit.is_some(), "{} is size-limited", volume.name);
        }
        assert!(
            pod.metadata.name.is_none(),
            "names are generated by the API server"
        );
    }
}

#[test]
fn the_restricted_check_catches_each_violation() {
    let config = config();
    let base = pod::sandbox_pod(&config, Role::Warm);
    type Break = Box<dyn Fn(&mut Pod)>;
    let breaks: Vec<(&str, Break)> = vec![
        (
            "hostNetwork",
            Box::new(|p| p.spec.as_mut().unwrap().host_network = Some(true)),
        ),
        (
            "privileged",
            Box::new(|p| container_sc(p).privileged = Some(true)),
        ),
        (
            "allowPrivilegeEscalation",
            Box::new(|p| container_sc(p).allow_privilege_escalation = None),
        ),
        (
            "runAsNonRoot",
            Box::new(|p| {
                container_sc(p).run_as_non_root = None;
                p.spec
                    .as_mut()
                    .unwrap()
                    .security_context
                    .as_mut()
                    .unwrap()
                    .run_as_non_root = None;
            }),
        ),
        (
            "seccomp",
            Box::new(|p| {
                container_sc(p).seccomp_profile = None;
                p.spec
                    .as_mut()
                    .unwrap()
                    .security_context
                    .as_mut()
                    .unwrap()
                    .seccomp_profile = None;
            }),
        ),
        (
            "drop ALL",
            Box::new(|p| container_sc(p).capabilities = None),
        ),
        (
            "adds capability",
            Box::new(|p| {
                container_sc(p).capabilities.as_mut().unwrap().add =
                    Some(vec!["SYS_ADMIN".to_owned()])
            }),
        ),
        (
            "type restricted forbids",
            Box::new(|p| {
                p.spec.as_mut().unwrap().volumes.as_mut().unwrap().push(
                    k8s_openapi::api::core::v1::Volume {
                        name: "host".to_owned(),
                        host_path: Some(k8s_openapi::api::core::v1::HostPathVolumeSource {
                            path: "/".to_owned(),
                            type_: None,
                        }),
                        ..Default::default()
                    },
                );
            }),
        ),
    ];
    for (what, mutate) in breaks {
        let mut pod = base.clone();
        mutate(&mut pod);
        let found = pod::restricted_violations(&pod);
        assert!(found.iter().any(|f| f.contains(what)), "{what}: {found:?}");
    }
}

fn container_sc(pod: &mut Pod) -> &mut k8s_openapi::api::core::v1::SecurityContext {
    pod.spec.as_mut().unwrap().containers[0]
        .security_context
        .as_mut()
        .unwrap()
}
