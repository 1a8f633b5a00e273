//! Argon2id password hashing, off the async runtime and with bounded concurrency: a burst
//! of sign-ins queues for a permit instead of starving the runtime or exhausting memory
//! (each hash holds `memory_kib` KiB while it runs).

use std::sync::Arc;

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordVerifier, Version, password_hash::SaltString,
};
use tokio::sync::Semaphore;

use crate::{Error, Result};

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the user does not exist so
    /// that "no such user" costs the same time as "wrong password".
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub async fn new(memory_kib: u32, iterations: u32) -> Result<Self> {
        let params = Params::new(memory_kib, iterations, 1, None)
            .map_err(|error| Error::Internal(format!("argon2 parameters: {error}").into()))?;
        let parallel = std::thread::available_parallelism().map_or(2, usize::from);
        let mut hasher = Self {
            params,
            permits: Arc::new(Semaphore::new(parallel)),
            dummy_hash: Arc::from(""),
        };
        let mut random = [0u8; 24];
        fill_random(&mut random)?;
        let dummy_password: String = random.iter().map(|b| format!("{b:02x}")).collect();
        hasher.dummy_hash = Arc::from(hasher.hash(dummy_password).await?);
        Ok(hasher)
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    /// A PHC-format Argon2id hash of `password` with a fresh random salt.
    pub async fn hash(&self, password: String) -> Result<String> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Internal("hasher closed".into()))?;
        let params = self.params.clone();
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        tokio::task::spawn_blocking(move || {
            use argon2::PasswordHasher as _;
            let salt = SaltString::encode_b64(&salt)
                .map_err(|error| Error::Internal(format!("salt: {error}").into()))?;
            Self::argon2(params)
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|error| Error::Internal(format!("hashing: {error}").into()))
        })
        .await
        .map_err(|error| Error::Internal(format!("hashing task: {error}").into()))?
    }

    /// Whether `password` matches `hash`. With `hash = None` (unknown user) it verifies
    /// against the dummy hash and answers false, taking the same time.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Internal("hasher closed".into()))?;
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches = tokio::task::spawn_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return false;
            };
            // Verification uses the parameters stored in the hash itself.
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .await
        .map_err(|error| Error::Internal(format!("verify task: {error}").into()))?;
        Ok(known && matches)
    }
}

/// Fills `buffer` from the operating system's CSPRNG.
pub fn fill_random(buffer: &mut [u8]) -> Result<()> {
    getrandom::fill(buffer)
        .map_err(|error| Error::Internal(format!("no randomness: {error}").into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_at_least_owasp_parameters_and_verify() {
        let hasher = PasswordHasher::new(19_456, 2).await.unwrap();
        let hash = hasher.hash("correct horse battery".into()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            hasher
                .verify("correct horse battery".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("wrong horse battery".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        let again = hasher.hash("correct horse battery".into()).await.unwrap();
        assert_ne!(hash, again, "every hash has its own salt");
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let hasher = PasswordHasher::new(19_456, 2).await.unwrap();
        assert!(!hasher.verify("anything at all".into(), None).await.unwrap());
    }
}
