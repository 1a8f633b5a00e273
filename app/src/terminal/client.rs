//! The browser side of the IDE WebSocket for terminals: one socket per tab, one xterm.js
//! per terminal, reattach and replay after every (re)connect.
//!
//! Flow control: output is acknowledged once xterm.js has parsed it (its write callback,
//! asked for only when an [`Acknowledger`] says one is due), so the server never gets more than
//! [`ACK_WINDOW`](model::ws::ACK_WINDOW) ahead of what is on screen — a flood waits in the paused PTY, not in
//! this tab's memory.

use std::{
    cell::{Cell, RefCell},
    collections::{BTreeMap, HashMap},
    rc::{Rc, Weak},
    time::Duration,
};

use js_sys::{ArrayBuffer, Uint8Array};
use leptos::prelude::*;
use model::{
    SandboxState, WorkspaceId,
    ws::{
        Acknowledger, CHANNEL_HEADER, ClientMessage, LSP_CHANNEL, PLOT_CHANNEL, ServerMessage,
        TerminalId, TerminalInfo, encode_data,
    },
};
use wasm_bindgen::{JsCast, prelude::*};
use web_sys::{BinaryType, CloseEvent, HtmlElement, MessageEvent, ResizeObserver, WebSocket};

use super::{Command, Link, Tab, xterm};

use model::ws::close;
/// Reconnect delays, then the last one forever.
const BACKOFF_MS: [u64; 6] = [250, 500, 1000, 2000, 4000, 8000];

/// The terminal's colours, matching the page's (style/main.css) in either scheme.
fn theme(dark: bool) -> js_sys::Object {
    if dark {
        xterm::object(&[
            ("background", "#1e1f24".into()),
            ("foreground", "#e4e6eb".into()),
            ("cursor", "#8ab4f8".into()),
        ])
    } else {
        xterm::object(&[
            ("background", "#f6f7f9".into()),
            ("foreground", "#1f2328".into()),
            ("cursor", "#1a73e8".into()),
            ("selectionBackground", "#b3d4fc".into()),
        ])
    }
}

/// One terminal: its xterm.js, the element it draws in, and its listeners.
struct Term {
    xterm: xterm::Terminal,
    fit: xterm::FitAddon,
    element: HtmlElement,
    listeners: Vec<xterm::Disposable>,
    _on_data: Closure<dyn FnMut(String)>,
    _on_resize: Closure<dyn FnMut(JsValue)>,
    _on_key: Closure<dyn FnMut(web_sys::KeyboardEvent) -> bool>,
    _on_link: Closure<dyn FnMut(String, u32)>,
}

impl Drop for Term {
    fn drop(&mut self) {
        for listener in &self.listeners {
            listener.dispose();
        }
        self.xterm.dispose();
        self.element.remove();
    }
}

/// The socket and its event handlers (kept alive as long as the socket).
struct Connection {
    socket: WebSocket,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.socket.set_onmessage(None);
        self.socket.set_onclose(None);
        let _ = self.socket.close();
    }
}

/// The panel's size watcher and its callback.
type Observer = (ResizeObserver, Closure<dyn FnMut()>);

