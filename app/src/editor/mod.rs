//! The editor area: tabs of open files over one Monaco editor (one model per file).
//!
//! Nothing typed is lost:
//! - **Autosave** (on by default, like VS Code's `afterDelay`): a file is saved a second
//!   after typing stops and when the editor loses focus, through the same version check as
//!   Ctrl/Cmd+S — a newer version stored meanwhile is a conflict (reload theirs / overwrite
//!   with mine), never a silent overwrite.
//! - **Unsaved buffers live in this browser** (`localStorage`) until they are saved: a
//!   reload, a crashed tab or a lost network finds them again, and they are put back in
//!   their files (with the version they were edited from).
//! - **A save that fails** (offline, the server restarting) says so in its tab and the
//!   status bar, and is tried again — with backoff, when the browser is back online and when
//!   the IDE's socket reconnects. Leaving the page with unsaved work asks first.
//! - Typing counts as activity: the sandbox is not stopped as idle under a user who edits.
//!
//! Files changed elsewhere (another tab, the terminal) are reloaded when there are no
//! unsaved edits — keeping the cursor, the scroll position and the focus where they were —
//! or offered as a conflict when there are.
//!
//! Monaco loads in the browser after hydration; the server renders the tab strip and an
//! empty editor area.

#[cfg(feature = "hydrate")]
mod client;
#[cfg(feature = "hydrate")]
pub mod lsp;
#[cfg(feature = "hydrate")]
pub mod monaco;

use std::rc::Rc;

use leptos::prelude::*;
use model::WorkspaceId;

/// One open file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EditorTab {
    pub path: String,
    pub dirty: bool,
    /// Shown instead of the editor (a binary or too large file, a load error).
    pub notice: Option<String>,
    /// The file changed elsewhere while this tab has unsaved edits, or a save hit a newer
    /// version: offer reload or overwrite.
    pub conflict: bool,
    /// Deleted or moved away elsewhere.
    pub gone: bool,
    /// A save is on its way.
    pub saving: bool,
    /// The last save failed, and why ("not saved — retrying…").
    pub problem: Option<String>,
    /// Unsaved edits kept in this browser were put back, from this time (Unix ms).
    pub restored: Option<i64>,
}

/// What the rest of the IDE asks of the editor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditorCommand {
    Open(String),
    /// Open a file with the cursor on a line (a traceback's link).
    OpenAt {
        path: String,
        line: u32,
    },
    Close(String),
    Select(String),
    /// Save the active file.
    Save,
    /// Throw away unsaved edits and load what is stored.
    Reload(String),
    /// Save over the newer stored version.
    Overwrite(String),
    /// A file event from the IDE socket.
    Changed {
        path: String,
        version: Option<i64>,
    },
    Removed(String),
    /// Events may have been missed: check every open file against what is stored.
    Resync,
    /// Try failed saves again now (the network or the socket is back).
    Retry,
    /// Save every file with unsaved edits (autosave was turned on).
    SaveAll,
}

/// How the editor area's state reads in the status bar.
pub fn save_state(tabs: &[EditorTab]) -> &'static str {
    if tabs.iter().any(|tab| tab.problem.is_some()) {
        "not saved — retrying"
    } else if tabs.iter().any(|tab| tab.saving) {
        "saving…"
    } else if tabs.iter().any(|tab| tab.dirty) {
        "unsaved changes"
    } else {
        "all changes saved"
    }
}

type Dispatch = Rc<dyn Fn(EditorCommand)>;

/// A handle the tree, the toolbar and the socket use to reach the editor.
#[derive(Clone, Copy)]
pub struct EditorHandle {
    dispatch: crate::browser_slot::BrowserSlot<Dispatch>,
    pub tabs: RwSignal<Vec<EditorTab>>,
    pub active: RwSignal<Option<String>>,
    /// Save after a pause in typing and on blur (the user's setting).
    pub autosave: RwSignal<bool>,
}

impl EditorHandle {
    pub fn new() -> Self {
        Self {
            dispatch: crate::browser_slot::BrowserSlot::new(),
            tabs: RwSignal::new(Vec::new()),
            active: RwSignal::new(None),
            autosave: RwSignal::new(true),
        }
    }

    /// Whether leaving the page now would lose something not yet stored on the server.
    pub fn has_unsaved(&self) -> bool {
        self.tabs
            .read_untracked()
            .iter()
            .any(|tab| tab.dirty || tab.saving || tab.problem.is_some())
    }

    pub fn send(&self, command: EditorCommand) {
        self.dispatch.with(|dispatch| {
            if let Some(dispatch) = dispatch {
                dispatch(command);
            }
        });
    }
}

impl Default for EditorHandle {
    fn default() -> Self {
        Self::new()
    }
}

