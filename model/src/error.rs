//! The one error vocabulary of Codepod, shared by the server and the browser: every error a
//! client can get has a stable code here, with its HTTP status and a sentence that is safe
//! to show anyone. A typo in a code does not compile.

use serde::{Deserialize, Serialize};

/// Defines [`ErrorCode`] from one table of `Variant = "code", status, "safe sentence"`.
macro_rules! error_codes {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $status:literal, $sentence:literal; )*) => {
        /// Why a request failed, as clients see it. On the wire: the snake_case string.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum ErrorCode {
            $(
                $(#[$doc])*
                #[serde(rename = $code)]
                $name,
            )*
            /// A code this build does not know (sent by a newer server).
            #[serde(other, rename = "unknown")]
            Unknown,
        }

        impl ErrorCode {
            /// Every code (but [`ErrorCode::Unknown`]), for documentation and the API schema.
            pub const ALL: &'static [ErrorCode] = &[$(Self::$name),*];

            /// The stable wire name, e.g. `version_conflict`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$name => $code,)*
                    Self::Unknown => "unknown",
                }
            }

            /// The HTTP status an error of this code is answered with.
            pub const fn status(self) -> u16 {
                match self {
                    $(Self::$name => $status,)*
                    Self::Unknown => 500,
                }
            }

            /// A sentence about this kind of error that is safe to show anyone (it says
            /// nothing about the request beyond its code).
            pub const fn sentence(self) -> &'static str {
                match self {
                    $(Self::$name => $sentence,)*
                    Self::Unknown => "Something went wrong; please try again.",
                }
            }

            /// The code named `code`, if there is one.
            pub fn parse(code: &str) -> Option<Self> {
                match code {
                    $($code => Some(Self::$name),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    /// A malformed body: JSON that does not parse, a broken multipart body or frame.
    BadRequest = "bad_request", 400, "The request could not be read.";
    /// No session, or an expired one.
    Unauthenticated = "unauthenticated", 401, "Sign in first.";
    /// A wrong login: the same answer for an unknown user and a wrong password.
    BadCredentials = "bad_credentials", 401, "Wrong username or password.";
    /// The current password, confirming a change, was wrong.
    WrongPassword = "wrong_password", 403, "The current password is wrong.";
    /// A mutating request from another site.
    CrossSite = "cross_site", 403, "This form must be sent from Codepod itself.";
    /// Missing — or another user's: the two cannot be told apart.
    NotFound = "not_found", 404, "There is nothing here.";
    MethodNotAllowed = "method_not_allowed", 405, "That method is not allowed here.";
    UsernameTaken = "username_taken", 409, "That username is taken; choose another.";
    WorkspaceNameTaken = "workspace_name_taken", 409, "You already have a workspace of that name.";
    /// Something already exists at the path.
    Exists = "exists", 409, "Something already exists there.";
    /// The file changed since it was opened; `current_version` says to what.
    VersionConflict = "version_conflict", 409, "The file changed since it was opened.";
    /// A folder where a file is expected, or the reverse.
    WrongKind = "wrong_kind", 409, "That is a folder where a file is expected, or the reverse.";
    /// A file, the workspace's storage, a request body or an upload over its limit.
    TooLarge = "too_large", 413, "That is larger than allowed.";
    UnsupportedMediaType = "unsupported_media_type", 415, "That content type is not accepted here.";
    /// A value that does not validate (a username, a path, a workspace name…).
    InvalidInput = "invalid_input", 422, "A value is not valid.";
    /// Workspaces per user, files per workspace.
    LimitReached = "limit_reached", 422, "A limit has been reached.";
    /// The sign-up form's username does not validate.
    InvalidUsername = "invalid_username", 422, "A username has 3 to 32 letters, digits, '_' or '-'.";
    /// The sign-up form's email address does not validate.
    InvalidEmail = "invalid_email", 422, "That is not an email address.";
    /// The sign-up form's password does not validate.
    InvalidPassword = "invalid_password", 422, "A password has 10 to 128 characters.";
    /// Too many failed sign-ins or sign-ups; `retry_after` says for how long.
    RateLimited = "rate_limited", 429, "Too many attempts. Wait a few minutes, then try again.";
    /// The user already runs as many sandboxes as allowed.
    TooManySandboxes = "too_many_sandboxes", 429, "You already have as many workspaces running as allowed: stop another one first.";
    /// Logged under `reference`; nothing else about it reaches the client.
    Internal = "internal", 500, "Something went wrong on our side.";
    /// The database or the sandboxes cannot serve this now: try again shortly.
    Unavailable = "unavailable", 503, "Codepod cannot do that right now; try again shortly.";
    /// Made in the browser only: the request got no answer (offline, the server restarting).
    Offline = "offline", 503, "The server cannot be reached.";
    /// The IDE socket: a binary frame without its 4-byte terminal id.
    BadFrame = "bad_frame", 400, "A terminal frame needs a 4-byte terminal id.";
    /// The IDE socket: a sandbox has as many terminals as it may.
    TooManyTerminals = "too_many_terminals", 429, "The workspace has as many terminals as it may.";
    /// The IDE socket: the sandbox refused (a path through a symlink, a special file).
    Forbidden = "forbidden", 403, "The sandbox refused that.";
    /// The IDE socket: the sandbox's agent failed to do it.
    Io = "io", 500, "The sandbox could not do that.";
    /// The IDE socket: the sandbox's agent broke the protocol.
    Protocol = "protocol", 502, "The sandbox answered something unexpected.";
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_ones_do_not_break_a_client() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).ok(), Some(*code));
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
            assert!((400..600).contains(&code.status()), "{code}");
        }
        assert_eq!(
            serde_json::from_str::<ErrorCode>("\"from_the_future\"").ok(),
            Some(ErrorCode::Unknown)
        );
        assert_eq!(ErrorCode::VersionConflict.status(), 409);
        assert_eq!(
            ErrorCode::parse("version_conflict"),
            Some(ErrorCode::VersionConflict)
        );
    }
}
