//! How long write transactions hold the audit chain's lock (PostgreSQL's advisory lock,
//! from the moment it is granted to the end of the commit): the figure that bounds how far
//! server instances sharing one database can scale, since only one of them appends at a
//! time. A fixed histogram of atomic counters, cheap to record on every transaction.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The buckets' upper bounds, in microseconds; one more bucket counts what is longer.
pub const LOCK_HOLD_BOUNDS_US: [u64; 20] = [
    50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000, 20_000,
    30_000, 50_000, 100_000, 250_000, 1_000_000,
];

const BUCKETS: usize = LOCK_HOLD_BOUNDS_US.len() + 1;

/// The live histogram a backend records into (PostgreSQL's; SQLite has no lock to share).
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) struct LockHolds {
    counts: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
impl LockHolds {
    /// Records one transaction that held the lock for `held`.
    pub(crate) fn record(&self, held: Duration) {
        let us = u64::try_from(held.as_micros()).unwrap_or(u64::MAX);
        let bucket = LOCK_HOLD_BOUNDS_US
            .iter()
            .position(|bound| us <= *bound)
            .unwrap_or(BUCKETS - 1);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// What was recorded so far.
    pub(crate) fn snapshot(&self) -> LockHoldStats {
        LockHoldStats {
            counts: std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed)),
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

/// The chain lock's hold times: a count per bucket of [`LOCK_HOLD_BOUNDS_US`] (the last
/// counts holds longer than the largest bound) and their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockHoldStats {
    /// Holds per bucket.
    pub counts: [u64; BUCKETS],
    /// Every hold's length added up, in microseconds.
    pub sum_us: u64,
}

impl LockHoldStats {
    /// How many transactions held the lock.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The upper bound (µs) of the bucket holding the `q` quantile (0 < q ≤ 1): "at most
    /// this long"; `None` with no hold, `u64::MAX` past the largest bound.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(LOCK_HOLD_BOUNDS_US.get(i).copied().unwrap_or(u64::MAX));
            }
        }
        Some(u64::MAX)
    }

    /// What was recorded after `earlier` (a snapshot of the same counters).
    #[must_use]
    pub fn since(mut self, earlier: Self) -> Self {
        for (now, then) in self.counts.iter_mut().zip(earlier.counts) {
            *now = now.saturating_sub(then);
        }
        self.sum_us = self.sum_us.saturating_sub(earlier.sum_us);
        self
    }

    /// Two processes' (or instances') holds together.
    #[must_use]
    pub fn merged(mut self, other: Self) -> Self {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
        self.sum_us += other.sum_us;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_name_the_bucket_that_holds_them() {
        let holds = LockHolds::default();
        assert_eq!(holds.snapshot().quantile_us(0.5), None);
        for _ in 0..98 {
            holds.record(Duration::from_micros(400));
        }
        holds.record(Duration::from_millis(4));
        holds.record(Duration::from_secs(3));
        let stats = holds.snapshot();
        assert_eq!(stats.count(), 100);
        assert_eq!(stats.quantile_us(0.5), Some(500));
        assert_eq!(stats.quantile_us(0.99), Some(5_000));
        assert_eq!(stats.quantile_us(1.0), Some(u64::MAX));
        assert_eq!(stats.sum_us, 98 * 400 + 4_000 + 3_000_000);
        let both = stats.merged(stats);
        assert_eq!(both.count(), 200);
        assert_eq!(both.quantile_us(0.5), Some(500));
        assert_eq!(both.since(stats), stats);
    }
}
