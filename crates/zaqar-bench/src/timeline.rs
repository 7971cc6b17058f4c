//! The timeline of the measured window: the per-interval slots the workers fill while they
//! run, and the points reported from them (in the JSON report and the SVG plot).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::memory::RssSamples;
use crate::report::{ms, round};
use crate::stats::{Histogram, Op, NOPS};

/// What completed during one --interval of the run.
#[derive(Default)]
pub(crate) struct Slot {
    /// Counted requests and the messages they moved, per operation.
    pub(crate) requests: [u64; NOPS],
    pub(crate) messages: [u64; NOPS],
    pub(crate) errors: u64,
    /// Latencies of the successes of every operation.
    pub(crate) hist: Histogram,
}

impl Slot {
    fn merge(&mut self, other: &Slot) {
        for i in 0..NOPS {
            self.requests[i] += other.requests[i];
            self.messages[i] += other.messages[i];
        }
        self.errors += other.errors;
        self.hist.merge(&other.hist);
    }
}

/// The run's slots, merged from each worker's current slot whenever the worker moves on to
/// the next one (so the lock is taken about once per interval per worker).
pub(crate) struct Timeline {
    pub(crate) origin: Instant,
    pub(crate) interval: Duration,
    pub(crate) slots: Mutex<Vec<Slot>>,
}

impl Timeline {
    /// The slot in which a request that completed at `at` lands.
    pub(crate) fn index(&self, at: Instant) -> usize {
        let since = at.saturating_duration_since(self.origin).as_secs_f64();
        (since / self.interval.as_secs_f64()) as usize
    }

    /// Merges a worker's slot into the run's slot `index`.
    pub(crate) fn flush(&self, index: usize, slot: &Slot) {
        let mut slots = self.slots.lock().expect("not poisoned");
        if slots.len() <= index {
            slots.resize_with(index + 1, Slot::default);
        }
        slots[index].merge(slot);
    }
}

/// One interval of the measured window, as reported.
pub(crate) struct Point {
    /// End of the interval, in seconds from the start of the window.
    pub(crate) t: f64,
    /// Requests and messages per second, per operation.
    pub(crate) rps: [f64; NOPS],
    pub(crate) mps: [f64; NOPS],
    pub(crate) errors: u64,
    /// Latency percentiles in ms of the successes of all operations (None without any).
    pub(crate) p50: Option<f64>,
    pub(crate) p90: Option<f64>,
    pub(crate) p99: Option<f64>,
}

impl Point {
    pub(crate) fn total_rps(&self) -> f64 {
        self.rps.iter().sum()
    }
}

/// The points of the window (the last one may be shorter than `interval`).
pub(crate) fn timeline_points(slots: &[Slot], interval: f64, elapsed: f64) -> Vec<Point> {
    let count = (elapsed / interval).ceil() as usize;
    let empty = Slot::default();
    (0..count)
        .map(|i| {
            let slot = slots.get(i).unwrap_or(&empty);
            let begin = i as f64 * interval;
            let end = ((i + 1) as f64 * interval).min(elapsed);
            let len = (end - begin).max(1e-9);
            Point {
                t: end,
                rps: slot.requests.map(|r| r as f64 / len),
                mps: slot.messages.map(|m| m as f64 / len),
                errors: slot.errors,
                p50: ms(slot.hist.percentile(50.0)),
                p90: ms(slot.hist.percentile(90.0)),
                p99: ms(slot.hist.percentile(99.0)),
            }
        })
        .collect()
}

/// The "timeline" object of the JSON report (see the JSON REPORT in --help).
pub(crate) fn timeline_json(
    ops: &[Op],
    interval: f64,
    points: &[Point],
    pids: &[u32],
    rss: &RssSamples,
) -> Value {
    let r = |v: Option<f64>| v.map(|v| round(v, 3));
    let list: Vec<Value> = points
        .iter()
        .map(|p| {
            let per_op: Map<String, Value> = ops
                .iter()
                .map(|&op| {
                    let i = op as usize;
                    let v = json!({"rps": round(p.rps[i], 1), "mps": round(p.mps[i], 1)});
                    (op.name().to_string(), v)
                })
                .collect();
            let mut point = json!({
                "t_s": round(p.t, 3),
                "rps": round(p.total_rps(), 1),
                "errors": p.errors,
                "ops": per_op,
                "latency_ms": {"p50": r(p.p50), "p90": r(p.p90), "p99": r(p.p99)},
            });
            if !pids.is_empty() {
                // The last sample taken at or before the end of the interval.
                let sample = rss.iter().rev().find(|(t, _)| *t <= p.t + 1e-6);
                let per_pid: Map<String, Value> = pids
                    .iter()
                    .enumerate()
                    .map(|(k, pid)| {
                        let v = sample.and_then(|(_, v)| v[k]);
                        (pid.to_string(), json!(v))
                    })
                    .collect();
                point["rss_kib"] = Value::Object(per_pid);
            }
            point
        })
        .collect();
    json!({"interval_s": interval, "points": list})
}
