//! The IDE page: header, file sidebar, editor area, terminal panel and status bar.
//!
//! Everything here renders on the server first; the panel toggles and keyboard shortcuts
//! only come alive once the wasm bundle has hydrated the page.

use leptos::{ev, prelude::*};
use leptos_meta::Title;
use model::{NotKept, SandboxStatus, WorkspaceId};

use model::ws::ServerMessage;

#[cfg(feature = "hydrate")]
use crate::accounts::api::me;
use crate::{
    editor::{EditorArea, EditorCommand, EditorHandle, save_state},
    files::tree::FileTree,
    meta::server_info,
    terminal::{Link, TerminalPanel},
    workspaces::api::{get_workspace, keepalive},
};

/// The IDE of one workspace (`/w/{id}`): file tree, editor, terminals, status bar. The
/// server has checked the session and the owner before this renders. Rendered without the
/// router (`shell::IdeApp`), so the workspace comes from the page's own path.
#[component]
pub fn IdePage() -> impl IntoView {
    let workspace = move || {
        page_path()
            .strip_prefix("/w/")
            .and_then(|id| id.parse::<WorkspaceId>().ok())
    };
    view! {
        {move || match workspace() {
            Some(workspace) => view! { <Ide workspace /> }.into_any(),
            None => view! { <crate::not_found::NotFound /> }.into_any(),
        }}
    }
}

