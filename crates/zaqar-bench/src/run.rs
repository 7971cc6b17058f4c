//! The measured run: the clock and counters the workers share, the split of the connections
//! into roles, and the tasks around the workers (memory sampling, progress lines, Ctrl-C).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::cli::{Args, Scenario};
use crate::http::Target;
use crate::memory::{read_rss_kib, sample_rss, RssSamples};
use crate::stats::WorkerStats;
use crate::timeline::{timeline_points, Point, Timeline};
use crate::worker::{Role, Worker};

/// The clock and counters of the measured run.
pub(crate) struct Run {
    pub(crate) measure_start: Instant,
    pub(crate) timeline: Timeline,
    /// End of the measured window (None with --requests).
    pub(crate) measure_end: Option<Instant>,
    /// --requests: how many work items to count, and how many were handed out.
    pub(crate) limit: Option<u64>,
    pub(crate) tickets: AtomicU64,
    pub(crate) stop: AtomicBool,
    pub(crate) stopped_at: Mutex<Option<Instant>>,
    /// Progress: counted requests and errors so far.
    pub(crate) done: AtomicU64,
    pub(crate) failed: AtomicU64,
}

impl Run {
    /// The run's clock, started now: the measured window opens after --warmup and, with
    /// --duration, closes --duration seconds later.
    fn start(args: &Args) -> Run {
        let start = Instant::now();
        let measure_start = start + Duration::from_secs_f64(args.warmup);
        let measure_end = match args.requests {
            Some(_) => None,
            None => Some(measure_start + Duration::from_secs_f64(args.duration)),
        };
        Run {
            measure_start,
            timeline: Timeline {
                origin: measure_start,
                interval: Duration::from_secs_f64(args.interval),
                slots: Mutex::new(Vec::new()),
            },
            measure_end,
            limit: args.requests,
            tickets: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            stopped_at: Mutex::new(None),
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// The length in seconds of the measured window: up to its end or to Ctrl-C with
    /// --duration, up to the last counted completion with --requests.
    fn elapsed(&self, total: &WorkerStats) -> f64 {
        let stopped_at = *self.stopped_at.lock().expect("not poisoned");
        let window_end = match self.measure_end {
            Some(end) => stopped_at.map_or(end, |s| s.min(end)),
            None => total.last_end.unwrap_or(self.measure_start),
        };
        window_end
            .saturating_duration_since(self.measure_start)
            .as_secs_f64()
    }
}

/// Who the workers are: how many producers, consumers and observers, the role of each
/// connection in that order, and the WebSocket URL of `ws` producers.
pub(crate) struct Plan {
    /// Producers, consumers and observers.
    pub(crate) counts: [usize; 3],
    pub(crate) roles: Vec<Role>,
    pub(crate) ws_url: Arc<str>,
}

impl Plan {
    /// The roles of --scenario (split by --mix for mixed and longpoll runs).
    pub(crate) fn new(args: &Args, target: &Target) -> Plan {
        let n = args.connections;
        let counts = match args.scenario {
            Scenario::Post | Scenario::Topic | Scenario::Ws => [n, 0, 0],
            Scenario::Claim => [0, n, 0],
            Scenario::List => [0, 0, n],
            Scenario::Mixed => split(n, args.mix),
            Scenario::Longpoll => split(n, [args.mix[0], args.mix[1], 0]),
        };
        let producer = match args.scenario {
            Scenario::Ws => Role::WsProducer,
            _ => Role::Producer,
        };
        let consumer = match args.scenario {
            Scenario::Longpoll => Role::Poller,
            _ => Role::Consumer,
        };
        let ws_url: Arc<str> = Arc::from(args.ws_url.clone().unwrap_or_else(|| {
            format!(
                "ws://{}{}/",
                target.host.to_str().unwrap_or("127.0.0.1"),
                target.base
            )
        }));
        let roles: Vec<Role> = std::iter::repeat_n(producer, counts[0])
            .chain(std::iter::repeat_n(consumer, counts[1]))
            .chain(std::iter::repeat_n(Role::Observer, counts[2]))
            .collect();
        Plan {
            counts,
            roles,
            ws_url,
        }
    }
}

/// What the measured run produced: the workers' merged statistics, the length of the
/// window, its timeline and the memory samples of the --rss-pid processes.
pub(crate) struct Measured {
    pub(crate) total: WorkerStats,
    pub(crate) elapsed: f64,
    pub(crate) points: Vec<Point>,
    pub(crate) rss: RssSamples,
}

/// Runs the workers (warmup included) until the window closes, the --requests are counted
/// or Ctrl-C, with the memory sampler and the progress lines alongside.
pub(crate) async fn measure(
    args: &Args,
    target: &Arc<Target>,
    queues: &[String],
    pad: &Arc<str>,
    plan: &Plan,
) -> Measured {
    let run = Arc::new(Run::start(args));
    if !args.quiet {
        announce(args, plan, queues.len());
    }
    let handles = spawn_workers(args, target, queues, pad, plan, &run);
    // Resident memory of the --rss-pid processes, sampled once per interval.
    let rss: Arc<Mutex<RssSamples>> = Arc::default();
    let rss_task = (!args.rss_pids.is_empty()).then(|| {
        tokio::spawn(sample_rss(
            rss.clone(),
            args.rss_pids.clone(),
            run.measure_start,
            run.timeline.interval,
        ))
    });
    tokio::spawn(stop_on_ctrl_c(run.clone()));
    let progress =
        (!args.quiet).then(|| tokio::spawn(progress(run.clone(), args.rss_pids.clone())));

    let total = collect(handles).await;
    if let Some(p) = progress {
        p.abort();
    }
    if let Some(t) = rss_task {
        t.abort();
    }
    let elapsed = run.elapsed(&total);
    let points = {
        let slots = run.timeline.slots.lock().expect("not poisoned");
        timeline_points(&slots, args.interval, elapsed)
    };
    let rss = std::mem::take(&mut *rss.lock().expect("not poisoned"));
    Measured {
        total,
        elapsed,
        points,
        rss,
    }
}

/// The line on stderr that says what is about to run.
fn announce(args: &Args, plan: &Plan, queues: usize) {
    let what = match (args.requests, args.duration) {
        (Some(r), _) => format!("{r} work items"),
        (None, d) => format!("{d} s"),
    };
    eprintln!(
        "running {} with {} connection(s) ({} producers, {} consumers, {} observers) \
         on {queues} queue(s): {}s warmup, then {what}",
        args.scenario.name(),
        args.connections,
        plan.counts[0],
        plan.counts[1],
        plan.counts[2],
        args.warmup
    );
}

/// Starts one worker task per connection; worker i works on queue i modulo the queues.
fn spawn_workers(
    args: &Args,
    target: &Arc<Target>,
    queues: &[String],
    pad: &Arc<str>,
    plan: &Plan,
    run: &Arc<Run>,
) -> Vec<JoinHandle<WorkerStats>> {
    let mut handles = Vec::with_capacity(args.connections);
    for (i, role) in plan.roles.iter().enumerate() {
        let q = &queues[i % queues.len()];
        let worker = Worker::new(args, target, run, pad, q, *role, &plan.ws_url);
        handles.push(tokio::spawn(worker.run(*role)));
    }
    handles
}

/// On Ctrl-C, tells the workers to stop after the requests in flight and notes when, so that
/// the measured window ends there.
async fn stop_on_ctrl_c(run: Arc<Run>) {
    if tokio::signal::ctrl_c().await.is_ok() {
        eprintln!("interrupted: stopping after the requests in flight");
        *run.stopped_at.lock().expect("not poisoned") = Some(Instant::now());
        run.stop.store(true, Ordering::Relaxed);
    }
}

/// Prints one progress line per second of the measured window on stderr (none during the
/// warmup), with the RSS of the --rss-pid processes; runs until aborted.
async fn progress(run: Arc<Run>, rss_pids: Vec<u32>) {
    let first = tokio::time::Instant::from_std(run.measure_start) + Duration::from_secs(1);
    let mut tick = tokio::time::interval_at(first, Duration::from_secs(1));
    let mut last = 0;
    loop {
        tick.tick().await;
        let done = run.done.load(Ordering::Relaxed);
        let failed = run.failed.load(Ordering::Relaxed);
        let t = Instant::now()
            .saturating_duration_since(run.measure_start)
            .as_secs_f64();
        let memory: String = rss_pids
            .iter()
            .filter_map(|&p| {
                read_rss_kib(p).map(|k| format!(", rss[{p}] {:.1} MiB", k as f64 / 1024.0))
            })
            .collect();
        eprintln!(
            "[{t:5.1}s] {:>8} req/s, {done} requests counted, {failed} errors{memory}",
            done - last
        );
        last = done;
    }
}

/// Waits for every worker and merges their statistics (a worker that panicked is reported
/// and left out).
async fn collect(handles: Vec<JoinHandle<WorkerStats>>) -> WorkerStats {
    let mut total = WorkerStats::default();
    for h in handles {
        match h.await {
            Ok(ws) => {
                for (a, b) in total.ops.iter_mut().zip(ws.ops) {
                    a.merge(b);
                }
                if let Some(t) = ws.last_end {
                    if total.last_end.is_none_or(|l| l < t) {
                        total.last_end = Some(t);
                    }
                }
            }
            Err(e) => eprintln!("zaqar-bench: a worker failed: {e}"),
        }
    }
    total
}

/// Splits `n` connections in the proportions `mix` (largest remainder), giving each role
/// with a positive proportion at least one connection when there are enough.
fn split(n: usize, mix: [u32; 3]) -> [usize; 3] {
    let total: u64 = mix.iter().map(|&m| m as u64).sum();
    let mut out = [0usize; 3];
    let mut rems = [(0u64, 0usize); 3];
    for i in 0..3 {
        let share = n as u64 * mix[i] as u64;
        out[i] = (share / total) as usize;
        rems[i] = (share % total, i);
    }
    let mut left = n - out.iter().sum::<usize>();
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in &rems {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    for i in 0..3 {
        if mix[i] > 0 && out[i] == 0 {
            let richest = (0..3).max_by_key(|&j| out[j]).expect("three roles");
            if out[richest] > 1 {
                out[richest] -= 1;
                out[i] += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_split() {
        assert_eq!(split(64, [4, 4, 2]), [26, 25, 13]);
        assert_eq!(split(10, [4, 4, 2]), [4, 4, 2]);
        assert_eq!(split(3, [10, 1, 1]), [1, 1, 1]);
        assert_eq!(split(5, [1, 0, 0]), [5, 0, 0]);
    }
}
