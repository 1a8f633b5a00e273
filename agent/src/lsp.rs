//! The workspace's Python language server (`ty server`), run by the agent beside the
//! terminals and shared by every client: started when a client first initializes, kept
//! while clients come and go (a reconnect finds it warm), restarted when it dies (a crash,
//! an out-of-memory kill) or when the packages it sees change (a `pip install --user`),
//! and gone with the sandbox.
//!
//! The agent speaks to the server as its one LSP client and to each connection as its
//! server, so that several browser tabs can share one process:
//!
//! - `initialize` is the agent's own, made once per process start (the first client's
//!   capabilities, the workspace as root); every client gets the cached answer.
//!   `workspace/configuration`, `client/registerCapability` and progress requests are
//!   answered here; the dynamic registrations clients need (pull diagnostics) are passed on
//!   to every client, the file watching one is served by the agent's own watcher
//!   (`workspace/didChangeWatchedFiles`).
//! - Request ids are the agent's on the server side and mapped back to the client's.
//! - Each client's copy of each open document is kept here; the server holds one copy,
//!   the last client to change it (its *owner*). A request about a document another client
//!   changed last first hands the server this client's text, so every answer is about the
//!   text the asker sees. A client that goes away closes its documents.
//! - Completion lists go out without their documentation (pandas' `DataFrame.` list is
//!   about 0.8 MB with it); `completionItem/resolve` is answered here from the full list.
//! - URIs under the client's root (`file:///<workspace id>/…`, the browser's names) and the
//!   sandbox's workspace directory are rewritten both ways.
//!
//! Memory is bounded: a message is at most [`protocol::MAX_LSP_MESSAGE`] bytes either way,
//! each client's queue holds [`CLIENT_QUEUE`] messages (a client that does not take them is
//! dropped from the server, as a terminal detaches a stalled client), and the server's input
//! queue [`SERVER_QUEUE`] (a server that stops reading is restarted).

use std::{
    collections::{HashMap, VecDeque},
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use protocol::{Frame, MAX_LSP_MESSAGE, Message};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    process::{Child, ChildStdin, ChildStdout, Command},
    sync::{broadcast, mpsc},
};

use crate::outbox::Outbox;

/// Messages waiting for one client.
pub const CLIENT_QUEUE: usize = 256;
/// Messages waiting for the server to read them.
pub const SERVER_QUEUE: usize = 256;
/// Restarts allowed within [`RESTART_WINDOW`] before the agent gives up until a client
/// initializes again.
const MAX_RESTARTS: usize = 5;
const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// How often the user's site-packages are looked at for a `pip install --user`.
const PACKAGES_POLL: Duration = Duration::from_secs(3);
/// File changes are passed to the server in batches at most this often.
const CHANGES_BATCH: Duration = Duration::from_millis(200);
/// The first of the agent's request ids to the server (which takes 32-bit integers only;
/// ids wrap around well before a collision could matter).
const AGENT_IDS: i64 = 1;

/// How the server is run.
#[derive(Debug, Clone)]
pub struct LspConfig {
    /// The server program (`ty`); `None` when the sandbox has none, and every client's
    /// `initialize` is answered with an error saying so.
    pub program: Option<PathBuf>,
    /// The formatter and linter (`ruff`, its `server`), run beside it: formatting, lint
    /// diagnostics and fixes; without it the editor has none of those.
    pub formatter: Option<PathBuf>,
    pub args: Vec<String>,
    /// The workspace directory, the server's root.
    pub workspace: PathBuf,
    /// The environment (complete; nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Where the agent writes the server's user configuration.
    pub config_dir: PathBuf,
    /// Directories holding installed packages that change under the server (the user's
    /// site-packages): a change restarts it.
    pub package_dirs: Vec<PathBuf>,
    /// Where library sources may be read from for the editor (`codepod/source`): the
    /// Python environment, the user site-packages and the system's Python library.
    pub library_roots: Vec<PathBuf>,
}

impl LspConfig {
    /// The configuration inside a sandbox: `ty` from `path` (the sandbox's `PATH`), the
    /// Python environment that holds it, and the user site-packages under `home`.
    pub fn for_sandbox(
        workspace: &Path,
        home: &Path,
        path: &str,
        env: &[(String, String)],
    ) -> Self {
        let find = |name: &str| {
            std::env::split_paths(path)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        };
        let (program, formatter) = (find("ty"), find("ruff"));
        // The environment the packages come from: the venv whose bin/ holds python3.
        let venv = std::env::split_paths(path)
            .filter(|dir| dir.join("python3").exists())
            .filter_map(|dir| dir.parent().map(Path::to_path_buf))
            .find(|prefix| prefix.join("pyvenv.cfg").is_file());
        let python_dir = venv.as_ref().and_then(|venv| {
            std::fs::read_dir(venv.join("lib"))
                .ok()?
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .find(|name| name.starts_with("python3"))
        });
        let user_site =
            python_dir.map(|name| home.join(".local/lib").join(name).join("site-packages"));
        let config_dir = std::env::temp_dir().join("codepod-lsp");
        let mut env: Vec<(String, String)> = env.to_vec();
        env.push((
            "XDG_CONFIG_HOME".to_owned(),
            config_dir.to_string_lossy().into_owned(),
        ));
        if let Some(venv) = &venv {
            env.push((
                "VIRTUAL_ENV".to_owned(),
                venv.to_string_lossy().into_owned(),
            ));
        }
        let mut library_roots: Vec<PathBuf> = venv.iter().cloned().collect();
        library_roots.extend(user_site.iter().cloned());
        library_roots.push(PathBuf::from("/usr/lib"));
        Self {
            library_roots,
            program,
            formatter,
            args: vec!["server".to_owned()],
            workspace: workspace.to_path_buf(),
            env,
            config_dir,
            package_dirs: user_site.into_iter().collect(),
        }
    }

    /// `ty.toml` for the server's user configuration: the user site-packages as an extra
    /// search path (ty does not look there on its own).
    fn user_config(&self) -> String {
        let paths: Vec<String> = self
            .package_dirs
            .iter()
            // ty refuses a path that does not exist; a later install restarts the server.
            .filter(|dir| dir.is_dir())
            .map(|dir| format!("{:?}", dir.to_string_lossy()))
            .collect();
        format!("[environment]\nextra-paths = [{}]\n", paths.join(", "))
    }
}

