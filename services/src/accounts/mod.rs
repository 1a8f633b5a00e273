//! Accounts and auth sessions: register, sign in and out, change the password, delete the
//! account, and resolve a session token to the [`CurrentUser`].
//!
//! A session token is 32 random bytes (base64url in the cookie); only its SHA-256 is stored.
//! Every sign-in issues a new token (no fixation); sign-out deletes the row server-side.

mod password;
mod rate_limit;

use std::time::Instant;

use base64::Engine as _;
use model::{Email, Password, UserId, UserView, Username};
use sha2::Digest as _;
use store::{SessionRecord, UserRecord};
use uuid::Uuid;

pub use self::{password::PasswordHasher, rate_limit::RateLimiter};
use crate::{Error, Result, Services, duration_ms, now_ms};

/// Accounts tried when signing in by an email address shared by several (oldest first).
const MAX_ACCOUNTS_PER_ADDRESS: u32 = 8;
/// Longest user agent stored with a session.
const MAX_USER_AGENT: usize = 256;
/// `last_seen_at` is written at most this often per session, so reads stay reads.
const TOUCH_EVERY_MS: i64 = 60_000;

/// The signed-in user of a request, resolved from its session cookie.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: UserId,
    pub username: String,
    token_hash: Vec<u8>,
}

/// Sessions that just ended, for whoever holds one open (an IDE socket): sign-out, sign-out
/// everywhere else, a password change, an account deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionsEnded {
    /// This session (by its token's hash).
    One(Vec<u8>),
    /// Every session of the user but `keep`.
    AllBut { user: UserId, keep: Vec<u8> },
    /// Every session of the user.
    All(UserId),
}

impl SessionsEnded {
    /// Whether `user`'s session is among them.
    pub fn includes(&self, user: &CurrentUser) -> bool {
        match self {
            Self::One(hash) => *hash == user.token_hash,
            Self::AllBut { user: id, keep } => *id == user.id && *keep != user.token_hash,
            Self::All(id) => *id == user.id,
        }
    }
}

/// Ended sessions waiting for a slow listener; past this it re-checks its session instead.
pub const SESSIONS_ENDED_QUEUE: usize = 256;

/// What the services know of the client making a request.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's IP (after trusted-proxy resolution), for rate limiting.
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
}

/// A new session: the token for the cookie and the user it belongs to.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub token: String,
    pub user: UserView,
}

fn view(user: &UserRecord) -> UserView {
    UserView {
        id: user.id,
        username: user.username.clone(),
        email: user.email.clone(),
        created_at: user.created_at,
    }
}

