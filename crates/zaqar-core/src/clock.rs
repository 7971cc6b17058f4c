//! Time source. Every time-dependent rule (TTL, claim expiry, delay, ages) reads the clock through
//! [`Clock`], so tests can drive time explicitly with [`ManualClock`] instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Milliseconds since the Unix epoch (UTC).
pub type Millis = i64;

/// Seconds expressed in milliseconds.
pub const fn secs(s: i64) -> Millis {
    s * 1000
}

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Millis;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock that only moves when told to. Cloning shares the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Millis) -> Self {
        Self(Arc::new(AtomicI64::new(start)))
    }

    /// Moves time forward by `ms` milliseconds.
    pub fn advance(&self, ms: Millis) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn advance_secs(&self, s: i64) {
        self.advance(secs(s));
    }

    pub fn set(&self, t: Millis) {
        self.0.store(t, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        // A fixed, realistic start time: 2026-01-01T00:00:00Z.
        Self::new(1_767_225_600_000)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// Whole seconds elapsed from `from` to `to`, never negative.
pub fn age_secs(from: Millis, to: Millis) -> i64 {
    ((to - from).max(0)) / 1000
}

/// Formats a timestamp as `%Y-%m-%dT%H:%M:%SZ` (the format of stats timestamps).
pub fn format_iso_z(t: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(t)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1000);
        assert_eq!(c.now(), 1000);
        c.advance_secs(2);
        assert_eq!(c.now(), 3000);
        let shared = c.clone();
        shared.advance(5);
        assert_eq!(c.now(), 3005);
    }

    #[test]
    fn ages_are_whole_nonnegative_seconds() {
        assert_eq!(age_secs(1000, 2999), 1);
        assert_eq!(age_secs(5000, 1000), 0);
    }

    #[test]
    fn iso_format() {
        assert_eq!(format_iso_z(1_767_225_600_000), "2026-01-01T00:00:00Z");
    }
}