#[component]
fn Ide(workspace: WorkspaceId) -> impl IntoView {
    let link = RwSignal::new(Link::Connecting);
    let (terminal_open, set_terminal_open) = signal(true);
    let (sidebar_open, set_sidebar_open) = signal(true);
    // Phones and narrow windows (≤ 720 px, as the stylesheet): the tree is a drawer over the
    // editor, closed until the Files button opens it, closed again when a file opens.
    let drawer_open = RwSignal::new(false);
    let narrow = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    if let Ok(Some(query)) = window().match_media(NARROW) {
        narrow.set(query.matches());
        let listener = window_event_listener(ev::resize, move |_| {
            if let Ok(Some(query)) = window().match_media(NARROW) {
                narrow.set(query.matches());
            }
        });
        on_cleanup(move || listener.remove());
    }
    let toggle_files = move |_| {
        if narrow.get_untracked() {
            drawer_open.update(|open| *open = !*open);
        } else {
            set_sidebar_open.update(|open| *open = !*open);
        }
    };
    // Flips to true in the browser once hydration has run; end-to-end tests wait on it.
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    let editor = EditorHandle::new();
    let generation = RwSignal::new(0u64);
    let run = RwSignal::new(None::<String>);
    // A folder the tree asks a terminal to `cd` into ("Open in Terminal").
    let reveal = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if reveal.read().is_some() {
            set_terminal_open.set(true);
            drawer_open.set(false);
        }
    });
    // A file opened from the drawer closes it.
    Effect::new(move |before: Option<Option<String>>| {
        let active = editor.active.get();
        if before.is_some_and(|before| before != active) {
            drawer_open.set(false);
        }
        active
    });
    let pending_run = RwSignal::new(None::<String>);

    let quick_open = RwSignal::new(false);
    // Ctrl/Cmd+Enter asks for a run of the open file (outside the terminal).
    let run_requested = RwSignal::new(0u64);
    // Ctrl+` toggles the terminal, as in VS Code; Ctrl/Cmd+S saves; Ctrl/Cmd+P quick-opens;
    // Ctrl/Cmd+Enter runs the file. Listened for in the capture phase: the terminal and the
    // editor would take them first.
    let on_key = move |event: leptos::ev::KeyboardEvent| {
        let command = event.ctrl_key() || event.meta_key();
        if command && event.key() == "Enter" && !crate::dom::event_within(&event, ".terminal-panel")
        {
            event.prevent_default();
            event.stop_propagation();
            run_requested.update(|n| *n += 1);
        } else if (event.ctrl_key() && event.key() == "Tab")
            || (event.alt_key() && matches!(event.key().as_str(), "PageDown" | "PageUp"))
        {
            // Ctrl+Tab / Ctrl+Shift+Tab (where the browser lets a page have them), and
            // Alt+PageDown / Alt+PageUp: the next or previous editor tab.
            event.prevent_default();
            event.stop_propagation();
            let forward = if event.key() == "Tab" {
                !event.shift_key()
            } else {
                event.key() == "PageDown"
            };
            let next = crate::editor::next_tab(
                &editor.tabs.read_untracked(),
                editor.active.get_untracked().as_deref(),
                forward,
            );
            if let Some(next) = next {
                editor.send(EditorCommand::Select(next));
            }
        } else if event.ctrl_key() && event.key() == "`" {
            event.prevent_default();
            event.stop_propagation();
            set_terminal_open.update(|open| *open = !*open);
        } else if command && event.key().eq_ignore_ascii_case("s") {
            event.prevent_default();
            event.stop_propagation();
            editor.send(EditorCommand::Save);
        } else if command && event.key().eq_ignore_ascii_case("p") {
            event.prevent_default();
            event.stop_propagation();
            quick_open.set(true);
        } else if event.key() == "Escape" {
            quick_open.set(false);
        }
    };
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::{JsCast, closure::Closure};
        let handler = Closure::<dyn Fn(leptos::ev::KeyboardEvent)>::new(on_key);
        let _ = window().add_event_listener_with_callback_and_bool(
            "keydown",
            handler.as_ref().unchecked_ref(),
            true,
        );
        let handler = StoredValue::new_local(Some(handler));
        on_cleanup(move || {
            if let Some(handler) = handler.try_update_value(Option::take).flatten() {
                let _ = window().remove_event_listener_with_callback_and_bool(
                    "keydown",
                    handler.as_ref().unchecked_ref(),
                    true,
                );
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = on_key;

    // Split panes: sizes dragged with the handles, remembered per user in this browser.
    let layout = RwSignal::new(Layout::default());
    let dragging = RwSignal::new(None::<Drag>);
    // Whose layout: asked in the browser only (nothing for the server render to await).
    let username = RwSignal::new(None::<String>);
    #[cfg(feature = "hydrate")]
    leptos::task::spawn_local(async move {
        if let Ok(user) = me().await {
            if let Some(saved) = Layout::load(&user.username) {
                layout.set(saved);
            }
            username.set(Some(user.username));
        }
    });
    let moves = window_event_listener(ev::pointermove, move |event| {
        if let Some(drag) = dragging.get_untracked() {
            let (x, y) = (f64::from(event.client_x()), f64::from(event.client_y()));
            layout.update(|layout| match drag {
                Drag::Sidebar { start, from } => {
                    layout.sidebar = (from + x - start).clamp(140.0, 640.0);
                }
                Drag::Terminal { start, from } => {
                    layout.terminal = (from - (y - start)).clamp(80.0, 900.0);
                }
            });
        }
    });
    let ups = window_event_listener(ev::pointerup, move |_| {
        if dragging.get_untracked().is_some() {
            dragging.set(None);
            #[cfg(feature = "hydrate")]
            if let Some(user) = username.get_untracked() {
                layout.get_untracked().save(&user);
            }
        }
    });
    on_cleanup(move || {
        moves.remove();
        ups.remove();
    });

    // Changes made in the sandbox that were not saved (a limit), until dismissed.
    let not_kept = RwSignal::new(None::<NotKept>);
    // When the last one dismissed happened, so that polls do not bring it back.
    let dismissed = RwSignal::new(0i64);
    // The tree reloads once for a burst of events (a `git clone` sends thousands).
    let reload_pending = StoredValue::new(false);
    let reload_tree = move || {
        if reload_pending.get_value() {
            return;
        }
        reload_pending.set_value(true);
        set_timeout(
            move || {
                reload_pending.set_value(false);
                generation.update(|n| *n += 1);
            },
            std::time::Duration::from_millis(TREE_RELOAD_MS),
        );
    };
    let on_files = Callback::new(move |message: ServerMessage| match message {
        ServerMessage::FileChanged { path, version } => {
            reload_tree();
            editor.send(EditorCommand::Changed { path, version })
        }
        ServerMessage::FileRemoved { path } => {
            reload_tree();
            editor.send(EditorCommand::Removed(path))
        }
        ServerMessage::FilesResync => {
            reload_tree();
            editor.send(EditorCommand::Resync);
        }
        ServerMessage::FilesNotKept { not_kept: latest } => not_kept.set(Some(latest)),
        _ => {}
    });
    // Typing in the editor counts as activity (the socket tells the server).
    let activity = RwSignal::new(0u64);
    let plots = crate::plots::PlotsState::new();
    // A traceback's link: the file at the line (a path the workspace cannot hold is ignored).
    let open_at = Callback::new(move |(path, line): (String, u32)| {
        if model::WorkspacePath::parse(&path).is_ok() {
            editor.send(EditorCommand::OpenAt { path, line });
        }
    });
    let on_activity = Callback::new(move |()| activity.update(|n| *n += 1));
    // Failed saves are tried again whenever the socket is (back) up.
    Effect::new(move |_| {
        if link.get() == Link::Ready {
            editor.send(EditorCommand::Retry);
        }
    });
    // Autosave is the user's choice, remembered in this browser; turning it on saves. A
    // choice made before the user's name has loaded wins over the remembered one.
    let chosen = StoredValue::new(false);
    Effect::new(move |_| {
        if let Some(user) = username.get() {
            if chosen.get_value() {
                Settings {
                    autosave: editor.autosave.get_untracked(),
                }
                .save(&user);
            } else {
                editor.autosave.set(Settings::load(&user).autosave);
            }
        }
    });
    let toggle_autosave = move |_| {
        chosen.set_value(true);
        let on = !editor.autosave.get_untracked();
        editor.autosave.set(on);
        if on {
            editor.send(EditorCommand::SaveAll);
        }
        if let Some(user) = username.get_untracked() {
            Settings { autosave: on }.save(&user);
        }
    };

    // Run: the active Python file, saved first.
    let active_tab = move || {
        let path = editor.active.get()?;
        editor
            .tabs
            .read()
            .iter()
            .find(|tab| tab.path == path)
            .cloned()
    };
    // Each file's arguments, as last given ("Run with arguments…"), for this page.
    let run_args = RwSignal::new(std::collections::HashMap::<String, String>::new());
    let start_run = move |path: String| {
        let args = run_args.with_untracked(|args| args.get(&path).cloned());
        let mut command = format!("python3 {}", shell_quote(&path));
        if let Some(args) = args.filter(|args| !args.is_empty()) {
            command.push(' ');
            command.push_str(&args);
        }
        run.set(Some(command));
    };
    Effect::new(move |_| {
        if let Some(path) = pending_run.get()
            && let Some(tab) = editor.tabs.read().iter().find(|tab| tab.path == path)
            && !tab.dirty
        {
            pending_run.set(None);
            start_run(path);
        }
    });
    let on_run = move |_: ()| {
        let Some(tab) = active_tab() else { return };
        set_terminal_open.set(true);
        if tab.dirty {
            pending_run.set(Some(tab.path.clone()));
            editor.send(EditorCommand::Save);
        } else {
            start_run(tab.path);
        }
    };
    let can_run =
        move || active_tab().is_some_and(|tab| tab.path.ends_with(".py") && tab.notice.is_none());
    // Asks for the script's arguments (shell words, as typed after `python3 file.py`), keeps
    // them for the file, and runs it.
    let on_run_with_args = move |_| {
        let Some(tab) = active_tab() else { return };
        #[cfg(feature = "hydrate")]
        {
            let last = run_args
                .with_untracked(|args| args.get(&tab.path).cloned())
                .unwrap_or_default();
            let question = format!(
                "Arguments for {} (as typed after python3 {}):",
                tab.path, tab.path
            );
            let answer = window()
                .prompt_with_message_and_default(&question, &last)
                .ok()
                .flatten();
            let Some(answer) = answer else { return };
            run_args.update(|args| {
                args.insert(tab.path.clone(), answer.trim().to_owned());
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = tab;
        on_run(());
    };
    // Only a new request runs: what the run reads (tabs, their state) is not tracked.
    Effect::new(move |before: Option<u64>| {
        let requests = run_requested.get();
        if before.is_some_and(|before| before != requests) {
            untrack(|| {
                if can_run() {
                    on_run(());
                }
            });
        }
        requests
    });

    // The sandbox's deadlines, polled; a clock ticking each second for the countdown.
    let status = RwSignal::new(None::<SandboxStatus>);
    let now = RwSignal::new(0i64);
    #[cfg(feature = "hydrate")]
    {
        let poll = move || {
            leptos::task::spawn_local(async move {
                if let Ok(fresh) = crate::workspaces::api::workspace_status(workspace).await {
                    // What was not kept while this page was away (or before it opened).
                    if let Some(latest) = fresh.not_kept.clone()
                        && latest.at > dismissed.get_untracked()
                    {
                        not_kept.set(Some(latest));
                    }
                    status.set(Some(fresh));
                }
            })
        };
        now.set(js_sys::Date::now() as i64);
        poll();
        let tick = set_interval_with_handle(
            move || now.set(js_sys::Date::now() as i64),
            std::time::Duration::from_secs(1),
        );
        let refresh = set_interval_with_handle(poll, std::time::Duration::from_secs(15));
        // The socket's status changes (ready, stopped) are worth a fresh poll too.
        Effect::new(move |_| {
            link.track();
            poll();
        });
        on_cleanup(move || {
            if let Ok(tick) = tick {
                tick.clear();
            }
            if let Ok(refresh) = refresh {
                refresh.clear();
            }
        });
    }
    let keep_alive = Action::new(move |_: &()| async move {
        if let Ok(fresh) = keepalive(workspace).await {
            status.set(Some(fresh));
        }
    });
    let idle_left = move || {
        let deadline = status.get()?.idle_deadline?;
        Some((deadline - now.get()).max(0))
    };
    let max_left = move || {
        let deadline = status.get()?.max_deadline?;
        Some((deadline - now.get()).max(0))
    };
    let warn = move || idle_left().is_some_and(|left| left < IDLE_WARNING_MS);

    let info = crate::json::resource(|| (), |_| server_info());
    let name = crate::json::resource(move || workspace, get_workspace);

    view! {
        // "Codepod" until the workspace's name has loaded.
        <Title text="" />
        <div
            class="ide"
            class:terminal-hidden=move || !terminal_open.get()
            class:sidebar-hidden=move || !sidebar_open.get()
            class:drawer-open=move || drawer_open.get()
            class:resizing=move || dragging.get().is_some()
            data-hydrated=move || hydrated.get().to_string()
            style=move || layout.get().css()
        >
            <header class="topbar">
                <a class="brand" href="/" title="All workspaces">
                    <img src="/icons/icon-192.png" alt="" width="22" height="22" />
                    <span>"Codepod"</span>
                </a>
                <span class="workspace-title">
                    <Suspense fallback=|| "">
                        {move || {
                            name.get()
                                .and_then(Result::ok)
                                .map(|workspace| {
                                    view! {
                                        <Title text=workspace.name.clone() />
                                        {workspace.name}
                                    }
                                })
                        }}
                    </Suspense>
                </span>
                <nav class="topbar-actions" aria-label="Layout">
                    <button
                        type="button"
                        id="run"
                        class="primary"
                        title="Run the current Python file (Ctrl+Enter)"
                        disabled=move || !can_run()
                        on:click=move |_| on_run(())
                    >
                        "▶ Run"
                    </button>
                    <button
                        type="button"
                        id="run-args"
                        class="primary run-args"
                        title="Run with arguments…"
                        aria-label="Run with arguments"
                        disabled=move || !can_run()
                        on:click=on_run_with_args
                    >
                        "⋯"
                    </button>
                    <button
                        type="button"
                        id="toggle-sidebar"
                        aria-controls="sidebar"
                        aria-pressed=move || {
                            if narrow.get() { drawer_open.get() } else { sidebar_open.get() }.to_string()
                        }
                        on:click=toggle_files
                    >
                        "Files"
                    </button>
                    <button
                        type="button"
                        id="toggle-terminal"
                        title="Toggle terminal (Ctrl+`)"
                        aria-pressed=move || terminal_open.get().to_string()
                        on:click=move |_| set_terminal_open.update(|open| *open = !*open)
                    >
                        "Terminal"
                    </button>
                </nav>
            </header>
            <div class="drawer-backdrop" on:click=move |_| drawer_open.set(false)></div>
            <aside class="sidebar" id="sidebar" aria-label="Files">
                <FileTree workspace generation editor reveal />
                <div
                    class="resize-handle vertical"
                    role="separator"
                    aria-orientation="vertical"
                    aria-label="Resize the file tree"
                    on:pointerdown=move |event| {
                        event.prevent_default();
                        dragging.set(Some(Drag::Sidebar {
                            start: f64::from(event.client_x()),
                            from: layout.get_untracked().sidebar,
                        }));
                    }
                ></div>
            </aside>
            <main class="editor" aria-label="Editor">
                <EditorArea workspace handle=editor on_activity />
            </main>
            <section class="terminal-panel" aria-label="Terminal" hidden=move || !terminal_open.get()>
                <div
                    class="resize-handle horizontal"
                    role="separator"
                    aria-orientation="horizontal"
                    aria-label="Resize the terminal"
                    on:pointerdown=move |event| {
                        event.prevent_default();
                        dragging.set(Some(Drag::Terminal {
                            start: f64::from(event.client_y()),
                            from: layout.get_untracked().terminal,
                        }));
                    }
                ></div>
                {move || {
                    not_kept
                        .get()
                        .map(|shown| {
                            let examples = shown.examples.join(", ");
                            let files = if shown.count == 1 { "change" } else { "changes" };
                            view! {
                                <div class="not-kept" role="alert">
                                    <span>
                                        {format!(
                                            "{} {files} made in the sandbox could not be saved: {}",
                                            shown.count,
                                            shown.reason,
                                        )}
                                        {(!examples.is_empty()).then(|| format!(" ({examples})"))}
                                        ". They exist only in the running sandbox and go when it stops."
                                    </span>
                                    <button
                                        type="button"
                                        class="not-kept-dismiss"
                                        on:click=move |_| {
                                            dismissed.set(not_kept.get_untracked().map_or(0, |n| n.at));
                                            not_kept.set(None);
                                        }
                                    >
                                        "Dismiss"
                                    </button>
                                </div>
                            }
                        })
                }}
                <TerminalPanel workspace link on_files run activity plots on_open=open_at reveal />
            </section>
            <QuickOpen open=quick_open generation workspace editor />
            <footer class="statusbar">
                <span class="status-item" id="server-info">
                    <Suspense fallback=|| "connecting…">
                        {move || {
                            info.get()
                                .map(|result| match result {
                                    Ok(info) => info.label(),
                                    Err(_) => "server unreachable".to_owned(),
                                })
                        }}
                    </Suspense>
                </span>
                <span class="status-item" id="sandbox-state">
                    {move || link.get().label()}
                </span>
                <span
                    class="status-item"
                    id="idle-countdown"
                    class:warning=warn
                    hidden=move || idle_left().is_none() || link.get() != Link::Ready
                    title="The sandbox stops after this long without terminal activity or saves"
                >
                    {move || {
                        idle_left()
                            .map(|left| format!("idle stop in {}", clock(left)))
                            .unwrap_or_default()
                    }}
                </span>
                <button
                    type="button"
                    id="keep-alive"
                    class="status-button"
                    hidden=move || !warn() || link.get() != Link::Ready
                    on:click=move |_| {
                        keep_alive.dispatch(());
                    }
                >
                    "Keep alive"
                </button>
                <span
                    class="status-item"
                    id="lifetime"
                    hidden=move || max_left().is_none() || link.get() != Link::Ready
                    title="A sandbox runs at most this much longer; your files are kept"
                >
                    {move || {
                        max_left().map(|left| format!("{} left", clock(left))).unwrap_or_default()
                    }}
                </span>
                <crate::workspaces::packages::PackagesButton workspace />
                <button
                    type="button"
                    id="autosave"
                    class="status-button status-right"
                    title="Save files a second after typing stops and when the editor loses focus"
                    aria-pressed=move || editor.autosave.get().to_string()
                    on:click=toggle_autosave
                >
                    {move || if editor.autosave.get() { "Autosave: on" } else { "Autosave: off" }}
                </button>
                <span
                    class="status-item"
                    id="save-state"
                    class:warning=move || editor.tabs.read().iter().any(|tab| tab.problem.is_some())
                >
                    {move || {
                        if hydrated.get() { save_state(&editor.tabs.read()) } else { "loading…" }
                    }}
                </span>
            </footer>
        </div>
    }
}

/// Sizes of the split panes, in CSS pixels.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct Layout {
    sidebar: f64,
    terminal: f64,
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            sidebar: 240.0,
            terminal: 260.0,
        }
    }
}

impl Layout {
    fn css(self) -> String {
        format!(
            "--sidebar-width: {:.0}px; --terminal-height: {:.0}px",
            self.sidebar, self.terminal
        )
    }

    #[cfg(feature = "hydrate")]
    fn key(username: &str) -> String {
        format!("codepod:layout:{username}")
    }

    #[cfg(feature = "hydrate")]
    fn load(username: &str) -> Option<Self> {
        let storage = window().local_storage().ok()??;
        let text = storage.get_item(&Self::key(username)).ok()??;
        crate::json::from_str(&text).ok()
    }

    #[cfg(feature = "hydrate")]
    fn save(self, username: &str) {
        if let Ok(Some(storage)) = window().local_storage()
            && let Ok(text) = serde_json::to_string(&self)
        {
            let _ = storage.set_item(&Self::key(username), &text);
        }
    }
}

/// The user's editor settings, kept in this browser.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct Settings {
    autosave: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self { autosave: true }
    }
}

