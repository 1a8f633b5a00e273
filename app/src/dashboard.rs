//! `/`: the signed-in user's workspaces — create, open, rename, delete (after a
//! confirmation), start and stop — with each one's sandbox state and last activity, kept
//! current while the page is open. The server sends signed-out visitors to `/signin`
//! before this renders.
//!
//! Plain HTML forms posting to `/workspaces/…` (handled by the server, `server/src/pages.rs`),
//! so the page works before — or without — the wasm bundle, and its view is compiled into the
//! server only. Renaming and deleting are steps of the page itself (`/?rename=<id>`,
//! `/?delete=<id>`: the row shows the name field, or asks to confirm). The bundle does not
//! hydrate this page: `live` keeps its rows current in place (state, activity, the Start/Stop
//! button) and puts the focus in a rename field.

#[cfg(feature = "ssr")]
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use model::WorkspaceView;
use model::{SandboxState, WorkspaceId};

/// How often the open dashboard asks again for the workspaces' state and activity.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
const REFRESH_MS: u64 = 5_000;

/// The top bar of the signed-in pages: brand, account link, sign out (a plain form).
#[cfg(feature = "ssr")]
#[component]
pub fn AccountBar() -> impl IntoView {
    let user = crate::json::resource(|| (), |_| crate::accounts::api::me());
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                <img src="/icons/icon-192.png" alt="" width="22" height="22" />
                <span>"Codepod"</span>
            </a>
            <nav class="topbar-actions" aria-label="Account">
                <a class="username" href="/account" title="Your account: password and sessions">
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

/// "active 3 min ago": how long ago `then_ms` was at `now` (both in ms since the epoch).
fn ago(then_ms: i64, now: i64) -> String {
    let minutes = (now - then_ms).max(0) / 60_000;
    let ago = match minutes {
        0 => "just now".to_owned(),
        1..60 => format!("{minutes} min ago"),
        60..1440 => format!("{} h ago", minutes / 60),
        _ => format!("{} days ago", minutes / 1440),
    };
    format!("active {ago}")
}

/// What the dashboard calls a sandbox state (also the badge's class).
fn state_name(state: SandboxState) -> &'static str {
    match state {
        SandboxState::Stopped => "stopped",
        SandboxState::Starting => "starting",
        SandboxState::Ready => "running",
        SandboxState::Failed => "failed",
    }
}

/// The Start/Stop button of a workspace in `state`: where its form posts, its label and
/// title, and whether it is disabled (while the sandbox starts).
struct Power {
    action: String,
    label: &'static str,
    title: &'static str,
    disabled: bool,
}

impl Power {
    fn of(id: WorkspaceId, state: SandboxState) -> Self {
        let running = state == SandboxState::Ready;
        Self {
            action: format!(
                "/workspaces/{id}/{}",
                if running { "stop" } else { "start" }
            ),
            label: if running { "Stop" } else { "Start" },
            title: if running {
                "Stop the sandbox (files are kept)"
            } else {
                "Start the sandbox"
            },
            disabled: state == SandboxState::Starting,
        }
    }
}

/// `/`. Never hydrated: the browser has no code for its view (`live` enhances it instead).
#[cfg(feature = "ssr")]
#[component]
pub fn DashboardPage() -> impl IntoView {
    page::view()
}

#[cfg(feature = "ssr")]
mod page {
    use leptos::prelude::*;
    use leptos_meta::Title;
    use leptos_router::hooks::use_query_map;

    use super::{AccountBar, Power, WorkspaceView, ago, state_name};
    use crate::workspaces::api::list_workspaces;

