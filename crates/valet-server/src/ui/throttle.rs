//! Login throttling: failed attempts are counted per username and per client address in a
//! sliding window; past the limit, logins are refused until the window passes. In memory,
//! per node: good enough to stop online guessing; a shared limiter can come with clustering.

use std::collections::HashMap;
use std::sync::Mutex;

use valet_core::clock::Millis;

const WINDOW_MS: i64 = 15 * 60 * 1000;
const PER_USER: u32 = 5;
const PER_IP: u32 = 20;
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Millis)>>,
}

impl LoginThrottle {
    /// Milliseconds until the next attempt is allowed, if the user or address is locked out.
    pub fn locked_for(&self, username: &str, ip: &str, now: Millis) -> Option<i64> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let check = |key: String, limit: u32| {
            map.get(&key)
                .and_then(|(n, start)| (*n >= limit && now - start < WINDOW_MS).then(|| WINDOW_MS - (now - start)))
        };
        check(format!("u:{}", username.to_lowercase()), PER_USER).or_else(|| check(format!("ip:{ip}"), PER_IP))
    }

    pub fn record_failure(&self, username: &str, ip: &str, now: Millis) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > MAX_KEYS {
            map.retain(|_, (_, start)| now - *start < WINDOW_MS);
        }
        for key in [format!("u:{}", username.to_lowercase()), format!("ip:{ip}")] {
            let e = map.entry(key).or_insert((0, now));
            if now - e.1 >= WINDOW_MS {
                *e = (0, now);
            }
            e.0 += 1;
        }
    }

    pub fn record_success(&self, username: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("u:{}", username.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_five_failures_and_unlocks_after_the_window() {
        let t = LoginThrottle::default();
        for _ in 0..5 {
            assert!(t.locked_for("a@b.c", "1.1.1.1", 0).is_none());
            t.record_failure("a@b.c", "1.1.1.1", 0);
        }
        assert!(t.locked_for("A@b.c", "2.2.2.2", 1000).is_some());
        assert!(t.locked_for("a@b.c", "1.1.1.1", WINDOW_MS + 1).is_none());
    }
}
