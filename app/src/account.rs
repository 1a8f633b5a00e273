//! `/account`: change the password, sign out every other session, delete the account.
//!
//! Plain HTML forms posting to `/account/…` (handled by the server, `server/src/pages.rs`),
//! like sign-in and sign-up: the page works without the wasm bundle, gets none
//! (`shell::with_wasm`), and so is compiled into the server only. Each form comes back
//! here with what happened, or why it failed, in the query string.

use leptos::prelude::*;

/// `/account`.
#[component]
pub fn AccountPage() -> impl IntoView {
    page::view()
}

mod page {
    use leptos::prelude::*;
    use leptos_meta::Title;
    use leptos_router::hooks::use_query_map;

    use crate::{accounts::api::me, dashboard::AccountBar};

    /// What each form's outcome says: a fixed sentence, never text from the query string
    /// (anybody can write one), but for the count of sessions, read as a number.
    fn outcome(form: &str, get: impl Fn(&str) -> String) -> impl IntoView {
        let (ok, error) = if get("done") == form {
            let message = match form {
                "password" => "Password changed; your other sessions were signed out.".to_owned(),
                "sessions" => format!(
                    "Signed out {} other session(s).",
                    get("count").parse::<u64>().unwrap_or(0)
                ),
                _ => String::new(),
            };
            (Some(message), None)
        } else if get("failed") == form {
            let code = model::ErrorCode::parse(&get("error")).unwrap_or(model::ErrorCode::Unknown);
            let message = match code {
                model::ErrorCode::InvalidInput if form == "delete" => {
                    "Tick the box to confirm that you want to delete everything."
                }
                code => code.sentence(),
            };
            (None, Some(message))
        } else {
            (None, None)
        };
        view! {
            {ok.map(|message| view! { <p class="form-ok" role="status">{message}</p> })}
            {error.map(|message| view! { <p class="form-error" role="alert">{message}</p> })}
        }
    }

    pub(super) fn view() -> impl IntoView {
        let user = crate::json::resource(|| (), |_| me());
        let query = use_query_map();
        let get = move |key: &str| query.read_untracked().get(key).unwrap_or_default();
        view! {
            <Title text="Account" />
            <div class="page">
                <AccountBar />
                <main class="account">
                    <h1>"Account"</h1>
                    <Suspense fallback=|| ()>
                        {move || {
                            user.get()
                                .and_then(Result::ok)
                                .map(|user| {
                                    view! {
                                        <p class="muted">
                                            {format!("Signed in as {} ({})", user.username, user.email)}
                                        </p>
                                    }
                                })
                        }}
                    </Suspense>
                    <section class="card">
                        <h2>"Change password"</h2>
                        <form method="post" action="/account/password">
                            <label>
                                "Current password"
                                <input
                                    type="password"
                                    name="current_password"
                                    autocomplete="current-password"
                                    required
                                />
                            </label>
                            <label>
                                "New password"
                                <input
                                    type="password"
                                    name="new_password"
                                    autocomplete="new-password"
                                    minlength="10"
                                    maxlength="128"
                                    required
                                />
                            </label>
                            <button type="submit" class="primary">
                                "Change password"
                            </button>
                        </form>
                        {outcome("password", get)}
                    </section>
                    <section class="card">
                        <h2>"Sessions"</h2>
                        <p class="muted">"Sign out of Codepod on every other browser and device."</p>
                        <form method="post" action="/account/sessions">
                            <button type="submit" id="sign-out-others">
                                "Sign out everywhere else"
                            </button>
                        </form>
                        {outcome("sessions", get)}
                    </section>
                    <section class="card danger-zone">
                        <h2>"Delete account"</h2>
                        <p class="muted">
                            "Deletes your account, every workspace and every file. This cannot be undone."
                        </p>
                        <form method="post" action="/account/delete">
                            <label>
                                "Password"
                                <input
                                    type="password"
                                    name="password"
                                    autocomplete="current-password"
                                    required
                                />
                            </label>
                            <label class="check">
                                <input type="checkbox" name="confirm" required />
                                "I understand that this deletes all my workspaces and files"
                            </label>
                            <button type="submit" class="danger">
                                "Delete my account"
                            </button>
                        </form>
                        {outcome("delete", get)}
                    </section>
                </main>
            </div>
        }
    }
}