    /// What a failed form says: a fixed sentence for its error code, never text from the
    /// query string (anybody can write one).
    fn failure(form: &str, code: &str) -> &'static str {
        let code = model::ErrorCode::parse(code).unwrap_or(model::ErrorCode::Unknown);
        match code {
            model::ErrorCode::InvalidInput if matches!(form, "create" | "rename") => {
                "A workspace name has 1 to 64 characters, without '/', '\\' or control characters."
            }
            code => code.sentence(),
        }
    }

    /// What a row shows besides its name: the name field, the delete question, or neither.
    #[derive(Clone, Copy, PartialEq)]
    enum Step {
        Show,
        Rename,
        Delete,
    }

    fn row(workspace: WorkspaceView, step: Step, typed: Option<String>, now: i64) -> impl IntoView {
        let id = workspace.id;
        let state = workspace.sandbox;
        let power = Power::of(id, state);
        let open = format!("/w/{id}");
        let name = workspace.name.to_string();
        let main = if step == Step::Rename {
            view! {
                <form class="rename-form" method="post" action=format!("/workspaces/{id}/rename")>
                    <input
                        class="rename-input"
                        name="name"
                        aria-label="New name"
                        required
                        maxlength="64"
                        autofocus
                        value=typed.unwrap_or_else(|| name.clone())
                    />
                    <button type="submit" class="save">
                        "Save"
                    </button>
                    <a class="action" href="/">
                        "Cancel"
                    </a>
                </form>
            }
            .into_any()
        } else {
            view! { <a class="workspace-name" href=open.clone()>{name.clone()}</a> }.into_any()
        };
        let confirm = (step == Step::Delete).then(|| {
            view! {
                <form class="delete-confirm" method="post" action=format!("/workspaces/{id}/delete")>
                    <span>
                        {format!(
                            "Delete the workspace \u{201c}{name}\u{201d} and all its files? This cannot be undone.",
                        )}
                    </span>
                    <button type="submit" class="danger">
                        "Delete for good"
                    </button>
                    <a class="action" href="/">
                        "Cancel"
                    </a>
                </form>
            }
        });
        view! {
            <li
                class="workspace-row"
                data-workspace=id.to_string()
                data-name=workspace.name.to_string()
                data-state=state_name(state)
            >
                <div class="workspace-main">
                    {main}
                    <span class="muted activity">{ago(workspace.last_active_at, now)}</span>
                </div>
                <span class=format!("badge {}", state_name(state))>{state_name(state)}</span>
                <div class="row-actions">
                    <a class="button" href=open>
                        "Open"
                    </a>
                    <form method="post" action=power.action>
                        <button
                            type="submit"
                            class="power"
                            title=power.title
                            disabled=power.disabled
                        >
                            {power.label}
                        </button>
                    </form>
                    <a class="action rename" href=format!("/?rename={id}")>
                        "Rename"
                    </a>
                    <a class="action delete danger" href=format!("/?delete={id}")>
                        "Delete"
                    </a>
                </div>
                {confirm}
            </li>
        }
    }

    pub(super) fn view() -> impl IntoView {
        let workspaces = crate::json::resource(|| (), |_| list_workspaces());
        let query = use_query_map();
        let get = move |key: &str| query.read_untracked().get(key).unwrap_or_default();
        let failed = get("failed");
        let error = (!failed.is_empty()).then(|| failure(&failed, &get("error")));
        let typed_new = if failed == "create" {
            get("name")
        } else {
            String::new()
        };
        // The row being renamed or deleted: asked for by the link, or the form that failed.
        let (step, step_of) = if !get("rename").is_empty() {
            (Step::Rename, get("rename"))
        } else if !get("delete").is_empty() {
            (Step::Delete, get("delete"))
        } else if failed == "rename" {
            (Step::Rename, get("workspace"))
        } else {
            (Step::Show, String::new())
        };
        let typed_rename = (failed == "rename").then(|| get("name"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as i64);
        view! {
            <Title text="Workspaces" />
            <div class="page">
                <AccountBar />
                <main class="dashboard" data-live="false">
                    <h1>"Workspaces"</h1>
                    <form class="create-workspace" method="post" action="/workspaces/new">
                        <input
                            name="name"
                            placeholder="New workspace name"
                            aria-label="New workspace name"
                            required
                            maxlength="64"
                            value=typed_new
                        />
                        <button type="submit" class="primary">
                            "Create"
                        </button>
                    </form>
                    {error.map(|message| view! { <p class="form-error" role="alert">{message}</p> })}
                    <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
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
                                        let rows = list
                                            .into_iter()
                                            .map(|workspace| {
                                                let this = workspace.id.to_string() == step_of;
                                                let step = if this { step } else { Step::Show };
                                                let typed = this.then(|| typed_rename.clone()).flatten();
                                                row(workspace, step, typed, now)
                                            })
                                            .collect_view();
                                        view! { <ul class="workspace-list">{rows}</ul> }.into_any()
                                    }
                                    Err(error) => {
                                        view! { <p class="form-error">{error.message}</p> }.into_any()
                                    }
                                })
                        }}
                    </Suspense>
                </main>
            </div>
        }
    }
}

/// The open dashboard, kept current in the browser without hydrating it.
#[cfg(feature = "hydrate")]
pub mod live {
    use leptos::prelude::{document, set_interval_with_handle, window};
    use model::WorkspaceView;
    use wasm_bindgen::{JsCast, prelude::Closure};
    use web_sys::{Element, HtmlInputElement, KeyboardEvent};

    use super::{Power, REFRESH_MS, WorkspaceId, ago, state_name};
    use crate::workspaces::api::list_workspaces;

    /// Starts keeping the dashboard current if this page is the dashboard; `false` if not.
    pub fn start() -> bool {
        let Some(main) = document().query_selector("main.dashboard").ok().flatten() else {
            return false;
        };
        crate::shell::register_service_worker();
        // The row being renamed: its field has the focus with the whole name selected;
        // Escape cancels.
        if let Some(input) = document()
            .query_selector(".rename-input")
            .ok()
            .flatten()
            .and_then(|input| input.dyn_into::<HtmlInputElement>().ok())
        {
            let _ = input.focus();
            input.select();
            let escape = Closure::<dyn Fn(KeyboardEvent)>::new(|event: KeyboardEvent| {
                if event.key() == "Escape" {
                    let _ = window().location().assign("/");
                }
            });
            let _ =
                input.add_event_listener_with_callback("keydown", escape.as_ref().unchecked_ref());
            escape.forget();
        }
        // The page lives as long as the wasm does: the interval is never cleared.
        let _ = set_interval_with_handle(refresh, std::time::Duration::from_millis(REFRESH_MS));
        let _ = main.set_attribute("data-live", "true");
        true
    }

