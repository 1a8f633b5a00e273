//! The services' error: what went wrong, in terms the edge can map to a status code.

use store::{Limit, Taken};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No valid session, or wrong credentials.
    #[error("sign in first")]
    Unauthenticated,
    /// Wrong username or password (one message for both, on purpose).
    #[error("wrong username or password")]
    BadCredentials,
    /// The current password given to confirm a change was wrong.
    #[error("the current password is wrong")]
    WrongPassword,
    /// Missing, or not this user's: the two are indistinguishable on purpose.
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    #[error("that {} is already taken", taken_name(*.0))]
    Taken(Taken),
    #[error("{0} already exists")]
    Exists(String),
    #[error("the file changed since it was opened")]
    VersionConflict { current: Option<i64> },
    #[error("{0}")]
    WrongKind(String),
    /// A size limit: 413.
    #[error("{0}")]
    TooLarge(String),
    /// A count limit: 422.
    #[error("{0}")]
    LimitReached(String),
    #[error("too many attempts; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The user has as many sandboxes running as allowed: 429. The message says what to do.
    #[error("{0}")]
    SandboxLimit(String),
    /// A dependency cannot serve this now (no room for a sandbox, its image cannot be
    /// pulled, the cluster's API fails): 503. The message is safe to show.
    #[error("{0}")]
    Unavailable(String),
    /// Anything unexpected. Logged with a reference and its whole chain of causes; the
    /// client sees only the reference.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// An unexpected error's message with every cause below it (`a: b: c`), for the log.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Display impls that already include their source (thiserror's `{0}`) are not
        // repeated.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl Error {
    /// What its user may be told, as a sentence: the message itself, except for an
    /// internal error, whose details go to the log under a reference the sentence gives.
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal(detail) => {
                let reference = uuid::Uuid::new_v4().simple().to_string();
                tracing::error!(error.reference = %reference, error.detail = %chain(detail.as_ref()), "internal error");
                format!("something went wrong on our side (reference {reference})")
            }
            other => other.to_string(),
        }
    }
}

fn taken_name(taken: Taken) -> &'static str {
    match taken {
        Taken::Username => "username",
        Taken::WorkspaceName => "workspace name",
    }
}

impl From<store::Error> for Error {
    fn from(error: store::Error) -> Self {
        use store::Error as S;
        match error {
            S::Taken(taken) => Self::Taken(taken),
            S::NotFound => Self::NotFound,
            S::Exists(path) => Self::Exists(path.to_string()),
            S::VersionConflict { current } => Self::VersionConflict { current },
            S::WrongKind { path, expected } => {
                Self::WrongKind(format!("{path} is not a {expected}"))
            }
            S::MoveIntoSelf => Self::Invalid("a folder cannot be moved into itself".into()),
            S::Limit(Limit::FileBytes) => {
                Self::TooLarge("the file is larger than the file size limit".into())
            }
            S::Limit(Limit::WorkspaceBytes) => {
                Self::TooLarge("the workspace would exceed its storage limit".into())
            }
            S::Limit(Limit::WorkspaceFiles) => Self::LimitReached(
                "the workspace has reached its limit of files and folders".into(),
            ),
            S::Limit(Limit::Workspaces) => {
                Self::LimitReached("you have reached your limit of workspaces".into())
            }
            S::Unreachable(error) => {
                tracing::warn!(error = %error, "the database is not answering");
                Self::Unavailable("the database is not answering; try again shortly".into())
            }
            other @ (S::UnsupportedUrl(_) | S::Migrate(_) | S::Database(_)) => {
                Self::Internal(Box::new(other))
            }
        }
    }
}

impl From<model::PathError> for Error {
    fn from(error: model::PathError) -> Self {
        Self::Invalid(error.to_string())
    }
}
