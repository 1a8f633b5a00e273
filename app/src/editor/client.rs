//! The browser side of the editor: Monaco, one model per open file, the file API, autosave,
//! the unsaved buffers kept in `localStorage`, and saves tried again until they land.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    rc::{Rc, Weak},
    time::Duration,
};

use leptos::prelude::*;
use model::{Content, ErrorCode, WorkspaceId, WorkspacePath};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use web_sys::HtmlElement;

use super::{EditorCommand, EditorTab, Viewer, monaco};
use crate::files::api::{read_file, write_file};

/// Files larger than this open as a notice, not in the editor.
const MAX_EDITOR_BYTES: i64 = 2 * 1024 * 1024;
/// Autosave this long after the last keystroke (VS Code's `files.autoSaveDelay`).
const AUTOSAVE_DELAY: Duration = Duration::from_millis(1000);
/// Unsaved text is copied to `localStorage` this long after the last keystroke.
const BACKUP_DELAY: Duration = Duration::from_millis(300);
/// Waits before each new try of a save that failed for a passing reason, then the last
/// one again and again.
const RETRY_DELAYS: [Duration; 6] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(15),
    Duration::from_secs(30),
];
/// Typing is reported as activity (against the idle stop) at most this often.
const ACTIVITY_EVERY_MS: f64 = 10_000.0;

/// Error codes of a save that may well succeed if tried again.
fn passing(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Offline | ErrorCode::Internal | ErrorCode::Unavailable | ErrorCode::RateLimited
    )
}

struct Open {
    model: monaco::Model,
    /// The stored version the text in the model is based on.
    version: i64,
    /// Monaco's alternative version id at the last load or save: equal means not dirty.
    saved: f64,
    /// Counts edits: a timer set for an older edit finds a newer one and does nothing.
    edits: u64,
    /// A save of this file is on its way; `again`: edits came meanwhile, save once more.
    saving: bool,
    again: bool,
    /// Failed saves in a row, for the retry's backoff.
    failures: usize,
    /// The model's cursors and scroll, kept while another file is shown.
    view: Option<JsValue>,
    listener: monaco::Disposable,
    _on_change: Closure<dyn FnMut()>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.listener.dispose();
        self.model.dispose();
    }
}

/// Unsaved text kept in `localStorage` under [`Editor::backup_key`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Backup {
    text: String,
    /// The version it was edited from.
    base: i64,
    /// When it was kept (Unix ms).
    at: i64,
}

/// How long an explicit save waits for the formatter.
const FORMAT_TIMEOUT_MS: i32 = 2000;

pub struct Editor {
    /// Counts Markdown previews asked for: only the latest one is shown.
    previews: std::cell::Cell<u64>,
    workspace: WorkspaceId,
    host: HtmlElement,
    tabs: RwSignal<Vec<EditorTab>>,
    active: RwSignal<Option<String>>,
    autosave: RwSignal<bool>,
    on_activity: Callback<()>,
    last_activity: Cell<f64>,
    /// Set while the editor itself replaces a model's text (a load): not an edit.
    applying: Cell<bool>,
    monaco: RefCell<Option<monaco::Editor>>,
    open: RefCell<HashMap<String, Open>>,
    /// Opened before Monaco had loaded.
    waiting: RefCell<Vec<String>>,
    /// Where to put the cursor when this file is next shown (a jump to a definition in a
    /// file still loading): path, line, column.
    reveal: RefCell<Option<(String, u32, u32)>>,
    /// Listeners that live as long as the editor: blur, online, beforeunload.
    listeners: RefCell<Vec<Box<dyn FnOnce()>>>,
    /// Cursor and scroll (Monaco view states, as JSON) of restored tabs whose files are
    /// still loading.
    pending_views: RefCell<HashMap<String, String>>,
    this: Weak<Editor>,
}

/// The open tabs of a workspace in this browser (`localStorage`, per workspace: a
/// workspace has one owner), restored after a reload: the files, the active one, and each
/// one's cursor and scroll.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Session {
    tabs: Vec<String>,
    active: Option<String>,
    /// Monaco view states (`saveViewState()` as JSON), by path.
    #[serde(default)]
    views: HashMap<String, String>,
}

/// Monaco's built-in theme matching the page's scheme.
fn monaco_theme(dark: bool) -> &'static str {
    if dark { "vs-dark" } else { "vs" }
}

impl Editor {
    pub fn new(
        workspace: WorkspaceId,
        host: HtmlElement,
        tabs: RwSignal<Vec<EditorTab>>,
        active: RwSignal<Option<String>>,
        autosave: RwSignal<bool>,
        on_activity: Callback<()>,
    ) -> Rc<Self> {
        Rc::new_cyclic(|this| Self {
            workspace,
            host,
            tabs,
            active,
            autosave,
            on_activity,
            last_activity: Cell::new(0.0),
            applying: Cell::new(false),
            monaco: RefCell::default(),
            open: RefCell::default(),
            waiting: RefCell::default(),
            reveal: RefCell::default(),
            previews: std::cell::Cell::new(0),
            listeners: RefCell::default(),
            pending_views: RefCell::default(),
            this: this.clone(),
        })
    }

