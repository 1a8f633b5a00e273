//! Failed sign-in counting per key (an account or a client IP) in a fixed window.
//!
//! In memory, per server process: with several backend replicas each counts on its own, so
//! the effective limit is multiplied by the replica count (docs/architecture.md).
//! The map is bounded: past `MAX_KEYS` keys, expired entries are swept and, if still full,
//! the oldest window is dropped.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// Most keys tracked at once by one limiter.
const MAX_KEYS: usize = 100_000;

#[derive(Clone)]
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    entries: Arc<Mutex<HashMap<String, (Instant, u32)>>>,
}

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            entries: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, u32)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Some(seconds to wait)` if `key` has used up its failures in the current window.
    pub fn blocked(&self, key: &str, now: Instant) -> Option<u64> {
        let entries = self.lock();
        let (started, count) = entries.get(key)?;
        let ends = *started + self.window;
        (now < ends && *count >= self.limit).then(|| (ends - now).as_secs().max(1))
    }

    /// Records a failure for `key`.
    pub fn fail(&self, key: &str, now: Instant) {
        let mut entries = self.lock();
        if entries.len() >= MAX_KEYS && !entries.contains_key(key) {
            let window = self.window;
            entries.retain(|_, (started, _)| now < *started + window);
            if entries.len() >= MAX_KEYS {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, (started, _))| *started)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        let entry = entries.entry(key.to_owned()).or_insert((now, 0));
        if now >= entry.0 + self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Forgets `key` (after a successful sign-in).
    pub fn reset(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.blocked("ada", start), None);
            limiter.fail("ada", start);
        }
        assert_eq!(limiter.blocked("ada", start), Some(60));
        assert_eq!(limiter.blocked("bob", start), None);
        assert_eq!(
            limiter.blocked("ada", start + Duration::from_secs(59)),
            Some(1)
        );
        assert_eq!(
            limiter.blocked("ada", start + Duration::from_secs(60)),
            None
        );
        limiter.fail("ada", start + Duration::from_secs(61));
        assert_eq!(
            limiter.blocked("ada", start + Duration::from_secs(61)),
            None,
            "a new window"
        );
    }

    #[test]
    fn reset_forgets_failures() {
        let limiter = RateLimiter::new(1, Duration::from_secs(60));
        let now = Instant::now();
        limiter.fail("ada", now);
        assert!(limiter.blocked("ada", now).is_some());
        limiter.reset("ada");
        assert!(limiter.blocked("ada", now).is_none());
    }
}