impl Settings {
    #[cfg_attr(not(feature = "hydrate"), allow(unused_variables))]
    fn load(username: &str) -> Self {
        #[cfg(feature = "hydrate")]
        if let Some(text) = window()
            .local_storage()
            .ok()
            .flatten()
            .and_then(|storage| storage.get_item(&Self::key(username)).ok().flatten())
            && let Ok(settings) = crate::json::from_str(&text)
        {
            return settings;
        }
        Self::default()
    }

    #[cfg_attr(not(feature = "hydrate"), allow(unused_variables))]
    fn save(self, username: &str) {
        #[cfg(feature = "hydrate")]
        if let Ok(Some(storage)) = window().local_storage()
            && let Ok(text) = serde_json::to_string(&self)
        {
            let _ = storage.set_item(&Self::key(username), &text);
        }
    }

    #[cfg(feature = "hydrate")]
    fn key(username: &str) -> String {
        format!("codepod:settings:{username}")
    }
}

/// A split-pane drag in progress: where the pointer started and the size then.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Drag {
    Sidebar { start: f64, from: f64 },
    Terminal { start: f64, from: f64 },
}

/// Ctrl/Cmd+P: type part of a file's path, Enter opens the first match.
#[component]
fn QuickOpen(
    open: RwSignal<bool>,
    generation: RwSignal<u64>,
    workspace: WorkspaceId,
    editor: EditorHandle,
) -> impl IntoView {
    let (query, set_query) = signal(String::new());
    // Fetched in the browser when the overlay opens (no resource for the server to await).
    let files = RwSignal::new(Vec::<String>::new());
    let load = move || {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            if let Ok(entries) = crate::files::api::tree(workspace).await {
                files.set(
                    entries
                        .into_iter()
                        .filter(|entry| entry.kind == model::FileKind::File)
                        .map(|entry| entry.path.to_string())
                        .collect(),
                );
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = workspace;
    };
    Effect::new(move |_| {
        generation.track();
        if open.get() {
            load();
        }
    });
    let matches = move || {
        let query = query.get().to_lowercase();
        let mut ranked: Vec<(u8, String)> = files
            .get()
            .into_iter()
            .filter_map(|path| rank(&path, &query).map(|score| (score, path)))
            .collect();
        ranked.sort_by(|(a, x), (b, y)| a.cmp(b).then(x.len().cmp(&y.len())).then(x.cmp(y)));
        ranked
            .into_iter()
            .take(12)
            .map(|(_, path)| path)
            .collect::<Vec<_>>()
    };
    let choose = move |path: String| {
        open.set(false);
        set_query.set(String::new());
        editor.send(EditorCommand::Open(path));
    };
    let input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if open.get()
            && let Some(input) = input.get()
        {
            // After the overlay is shown: a hidden input cannot take the focus.
            request_animation_frame(move || {
                let _ = input.focus();
            });
        }
    });
    view! {
        <div class="quick-open" hidden=move || !open.get() on:click=move |_| open.set(false)>
            <div class="quick-open-box" on:click=|event| event.stop_propagation()>
                <input
                    node_ref=input
                    placeholder="Go to file…"
                    aria-label="Go to file"
                    prop:value=move || query.get()
                    on:input=move |event| {
                        set_query.set(event_target_value(&event));
                        // Typing before the list came (or with its fetch lost): ask again.
                        if files.with_untracked(Vec::is_empty) {
                            load();
                        }
                    }
                    on:keydown=move |event| {
                        if event.key() == "Enter" {
                            if let Some(first) = matches().into_iter().next() {
                                choose(first);
                            }
                        } else if event.key() == "Escape" {
                            open.set(false);
                        }
                    }
                />
                <ul>
                    {move || {
                        matches()
                            .into_iter()
                            .map(|path| {
                                let chosen = path.clone();
                                view! {
                                    <li>
                                        <button type="button" on:click=move |_| choose(chosen.clone())>
                                            {path}
                                        </button>
                                    </li>
                                }
                            })
                            .collect_view()
                    }}
                </ul>
            </div>
        </div>
    }
}