    /// Loads Monaco and creates the editor, then opens what was asked for meanwhile and
    /// every file with unsaved edits kept in this browser.
    pub async fn start(self: Rc<Self>) {
        self.listen();
        if let Err(error) = crate::vendor::load(&["monaco.css", "monaco.js"]).await {
            leptos::logging::warn!("the editor could not load: {error}");
            return;
        }
        if let Some(worker) = crate::vendor::url("editor-worker.js") {
            monaco::set_worker_url(&worker);
        }
        let options = crate::vendor::object(&[
            ("automaticLayout", true.into()),
            ("fontSize", 14.into()),
            (
                "minimap",
                crate::vendor::object(&[("enabled", false.into())]).into(),
            ),
            ("scrollBeyondLastLine", false.into()),
            ("theme", monaco_theme(crate::vendor::prefers_dark()).into()),
            ("tabSize", 4.into()),
        ]);
        let editor = monaco::create_editor(&self.host, &options);
        // Leaving the editor saves (VS Code's `onFocusChange`).
        let weak = self.this.clone();
        let on_blur = Closure::<dyn FnMut()>::new(move || {
            if let Some(editor) = weak.upgrade()
                && editor.autosave.get_untracked()
            {
                editor.save_all_dirty();
            }
        });
        let blur = editor.on_did_blur_editor_text(&on_blur);
        self.listeners.borrow_mut().push(Box::new(move || {
            blur.dispose();
            drop(on_blur);
        }));
        // A jump into another workspace file (F12, references) opens it in its tab.
        let weak = self.this.clone();
        let open_code_editor = Closure::<dyn FnMut(JsValue, JsValue, JsValue) -> bool>::new(
            move |_source: JsValue, resource: JsValue, at: JsValue| {
                weak.upgrade()
                    .is_some_and(|editor| editor.jump(&resource, &at))
            },
        );
        let opener =
            crate::vendor::object(&[("openCodeEditor", open_code_editor.as_ref().clone())]);
        let registered = monaco::register_editor_opener(&opener);
        self.listeners.borrow_mut().push(Box::new(move || {
            registered.dispose();
            drop(open_code_editor);
        }));
        // Monaco's theme is global: every editor follows the OS's light or dark.
        if let Some(watch) =
            crate::vendor::SchemeWatch::new(|dark| monaco::set_theme(monaco_theme(dark)))
        {
            self.listeners
                .borrow_mut()
                .push(Box::new(move || drop(watch)));
        }
        let _ = self.host.set_attribute("data-ready", "true");
        mark("codepod-editor-ready");
        *self.monaco.borrow_mut() = Some(editor);
        // Python files get completion, hover, diagnostics… from the sandbox's server.
        super::lsp::editor_ready(self.workspace);
        // The tabs of the last visit first (in their order), then what was asked for
        // meanwhile, then files with unsaved edits kept in this browser.
        let session = self.session();
        let asked: Vec<String> = self.waiting.borrow_mut().drain(..).collect();
        let mut waiting = session.tabs.clone();
        for path in asked.iter().cloned().chain(self.backed_up()) {
            if !waiting.contains(&path) {
                waiting.push(path);
            }
        }
        *self.pending_views.borrow_mut() = session.views;
        for path in waiting {
            self.open(path);
        }
        // The active tab: what was asked for last, else the last visit's.
        if let Some(active) = asked.last().cloned().or(session.active)
            && self.tab(&active).is_some()
        {
            self.select(&active, true);
        }
    }

    // --- the tabs of the last visit -------------------------------------------------------

    fn session_key(&self) -> String {
        format!("codepod:session:{}", self.workspace)
    }

    fn session(&self) -> Session {
        storage()
            .and_then(|storage| storage.get_item(&self.session_key()).ok().flatten())
            .and_then(|json| crate::json::from_str(&json).ok())
            .unwrap_or_default()
    }

