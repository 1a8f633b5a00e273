//! The workspace's Python language server (`ty`, run by the agent inside the sandbox),
//! spoken to as the browser does through its session with the agent: completion of pandas
//! members, documentation on resolve, diagnostics, definitions in other files, a second tab
//! sharing the server, a restart after the server is killed, and the server being the
//! first to go when memory runs out. Real bubblewrap, real agent, real ty.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a failure is a failed test"
)]

mod common;

use std::time::Duration;

use common::{TestApp, spawn_app_configured};
use model::TerminalId;
use sandbox::{
    Transport,
    agent::{TerminalEvent, TerminalSession},
};
use serde_json::{Value, json};

const MAIN: &str =
    "import os\nimport pandas as pd\nfrom util import helper\n\npd.\nhelper(undefined_name)\n";
const UTIL: &str = "def helper(x: int) -> int:\n    return x\n";

async fn session(app: &TestApp, workspace: &str) -> TerminalSession {
    let socket = app
        .data_dir()
        .join("sandboxes")
        .join(workspace)
        .join("agent.sock");
    TerminalSession::open(Transport::unix(&socket).await.unwrap())
        .await
        .unwrap()
}

/// One tab's language-server client.
struct Lsp {
    session: TerminalSession,
    next_id: i64,
    /// Requests the server side made of this client (registrations).
    asked: Vec<Value>,
    /// Notifications received (diagnostics).
    heard: Vec<Value>,
}

impl Lsp {
    fn new(session: TerminalSession) -> Self {
        Self {
            session,
            next_id: 1,
            asked: Vec::new(),
            heard: Vec::new(),
        }
    }

    async fn notify(&mut self, method: &str, params: Value) {
        let message = json!({ "jsonrpc": "2.0", "method": method, "params": params });
        self.session
            .sender
            .lsp(&serde_json::to_vec(&message).unwrap())
            .await
            .unwrap();
    }

