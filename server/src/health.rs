//! `GET /healthz` (the process is alive) and `GET /readyz` (it can serve users: its
//! dependencies are reachable). Orchestrators use the first to restart and the second to
//! route traffic.

use std::{path::PathBuf, sync::Arc};

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::Serialize;

/// What readiness depends on.
#[derive(Clone)]
pub struct Readiness {
    /// Must exist and be writable: it holds the database and the sandboxes' workspaces.
    pub data_dir: PathBuf,
    /// Must contain the built `pkg/` directory, or pages would load without their wasm.
    pub site_dir: PathBuf,
    /// Must answer a query.
    pub store: Arc<dyn store::Store>,
    /// The sandbox agent binary (local runtime): without it no workspace can start.
    pub agent_bin: Option<PathBuf>,
    /// What contains the sandboxes: not ready when they cannot start; ready but saying
    /// so when containment is degraded (the operator opted in).
    pub containment: sandbox::Containment,
}

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    status: &'static str,
    checks: Vec<Check>,
}

/// `GET /healthz`: 200 while the process can answer at all.
pub async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 when every dependency is usable, 503 with the failing checks otherwise.
pub async fn readyz(State(readiness): State<Readiness>) -> impl IntoResponse {
    let checks = vec![
        data_dir_check(&readiness).await,
        site_check(&readiness).await,
        store_check(&readiness).await,
        agent_check(&readiness).await,
        containment_check(&readiness.containment),
    ];
    let ready = checks.iter().all(|check| check.ok);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let report = Report {
        status: if ready { "ready" } else { "not ready" },
        checks,
    };
    (status, Json(report))
}

async fn data_dir_check(readiness: &Readiness) -> Check {
    // Writability is tested by writing, since permissions alone do not tell (read-only
    // mounts, full disks).
    let probe = readiness.data_dir.join(".readyz-probe");
    let ok = tokio::fs::write(&probe, b"ok").await.is_ok();
    let _removed = tokio::fs::remove_file(&probe).await;
    Check {
        name: "data_dir",
        ok,
        detail: (!ok).then(|| "the data directory is not writable".to_owned()),
    }
}

async fn store_check(readiness: &Readiness) -> Check {
    let result =
        tokio::time::timeout(std::time::Duration::from_secs(2), readiness.store.ping()).await;
    let ok = matches!(result, Ok(Ok(())));
    if !ok {
        tracing::warn!(
            backend = readiness.store.backend(),
            "readiness: the database does not answer"
        );
    }
    Check {
        name: "database",
        ok,
        detail: (!ok).then(|| "the database does not answer".to_owned()),
    }
}

async fn agent_check(readiness: &Readiness) -> Check {
    let ok = match &readiness.agent_bin {
        Some(path) => tokio::fs::metadata(path)
            .await
            .is_ok_and(|meta| meta.is_file()),
        None => true,
    };
    Check {
        name: "sandbox_agent",
        ok,
        detail: (!ok).then(|| "the codepod-agent binary is missing; run the build".to_owned()),
    }
}

fn containment_check(containment: &sandbox::Containment) -> Check {
    let missing = containment.missing.join("; ");
    Check {
        name: "sandbox_containment",
        ok: containment.starts,
        detail: match (containment.starts, missing.is_empty()) {
            (_, true) => None,
            (true, false) => Some(format!("degraded: {missing}")),
            (false, false) => Some(format!("sandboxes will not start: {missing}")),
        },
    }
}

async fn site_check(readiness: &Readiness) -> Check {
    let ok = tokio::fs::metadata(readiness.site_dir.join("pkg"))
        .await
        .is_ok_and(|meta| meta.is_dir());
    Check {
        name: "site_assets",
        ok,
        detail: (!ok).then(|| "the built site (pkg/) is missing; run the build".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncontained_sandboxes_make_the_server_unready_and_a_degraded_opt_in_says_so() {
        let missing = vec!["no cgroups".to_owned()];
        let refused = containment_check(&sandbox::Containment {
            layers: Vec::new(),
            missing: missing.clone(),
            starts: false,
        });
        assert!(!refused.ok);
        assert_eq!(
            refused.detail.as_deref(),
            Some("sandboxes will not start: no cgroups")
        );
        let degraded = containment_check(&sandbox::Containment {
            layers: Vec::new(),
            missing,
            starts: true,
        });
        assert!(degraded.ok);
        assert_eq!(degraded.detail.as_deref(), Some("degraded: no cgroups"));
        let full = containment_check(&sandbox::Containment {
            layers: vec!["seccomp".into()],
            missing: Vec::new(),
            starts: true,
        });
        assert!(full.ok && full.detail.is_none());
    }
}
