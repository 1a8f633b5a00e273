//! `ApiError`: the JSON body of every failed API call, and its HTTP status.
//!
//! ```json
//! {"code":"version_conflict","message":"the file changed since it was opened","current_version":3}
//! ```
//!
//! The code is a [`model::ErrorCode`] — the one vocabulary of errors, with each code's HTTP
//! status — and the status is set where the error is made: a server function's error sets
//! it on its response ([`ApiError::from`] a service error, and the argument errors).

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use model::ErrorCode;
use serde::{Deserialize, Serialize};

/// A failed API call, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApiError {
    /// Machine-readable, stable: `unauthenticated`, `not_found`, `version_conflict`, ….
    pub code: ErrorCode,
    /// Human-readable, safe to show.
    pub message: String,
    /// For `version_conflict`: the file's current version (`null`: it no longer exists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
    /// For `rate_limited`: seconds to wait (also sent as `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// For `internal`: the reference under which the server logged the details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl ApiError {
    /// An error of `code`; on the server, its response gets the code's status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        set_status(code);
        Self {
            code,
            message: message.into(),
            current_version: None,
            retry_after: None,
            reference: None,
        }
    }

    /// The HTTP status for this error's code.
    pub fn status(&self) -> u16 {
        self.code.status()
    }
}

/// Sets the status of the response being made, when there is one (a server function).
#[cfg(feature = "ssr")]
fn set_status(code: ErrorCode) {
    if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>()
        && let Ok(status) = http::StatusCode::from_u16(code.status())
    {
        response.set_status(status);
    }
}

#[cfg(not(feature = "ssr"))]
fn set_status(_code: ErrorCode) {}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // Arguments that did not parse. The server has already answered a body that is
            // not JSON at all (400, server::api_errors::json_syntax): what is left is well-formed
            // JSON with a bad value (a username too short, a path with '..', a field missing).
            ServerFnErrorErr::Args(message)
            | ServerFnErrorErr::MissingArg(message)
            | ServerFnErrorErr::Deserialization(message) => {
                // The body-size limit surfaces here when the request body is read.
                if message.contains("length limit exceeded") {
                    return Self::new(
                        ErrorCode::TooLarge,
                        "the request body is larger than allowed",
                    );
                }
                Self::new(ErrorCode::InvalidInput, message)
            }
            ServerFnErrorErr::UnsupportedRequestMethod(message) => {
                Self::new(ErrorCode::MethodNotAllowed, message)
            }
            // Raised in the browser only: the request never got an answer (offline, the
            // server restarting). Worth trying again, unlike a refusal.
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => {
                Self::new(ErrorCode::Offline, "the server cannot be reached")
            }
            #[cfg(feature = "ssr")]
            other => Self::internal(&other.to_string()),
            #[cfg(not(feature = "ssr"))]
            other => Self::new(ErrorCode::Internal, other.to_string()),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<services::Error> for ApiError {
    fn from(error: services::Error) -> Self {
        use services::Error as E;
        let message = error.to_string();
        match error {
            E::Unauthenticated => Self::new(ErrorCode::Unauthenticated, message),
            E::BadCredentials => Self::new(ErrorCode::BadCredentials, message),
            E::WrongPassword => Self::new(ErrorCode::WrongPassword, message),
            E::NotFound => Self::new(ErrorCode::NotFound, message),
            E::Invalid(_) => Self::new(ErrorCode::InvalidInput, message),
            E::Taken(store::Taken::Username) => Self::new(ErrorCode::UsernameTaken, message),
            E::Taken(store::Taken::WorkspaceName) => {
                Self::new(ErrorCode::WorkspaceNameTaken, message)
            }
            E::Exists(_) => Self::new(ErrorCode::Exists, message),
            E::VersionConflict { current } => Self {
                current_version: current,
                ..Self::new(ErrorCode::VersionConflict, message)
            },
            E::WrongKind(_) => Self::new(ErrorCode::WrongKind, message),
            E::TooLarge(_) => Self::new(ErrorCode::TooLarge, message),
            E::LimitReached(_) => Self::new(ErrorCode::LimitReached, message),
            E::RateLimited { retry_after_secs } => {
                if let Some(response) =
                    leptos::prelude::use_context::<leptos_axum::ResponseOptions>()
                {
                    response.insert_header(http::header::RETRY_AFTER, retry_after_secs.into());
                }
                Self {
                    retry_after: Some(retry_after_secs),
                    ..Self::new(ErrorCode::RateLimited, message)
                }
            }
            E::SandboxLimit(_) => Self::new(ErrorCode::TooManySandboxes, message),
            E::Unavailable(_) => Self::new(ErrorCode::Unavailable, message),
            E::Internal(detail) => Self::internal(&services::error::chain(detail.as_ref())),
        }
    }
}

/// An error as a response of its own (plain handlers, extractors): its code's status, the
/// JSON body, and `Retry-After` when rate limited.
#[cfg(feature = "ssr")]
impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let status = http::StatusCode::from_u16(self.status())
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after;
        let mut response = (status, axum::Json(self)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

#[cfg(feature = "ssr")]
impl ApiError {
    /// Logs `detail` under a fresh reference and returns an error naming only the reference.
    pub fn internal(detail: &str) -> Self {
        let reference = uuid::Uuid::new_v4().simple().to_string();
        tracing::error!(error.reference = %reference, error.detail = %detail, "internal error");
        Self {
            reference: Some(reference.clone()),
            ..Self::new(
                ErrorCode::Internal,
                format!("something went wrong on our side (reference {reference})"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_carries_its_codes_status() {
        assert_eq!(ApiError::new(ErrorCode::VersionConflict, "x").status(), 409);
        assert_eq!(ApiError::new(ErrorCode::RateLimited, "x").status(), 429);
    }

    #[test]
    fn arguments_a_server_function_refuses_are_invalid_input() {
        // The server answers bodies that are not JSON before a server function runs; what
        // a server function refuses is a bad value in well-formed JSON.
        for message in [
            "a username has 3 to 32 characters",
            "missing field `password`",
            "invalid type: integer `5`, expected a string",
            "expected a UUID",
        ] {
            let error = ApiError::from_server_fn_error(ServerFnErrorErr::Args(message.into()));
            assert_eq!(error.code, ErrorCode::InvalidInput, "{message}");
        }
        let too_large =
            ApiError::from_server_fn_error(ServerFnErrorErr::Args("length limit exceeded".into()));
        assert_eq!(too_large.code, ErrorCode::TooLarge);
    }
}
