//! Sign in and sign up: plain HTML forms posting to `/signin` and `/signup` (handled by the
//! server), so they work without the wasm bundle; they get none (`shell::with_wasm`) and
//! are compiled into the server only. A failed attempt comes back here with the error in the
//! query string, shown inline; the password is never echoed.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// The sentence to show for an error code the server sent back: the code's own fixed
/// sentence. The query string is anybody's to write, so no text from it is ever shown.
fn message_for(code: &str) -> &'static str {
    if code.is_empty() {
        return "";
    }
    model::ErrorCode::parse(code)
        .unwrap_or(model::ErrorCode::Unknown)
        .sentence()
}

/// The frame of both forms: a plain POST to `action`, the brand, the title, the error.
#[component]
fn AuthCard(
    action: &'static str,
    title: &'static str,
    error: String,
    children: Children,
) -> impl IntoView {
    view! {
        <form class="auth-card" method="post" action=action>
            <a class="brand" href="/">
                <img src="/icons/icon-192.png" alt="" width="28" height="28" />
                <span>"Codepod"</span>
            </a>
            <h1>{title}</h1>
            <p class="form-error" role="alert" hidden=error.is_empty()>
                {error.clone()}
            </p>
            {children()}
        </form>
    }
}

/// `/signin`.
#[component]
pub fn SignInPage() -> impl IntoView {
    sign_in()
}

fn sign_in() -> impl IntoView {
    let query = use_query_map();
    let get = move |key: &str| query.read_untracked().get(key).unwrap_or_default();
    let error = message_for(&get("error")).to_owned();
    view! {
        <Title text="Sign in" />
        <main class="auth-page">
            <AuthCard action="/signin" title="Sign in" error>
                <label>
                    "Username or email"
                    <input
                        name="login"
                        autocomplete="username"
                        required
                        autofocus
                        value=get("login")
                    />
                </label>
                <label>
                    "Password"
                    <input
                        type="password"
                        name="password"
                        autocomplete="current-password"
                        required
                    />
                </label>
                <input type="hidden" name="next" value=get("next") />
                <button type="submit" class="primary">
                    "Sign in"
                </button>
                <p class="muted">"New to Codepod? " <a href="/signup">"Create an account"</a></p>
            </AuthCard>
        </main>
    }
}

/// `/signup`.
#[component]
pub fn SignUpPage() -> impl IntoView {
    sign_up()
}

fn sign_up() -> impl IntoView {
    let query = use_query_map();
    let get = move |key: &str| query.read_untracked().get(key).unwrap_or_default();
    let error = message_for(&get("error")).to_owned();
    view! {
        <Title text="Create an account" />
        <main class="auth-page">
            <AuthCard action="/signup" title="Create an account" error>
                <label>
                    "Username"
                    <input
                        name="username"
                        autocomplete="username"
                        required
                        minlength="3"
                        maxlength="32"
                        pattern="[A-Za-z0-9_\\-]+"
                        title="3–32 letters, digits, '_' or '-'"
                        autofocus
                        value=get("username")
                    />
                </label>
                <label>
                    "Email"
                    <input type="email" name="email" autocomplete="email" required value=get("email") />
                </label>
                <label>
                    "Password"
                    <input
                        type="password"
                        name="password"
                        autocomplete="new-password"
                        required
                        minlength="10"
                    />
                    <small class="muted">"At least 10 characters."</small>
                </label>
                <button type="submit" class="primary">
                    "Create account"
                </button>
                <p class="muted">"Already have an account? " <a href="/signin">"Sign in"</a></p>
            </AuthCard>
        </main>
    }
}
