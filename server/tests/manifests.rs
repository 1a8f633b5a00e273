//! The Kubernetes manifests under k8s/, rendered with `kubectl kustomize` as an operator
//! would, held to what docs/deploy.md promises: Pod Security `restricted` everywhere,
//! least-privilege RBAC, sandboxes with no network, never the metadata address, a server
//! Deployment that drains WebSockets, and settings the server actually accepts. (Schema
//! validation against the Kubernetes 1.33 OpenAPI is scripts/k8s-check.sh.) No cluster runs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure here is a failed test"
)]

use std::{net::Ipv4Addr, path::PathBuf, process::Command};

use clap::CommandFactory;
use k8s_openapi::api::{
    apps::v1::Deployment,
    autoscaling::v2::HorizontalPodAutoscaler,
    core::v1::{ConfigMap, Namespace, Pod, Secret},
    networking::v1::NetworkPolicy,
    policy::v1::PodDisruptionBudget,
    rbac::v1::{Role, RoleBinding},
};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn kubectl() -> PathBuf {
    if let Ok(path) = std::env::var("CODEPOD_KUBECTL") {
        return PathBuf::from(path);
    }
    let unpacked = root().join("k8s/.tools/bin/kubectl");
    if unpacked.exists() {
        return unpacked;
    }
    PathBuf::from("kubectl")
}

/// The objects `kubectl kustomize` renders for `dir` (relative to k8s/).
fn render(dir: &str) -> Vec<Value> {
    let output = Command::new(kubectl())
        .arg("kustomize")
        .arg(root().join("k8s").join(dir))
        .output()
        .expect("kubectl runs (scripts/setup.sh provides it)");
    assert!(
        output.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_saphyr::from_multiple(&String::from_utf8(output.stdout).unwrap()).unwrap()
}

fn file(path: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(&std::fs::read_to_string(root().join(path)).unwrap()).unwrap()
}

fn of_kind<T: serde::de::DeserializeOwned>(objects: &[Value], kind: &str) -> Vec<T> {
    objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .map(|o| serde_json::from_value(o.clone()).unwrap_or_else(|e| panic!("{kind}: {e}")))
        .collect()
}

fn named<
    'a,
    T: k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
>(
    items: &'a [T],
    name: &str,
) -> &'a T {
    items
        .iter()
        .find(|i| i.metadata().name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no {name}"))
}

const OVERLAYS: [&str; 3] = ["base", "overlays/local", "overlays/production"];

#[test]
fn every_pod_meets_the_restricted_standard_and_namespaces_enforce_it() {
    for overlay in OVERLAYS {
        let objects = render(overlay);
        for namespace in of_kind::<Namespace>(&objects, "Namespace") {
            let labels = namespace.metadata.labels.unwrap_or_default();
            assert_eq!(
                labels
                    .get("pod-security.kubernetes.io/enforce")
                    .map(String::as_str),
                Some("restricted"),
                "{overlay}: {:?}",
                namespace.metadata.name
            );
        }
        let deployments = of_kind::<Deployment>(&objects, "Deployment");
        assert!(!deployments.is_empty());
        for deployment in deployments {
            let template = deployment.spec.unwrap().template;
            let pod = Pod {
                metadata: template.metadata.unwrap_or_default(),
                spec: template.spec,
                status: None,
            };
            assert_eq!(
                sandbox::kube::pod::restricted_violations(&pod),
                Vec::<String>::new(),
                "{overlay}: {:?}",
                deployment.metadata.name
            );
        }
    }
}

#[test]
fn rbac_grants_the_server_only_pods_and_exec_in_the_sandbox_namespace() {
    for overlay in OVERLAYS {
        let objects = render(overlay);
        for kind in ["ClusterRole", "ClusterRoleBinding"] {
            assert!(
                of_kind::<Value>(&objects, kind).is_empty(),
                "{overlay}: no {kind}"
            );
        }
        let roles = of_kind::<Role>(&objects, "Role");
        assert_eq!(roles.len(), 1, "{overlay}");
        let role = &roles[0];
        assert_eq!(
            role.metadata.namespace.as_deref(),
            Some("codepod-sandboxes")
        );
        for rule in role.rules.iter().flatten() {
            assert_eq!(
                rule.api_groups.as_deref(),
                Some(&[String::new()][..]),
                "core group only"
            );
            assert!(rule.resource_names.is_none());
            for resource in rule.resources.iter().flatten() {
                let allowed: &[&str] = match resource.as_str() {
                    "pods" => &["create", "get", "list", "watch", "delete", "patch"],
                    "pods/exec" => &["get", "create"],
                    other => panic!("{overlay}: the role grants {other}"),
                };
                for verb in &rule.verbs {
                    assert!(
                        allowed.contains(&verb.as_str()),
                        "{overlay}: {resource} {verb}"
                    );
                }
            }
        }
        let binding = &of_kind::<RoleBinding>(&objects, "RoleBinding")[0];
        assert_eq!(binding.role_ref.name, "codepod-sandboxes");
        let subjects = binding.subjects.clone().unwrap();
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].kind, "ServiceAccount");
        assert_eq!(subjects[0].name, "codepod");
        assert_eq!(subjects[0].namespace.as_deref(), Some("codepod"));
        let deployments = of_kind::<Deployment>(&objects, "Deployment");
        let server = named(&deployments, "codepod-server");
        let spec = server.spec.clone().unwrap().template.spec.unwrap();
        assert_eq!(spec.service_account_name.as_deref(), Some("codepod"));
        // Every other pod runs without an API token.
        for other in deployments
            .iter()
            .filter(|d| d.metadata.name.as_deref() != Some("codepod-server"))
        {
            let spec = other.spec.clone().unwrap().template.spec.unwrap();
            assert_eq!(
                spec.automount_service_account_token,
                Some(false),
                "{:?}",
                other.metadata.name
            );
        }
    }
}

