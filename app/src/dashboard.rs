//! `/`: the signed-in user's workspaces — create, open, rename, delete (after a
//! confirmation), start and stop — with each one's sandbox state and last activity, kept
//! current while the page is open. The server sends signed-out visitors to `/signin`
//! before this renders.

use leptos::prelude::*;
use leptos_meta::Title;
use model::{SandboxState, WorkspaceId, WorkspaceName, WorkspaceView};

use crate::{
    accounts::api::me,
    files::rename_field::{Done, RenameField},
    workspaces::api::{
        create_workspace, delete_workspace, list_workspaces, rename_workspace, start_workspace,
        stop_workspace,
    },
};

/// How often the open dashboard asks again for the workspaces' state and activity.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
const REFRESH_MS: u64 = 5_000;

/// The top bar of the signed-in pages: brand, account link, sign out (a plain form).
#[component]
pub fn AccountBar() -> impl IntoView {
    let user = crate::json::resource(|| (), |_| me());
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                <img src="/icons/icon-192.png" alt="" width="22" height="22" />
                <span>"Codepod"</span>
            </a>
            <nav class="topbar-actions" aria-label="Account">
                // A page without wasm (`shell::without_wasm`): loaded, not routed to.
                <a
                    class="username"
                    href="/account"
                    rel="external"
                    title="Your account: password and sessions"
                >
                    <Suspense fallback=|| "">
                        {move || user.get().and_then(Result::ok).map(|user| user.username)}
                    </Suspense>
                </a>
                <form method="post" action="/signout">
                    <button type="submit" id="sign-out">
                        "Sign out"
                    </button>
                </form>
            </nav>
        </header>
    }
}

fn ago(then_ms: i64, now: i64) -> String {
    let minutes = (now - then_ms).max(0) / 60_000;
    match minutes {
        0 => "just now".to_owned(),
        1..60 => format!("{minutes} min ago"),
        60..1440 => format!("{} h ago", minutes / 60),
        _ => format!("{} days ago", minutes / 1440),
    }
}

#[cfg(feature = "hydrate")]
fn js_now_ms() -> i64 {
    js_sys::Date::now() as i64
}