pub struct Client {
    workspace: WorkspaceId,
    body: HtmlElement,
    tabs: RwSignal<Vec<Tab>>,
    active: RwSignal<Option<TerminalId>>,
    link: RwSignal<Link>,
    on_files: Callback<ServerMessage>,
    terms: RefCell<BTreeMap<TerminalId, Term>>,
    connection: RefCell<Option<Connection>>,
    attempts: Cell<u32>,
    /// Counts sockets, so that a late write callback of the last one acknowledges nothing.
    generation: Cell<u64>,
    /// Terminal output taken in on this socket, and when to acknowledge it.
    acks: Cell<Acknowledger>,
    /// Terminals whose scrollback is being replayed (by attach number): xterm.js answers
    /// queries it parses (device attributes, cursor position, colours) through `onData`,
    /// and answers to a replay's queries must not reach the shell — the program that asked
    /// is long gone, and the shell would run them as a command.
    replaying: RefCell<HashMap<TerminalId, u64>>,
    attaches: Cell<u64>,
    disposed: Cell<bool>,
    observer: RefCell<Option<Observer>>,
    /// Recolours every terminal when the OS switches between light and dark.
    scheme: RefCell<Option<crate::vendor::SchemeWatch>>,
    /// Where figures shown in the sandbox go.
    plots: crate::plots::PlotsState,
    /// Opens a workspace file at a line (a traceback's link).
    on_open: Callback<(String, u32)>,
    /// Where the tab of a Run being restarted goes (by its [`super::run_key`]): where its
    /// last run was.
    replacing: RefCell<HashMap<String, usize>>,
    /// Set when keys are typed while the sandbox is down (the banner offers a start).
    typed_while_down: RwSignal<bool>,
    /// Input for the next shell that opens (a `cd` for "Open in Terminal").
    pending_input: RefCell<Option<String>>,
    this: Weak<Client>,
}

/// The panel's state the client writes, and where it sends what is not its own.
#[derive(Clone, Copy)]
pub struct Panel {
    pub tabs: RwSignal<Vec<Tab>>,
    pub active: RwSignal<Option<TerminalId>>,
    pub link: RwSignal<Link>,
    pub on_files: Callback<ServerMessage>,
    pub plots: crate::plots::PlotsState,
    pub on_open: Callback<(String, u32)>,
    pub typed_while_down: RwSignal<bool>,
}

/// The line that ends a run: green ✓ for success, red ✗ with the exit code for a failure,
/// then its time and peak memory, dimmed.
fn run_summary(exit_code: i32, wall_ms: u64, peak_rss_kib: u64) -> String {
    let outcome = if exit_code == 0 {
        "\x1b[1;32m✓ finished\x1b[0m".to_owned()
    } else {
        format!("\x1b[1;31m✗ failed with exit code {exit_code}\x1b[0m")
    };
    format!(
        "\r\n{outcome}\x1b[2m · {wall_ms} ms · peak {} MiB\x1b[0m\r\n",
        peak_rss_kib / 1024
    )
}

fn ws_url(workspace: WorkspaceId) -> String {
    let location = window().location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    let host = location.host().unwrap_or_default();
    format!("{scheme}://{host}/ws/workspaces/{workspace}")
}

impl Client {
    pub fn new(workspace: WorkspaceId, body: HtmlElement, panel: Panel) -> Rc<Self> {
        let Panel {
            tabs,
            active,
            link,
            on_files,
            plots,
            on_open,
            typed_while_down,
        } = panel;
        Rc::new_cyclic(|this| Self {
            workspace,
            body,
            tabs,
            active,
            link,
            on_files,
            terms: RefCell::default(),
            connection: RefCell::default(),
            attempts: Cell::new(0),
            generation: Cell::new(0),
            acks: Cell::default(),
            replaying: RefCell::default(),
            attaches: Cell::new(0),
            disposed: Cell::new(false),
            observer: RefCell::default(),
            scheme: RefCell::default(),
            plots,
            on_open,
            replacing: RefCell::default(),
            typed_while_down,
            pending_input: RefCell::default(),
            this: this.clone(),
        })
    }

    /// Loads xterm.js, watches the panel's size, and connects.
    pub async fn start(self: Rc<Self>) {
        if let Err(error) = crate::vendor::load(&["xterm.css", "xterm.js"]).await {
            self.link.set(Link::Failed(error));
            return;
        }
        if self.disposed.get() {
            return;
        }
        let weak = self.this.clone();
        let on_resize = Closure::<dyn FnMut()>::new(move || {
            if let Some(client) = weak.upgrade() {
                client.fit_active();
            }
        });
        if let Ok(observer) = ResizeObserver::new(on_resize.as_ref().unchecked_ref()) {
            observer.observe(&self.body);
            *self.observer.borrow_mut() = Some((observer, on_resize));
        }
        let weak = self.this.clone();
        *self.scheme.borrow_mut() = crate::vendor::SchemeWatch::new(move |dark| {
            if let Some(client) = weak.upgrade() {
                for term in client.terms.borrow().values() {
                    term.xterm.set_theme(&theme(dark));
                }
            }
        });
        self.connect();
    }