/// The tabs and the Monaco editor. `on_activity` is called (at most every few seconds)
/// while the user types.
#[component]
pub fn EditorArea(
    workspace: WorkspaceId,
    handle: EditorHandle,
    on_activity: Callback<()>,
) -> impl IntoView {
    let host = NodeRef::<leptos::html::Div>::new();
    let tabs = handle.tabs;
    let active = handle.active;

    #[cfg(feature = "hydrate")]
    {
        let started = StoredValue::new_local(None::<Rc<client::Editor>>);
        Effect::new(move |_| {
            let Some(element) = host.get() else { return };
            if started.with_value(Option::is_some) {
                return;
            }
            let editor = client::Editor::new(
                workspace,
                element.into(),
                tabs,
                active,
                handle.autosave,
                on_activity,
            );
            let target = editor.clone();
            handle
                .dispatch
                .set(Some(Rc::new(move |command| target.command(command))));
            started.set_value(Some(editor.clone()));
            leptos::task::spawn_local(async move { editor.start().await });
        });
        on_cleanup(move || {
            handle.dispatch.set(None);
            if let Some(editor) = started.try_update_value(Option::take).flatten() {
                editor.dispose();
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (workspace, on_activity);

    let current = move || {
        let path = active.get()?;
        tabs.read().iter().find(|tab| tab.path == path).cloned()
    };
    view! {
        <div class="editor-tabs" role="tablist" aria-label="Open files">
            <For
                each=move || tabs.get()
                key=|tab| (tab.path.clone(), tab.dirty, tab.gone, tab.problem.is_some())
                let:tab
            >
                {
                    let path = tab.path.clone();
                    let name = path.rsplit('/').next().unwrap_or(&path).to_owned();
                    let (select, close) = (path.clone(), path.clone());
                    let is_active = {
                        let path = path.clone();
                        move || active.get().as_deref() == Some(path.as_str())
                    };
                    view! {
                        <span
                            class="editor-tab"
                            role="tab"
                            title=path.clone()
                            data-path=path.clone()
                            class:active=is_active.clone()
                            class:dirty=tab.dirty
                            class:gone=tab.gone
                            class:unsaved=tab.problem.is_some()
                            aria-selected=move || is_active().to_string()
                            on:click=move |_| handle.send(EditorCommand::Select(select.clone()))
                        >
                            <span class="tab-name">{name}</span>
                            <span class="dirty-dot" aria-label="unsaved" hidden=!tab.dirty>
                                "●"
                            </span>
                            <button
                                type="button"
                                class="tab-close"
                                aria-label="Close file"
                                on:click=move |event| {
                                    event.stop_propagation();
                                    handle.send(EditorCommand::Close(close.clone()));
                                }
                            >
                                "×"
                            </button>
                        </span>
                    }
                }
            </For>
        </div>
        {move || {
            current()
                .filter(|tab| tab.conflict)
                .map(|tab| {
                    let (reload, overwrite) = (tab.path.clone(), tab.path.clone());
                    view! {
                        <div class="conflict" role="alertdialog" aria-label="Conflict">
                            <span>
                                {format!(
                                    "{} was changed elsewhere since you started editing.",
                                    tab.path,
                                )}
                            </span>
                            <button
                                type="button"
                                class="conflict-reload"
                                on:click=move |_| handle.send(EditorCommand::Reload(reload.clone()))
                            >
                                "Reload theirs"
                            </button>
                            <button
                                type="button"
                                class="conflict-overwrite"
                                on:click=move |_| {
                                    handle.send(EditorCommand::Overwrite(overwrite.clone()))
                                }
                            >
                                "Overwrite with mine"
                            </button>
                        </div>
                    }
                })
        }}
        {move || {
            current()
                .and_then(|tab| tab.problem)
                .map(|problem| {
                    view! {
                        <div class="save-problem" role="alert">
                            {problem}
                        </div>
                    }
                })
        }}
        {move || {
            current()
                .filter(|tab| tab.restored.is_some() && !tab.conflict)
                .map(|tab| {
                    let discard = tab.path.clone();
                    view! {
                        <div class="restored" role="status">
                            <span>
                                "Unsaved changes kept in this browser were put back in this file."
                            </span>
                            <button
                                type="button"
                                class="restored-discard"
                                on:click=move |_| handle.send(EditorCommand::Reload(discard.clone()))
                            >
                                "Discard them"
                            </button>
                        </div>
                    }
                })
        }}
        {move || {
            current()
                .and_then(|tab| tab.notice)
                .map(|notice| view! { <p class="editor-notice">{notice}</p> })
        }}
        <div
            class="monaco-host"
            node_ref=host
            class:hidden=move || current().is_none_or(|tab| tab.notice.is_some())
        ></div>
        <p class="editor-empty muted" hidden=move || active.get().is_some()>
            "Open a file from the tree to edit it. Ctrl+S saves."
        </p>
    }
}
