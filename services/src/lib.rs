//! Application logic behind the server functions and (later) the WebSocket hub: accounts
//! and auth sessions, workspaces, files, authorization and limits.
//!
//! Services never see Leptos or HTTP types; the `app` crate's server functions are thin
//! adapters over them, and they are tested directly. Identity is always an
//! [`accounts::CurrentUser`] obtained from a session token, never a parameter.

pub mod accounts;
pub mod error;
pub mod events;
pub mod files;
pub mod markdown;
pub mod sandboxes;
pub mod workspaces;

use std::{sync::Arc, time::Duration};

use model::Limits;
use store::Store;

use crate::accounts::{PasswordHasher, RateLimiter};
pub use crate::error::{Error, Result};
pub use crate::sandboxes::{Activity, SandboxSettings, Sandboxes};

/// Settings for accounts and sessions.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// A session unused for this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, used or not.
    pub absolute_timeout: Duration,
    /// Failed sign-ins allowed per account and client IP within `login_window` (ten times as
    /// many per account from every IP).
    pub login_failures_per_account: u32,
    /// Failed sign-ins for unknown accounts allowed per client IP within `login_window`.
    pub login_failures_per_ip: u32,
    pub login_window: Duration,
    /// Accounts that may be created from one client IP within `signup_window`.
    pub signups_per_ip: u32,
    pub signup_window: Duration,
    /// Argon2id memory cost in KiB (OWASP minimum: 19456).
    pub argon2_memory_kib: u32,
    /// Argon2id iterations (OWASP minimum with 19 MiB: 2).
    pub argon2_iterations: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(7 * 24 * 3600),
            absolute_timeout: Duration::from_secs(30 * 24 * 3600),
            login_failures_per_account: 5,
            login_failures_per_ip: 20,
            login_window: Duration::from_secs(15 * 60),
            signups_per_ip: 20,
            signup_window: Duration::from_secs(10 * 60),
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
        }
    }
}

/// Everything the services need, shared by every request. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// The store and the sandboxes take bare ids: reached only through the methods here,
    /// which check the owner first.
    store: Arc<dyn Store>,
    pub limits: Limits,
    pub auth: AuthSettings,
    sandboxes: Sandboxes,
    /// File events for open IDE tabs.
    pub events: events::Events,
    ended_sessions: tokio::sync::broadcast::Sender<accounts::SessionsEnded>,
    hasher: PasswordHasher,
    /// Failed sign-ins per account and client IP.
    account_failures: RateLimiter,
    /// Failed sign-ins per account from every IP (ten times the per-IP budget).
    account_everywhere_failures: RateLimiter,
    /// Failed sign-ins for unknown accounts per client IP.
    ip_failures: RateLimiter,
    ip_signups: RateLimiter,
}

impl Services {
    /// Builds the services over a store. Computes a dummy password hash once, so that
    /// signing in as an unknown user costs the same as a wrong password.
    pub async fn new(
        store: Arc<dyn Store>,
        limits: Limits,
        auth: AuthSettings,
        sandboxes: Sandboxes,
    ) -> Result<Self> {
        let hasher = PasswordHasher::new(auth.argon2_memory_kib, auth.argon2_iterations).await?;
        sandboxes.keep_packages_in(store.clone());
        Ok(Self {
            account_failures: RateLimiter::new(auth.login_failures_per_account, auth.login_window),
            account_everywhere_failures: RateLimiter::new(
                auth.login_failures_per_account.saturating_mul(10),
                auth.login_window,
            ),
            ip_failures: RateLimiter::new(auth.login_failures_per_ip, auth.login_window),
            ip_signups: RateLimiter::new(auth.signups_per_ip, auth.signup_window),
            store,
            limits,
            auth,
            sandboxes,
            events: events::Events::default(),
            ended_sessions: tokio::sync::broadcast::channel(accounts::SESSIONS_ENDED_QUEUE).0,
            hasher,
        })
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