/// A handle on the language server, shared by the connections.
#[derive(Clone)]
pub struct Lsp {
    events: mpsc::UnboundedSender<Event>,
    next_client: Arc<AtomicU64>,
}

/// One connection's use of the language server.
pub struct LspClient {
    id: u64,
    lsp: Lsp,
    /// Whether this client has said anything yet (the supervisor learns of it then).
    joined: bool,
    out: Arc<Outbox>,
}

enum Event {
    Join {
        client: u64,
        sender: mpsc::Sender<Vec<u8>>,
    },
    FromClient {
        client: u64,
        data: Vec<u8>,
    },
    Leave {
        client: u64,
    },
    FromServer {
        slot: usize,
        generation: u64,
        message: Value,
    },
    ServerGone {
        slot: usize,
        generation: u64,
    },
    FilesChanged(Vec<(String, u8)>),
    PackagesChanged,
    /// A server stopped reading its input.
    Restart(usize),
}

impl Lsp {
    /// Starts the supervisor; `changes` is the workspace watcher's feed (`FileChanged`,
    /// `FileRemoved`), if there is one.
    pub fn start(config: LspConfig, changes: Option<broadcast::Sender<Message>>) -> Self {
        let (events, receiver) = mpsc::unbounded_channel();
        let lsp = Self {
            events: events.clone(),
            next_client: Arc::new(AtomicU64::new(1)),
        };
        if let Some(changes) = changes {
            tokio::spawn(forward_changes(
                changes.subscribe(),
                config.workspace.clone(),
                events.clone(),
            ));
        }
        if !config.package_dirs.is_empty() {
            tokio::spawn(watch_packages(config.package_dirs.clone(), events.clone()));
        }
        tokio::spawn(Supervisor::new(config, events).run(receiver));
        lsp
    }

    /// A client for one connection, whose messages go out through `out`.
    pub fn client(&self, out: Arc<Outbox>) -> LspClient {
        LspClient {
            id: self.next_client.fetch_add(1, Ordering::Relaxed),
            lsp: self.clone(),
            joined: false,
            out,
        }
    }
}

