//! A package index made by the tests: the wheels `scripts/setup.sh` downloaded (listed in
//! `server/tests/wheels.txt`) served on loopback as a PEP 503 HTML simple index, the
//! upstream Codepod's own index is pointed at. It counts the files it served, so a test can
//! tell a cache hit from a download.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::get,
};
use sha2::{Digest, Sha256};

/// Where setup put the wheels.
pub fn wheels_dir() -> PathBuf {
    std::env::var_os("CODEPOD_TEST_WHEELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/codepod/wheels"))
}

pub struct WheelIndex {
    /// `http://127.0.0.1:<port>/simple/`
    pub url: String,
    pub files_served: Arc<AtomicUsize>,
    pub pages_served: Arc<AtomicUsize>,
}

struct Wheels {
    /// normalized project → (filename, sha256)
    projects: HashMap<String, Vec<(String, String)>>,
    files: HashMap<String, Vec<u8>>,
    files_served: Arc<AtomicUsize>,
    pages_served: Arc<AtomicUsize>,
}

fn normalize(name: &str) -> String {
    let mut out = String::new();
    let mut separator = false;
    for char in name.chars() {
        if matches!(char, '-' | '_' | '.') {
            separator = true;
        } else {
            if separator && !out.is_empty() {
                out.push('-');
            }
            separator = false;
            out.push(char.to_ascii_lowercase());
        }
    }
    out
}

impl WheelIndex {
    pub async fn start() -> Self {
        let dir = wheels_dir();
        let mut projects: HashMap<String, Vec<(String, String)>> = HashMap::new();
        let mut files = HashMap::new();
        let entries = std::fs::read_dir(&dir);
        assert!(
            entries.is_ok(),
            "{}: {entries:?} (run ./x setup)",
            dir.display()
        );
        for entry in entries.unwrap() {
            let entry = entry.unwrap();
            let filename = entry.file_name().to_string_lossy().into_owned();
            if !filename.ends_with(".whl") {
                continue;
            }
            let bytes = std::fs::read(entry.path()).unwrap();
            let sha256: String = Sha256::digest(&bytes)
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            let project = normalize(filename.split('-').next().unwrap());
            projects
                .entry(project)
                .or_default()
                .push((filename.clone(), sha256));
            files.insert(filename, bytes);
        }
        assert!(!projects.is_empty(), "no wheels in {}", dir.display());
        let files_served = Arc::new(AtomicUsize::new(0));
        let pages_served = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(Wheels {
            projects,
            files,
            files_served: files_served.clone(),
            pages_served: pages_served.clone(),
        });
        let router = Router::new()
            .route("/simple/{project}/", get(page))
            .route("/packages/{filename}", get(file))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            url: format!("http://{address}/simple/"),
            files_served,
            pages_served,
        }
    }

    pub fn files_served(&self) -> usize {
        self.files_served.load(Ordering::SeqCst)
    }
}

async fn page(State(wheels): State<Arc<Wheels>>, Path(project): Path<String>) -> Response {
    wheels.pages_served.fetch_add(1, Ordering::SeqCst);
    let Some(files) = wheels.projects.get(&normalize(&project)) else {
        return (StatusCode::NOT_FOUND, "no such project").into_response();
    };
    let links: String = files
        .iter()
        .map(|(filename, sha256)| {
            format!(
                "<a href=\"../../packages/{filename}#sha256={sha256}\" data-requires-python=\"&gt;=3.8\">{filename}</a><br/>\n"
            )
        })
        .collect();
    Html(format!(
        "<!DOCTYPE html><html><body><h1>Links for {project}</h1>\n{links}</body></html>"
    ))
    .into_response()
}

async fn file(State(wheels): State<Arc<Wheels>>, Path(filename): Path<String>) -> Response {
    match wheels.files.get(&filename) {
        Some(bytes) => {
            wheels.files_served.fetch_add(1, Ordering::SeqCst);
            bytes.clone().into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