fn hash_token(token: &str) -> Vec<u8> {
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

impl Services {
    async fn start_session(&self, user: &UserRecord, client: &ClientInfo) -> Result<SignedIn> {
        let mut bytes = [0u8; 32];
        password::fill_random(&mut bytes)?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = now_ms();
        let user_agent = client
            .user_agent
            .as_ref()
            .map(|agent| agent.chars().take(MAX_USER_AGENT).collect());
        self.store
            .create_session(&SessionRecord {
                token_hash: hash_token(&token),
                user_id: user.id,
                created_at: now,
                last_seen_at: now,
                expires_at: now.saturating_add(duration_ms(self.auth.absolute_timeout)),
                user_agent,
            })
            .await?;
        Ok(SignedIn {
            token,
            user: view(user),
        })
    }

    /// Creates an account and signs it in. Throttled per client IP: every attempt counts,
    /// so a script cannot mint accounts (each may run sandboxes) in a burst.
    #[tracing::instrument(skip_all, fields(username = %username), err(level = "info", Display))]
    pub async fn register(
        &self,
        username: Username,
        email: Email,
        password: Password,
        client: &ClientInfo,
    ) -> Result<SignedIn> {
        if let Some(ip) = client.ip.map(|ip| ip.to_string()) {
            let now = Instant::now();
            if let Some(retry_after_secs) = self.ip_signups.blocked(&ip, now) {
                return Err(Error::RateLimited { retry_after_secs });
            }
            self.ip_signups.fail(&ip, now);
        }
        let password_hash = self.hasher.hash(password.expose().to_owned()).await?;
        let now = now_ms();
        let user = UserRecord {
            id: UserId(Uuid::new_v4()),
            username: username.to_string(),
            email: email.to_string(),
            password_hash,
            created_at: now,
            updated_at: now,
        };
        self.store.create_user(&user).await?;
        self.start_session(&user, client).await
    }

    /// Signs in with a username (or email address) and password; unknown users and wrong
    /// passwords get the same answer. Failures are counted as OWASP advises, so that limits
    /// hit attackers rather than users:
    /// - per account and client IP (one counter per account, whichever login string named
    ///   it): the account is refused to that IP once its failures are used up;
    /// - per account from every IP, at ten times that: a guessing attack spread over many
    ///   addresses;
    /// - per client IP, for unknown accounts only: an IP guessing names is slowed — its
    ///   failed attempts answer 429 — but a right password from it still signs in (a
    ///   classroom behind one NAT does not lock itself out).
    #[tracing::instrument(skip_all, err(level = "info", Display))]
    pub async fn login(
        &self,
        login: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<SignedIn> {
        let login = login.trim().to_ascii_lowercase();
        if login.is_empty() || login.len() > 254 || password.len() > 1024 {
            return Err(Error::BadCredentials);
        }
        // A username names one account; an address may name several (it is not unique).
        let candidates = match self.store.user_by_username(&login).await? {
            Some(user) => vec![user],
            None if login.contains('@') => {
                self.store
                    .users_by_email(&login, MAX_ACCOUNTS_PER_ADDRESS)
                    .await?
            }
            None => Vec::new(),
        };
        // One key per account, whatever named it; an unknown name is its own "account".
        let account = match candidates.as_slice() {
            [user] => format!("user:{}", user.id),
            [] => format!("unknown:{login}"),
            _ => format!("address:{login}"),
        };
        let ip = client
            .ip
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        let account_ip = format!("{account}@{ip}");
        let now = Instant::now();
        let blocked = [
            self.account_failures.blocked(&account_ip, now),
            self.account_everywhere_failures.blocked(&account, now),
        ];
        if let Some(retry_after_secs) = blocked.into_iter().flatten().max() {
            return Err(Error::RateLimited { retry_after_secs });
        }
        let mut user = None;
        if candidates.is_empty() {
            // The same cost as a wrong password: the answer time says nothing.
            self.hasher.verify(password.to_owned(), None).await?;
        }
        for candidate in &candidates {
            if self
                .hasher
                .verify(password.to_owned(), Some(candidate.password_hash.clone()))
                .await?
            {
                user = Some(candidate.clone());
                break;
            }
        }
        let known = !candidates.is_empty();
        match user {
            Some(user) => {
                self.account_failures.reset(&account_ip);
                self.start_session(&user, client).await
            }
            None => {
                // Past the IP's budget every failure from it is a 429, whether the account
                // exists or not (the two stay indistinguishable).
                let ip_spent = self.ip_failures.blocked(&ip, now);
                self.account_failures.fail(&account_ip, now);
                self.account_everywhere_failures.fail(&account, now);
                if !known {
                    self.ip_failures.fail(&ip, now);
                }
                match ip_spent {
                    Some(retry_after_secs) => Err(Error::RateLimited { retry_after_secs }),
                    None => Err(Error::BadCredentials),
                }
            }
        }
    }

    /// Resolves a session token to its user; `None` for a missing, revoked or expired one.
    pub async fn authenticate(&self, token: &str) -> Result<Option<CurrentUser>> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let token_hash = hash_token(token);
        let now = now_ms();
        let Some((session, user)) = self
            .store
            .session(&token_hash, now, duration_ms(self.auth.idle_timeout))
            .await?
        else {
            return Ok(None);
        };
        if now - session.last_seen_at > TOUCH_EVERY_MS {
            self.store.touch_session(&token_hash, now).await?;
        }
        Ok(Some(CurrentUser {
            id: user.id,
            username: user.username,
            token_hash,
        }))
    }

    /// Ends this session server-side.
    pub async fn logout(&self, user: &CurrentUser) -> Result<()> {
        self.store.delete_session(&user.token_hash).await?;
        self.sessions_ended(SessionsEnded::One(user.token_hash.clone()));
        Ok(())
    }

    /// Ends every session of the user but this one; returns how many.
    pub async fn logout_others(&self, user: &CurrentUser) -> Result<u64> {
        let ended = self
            .store
            .delete_sessions_of(user.id, Some(&user.token_hash))
            .await?;
        self.sessions_ended(SessionsEnded::AllBut {
            user: user.id,
            keep: user.token_hash.clone(),
        });
        Ok(ended)
    }

    fn sessions_ended(&self, ended: SessionsEnded) {
        // Nobody listening is fine.
        let _ = self.ended_sessions.send(ended);
    }

    /// Sessions ending from now on (on this server; other replicas' sign-outs are found by
    /// [`Services::still_signed_in`]).
    pub fn ended_sessions(&self) -> tokio::sync::broadcast::Receiver<SessionsEnded> {
        self.ended_sessions.subscribe()
    }

    /// Whether `user`'s session is still valid (not signed out, not expired, the account not
    /// deleted).
    pub async fn still_signed_in(&self, user: &CurrentUser) -> Result<bool> {
        Ok(self
            .store
            .session(
                &user.token_hash,
                now_ms(),
                duration_ms(self.auth.idle_timeout),
            )
            .await?
            .is_some())
    }

    /// The signed-in user's account.
    pub async fn me(&self, user: &CurrentUser) -> Result<UserView> {
        let record = self
            .store
            .user_by_id(user.id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        Ok(view(&record))
    }

    async fn confirm_password(&self, user: &CurrentUser, password: &str) -> Result<UserRecord> {
        let record = self
            .store
            .user_by_id(user.id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        if password.len() > 1024
            || !self
                .hasher
                .verify(password.to_owned(), Some(record.password_hash.clone()))
                .await?
        {
            return Err(Error::WrongPassword);
        }
        Ok(record)
    }

    /// Changes the password after checking the current one, and signs out every other
    /// session of the user.
    #[tracing::instrument(skip_all, fields(user.id = %user.id), err(level = "info", Display))]
    pub async fn change_password(
        &self,
        user: &CurrentUser,
        current: &str,
        new: Password,
    ) -> Result<()> {
        self.confirm_password(user, current).await?;
        let hash = self.hasher.hash(new.expose().to_owned()).await?;
        self.store
            .set_password_hash(user.id, &hash, now_ms())
            .await?;
        self.logout_others(user).await?;
        Ok(())
    }

    /// Deletes the account, its sessions, workspaces and files, after checking the password;
    /// its running sandboxes stop at once.
    #[tracing::instrument(skip_all, fields(user.id = %user.id), err(level = "info", Display))]
    pub async fn delete_account(&self, user: &CurrentUser, password: &str) -> Result<()> {
        self.confirm_password(user, password).await?;
        self.store.delete_user(user.id).await?;
        self.sessions_ended(SessionsEnded::All(user.id));
        self.sandboxes.stop_all_of(user.id, "account_deleted").await;
        Ok(())
    }
}
