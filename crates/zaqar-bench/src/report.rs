//! The results of a run: per-operation figures, the table and summary printed on stdout,
//! the pass/fail verdict, and the JSON report.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::cli::{Args, Scenario};
use crate::memory::{trends, MemoryTrend};
use crate::run::{Measured, Plan};
use crate::stats::{Op, OpStats};
use crate::svg::render_svg;
use crate::timeline::timeline_json;

/// Microseconds as milliseconds.
pub(crate) fn ms(micros: Option<u64>) -> Option<f64> {
    micros.map(|v| v as f64 / 1000.0)
}

/// Milliseconds for the table, "-" for none.
fn fmt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"))
}

/// `v` rounded to `places` decimals, for the JSON report.
pub(crate) fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

/// The figures of one operation over the measured window: its counters, rates and latency
/// percentiles in ms.
pub(crate) struct OpReport<'a> {
    op: Op,
    st: &'a OpStats,
    rps: f64,
    mps: f64,
    p50: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
    max: Option<f64>,
    mean: Option<f64>,
}

impl<'a> OpReport<'a> {
    fn new(op: Op, st: &'a OpStats, elapsed: f64) -> Self {
        let per_s = |n: u64| {
            if elapsed > 0.0 {
                n as f64 / elapsed
            } else {
                0.0
            }
        };
        let h = &st.hist;
        OpReport {
            op,
            st,
            rps: per_s(st.requests),
            mps: per_s(st.messages),
            p50: ms(h.percentile(50.0)),
            p90: ms(h.percentile(90.0)),
            p99: ms(h.percentile(99.0)),
            max: ms((h.total > 0).then_some(h.max)),
            mean: h.mean().map(|v| v / 1000.0),
        }
    }

    /// The operation's entry in the "operations" object of the JSON report.
    fn json(&self) -> Value {
        let r = |v: Option<f64>| v.map(|v| round(v, 3));
        let samples: Vec<Value> = self
            .st
            .samples
            .iter()
            .map(|(e, n)| json!({"error": e, "count": n}))
            .chain(
                (self.st.other_errors > 0)
                    .then(|| json!({"error": "(other errors)", "count": self.st.other_errors})),
            )
            .collect();
        json!({
            "requests": self.st.requests,
            "errors": self.st.errors,
            "empty": self.st.empty,
            "rps": round(self.rps, 2),
            "mps": round(self.mps, 2),
            "messages": self.st.messages,
            "latency_ms": {
                "p50": r(self.p50), "p90": r(self.p90), "p99": r(self.p99),
                "max": r(self.max), "mean": r(self.mean),
            },
            "error_samples": samples,
        })
    }
}

/// The table printed on stdout: one row per operation, then the empty results and the
/// error samples.
fn table(reports: &[OpReport<'_>]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<8} {:>10} {:>8} {:>11} {:>11} {:>9} {:>9} {:>9} {:>9}",
        "op", "requests", "errors", "req/s", "msg/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for r in reports {
        let _ = writeln!(
            s,
            "{:<8} {:>10} {:>8} {:>11.1} {:>11.1} {:>9} {:>9} {:>9} {:>9}",
            r.op.name(),
            r.st.requests,
            r.st.errors,
            r.rps,
            r.mps,
            fmt_ms(r.p50),
            fmt_ms(r.p90),
            fmt_ms(r.p99),
            fmt_ms(r.max),
        );
    }
    for r in reports {
        match r.op {
            Op::Claim if r.st.empty > 0 => {
                let _ = writeln!(
                    s,
                    "claim: {} of {} successful claims found nothing to claim (204)",
                    r.st.empty,
                    r.st.requests - r.st.errors
                );
            }
            Op::Poll if r.st.empty > 0 => {
                let _ = writeln!(
                    s,
                    "poll: {} of {} successful long polls returned nothing within the wait",
                    r.st.empty,
                    r.st.requests - r.st.errors
                );
            }
            Op::List if r.st.empty > 0 => {
                let _ = writeln!(
                    s,
                    "list: {} of {} successful listings returned an empty page",
                    r.st.empty,
                    r.st.requests - r.st.errors
                );
            }
            _ => {}
        }
        for (e, n) in &r.st.samples {
            let _ = writeln!(s, "{} error x{n}: {e}", r.op.name());
        }
        if r.st.other_errors > 0 {
            let _ = writeln!(
                s,
                "{} error x{}: (other errors)",
                r.op.name(),
                r.st.other_errors
            );
        }
    }
    s
}

