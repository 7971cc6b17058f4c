//! Resident memory of other processes (--rss-pid): reading VmRSS, sampling it once per
//! interval during the measured window, and judging whether it stays flat.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Resident memory samples of the --rss-pid processes: (seconds into the measured window,
/// VmRSS in KiB per process, None if unreadable).
pub(crate) type RssSamples = Vec<(f64, Vec<Option<u64>>)>;

/// VmRSS of `pid` in KiB, from /proc/PID/status.
pub(crate) fn read_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Samples the VmRSS of `pids` into `rss` at every `interval` from `measure_start` on; runs
/// until aborted.
pub(crate) async fn sample_rss(
    rss: Arc<Mutex<RssSamples>>,
    pids: Vec<u32>,
    measure_start: Instant,
    interval: Duration,
) {
    let first = tokio::time::Instant::from_std(measure_start);
    let mut tick = tokio::time::interval_at(first, interval);
    loop {
        tick.tick().await;
        let t = Instant::now()
            .saturating_duration_since(measure_start)
            .as_secs_f64();
        let sample = pids.iter().map(|&p| read_rss_kib(p)).collect();
        rss.lock().expect("not poisoned").push((t, sample));
    }
}

/// The trend of one process's memory (see MEMORY in --help).
#[derive(Debug, PartialEq)]
pub(crate) struct MemoryTrend {
    pub(crate) samples: usize,
    pub(crate) first: u64,
    pub(crate) max: u64,
    pub(crate) last: u64,
    /// Least-squares slope over the second half of the samples.
    pub(crate) slope_kib_per_min: f64,
    /// The slope times the length of the second half.
    pub(crate) second_half_growth_kib: f64,
    pub(crate) flat: bool,
}

/// The trend of the samples `points` (seconds, KiB) of one process; None without samples.
fn memory_trend(points: &[(f64, u64)]) -> Option<MemoryTrend> {
    let (&(_, first), &(_, last)) = (points.first()?, points.last()?);
    let max = points.iter().map(|p| p.1).max()?;
    let half = &points[points.len() / 2..];
    let n = half.len() as f64;
    let mean_t = half.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_v = half.iter().map(|p| p.1 as f64).sum::<f64>() / n;
    let var_t: f64 = half.iter().map(|p| (p.0 - mean_t).powi(2)).sum();
    let cov: f64 = half
        .iter()
        .map(|p| (p.0 - mean_t) * (p.1 as f64 - mean_v))
        .sum();
    let slope = if var_t > 0.0 { cov / var_t } else { 0.0 };
    let span = half.last()?.0 - half.first()?.0;
    let growth = slope * span;
    let allowed = (mean_v * 0.05).max(4096.0);
    Some(MemoryTrend {
        samples: points.len(),
        first,
        max,
        last,
        slope_kib_per_min: slope * 60.0,
        second_half_growth_kib: growth,
        flat: growth < allowed,
    })
}

/// The trend of each of `pids` (in that order) over the samples `rss`; None for a process
/// none of whose samples could be read.
pub(crate) fn trends(pids: &[u32], rss: &RssSamples) -> Vec<(u32, Option<MemoryTrend>)> {
    pids.iter()
        .enumerate()
        .map(|(k, &pid)| {
            let series: Vec<(f64, u64)> = rss
                .iter()
                .filter_map(|(t, v)| v[k].map(|kib| (*t, kib)))
                .collect();
            (pid, memory_trend(&series))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_trend_flat_and_growing() {
        let flat: Vec<(f64, u64)> = (0..600)
            .map(|t| {
                (
                    t as f64,
                    50_000 + if t < 30 { t * 100 } else { 3000 + t % 7 },
                )
            })
            .collect();
        let trend = memory_trend(&flat).unwrap();
        assert!(trend.flat, "{trend:?}");
        assert_eq!(trend.first, 50_000);
        let leak: Vec<(f64, u64)> = (0..600).map(|t| (t as f64, 50_000 + t * 50)).collect();
        let trend = memory_trend(&leak).unwrap();
        assert!(!trend.flat, "{trend:?}");
        assert!((trend.slope_kib_per_min - 3000.0).abs() < 1.0, "{trend:?}");
        assert_eq!(memory_trend(&[]), None);
        assert!(memory_trend(&[(0.0, 10)]).unwrap().flat);
    }
}
