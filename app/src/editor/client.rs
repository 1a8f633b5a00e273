//! The browser side of the editor: Monaco, one model per open file, and the file API.

use std::{
    cell::RefCell,
    collections::HashMap,
    rc::{Rc, Weak},
};

use leptos::prelude::*;
use model::{Content, WorkspaceId, WorkspacePath};
use wasm_bindgen::prelude::*;
use web_sys::HtmlElement;

use super::{EditorCommand, EditorTab, monaco};
use crate::files::api::{read_file, write_file};

/// Files larger than this open as a notice, not in the editor.
const MAX_EDITOR_BYTES: i64 = 2 * 1024 * 1024;

struct Open {
    model: monaco::Model,
    /// The stored version the text in the model is based on.
    version: i64,
    /// Monaco's alternative version id at the last load or save: equal means not dirty.
    saved: f64,
    listener: monaco::Disposable,
    _on_change: Closure<dyn FnMut()>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.listener.dispose();
        self.model.dispose();
    }
}

pub struct Editor {
    workspace: WorkspaceId,
    host: HtmlElement,
    tabs: RwSignal<Vec<EditorTab>>,
    active: RwSignal<Option<String>>,
    monaco: RefCell<Option<monaco::Editor>>,
    open: RefCell<HashMap<String, Open>>,
    /// Opened before Monaco had loaded.
    waiting: RefCell<Vec<String>>,
    this: Weak<Editor>,
}

impl Editor {
    pub fn new(
        workspace: WorkspaceId,
        host: HtmlElement,
        tabs: RwSignal<Vec<EditorTab>>,
        active: RwSignal<Option<String>>,
    ) -> Rc<Self> {
        Rc::new_cyclic(|this| Self {
            workspace,
            host,
            tabs,
            active,
            monaco: RefCell::default(),
            open: RefCell::default(),
            waiting: RefCell::default(),
            this: this.clone(),
        })
    }

