//! A scripted fake of the Kubernetes API server's pod endpoints, at the HTTP wire: it keeps
//! pods in memory (generated names, label selectors, merge patches with resource-version
//! preconditions, deletes), moves them to Ready the way a kubelet would, and injects the
//! faults a test asks for (quota, 5xx, image pull, unschedulable). It answers requests from
//! kube-rs through `tower_test::mock::pair` (no sockets) or behind a loopback axum server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    reason = "test support"
)]

pub mod loopback;

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex},
};

use http::{Method, Request, Response, StatusCode};
use k8s_openapi::{
    api::core::v1::{
        ContainerState, ContainerStateWaiting, ContainerStatus, Pod, PodCondition, PodStatus,
    },
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::client::Body;
use serde_json::{Value, json};

/// How a pod the fake creates comes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Startup {
    /// Ready after this many GETs of it (0: ready at once).
    ReadyAfter(u32),
    /// Its image cannot be pulled.
    ImagePull,
    /// The scheduler finds no node.
    Unschedulable,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub body: Value,
}

struct Stored {
    pod: Pod,
    gets_left: u32,
    startup: Startup,
}

#[derive(Default)]
struct State {
    pods: BTreeMap<String, Stored>,
    next_name: u64,
    resource_version: u64,
    startup: Option<Startup>,
    /// Before the next create, another replica creates a pod for the same workspace.
    race_next_create: bool,
    /// (method, status, message): the next request with that method fails so.
    faults: VecDeque<(Method, u16, String)>,
    seen: Vec<Seen>,
}

/// The fake API server.
#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

pub const NAMESPACE: &str = "sandboxes";

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The query's parameters, decoded, in order.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

/// Whether `labels` match a selector of `k=v`, `k!=v` and `k` terms.
fn matches(selector: &str, labels: &BTreeMap<String, String>) -> bool {
    selector.split(',').filter(|t| !t.is_empty()).all(|term| {
        if let Some((key, value)) = term.split_once("!=") {
            labels.get(key).map(String::as_str) != Some(value)
        } else if let Some((key, value)) = term.split_once('=') {
            labels.get(key).map(String::as_str) == Some(value)
        } else {
            labels.contains_key(term)
        }
    })
}

fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    })
}

fn condition(
    kind: &str,
    status: &str,
    reason: Option<&str>,
    message: Option<&str>,
) -> PodCondition {
    PodCondition {
        type_: kind.to_owned(),
        status: status.to_owned(),
        reason: reason.map(str::to_owned),
        message: message.map(str::to_owned),
        ..PodCondition::default()
    }
}

/// A status that says Running and Ready.
pub fn ready_status() -> PodStatus {
    PodStatus {
        phase: Some("Running".to_owned()),
        conditions: Some(vec![
            condition("PodScheduled", "True", None, None),
            condition("Ready", "True", None, None),
        ]),
        ..PodStatus::default()
    }
}

fn pending_status(startup: Startup) -> PodStatus {
    match startup {
        Startup::ReadyAfter(_) => PodStatus {
            phase: Some("Pending".to_owned()),
            conditions: Some(vec![condition("PodScheduled", "True", None, None)]),
            ..PodStatus::default()
        },
        Startup::ImagePull => PodStatus {
            phase: Some("Pending".to_owned()),
            container_statuses: Some(vec![ContainerStatus {
                name: "agent".to_owned(),
                ready: false,
                restart_count: 0,
                image: "registry.invalid/codepod-sandbox:missing".to_owned(),
                image_id: String::new(),
                state: Some(ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some("ImagePullBackOff".to_owned()),
                        message: Some(
                            "Back-off pulling image \"registry.invalid/codepod-sandbox:missing\""
                                .to_owned(),
                        ),
                    }),
                    ..ContainerState::default()
                }),
                ..ContainerStatus::default()
            }]),
            ..PodStatus::default()
        },
        Startup::Unschedulable => PodStatus {
            phase: Some("Pending".to_owned()),
            conditions: Some(vec![condition(
                "PodScheduled",
                "False",
                Some("Unschedulable"),
                Some("0/3 nodes are available: 3 Insufficient memory."),
            )]),
            ..PodStatus::default()
        },
    }
}

