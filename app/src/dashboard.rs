//! `/`: the signed-in user's workspaces — create, open, rename, delete (after a
//! confirmation) — with whether each one's sandbox is running. The server sends signed-out
//! visitors to `/signin` before this renders.

use leptos::prelude::*;
use leptos_meta::Title;
use model::{SandboxState, WorkspaceId, WorkspaceName, WorkspaceView};

use crate::{
    accounts::api::me,
    workspaces::api::{create_workspace, delete_workspace, list_workspaces, rename_workspace},
};

/// The top bar of the signed-in pages: brand, account link, sign out (a plain form).
#[component]
pub fn AccountBar() -> impl IntoView {
    let user = Resource::new(|| (), |_| me());
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                <img src="/icons/icon-192.png" alt="" width="22" height="22" />
                <span>"Codepod"</span>
            </a>
            <nav class="topbar-actions" aria-label="Account">
                <a class="username" href="/account">
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

fn ago(then_ms: i64) -> String {
    let now = js_now_ms();
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
    let workspaces = Resource::new(|| (), |_| list_workspaces());
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
    Effect::new(move |_| {
        let results = [rename.value().get(), delete.value().get()];
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

    let row = move |workspace: WorkspaceView| {
        let id = workspace.id;
        let running = workspace.sandbox == SandboxState::Ready;
        let (editing, set_editing) = signal(false);
        let original = workspace.name.clone();
        view! {
            <li class="workspace-row" data-workspace=id.to_string()>
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
                        {
                            let original = original.clone();
                            view! {
                                <input
                                    class="rename-input"
                                    aria-label="New name"
                                    value=original.clone()
                                    autofocus
                                    on:keydown=move |event| {
                                        if event.key() == "Enter" {
                                            rename.dispatch((id, event_target_value(&event)));
                                            set_editing.set(false);
                                        } else if event.key() == "Escape" {
                                            set_editing.set(false);
                                        }
                                    }
                                />
                            }
                        }
                    </Show>
                    <span class="muted">{format!("active {}", ago(workspace.last_active_at))}</span>
                </div>
                <span class="badge" class:running=running>
                    {if running { "running" } else { "stopped" }}
                </span>
                <div class="row-actions">
                    <a class="button" href=format!("/w/{id}")>
                        "Open"
                    </a>
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
                    {move || {
                        workspaces
                            .get()
                            .map(|result| match result {
                                Ok(list) if list.is_empty() => {
                                    view! {
                                        <p class="muted empty">
                                            "No workspaces yet. Create one to get a Python editor and a terminal."
                                        </p>
                                    }
                                        .into_any()
                                }
                                Ok(list) => {
                                    view! {
                                        <ul class="workspace-list">
                                            {list.into_iter().map(row).collect_view()}
                                        </ul>
                                    }
                                        .into_any()
                                }
                                Err(error) => {
                                    view! { <p class="form-error">{error.message}</p> }.into_any()
                                }
                            })
                    }}
                </Transition>
            </main>
        </div>
    }
}