    /// Writes the open tabs, the active one and their cursors and scroll positions.
    fn keep_session(&self) {
        if self.monaco.borrow().is_none() {
            // Before Monaco: nothing was restored yet, so nothing may be overwritten.
            return;
        }
        let active = self.active.get_untracked();
        let tabs: Vec<String> = self.tabs.with_untracked(|tabs| {
            tabs.iter()
                .filter(|tab| !tab.gone)
                .map(|tab| tab.path.clone())
                .collect()
        });
        let shown = self
            .monaco
            .borrow()
            .as_ref()
            .map(monaco::Editor::save_view_state);
        let open = self.open.borrow();
        let pending = self.pending_views.borrow();
        let views = tabs
            .iter()
            .filter_map(|path| {
                let view = match open.get(path) {
                    Some(_) if active.as_deref() == Some(path) => shown.clone(),
                    Some(file) => file.view.clone(),
                    None => return pending.get(path).map(|json| (path.clone(), json.clone())),
                }?;
                let json = js_sys::JSON::stringify(&view).ok()?.as_string()?;
                Some((path.clone(), json))
            })
            .collect();
        let session = Session {
            tabs,
            active,
            views,
        };
        if let (Some(storage), Ok(json)) = (storage(), serde_json::to_string(&session)) {
            let _ = storage.set_item(&self.session_key(), &json);
        }
    }

    /// The window's `online` (try failed saves again) and `beforeunload` (ask before
    /// leaving unsaved work) listeners.
    fn listen(&self) {
        use wasm_bindgen::JsCast;
        let weak = self.this.clone();
        let online = Closure::<dyn FnMut()>::new(move || {
            if let Some(editor) = weak.upgrade() {
                editor.retry_all();
            }
        });
        let tabs = self.tabs;
        let unload = Closure::<dyn FnMut(web_sys::BeforeUnloadEvent)>::new(
            move |event: web_sys::BeforeUnloadEvent| {
                let unsaved = tabs
                    .try_read_untracked()
                    .is_some_and(|tabs| tabs.iter().any(|tab| tab.dirty || tab.saving));
                if unsaved {
                    event.prevent_default();
                    // Older browsers need a return value to ask.
                    event.set_return_value("");
                }
            },
        );
        // Leaving or hiding the page keeps the tabs' cursors and scroll positions.
        let weak = self.this.clone();
        let hide = Closure::<dyn FnMut()>::new(move || {
            if let Some(editor) = weak.upgrade() {
                editor.keep_session();
            }
        });
        let window = window();
        let _ = window.add_event_listener_with_callback("pagehide", hide.as_ref().unchecked_ref());
        let _ = document()
            .add_event_listener_with_callback("visibilitychange", hide.as_ref().unchecked_ref());
        self.listeners.borrow_mut().push(Box::new(move || {
            let _ = leptos::prelude::window()
                .remove_event_listener_with_callback("pagehide", hide.as_ref().unchecked_ref());
            let _ = document().remove_event_listener_with_callback(
                "visibilitychange",
                hide.as_ref().unchecked_ref(),
            );
        }));
        let _ = window.add_event_listener_with_callback("online", online.as_ref().unchecked_ref());
        let _ = window
            .add_event_listener_with_callback("beforeunload", unload.as_ref().unchecked_ref());
        self.listeners.borrow_mut().push(Box::new(move || {
            let window = leptos::prelude::window();
            let _ = window
                .remove_event_listener_with_callback("online", online.as_ref().unchecked_ref());
            let _ = window.remove_event_listener_with_callback(
                "beforeunload",
                unload.as_ref().unchecked_ref(),
            );
        }));
    }

    pub fn dispose(&self) {
        super::lsp::editor_gone();
        for remove in self.listeners.borrow_mut().drain(..) {
            remove();
        }
        self.open.borrow_mut().clear();
        if let Some(editor) = self.monaco.borrow_mut().take() {
            editor.dispose();
        }
    }

    pub fn command(&self, command: EditorCommand) {
        match command {
            EditorCommand::Open(path) => self.open(path),
            EditorCommand::OpenAt { path, line } => {
                *self.reveal.borrow_mut() = Some((path.clone(), line.max(1), 1));
                self.open(path);
            }
            EditorCommand::Select(path) => self.select(&path, true),
            EditorCommand::Close(path) => self.close(&path),
            EditorCommand::Save => {
                if let Some(path) = self.active.get_untracked() {
                    self.format_then_save(path);
                }
            }
            EditorCommand::Reload(path) => {
                self.forget_backup(&path);
                self.load(path, true);
            }
            EditorCommand::Overwrite(path) => self.save(path, true),
            EditorCommand::Changed { path, version } => self.changed_elsewhere(path, version),
            EditorCommand::Removed(path) => self.update_tab(&path, |tab| tab.gone = true),
            EditorCommand::Resync => self.resync(),
            EditorCommand::Retry => self.retry_all(),
            EditorCommand::SaveAll => self.save_all_dirty(),
        }
    }

