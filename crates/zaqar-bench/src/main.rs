//! `zaqar-bench`: a load generator for the Zaqar v2 HTTP API.
//!
//! Like OpenStack's `zaqar-bench`, it drives a server with producers (message posts),
//! consumers (claim, then delete each claimed message) and observers (message listings),
//! over HTTP/1.1 keep-alive connections, one per worker task, and reports throughput and
//! latency percentiles per operation. Run `zaqar-bench --help` for the options, the JSON
//! report shape and the exit codes.
//!
//! The modules follow the life of a run: `cli` reads and checks the options, `setup`
//! prepares the server, `run` starts the `worker`s (over `http` or `ws` connections, with
//! bodies from `messages`) and gathers their `stats` and `timeline`, `memory` samples other
//! processes' RSS, and `report` and `svg` present the results.

// The report (table, SUMMARY and MEMORY lines) is this program's output on standard output.
#![allow(clippy::print_stdout)]

mod cli;
mod http;
mod memory;
mod messages;
mod report;
mod run;
mod setup;
mod stats;
mod svg;
mod timeline;
mod worker;
mod ws;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use hyper::header::HeaderValue;

use crate::cli::{check_args, Args};
use crate::http::{resolve, Target};
use crate::report::Results;
use crate::run::Plan;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = check_args(&args) {
        eprintln!("zaqar-bench: {e}");
        return ExitCode::from(2);
    }
    let threads = if args.threads > 0 {
        args.threads
    } else {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("zaqar-bench: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    rt.block_on(bench(args, threads))
}

/// The whole benchmark once the options are checked: set the server up, measure, report,
/// clean up. Exit status 2 if the server cannot be reached or set up, 1 if the run failed
/// (see EXIT STATUS in --help).
async fn bench(args: Args, threads: usize) -> ExitCode {
    let target = match target(&args).await {
        Ok(t) => Arc::new(t),
        Err(e) => {
            eprintln!("zaqar-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let queues = args.queue_names();
    let pad: Arc<str> = Arc::from("x".repeat(args.message_size));
    if let Err(e) = setup::prepare(&args, &target, &queues, &pad).await {
        eprintln!("zaqar-bench: {e}");
        return ExitCode::from(2);
    }

    let plan = Plan::new(&args, &target);
    let measured = run::measure(&args, &target, &queues, &pad, &plan).await;

    let results = Results::new(&args, &measured);
    report::print(&args, &plan, queues.len(), &measured, &results);
    if let Some(path) = &args.svg {
        report::write_svg(path, &args, &measured);
    }
    if let Some(path) = &args.json {
        report::write_json(path, &args, threads, &plan, &measured, &results);
    }

    if args.cleanup {
        setup::cleanup(&target, args.scenario.collection(), &queues).await;
    }

    match results.failure {
        Some(why) => {
            eprintln!("zaqar-bench: FAIL: {why}");
            ExitCode::from(1)
        }
        None => ExitCode::SUCCESS,
    }
}

/// The server of --url, with the token of --token (or of the environment variable
/// ZAQAR_BENCH_TOKEN, so that it need not appear in the process list) if there is one.
async fn target(args: &Args) -> Result<Target, String> {
    let timeout = Duration::from_secs_f64(args.timeout);
    let token = args
        .token
        .clone()
        .or_else(|| std::env::var("ZAQAR_BENCH_TOKEN").ok())
        .filter(|t| !t.is_empty());
    let mut t = resolve(&args.url, &args.project, timeout).await?;
    if let Some(token) = token {
        let mut v = HeaderValue::from_str(&token).map_err(|e| format!("--token: {e}"))?;
        v.set_sensitive(true);
        t.token = Some(v);
    }
    Ok(t)
}