/// How well `path` matches a lower-case `query` (lower is better): its file name starts
/// with it, contains it, the path contains it, or has its letters in order; `None`: no match.
fn rank(path: &str, query: &str) -> Option<u8> {
    let path = path.to_lowercase();
    let name = path.rsplit('/').next().unwrap_or(&path);
    if name.starts_with(query) {
        Some(0)
    } else if name.contains(query) {
        Some(1)
    } else if path.contains(query) {
        Some(2)
    } else {
        let mut letters = path.chars();
        query
            .chars()
            .all(|wanted| letters.any(|c| c == wanted))
            .then_some(3)
    }
}

/// The path of the page being rendered (on the server) or shown (in the browser).
fn page_path() -> String {
    #[cfg(feature = "ssr")]
    {
        use_context::<http::request::Parts>()
            .map(|parts| parts.uri.path().to_owned())
            .unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        window().location().pathname().unwrap_or_default()
    }
}

/// Where the layout turns into the phone layout (the stylesheet's breakpoint).
#[cfg(feature = "hydrate")]
const NARROW: &str = "(max-width: 720px)";

/// File events within this long of each other reload the tree once.
const TREE_RELOAD_MS: u64 = 150;

/// The countdown turns into a warning (with "Keep alive") this long before the idle stop.
const IDLE_WARNING_MS: i64 = 5 * 60 * 1000;

/// `1:02:03` or `4:05`.
fn clock(ms: i64) -> String {
    let seconds = ms / 1000;
    let (h, m, s) = (seconds / 3600, (seconds / 60) % 60, seconds % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Quotes a path for bash.
fn shell_quote(path: &str) -> String {
    format!("'{}'", path.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::rank;

    #[test]
    fn quick_open_prefers_file_names_over_scattered_letters() {
        assert_eq!(rank("data.csv", "dat"), Some(0));
        assert_eq!(rank("src/my_data.py", "dat"), Some(1));
        assert_eq!(rank("data/x.py", "dat"), Some(2));
        assert_eq!(rank("codepod-upload/pkg/util.py", "dat"), Some(3));
        assert_eq!(rank("main.py", "dat"), None);
    }
}