impl LspClient {
    /// Passes one message from the client on.
    pub fn send(&mut self, data: Vec<u8>) {
        if !self.joined {
            self.joined = true;
            let (sender, mut receiver) = mpsc::channel::<Vec<u8>>(CLIENT_QUEUE);
            let out = self.out.clone();
            tokio::spawn(async move {
                while let Some(data) = receiver.recv().await {
                    if out
                        .send(&Frame::new(0, Message::LspReceive { data }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
            let _ = self.lsp.events.send(Event::Join {
                client: self.id,
                sender,
            });
        }
        let _ = self.lsp.events.send(Event::FromClient {
            client: self.id,
            data,
        });
    }
}

impl Drop for LspClient {
    fn drop(&mut self) {
        if self.joined {
            let _ = self.lsp.events.send(Event::Leave { client: self.id });
        }
    }
}

/// A running server process.
struct Server {
    child: Child,
    input: mpsc::Sender<Vec<u8>>,
}

/// One of the servers the agent runs, and what it knows of it.
struct Slot {
    name: &'static str,
    program: Option<PathBuf>,
    server: Option<Server>,
    /// Counts process starts; events of an earlier process are ignored.
    generation: u64,
    /// The server's answer to the agent's `initialize`.
    init: Option<Value>,
    /// Why it is not running (after giving up).
    failed: Option<String>,
    /// The server's copy of each document: whose text it is, and its version there.
    docs: HashMap<String, ServerDoc>,
    restarts: VecDeque<Instant>,
}

/// A client's copy of an open document.
struct ClientDoc {
    text: String,
    language: String,
}

struct ClientState {
    sender: mpsc::Sender<Vec<u8>>,
    /// The client's name for the workspace root (`file:///<workspace id>`), from its
    /// `initialize`.
    root: Option<String>,
    initialized: bool,
    docs: HashMap<String, ClientDoc>,
    /// The last completion list, in full, for `completionItem/resolve`.
    completions: Vec<Value>,
}

struct ServerDoc {
    owner: u64,
    version: i64,
}

/// Who is waiting for the answer to a request the agent sent a server.
enum Asker {
    /// The agent's own `initialize`.
    Initialize,
    /// A part of a client's request (see [`Gather`]).
    Client(u64),
}

/// A client's request sent to one or more servers, and the answers so far.
struct Gather {
    client: u64,
    id: Value,
    method: String,
    remaining: usize,
    answers: Vec<Value>,
}

/// The servers a request goes to: `TY`, `RUFF`, or both (their answers merged).
const TY: usize = 0;
const RUFF: usize = 1;

fn route(method: &str, params: &Value) -> &'static [usize] {
    match method {
        "textDocument/formatting" | "textDocument/rangeFormatting" | "codeAction/resolve" => {
            &[RUFF]
        }
        "workspace/executeCommand"
            if params["command"]
                .as_str()
                .is_some_and(|command| command.starts_with("ruff.")) =>
        {
            &[RUFF]
        }
        "textDocument/codeAction" | "textDocument/diagnostic" => &[TY, RUFF],
        _ => &[TY],
    }
}

/// One answer from the parts of a request that went to several servers.
fn merge(method: &str, answers: Vec<Value>) -> Value {
    let mut answers: Vec<Value> = answers;
    if answers.len() == 1 {
        return answers.pop().unwrap_or(Value::Null);
    }
    let results: Vec<&Value> = answers
        .iter()
        .filter_map(|answer| answer.get("result"))
        .collect();
    if results.is_empty() {
        // Every part failed: the first failure speaks for them.
        return answers.into_iter().next().unwrap_or(Value::Null);
    }
    let result = match method {
        "textDocument/diagnostic" => {
            let items: Vec<Value> = results
                .iter()
                .filter_map(|result| result["items"].as_array())
                .flatten()
                .cloned()
                .collect();
            json!({ "kind": "full", "items": items })
        }
        _ => Value::Array(
            results
                .iter()
                .filter_map(|result| result.as_array())
                .flatten()
                .cloned()
                .collect(),
        ),
    };
    json!({ "jsonrpc": "2.0", "result": result })
}

struct Supervisor {
    config: LspConfig,
    events: mpsc::UnboundedSender<Event>,
    slots: Vec<Slot>,
    /// The answer to `initialize` given to clients: ty's capabilities with ruff's added.
    init_result: Option<Value>,
    client_capabilities: Option<Value>,
    /// Clients whose `initialize` (its id) waits for the servers'.
    waiting: Vec<(u64, Value)>,
    clients: HashMap<u64, ClientState>,
    /// (slot, the agent's request id) → who waits.
    pending: HashMap<(usize, i64), Asker>,
    gathers: HashMap<u64, Gather>,
    next_gather: u64,
    next_id: i64,
    /// Dynamic registrations clients are told of (ty's, all but file watching).
    registrations: Vec<Value>,
}

fn is_request(message: &Value) -> bool {
    message.get("method").is_some() && message.get("id").is_some()
}

fn response(id: Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

fn error_response(id: Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

/// Replaces the prefix `from` by `to` in every string and object key of `value`.
fn rewrite(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(text) => {
            if let Some(rest) = text.strip_prefix(from)
                && (rest.is_empty() || rest.starts_with('/'))
            {
                *text = format!("{to}{rest}");
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rewrite(item, from, to)),
        Value::Object(map) => {
            let renamed: Vec<String> = map
                .keys()
                .filter(|key| {
                    key.strip_prefix(from)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
                })
                .cloned()
                .collect();
            for key in renamed {
                if let Some(entry) = map.remove(&key) {
                    map.insert(format!("{to}{}", &key[from.len()..]), entry);
                }
            }
            map.values_mut().for_each(|item| rewrite(item, from, to));
        }
        _ => {}
    }
}

/// Byte offset in `text` of an LSP position (line, UTF-16 character), clamped to the text.
fn offset(text: &str, line: u64, character: u64) -> usize {
    let mut start = 0;
    for _ in 0..line {
        match text[start..].find('\n') {
            Some(end) => start += end + 1,
            None => return text.len(),
        }
    }
    let line_end = text[start..]
        .find('\n')
        .map_or(text.len(), |end| start + end);
    let mut units = 0;
    for (index, ch) in text[start..line_end].char_indices() {
        if units >= character {
            return start + index;
        }
        units += ch.len_utf16() as u64;
    }
    line_end
}

/// Applies one `TextDocumentContentChangeEvent` to `text`.
fn apply_change(text: &mut String, change: &Value) {
    let Some(new_text) = change.get("text").and_then(Value::as_str) else {
        return;
    };
    let Some(range) = change.get("range") else {
        *text = new_text.to_owned();
        return;
    };
    let position = |key: &str| {
        let point = range.get(key)?;
        Some(offset(
            text,
            point.get("line")?.as_u64()?,
            point.get("character")?.as_u64()?,
        ))
    };
    if let (Some(start), Some(end)) = (position("start"), position("end")) {
        let (start, end) = (start.min(end), start.max(end));
        text.replace_range(start..end, new_text);
    }
}

/// Turns every `dynamicRegistration` in client capabilities off.
fn no_dynamic_registration(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if key == "dynamicRegistration" {
                    *item = json!(false);
                } else {
                    no_dynamic_registration(item);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(no_dynamic_registration),
        _ => {}
    }
}

/// ty's capabilities, with what ruff adds: formatting, its code actions and commands.
fn merge_capabilities(ty: &Value, ruff: Option<&Value>) -> Value {
    let mut result = ty.clone();
    let capabilities = &mut result["capabilities"];
    // Documentation comes on resolve (see `trim_completions`).
    if capabilities["completionProvider"].is_object() {
        capabilities["completionProvider"]["resolveProvider"] = json!(true);
    }
    let Some(ruff) = ruff.map(|ruff| &ruff["capabilities"]) else {
        return result;
    };
    for key in [
        "documentFormattingProvider",
        "documentRangeFormattingProvider",
    ] {
        if !ruff[key].is_null() {
            capabilities[key] = ruff[key].clone();
        }
    }
    let mut kinds: Vec<Value> = capabilities["codeActionProvider"]["codeActionKinds"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for kind in ruff["codeActionProvider"]["codeActionKinds"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if !kinds.contains(kind) {
            kinds.push(kind.clone());
        }
    }
    capabilities["codeActionProvider"] =
        json!({ "codeActionKinds": kinds, "resolveProvider": true });
    let mut commands: Vec<Value> = capabilities["executeCommandProvider"]["commands"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    commands.extend(
        ruff["executeCommandProvider"]["commands"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    capabilities["executeCommandProvider"] = json!({ "commands": commands });
    result
}

impl Supervisor {
    fn new(config: LspConfig, events: mpsc::UnboundedSender<Event>) -> Self {
        let slot = |name, program| Slot {
            name,
            program,
            server: None,
            generation: 0,
            init: None,
            failed: None,
            docs: HashMap::new(),
            restarts: VecDeque::new(),
        };
        let slots = vec![
            slot("ty", config.program.clone()),
            slot("ruff", config.formatter.clone()),
        ];
        Self {
            config,
            events,
            slots,
            init_result: None,
            client_capabilities: None,
            waiting: Vec::new(),
            clients: HashMap::new(),
            pending: HashMap::new(),
            gathers: HashMap::new(),
            next_gather: 1,
            next_id: AGENT_IDS,
            registrations: Vec::new(),
        }
    }

    /// A fresh request id of the agent's (32-bit, as LSP integers are).
    fn take_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id = if id >= i64::from(i32::MAX) {
            AGENT_IDS
        } else {
            id + 1
        };
        id
    }

    fn server_root(&self) -> String {
        format!("file://{}", self.config.workspace.display())
    }

    /// Clients that have finished their `initialize` (notifications and registrations go
    /// to them).
    fn initialized_clients(&self) -> Vec<u64> {
        self.clients
            .iter()
            .filter(|(_, state)| state.initialized)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Clients that have `uri` open.
    fn readers(&self, uri: &str) -> Vec<u64> {
        self.clients
            .iter()
            .filter(|(_, state)| state.docs.contains_key(uri))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Slots whose server has answered `initialize`.
    fn ready(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&slot| self.slots[slot].server.is_some() && self.slots[slot].init.is_some())
            .collect()
    }

    async fn run(mut self, mut events: mpsc::UnboundedReceiver<Event>) {
        while let Some(event) = events.recv().await {
            match event {
                Event::Join { client, sender } => {
                    self.clients.insert(
                        client,
                        ClientState {
                            sender,
                            root: None,
                            initialized: false,
                            docs: HashMap::new(),
                            completions: Vec::new(),
                        },
                    );
                }
                Event::FromClient { client, data } => {
                    if data.len() > MAX_LSP_MESSAGE {
                        continue;
                    }
                    match serde_json::from_slice::<Value>(&data) {
                        Ok(message) if message.is_object() => {
                            self.on_client(client, message).await;
                        }
                        _ => tracing::debug!(
                            "a client sent a language-server message that is not JSON"
                        ),
                    }
                }
                Event::Leave { client } => self.leave(client),
                Event::FromServer {
                    slot,
                    generation,
                    message,
                } => {
                    if self
                        .slots
                        .get(slot)
                        .is_some_and(|s| s.generation == generation)
                    {
                        self.on_server(slot, message).await;
                    }
                }
                Event::ServerGone { slot, generation } => {
                    if self
                        .slots
                        .get(slot)
                        .is_some_and(|s| s.generation == generation)
                    {
                        self.server_gone(slot).await;
                    }
                }
                Event::FilesChanged(changes) => {
                    let changes: Vec<Value> = changes
                        .into_iter()
                        .map(|(uri, kind)| json!({ "uri": uri, "type": kind }))
                        .collect();
                    for slot in self.ready() {
                        self.send_server(
                            slot,
                            json!({
                                "jsonrpc": "2.0",
                                "method": "workspace/didChangeWatchedFiles",
                                "params": { "changes": changes },
                            }),
                        );
                    }
                }
                Event::Restart(slot) => {
                    if self.slots[slot].server.is_some() {
                        self.stop_server(slot).await;
                        self.start(slot);
                    }
                }
                Event::PackagesChanged => {
                    if self.slots[TY].server.is_some() {
                        tracing::info!(
                            "installed packages changed; restarting the language server"
                        );
                        self.stop_server(TY).await;
                        self.start(TY);
                    }
                }
            }
        }
    }

    /// Sends `message` to a client, rewriting the server's workspace URIs to its names.
    fn send_client(&mut self, client: u64, mut message: Value) {
        let root = self.server_root();
        let Some(state) = self.clients.get(&client) else {
            return;
        };
        if let Some(client_root) = &state.root {
            rewrite(&mut message, &root, client_root);
        }
        let Ok(data) = serde_json::to_vec(&message) else {
            return;
        };
        if data.len() > MAX_LSP_MESSAGE {
            tracing::warn!(
                bytes = data.len(),
                "dropping an over-long language-server message"
            );
            if let Some(id) = message.get("id").filter(|_| !is_request(&message)) {
                let error = error_response(id.clone(), -32603, "the answer is too large");
                self.send_client(client, error);
            }
            return;
        }
        if state.sender.try_send(data).is_err() {
            tracing::warn!(
                client,
                "a client fell behind its language-server messages; dropping it"
            );
            self.leave(client);
        }
    }

    fn send_server(&mut self, slot: usize, message: Value) {
        let Some(server) = &self.slots[slot].server else {
            return;
        };
        let Ok(data) = serde_json::to_vec(&message) else {
            return;
        };
        if server.input.try_send(data).is_err() {
            tracing::warn!(
                server = self.slots[slot].name,
                "a language server stopped reading; restarting it"
            );
            let _ = self.events.send(Event::Restart(slot));
        }
    }

    async fn on_client(&mut self, client: u64, mut message: Value) {
        let Some(state) = self.clients.get(&client) else {
            return;
        };
        if let Some(client_root) = state.root.clone() {
            rewrite(&mut message, &client_root, &self.server_root());
        }
        let method = message
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let id = message.get("id").cloned();
        let Some(method) = method else {
            // A client's answer to a request passed on to it (registrations): nothing
            // waits for it.
            return;
        };
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        match (method.as_str(), id) {
            ("initialize", Some(id)) => self.initialize(client, id, &params),
            ("initialized", None) => {
                if let Some(state) = self.clients.get_mut(&client) {
                    state.initialized = true;
                }
                let registrations = self.registrations.clone();
                if !registrations.is_empty() {
                    self.register_with(client, registrations);
                }
            }
            ("shutdown", Some(id)) => self.send_client(client, response(id, Value::Null)),
            ("exit", None) => {}
            ("textDocument/didOpen", None) => {
                let document = &params["textDocument"];
                let (Some(uri), Some(text)) = (document["uri"].as_str(), document["text"].as_str())
                else {
                    return;
                };
                let language = document["languageId"].as_str().unwrap_or("python");
                if let Some(state) = self.clients.get_mut(&client) {
                    state.docs.insert(
                        uri.to_owned(),
                        ClientDoc {
                            text: text.to_owned(),
                            language: language.to_owned(),
                        },
                    );
                }
                for slot in self.ready() {
                    self.hand_over(slot, uri, client);
                }
            }
            ("textDocument/didChange", None) => {
                let Some(uri) = params["textDocument"]["uri"].as_str() else {
                    return;
                };
                let changes = params["contentChanges"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let Some(doc) = self
                    .clients
                    .get_mut(&client)
                    .and_then(|state| state.docs.get_mut(uri))
                else {
                    return;
                };
                for change in &changes {
                    apply_change(&mut doc.text, change);
                }
                for slot in self.ready() {
                    match self.slots[slot].docs.get_mut(uri) {
                        Some(server_doc) if server_doc.owner == client => {
                            server_doc.version += 1;
                            let version = server_doc.version;
                            self.send_server(
                                slot,
                                json!({
                                    "jsonrpc": "2.0",
                                    "method": "textDocument/didChange",
                                    "params": {
                                        "textDocument": { "uri": uri, "version": version },
                                        "contentChanges": changes,
                                    },
                                }),
                            );
                        }
                        _ => self.hand_over(slot, uri, client),
                    }
                }
            }
            ("textDocument/didClose", None) => {
                if let Some(uri) = params["textDocument"]["uri"].as_str() {
                    self.close_doc(client, uri);
                }
            }
            ("$/cancelRequest", None) => {
                let wanted = params.get("id").cloned().unwrap_or(Value::Null);
                let gathers: Vec<u64> = self
                    .gathers
                    .iter()
                    .filter(|(_, gather)| gather.client == client && gather.id == wanted)
                    .map(|(key, _)| *key)
                    .collect();
                let parts: Vec<(usize, i64)> = self
                    .pending
                    .iter()
                    .filter(|(_, asker)| matches!(asker, Asker::Client(g) if gathers.contains(g)))
                    .map(|(key, _)| *key)
                    .collect();
                for (slot, ours) in parts {
                    self.send_server(
                        slot,
                        json!({
                            "jsonrpc": "2.0",
                            "method": "$/cancelRequest",
                            "params": { "id": ours },
                        }),
                    );
                }
            }
            // The text of a library file (go to definition into pandas, say), read-only, for
            // the editor to show: only below the library roots, only UTF-8 text.
            ("codepod/source", Some(id)) => {
                let answer = match params["uri"].as_str().map(|uri| self.library_source(uri)) {
                    Some(Ok(text)) => response(id, json!({ "text": text })),
                    Some(Err(why)) => error_response(id, -32602, why),
                    None => error_response(id, -32602, "no uri"),
                };
                self.send_client(client, answer);
            }
            ("completionItem/resolve", Some(id)) => {
                let index = params["data"]["codepod"].as_u64();
                let item = index.and_then(|index| {
                    let state = self.clients.get(&client)?;
                    let mut item = state.completions.get(usize::try_from(index).ok()?)?.clone();
                    item["data"] = json!({ "codepod": index });
                    Some(item)
                });
                self.send_client(client, response(id, item.unwrap_or(params)));
            }
            (_, Some(id)) => self.request(client, id, method, message),
            (_, None) => {
                for slot in self.ready() {
                    self.send_server(slot, message.clone());
                }
            }
        }
    }

    /// A library file's text, if `uri` names a readable text file below a library root.
    fn library_source(&self, uri: &str) -> Result<String, &'static str> {
        let path = uri.strip_prefix("file://").ok_or("not a file URI")?;
        let path = std::fs::canonicalize(path).map_err(|_| "no such file")?;
        let allowed = self
            .config
            .library_roots
            .iter()
            .any(|root| std::fs::canonicalize(root).is_ok_and(|root| path.starts_with(root)));
        if !allowed {
            return Err("only library sources can be read");
        }
        let metadata = std::fs::metadata(&path).map_err(|_| "no such file")?;
        if !metadata.is_file() || metadata.len() > MAX_LSP_MESSAGE as u64 / 2 {
            return Err("not a readable source file");
        }
        let bytes = std::fs::read(&path).map_err(|_| "cannot read it")?;
        String::from_utf8(bytes).map_err(|_| "not text")
    }

    /// The servers' `initialize` (once per start); the client's is answered from it.
    fn initialize(&mut self, client: u64, id: Value, params: &Value) {
        if let Some(state) = self.clients.get_mut(&client) {
            state.root = params["rootUri"]
                .as_str()
                .map(|root| root.trim_end_matches('/').to_owned());
        }
        if self.client_capabilities.is_none() {
            self.client_capabilities = Some(params["capabilities"].clone());
        }
        // A server that is not running (never started, or given up on after restarting
        // too often) gets a fresh start with each client that initializes.
        for slot in 0..self.slots.len() {
            if self.slots[slot].server.is_none() {
                self.slots[slot].restarts.clear();
                self.slots[slot].failed = None;
                self.start(slot);
            }
        }
        // The capabilities do not change between starts: a cached answer is still true.
        if let Some(result) = self.init_result.clone() {
            self.send_client(client, response(id, result));
            return;
        }
        self.waiting.push((client, id));
        self.answer_waiting();
    }

    /// Starts a server (again) and sends the agent's `initialize`.
    fn start(&mut self, slot: usize) {
        let now = Instant::now();
        let restarts = &mut self.slots[slot].restarts;
        while restarts
            .front()
            .is_some_and(|at| now.duration_since(*at) > RESTART_WINDOW)
        {
            restarts.pop_front();
        }
        if restarts.len() >= MAX_RESTARTS {
            self.give_up(
                slot,
                "it keeps stopping; it starts again when the editor reconnects",
            );
            return;
        }
        restarts.push_back(now);
        let generation = self.slots[slot].generation + 1;
        self.slots[slot].generation = generation;
        self.slots[slot].init = None;
        self.slots[slot].docs.clear();
        let started = match &self.slots[slot].program {
            Some(program) => spawn(&self.config, program, slot, generation, &self.events),
            None => Err(format!(
                "there is no {} in this sandbox",
                self.slots[slot].name
            )),
        };
        match started {
            Ok(server) => self.slots[slot].server = Some(server),
            Err(error) => {
                self.give_up(slot, &error);
                return;
            }
        }
        let root = self.server_root();
        let mut capabilities = self.client_capabilities.clone().unwrap_or(json!({}));
        capabilities["workspace"]["configuration"] = json!(true);
        capabilities["workspace"]["didChangeWatchedFiles"] = json!({ "dynamicRegistration": true });
        capabilities["workspace"]["workspaceFolders"] = json!(true);
        if slot == RUFF {
            // Static capabilities only, to merge into ty's (registered dynamically, they
            // would reach the editor as providers of their own, asking both servers).
            no_dynamic_registration(&mut capabilities);
        }
        let id = self.take_id();
        self.pending.insert((slot, id), Asker::Initialize);
        self.send_server(
            slot,
            json!({
                "jsonrpc": "2.0",
                "id": id,
                "method": "initialize",
                "params": {
                    "processId": std::process::id(),
                    "clientInfo": { "name": "codepod-agent" },
                    "rootUri": root,
                    "workspaceFolders": [{ "uri": root, "name": "workspace" }],
                    "capabilities": capabilities,
                },
            }),
        );
    }

    fn give_up(&mut self, slot: usize, why: &str) {
        let name = self.slots[slot].name;
        tracing::warn!(server = name, why, "language server not running");
        self.slots[slot].failed = Some(format!("{name}: {why}"));
        self.slots[slot].server = None;
        self.answer_waiting();
    }

    /// Answers the clients waiting in `initialize` once every server has answered or
    /// failed: with the merged capabilities if ty runs, else with why it does not.
    fn answer_waiting(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        let settled = self
            .slots
            .iter()
            .all(|slot| slot.init.is_some() || slot.failed.is_some());
        if !settled {
            return;
        }
        let answer = match &self.slots[TY].init {
            Some(ty) => {
                let result = merge_capabilities(ty, self.slots[RUFF].init.as_ref());
                self.init_result = Some(result.clone());
                Ok(result)
            }
            None => Err(self.slots[TY]
                .failed
                .clone()
                .unwrap_or_else(|| "the Python language server did not start".to_owned())),
        };
        for (client, id) in std::mem::take(&mut self.waiting) {
            let message = match &answer {
                Ok(result) => response(id, result.clone()),
                Err(why) => error_response(id, -32603, why),
            };
            self.send_client(client, message);
        }
    }

    async fn stop_server(&mut self, slot: usize) {
        if let Some(mut server) = self.slots[slot].server.take() {
            let _ = server.child.start_kill();
            let _ = server.child.wait().await;
        }
        self.slots[slot].generation += 1;
        self.fail_pending(slot, "the language server restarted");
    }

    /// Answers the parts of requests that `slot` will not answer any more.
    fn fail_pending(&mut self, slot: usize, why: &str) {
        let parts: Vec<(usize, i64)> = self
            .pending
            .keys()
            .filter(|(at, _)| *at == slot)
            .copied()
            .collect();
        for key in parts {
            if let Some(Asker::Client(gather)) = self.pending.remove(&key) {
                self.part_answered(gather, error_response(Value::Null, -32603, why));
            }
        }
    }

    async fn server_gone(&mut self, slot: usize) {
        let status = match self.slots[slot].server.take() {
            Some(mut server) => server.child.wait().await.ok(),
            None => None,
        };
        tracing::warn!(
            server = self.slots[slot].name,
            ?status,
            "a language server stopped"
        );
        self.slots[slot].generation += 1;
        self.fail_pending(slot, "the language server stopped; it is starting again");
        if !self.clients.is_empty() || !self.waiting.is_empty() {
            self.start(slot);
        } else if slot == TY {
            self.init_result = None;
        }
    }

    /// Makes `client`'s text of `uri` the one `slot`'s server has.
    fn hand_over(&mut self, slot: usize, uri: &str, client: u64) {
        let Some(doc) = self
            .clients
            .get(&client)
            .and_then(|state| state.docs.get(uri))
        else {
            return;
        };
        let (text, language) = (doc.text.clone(), doc.language.clone());
        if self.slots[slot].init.is_none() {
            // Opened with the rest once the server is ready.
            return;
        }
        let message = match self.slots[slot].docs.get_mut(uri) {
            Some(server_doc) => {
                server_doc.owner = client;
                server_doc.version += 1;
                json!({
                    "jsonrpc": "2.0",
                    "method": "textDocument/didChange",
                    "params": {
                        "textDocument": { "uri": uri, "version": server_doc.version },
                        "contentChanges": [{ "text": text }],
                    },
                })
            }
            None => {
                self.slots[slot].docs.insert(
                    uri.to_owned(),
                    ServerDoc {
                        owner: client,
                        version: 1,
                    },
                );
                json!({
                    "jsonrpc": "2.0",
                    "method": "textDocument/didOpen",
                    "params": {
                        "textDocument": {
                            "uri": uri, "languageId": language, "version": 1, "text": text,
                        },
                    },
                })
            }
        };
        self.send_server(slot, message);
    }

    fn close_doc(&mut self, client: u64, uri: &str) {
        if let Some(state) = self.clients.get_mut(&client) {
            state.docs.remove(uri);
        }
        let other = self.readers(uri).first().copied();
        for slot in 0..self.slots.len() {
            if self.slots[slot]
                .docs
                .get(uri)
                .is_none_or(|doc| doc.owner != client)
            {
                continue;
            }
            match other {
                Some(other) => self.hand_over(slot, uri, other),
                None => {
                    self.slots[slot].docs.remove(uri);
                    self.send_server(
                        slot,
                        json!({
                            "jsonrpc": "2.0",
                            "method": "textDocument/didClose",
                            "params": { "textDocument": { "uri": uri } },
                        }),
                    );
                }
            }
        }
    }

    fn leave(&mut self, client: u64) {
        let uris: Vec<String> = self
            .clients
            .get(&client)
            .map(|state| state.docs.keys().cloned().collect())
            .unwrap_or_default();
        for uri in uris {
            self.close_doc(client, &uri);
        }
        self.clients.remove(&client);
        self.waiting.retain(|(waiting, _)| *waiting != client);
        let gone: Vec<u64> = self
            .gathers
            .iter()
            .filter(|(_, gather)| gather.client == client)
            .map(|(key, _)| *key)
            .collect();
        for gather in gone {
            self.gathers.remove(&gather);
        }
    }

    /// A client's request: about one of its documents, each server is asked about the
    /// client's text.
    fn request(&mut self, client: u64, id: Value, method: String, message: Value) {
        let uri = message["params"]["textDocument"]["uri"]
            .as_str()
            .map(str::to_owned);
        if let Some(uri) = &uri {
            let open = self
                .clients
                .get(&client)
                .is_some_and(|state| state.docs.contains_key(uri));
            if !open {
                // A model the server does not know (another language, a library file).
                let empty = match method.as_str() {
                    "textDocument/diagnostic" => json!({ "kind": "full", "items": [] }),
                    _ => Value::Null,
                };
                self.send_client(client, response(id, empty));
                return;
            }
        }
        let slots: Vec<usize> = route(&method, &message["params"])
            .iter()
            .copied()
            .filter(|slot| self.slots[*slot].init.is_some() && self.slots[*slot].server.is_some())
            .collect();
        if slots.is_empty() {
            let why = self.slots[route(&method, &message["params"])[0]]
                .failed
                .clone()
                .unwrap_or_else(|| "the Python language server is starting".to_owned());
            self.send_client(client, error_response(id, -32603, &why));
            return;
        }
        let gather = self.next_gather;
        self.next_gather += 1;
        self.gathers.insert(
            gather,
            Gather {
                client,
                id,
                method,
                remaining: slots.len(),
                answers: Vec::new(),
            },
        );
        for slot in slots {
            if let Some(uri) = &uri
                && self.slots[slot]
                    .docs
                    .get(uri)
                    .is_none_or(|doc| doc.owner != client)
            {
                self.hand_over(slot, uri, client);
            }
            let ours = self.take_id();
            let mut part = message.clone();
            part["id"] = json!(ours);
            self.pending.insert((slot, ours), Asker::Client(gather));
            self.send_server(slot, part);
        }
    }

    /// One server's answer to a part of a client's request; the last part sends the
    /// merged answer.
    fn part_answered(&mut self, gather: u64, answer: Value) {
        let Some(state) = self.gathers.get_mut(&gather) else {
            return;
        };
        state.answers.push(answer);
        state.remaining -= 1;
        if state.remaining > 0 {
            return;
        }
        let Some(Gather {
            client,
            id,
            method,
            answers,
            ..
        }) = self.gathers.remove(&gather)
        else {
            return;
        };
        let mut message = merge(&method, answers);
        if method == "textDocument/completion"
            && let Some(result) = message.get_mut("result")
        {
            self.trim_completions(client, result);
        }
        message["id"] = id;
        self.send_client(client, message);
    }

    /// Passes dynamic registrations on to one client (its answers are not waited for).
    fn register_with(&mut self, client: u64, registrations: Vec<Value>) {
        let id = self.take_id();
        self.send_client(
            client,
            json!({
                "jsonrpc": "2.0",
                "id": id,
                "method": "client/registerCapability",
                "params": { "registrations": registrations },
            }),
        );
    }

    async fn on_server(&mut self, slot: usize, message: Value) {
        let method = message
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match (method, message.get("id").cloned()) {
            (None, Some(id)) => {
                let Some(asker) = id.as_i64().and_then(|id| self.pending.remove(&(slot, id)))
                else {
                    return;
                };
                match asker {
                    Asker::Initialize => self.initialized(slot, message).await,
                    Asker::Client(gather) => self.part_answered(gather, message),
                }
            }
            (Some(method), Some(id)) => {
                let params = message.get("params").cloned().unwrap_or(Value::Null);
                let answer = match method.as_str() {
                    "workspace/configuration" => {
                        let items = params["items"].as_array().map_or(0, Vec::len);
                        response(id, Value::Array(vec![json!({}); items]))
                    }
                    "client/registerCapability" => {
                        if slot == TY {
                            self.registered(&params);
                        }
                        response(id, Value::Null)
                    }
                    "client/unregisterCapability" => {
                        let gone: Vec<&str> = params["unregisterations"]
                            .as_array()
                            .map(|list| list.iter().filter_map(|u| u["id"].as_str()).collect())
                            .unwrap_or_default();
                        if slot == TY {
                            self.registrations
                                .retain(|r| !gone.contains(&r["id"].as_str().unwrap_or_default()));
                        }
                        response(id, Value::Null)
                    }
                    "workspace/applyEdit" => response(id, json!({ "applied": false })),
                    "window/workDoneProgress/create"
                    | "workspace/diagnostic/refresh"
                    | "workspace/inlayHint/refresh"
                    | "workspace/semanticTokens/refresh"
                    | "workspace/codeLens/refresh"
                    | "window/showMessageRequest"
                    | "window/showDocument" => response(id, Value::Null),
                    _ => error_response(id, -32601, "not served by Codepod's agent"),
                };
                self.send_server(slot, answer);
            }
            (Some(method), None) => match method.as_str() {
                "textDocument/publishDiagnostics" if slot == TY => {
                    let uri = message["params"]["uri"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    for client in self.readers(&uri) {
                        self.send_client(client, message.clone());
                    }
                }
                "window/logMessage"
                | "$/progress"
                | "$/logTrace"
                | "telemetry/event"
                | "window/showMessage"
                | "textDocument/publishDiagnostics" => {}
                _ if slot == TY => {
                    for client in self.initialized_clients() {
                        self.send_client(client, message.clone());
                    }
                }
                _ => {}
            },
            (None, None) => {}
        }
    }

    /// ty's dynamic registrations: file watching is the agent's; the rest go to clients,
    /// for Python documents only (the editor has models of every language).
    fn registered(&mut self, params: &Value) {
        let mut passed = Vec::new();
        for mut registration in params["registrations"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            if registration["method"] == "workspace/didChangeWatchedFiles" {
                continue;
            }
            let options = &mut registration["registerOptions"];
            if options.is_object() && options["documentSelector"].is_null() {
                options["documentSelector"] = json!([{ "language": "python" }]);
            }
            passed.push(registration);
        }
        if passed.is_empty() {
            return;
        }
        self.registrations.extend(passed.iter().cloned());
        for client in self.initialized_clients() {
            self.register_with(client, passed.clone());
        }
    }

    /// A server answered the agent's `initialize`: waiting clients get the merged answer,
    /// and the documents clients have open are opened on it.
    async fn initialized(&mut self, slot: usize, message: Value) {
        let Some(result) = message.get("result").cloned() else {
            let why = message["error"]["message"]
                .as_str()
                .unwrap_or("it did not initialize")
                .to_owned();
            self.stop_server(slot).await;
            self.give_up(slot, &why);
            return;
        };
        self.slots[slot].init = Some(result);
        self.send_server(
            slot,
            json!({ "jsonrpc": "2.0", "method": "initialized", "params": {} }),
        );
        let open: Vec<(String, u64)> = self
            .clients
            .iter()
            .flat_map(|(id, state)| state.docs.keys().map(move |uri| (uri.clone(), *id)))
            .collect();
        for (uri, client) in open {
            if !self.slots[slot].docs.contains_key(&uri) {
                self.hand_over(slot, &uri, client);
            }
        }
        self.answer_waiting();
    }

    /// Keeps the full items for `completionItem/resolve` and sends them without their
    /// documentation.
    fn trim_completions(&mut self, client: u64, result: &mut Value) {
        let items = match result {
            Value::Array(items) => items,
            Value::Object(list) => match list.get_mut("items") {
                Some(Value::Array(items)) => items,
                _ => return,
            },
            _ => return,
        };
        let full = items.clone();
        for (index, item) in items.iter_mut().enumerate() {
            if let Some(item) = item.as_object_mut() {
                item.remove("documentation");
                item.insert("data".to_owned(), json!({ "codepod": index }));
            }
        }
        if let Some(state) = self.clients.get_mut(&client) {
            state.completions = full;
        }
    }
}

/// Starts the server process with its reader and writer tasks.
fn spawn(
    config: &LspConfig,
    program: &Path,
    slot: usize,
    generation: u64,
    events: &mpsc::UnboundedSender<Event>,
) -> Result<Server, String> {
    let ty_config = config.config_dir.join("ty");
    std::fs::create_dir_all(&ty_config)
        .and_then(|()| std::fs::write(ty_config.join("ty.toml"), config.user_config()))
        .map_err(|error| format!("cannot write the language server's configuration: {error}"))?;
    let mut command = Command::new(program);
    command
        .args(&config.args)
        .current_dir(&config.workspace)
        .env_clear()
        .envs(config.env.iter().map(|(key, value)| (key, value)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|error| format!("cannot start {}: {error}", program.display()))?;
    // The first process the kernel kills when the sandbox runs out of memory: the user's
    // programs and shells go on, and the agent starts the server again. (Raising one's own
    // child's score needs no privilege; it is set before the server has loaded anything.)
    if let Some(pid) = child.id()
        && let Err(error) = std::fs::write(format!("/proc/{pid}/oom_score_adj"), "1000")
    {
        tracing::warn!(%error, "cannot make the language server the first to go under memory pressure");
    }
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("the language server has no stdio".to_owned());
    };
    let (input, queue) = mpsc::channel(SERVER_QUEUE);
    tokio::spawn(write_server(stdin, queue));
    tokio::spawn(read_server(stdout, slot, generation, events.clone()));
    tracing::info!(pid = child.id(), program = %program.display(), "language server started");
    Ok(Server { child, input })
}

async fn write_server(mut stdin: ChildStdin, mut queue: mpsc::Receiver<Vec<u8>>) {
    while let Some(data) = queue.recv().await {
        let header = format!("Content-Length: {}\r\n\r\n", data.len());
        if stdin.write_all(header.as_bytes()).await.is_err()
            || stdin.write_all(&data).await.is_err()
            || stdin.flush().await.is_err()
        {
            return;
        }
    }
}

/// Reads the server's messages until it closes its output (or breaks the framing).
async fn read_server(
    stdout: ChildStdout,
    slot: usize,
    generation: u64,
    events: mpsc::UnboundedSender<Event>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = String::new();
    loop {
        let mut length = None;
        loop {
            line.clear();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => {
                    let _ = events.send(Event::ServerGone { slot, generation });
                    return;
                }
                Ok(_) => {}
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse::<usize>().ok();
            }
            if line.len() > 1024 {
                break;
            }
        }
        let Some(length) = length.filter(|length| *length <= MAX_LSP_MESSAGE) else {
            tracing::warn!("the language server broke its framing");
            let _ = events.send(Event::ServerGone { slot, generation });
            return;
        };
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            let _ = events.send(Event::ServerGone { slot, generation });
            return;
        }
        if let Ok(message) = serde_json::from_slice::<Value>(&body) {
            let _ = events.send(Event::FromServer {
                slot,
                generation,
                message,
            });
        }
    }
}

/// Passes the workspace watcher's changes on as `(uri, kind)` batches: 1 created (the first
/// change this agent sees of a path — a server ignores a "changed" file it never knew), 2
/// changed, 3 deleted.
async fn forward_changes(
    mut changes: broadcast::Receiver<Message>,
    workspace: PathBuf,
    events: mpsc::UnboundedSender<Event>,
) {
    let root = format!("file://{}", workspace.display());
    // Bounded by the workspace's own file limit (what the watcher reports is in it).
    let mut known: std::collections::HashSet<String> = std::collections::HashSet::new();
    loop {
        let first = match changes.recv().await {
            Ok(message) => message,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let mut batch = Vec::new();
        let mut push = |message: Message| match message {
            Message::FileChanged {
                path,
                is_dir: false,
                ..
            } => {
                let kind = if known.insert(path.to_string()) { 1 } else { 2 };
                batch.push((format!("{root}/{path}"), kind));
            }
            Message::FileRemoved { path } => {
                known.remove(path.as_str());
                batch.push((format!("{root}/{path}"), 3));
            }
            _ => {}
        };
        push(first);
        tokio::time::sleep(CHANGES_BATCH).await;
        while let Ok(message) = changes.try_recv() {
            push(message);
        }
        if !batch.is_empty() && events.send(Event::FilesChanged(batch)).is_err() {
            return;
        }
    }
}

/// Reports a change of the package directories (a `pip install --user`).
async fn watch_packages(dirs: Vec<PathBuf>, events: mpsc::UnboundedSender<Event>) {
    let stamp = |dirs: &[PathBuf]| -> Vec<Option<std::time::SystemTime>> {
        dirs.iter()
            .map(|dir| std::fs::metadata(dir).and_then(|m| m.modified()).ok())
            .collect()
    };
    let mut last = stamp(&dirs);
    loop {
        tokio::time::sleep(PACKAGES_POLL).await;
        let now = stamp(&dirs);
        if now != last {
            last = now;
            if events.send(Event::PackagesChanged).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_utf16_units() {
        let text = "a😀b\nsecond\n";
        // 😀 is two UTF-16 units and four bytes.
        assert_eq!(offset(text, 0, 1), 1);
        assert_eq!(offset(text, 0, 3), 5);
        assert_eq!(offset(text, 1, 3), 10);
        assert_eq!(offset(text, 1, 99), 13);
        assert_eq!(offset(text, 9, 0), text.len());
    }

    #[test]
    fn incremental_changes_apply_like_the_editor_did() {
        let mut text = "import pandas as pd\npd.\n".to_owned();
        apply_change(
            &mut text,
            &json!({ "range": { "start": { "line": 1, "character": 3 }, "end": { "line": 1, "character": 3 } }, "text": "read_csv" }),
        );
        assert_eq!(text, "import pandas as pd\npd.read_csv\n");
        apply_change(
            &mut text,
            &json!({ "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 1, "character": 0 } }, "text": "" }),
        );
        assert_eq!(text, "pd.read_csv\n");
        apply_change(&mut text, &json!({ "text": "whole" }));
        assert_eq!(text, "whole");
    }

    #[test]
    fn uris_are_rewritten_in_values_and_keys_but_not_in_look_alikes() {
        let mut message = json!({
            "uri": "file:///w1/a.py",
            "changes": { "file:///w1/b.py": [] },
            "other": "file:///w10/a.py",
            "library": "file:///opt/codepod/python/lib/x.py",
        });
        rewrite(&mut message, "file:///w1", "file:///workspace");
        assert_eq!(message["uri"], "file:///workspace/a.py");
        assert!(message["changes"].get("file:///workspace/b.py").is_some());
        assert_eq!(message["other"], "file:///w10/a.py");
        assert_eq!(message["library"], "file:///opt/codepod/python/lib/x.py");
    }
}