    /// Sends a request and waits for its answer (the whole response).
    async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        self.session
            .sender
            .lsp(&serde_json::to_vec(&message).unwrap())
            .await
            .unwrap();
        loop {
            let event = tokio::time::timeout(Duration::from_secs(60), self.session.events.next())
                .await
                .expect("the language server answers")
                .expect("the session is open")
                .unwrap();
            let TerminalEvent::Lsp(data) = event else {
                continue;
            };
            let message: Value = serde_json::from_slice(&data).unwrap();
            if message.get("method").is_some() {
                if message.get("id").is_some() {
                    self.asked.push(message);
                } else {
                    self.heard.push(message);
                }
                continue;
            }
            if message["id"] == json!(id) {
                return message;
            }
        }
    }

    async fn initialize(&mut self, workspace: &str) -> Value {
        let capabilities = json!({
            "textDocument": {
                "diagnostic": { "dynamicRegistration": true },
                "completion": { "completionItem": { "snippetSupport": true } },
            },
        });
        let answer = self
            .request(
                "initialize",
                json!({ "processId": null, "rootUri": format!("file:///{workspace}"), "capabilities": capabilities }),
            )
            .await;
        self.notify("initialized", json!({})).await;
        answer
    }

    async fn open(&mut self, uri: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": "python", "version": 1, "text": text } }),
        )
        .await;
    }

    /// A request about one position of a document.
    async fn at(&mut self, method: &str, uri: &str, line: u32, character: u32) -> Value {
        self.request(
            method,
            json!({ "textDocument": { "uri": uri }, "position": { "line": line, "character": character } }),
        )
        .await
    }

    /// Completion labels at (line, character), retried while the server (re)starts.
    async fn labels(&mut self, uri: &str, line: u32, character: u32) -> (Vec<String>, Value) {
        for _ in 0..120 {
            let answer = self
                .at("textDocument/completion", uri, line, character)
                .await;
            let items = match &answer["result"] {
                Value::Array(items) => items.clone(),
                Value::Object(list) => list["items"].as_array().cloned().unwrap_or_default(),
                _ => Vec::new(),
            };
            if !items.is_empty() {
                let labels = items
                    .iter()
                    .map(|item| item["label"].as_str().unwrap_or_default().to_owned())
                    .collect();
                return (labels, Value::Array(items));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("no completion at {line}:{character}");
    }
}

/// Runs `command` in a shell in the sandbox and returns what it printed between markers.
async fn in_shell(app: &TestApp, workspace: &str, command: &str) -> String {
    let mut shell = session(app, workspace).await;
    shell.sender.open(200, 24).await.unwrap();
    let terminal: TerminalId = loop {
        if let TerminalEvent::Opened { terminal, .. } = shell.events.next().await.unwrap().unwrap()
        {
            break terminal;
        }
    };
    shell.sender.attach(terminal).await.unwrap();
    let typed = format!("echo '<'''BEGIN; {command}; echo END'''>'\r");
    shell
        .sender
        .input(terminal, typed.as_bytes())
        .await
        .unwrap();
    let mut seen = Vec::new();
    loop {
        let text = String::from_utf8_lossy(&seen).into_owned();
        if let (Some(start), Some(end)) = (text.find("<BEGIN"), text.find("END>")) {
            shell.sender.close(terminal).await.unwrap();
            return text[start + 6..end].trim().to_owned();
        }
        match tokio::time::timeout(Duration::from_secs(30), shell.events.next())
            .await
            .expect("the shell answers")
            .unwrap()
            .unwrap()
        {
            TerminalEvent::Output { data, .. } => seen.extend(data),
            _ => continue,
        }
    }
}

/// The pids of the sandbox's language servers.
const TY_PIDS: &str =
    "for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = ty ] && echo ${p#/proc/}; done";

#[tokio::test]
async fn the_language_server_completes_pandas_checks_code_and_survives_being_killed() {
    let app = spawn_app_configured(|_| {}).await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    for (path, text) in [("analysis.py", MAIN), ("util.py", UTIL)] {
        let (status, _) = ada
            .post("/api/files/write", json!({ "workspace": ws, "path": path, "content": { "encoding": "utf8", "data": text } }))
            .await;
        assert_eq!(status, 200);
    }
    let (_, started) = ada.post("/api/workspaces/start", json!({ "id": ws })).await;
    assert_eq!(started["state"], "ready", "{started}");
    let main = format!("file:///{ws}/analysis.py");

    let mut tab = Lsp::new(session(&app, &ws).await);
    let init = tab.initialize(&ws).await;
    let capabilities = &init["result"]["capabilities"];
    assert_eq!(capabilities["hoverProvider"], json!(true), "{init}");
    // Documentation comes on resolve.
    assert_eq!(
        capabilities["completionProvider"]["resolveProvider"],
        json!(true)
    );
    tab.open(&main, MAIN).await;

    // `pd.` lists pandas' members, without their documentation…
    let (labels, items) = tab.labels(&main, 4, 3).await;
    for wanted in ["DataFrame", "read_csv"] {
        assert!(labels.iter().any(|label| label == wanted), "{labels:?}");
    }
    let frame = items
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["label"] == "DataFrame")
        .unwrap()
        .clone();
    assert!(frame.get("documentation").is_none(), "{frame}");
    // … which resolving an item brings.
    let resolved = tab.request("completionItem/resolve", frame).await;
    let docs = resolved["result"]["documentation"].to_string();
    assert!(docs.contains("Two-dimensional"), "{resolved}");

    // Diagnostics (pulled, as ty registers them) name the undefined variable, with the
    // client's URIs.
    assert!(
        tab.asked
            .iter()
            .any(|asked| asked["method"] == "client/registerCapability"
                && asked["params"]["registrations"][0]["registerOptions"]["documentSelector"]
                    == json!([{ "language": "python" }])),
        "{:?}",
        tab.asked
    );
    let diagnostics = tab
        .request(
            "textDocument/diagnostic",
            json!({ "textDocument": { "uri": main } }),
        )
        .await;
    let items = diagnostics["result"]["items"].to_string();
    assert!(items.contains("undefined_name"), "{diagnostics}");
    // … and ruff's lint comes merged into the same answer: `os` is imported but unused.
    let lint = format!("file:///{ws}/lint.py");
    tab.open(&lint, "import os\n\nprint(1)\n").await;
    let diagnostics = tab
        .request(
            "textDocument/diagnostic",
            json!({ "textDocument": { "uri": lint } }),
        )
        .await;
    assert!(
        diagnostics["result"]["items"].to_string().contains("F401"),
        "{diagnostics}"
    );

    // Formatting is ruff's.
    let messy = format!("file:///{ws}/messy.py");
    tab.open(&messy, "x=1\ndef f( a ):\n  return a\n").await;
    let edits = tab
        .request(
            "textDocument/formatting",
            json!({ "textDocument": { "uri": messy }, "options": { "tabSize": 4, "insertSpaces": true } }),
        )
        .await;
    assert!(
        edits["result"]
            .to_string()
            .contains("def f(a):\\n    return a"),
        "{edits}"
    );
    // Its fixes come with ty's code actions.
    let actions = tab
        .request(
            "textDocument/codeAction",
            json!({ "textDocument": { "uri": main }, "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 0, "character": 9 } }, "context": { "diagnostics": [] } }),
        )
        .await;
    assert!(
        actions["result"]
            .to_string()
            .contains("source.organizeImports.ruff"),
        "{actions}"
    );

    // Go to definition lands in the other file, named as the browser names it.
    let definition = tab.at("textDocument/definition", &main, 5, 2).await;
    assert!(
        definition["result"]
            .to_string()
            .contains(&format!("file:///{ws}/util.py")),
        "{definition}"
    );

    // Library sources are readable for the editor's peek view, and nothing else is.
    let library = tab.at("textDocument/definition", &main, 1, 8).await;
    let pandas = library["result"]
        .as_array()
        .and_then(|found| found.first())
        .map(|location| {
            location["uri"]
                .as_str()
                .or(location["targetUri"].as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default();
    assert!(pandas.contains("/site-packages/pandas/"), "{library}");
    let source = tab
        .request("codepod/source", json!({ "uri": pandas }))
        .await;
    assert!(
        source["result"]["text"]
            .as_str()
            .is_some_and(|text| !text.is_empty()),
        "{source}"
    );
    for forbidden in [
        "file:///etc/passwd".to_owned(),
        format!("file:///{ws}/util.py"),
        "file:///workspace/util.py".to_owned(),
        "file:///proc/self/environ".to_owned(),
    ] {
        let refused = tab
            .request("codepod/source", json!({ "uri": forbidden }))
            .await;
        assert!(refused.get("error").is_some(), "{forbidden}: {refused}");
    }

    // A second tab shares the server: its edits are its own, and it is asked about them.
    let mut other = Lsp::new(session(&app, &ws).await);
    let again = other.initialize(&ws).await;
    assert_eq!(again["result"], init["result"]);
    other.open(&main, MAIN).await;
    other
        .notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": main, "version": 2 }, "contentChanges": [
                { "range": { "start": { "line": 4, "character": 3 }, "end": { "line": 4, "character": 3 } }, "text": "DataFrame().gr" },
            ] }),
        )
        .await;
    let (labels, _) = other.labels(&main, 4, 17).await;
    assert!(labels.iter().any(|label| label == "groupby"), "{labels:?}");
    // The first tab still sees its own text.
    let (labels, _) = tab.labels(&main, 4, 3).await;
    assert!(labels.iter().any(|label| label == "read_csv"), "{labels:?}");

    // A module written from the terminal is seen (the agent's watcher tells the server).
    let uses = format!("file:///{ws}/uses.py");
    tab.open(&uses, "import fresh\n\nfresh.\n").await;
    let diagnostics = tab
        .request(
            "textDocument/diagnostic",
            json!({ "textDocument": { "uri": uses } }),
        )
        .await;
    assert!(
        diagnostics
            .to_string()
            .contains("Cannot resolve imported module `fresh`"),
        "{diagnostics}"
    );
    in_shell(
        &app,
        &ws,
        "printf 'def shout():\\n    return 1\\n' > fresh.py",
    )
    .await;
    let mut seen = Value::Null;
    for _ in 0..50 {
        seen = tab.at("textDocument/completion", &uses, 2, 6).await;
        if seen.to_string().contains("\"shout\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(seen.to_string().contains("\"shout\""), "{seen}");

    // The server is the first process the kernel kills for memory; the shell is not.
    let pids = in_shell(&app, &ws, TY_PIDS).await;
    let pid = pids.lines().next().expect("ty runs").trim().to_owned();
    assert_eq!(
        in_shell(&app, &ws, &format!("cat /proc/{pid}/oom_score_adj")).await,
        "1000"
    );
    assert_eq!(in_shell(&app, &ws, "cat /proc/$$/oom_score_adj").await, "0");

    // Killed, it comes back, documents open again.
    in_shell(&app, &ws, &format!("kill -KILL {pid}")).await;
    let (labels, _) = tab.labels(&main, 4, 3).await;
    assert!(
        labels.iter().any(|label| label == "DataFrame"),
        "{labels:?}"
    );
    let now = in_shell(&app, &ws, TY_PIDS).await;
    assert!(
        !now.is_empty() && !now.lines().any(|line| line.trim() == pid),
        "{now}"
    );

    // Killed again and again, it is given up on (5 restarts a minute) — and the next client
    // that initializes (a reload) starts it afresh, though the answer is cached.
    let killer = format!(
        "for i in 1 2 3 4 5 6; do for p in $({TY_PIDS}); do kill -KILL $p; done; sleep 1; done"
    );
    in_shell(&app, &ws, &killer).await;
    assert_eq!(in_shell(&app, &ws, TY_PIDS).await, "");
    let mut reloaded = Lsp::new(session(&app, &ws).await);
    reloaded.initialize(&ws).await;
    reloaded.open(&main, MAIN).await;
    let (labels, _) = reloaded.labels(&main, 4, 3).await;
    assert!(
        labels.iter().any(|label| label == "DataFrame"),
        "{labels:?}"
    );
}

/// The claim of `oom_score_adj`, attacked: a user's program that takes the sandbox to its
/// memory cap with the language server holding pandas' analysis. The kernel kills the
/// server, the program finishes, and the agent starts the server again.
#[tokio::test]
async fn at_the_memory_cap_the_language_server_is_killed_not_the_users_program() {
    let app = spawn_app_configured(|config| config.sandbox.memory_bytes = 448 * 1024 * 1024).await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    let (status, _) = ada
        .post("/api/files/write", json!({ "workspace": ws, "path": "analysis.py", "content": { "encoding": "utf8", "data": MAIN } }))
        .await;
    assert_eq!(status, 200);
    let (_, started) = ada.post("/api/workspaces/start", json!({ "id": ws })).await;
    assert_eq!(started["state"], "ready", "{started}");
    let main = format!("file:///{ws}/analysis.py");
    let mut tab = Lsp::new(session(&app, &ws).await);
    tab.initialize(&ws).await;
    tab.open(&main, MAIN).await;
    let (labels, _) = tab.labels(&main, 4, 3).await;
    assert!(
        labels.iter().any(|label| label == "DataFrame"),
        "{labels:?}"
    );
    let before = in_shell(&app, &ws, TY_PIDS).await;
    assert!(!before.is_empty());

    // 400 MiB, written (so resident), with ty's ~100 MiB of its own: over the 448 MiB cap.
    // Alone, the program fits; the largest process, it is what the kernel would kill first
    // without the server's score.
    let program = "python3 -c \"b = b'x' * (400 << 20); import time; time.sleep(0.5); print('kept', len(b) >> 20)\"";
    assert_eq!(in_shell(&app, &ws, program).await, "kept 400");
    let (_, status) = ada
        .post("/api/workspaces/status", json!({ "id": ws }))
        .await;
    assert_eq!(status["state"], "ready", "{status}");

    // The server it killed is back, a new process.
    let (labels, _) = tab.labels(&main, 4, 3).await;
    assert!(
        labels.iter().any(|label| label == "DataFrame"),
        "{labels:?}"
    );
    let after = in_shell(&app, &ws, TY_PIDS).await;
    assert!(
        !after.is_empty()
            && after
                .lines()
                .all(|pid| !before.lines().any(|old| old == pid)),
        "before {before}, after {after}"
    );
}
