//! The HTML side of accounts: the sign-in, sign-up and sign-out forms post here (plain
//! `application/x-www-form-urlencoded`, so they work before — or without — the wasm
//! bundle), and a guard sends signed-out visitors of the app's pages to sign in and turns
//! a missing or foreign workspace's IDE page into the 404 page.
//!
//! `POST /signin`  `login`, `password`, `next` → cookie, 303 to `next` (a local path) or `/`
//! `POST /signup`  `username`, `email`, `password` → cookie, 303 to `/`
//! `POST /signout` → session ended, cookie cleared, 303 to `/signin`
//!
//! The account page (`/account`, also without wasm) posts its three forms here; each needs
//! a session (303 to sign in otherwise) and answers 303 to `/account` with what happened:
//!
//! `POST /account/password`  `current_password`, `new_password` → `?done=password`; every
//!                           other session is signed out
//! `POST /account/sessions`  → `?done=sessions&count=N`: every other session signed out
//! `POST /account/delete`    `password`, `confirm` → account deleted, cookie cleared, 303 to
//!                           `/signin`
//!
//! A failure answers `?failed=<form>&error=<code>`.
//!
//! The dashboard (`/`) posts its forms here too; each needs a session and answers 303 to
//! `/` (or to the new workspace's IDE):
//!
//! `POST /workspaces/new`          `name` → 303 to `/w/{id}`
//! `POST /workspaces/{id}/rename`  `name`
//! `POST /workspaces/{id}/start`   answers once the sandbox is ready (or failed)
//! `POST /workspaces/{id}/stop`
//! `POST /workspaces/{id}/delete`  the workspace and all its files
//!
//! A failure answers `/?failed=<form>&error=<code>&workspace=<id>` (and `name`, what was
//! typed into a name field, to fill it again).
//!
//! Cross-site posts to all of these are refused (403) by `security::origin_guard`, like
//! every mutating `/api` request.
//!
//! A failure redirects back to the form with `error` (an error code: the page shows a fixed
//! sentence for it, never text from the query) and what was typed (never the password, and
//! nothing longer than a field can hold) in the query, for the page to show inline.

use app::{
    ApiError,
    api_context::{ApiContext, AuthUser},
};
use axum::{
    Form,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use model::{ErrorCode, WorkspaceId};
use serde::Deserialize;
use services::accounts::ClientInfo;

/// Path of a page the app router does not know: rendering it gives the 404 page.
const NOT_FOUND_PATH: &str = "/__codepod_not_found";

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Longest `next` path carried through sign-in.
const MAX_NEXT: usize = 512;
/// Longest value of a form field sent back to the form (a login, a username, an email).
const MAX_REFLECTED: usize = 254;

/// What was typed into a field, to fill it again: nothing if longer than any valid value.
fn reflected(value: &str) -> &str {
    let value = value.trim();
    if value.len() > MAX_REFLECTED {
        ""
    } else {
        value
    }
}

/// A local path to go back to after signing in: only `/…`, never `//host` or a URL.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if next.starts_with('/')
                && next.len() <= MAX_NEXT
                && !next.starts_with("//")
                && !next.contains('\\')
                && !next.chars().any(char::is_control) =>
        {
            next.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (key, value) in pairs {
        if value.is_empty() {
            continue;
        }
        out.push(if out.is_empty() { '?' } else { '&' });
        out.push_str(key);
        out.push('=');
        out.push_str(&encode(value));
    }
    out
}

/// Percent-encodes everything but unreserved characters.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    login: String,
    password: String,
    next: Option<String>,
}

