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
pub mod table;

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
    /// How the file is shown instead of (or, for a table, beside) its text.
    pub viewer: Option<Viewer>,
    /// A table's file shown as text in the editor instead.
    pub show_text: bool,
}

/// A file shown as what it is rather than as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// An image (PNG, JPEG, GIF, WebP, SVG): a `blob:` URL of its bytes with its type, so
    /// an SVG is drawn as an image and its scripts never run.
    Image { url: String },
    /// A CSV or TSV file: its first rows (its text is in the editor too).
    Table(table::Table),
    /// Not text: its size and where to download it.
    Binary { size: i64, download: String },
    /// A Markdown file's preview, beside its source (HTML the server made safe).
    Markdown { html: String },
}

/// Whether a file's name says it is Markdown.
pub fn is_markdown(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".md") || lower.ends_with(".markdown")
}

/// The image type a file's name says, if it is one the viewer shows.
pub fn image_type(path: &str) -> Option<&'static str> {
    let extension = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        _ => return None,
    })
}

/// Whether a file's name says it is a table (CSV, TSV).
pub fn is_table(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [".csv", ".tsv", ".tab"]
        .iter()
        .any(|end| lower.ends_with(end))
}

/// The tab after (or before) `active` in the strip, wrapping: Ctrl+Tab, Ctrl+Shift+Tab.
pub fn next_tab(tabs: &[EditorTab], active: Option<&str>, forward: bool) -> Option<String> {
    if tabs.is_empty() {
        return None;
    }
    let at = active.and_then(|active| tabs.iter().position(|tab| tab.path == active));
    let next = match (at, forward) {
        (None, _) => 0,
        (Some(i), true) => (i + 1) % tabs.len(),
        (Some(i), false) => (i + tabs.len() - 1) % tabs.len(),
    };
    Some(tabs[next].path.clone())
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
                    let (select, close, middle) = (path.clone(), path.clone(), path.clone());
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
                            // The middle button closes, as in VS Code and browsers (and does
                            // not start the browser's autoscroll).
                            on:mousedown=|event| {
                                if event.button() == 1 {
                                    event.prevent_default();
                                }
                            }
                            on:auxclick=move |event| {
                                if event.button() == 1 {
                                    event.prevent_default();
                                    handle.send(EditorCommand::Close(middle.clone()));
                                }
                            }
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
        {move || {
            current()
                .filter(|tab| tab.notice.is_none())
                .and_then(|tab| tab.viewer.clone().map(|viewer| (tab.path, tab.show_text, viewer)))
                .map(|(path, show_text, viewer)| viewer_view(tabs, path, show_text, viewer))
        }}
        <div class="editor-body">
            <div
                class="monaco-host"
                node_ref=host
                class:hidden=move || {
                    current()
                        .is_none_or(|tab| {
                            tab.notice.is_some()
                                || matches!(
                                    tab.viewer,
                                    Some(Viewer::Image { .. } | Viewer::Binary { .. })
                                )
                                || (matches!(tab.viewer, Some(Viewer::Table(_))) && !tab.show_text)
                        })
                }
            ></div>
            {move || {
                current()
                    .filter(|tab| tab.notice.is_none())
                    .and_then(|tab| match tab.viewer {
                        Some(Viewer::Markdown { html }) => Some(view! {
                            <article class="markdown-preview" aria-label="Preview" inner_html=html></article>
                        }),
                        _ => None,
                    })
            }}
        </div>
        <div class="editor-empty muted" hidden=move || active.get().is_some()>
            <p>"Open a file from the tree to edit it."</p>
            <dl>
                <dt><kbd>"Ctrl+P"</kbd></dt>
                <dd>"Open a file by name"</dd>
                <dt><kbd>"Ctrl+Enter"</kbd></dt>
                <dd>"Run the Python file"</dd>
                <dt><kbd>"Ctrl+S"</kbd></dt>
                <dd>"Save"</dd>
                <dt><kbd>"Ctrl+`"</kbd></dt>
                <dd>"Show or hide the terminal"</dd>
            </dl>
        </div>
    }
}

/// An image, a table (with the switch to its text) or a binary file's download.
fn viewer_view(
    tabs: RwSignal<Vec<EditorTab>>,
    path: String,
    show_text: bool,
    viewer: Viewer,
) -> AnyView {
    let toggle = move |text: bool| {
        let path = path.clone();
        move |_| {
            tabs.update(|tabs| {
                if let Some(tab) = tabs.iter_mut().find(|tab| tab.path == path) {
                    tab.show_text = text;
                }
            })
        }
    };
    match viewer {
        Viewer::Image { url } => view! {
            <div class="viewer viewer-image">
                <img src=url alt="" />
            </div>
        }
        .into_any(),
        Viewer::Table(_) if show_text => view! {
            <div class="viewer-bar">
                <button type="button" class="viewer-switch" on:click=toggle(false)>"Show as table"</button>
            </div>
        }
        .into_any(),
        Viewer::Table(table) => {
            let summary = format!(
                "{} rows · {} columns{}",
                table.total_rows,
                table.header.len(),
                if table.total_rows > table.rows.len() {
                    format!(" · the first {} shown", table.rows.len())
                } else {
                    String::new()
                }
            );
            view! {
                <div class="viewer viewer-table">
                    <div class="viewer-bar">
                        <span class="viewer-summary">{summary}</span>
                        <button type="button" class="viewer-switch" on:click=toggle(true)>"Show as text"</button>
                    </div>
                    <div class="viewer-scroll">
                        <table>
                            <thead>
                                <tr>
                                    <th class="row-number">"#"</th>
                                    {table.header.into_iter().map(|name| view! { <th>{name}</th> }).collect_view()}
                                </tr>
                            </thead>
                            <tbody>
                                {table
                                    .rows
                                    .into_iter()
                                    .enumerate()
                                    .map(|(n, row)| view! {
                                        <tr>
                                            <td class="row-number">{n + 1}</td>
                                            {row.into_iter().map(|cell| view! { <td>{cell}</td> }).collect_view()}
                                        </tr>
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    </div>
                </div>
            }
            .into_any()
        }
        // Beside the editor, not over it (see the editor body).
        Viewer::Markdown { .. } => ().into_any(),
        Viewer::Binary { size, download } => view! {
            <div class="viewer viewer-binary">
                <p>{format!("A binary file of {}.", human_size(size))}</p>
                <a class="viewer-download" href=download download="">"Download"</a>
            </div>
        }
        .into_any(),
    }
}

fn human_size(bytes: i64) -> String {
    match bytes {
        bytes if bytes >= 1024 * 1024 => format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0)),
        bytes if bytes >= 1024 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        bytes => format!("{bytes} bytes"),
    }
}

#[cfg(test)]
mod tab_tests {
    use super::{EditorTab, next_tab};

    #[test]
    fn ctrl_tab_cycles_through_the_strip_both_ways() {
        let tabs: Vec<EditorTab> = ["a.py", "b.py", "c.py"]
            .iter()
            .map(|path| EditorTab {
                path: (*path).to_owned(),
                ..EditorTab::default()
            })
            .collect();
        assert_eq!(next_tab(&tabs, Some("a.py"), true).as_deref(), Some("b.py"));
        assert_eq!(next_tab(&tabs, Some("c.py"), true).as_deref(), Some("a.py"));
        assert_eq!(
            next_tab(&tabs, Some("a.py"), false).as_deref(),
            Some("c.py")
        );
        assert_eq!(next_tab(&tabs, None, true).as_deref(), Some("a.py"));
        assert_eq!(next_tab(&[], Some("a.py"), true), None);
    }
}
