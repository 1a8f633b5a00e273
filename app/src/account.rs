//! `/account`: change the password, sign out every other session, delete the account.

use leptos::prelude::*;
use leptos_meta::Title;
use model::Password;

use crate::{
    accounts::api::{change_password, delete_account, logout_others, me},
    dashboard::AccountBar,
};

/// `/account`.
#[component]
pub fn AccountPage() -> impl IntoView {
    let user = crate::json::resource(|| (), |_| me());
    let (current, set_current) = signal(String::new());
    let (new, set_new) = signal(String::new());
    let (confirm_delete, set_confirm_delete) = signal(String::new());

    let change = Action::new(move |(current, new): &(String, String)| {
        let (current, new) = (current.clone(), new.clone());
        async move {
            let new = Password::try_from(new).map_err(|invalid| invalid.to_string())?;
            change_password(current, new)
                .await
                .map(|()| "Password changed; your other sessions were signed out.".to_owned())
                .map_err(|error| error.message)
        }
    });
    let others = Action::new(move |_: &()| async move {
        logout_others()
            .await
            .map(|count| format!("Signed out {count} other session(s)."))
            .map_err(|error| error.message)
    });
    let delete = Action::new(move |password: &String| {
        let password = password.clone();
        async move {
            delete_account(password)
                .await
                .map_err(|error| error.message)
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            let _ = window().location().set_href("/signin");
        }
    });
    let outcome = |result: Option<Result<String, String>>| match result {
        Some(Ok(message)) => view! { <p class="form-ok" role="status">{message}</p> }.into_any(),
        Some(Err(message)) => view! { <p class="form-error" role="alert">{message}</p> }.into_any(),
        None => ().into_any(),
    };

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
                    <form on:submit=move |event| {
                        event.prevent_default();
                        change.dispatch((current.get_untracked(), new.get_untracked()));
                    }>
                        <label>
                            "Current password"
                            <input
                                type="password"
                                name="current_password"
                                autocomplete="current-password"
                                required
                                on:input=move |event| set_current.set(event_target_value(&event))
                            />
                        </label>
                        <label>
                            "New password"
                            <input
                                type="password"
                                name="new_password"
                                autocomplete="new-password"
                                minlength="10"
                                required
                                on:input=move |event| set_new.set(event_target_value(&event))
                            />
                        </label>
                        <button type="submit" class="primary" disabled=move || change.pending().get()>
                            "Change password"
                        </button>
                    </form>
                    {move || outcome(change.value().get())}
                </section>
                <section class="card">
                    <h2>"Sessions"</h2>
                    <p class="muted">"Sign out of Codepod on every other browser and device."</p>
                    <button type="button" id="sign-out-others" on:click=move |_| {
                        others.dispatch(());
                    }>"Sign out everywhere else"</button>
                    {move || outcome(others.value().get())}
                </section>
                <section class="card danger-zone">
                    <h2>"Delete account"</h2>
                    <p class="muted">
                        "Deletes your account, every workspace and every file. This cannot be undone."
                    </p>
                    <form on:submit=move |event| {
                        event.prevent_default();
                        if window()
                            .confirm_with_message("Delete your account and all your workspaces?")
                            .unwrap_or(false)
                        {
                            delete.dispatch(confirm_delete.get_untracked());
                        }
                    }>
                        <label>
                            "Password"
                            <input
                                type="password"
                                name="password"
                                autocomplete="current-password"
                                required
                                on:input=move |event| {
                                    set_confirm_delete.set(event_target_value(&event))
                                }
                            />
                        </label>
                        <button type="submit" class="danger">
                            "Delete my account"
                        </button>
                    </form>
                    {move || match delete.value().get() {
                        Some(Err(message)) => {
                            view! { <p class="form-error" role="alert">{message}</p> }.into_any()
                        }
                        _ => ().into_any(),
                    }}
                </section>
            </main>
        </div>
    }
}
