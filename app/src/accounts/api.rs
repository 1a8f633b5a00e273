//! `POST /api/users/…`: register, login, logout, me, password, delete.

use leptos::{prelude::*, server_fn::codec::Json};
use model::{Email, Password, UserView, Username};

#[cfg(feature = "ssr")]
use crate::api_context::{api, clear_session_cookie, client, current_user, set_session_cookie};
use crate::error::ApiError;

/// Creates an account and signs it in (sets the session cookie).
#[server(
    prefix = "/api",
    endpoint = "users/register",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn register(
    username: Username,
    email: Email,
    password: Password,
) -> Result<UserView, ApiError> {
    let api = api()?;
    let signed_in = api
        .services
        .register(username, email, password, &client().await)
        .await?;
    set_session_cookie(&api, &signed_in.token);
    Ok(signed_in.user)
}

/// Signs in with a username or email address and a password; a new session every time.
#[server(
    prefix = "/api",
    endpoint = "users/login",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn login(login: String, password: String) -> Result<UserView, ApiError> {
    let api = api()?;
    let signed_in = api
        .services
        .login(&login, &password, &client().await)
        .await?;
    set_session_cookie(&api, &signed_in.token);
    Ok(signed_in.user)
}

/// Ends this session server-side and clears the cookie.
#[server(
    prefix = "/api",
    endpoint = "users/logout",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn logout() -> Result<(), ApiError> {
    let (api, user) = current_user().await?;
    api.services.logout(&user).await?;
    clear_session_cookie(&api);
    Ok(())
}

/// Ends every other session of this user ("sign out everywhere else").
#[server(
    prefix = "/api",
    endpoint = "users/logout_others",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn logout_others() -> Result<u64, ApiError> {
    let (api, user) = current_user().await?;
    Ok(api.services.logout_others(&user).await?)
}

/// The signed-in user.
#[server(
    prefix = "/api",
    endpoint = "users/me",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn me() -> Result<UserView, ApiError> {
    let (api, user) = current_user().await?;
    Ok(api.services.me(&user).await?)
}

/// Changes the password; every other session of the user is signed out.
#[server(
    prefix = "/api",
    endpoint = "users/password",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn change_password(
    current_password: String,
    new_password: Password,
) -> Result<(), ApiError> {
    let (api, user) = current_user().await?;
    api.services
        .change_password(&user, &current_password, new_password)
        .await?;
    Ok(())
}

/// Deletes the account with its workspaces and files, after checking the password.
#[server(
    prefix = "/api",
    endpoint = "users/delete",
    input = Json,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn delete_account(password: String) -> Result<(), ApiError> {
    let (api, user) = current_user().await?;
    api.services.delete_account(&user, &password).await?;
    clear_session_cookie(&api);
    Ok(())
}
