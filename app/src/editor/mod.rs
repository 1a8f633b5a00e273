//! The editor area: tabs of open files over one Monaco editor (one model per file), save
//! with Ctrl/Cmd+S through `/api/files/write` with the version the edit started from, a
//! conflict dialog on 409, and files changed elsewhere (another tab, the terminal) reloaded
//! when there are no unsaved edits — or offered as a conflict when there are.
//!
//! Monaco loads in the browser after hydration; the server renders the tab strip and an
//! empty editor area.

#[cfg(feature = "hydrate")]
mod client;
#[cfg(feature = "hydrate")]
pub mod monaco;

use std::rc::Rc;

use leptos::prelude::*;
use model::WorkspaceId;

/// One open file.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

/// What the rest of the IDE asks of the editor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditorCommand {
    Open(String),
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
}

type Dispatch = Rc<dyn Fn(EditorCommand)>;

/// A handle the tree, the toolbar and the socket use to reach the editor.
#[derive(Clone, Copy)]
pub struct EditorHandle {
    dispatch: crate::browser_slot::BrowserSlot<Dispatch>,
    pub tabs: RwSignal<Vec<EditorTab>>,
    pub active: RwSignal<Option<String>>,
}

impl EditorHandle {
    pub fn new() -> Self {
        Self {
            dispatch: crate::browser_slot::BrowserSlot::new(),
            tabs: RwSignal::new(Vec::new()),
            active: RwSignal::new(None),
        }
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

/// The tabs and the Monaco editor.
#[component]
pub fn EditorArea(workspace: WorkspaceId, handle: EditorHandle) -> impl IntoView {
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
            let editor = client::Editor::new(workspace, element.into(), tabs, active);
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
    let _ = workspace;

    let current = move || {
        let path = active.get()?;
        tabs.read().iter().find(|tab| tab.path == path).cloned()
    };
    view! {
        <div class="editor-tabs" role="tablist" aria-label="Open files">
            <For
                each=move || tabs.get()
                key=|tab| (tab.path.clone(), tab.dirty, tab.gone)
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
