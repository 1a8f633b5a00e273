//! `ApiError`: the JSON body of every failed API call, and its HTTP status.
//!
//! ```json
//! {"code":"version_conflict","message":"the file changed since it was opened","current_version":3}
//! ```
//!
//! The status is derived from `code` in one place ([`ApiError::status`]); the server's API
//! middleware applies it to every server-function error response.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

/// A failed API call, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Machine-readable, stable: `unauthenticated`, `not_found`, `version_conflict`, ….
    pub code: String,
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
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            current_version: None,
            retry_after: None,
            reference: None,
        }
    }

    /// The HTTP status for this error's code.
    pub fn status(&self) -> u16 {
        status_for(&self.code)
    }
}

/// The HTTP status of each error code. Unknown codes are 500.
pub fn status_for(code: &str) -> u16 {
    match code {
        "bad_request" => 400,
        "unauthenticated" | "bad_credentials" => 401,
        "wrong_password" | "cross_site" => 403,
        "not_found" => 404,
        "method_not_allowed" => 405,
        "username_taken"
        | "email_taken"
        | "workspace_name_taken"
        | "exists"
        | "version_conflict"
        | "wrong_kind" => 409,
        "too_large" => 413,
        "unsupported_media_type" => 415,
        "invalid_input" | "limit_reached" => 422,
        "rate_limited" | "too_many_sandboxes" => 429,
        "unavailable" | "offline" => 503,
        _ => 500,
    }
}

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
            // Arguments that did not parse: a malformed body is a 400, a well-formed one
            // with a bad value (a username too short, a path with '..') a 422.
            ServerFnErrorErr::Args(message)
            | ServerFnErrorErr::MissingArg(message)
            | ServerFnErrorErr::Deserialization(message) => {
                // The body-size limit surfaces here when the request body is read.
                if message.contains("length limit exceeded") {
                    return Self::new("too_large", "the request body is larger than allowed");
                }
                let malformed = [
                    "expected",
                    "EOF while parsing",
                    "trailing",
                    "key must be",
                    "control character",
                ]
                .iter()
                .any(|prefix| message.starts_with(prefix));
                let code = if malformed {
                    "bad_request"
                } else {
                    "invalid_input"
                };
                Self::new(code, message)
            }
            ServerFnErrorErr::UnsupportedRequestMethod(message) => {
                Self::new("method_not_allowed", message)
            }
            // Raised in the browser only: the request never got an answer (offline, the
            // server restarting). Worth trying again, unlike a refusal.
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => {
                Self::new("offline", "the server cannot be reached")
            }
            other => Self::new("internal", other.to_string()),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<services::Error> for ApiError {
    fn from(error: services::Error) -> Self {
        use services::Error as E;
        let message = error.to_string();
        match error {
            E::Unauthenticated => Self::new("unauthenticated", message),
            E::BadCredentials => Self::new("bad_credentials", message),
            E::WrongPassword => Self::new("wrong_password", message),
            E::NotFound => Self::new("not_found", message),
            E::Invalid(_) => Self::new("invalid_input", message),
            E::Taken(store::Taken::Username) => Self::new("username_taken", message),
            E::Taken(store::Taken::Email) => Self::new("email_taken", message),
            E::Taken(store::Taken::WorkspaceName) => Self::new("workspace_name_taken", message),
            E::Exists(_) => Self::new("exists", message),
            E::VersionConflict { current } => Self {
                current_version: current,
                ..Self::new("version_conflict", message)
            },
            E::WrongKind(_) => Self::new("wrong_kind", message),
            E::TooLarge(_) => Self::new("too_large", message),
            E::LimitReached(_) => Self::new("limit_reached", message),
            E::RateLimited { retry_after_secs } => Self {
                retry_after: Some(retry_after_secs),
                ..Self::new("rate_limited", message)
            },
            E::SandboxLimit(_) => Self::new("too_many_sandboxes", message),
            E::Unavailable(_) => Self::new("unavailable", message),
            E::Internal(detail) => Self::internal(&detail),
        }
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
                "internal",
                format!("something went wrong on our side (reference {reference})"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_statuses() {
        for (code, status) in [
            ("unauthenticated", 401),
            ("not_found", 404),
            ("version_conflict", 409),
            ("too_large", 413),
            ("invalid_input", 422),
            ("rate_limited", 429),
            ("cross_site", 403),
            ("whatever", 500),
        ] {
            assert_eq!(status_for(code), status, "{code}");
        }
    }

    #[test]
    fn argument_errors_split_into_malformed_and_invalid() {
        let malformed = ApiError::from_server_fn_error(ServerFnErrorErr::Args(
            "expected value at line 1 column 1".into(),
        ));
        assert_eq!(malformed.code, "bad_request");
        let invalid = ApiError::from_server_fn_error(ServerFnErrorErr::Args(
            "a username has 3 to 32 characters".into(),
        ));
        assert_eq!(invalid.code, "invalid_input");
    }
}