    fn refresh() {
        if document().hidden() {
            return;
        }
        wasm_bindgen_futures::spawn_local(async {
            if let Ok(list) = list_workspaces().await {
                show(&list);
            }
        });
    }

    fn rows() -> Vec<Element> {
        let Ok(rows) = document().query_selector_all("li.workspace-row") else {
            return Vec::new();
        };
        (0..rows.length())
            .filter_map(|index| rows.item(index)?.dyn_into::<Element>().ok())
            .collect()
    }

    /// Puts `list` into the page: each row's state, activity and Start/Stop button in place;
    /// a workspace made, renamed or deleted elsewhere reloads the page, unless the user is
    /// typing into it or answering its question.
    fn show(list: &[WorkspaceView]) {
        let rows = rows();
        let mut shown: Vec<(String, String)> = rows
            .iter()
            .map(|row| {
                let get = |name| row.get_attribute(name).unwrap_or_default();
                (get("data-workspace"), get("data-name"))
            })
            .collect();
        let mut listed: Vec<(String, String)> = list
            .iter()
            .map(|workspace| (workspace.id.to_string(), workspace.name.to_string()))
            .collect();
        shown.sort();
        listed.sort();
        if shown != listed {
            if !busy() {
                let _ = window().location().reload();
            }
            return;
        }
        let now = js_sys::Date::now() as i64;
        for row in rows {
            let id = row
                .get_attribute("data-workspace")
                .and_then(|id| id.parse::<WorkspaceId>().ok());
            let Some(workspace) = list.iter().find(|workspace| Some(workspace.id) == id) else {
                continue;
            };
            let state = state_name(workspace.sandbox);
            let _ = row.set_attribute("data-state", state);
            if let Ok(Some(badge)) = row.query_selector(".badge") {
                badge.set_class_name(&format!("badge {state}"));
                badge.set_text_content(Some(state));
            }
            if let Ok(Some(activity)) = row.query_selector(".activity") {
                activity.set_text_content(Some(&ago(workspace.last_active_at, now)));
            }
            let power = Power::of(workspace.id, workspace.sandbox);
            if let Ok(Some(button)) = row.query_selector("button.power") {
                button.set_text_content(Some(power.label));
                let _ = button.set_attribute("title", power.title);
                let _ = button.toggle_attribute_with_force("disabled", power.disabled);
                if let Some(form) = button.parent_element() {
                    let _ = form.set_attribute("action", &power.action);
                }
            }
        }
    }

    /// Whether reloading now would lose what the user is doing: a name being typed, a
    /// delete being confirmed.
    fn busy() -> bool {
        let typing = document()
            .query_selector(".create-workspace input")
            .ok()
            .flatten()
            .and_then(|input| input.dyn_into::<HtmlInputElement>().ok())
            .is_some_and(|input| !input.value().is_empty());
        let asking = document()
            .query_selector(".rename-input, .delete-confirm")
            .ok()
            .flatten()
            .is_some();
        typing || asking
    }
}

#[cfg(test)]
mod tests {
    use super::{Power, ago};
    use model::{SandboxState, WorkspaceId};

    #[test]
    fn activity_is_said_in_the_largest_whole_unit() {
        let minute = 60_000;
        assert_eq!(ago(0, 59_999), "active just now");
        assert_eq!(ago(0, 3 * minute), "active 3 min ago");
        assert_eq!(ago(0, 125 * minute), "active 2 h ago");
        assert_eq!(ago(0, 3 * 1440 * minute), "active 3 days ago");
        // A clock behind the server's: never "in the future".
        assert_eq!(ago(10 * minute, 0), "active just now");
    }

    #[test]
    fn the_power_button_stops_a_running_sandbox_and_starts_any_other() {
        let id: WorkspaceId = "00000000-0000-4000-8000-000000000000".parse().unwrap();
        let running = Power::of(id, SandboxState::Ready);
        assert_eq!(running.action, format!("/workspaces/{id}/stop"));
        assert_eq!(running.label, "Stop");
        for state in [
            SandboxState::Stopped,
            SandboxState::Failed,
            SandboxState::Starting,
        ] {
            let power = Power::of(id, state);
            assert_eq!(power.action, format!("/workspaces/{id}/start"));
            assert_eq!(power.label, "Start");
            assert_eq!(power.disabled, state == SandboxState::Starting);
        }
    }
}