pub fn time_ago(ms: i64) -> Time {
    Time(jiff::Timestamp::from_millisecond(jiff::Timestamp::now().as_millisecond() - ms).unwrap())
}

impl FakeApi {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// How pods created from now on come up (default: ready after one GET).
    pub fn set_startup(&self, startup: Startup) {
        self.state().startup = Some(startup);
    }

    /// Before the next create, another replica wins a race: a ready pod for the same
    /// workspace, created a moment earlier, appears.
    pub fn race_next_create(&self) {
        self.state().race_next_create = true;
    }

    /// The next request with `method` fails with `code` and `message`.
    pub fn fail_next(&self, method: Method, code: u16, message: &str) {
        self.state()
            .faults
            .push_back((method, code, message.to_owned()));
    }

    /// Puts a pod in place as if it had been created earlier; returns its name.
    pub fn seed(&self, mut pod: Pod) -> String {
        let mut state = self.state();
        state.next_name += 1;
        state.resource_version += 1;
        let name = pod
            .metadata
            .name
            .clone()
            .unwrap_or_else(|| format!("seeded-{}", state.next_name));
        pod.metadata.name = Some(name.clone());
        pod.metadata.resource_version = Some(state.resource_version.to_string());
        if pod.metadata.creation_timestamp.is_none() {
            pod.metadata.creation_timestamp = Some(time_ago(0));
        }
        state.pods.insert(
            name.clone(),
            Stored {
                pod,
                gets_left: 0,
                startup: Startup::ReadyAfter(0),
            },
        );
        name
    }

    /// Deletes every pod, as someone with kubectl (or an eviction) would.
    pub fn delete_all(&self) {
        self.state().pods.clear();
    }

    pub fn pods(&self) -> Vec<Pod> {
        self.state().pods.values().map(|s| s.pod.clone()).collect()
    }

    pub fn pod(&self, name: &str) -> Option<Pod> {
        self.state().pods.get(name).map(|s| s.pod.clone())
    }

    /// How many requests with `method` arrived so far.
    pub fn count(&self, method: Method) -> usize {
        self.state()
            .seen
            .iter()
            .filter(|s| s.method == method)
            .count()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }

    /// Answers one request.
    pub fn answer(&self, method: Method, path: &str, query: &str, body: &[u8]) -> (u16, Value) {
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let mut state = self.state();
        state.seen.push(Seen {
            method: method.clone(),
            path: path.to_owned(),
            query: query.to_owned(),
            body: body.clone(),
        });
        if let Some(index) = state.faults.iter().position(|(m, _, _)| *m == method) {
            let (_, code, message) = state.faults.remove(index).unwrap();
            let reason = match code {
                403 => "Forbidden",
                409 => "Conflict",
                429 => "TooManyRequests",
                _ => "InternalError",
            };
            return (code, status_body(code, reason, &message));
        }
        let prefix = format!("/api/v1/namespaces/{NAMESPACE}/pods");
        let Some(rest) = path.strip_prefix(&prefix) else {
            return (
                404,
                status_body(404, "NotFound", &format!("no route {path}")),
            );
        };
        let name = rest.trim_start_matches('/');
        let params = query_pairs(query);
        let param = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        match (method, name.is_empty()) {
            (Method::GET, true) => {
                let selector = param("labelSelector").unwrap_or_default();
                let items: Vec<Value> = state
                    .pods
                    .values()
                    .filter(|s| {
                        matches(
                            &selector,
                            s.pod.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()),
                        )
                    })
                    .map(|s| serde_json::to_value(&s.pod).unwrap())
                    .collect();
                let version = state.resource_version.to_string();
                (
                    200,
                    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": version}, "items": items}),
                )
            }
            (Method::POST, true) => {
                let mut pod: Pod = serde_json::from_value(body).unwrap();
                assert!(
                    pod.metadata.name.is_none(),
                    "pod names are generated, never chosen"
                );
                if std::mem::take(&mut state.race_next_create) {
                    let mut twin = pod.clone();
                    state.resource_version += 1;
                    twin.metadata.name = Some("codepod-sandbox-other-replica".to_owned());
                    twin.metadata.resource_version = Some(state.resource_version.to_string());
                    twin.metadata.creation_timestamp = Some(time_ago(1000));
                    twin.status = Some(ready_status());
                    state.pods.insert(
                        "codepod-sandbox-other-replica".to_owned(),
                        Stored {
                            pod: twin,
                            gets_left: 0,
                            startup: Startup::ReadyAfter(0),
                        },
                    );
                }
                state.next_name += 1;
                state.resource_version += 1;
                let name = format!(
                    "{}{:05x}",
                    pod.metadata.generate_name.clone().expect("generateName"),
                    state.next_name
                );
                pod.metadata.name = Some(name.clone());
                pod.metadata.uid = Some(format!("uid-{}", state.next_name));
                pod.metadata.resource_version = Some(state.resource_version.to_string());
                pod.metadata.creation_timestamp = Some(time_ago(0));
                let startup = state.startup.unwrap_or(Startup::ReadyAfter(1));
                pod.status = Some(match startup {
                    Startup::ReadyAfter(0) => ready_status(),
                    other => pending_status(other),
                });
                let gets_left = match startup {
                    Startup::ReadyAfter(n) => n,
                    _ => u32::MAX,
                };
                let value = serde_json::to_value(&pod).unwrap();
                state.pods.insert(
                    name,
                    Stored {
                        pod,
                        gets_left,
                        startup,
                    },
                );
                (201, value)
            }
            (Method::GET, false) => match state.pods.get_mut(name) {
                None => (
                    404,
                    status_body(404, "NotFound", &format!("pods \"{name}\" not found")),
                ),
                Some(stored) => {
                    if let Startup::ReadyAfter(_) = stored.startup {
                        stored.gets_left = stored.gets_left.saturating_sub(1);
                        if stored.gets_left == 0 {
                            stored.pod.status = Some(ready_status());
                        }
                    }
                    (200, serde_json::to_value(&stored.pod).unwrap())
                }
            },
            (Method::PATCH, false) => {
                state.resource_version += 1;
                let version = state.resource_version.to_string();
                let Some(stored) = state.pods.get_mut(name) else {
                    return (
                        404,
                        status_body(404, "NotFound", &format!("pods \"{name}\" not found")),
                    );
                };
                let meta = &body["metadata"];
                if let Some(expected) = meta["resourceVersion"].as_str()
                    && stored.pod.metadata.resource_version.as_deref() != Some(expected)
                {
                    return (
                        409,
                        status_body(
                            409,
                            "Conflict",
                            "the object has been modified; please apply your changes to the latest version and try again",
                        ),
                    );
                }
                for (field, map) in [
                    ("labels", &mut stored.pod.metadata.labels),
                    ("annotations", &mut stored.pod.metadata.annotations),
                ] {
                    if let Some(changes) = meta[field].as_object() {
                        let map = map.get_or_insert_with(BTreeMap::new);
                        for (key, value) in changes {
                            match value.as_str() {
                                Some(value) => map.insert(key.clone(), value.to_owned()),
                                None => map.remove(key),
                            };
                        }
                    }
                }
                stored.pod.metadata.resource_version = Some(version);
                (200, serde_json::to_value(&stored.pod).unwrap())
            }
            (Method::DELETE, false) => match state.pods.remove(name) {
                None => (
                    404,
                    status_body(404, "NotFound", &format!("pods \"{name}\" not found")),
                ),
                Some(stored) => (200, serde_json::to_value(&stored.pod).unwrap()),
            },
            (method, _) => (
                405,
                status_body(405, "MethodNotAllowed", &format!("{method} {path}")),
            ),
        }
    }

    /// Serves kube-rs requests arriving through a `tower_test` mock until the client is gone.
    pub fn serve_mock(
        &self,
        mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let body = body.collect_bytes().await.unwrap();
                let (code, value) = this.answer(
                    parts.method,
                    parts.uri.path(),
                    parts.uri.query().unwrap_or(""),
                    &body,
                );
                respond.send_response(
                    Response::builder()
                        .status(StatusCode::from_u16(code).unwrap())
                        .header("content-type", "application/json")
                        .body(Body::from(serde_json::to_vec(&value).unwrap()))
                        .unwrap(),
                );
            }
        })
    }
}