    /// An explicit save (Ctrl/Cmd+S, Run) of a Python file formats it first (ruff, through
    /// the language server), as VS Code's `formatOnSave` does; autosave does not (it would
    /// reformat under the user's fingers). A formatter that does not answer within
    /// [`FORMAT_TIMEOUT_MS`] is not waited for: the save never depends on it.
    fn format_then_save(&self, path: String) {
        let editor = self.monaco.borrow().as_ref().cloned();
        let action = editor
            .filter(|_| monaco::language_for(&path) == "python")
            .and_then(|editor| editor.get_action("editor.action.formatDocument"));
        let Some(action) = action else {
            self.save(path, false);
            return;
        };
        let weak = self.this.clone();
        leptos::task::spawn_local(async move {
            let timeout = js_sys::Promise::new(&mut |resolve, _| {
                let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(
                    &resolve,
                    FORMAT_TIMEOUT_MS,
                );
            });
            let race = js_sys::Promise::race(&js_sys::Array::of2(&action.run(), &timeout));
            let _ = wasm_bindgen_futures::JsFuture::from(race).await;
            if let Some(editor) = weak.upgrade() {
                editor.save(path, false);
            }
        });
    }

    fn update_tab(&self, path: &str, change: impl FnOnce(&mut EditorTab)) {
        self.tabs.update(|tabs| {
            if let Some(tab) = tabs.iter_mut().find(|tab| tab.path == path) {
                change(tab);
            }
        });
    }

    fn tab(&self, path: &str) -> Option<EditorTab> {
        self.tabs
            .read_untracked()
            .iter()
            .find(|tab| tab.path == path)
            .cloned()
    }

    fn open(&self, path: String) {
        if self.monaco.borrow().is_none() {
            self.waiting.borrow_mut().push(path);
            return;
        }
        if self.tab(&path).is_none() {
            self.tabs.update(|tabs| {
                tabs.push(EditorTab {
                    path: path.clone(),
                    notice: Some("Loading…".into()),
                    ..EditorTab::default()
                })
            });
            self.load(path.clone(), false);
        }
        self.select(&path, true);
    }

    /// Opens the workspace file Monaco named `resource` with the cursor at `at` (a range or
    /// a position); false for anything outside the workspace.
    fn jump(&self, resource: &JsValue, at: &JsValue) -> bool {
        let number = |object: &JsValue, keys: [&str; 2]| {
            keys.iter()
                .find_map(|key| js_sys::Reflect::get(object, &(*key).into()).ok()?.as_f64())
                .map_or(1, |value| value.max(1.0) as u32)
        };
        let Some(full) = js_sys::Reflect::get(resource, &"path".into())
            .ok()
            .and_then(|path| path.as_string())
        else {
            return false;
        };
        let Some(path) = full.strip_prefix(&format!("/{}/", self.workspace)) else {
            // A library file (pandas' source, say): shown read-only in a peek view over the
            // file being edited, which stays open — the workspace's tabs hold its files.
            let peek = self
                .monaco
                .borrow()
                .as_ref()
                .and_then(|editor| editor.get_action("editor.action.peekDefinition"));
            return match peek {
                Some(peek) => {
                    let _ = peek.run();
                    true
                }
                None => false,
            };
        };
        if model::WorkspacePath::parse(path).is_err() {
            return false;
        }
        let line = number(at, ["startLineNumber", "lineNumber"]);
        let column = number(at, ["startColumn", "column"]);
        *self.reveal.borrow_mut() = Some((path.to_owned(), line, column));
        self.open(path.to_owned());
        true
    }

    /// Shows a file; `focus`: and puts the keyboard there (the user chose it).
    fn select(&self, path: &str, focus: bool) {
        let previous = self.active.get_untracked();
        self.active.set(Some(path.to_owned()));
        let Some(editor) = self.monaco.borrow().as_ref().cloned() else {
            return;
        };
        let mut open = self.open.borrow_mut();
        if let Some(previous) = previous.filter(|previous| previous != path)
            && let Some(shown) = open.get_mut(&previous)
        {
            shown.view = Some(editor.save_view_state());
        }
        match open.get(path) {
            Some(file) => {
                editor.set_model(Some(&file.model));
                if let Some(view) = &file.view {
                    editor.restore_view_state(view);
                }
                let reveal = self.reveal.borrow_mut().take_if(|(at, ..)| at == path);
                if let Some((_, line, column)) = reveal {
                    editor.set_position(&crate::vendor::object(&[
                        ("lineNumber", line.into()),
                        ("column", column.into()),
                    ]));
                    editor.reveal_line_in_center(line);
                }
                if focus {
                    editor.focus();
                }
            }
            None => editor.set_model(None),
        }
        drop(open);
        self.keep_session();
    }