    /// Closes the socket (the shells keep running) and frees every terminal.
    pub fn dispose(&self) {
        self.disposed.set(true);
        if let Some((observer, _)) = self.observer.borrow_mut().take() {
            observer.disconnect();
        }
        self.scheme.borrow_mut().take();
        self.connection.borrow_mut().take();
        crate::editor::lsp::socket_closed();
        self.terms.borrow_mut().clear();
    }

    pub fn command(&self, command: Command) {
        match command {
            Command::NewTerminal => self.open(),
            Command::Select(terminal) => self.select(terminal),
            Command::Close(terminal) => {
                self.send(&ClientMessage::Close { terminal });
                self.forget(terminal);
            }
            Command::Restart => {
                self.attempts.set(0);
                self.connect();
            }
            Command::Activity => self.send(&ClientMessage::Activity),
            Command::Reveal(folder) => {
                let path = if folder.is_empty() {
                    "/workspace".to_owned()
                } else {
                    format!("/workspace/{folder}")
                };
                // Ctrl+U first: whatever was half-typed at the prompt goes.
                let line = format!("\x15cd '{}'\r", path.replace('\'', "'\\''"));
                let live = |tab: &Tab| tab.command.is_none() && tab.exited.is_none();
                let active = self.active.get_untracked();
                let shell = self.tabs.with_untracked(|tabs| {
                    tabs.iter()
                        .find(|tab| Some(tab.terminal) == active && live(tab))
                        .or_else(|| tabs.iter().find(|tab| live(tab)))
                        .map(|tab| tab.terminal)
                });
                match shell {
                    Some(terminal) => {
                        self.select(terminal);
                        self.send_input(terminal, &line);
                    }
                    None => {
                        *self.pending_input.borrow_mut() = Some(line);
                        self.open();
                    }
                }
            }
            Command::Run(ref command) => {
                // One tab per command (per file): the last run of it makes way.
                let previous = self.tabs.with_untracked(|tabs| {
                    tabs.iter()
                        .enumerate()
                        .find(|(_, tab)| {
                            tab.command
                                .as_deref()
                                .is_some_and(|old| super::run_key(old) == super::run_key(command))
                        })
                        .map(|(index, tab)| (index, tab.terminal))
                });
                if let Some((index, terminal)) = previous {
                    self.send(&ClientMessage::Close { terminal });
                    self.forget(terminal);
                    self.replacing
                        .borrow_mut()
                        .insert(super::run_key(command).to_owned(), index);
                }
                let (cols, rows) = self.size();
                self.send(&ClientMessage::Run {
                    command: command.clone(),
                    cols,
                    rows,
                });
            }
        }
    }