    /// Loads Monaco and creates the editor, then opens what was asked for meanwhile.
    pub async fn start(self: Rc<Self>) {
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
            (
                "theme",
                (if crate::vendor::prefers_dark() {
                    "vs-dark"
                } else {
                    "vs"
                })
                .into(),
            ),
            ("tabSize", 4.into()),
        ]);
        let editor = monaco::create_editor(&self.host, &options);
        let _ = self.host.set_attribute("data-ready", "true");
        mark("codepod-editor-ready");
        *self.monaco.borrow_mut() = Some(editor);
        let waiting: Vec<String> = self.waiting.borrow_mut().drain(..).collect();
        for path in waiting {
            self.open(path);
        }
    }

    pub fn dispose(&self) {
        self.open.borrow_mut().clear();
        if let Some(editor) = self.monaco.borrow_mut().take() {
            editor.dispose();
        }
    }

    pub fn command(&self, command: EditorCommand) {
        match command {
            EditorCommand::Open(path) => self.open(path),
            EditorCommand::Select(path) => self.select(&path),
            EditorCommand::Close(path) => self.close(&path),
            EditorCommand::Save => {
                if let Some(path) = self.active.get_untracked() {
                    self.save(path, false);
                }
            }
            EditorCommand::Reload(path) => self.load(path, true),
            EditorCommand::Overwrite(path) => self.save(path, true),
            EditorCommand::Changed { path, version } => self.changed_elsewhere(path, version),
            EditorCommand::Removed(path) => self.update_tab(&path, |tab| tab.gone = true),
        }
    }

    fn update_tab(&self, path: &str, change: impl FnOnce(&mut EditorTab)) {
        self.tabs.update(|tabs| {
            if let Some(tab) = tabs.iter_mut().find(|tab| tab.path == path) {
                change(tab);
            }
        });
    }

    fn open(&self, path: String) {
        if self.monaco.borrow().is_none() {
            self.waiting.borrow_mut().push(path);
            return;
        }
        let known = self
            .tabs
            .read_untracked()
            .iter()
            .any(|tab| tab.path == path);
        if !known {
            self.tabs.update(|tabs| {
                tabs.push(EditorTab {
                    path: path.clone(),
                    dirty: false,
                    notice: Some("Loading…".into()),
                    conflict: false,
                    gone: false,
                })
            });
            self.load(path.clone(), false);
        }
        self.select(&path);
    }

    fn select(&self, path: &str) {
        self.active.set(Some(path.to_owned()));
        if let Some(editor) = self.monaco.borrow().as_ref() {
            let open = self.open.borrow();
            editor.set_model(open.get(path).map(|open| &open.model));
            if open.contains_key(path) {
                editor.focus();
            }
        }
    }

    fn close(&self, path: &str) {
        let dirty = self
            .tabs
            .read_untracked()
            .iter()
            .any(|tab| tab.path == path && tab.dirty);
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
        self.tabs.update(|tabs| tabs.retain(|tab| tab.path != path));
        if self.active.get_untracked().as_deref() == Some(path) {
            match self
                .tabs
                .read_untracked()
                .last()
                .map(|tab| tab.path.clone())
            {
                Some(next) => self.select(&next),
                None => self.active.set(None),
            }
        }
    }

    /// Reads the file and puts it in its model (a new model, or the text replaced).
    fn load(&self, path: String, replace: bool) {
        let weak = self.this.clone();
        let workspace = self.workspace;
        leptos::task::spawn_local(async move {
            let Ok(parsed) = WorkspacePath::parse(&path) else {
                return;
            };
            let result = read_file(workspace, parsed).await;
            let Some(editor) = weak.upgrade() else { return };
            match result {
                Ok(view) => match view.content {
                    Content::Utf8(text) if view.entry.size <= MAX_EDITOR_BYTES => {
                        editor.loaded(&path, &text, view.entry.version, replace);
                    }
                    Content::Utf8(_) => editor.update_tab(&path, |tab| {
                        tab.notice = Some(format!(
                            "{path} is {} KiB, too large for the editor. Download it or use the terminal.",
                            view.entry.size / 1024
                        ));
                    }),
                    Content::Base64(_) => editor.update_tab(&path, |tab| {
                        tab.notice = Some(format!(
                            "{path} is a binary file. Download it or use the terminal."
                        ));
                    }),
                },
                Err(error) => editor.update_tab(&path, |tab| {
                    tab.notice = Some(format!("Cannot open {path}: {}", error.message));
                }),
            }
        });
    }

    fn loaded(&self, path: &str, text: &str, version: i64, replace: bool) {
        let existing = self.open.borrow().contains_key(path);
        if existing {
            let mut open = self.open.borrow_mut();
            if let Some(open) = open.get_mut(path) {
                if replace || open.model.get_value() != text {
                    open.model.set_value(text);
                }
                open.version = version;
                open.saved = open.model.alternative_version_id();
            }
        } else {
            let uri = monaco::Uri::parse(&format!("file:///{}/{path}", self.workspace));
            let model = monaco::create_model(text, monaco::language_for(path), &uri);
            let weak = self.this.clone();
            let watched = path.to_owned();
            let on_change = Closure::<dyn FnMut()>::new(move || {
                if let Some(editor) = weak.upgrade() {
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
                    listener,
                    _on_change: on_change,
                },
            );
        }
        self.update_tab(path, |tab| {
            tab.notice = None;
            tab.dirty = false;
            tab.conflict = false;
            tab.gone = false;
        });
        if self.active.get_untracked().as_deref() == Some(path) {
            self.select(path);
        }
    }

    fn edited(&self, path: &str) {
        let dirty = self
            .open
            .borrow()
            .get(path)
            .is_some_and(|open| open.model.alternative_version_id() != open.saved);
        let shown = self
            .tabs
            .read_untracked()
            .iter()
            .any(|tab| tab.path == path && tab.dirty == dirty);
        if !shown {
            self.update_tab(path, |tab| tab.dirty = dirty);
        }
    }

    /// Saves a file from the version its edit started at (`force`: over whatever is stored).
    fn save(&self, path: String, force: bool) {
        let Some((text, version, alternative)) = self.open.borrow().get(&path).map(|open| {
            (
                open.model.get_value(),
                open.version,
                open.model.alternative_version_id(),
            )
        }) else {
            return;
        };
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
            match result {
                Ok(entry) => {
                    if let Some(open) = editor.open.borrow_mut().get_mut(&path) {
                        open.version = entry.version;
                        open.saved = alternative;
                    }
                    editor.update_tab(&path, |tab| {
                        tab.conflict = false;
                        tab.gone = false;
                    });
                    editor.edited(&path);
                }
                Err(error) if error.code == "version_conflict" => {
                    editor.update_tab(&path, |tab| tab.conflict = true);
                }
                Err(error) => {
                    let _ = window()
                        .alert_with_message(&format!("Could not save {path}: {}", error.message));
                }
            }
        });
    }

    /// Another tab saved, or the terminal changed the file.
    fn changed_elsewhere(&self, path: String, version: Option<i64>) {
        let Some(version) = version else { return };
        let (newer, dirty) = match self.open.borrow().get(&path) {
            Some(open) => (
                version > open.version,
                open.model.alternative_version_id() != open.saved,
            ),
            None => return,
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