    fn close(&self, path: &str) {
        let dirty = self.tab(path).is_some_and(|tab| tab.dirty);
        if dirty
            && !window()
                .confirm_with_message(&format!("{path} has unsaved changes. Close it anyway?"))
                .unwrap_or(false)
        {
            return;
        }
        if let Some(editor) = self.monaco.borrow().as_ref()
            && self.active.get_untracked().as_deref() == Some(path)
        {
            editor.set_model(None);
        }
        self.open.borrow_mut().remove(path);
        self.forget_backup(path);
        self.tabs.update(|tabs| tabs.retain(|tab| tab.path != path));
        if self.active.get_untracked().as_deref() == Some(path) {
            match self
                .tabs
                .read_untracked()
                .last()
                .map(|tab| tab.path.clone())
            {
                Some(next) => self.select(&next, true),
                None => self.active.set(None),
            }
        }
        self.pending_views.borrow_mut().remove(path);
        self.keep_session();
    }

    /// Reads a file from the server, then hands the answer to `then` (if the editor is
    /// still there).
    fn read_then(
        &self,
        path: String,
        then: impl FnOnce(&Editor, String, Result<model::FileView, crate::ApiError>) + 'static,
    ) {
        let weak = self.this.clone();
        let workspace = self.workspace;
        leptos::task::spawn_local(async move {
            let Ok(parsed) = WorkspacePath::parse(&path) else {
                return;
            };
            let result = read_file(workspace, parsed).await;
            if let Some(editor) = weak.upgrade() {
                then(&editor, path, result);
            }
        });
    }

    /// Reads the file and puts it in its model (a new model, or the text replaced).
    fn load(&self, path: String, replace: bool) {
        self.read_then(path, move |editor, path, result| match result {
            Ok(view) if super::image_type(&path).is_some() => {
                let mime = super::image_type(&path).unwrap_or("image/png");
                let bytes = match &view.content {
                    Content::Utf8(text) => Some(text.as_bytes().to_vec()),
                    Content::Base64(data) => decode_base64(data),
                };
                let url = bytes.and_then(|bytes| crate::plots::blob_url(&bytes, mime));
                editor.update_tab(&path, |tab| {
                    if let Some(Viewer::Image { url }) = tab.viewer.take() {
                        let _ = web_sys::Url::revoke_object_url(&url);
                    }
                    match url {
                        Some(url) => {
                            tab.notice = None;
                            tab.viewer = Some(Viewer::Image { url });
                        }
                        None => tab.notice = Some(format!("Cannot show {path} as an image.")),
                    }
                });
            }
            Ok(view) => match view.content {
                Content::Utf8(text) if view.entry.size <= MAX_EDITOR_BYTES => {
                    if super::is_table(&path) {
                        let table = super::table::parse(&text, super::table::separator_for(&path));
                        editor.update_tab(&path, |tab| tab.viewer = Some(Viewer::Table(table)));
                    }
                    editor.loaded(&path, &text, view.entry.version, replace);
                    editor.preview(&path);
                }
                Content::Utf8(_) => editor.update_tab(&path, |tab| {
                    tab.notice = Some(format!(
                        "{path} is {} KiB, too large for the editor. Download it or use the terminal.",
                        view.entry.size / 1024
                    ));
                }),
                Content::Base64(_) => {
                    let download = format!(
                        "/api/files/download?workspace={}&path={}",
                        editor.workspace,
                        js_sys::encode_uri_component(&path)
                    );
                    editor.update_tab(&path, |tab| {
                        tab.notice = None;
                        tab.viewer = Some(Viewer::Binary {
                            size: view.entry.size,
                            download,
                        });
                    });
                }
            },
            Err(error) if error.code == ErrorCode::NotFound => {
                let opened = editor.open.borrow().contains_key(&path);
                editor.update_tab(&path, |tab| {
                    tab.gone = true;
                    if !opened {
                        tab.notice = Some(format!("{path} no longer exists."));
                    }
                });
            }
            Err(error) => editor.update_tab(&path, |tab| {
                tab.notice = Some(format!("Cannot open {path}: {}", error.message));
            }),
        });
    }

    /// A Markdown file's preview beside its source, from its text in the editor (saved or
    /// not), rendered by the server a moment after typing stops; a table's rows, likewise.
    fn preview(&self, path: &str) {
        let (markdown, table) = (super::is_markdown(path), super::is_table(path));
        if !markdown && !table {
            return;
        }
        let Some(text) = self
            .open
            .borrow()
            .get(path)
            .map(|file| file.model.get_value())
        else {
            return;
        };
        let asked = self.previews.get() + 1;
        self.previews.set(asked);
        let weak = self.this.clone();
        let path = path.to_owned();
        leptos::task::spawn_local(async move {
            let pause = js_sys::Promise::new(&mut |resolve, _| {
                let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(
                    &resolve,
                    PREVIEW_PAUSE_MS,
                );
            });
            let _ = wasm_bindgen_futures::JsFuture::from(pause).await;
            if weak
                .upgrade()
                .is_none_or(|editor| editor.previews.get() != asked)
            {
                return;
            }
            if table {
                // A table's rows follow its text (parsed here: no request).
                let rows = super::table::parse(&text, super::table::separator_for(&path));
                if let Some(editor) = weak.upgrade() {
                    editor.update_tab(&path, |tab| tab.viewer = Some(Viewer::Table(rows)));
                }
                return;
            }
            let html = match crate::files::api::markdown(text).await {
                Ok(preview) => preview.html,
                Err(error) => format!(
                    "<p class=\"problem\">No preview: {}</p>",
                    html_escape(&error.to_string())
                ),
            };
            if let Some(editor) = weak.upgrade()
                && editor.previews.get() == asked
            {
                editor.update_tab(&path, |tab| tab.viewer = Some(Viewer::Markdown { html }));
            }
        });
    }