fn parse_cidr(cidr: &str) -> (u32, u32) {
    let (address, bits) = cidr.split_once('/').unwrap();
    let address = u32::from(address.parse::<Ipv4Addr>().unwrap());
    let bits: u32 = bits.parse().unwrap();
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    (address & mask, mask)
}

fn contains(cidr: &str, address: Ipv4Addr) -> bool {
    let (network, mask) = parse_cidr(cidr);
    u32::from(address) & mask == network
}

/// Whether any egress rule of `policy` lets traffic reach `address`.
fn egress_reaches(policy: &NetworkPolicy, address: Ipv4Addr) -> bool {
    let spec = policy.spec.clone().unwrap();
    spec.egress.iter().flatten().any(|rule| {
        rule.to.iter().flatten().any(|peer| {
            peer.ip_block.as_ref().is_some_and(|block| {
                contains(&block.cidr, address)
                    && !block.except.iter().flatten().any(|e| contains(e, address))
            })
        })
    })
}

#[test]
fn sandboxes_get_no_network_and_nothing_reaches_the_metadata_address() {
    let metadata = Ipv4Addr::new(169, 254, 169, 254);
    for overlay in OVERLAYS {
        let objects = render(overlay);
        let policies = of_kind::<NetworkPolicy>(&objects, "NetworkPolicy");
        let deny = named(&policies, "sandboxes-deny-all");
        assert_eq!(
            deny.metadata.namespace.as_deref(),
            Some("codepod-sandboxes")
        );
        let spec = deny.spec.clone().unwrap();
        let selector = spec.pod_selector.clone().unwrap_or_default();
        assert!(
            selector.match_labels.is_none() && selector.match_expressions.is_none(),
            "it selects every sandbox pod"
        );
        let types = spec.policy_types.clone().unwrap();
        assert!(types.contains(&"Ingress".to_owned()) && types.contains(&"Egress".to_owned()));
        assert!(
            spec.ingress.is_none() && spec.egress.is_none(),
            "no rule lets anything through"
        );
        // The one other policy for sandboxes: egress to the server pods' package index, on
        // its port only, no ingress, no address blocks.
        let sandbox_policies: Vec<&NetworkPolicy> = policies
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some("codepod-sandboxes"))
            .collect();
        assert_eq!(
            sandbox_policies.len(),
            2,
            "{overlay}: only the deny-all and the package index apply to sandboxes by default"
        );
        let index = named(&policies, "sandboxes-package-index")
            .spec
            .clone()
            .unwrap();
        assert_eq!(index.policy_types.clone().unwrap(), ["Egress"]);
        assert!(index.ingress.is_none());
        let rules = index.egress.clone().unwrap();
        assert_eq!(rules.len(), 1);
        let peers = rules[0].to.clone().unwrap();
        assert!(
            peers.iter().all(|peer| peer.ip_block.is_none()
                && peer
                    .pod_selector
                    .as_ref()
                    .and_then(|s| s.match_labels.clone())
                    .is_some_and(|labels| labels
                        .get("app.kubernetes.io/name")
                        .map(String::as_str)
                        == Some("codepod-server"))),
            "{overlay}: only the server pods: {peers:?}"
        );
        let ports: Vec<_> = rules[0]
            .ports
            .clone()
            .unwrap()
            .into_iter()
            .map(|port| (port.protocol, port.port))
            .collect();
        assert_eq!(
            ports,
            [(
                Some("TCP".to_owned()),
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(3141))
            )]
        );
        for policy in &policies {
            assert!(
                !egress_reaches(policy, metadata),
                "{overlay}: {:?} reaches the metadata address",
                policy.metadata.name
            );
        }
        // The server may reach the API server and Postgres.
        let server = named(&policies, "codepod-server");
        let ports: Vec<i32> = server
            .spec
            .clone()
            .unwrap()
            .egress
            .iter()
            .flatten()
            .flat_map(|rule| rule.ports.clone().unwrap_or_default())
            .filter_map(|port| match port.port {
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => Some(n),
                _ => None,
            })
            .collect();
        for needed in [53, 443, 5432, 6443] {
            assert!(
                ports.contains(&needed),
                "{overlay}: the server cannot reach port {needed}"
            );
        }
    }
    // The optional allow-list: the internet, never the metadata address or cluster ranges.
    let allow =
        of_kind::<NetworkPolicy>(&file("k8s/optional/sandbox-egress.yaml"), "NetworkPolicy");
    assert_eq!(allow.len(), 1);
    assert!(
        egress_reaches(&allow[0], Ipv4Addr::new(151, 101, 0, 223)),
        "a public address (PyPI)"
    );
    for private in [
        metadata,
        Ipv4Addr::new(10, 96, 0, 1),
        Ipv4Addr::new(172, 20, 0, 5),
        Ipv4Addr::new(192, 168, 1, 1),
        Ipv4Addr::new(127, 0, 0, 1),
    ] {
        assert!(!egress_reaches(&allow[0], private), "{private}");
    }
}