    fn connect(&self) {
        if self.disposed.get() {
            return;
        }
        self.connection.borrow_mut().take();
        let Ok(socket) = WebSocket::new(&ws_url(self.workspace)) else {
            self.link
                .set(Link::Failed("cannot open a WebSocket".into()));
            return;
        };
        socket.set_binary_type(BinaryType::Arraybuffer);
        self.generation.set(self.generation.get() + 1);
        self.acks.set(Acknowledger::default());
        if self.attempts.get() == 0 {
            self.link.set(Link::Connecting);
        }
        let weak = self.this.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if let Some(client) = weak.upgrade() {
                client.received(&event.data());
            }
        });
        let weak = self.this.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            if let Some(client) = weak.upgrade() {
                client.closed(event.code());
            }
        });
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        *self.connection.borrow_mut() = Some(Connection {
            socket,
            _on_message: on_message,
            _on_close: on_close,
        });
    }

    fn closed(&self, code: u16) {
        self.connection.borrow_mut().take();
        crate::editor::lsp::socket_closed();
        if self.disposed.get() {
            return;
        }
        match code {
            close::SANDBOX_STOPPED => self.link.set(Link::Stopped),
            close::SIGNED_OUT => self.link.set(Link::SignedOut),
            close::START_FAILED => {
                if !matches!(self.link.get_untracked(), Link::Failed(_)) {
                    self.link
                        .set(Link::Failed("the sandbox did not start".into()));
                }
            }
            _ => {
                let attempt = self.attempts.get();
                self.attempts.set(attempt + 1);
                self.link.set(Link::Reconnecting {
                    attempt: attempt + 1,
                });
                let delay = BACKOFF_MS[(attempt as usize).min(BACKOFF_MS.len() - 1)];
                let weak = self.this.clone();
                set_timeout(
                    move || {
                        if let Some(client) = weak.upgrade() {
                            client.connect();
                        }
                    },
                    Duration::from_millis(delay),
                );
            }
        }
    }

    fn send(&self, message: &ClientMessage) {
        if let Some(connection) = self.connection.borrow().as_ref()
            && connection.socket.ready_state() == WebSocket::OPEN
            && let Ok(text) = serde_json::to_string(message)
        {
            let _ = connection.socket.send_with_str(&text);
        }
    }

    /// One message for the workspace's language server.
    fn send_lsp(&self, data: &[u8]) {
        if let Some(connection) = self.connection.borrow().as_ref()
            && connection.socket.ready_state() == WebSocket::OPEN
        {
            let _ = connection
                .socket
                .send_with_u8_array(&encode_data(LSP_CHANNEL, data));
        }
    }

    fn send_input(&self, terminal: TerminalId, data: &str) {
        if let Some(connection) = self.connection.borrow().as_ref()
            && connection.socket.ready_state() == WebSocket::OPEN
        {
            let _ = connection
                .socket
                .send_with_u8_array(&encode_data(terminal, data.as_bytes()));
        }
    }

    fn received(&self, data: &JsValue) {
        if let Some(buffer) = data.dyn_ref::<ArrayBuffer>() {
            let bytes = Uint8Array::new(buffer);
            if bytes.length() < CHANNEL_HEADER as u32 {
                return;
            }
            let mut header = [0u8; CHANNEL_HEADER];
            bytes
                .subarray(0, CHANNEL_HEADER as u32)
                .copy_to(&mut header);
            let terminal = TerminalId(u32::from_be_bytes(header));
            let data = bytes.subarray(CHANNEL_HEADER as u32, bytes.length());
            let mut acks = self.acks.get();
            acks.take(data.length() as usize);
            let due = acks.due();
            if let Some(bytes) = due {
                acks.acknowledged(bytes);
            }
            self.acks.set(acks);
            if terminal == PLOT_CHANNEL {
                self.plots.received(&data.to_vec());
                if let Some(bytes) = due {
                    self.send(&ClientMessage::Ack { bytes });
                }
                return;
            }
            if terminal == LSP_CHANNEL {
                // Taken in at once: the editor's language client.
                crate::editor::lsp::received(&data.to_vec());
                if let Some(bytes) = due {
                    self.send(&ClientMessage::Ack { bytes });
                }
                return;
            }
            match (self.terms.borrow().get(&terminal), due) {
                (Some(term), Some(bytes)) => term
                    .xterm
                    .write_bytes_then(&data, self.acknowledge_later(bytes).unchecked_ref()),
                (Some(term), None) => term.xterm.write_bytes(&data),
                // Nothing to draw it in: taken in already.
                (None, Some(bytes)) => self.send(&ClientMessage::Ack { bytes }),
                (None, None) => {}
            }
        } else if let Some(text) = data.as_string() {
            match crate::json::from_str::<ServerMessage>(&text) {
                Ok(message) => self.handle(message),
                Err(error) => leptos::logging::warn!("unreadable control message: {error}"),
            }
        }
    }

    fn handle(&self, message: ServerMessage) {
        match message {
            ServerMessage::Status { status } => self.link.set(match status.state {
                SandboxState::Starting => Link::Starting,
                SandboxState::Ready => {
                    self.attempts.set(0);
                    Link::Ready
                }
                SandboxState::Stopped => Link::Stopped,
                SandboxState::Failed => {
                    Link::Failed(status.error.unwrap_or_else(|| "unknown error".into()))
                }
            }),
            ServerMessage::Terminals { terminals } => {
                // The session with the agent is up: the language client may talk.
                let weak = self.this.clone();
                crate::editor::lsp::socket_open(Rc::new(move |data: &[u8]| {
                    if let Some(client) = weak.upgrade() {
                        client.send_lsp(data);
                    }
                }));
                self.resume(terminals);
            }
            ServerMessage::Opened { terminal, command } => {
                self.add(terminal, command.as_deref(), None);
                self.attach(terminal);
                self.select(terminal);
                if command.is_none()
                    && let Some(line) = self.pending_input.borrow_mut().take()
                {
                    self.send_input(terminal, &line);
                }
            }
            ServerMessage::Attached { terminal } => self.replayed(terminal),
            ServerMessage::Exited { terminal, status } => {
                // A run's end is told once, by `RunFinished`.
                let is_run = self.tabs.with_untracked(|tabs| {
                    tabs.iter()
                        .any(|tab| tab.terminal == terminal && tab.command.is_some())
                });
                if !is_run && let Some(term) = self.terms.borrow().get(&terminal) {
                    term.xterm.write_str(&format!(
                        "\r\n\x1b[2m[process exited with status {status}]\x1b[0m\r\n"
                    ));
                }
                self.tabs.update(|tabs| {
                    if let Some(tab) = tabs.iter_mut().find(|tab| tab.terminal == terminal) {
                        tab.exited = Some(status);
                    }
                });
            }
            ServerMessage::RunFinished {
                terminal,
                exit_code,
                wall_ms,
                peak_rss_kib,
            } => {
                if let Some(term) = self.terms.borrow().get(&terminal) {
                    term.xterm
                        .write_str(&run_summary(exit_code, wall_ms, peak_rss_kib));
                }
            }
            ServerMessage::Lagged { terminal } => {
                // That terminal fell behind a flood: catch it up from its scrollback. The
                // others go on as they are.
                if let Some(term) = self.terms.borrow().get(&terminal) {
                    term.xterm.reset();
                }
                self.attach(terminal);
            }
            ServerMessage::Pong { .. } => {}
            message @ (ServerMessage::FileChanged { .. }
            | ServerMessage::FileRemoved { .. }
            | ServerMessage::FilesResync
            | ServerMessage::FilesNotKept { .. }) => self.on_files.run(message),
            ServerMessage::Error {
                code,
                message,
                terminal,
            } => {
                leptos::logging::warn!("terminal error {code}: {message}");
                if code == model::ErrorCode::NotFound
                    && let Some(terminal) = terminal
                {
                    self.forget(terminal);
                }
            }
        }
    }

    /// Asks for a terminal's scrollback and live output; until the replay has been parsed,
    /// nothing xterm.js answers for the terminal reaches the shell.
    fn attach(&self, terminal: TerminalId) {
        let attach = self.attaches.get() + 1;
        self.attaches.set(attach);
        self.replaying.borrow_mut().insert(terminal, attach);
        self.send(&ClientMessage::Attach { terminal });
    }

    /// The replay of an attach has all arrived: once xterm.js has parsed it, the terminal's
    /// answers go to the shell again.
    fn replayed(&self, terminal: TerminalId) {
        let Some(attach) = self.replaying.borrow().get(&terminal).copied() else {
            return;
        };
        let weak = self.this.clone();
        let done = Closure::once_into_js(move || {
            if let Some(client) = weak.upgrade() {
                let mut replaying = client.replaying.borrow_mut();
                // Not if the terminal was attached again since (its replay is still to come).
                if replaying.get(&terminal) == Some(&attach) {
                    replaying.remove(&terminal);
                }
            }
        });
        match self.terms.borrow().get(&terminal) {
            // Parsed in order: the callback runs once everything written before it has been.
            Some(term) => term
                .xterm
                .write_bytes_then(&Uint8Array::new_with_length(0), done.unchecked_ref()),
            None => {
                self.replaying.borrow_mut().remove(&terminal);
            }
        }
    }

    /// A write callback that acknowledges `bytes` once xterm.js has parsed everything up
    /// to there (it parses writes in order) — unless the socket has changed since.
    fn acknowledge_later(&self, bytes: u64) -> JsValue {
        let weak = self.this.clone();
        let generation = self.generation.get();
        Closure::once_into_js(move || {
            if let Some(client) = weak.upgrade()
                && client.generation.get() == generation
            {
                client.send(&ClientMessage::Ack { bytes });
            }
        })
    }

    /// After a (re)connect: keep and replay the terminals that still exist, drop the ones
    /// that do not, open one if there are none.
    fn resume(&self, terminals: Vec<TerminalInfo>) {
        // Held to the server's window from the first byte of output on.
        self.send(&ClientMessage::Ack { bytes: 0 });
        let gone: Vec<TerminalId> = self
            .terms
            .borrow()
            .keys()
            .filter(|id| !terminals.iter().any(|info| info.terminal == **id))
            .copied()
            .collect();
        for terminal in gone {
            self.forget(terminal);
        }
        for info in &terminals {
            if let Some(term) = self.terms.borrow().get(&info.terminal) {
                term.xterm.reset();
            }
            self.add(info.terminal, info.command.as_deref(), info.exited);
            self.tabs.update(|tabs| {
                if let Some(tab) = tabs.iter_mut().find(|tab| tab.terminal == info.terminal) {
                    tab.exited = info.exited;
                }
            });
            self.attach(info.terminal);
        }
        match terminals.last() {
            None => self.open(),
            Some(last) => {
                let keep = self
                    .active
                    .get_untracked()
                    .filter(|id| terminals.iter().any(|info| info.terminal == *id));
                self.select(keep.unwrap_or(last.terminal));
            }
        }
    }

    fn open(&self) {
        let (cols, rows) = self.size();
        self.send(&ClientMessage::Open { cols, rows });
    }

    /// The visible terminal's grid, for a new one.
    fn size(&self) -> (u16, u16) {
        self.active
            .get_untracked()
            .and_then(|id| {
                self.terms
                    .borrow()
                    .get(&id)
                    .map(|term| (term.xterm.cols(), term.xterm.rows()))
            })
            .unwrap_or((80, 24))
    }

    /// Creates the xterm.js and the tab of a terminal, unless it has them already.
    fn add(&self, terminal: TerminalId, command: Option<&str>, exited: Option<i32>) {
        if self.terms.borrow().contains_key(&terminal) {
            return;
        }
        let Ok(element) = document().create_element("div") else {
            return;
        };
        let element: HtmlElement = element.unchecked_into();
        element.set_class_name("xterm-host");
        let _ = element.set_attribute("data-terminal", &terminal.to_string());
        let _ = self.body.append_child(&element);

        let options = xterm::object(&[
            ("cursorBlink", true.into()),
            ("fontSize", 13.into()),
            (
                "fontFamily",
                "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace"
                    .into(),
            ),
            ("scrollback", 5000.into()),
            ("theme", theme(crate::vendor::prefers_dark()).into()),
        ]);
        let xterm = xterm::Terminal::new(&options);
        let fit = xterm::FitAddon::new();
        xterm.load_addon(&fit);
        xterm.load_addon(&xterm::WebLinksAddon::new());
        xterm.open(&element);

        let weak = self.this.clone();
        let on_data = Closure::<dyn FnMut(String)>::new(move |data: String| {
            if let Some(client) = weak.upgrade()
                && !client.replaying.borrow().contains_key(&terminal)
            {
                if client.link.with_untracked(Link::can_restart) {
                    client.typed_while_down.set(true);
                } else {
                    client.send_input(terminal, &data);
                }
            }
        });
        let weak = self.this.clone();
        let on_resize = Closure::<dyn FnMut(JsValue)>::new(move |size: JsValue| {
            if let (Some(client), Some(cols), Some(rows)) = (
                weak.upgrade(),
                xterm::number(&size, "cols"),
                xterm::number(&size, "rows"),
            ) {
                client.send(&ClientMessage::Resize {
                    terminal,
                    cols,
                    rows,
                });
            }
        });
        // Ctrl+Shift+C copies the selection (Ctrl+C stays an interrupt); Ctrl+Shift+V is
        // left to the browser, whose paste event xterm turns into input.
        let selection_source: xterm::Terminal = JsValue::clone(&xterm).unchecked_into();
        let on_key = Closure::<dyn FnMut(web_sys::KeyboardEvent) -> bool>::new(
            move |event: web_sys::KeyboardEvent| {
                let chord = (event.ctrl_key() || event.meta_key()) && event.shift_key();
                if event.type_() != "keydown" || !chord {
                    return true;
                }
                match event.key().to_ascii_lowercase().as_str() {
                    "c" if selection_source.has_selection() => {
                        let text = selection_source.get_selection();
                        let _ = window().navigator().clipboard().write_text(&text);
                        event.prevent_default();
                        false
                    }
                    "v" => false,
                    _ => true,
                }
            },
        );
        let on_open = self.on_open;
        let on_link = Closure::<dyn FnMut(String, u32)>::new(move |path: String, line: u32| {
            on_open.run((path, line));
        });
        let listeners = vec![
            xterm.on_data(&on_data),
            xterm.on_resize(&on_resize),
            xterm::traceback_links(&xterm, &on_link),
        ];
        xterm.attach_custom_key_event_handler(&on_key);

        self.terms.borrow_mut().insert(
            terminal,
            Term {
                xterm,
                fit,
                element,
                listeners,
                _on_data: on_data,
                _on_resize: on_resize,
                _on_key: on_key,
                _on_link: on_link,
            },
        );
        let title = match command {
            Some(command) => command.chars().take(24).collect(),
            None => "bash".to_owned(),
        };
        let at =
            command.and_then(|command| self.replacing.borrow_mut().remove(super::run_key(command)));
        self.tabs.update(|tabs| {
            let tab = Tab {
                terminal,
                title,
                exited,
                command: command.map(str::to_owned),
            };
            match at {
                Some(index) if index <= tabs.len() => tabs.insert(index, tab),
                _ => tabs.push(tab),
            }
        });
    }

    fn forget(&self, terminal: TerminalId) {
        self.terms.borrow_mut().remove(&terminal);
        self.replaying.borrow_mut().remove(&terminal);
        // Its xterm.js may go with write callbacks never called: acknowledge what came.
        let received = self.acks.get().received();
        if received > 0 {
            self.send(&ClientMessage::Ack { bytes: received });
        }
        self.tabs
            .update(|tabs| tabs.retain(|tab| tab.terminal != terminal));
        if self.active.get_untracked() == Some(terminal) {
            let next = self.tabs.get_untracked().last().map(|tab| tab.terminal);
            match next {
                Some(next) => self.select(next),
                None => self.active.set(None),
            }
        }
    }

    /// Shows one terminal, fits it to the panel and focuses it.
    fn select(&self, terminal: TerminalId) {
        self.active.set(Some(terminal));
        for (id, term) in self.terms.borrow().iter() {
            let _ = term
                .element
                .class_list()
                .toggle_with_force("active", *id == terminal);
        }
        self.fit_active();
        if let Some(term) = self.terms.borrow().get(&terminal) {
            term.xterm.focus();
        }
    }

    /// Sizes the visible terminal to the panel; xterm reports the new grid through
    /// `onResize`, which tells the PTY.
    fn fit_active(&self) {
        if let Some(terminal) = self.active.get_untracked()
            && let Some(term) = self.terms.borrow().get(&terminal)
            && self.body.offset_width() > 0
        {
            term.fit.fit();
        }
    }
}