    /// Replaces a model's text without counting it as an edit.
    fn apply(&self, model: &monaco::Model, text: &str) {
        self.applying.set(true);
        model.set_value(text);
        self.applying.set(false);
    }

    /// Puts stored text in a file's model. A file changed elsewhere keeps its cursor and
    /// scroll position, and the keyboard focus stays where it is (in the terminal, say).
    fn loaded(&self, path: &str, text: &str, version: i64, replace: bool) {
        let backup = self.backup(path);
        let model = self.open.borrow().get(path).map(|file| file.model.clone());
        if let Some(model) = model {
            if replace || model.get_value() != text {
                let shown = self.active.get_untracked().as_deref() == Some(path);
                let editor = self.monaco.borrow().as_ref().cloned().filter(|_| shown);
                let view = editor.as_ref().map(monaco::Editor::save_view_state);
                self.apply(&model, text);
                if let (Some(editor), Some(view)) = (editor, view) {
                    editor.restore_view_state(&view);
                }
            }
            if let Some(file) = self.open.borrow_mut().get_mut(path) {
                file.version = version;
                file.saved = file.model.alternative_version_id();
                file.failures = 0;
            }
        } else {
            let uri = monaco::Uri::parse(&format!("file:///{}/{path}", self.workspace));
            let model = match monaco::get_model(&uri) {
                Some(model) => {
                    model.set_value(text);
                    model
                }
                None => monaco::create_model(text, monaco::language_for(path), &uri),
            };
            let weak = self.this.clone();
            let watched = path.to_owned();
            let on_change = Closure::<dyn FnMut()>::new(move || {
                if let Some(editor) = weak.upgrade()
                    && !editor.applying.get()
                {
                    editor.edited(&watched);
                }
            });
            let listener = model.on_did_change_content(&on_change);
            let saved = model.alternative_version_id();
            self.open.borrow_mut().insert(
                path.to_owned(),
                Open {
                    model,
                    version,
                    saved,
                    edits: 0,
                    saving: false,
                    again: false,
                    failures: 0,
                    view: self
                        .pending_views
                        .borrow_mut()
                        .remove(path)
                        .and_then(|json| js_sys::JSON::parse(&json).ok()),
                    listener,
                    _on_change: on_change,
                },
            );
            if self.active.get_untracked().as_deref() == Some(path) {
                self.select(path, false);
            }
        }
        self.update_tab(path, |tab| {
            tab.notice = None;
            tab.dirty = false;
            tab.conflict = false;
            tab.gone = false;
            tab.problem = None;
            tab.restored = None;
        });
        // Edits kept in this browser that never reached the server: put back, based on the
        // version they were made from (a newer stored one makes their save a conflict).
        match backup {
            Some(backup) if !replace && backup.text != text => self.restore(path, backup),
            _ => self.forget_backup(path),
        }
    }

    fn restore(&self, path: &str, backup: Backup) {
        let Some(model) = self.open.borrow().get(path).map(|file| file.model.clone()) else {
            return;
        };
        self.apply(&model, &backup.text);
        if let Some(file) = self.open.borrow_mut().get_mut(path) {
            file.version = backup.base;
        }
        self.update_tab(path, |tab| tab.restored = Some(backup.at));
        // Counted as an edit: dirty, kept, and autosaved.
        self.edited(path);
    }

    fn edited(&self, path: &str) {
        self.preview(path);
        let (dirty, edits) = {
            let mut open = self.open.borrow_mut();
            let Some(file) = open.get_mut(path) else {
                return;
            };
            let dirty = file.model.alternative_version_id() != file.saved;
            if dirty {
                file.edits += 1;
            }
            (dirty, file.edits)
        };
        if self.tab(path).is_some_and(|tab| tab.dirty != dirty) {
            self.update_tab(path, |tab| tab.dirty = dirty);
        }
        if !dirty {
            self.forget_backup(path);
            return;
        }
        let now = js_sys::Date::now();
        if now - self.last_activity.get() >= ACTIVITY_EVERY_MS {
            self.last_activity.set(now);
            self.on_activity.run(());
        }
        self.after(BACKUP_DELAY, path, edits, |editor, path| editor.keep(path));
        if self.autosave.get_untracked() {
            self.after(AUTOSAVE_DELAY, path, edits, |editor, path| {
                if editor.is_dirty(path) {
                    editor.save(path.to_owned(), false);
                }
            });
        }
    }

