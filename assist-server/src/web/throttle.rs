//! Failed sign-ins per username, so a password cannot be guessed at the speed of the API.
//!
//! The first [`FREE_FAILURES`] wrong passwords within [`WINDOW`] cost nothing; each one after
//! that blocks the username for a while — 1 minute, doubling, at most 15 — during which every
//! sign-in of that username (the right password too) gets `429 too_many_attempts` before any
//! password is checked. A successful sign-in clears the count. Per username, not per address:
//! the guesses that matter are against one account, whoever sends them; the price is that
//! someone who knows a username can keep its owner waiting, never longer than 15 minutes at a
//! time, and every failure is in the audit log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong passwords within [`WINDOW`] before the username is blocked.
pub const FREE_FAILURES: u32 = 5;
/// How long failures are remembered.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// The first block; each further failure doubles it, up to [`MAX_BLOCK`].
pub const FIRST_BLOCK: Duration = Duration::from_secs(60);
pub const MAX_BLOCK: Duration = Duration::from_secs(15 * 60);
/// Usernames remembered at most (the oldest entries go first).
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, Failures>>,
}

struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

impl LoginThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How long `username` must still wait before a sign-in is checked (`None`: go ahead).
    pub fn wait(&self, username: &str, now: Instant) -> Option<Duration> {
        let failures = self.lock();
        let until = failures.get(username)?.blocked_until?;
        (until > now).then(|| until - now)
    }

    /// A wrong password for `username`.
    pub fn failed(&self, username: &str, now: Instant) {
        let mut failures = self.lock();
        if failures.len() >= MAX_ENTRIES && !failures.contains_key(username) {
            failures.retain(|_, f| now.duration_since(f.last) < WINDOW);
            if failures.len() >= MAX_ENTRIES {
                if let Some(oldest) = failures
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(name, _)| name.clone())
                {
                    failures.remove(&oldest);
                }
            }
        }
        let entry = failures.entry(username.to_string()).or_insert(Failures {
            count: 0,
            last: now,
            blocked_until: None,
        });
        if now.duration_since(entry.last) >= WINDOW {
            entry.count = 0;
            entry.blocked_until = None;
        }
        entry.count += 1;
        entry.last = now;
        if entry.count > FREE_FAILURES {
            let doublings = (entry.count - FREE_FAILURES - 1).min(16);
            let block = FIRST_BLOCK.saturating_mul(1 << doublings).min(MAX_BLOCK);
            entry.blocked_until = Some(now + block);
        }
    }

    /// A successful sign-in: the count starts again.
    pub fn succeeded(&self, username: &str) {
        self.lock().remove(username);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_failures_then_doubling_blocks_up_to_the_maximum() {
        let throttle = LoginThrottle::default();
        let t0 = Instant::now();
        for i in 0..FREE_FAILURES {
            throttle.failed("li.na", t0 + Duration::from_secs(u64::from(i)));
            assert_eq!(throttle.wait("li.na", t0 + Duration::from_secs(10)), None);
        }
        let at = t0 + Duration::from_secs(10);
        throttle.failed("li.na", at);
        assert_eq!(throttle.wait("li.na", at), Some(FIRST_BLOCK));
        assert_eq!(throttle.wait("li.na", at + FIRST_BLOCK), None, "it ends");
        assert_eq!(throttle.wait("wang.qiang", at), None, "per username");
        let later = at + FIRST_BLOCK;
        throttle.failed("li.na", later);
        assert_eq!(throttle.wait("li.na", later), Some(FIRST_BLOCK * 2));
        for k in 0..10 {
            throttle.failed("li.na", later + Duration::from_secs(k));
        }
        let last = later + Duration::from_secs(9);
        assert_eq!(throttle.wait("li.na", last), Some(MAX_BLOCK));
    }

    #[test]
    fn success_and_a_quiet_window_clear_the_count() {
        let throttle = LoginThrottle::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            throttle.failed("li.na", t0);
        }
        throttle.succeeded("li.na");
        throttle.failed("li.na", t0);
        assert_eq!(throttle.wait("li.na", t0), None, "counting starts again");

        for _ in 0..FREE_FAILURES {
            throttle.failed("a", t0);
        }
        let much_later = t0 + WINDOW;
        throttle.failed("a", much_later);
        assert_eq!(
            throttle.wait("a", much_later),
            None,
            "old failures forgotten"
        );
    }
}