#[test]
fn the_server_deployment_drains_websockets_and_scales_within_bounds() {
    let objects = render("overlays/production");
    let deployments = of_kind::<Deployment>(&objects, "Deployment");
    let server = named(&deployments, "codepod-server");
    let spec = server.spec.clone().unwrap();
    assert_eq!(spec.replicas, Some(2));
    let rolling = spec.strategy.unwrap().rolling_update.unwrap();
    assert_eq!(
        rolling.max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(0))
    );
    let pod = spec.template.spec.unwrap();
    let container = &pod.containers[0];
    let probe_path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
        probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .clone()
            .unwrap()
    };
    assert_eq!(probe_path(&container.liveness_probe), "/healthz");
    assert_eq!(probe_path(&container.readiness_probe), "/readyz");
    let resources = container.resources.clone().unwrap();
    for key in ["cpu", "memory"] {
        assert!(resources.requests.as_ref().unwrap().contains_key(key));
        assert!(resources.limits.as_ref().unwrap().contains_key(key));
    }
    // The grace period covers the server's own WebSocket drain plus the preStop pause.
    let configs = of_kind::<ConfigMap>(&objects, "ConfigMap");
    let data = named(&configs, "codepod-config").data.clone().unwrap();
    let drain = server::parse_duration(&data["CODEPOD_SHUTDOWN_GRACE"])
        .unwrap()
        .as_secs();
    let pause = container
        .lifecycle
        .as_ref()
        .unwrap()
        .pre_stop
        .as_ref()
        .unwrap()
        .sleep
        .as_ref()
        .unwrap()
        .seconds;
    let grace = pod.termination_grace_period_seconds.unwrap();
    assert!(
        grace > i64::try_from(drain).unwrap() + pause,
        "{grace} s > {drain} s + {pause} s"
    );

    let hpa = &of_kind::<HorizontalPodAutoscaler>(&objects, "HorizontalPodAutoscaler")[0];
    let hpa_spec = hpa.spec.clone().unwrap();
    assert_eq!(
        (hpa_spec.min_replicas, hpa_spec.max_replicas),
        (Some(2), 10)
    );
    let targets: Vec<(String, i32)> = hpa_spec
        .metrics
        .unwrap()
        .into_iter()
        .map(|m| {
            let resource = m.resource.unwrap();
            (resource.name, resource.target.average_utilization.unwrap())
        })
        .collect();
    assert_eq!(targets, [("cpu".to_owned(), 70), ("memory".to_owned(), 80)]);
    let pdb = &of_kind::<PodDisruptionBudget>(&objects, "PodDisruptionBudget")[0];
    assert_eq!(
        pdb.spec
            .clone()
            .unwrap()
            .selector
            .unwrap()
            .match_labels
            .unwrap()["app.kubernetes.io/name"],
        "codepod-server"
    );
}