    fn is_dirty(&self, path: &str) -> bool {
        self.open
            .borrow()
            .get(path)
            .is_some_and(|file| file.model.alternative_version_id() != file.saved)
    }

    /// Runs `then` after `delay` unless the file was edited again (or closed) meanwhile.
    fn after(&self, delay: Duration, path: &str, edits: u64, then: fn(&Editor, &str)) {
        let weak = self.this.clone();
        let path = path.to_owned();
        set_timeout(
            move || {
                if let Some(editor) = weak.upgrade() {
                    let current = editor.open.borrow().get(&path).map(|file| file.edits);
                    if current == Some(edits) {
                        then(&editor, &path);
                    }
                }
            },
            delay,
        );
    }

    /// Saves every file with unsaved edits (the editor lost focus, autosave was turned on).
    pub fn save_all_dirty(&self) {
        let dirty: Vec<String> = self
            .tabs
            .read_untracked()
            .iter()
            .filter(|tab| tab.dirty && !tab.conflict && !tab.saving)
            .map(|tab| tab.path.clone())
            .collect();
        for path in dirty {
            self.save(path, false);
        }
    }

    /// Tries every failed save again now.
    fn retry_all(&self) {
        let failed: Vec<String> = self
            .tabs
            .read_untracked()
            .iter()
            .filter(|tab| tab.problem.is_some() && !tab.conflict)
            .map(|tab| tab.path.clone())
            .collect();
        for path in failed {
            self.save(path, false);
        }
    }

    /// Saves a file from the version its edit started at (`force`: over whatever is stored).
    /// A file in conflict is saved only by the user's choice in the conflict dialog.
    fn save(&self, path: String, force: bool) {
        if !force && self.tab(&path).is_some_and(|tab| tab.conflict) {
            return;
        }
        let Some((text, version, alternative)) = ({
            let mut open = self.open.borrow_mut();
            match open.get_mut(&path) {
                Some(file) if file.saving => {
                    file.again = true;
                    None
                }
                Some(file) => {
                    file.saving = true;
                    Some((
                        file.model.get_value(),
                        file.version,
                        file.model.alternative_version_id(),
                    ))
                }
                None => None,
            }
        }) else {
            return;
        };
        self.update_tab(&path, |tab| tab.saving = true);
        let weak = self.this.clone();
        let workspace = self.workspace;
        leptos::task::spawn_local(async move {
            let Ok(parsed) = WorkspacePath::parse(&path) else {
                return;
            };
            let mut base = Some(version);
            if force {
                // The version to overwrite: whatever is stored now.
                base = match read_file(workspace, parsed.clone()).await {
                    Ok(view) => Some(view.entry.version),
                    Err(_) => None,
                };
            }
            let result = write_file(workspace, parsed, Content::Utf8(text), base).await;
            let Some(editor) = weak.upgrade() else { return };
            editor.saved(&path, alternative, result);
        });
    }

    /// What a save's answer means for its file.
    fn saved(
        &self,
        path: &str,
        alternative: f64,
        result: Result<model::FileEntry, crate::ApiError>,
    ) {
        let again = {
            let mut open = self.open.borrow_mut();
            let Some(file) = open.get_mut(path) else {
                return;
            };
            file.saving = false;
            std::mem::take(&mut file.again)
        };
        self.update_tab(path, |tab| tab.saving = false);
        match result {
            Ok(entry) => {
                if let Some(file) = self.open.borrow_mut().get_mut(path) {
                    file.version = entry.version;
                    file.saved = alternative;
                    file.failures = 0;
                }
                self.update_tab(path, |tab| {
                    tab.conflict = false;
                    tab.gone = false;
                    tab.problem = None;
                    tab.restored = None;
                });
                // Clean now unless edited during the save (then saved again, below).
                self.edited(path);
            }
            Err(error) if error.code == ErrorCode::VersionConflict => {
                self.update_tab(path, |tab| {
                    tab.conflict = true;
                    tab.problem = None;
                });
            }
            Err(error) if passing(error.code) => {
                let failures = {
                    let mut open = self.open.borrow_mut();
                    let Some(file) = open.get_mut(path) else {
                        return;
                    };
                    file.failures += 1;
                    file.failures
                };
                let reason = if error.code == ErrorCode::Offline {
                    "the server cannot be reached".to_owned()
                } else {
                    error.message.clone()
                };
                self.update_tab(path, |tab| {
                    tab.problem = Some(format!(
                        "Not saved — retrying ({reason}). Your edits are kept in this browser."
                    ));
                });
                let delay = RETRY_DELAYS[(failures - 1).min(RETRY_DELAYS.len() - 1)];
                let weak = self.this.clone();
                let path = path.to_owned();
                set_timeout(
                    move || {
                        if let Some(editor) = weak.upgrade()
                            && editor.tab(&path).is_some_and(|tab| tab.problem.is_some())
                        {
                            editor.save(path, false);
                        }
                    },
                    delay,
                );
                return;
            }
            Err(error) => {
                self.update_tab(path, |tab| {
                    tab.problem = Some(format!("Not saved: {}.", error.message));
                });
                return;
            }
        }
        if again && self.is_dirty(path) {
            self.save(path.to_owned(), false);
        }
    }

