//! Request budgets: a token bucket per key, for each bearer token's requests (`[local]
//! requests_per_token_per_second`) and each client address's refused dashboard sign-ins
//! (`[local] signin_failures_per_minute`). A bucket holds at most `burst` and refills at `rate` a
//! second. A refilled bucket is the same as a new one, so it is forgotten when the keys held
//! reach [`MAX_KEYS`]; if they are still that many, a new key has no budget until some refill
//! (the memory stays bounded whatever the number of addresses a flood comes from).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// Most keys with a bucket not yet refilled.
pub(crate) const MAX_KEYS: usize = 10_000;

/// A bucket per key.
pub(crate) struct RateLimits<K> {
    /// Refill, per second.
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
}

impl<K: Hash + Eq + Clone> RateLimits<K> {
    /// `rate_per_second` a second, bursts of `burst`.
    pub(crate) fn new(rate_per_second: u32, burst: u32) -> RateLimits<K> {
        RateLimits::with(f64::from(rate_per_second.max(1)), burst)
    }

    /// `per_minute` a minute, all of them at once at most.
    pub(crate) fn per_minute(per_minute: u32) -> RateLimits<K> {
        RateLimits::with(f64::from(per_minute.max(1)) / 60.0, per_minute)
    }

    fn with(rate: f64, burst: u32) -> RateLimits<K> {
        RateLimits {
            rate,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// The sustained rate, requests a second.
    pub(crate) fn per_second(&self) -> u32 {
        self.rate as u32
    }

    /// Take one from `key`'s budget; `Err(seconds)` tells how long to wait.
    pub(crate) fn take(&self, key: &K) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if !buckets.contains_key(key) && buckets.len() >= MAX_KEYS {
            buckets.retain(|_, b| self.refilled(*b, now) < self.burst);
            if buckets.len() >= MAX_KEYS {
                return Err(self.wait_for(0.0));
            }
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            level: self.burst,
            at: now,
        });
        bucket.level = self.refilled(*bucket, now);
        bucket.at = now;
        if bucket.level >= 1.0 {
            bucket.level -= 1.0;
            Ok(())
        } else {
            Err(self.wait_for(bucket.level))
        }
    }

    /// A bucket's level at `now`.
    fn refilled(&self, b: Bucket, now: Instant) -> f64 {
        (b.level + now.duration_since(b.at).as_secs_f64() * self.rate).min(self.burst)
    }

    /// Whole seconds until a bucket at `level` holds one again (at least one).
    fn wait_for(&self, level: f64) -> u64 {
        ((1.0 - level) / self.rate).ceil().max(1.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_spends_its_budget_and_then_waits() {
        let limits = RateLimits::new(2, 3);
        for _ in 0..3 {
            assert!(limits.take(&"a").is_ok());
        }
        assert_eq!(limits.take(&"a"), Err(1));
        assert!(limits.take(&"b").is_ok(), "each token has its own budget");
    }

    #[test]
    fn a_minute_budget_waits_for_its_share_of_the_minute() {
        let limits = RateLimits::per_minute(5);
        for _ in 0..5 {
            assert!(limits.take(&1).is_ok());
        }
        assert_eq!(limits.take(&1), Err(12), "one comes back every 12 s");
    }

    #[test]
    fn the_keys_held_stay_bounded() {
        let limits = RateLimits::per_minute(1);
        for k in 0..MAX_KEYS {
            assert!(limits.take(&k).is_ok());
        }
        // Every bucket is spent and none refilled yet: a new key has none either.
        assert!(limits.take(&MAX_KEYS).is_err());
        assert!(limits.buckets.lock().unwrap().len() <= MAX_KEYS);
    }
}