/// Turns `CODEPOD_*` settings into flags and has the server's own parser read them.
fn server_accepts(
    settings: &std::collections::BTreeMap<String, String>,
) -> Result<server::Config, String> {
    let command = server::Config::command();
    let mut args = vec!["codepod".to_owned()];
    for (key, value) in settings {
        if !key.starts_with("CODEPOD_") {
            continue;
        }
        let arg = command
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|env| env == key.as_str()))
            .ok_or_else(|| format!("{key} is not a setting the server knows"))?;
        let long = arg.get_long().unwrap();
        if arg.get_action().takes_values() {
            args.push(format!("--{long}={value}"));
        } else if value == "true" {
            args.push(format!("--{long}"));
        }
    }
    <server::Config as clap::Parser>::try_parse_from(args).map_err(|e| e.to_string())
}

#[test]
fn every_setting_in_the_manifests_is_one_the_server_accepts() {
    for overlay in OVERLAYS {
        let objects = render(overlay);
        for config in of_kind::<ConfigMap>(&objects, "ConfigMap") {
            let data = config.data.clone().unwrap_or_default();
            let parsed = server_accepts(&data).unwrap_or_else(|e| panic!("{overlay}: {e}"));
            assert_eq!(parsed.sandbox.runtime, server::RuntimeKind::Kube);
            assert_eq!(
                parsed.kube.kube_namespace, "codepod-sandboxes",
                "pods go where the Role allows"
            );
        }
        for secret in of_kind::<Secret>(&objects, "Secret") {
            server_accepts(&secret.string_data.clone().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{overlay}: {e}"));
        }
    }
    let example = of_kind::<Secret>(&file("k8s/base/secret.example.yaml"), "Secret");
    server_accepts(&example[0].string_data.clone().unwrap()).unwrap();
    // The check can fail: an unknown setting is refused.
    let bogus = [("CODEPOD_KUBE_WARM_POOLS".to_owned(), "2".to_owned())].into();
    assert!(server_accepts(&bogus).is_err());
    let bad_value = [(
        "CODEPOD_KUBE_TOLERATIONS".to_owned(),
        "{not json".to_owned(),
    )]
    .into();
    assert!(server_accepts(&bad_value).is_err());
}