    /// Another tab saved, or the terminal changed the file.
    fn changed_elsewhere(&self, path: String, version: Option<i64>) {
        let Some(version) = version else { return };
        let (newer, dirty) = match self.open.borrow().get(&path) {
            Some(open) => (
                version > open.version,
                open.model.alternative_version_id() != open.saved,
            ),
            None => {
                // An image (or a binary file) shown without a text model: shown afresh.
                let shown = self.tabs.with_untracked(|tabs| {
                    tabs.iter()
                        .any(|tab| tab.path == path && tab.viewer.is_some())
                });
                if shown {
                    self.load(path, true);
                }
                return;
            }
        };
        if !newer {
            return;
        }
        if dirty {
            self.update_tab(&path, |tab| tab.conflict = true);
        } else {
            self.load(path, true);
        }
    }

    /// Events may have been missed: every open file is compared with what is stored.
    fn resync(&self) {
        let paths: Vec<String> = self.open.borrow().keys().cloned().collect();
        for path in paths {
            self.read_then(path, |editor, path, result| match result {
                Ok(view) => editor.changed_elsewhere(path, Some(view.entry.version)),
                Err(error) if error.code == ErrorCode::NotFound => {
                    editor.update_tab(&path, |tab| tab.gone = true);
                }
                Err(_) => {}
            });
        }
    }

    // --- unsaved buffers in this browser ------------------------------------------------

    fn backup_prefix(&self) -> String {
        format!("codepod:unsaved:{}:", self.workspace)
    }

    fn backup_key(&self, path: &str) -> String {
        format!("{}{path}", self.backup_prefix())
    }

    /// Copies a file's unsaved text to `localStorage`.
    fn keep(&self, path: &str) {
        let Some(backup) = self.open.borrow().get(path).and_then(|file| {
            (file.model.alternative_version_id() != file.saved).then(|| Backup {
                text: file.model.get_value(),
                base: file.version,
                at: js_sys::Date::now() as i64,
            })
        }) else {
            return;
        };
        if let (Some(storage), Ok(json)) = (storage(), serde_json::to_string(&backup)) {
            // Over the browser's quota: the server copy is what there is.
            let _ = storage.set_item(&self.backup_key(path), &json);
        }
    }

    fn backup(&self, path: &str) -> Option<Backup> {
        let json = storage()?.get_item(&self.backup_key(path)).ok()??;
        crate::json::from_str(&json).ok()
    }

    fn forget_backup(&self, path: &str) {
        if let Some(storage) = storage() {
            let _ = storage.remove_item(&self.backup_key(path));
        }
    }

    /// The files of this workspace with unsaved text kept in this browser.
    fn backed_up(&self) -> Vec<String> {
        let Some(storage) = storage() else {
            return Vec::new();
        };
        let prefix = self.backup_prefix();
        let count = storage.length().unwrap_or(0);
        (0..count)
            .filter_map(|index| storage.key(index).ok().flatten())
            .filter_map(|key| key.strip_prefix(&prefix).map(str::to_owned))
            .collect()
    }
}

fn storage() -> Option<web_sys::Storage> {
    window().local_storage().ok().flatten()
}

/// `performance.mark(name)`, for the page-load benchmark.
fn mark(name: &str) {
    use wasm_bindgen::JsCast;
    let Ok(performance) = js_sys::Reflect::get(&js_sys::global(), &"performance".into()) else {
        return;
    };
    if let Ok(mark) = js_sys::Reflect::get(&performance, &"mark".into())
        && let Some(mark) = mark.dyn_ref::<js_sys::Function>()
    {
        let _ = mark.call1(&performance, &name.into());
    }
}

/// How long typing must pause before a Markdown preview is made again.
const PREVIEW_PAUSE_MS: i32 = 250;

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Standard base64 (what the API's `base64` content is) to bytes.
fn decode_base64(data: &str) -> Option<Vec<u8>> {
    let binary = window().atob(data).ok()?;
    Some(binary.chars().map(|char| char as u8).collect())
}
