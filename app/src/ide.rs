//! The IDE page: header, file sidebar, editor area, terminal panel and status bar.
//!
//! Everything here renders on the server first; the panel toggles and keyboard shortcuts
//! only come alive once the wasm bundle has hydrated the page.

use leptos::{ev, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use model::{SandboxStatus, WorkspaceId};

use model::ws::ServerMessage;

use crate::{
    editor::{EditorArea, EditorCommand, EditorHandle},
    files::tree::FileTree,
    meta::server_info,
    terminal::{Link, TerminalPanel},
    workspaces::api::{get_workspace, keepalive},
};

/// The IDE of one workspace (`/w/{id}`): file tree, editor, terminals, status bar. The
/// server has checked the session and the owner before this renders.
#[component]
pub fn IdePage() -> impl IntoView {
    let params = use_params_map();
    let workspace = move || {
        params
            .read()
            .get("id")
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
    // Flips to true in the browser once hydration has run; end-to-end tests wait on it.
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    let editor = EditorHandle::new();
    let generation = RwSignal::new(0u64);
    let run = RwSignal::new(None::<String>);
    let pending_run = RwSignal::new(None::<String>);

    // Ctrl+` toggles the terminal, as in VS Code; Ctrl/Cmd+S saves. Browser only.
    let keys = window_event_listener(ev::keydown, move |event| {
        let command = event.ctrl_key() || event.meta_key();
        if event.ctrl_key() && event.key() == "`" {
            event.prevent_default();
            set_terminal_open.update(|open| *open = !*open);
        } else if command && event.key().eq_ignore_ascii_case("s") {
            event.prevent_default();
            editor.send(EditorCommand::Save);
        }
    });
    on_cleanup(move || keys.remove());

    let on_files = Callback::new(move |message: ServerMessage| {
        generation.update(|n| *n += 1);
        match message {
            ServerMessage::FileChanged { path, version } => {
                editor.send(EditorCommand::Changed { path, version })
            }
            ServerMessage::FileRemoved { path } => editor.send(EditorCommand::Removed(path)),
            _ => {}
        }
    });

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
    let start_run = move |path: String| {
        run.set(Some(format!("python3 {}", shell_quote(&path))));
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
    let on_run = move |_| {
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

    // The sandbox's deadlines, polled; a clock ticking each second for the countdown.
    let status = RwSignal::new(None::<SandboxStatus>);
    let now = RwSignal::new(0i64);
    #[cfg(feature = "hydrate")]
    {
        let poll = move || {
            leptos::task::spawn_local(async move {
                if let Ok(fresh) = crate::workspaces::api::workspace_status(workspace).await {
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

    let info = Resource::new(|| (), |_| server_info());
    let name = Resource::new(move || workspace, get_workspace);

    view! {
        // "Codepod" until the workspace's name has loaded.
        <Title text="" />
        <div
            class="ide"
            class:terminal-hidden=move || !terminal_open.get()
            class:sidebar-hidden=move || !sidebar_open.get()
            data-hydrated=move || hydrated.get().to_string()
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
                        title="Run the current Python file"
                        disabled=move || !can_run()
                        on:click=on_run
                    >
                        "▶ Run"
                    </button>
                    <button
                        type="button"
                        id="toggle-sidebar"
                        aria-pressed=move || sidebar_open.get().to_string()
                        on:click=move |_| set_sidebar_open.update(|open| *open = !*open)
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
            <aside class="sidebar" aria-label="Files">
                <FileTree workspace generation editor />
            </aside>
            <main class="editor" aria-label="Editor">
                <EditorArea workspace handle=editor />
            </main>
            <section class="terminal-panel" aria-label="Terminal" hidden=move || !terminal_open.get()>
                <TerminalPanel workspace link on_files run />
            </section>
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
                <span class="status-item status-right">
                    {move || if hydrated.get() { "ready" } else { "loading…" }}
                </span>
            </footer>
        </div>
    }
}

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