#[cfg(not(feature = "hydrate"))]
fn js_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// `/`.
#[component]
pub fn DashboardPage() -> impl IntoView {
    let workspaces = crate::json::resource(|| (), |_| list_workspaces());
    let (name, set_name) = signal(String::new());
    let (error, set_error) = signal(None::<String>);
    let navigate = leptos_router::hooks::use_navigate();
    // True once hydrated (the create form needs the wasm); end-to-end tests wait on it.
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));

    let create = Action::new(move |name: &String| {
        let name = name.clone();
        async move {
            let name = WorkspaceName::try_from(name).map_err(|invalid| invalid.to_string())?;
            create_workspace(name, None)
                .await
                .map_err(|error| error.message)
        }
    });
    Effect::new(move |_| {
        if let Some(result) = create.value().get() {
            match result {
                Ok(workspace) => navigate(&format!("/w/{}", workspace.id), Default::default()),
                Err(message) => set_error.set(Some(message)),
            }
        }
    });
    let rename = Action::new(move |(id, name): &(WorkspaceId, String)| {
        let (id, name) = (*id, name.clone());
        async move {
            let name = WorkspaceName::try_from(name).map_err(|invalid| invalid.to_string())?;
            rename_workspace(id, name)
                .await
                .map(|_| ())
                .map_err(|error| error.message)
        }
    });
    let delete = Action::new(move |id: &WorkspaceId| {
        let id = *id;
        async move { delete_workspace(id).await.map_err(|error| error.message) }
    });
    // Start or stop a workspace's sandbox (`true`: start).
    let power = Action::new(move |(id, start): &(WorkspaceId, bool)| {
        let (id, start) = (*id, *start);
        async move {
            let result = if start {
                start_workspace(id).await
            } else {
                stop_workspace(id).await
            };
            result.map(|_| ()).map_err(|error| error.message)
        }
    });
    // Live: the list is asked for again every few seconds (rows are diffed, so a rename
    // being typed survives), and the "active … ago" clock moves on.
    let now = RwSignal::new(js_now_ms());
    #[cfg(feature = "hydrate")]
    {
        let refresh = set_interval_with_handle(
            move || {
                now.set(js_now_ms());
                if !document().hidden() {
                    workspaces.refetch();
                }
            },
            std::time::Duration::from_millis(REFRESH_MS),
        );
        on_cleanup(move || {
            if let Ok(refresh) = refresh {
                refresh.clear();
            }
        });
    }
    Effect::new(move |_| {
        let results = [
            rename.value().get(),
            delete.value().get(),
            power.value().get(),
        ];
        if results.iter().all(Option::is_none) {
            return;
        }
        for result in results.into_iter().flatten() {
            if let Err(message) = result {
                set_error.set(Some(message));
            }
        }
        workspaces.refetch();
    });

    // The latest view of a workspace (its state and activity change under a kept row).
    let latest = move |id: WorkspaceId| {
        workspaces
            .get()
            .and_then(Result::ok)
            .and_then(|list| list.into_iter().find(|workspace| workspace.id == id))
    };
    let row = move |workspace: WorkspaceView| {
        let id = workspace.id;
        let state = move || latest(id).map_or(workspace.sandbox, |latest| latest.sandbox);
        let (editing, set_editing) = signal(false);
        let original = workspace.name.clone();
        let busy = move || power.pending().get() || matches!(state(), SandboxState::Starting);
        view! {
            <li class="workspace-row" data-workspace=id.to_string() data-state=move || state_name(state())>
                <div class="workspace-main">
                    <Show
                        when=move || editing.get()
                        fallback={
                            let name = workspace.name.clone();
                            move || {
                                view! {
                                    <a class="workspace-name" href=format!("/w/{id}")>
                                        {name.clone()}
                                    </a>
                                }
                            }
                        }
                    >
                        <RenameField
                            input_class="rename-input"
                            label="New name"
                            value=original.clone()
                            select_all=true
                            on_done=Callback::new(move |done: Done| {
                                set_editing.set(false);
                                if let Done::Renamed(name) = done {
                                    rename.dispatch((id, name));
                                }
                            })
                        />
                    </Show>
                    <span class="muted activity">
                        {move || {
                            let active = latest(id)
                                .map_or(workspace.last_active_at, |latest| latest.last_active_at);
                            format!("active {}", ago(active, now.get()))
                        }}
                    </span>
                </div>
                <span
                    class="badge"
                    class:running=move || state() == SandboxState::Ready
                    class:starting=move || state() == SandboxState::Starting
                    class:failed=move || state() == SandboxState::Failed
                >
                    {move || state_name(state())}
                </span>
                <div class="row-actions">
                    <a class="button" href=format!("/w/{id}")>
                        "Open"
                    </a>
                    <button
                        type="button"
                        class="power"
                        disabled=busy
                        title=move || {
                            if state() == SandboxState::Ready {
                                "Stop the sandbox (files are kept)"
                            } else {
                                "Start the sandbox"
                            }
                        }
                        on:click=move |_| {
                            let start = state() != SandboxState::Ready;
                            power.dispatch((id, start));
                        }
                    >
                        {move || if state() == SandboxState::Ready { "Stop" } else { "Start" }}
                    </button>
                    <button type="button" class="rename" on:click=move |_| set_editing.set(true)>
                        "Rename"
                    </button>
                    <button
                        type="button"
                        class="delete danger"
                        on:click={
                            let name = workspace.name.clone();
                            move |_| {
                                let question = format!(
                                    "Delete the workspace \u{201c}{name}\u{201d} and all its files? This cannot be undone.",
                                );
                                if window().confirm_with_message(&question).unwrap_or(false) {
                                    delete.dispatch(id);
                                }
                            }
                        }
                    >
                        "Delete"
                    </button>
                </div>
            </li>
        }
    };

    view! {
        <Title text="Workspaces" />
        <div class="page">
            <AccountBar />
            <main class="dashboard" data-hydrated=move || hydrated.get().to_string()>
                <h1>"Workspaces"</h1>
                <form
                    class="create-workspace"
                    on:submit=move |event| {
                        event.prevent_default();
                        set_error.set(None);
                        create.dispatch(name.get_untracked());
                    }
                >
                    <input
                        name="name"
                        placeholder="New workspace name"
                        aria-label="New workspace name"
                        required
                        maxlength="64"
                        prop:value=move || name.get()
                        on:input=move |event| set_name.set(event_target_value(&event))
                    />
                    <button type="submit" class="primary" disabled=move || create.pending().get()>
                        "Create"
                    </button>
                </form>
                <p class="form-error" role="alert" hidden=move || error.get().is_none()>
                    {move || error.get().unwrap_or_default()}
                </p>
                <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {
                        // Only a change between empty, a list and an error re-renders the list;
                        // a refreshed list is diffed row by row.
                        let shape = crate::reactive::memo(move || {
                            workspaces
                                .get()
                                .map(|result| result.map(|list| list.is_empty()).map_err(|error| error.message))
                        });
                        move || shape
                            .get()
                            .map(|result| match result {
                                Ok(true) => {
                                    view! {
                                        <p class="muted empty">
                                            "No workspaces yet. Create one to get a Python editor and a terminal."
                                        </p>
                                    }
                                        .into_any()
                                }
                                Ok(false) => {
                                    view! {
                                        <ul class="workspace-list">
                                            <For
                                                each=move || {
                                                    workspaces.get().and_then(Result::ok).unwrap_or_default()
                                                }
                                                key=|workspace| (workspace.id, workspace.name.clone())
                                                children=row
                                            />
                                        </ul>
                                    }
                                        .into_any()
                                }
                                Err(message) => {
                                    view! { <p class="form-error">{message}</p> }.into_any()
                                }
                            })
                    }
                </Transition>
            </main>
        </div>
    }
}

/// What the dashboard calls a sandbox state.
fn state_name(state: SandboxState) -> &'static str {
    match state {
        SandboxState::Stopped => "stopped",
        SandboxState::Starting => "starting",
        SandboxState::Ready => "running",
        SandboxState::Failed => "failed",
    }
}