/// The figures of the whole run and its verdict.
pub(crate) struct Results<'a> {
    /// One per operation of the scenario, in the scenario's order.
    pub(crate) reports: Vec<OpReport<'a>>,
    /// Counted requests and errors over all operations.
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) error_pct: f64,
    /// The memory trend of each --rss-pid process.
    pub(crate) trends: Vec<(u32, Option<MemoryTrend>)>,
    /// Why the run failed (exit status 1), or None if it passed.
    pub(crate) failure: Option<String>,
}

impl<'a> Results<'a> {
    /// Sums the measured run up per operation and in total, and judges it (see EXIT STATUS
    /// in --help).
    pub(crate) fn new(args: &Args, m: &'a Measured) -> Self {
        let reports: Vec<OpReport<'a>> = args
            .scenario
            .ops()
            .iter()
            .map(|&op| OpReport::new(op, &m.total.ops[op as usize], m.elapsed))
            .collect();
        let requests: u64 = reports.iter().map(|r| r.st.requests).sum();
        let errors: u64 = reports.iter().map(|r| r.st.errors).sum();
        let error_pct = if requests > 0 {
            errors as f64 * 100.0 / requests as f64
        } else {
            0.0
        };
        let trends = trends(&args.rss_pids, &m.rss);
        let not_flat: Vec<u32> = trends
            .iter()
            .filter(|(_, t)| t.as_ref().is_none_or(|t| !t.flat))
            .map(|(pid, _)| *pid)
            .collect();
        let failure = if requests == 0 {
            Some("no request completed inside the measured window".to_string())
        } else if error_pct > args.max_error_pct {
            Some(format!(
                "{errors} of {requests} requests failed ({error_pct:.2}%, more than the allowed {}%)",
                args.max_error_pct
            ))
        } else if args.require_flat_memory && !not_flat.is_empty() {
            Some(format!("memory of process(es) {not_flat:?} is not flat"))
        } else {
            None
        };
        Results {
            reports,
            requests,
            errors,
            error_pct,
            trends,
            failure,
        }
    }

    /// All counted requests per second of the measured window.
    fn rps(&self, elapsed: f64) -> f64 {
        if elapsed > 0.0 {
            self.requests as f64 / elapsed
        } else {
            0.0
        }
    }
}

/// Prints the results on stdout: what ran, the table, the SUMMARY line and a MEMORY line per
/// --rss-pid process.
pub(crate) fn print(args: &Args, plan: &Plan, queues: usize, m: &Measured, r: &Results<'_>) {
    println!(
        "zaqar-bench: scenario {} against {}: {} connections ({} producers, {} consumers, \
         {} observers), {queues} queue(s), batch {}, message size {} B, measured {:.2} s",
        args.scenario.name(),
        args.url,
        args.connections,
        plan.counts[0],
        plan.counts[1],
        plan.counts[2],
        args.batch,
        args.message_size,
        m.elapsed
    );
    print!("{}", table(&r.reports));
    println!("{}", summary(args.scenario, m.elapsed, r));
    for (pid, trend) in &r.trends {
        println!("{}", memory_line(*pid, trend.as_ref()));
    }
}

/// The one-line SUMMARY: overall and per-operation rates and latencies, errors, OK or FAIL.
fn summary(scenario: Scenario, elapsed: f64, r: &Results<'_>) -> String {
    let mut summary = format!("SUMMARY {}: {:.0} req/s", scenario.name(), r.rps(elapsed));
    for op in &r.reports {
        let _ = write!(
            summary,
            " | {} {:.0} req/s {:.0} msg/s p50 {} p99 {} ms",
            op.op.name(),
            op.rps,
            op.mps,
            fmt_ms(op.p50),
            fmt_ms(op.p99)
        );
    }
    let _ = write!(
        summary,
        " | errors {}/{} ({:.2}%) | {}",
        r.errors,
        r.requests,
        r.error_pct,
        if r.failure.is_some() { "FAIL" } else { "OK" }
    );
    summary
}

/// The MEMORY line of one --rss-pid process.
fn memory_line(pid: u32, trend: Option<&MemoryTrend>) -> String {
    match trend {
        Some(t) => format!(
            "MEMORY pid {pid}: {} samples, first {:.1} MiB, max {:.1} MiB, last {:.1} MiB, \
             second-half trend {:+.2} MiB/min ({:+.1} MiB over the half): {}",
            t.samples,
            t.first as f64 / 1024.0,
            t.max as f64 / 1024.0,
            t.last as f64 / 1024.0,
            t.slope_kib_per_min / 1024.0,
            t.second_half_growth_kib / 1024.0,
            if t.flat { "flat" } else { "GROWING" }
        ),
        None => format!("MEMORY pid {pid}: no sample could be read"),
    }
}

