//! The IDE page: header, file sidebar, editor area, terminal panel and status bar.
//!
//! Everything here renders on the server first; the panel toggles and keyboard shortcuts
//! only come alive once the wasm bundle has hydrated the page.

use leptos::{ev, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use model::WorkspaceId;

use crate::{
    meta::server_info,
    terminal::{Link, TerminalPanel},
};

/// The IDE shell; with a workspace (`/w/{id}`), its terminal.
#[component]
pub fn IdePage() -> impl IntoView {
    let params = use_params_map();
    let workspace = move || {
        params
            .read()
            .get("id")
            .and_then(|id| id.parse::<WorkspaceId>().ok())
    };
    let link = RwSignal::new(Link::Connecting);
    let (terminal_open, set_terminal_open) = signal(true);
    let (sidebar_open, set_sidebar_open) = signal(true);
    // Flips to true in the browser once hydration has run; end-to-end tests wait on it.
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));

    // Ctrl+` toggles the terminal, as in VS Code. Registered only in the browser.
    let keys = window_event_listener(ev::keydown, move |event| {
        if event.ctrl_key() && event.key() == "`" {
            event.prevent_default();
            set_terminal_open.update(|open| *open = !*open);
        }
    });
    on_cleanup(move || keys.remove());

    let info = Resource::new(|| (), |_| server_info());

    view! {
        <Title text="" />
        <div
            class="ide"
            class:terminal-hidden=move || !terminal_open.get()
            class:sidebar-hidden=move || !sidebar_open.get()
            data-hydrated=move || hydrated.get().to_string()
        >
            <header class="topbar">
                <a class="brand" href="/">
                    <img src="/icons/icon-192.png" alt="" width="22" height="22" />
                    <span>"Codepod"</span>
                </a>
                <nav class="topbar-actions" aria-label="Layout">
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
                <h2 class="panel-title">"Explorer"</h2>
                <p class="muted">"Open a workspace to see its files here."</p>
            </aside>
            <main class="editor" aria-label="Editor">
                <section class="welcome">
                    <h1>"Python in your browser"</h1>
                    <p>
                        "Each workspace gets an editor, a real bash terminal in an isolated sandbox, and files kept safe in the database."
                    </p>
                    <h2>"Keys"</h2>
                    <dl class="keys">
                        <dt>
                            <kbd>"Ctrl"</kbd>
                            "+"
                            <kbd>"`"</kbd>
                        </dt>
                        <dd>"Show or hide the terminal"</dd>
                    </dl>
                </section>
            </main>
            <section class="terminal-panel" aria-label="Terminal" hidden=move || !terminal_open.get()>
                {move || match workspace() {
                    Some(workspace) => view! { <TerminalPanel workspace link /> }.into_any(),
                    None => view! {
                        <div class="panel-tabs">
                            <span class="panel-tab active">"bash"</span>
                        </div>
                        <div class="terminal-body">
                            <p class="muted">"The terminal starts when a workspace is open."</p>
                        </div>
                    }
                    .into_any(),
                }}
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
                <span class="status-item" id="sandbox-state" hidden=move || workspace().is_none()>
                    {move || link.get().label()}
                </span>
                <span class="status-item status-right">
                    {move || if hydrated.get() { "ready" } else { "loading…" }}
                </span>
            </footer>
        </div>
    }
}
