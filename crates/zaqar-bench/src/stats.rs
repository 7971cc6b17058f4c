//! Operations and their statistics: the latency histogram, the per-operation counters with
//! their error samples, and what each worker hands back at the end of the run.

use std::time::Instant;

/// The operations the workers perform, as counted and reported; the discriminant indexes
/// every per-operation array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Post = 0,
    Claim = 1,
    Delete = 2,
    List = 3,
    Poll = 4,
}

/// Number of operation kinds (the length of every per-operation array).
pub(crate) const NOPS: usize = 5;

impl Op {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Post => "post",
            Op::Claim => "claim",
            Op::Delete => "delete",
            Op::List => "list",
            Op::Poll => "poll",
        }
    }
}

/// A log-linear latency histogram of microseconds: exact below 256 µs, then 256 buckets per
/// power of two (relative error under 0.4%), up to 2^37 µs.
#[derive(Default)]
pub(crate) struct Histogram {
    /// Per bucket; empty until the first value (most slots and operations get none).
    counts: Vec<u64>,
    pub(crate) total: u64,
    pub(crate) max: u64,
    sum: u128,
}

/// Bits of the sub-bucket index: 2^8 buckets per power of two.
const SUB_BITS: u32 = 8;
const SUB: usize = 1 << SUB_BITS;
const MAX_MSB: u32 = 36;
const BUCKETS: usize = (MAX_MSB - SUB_BITS + 2) as usize * SUB;

impl Histogram {
    /// The bucket of value `v` (values beyond the last bucket fall into it).
    fn index(v: u64) -> usize {
        let v = v.min((1u64 << (MAX_MSB + 1)) - 1);
        if v < SUB as u64 {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros();
        let shift = msb - SUB_BITS;
        let top = (v >> shift) as usize;
        (shift as usize + 1) * SUB + (top - SUB)
    }

    /// The highest value that falls in bucket `i`.
    fn upper(i: usize) -> u64 {
        if i < SUB {
            return i as u64;
        }
        let shift = (i / SUB - 1) as u32;
        let top = (i % SUB + SUB) as u64;
        ((top + 1) << shift) - 1
    }

    pub(crate) fn record(&mut self, micros: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        self.counts[Self::index(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
        self.sum += micros as u128;
    }

    pub(crate) fn merge(&mut self, other: &Histogram) {
        if other.total == 0 {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// The value at percentile `p` (0..=100), in microseconds.
    pub(crate) fn percentile(&self, p: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let target = ((p / 100.0 * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Some(Self::upper(i).min(self.max));
            }
        }
        Some(self.max)
    }

    pub(crate) fn mean(&self) -> Option<f64> {
        (self.total > 0).then(|| self.sum as f64 / self.total as f64)
    }
}

/// Distinct error texts kept per operation; further ones are only counted.
const MAX_SAMPLES: usize = 5;

/// What the counted requests of one operation came to.
#[derive(Default)]
pub(crate) struct OpStats {
    /// Counted requests, errors included.
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    /// Messages posted, claimed, deleted or listed by successful requests.
    pub(crate) messages: u64,
    /// Successful requests that found nothing (claim 204, empty listing page).
    pub(crate) empty: u64,
    /// Latencies of the successful requests.
    pub(crate) hist: Histogram,
    /// The first few distinct error texts, with how often each occurred.
    pub(crate) samples: Vec<(String, u64)>,
    /// Errors whose text did not fit among the samples.
    pub(crate) other_errors: u64,
}

impl OpStats {
    pub(crate) fn success(&mut self, start: Instant, end: Instant, messages: u64) {
        self.requests += 1;
        self.messages += messages;
        self.hist
            .record(end.saturating_duration_since(start).as_micros() as u64);
    }

    pub(crate) fn error(&mut self, text: String) {
        self.requests += 1;
        self.errors += 1;
        self.sample(text, 1);
    }

    fn sample(&mut self, text: String, n: u64) {
        if let Some(s) = self.samples.iter_mut().find(|s| s.0 == text) {
            s.1 += n;
        } else if self.samples.len() < MAX_SAMPLES {
            self.samples.push((text, n));
        } else {
            self.other_errors += n;
        }
    }

    pub(crate) fn merge(&mut self, other: OpStats) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.messages += other.messages;
        self.empty += other.empty;
        self.hist.merge(&other.hist);
        for (text, n) in other.samples {
            self.sample(text, n);
        }
        self.other_errors += other.other_errors;
    }
}

/// The statistics of one worker (and, merged, of the whole run), per operation.
#[derive(Default)]
pub(crate) struct WorkerStats {
    pub(crate) ops: [OpStats; NOPS],
    /// Completion time of the last counted request (for --requests runs).
    pub(crate) last_end: Option<Instant>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_round_trip() {
        for v in [0u64, 1, 255, 256, 257, 511, 512, 1000, 123_456, 1 << 30] {
            let i = Histogram::index(v);
            assert!(Histogram::upper(i) >= v, "{v}");
            if i > 0 {
                assert!(Histogram::upper(i - 1) < v, "{v}");
            }
        }
        assert!(Histogram::index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn percentiles() {
        let mut h = Histogram::default();
        for v in 1..=1000 {
            h.record(v);
        }
        let p50 = h.percentile(50.0).unwrap();
        assert!((498..=503).contains(&p50), "{p50}");
        let p99 = h.percentile(99.0).unwrap();
        assert!((988..=995).contains(&p99), "{p99}");
        assert_eq!(h.percentile(100.0), Some(1000));
    }
}