/// --svg: writes the plot of the timeline to `path` (a failure is only reported).
pub(crate) fn write_svg(path: &Path, args: &Args, m: &Measured) {
    let svg = render_svg(
        &format!(
            "zaqar-bench {} against {} ({} connections)",
            args.scenario.name(),
            args.url,
            args.connections
        ),
        args.scenario.ops(),
        &m.points,
        &args.rss_pids,
        &m.rss,
    );
    if let Err(e) = std::fs::write(path, svg) {
        eprintln!("zaqar-bench: cannot write {}: {e}", path.display());
    }
}

/// --json: writes the JSON report to `path` (a failure is only reported).
pub(crate) fn write_json(
    path: &Path,
    args: &Args,
    threads: usize,
    plan: &Plan,
    m: &Measured,
    r: &Results<'_>,
) {
    let doc = json_report(args, threads, plan, m, r);
    let text = serde_json::to_string_pretty(&doc).expect("JSON values serialize");
    if let Err(e) = std::fs::write(path, text + "\n") {
        eprintln!("zaqar-bench: cannot write {}: {e}", path.display());
    }
}

/// The JSON report (its shape is in --help, JSON REPORT).
fn json_report(args: &Args, threads: usize, plan: &Plan, m: &Measured, r: &Results<'_>) -> Value {
    let ops: Map<String, Value> = r
        .reports
        .iter()
        .map(|r| (r.op.name().to_string(), r.json()))
        .collect();
    json!({
        "tool": "zaqar-bench",
        "version": env!("CARGO_PKG_VERSION"),
        "scenario": args.scenario.name(),
        "passed": r.failure.is_none(),
        "failure": r.failure,
        "settings": settings_json(args, threads, plan),
        "workers": {
            "producers": plan.counts[0],
            "consumers": plan.counts[1],
            "observers": plan.counts[2],
        },
        "elapsed_s": round(m.elapsed, 4),
        "operations": ops,
        "totals": {
            "requests": r.requests,
            "errors": r.errors,
            "error_pct": round(r.error_pct, 4),
            "rps": round(r.rps(m.elapsed), 2),
        },
        "timeline": timeline_json(
            args.scenario.ops(),
            args.interval,
            &m.points,
            &args.rss_pids,
            &m.rss,
        ),
        "memory": memory_json(&r.trends),
    })
}

/// The "settings" object of the JSON report: the options the run was made with.
fn settings_json(args: &Args, threads: usize, plan: &Plan) -> Value {
    json!({
        "url": args.url,
        "project": args.project,
        "connections": args.connections,
        "duration_s": if args.requests.is_some() { None } else { Some(args.duration) },
        "requests": args.requests,
        "warmup_s": args.warmup,
        "queues": args.queues,
        "queue_prefix": args.queue_prefix,
        "prefill": args.prefill,
        "batch": args.batch,
        "message_size": args.message_size,
        "claim_limit": args.claim_limit,
        "list_limit": args.list_limit,
        "mix": args.mix,
        "wait_s": args.wait,
        "subscribers": args.subscribers,
        "ws_url": (args.scenario == Scenario::Ws).then(|| plan.ws_url.to_string()),
        "threads": threads,
        "timeout_s": args.timeout,
        "max_error_pct": args.max_error_pct,
    })
}

/// The "memory" object of the JSON report: the trend of each --rss-pid process, null for one
/// without samples.
fn memory_json(trends: &[(u32, Option<MemoryTrend>)]) -> Value {
    let per_pid: Map<String, Value> = trends
        .iter()
        .map(|(pid, t)| {
            let v = match t {
                Some(t) => json!({
                    "samples": t.samples,
                    "first_kib": t.first,
                    "max_kib": t.max,
                    "last_kib": t.last,
                    "slope_kib_per_min": round(t.slope_kib_per_min, 1),
                    "second_half_growth_kib": round(t.second_half_growth_kib, 1),
                    "flat": t.flat,
                }),
                None => Value::Null,
            };
            (pid.to_string(), v)
        })
        .collect();
    Value::Object(per_pid)
}