/// `POST /signin`.
pub async fn sign_in(
    State(api): State<ApiContext>,
    client: Option<axum::Extension<ClientInfo>>,
    Form(form): Form<SignInForm>,
) -> Response {
    let client = client
        .map(|axum::Extension(client)| client)
        .unwrap_or_default();
    let next = safe_next(form.next.as_deref());
    match api
        .services
        .login(&form.login, &form.password, &client)
        .await
    {
        Ok(signed_in) => with_cookie(see_other(&next), &api.cookie.set(&signed_in.token)),
        Err(error) => {
            let error = ApiError::from(error);
            let next = if next == "/" { "" } else { next.as_str() };
            see_other(&format!(
                "/signin{}",
                query(&[
                    ("error", error.code.as_str()),
                    ("login", reflected(&form.login)),
                    ("next", next),
                ])
            ))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct SignUpForm {
    username: String,
    email: String,
    password: String,
}

/// `POST /signup`.
pub async fn sign_up(
    State(api): State<ApiContext>,
    client: Option<axum::Extension<ClientInfo>>,
    Form(form): Form<SignUpForm>,
) -> Response {
    let client = client
        .map(|axum::Extension(client)| client)
        .unwrap_or_default();
    let back = |code: &str| {
        see_other(&format!(
            "/signup{}",
            query(&[
                ("error", code),
                ("username", reflected(&form.username)),
                ("email", reflected(&form.email)),
            ])
        ))
    };
    // Which field was wrong: the page says what each field takes.
    let (username, email, password) = match (
        model::Username::try_from(form.username.clone()),
        model::Email::try_from(form.email.clone()),
        model::Password::try_from(form.password.clone()),
    ) {
        (Ok(username), Ok(email), Ok(password)) => (username, email, password),
        (Err(_), _, _) => return back(ErrorCode::InvalidUsername.as_str()),
        (_, Err(_), _) => return back(ErrorCode::InvalidEmail.as_str()),
        (_, _, Err(_)) => return back(ErrorCode::InvalidPassword.as_str()),
    };
    match api
        .services
        .register(username, email, password, &client)
        .await
    {
        Ok(signed_in) => with_cookie(see_other("/"), &api.cookie.set(&signed_in.token)),
        Err(error) => back(ApiError::from(error).code.as_str()),
    }
}

/// `POST /signout`.
pub async fn sign_out(State(api): State<ApiContext>, headers: HeaderMap) -> Response {
    if let Ok(AuthUser(user)) = AuthUser::from_headers(&api, &headers).await
        && let Err(error) = api.services.logout(&user).await
    {
        tracing::warn!(error = %error, "could not end a session at sign-out");
    }
    with_cookie(see_other("/signin"), &api.cookie.clear())
}

/// Where a form of the account page goes back to: what happened, or which form failed why.
fn back_to_account(form: &str, outcome: Result<Vec<(&str, String)>, ErrorCode>) -> Response {
    match outcome {
        Ok(details) => {
            let mut pairs = vec![("done", form)];
            pairs.extend(details.iter().map(|(key, value)| (*key, value.as_str())));
            see_other(&format!("/account{}", query(&pairs)))
        }
        Err(code) => see_other(&format!(
            "/account{}",
            query(&[("failed", form), ("error", code.as_str())])
        )),
    }
}

/// The signed-in user of a form post (the account page's, the dashboard's); a visitor without
/// a session is sent to sign in (and back to that page), not answered with the API's JSON
/// error.
pub struct FormUser(services::accounts::CurrentUser);

impl<S> axum::extract::FromRequestParts<S> for FormUser
where
    ApiContext: axum::extract::FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Response> {
        AuthUser::from_request_parts(parts, state)
            .await
            .map(|AuthUser(user)| Self(user))
            .map_err(|_| {
                see_other(if parts.uri.path().starts_with("/account/") {
                    "/signin?next=%2Faccount"
                } else {
                    "/signin"
                })
            })
    }
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
}

/// `POST /account/password`.
pub async fn change_password(
    State(api): State<ApiContext>,
    FormUser(user): FormUser,
    Form(form): Form<PasswordForm>,
) -> Response {
    let outcome = match model::Password::try_from(form.new_password) {
        Ok(new) => api
            .services
            .change_password(&user, &form.current_password, new)
            .await
            .map(|()| Vec::new())
            .map_err(|error| ApiError::from(error).code),
        Err(_) => Err(ErrorCode::InvalidPassword),
    };
    back_to_account("password", outcome)
}

/// `POST /account/sessions`: signs out every other session.
pub async fn sign_out_others(State(api): State<ApiContext>, FormUser(user): FormUser) -> Response {
    let outcome = api
        .services
        .logout_others(&user)
        .await
        .map(|count| vec![("count", count.to_string())])
        .map_err(|error| ApiError::from(error).code);
    back_to_account("sessions", outcome)
}

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    password: String,
    /// The "I understand" box: absent unless ticked.
    confirm: Option<String>,
}

/// `POST /account/delete`.
pub async fn delete_account(
    State(api): State<ApiContext>,
    FormUser(user): FormUser,
    Form(form): Form<DeleteForm>,
) -> Response {
    if form.confirm.is_none() {
        return back_to_account("delete", Err(ErrorCode::InvalidInput));
    }
    match api.services.delete_account(&user, &form.password).await {
        Ok(()) => with_cookie(see_other("/signin"), &api.cookie.clear()),
        Err(error) => back_to_account("delete", Err(ApiError::from(error).code)),
    }
}

/// Where a dashboard form goes back to when it failed: which form, why, for which workspace,
/// and the name that was typed (to fill the field again).
fn back_to_dashboard(
    form: &str,
    code: ErrorCode,
    workspace: Option<WorkspaceId>,
    name: &str,
) -> Response {
    let workspace = workspace.map(|id| id.to_string()).unwrap_or_default();
    see_other(&format!(
        "/{}",
        query(&[
            ("failed", form),
            ("error", code.as_str()),
            ("workspace", &workspace),
            ("name", reflected(name)),
        ])
    ))
}

#[derive(Debug, Deserialize)]
pub struct NameForm {
    name: String,
}

/// `POST /workspaces/new`: creates a workspace and opens its IDE.
pub async fn create_workspace(
    State(api): State<ApiContext>,
    FormUser(user): FormUser,
    Form(form): Form<NameForm>,
) -> Response {
    let Ok(name) = model::WorkspaceName::try_from(form.name.clone()) else {
        return back_to_dashboard("create", ErrorCode::InvalidInput, None, &form.name);
    };
    match api
        .services
        .create_workspace(&user, name, model::Language::default())
        .await
    {
        Ok(workspace) => see_other(&format!("/w/{}", workspace.id)),
        Err(error) => back_to_dashboard("create", ApiError::from(error).code, None, &form.name),
    }
}

/// The workspace a dashboard form's path names; a malformed id is one that does not exist.
fn workspace_id(id: &str) -> Result<WorkspaceId, ErrorCode> {
    id.parse().map_err(|_| ErrorCode::NotFound)
}

/// `POST /workspaces/{id}/rename`.
pub async fn rename_workspace(
    State(api): State<ApiContext>,
    FormUser(user): FormUser,
    axum::extract::Path(id): axum::extract::Path<String>,
    Form(form): Form<NameForm>,
) -> Response {
    let id = match workspace_id(&id) {
        Ok(id) => id,
        Err(code) => return back_to_dashboard("rename", code, None, ""),
    };
    let Ok(name) = model::WorkspaceName::try_from(form.name.clone()) else {
        return back_to_dashboard("rename", ErrorCode::InvalidInput, Some(id), &form.name);
    };
    match api.services.rename_workspace(&user, id, name).await {
        Ok(_) => see_other("/"),
        Err(error) => back_to_dashboard("rename", ApiError::from(error).code, Some(id), &form.name),
    }
}

/// `POST /workspaces/{id}/start`, `/stop` and `/delete`: the dashboard's per-workspace
/// buttons. Start answers once the sandbox is ready (or failed); delete takes the workspace
/// and all its files.
pub async fn workspace_action(
    State(api): State<ApiContext>,
    FormUser(user): FormUser,
    axum::extract::Path((id, action)): axum::extract::Path<(String, String)>,
) -> Response {
    let form = match action.as_str() {
        form @ ("start" | "stop" | "delete") => form,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let id = match workspace_id(&id) {
        Ok(id) => id,
        Err(code) => return back_to_dashboard(form, code, None, ""),
    };
    let services = &api.services;
    let outcome = match form {
        "start" => services.start_workspace(&user, id).await.map(drop),
        "stop" => services.stop_workspace(&user, id).await.map(drop),
        _ => services.delete_workspace(&user, id).await,
    };
    match outcome {
        Ok(()) => see_other("/"),
        Err(error) => back_to_dashboard(form, ApiError::from(error).code, Some(id), ""),
    }
}

/// Middleware for the app's pages: `/`, `/account` and `/w/{id}` need a session (303 to
/// `/signin?next=…` otherwise); `/w/{id}` of a missing or foreign workspace renders the 404
/// page (the same answer for both); `/signin` and `/signup` with a session go to `/`.
pub async fn guard(State(api): State<ApiContext>, mut request: Request, next: Next) -> Response {
    if request.method() != axum::http::Method::GET {
        return next.run(request).await;
    }
    let path = request.uri().path().to_owned();
    let workspace = path.strip_prefix("/w/");
    let protected = path == "/" || path == "/account" || workspace.is_some();
    let auth_page = path == "/signin" || path == "/signup";
    if !protected && !auth_page {
        return next.run(request).await;
    }
    let user = AuthUser::from_headers(&api, request.headers())
        .await
        .map(|AuthUser(user)| user);
    if auth_page {
        return match user {
            Ok(_) => see_other("/"),
            Err(_) => next.run(request).await,
        };
    }
    let Ok(user) = user else {
        let target = match request.uri().query() {
            Some(query) => format!("{path}?{query}"),
            None => path.clone(),
        };
        let next_query = if target == "/" {
            String::new()
        } else {
            query(&[("next", &target)])
        };
        return see_other(&format!("/signin{next_query}"));
    };
    if let Some(id) = workspace {
        let owned = match id.parse::<WorkspaceId>() {
            Ok(id) => api.services.workspace(&user, id).await.is_ok(),
            Err(_) => false,
        };
        if !owned {
            *request.uri_mut() = Uri::from_static(NOT_FOUND_PATH);
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/w/123?x=1")), "/w/123?x=1");
        for hostile in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "evil",
            "/\nSet-Cookie: x",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            query(&[
                ("error", "bad_credentials"),
                ("login", "a&b=c d"),
                ("next", "")
            ]),
            "?error=bad_credentials&login=a%26b%3Dc%20d"
        );
    }
}
