//! Server-side plumbing shared by the server functions: the services, the session cookie,
//! the signed-in user. Only in the `ssr` build.

use leptos::prelude::*;
use leptos_axum::{ResponseOptions, extract};
use services::{
    Services,
    accounts::{ClientInfo, CurrentUser},
};

use crate::error::ApiError;

/// How the session cookie is named and flagged.
#[derive(Debug, Clone)]
pub struct SessionCookie {
    /// `__Host-codepod_session` when the public origin is https (the prefix makes the
    /// browser insist on Secure, Path=/ and no Domain), `codepod_session` otherwise.
    pub name: &'static str,
    pub secure: bool,
    pub max_age_secs: u64,
}

impl SessionCookie {
    pub fn for_origin(https: bool, max_age_secs: u64) -> Self {
        Self {
            name: if https {
                "__Host-codepod_session"
            } else {
                "codepod_session"
            },
            secure: https,
            max_age_secs,
        }
    }

    /// The `Set-Cookie` value that stores `token`.
    pub fn set(&self, token: &str) -> String {
        format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
            self.name,
            self.max_age_secs,
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that removes the cookie.
    pub fn clear(&self) -> String {
        format!(
            "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
            self.name,
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// The session token among a request's `Cookie` headers, if present.
    pub fn token(&self, headers: &http::HeaderMap) -> Option<String> {
        headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(|value| self.read(value).map(str::to_owned))
    }

    /// This cookie's value in a `Cookie` request header, if present.
    pub fn read<'a>(&self, header: &'a str) -> Option<&'a str> {
        header
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == self.name)
            .map(|(_, value)| value.trim())
    }
}

/// What the server provides to every server function as context.
#[derive(Clone)]
pub struct ApiContext {
    pub services: Services,
    pub cookie: SessionCookie,
}

/// The signed-in user of a request, from its session cookie and nothing else: the one way
/// in. Plain handlers take it as an extractor, server functions through [`current_user`],
/// the IDE socket and the page guard through [`AuthUser::from_headers`]; a missing,
/// revoked or expired session is `unauthenticated` (401).
#[derive(Debug, Clone)]
pub struct AuthUser(pub CurrentUser);

impl AuthUser {
    /// The user whose live session cookie is among `headers`.
    pub async fn from_headers(
        api: &ApiContext,
        headers: &http::HeaderMap,
    ) -> Result<Self, ApiError> {
        let token = api
            .cookie
            .token(headers)
            .ok_or(services::Error::Unauthenticated)?;
        let user = api
            .services
            .authenticate(&token)
            .await?
            .ok_or(services::Error::Unauthenticated)?;
        Ok(Self(user))
    }
}

impl<S> axum::extract::FromRequestParts<S> for AuthUser
where
    ApiContext: axum::extract::FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let api = <ApiContext as axum::extract::FromRef<S>>::from_ref(state);
        Self::from_headers(&api, &parts.headers).await
    }
}

pub fn api() -> Result<ApiContext, ApiError> {
    use_context::<ApiContext>().ok_or_else(|| ApiError::internal("ApiContext was not provided"))
}

/// The client's IP and user agent, resolved by the server's middleware.
pub async fn client() -> ClientInfo {
    extract::<axum::Extension<ClientInfo>>()
        .await
        .map(|axum::Extension(client)| client)
        .unwrap_or_default()
}

/// The signed-in user of a server function's request ([`AuthUser`]), or `unauthenticated`
/// (401).
pub async fn current_user() -> Result<(ApiContext, CurrentUser), ApiError> {
    let api = api()?;
    let headers = extract::<http::HeaderMap>().await.unwrap_or_default();
    let AuthUser(user) = AuthUser::from_headers(&api, &headers).await?;
    Ok((api, user))
}

fn append_set_cookie(value: String) {
    if let (Some(response), Ok(value)) = (
        use_context::<ResponseOptions>(),
        http::HeaderValue::from_str(&value),
    ) {
        response.append_header(http::header::SET_COOKIE, value);
    }
}

pub fn set_session_cookie(api: &ApiContext, token: &str) {
    append_set_cookie(api.cookie.set(token));
}

pub fn clear_session_cookie(api: &ApiContext) {
    append_set_cookie(api.cookie.clear());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_cookies_are_host_prefixed_and_secure() {
        let cookie = SessionCookie::for_origin(true, 60);
        assert_eq!(
            cookie.set("tok"),
            "__Host-codepod_session=tok; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        let plain = SessionCookie::for_origin(false, 60);
        assert_eq!(
            plain.set("tok"),
            "codepod_session=tok; Path=/; HttpOnly; SameSite=Lax; Max-Age=60"
        );
        assert!(plain.clear().contains("Max-Age=0"));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let cookie = SessionCookie::for_origin(false, 60);
        assert_eq!(cookie.read("a=1; codepod_session=abc; b=2"), Some("abc"));
        assert_eq!(cookie.read("codepod_session_x=1"), None);
    }
}
