//! The command line: the options, the scenarios they select, the long help text (which also
//! documents the JSON report and the exit codes), and the checks that run before anything
//! touches the network.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::memory::read_rss_kib;
use crate::stats::Op;

/// The long help text after the options (`--help`): the scenarios, how the measurement works,
/// the JSON report, the timeline, the memory check and the exit status.
const AFTER_HELP: &str = "\
SCENARIOS
  post    every connection is a producer: POST /v2/queues/{q}/messages with --batch
          messages of about --message-size bytes each (ttl 3600).
  claim   every connection is a consumer: POST /v2/queues/{q}/claims?limit=--claim-limit
          with {\"ttl\":60,\"grace\":60}; on 201 it DELETEs each claimed message by its href
          (which carries ?claim_id=...); a 204 means the queue had nothing to claim (counted
          as a successful claim, reported as \"empty\"). Use --prefill to give it work.
  list    every connection is an observer: GET /v2/queues/{q}/messages?echo=true&limit=
          --list-limit, following the \"next\" link page by page and starting over from
          the first page when a page comes back empty.
  mixed   connections are split between producers, consumers and observers in the
          proportions of --mix P:C:O (default 4:4:2).
  longpoll  connections are split between producers and long-poll consumers in the
          proportions P:C of --mix (O is ignored). A long-poll consumer reads its queue
          forward with GET /v2/queues/{q}/messages?limit=--claim-limit&wait=--wait,
          following the \"next\" link (to which it adds wait=) so that it sees each new
          message once; an empty page (204 after the wait) keeps its place. Operation
          \"poll\": its latency includes the time spent waiting for a message.
  topic   every connection is a producer posting to a topic: POST /v2/topics/{t}/messages
          (topics named like queues). With --subscriber URL (repeatable) each topic gets a
          subscription per URL before the run, so every post is also fanned out to those
          subscribers by the server's notifier (e.g. a webhook receiver; the load tool
          measures the posts only).
  ws      every connection is a WebSocket producer: one WebSocket per worker (--ws-url,
          default: the upgrade on --url's host, port and path), sending message_post
          requests of --batch messages one at a time and waiting for each response
          (status 201 counts as a success).

  Worker i uses queue (or topic) {queue-prefix}-{i % queues}. Each worker has its own
  connection and its own Client-ID (a UUID4); every request carries Client-ID,
  X-Project-ID (--project) and Content-Type: application/json (over WebSocket: the
  Client-ID and X-Project-ID headers of the request envelope). A worker whose connection
  breaks reconnects.

MEASUREMENT
  With --duration (the default), workers run for --warmup seconds, then for --duration
  seconds; a request counts only if it starts and completes inside the measured window.
  With --requests N, workers run freely during --warmup, then exactly N work items are
  counted: a post, a list, or a claim cycle (the claim plus the deletes of the messages it
  claimed). Latency is measured from sending a request to having read its whole response
  body, for successful (2xx) responses only, into a histogram per operation (0.4%
  resolution). Non-2xx responses, connection failures and timeouts count as errors of the
  operation; the first few distinct error texts are kept and printed.

  msg/s is: post - messages posted; claim - messages claimed; delete - messages deleted;
  list - messages returned by listings; poll - messages returned by long-poll listings.

JSON REPORT (--json FILE)
  {
    \"tool\": \"zaqar-bench\", \"version\": \"...\",
    \"scenario\": \"post|claim|list|mixed|longpoll|topic|ws\",
    \"passed\": bool, \"failure\": string|null,
    \"settings\": { \"url\", \"project\", \"connections\", \"duration_s\" (null with --requests),
                  \"requests\" (null with --duration), \"warmup_s\", \"queues\", \"queue_prefix\",
                  \"prefill\", \"batch\", \"message_size\", \"claim_limit\", \"list_limit\",
                  \"mix\": [P, C, O], \"wait_s\", \"subscribers\", \"ws_url\", \"threads\",
                  \"timeout_s\", \"max_error_pct\" },
    \"workers\": { \"producers\", \"consumers\", \"observers\" }  (long-poll consumers are
                 consumers; WebSocket producers are producers),
    \"elapsed_s\": float (length of the measured window),
    \"operations\": {               (only those the scenario performs)
      \"post|claim|delete|list|poll\": {
        \"requests\": int (including errors), \"errors\": int, \"empty\": int,
        \"rps\": float, \"mps\": float, \"messages\": int,
        \"latency_ms\": { \"p50\", \"p90\", \"p99\", \"max\", \"mean\" } (floats, null if no success),
        \"error_samples\": [ { \"error\": string, \"count\": int } ] } },
    \"totals\": { \"requests\", \"errors\", \"error_pct\", \"rps\" },
    \"timeline\": { \"interval_s\": float, \"points\": [ { \"t_s\": float (end of the
                  interval, from the start of the measured window), \"rps\": float,
                  \"errors\": int, \"ops\": { \"post|...\": { \"rps\", \"mps\" } },
                  \"latency_ms\": { \"p50\", \"p90\", \"p99\" } (null if no success),
                  \"rss_kib\": { \"PID\": int|null } (with --rss-pid) } ] },
    \"memory\": { \"PID\": { \"samples\", \"first_kib\", \"max_kib\", \"last_kib\",
                \"slope_kib_per_min\", \"second_half_growth_kib\", \"flat\": bool } }
                (with --rss-pid; {} otherwise)
  }

TIMELINE
  Every counted request also lands in the --interval slot in which it completed: requests
  and messages per operation, errors, and a latency histogram of the successes of all
  operations together (p50, p90, p99 per slot). --svg FILE plots it (no other tool needed;
  open the file in a browser).

MEMORY
  --rss-pid PID samples the VmRSS of PID at every --interval of the measured window, e.g.
  the server under a long --scenario mixed run. The memory is called flat when the
  least-squares trend over the second half of the samples changes the RSS, over that half,
  by less than max(5% of its mean, 4 MiB): start-up and warm-up growth are ignored, a steady
  leak is not. --require-flat-memory turns a trend that is not flat into exit status 1.

EXIT STATUS
  0  success
  1  more than --max-error-pct percent of the counted requests failed, or none completed,
     or --require-flat-memory and a sampled process's memory was not flat
  2  bad arguments, or the server could not be reached or set up (ping, queue creation,
     prefill) before the run";

#[derive(Parser, Debug)]
#[command(
    name = "zaqar-bench",
    version,
    about = "Load generator for the Zaqar v2 API: producers (single or batch posts, to queues \
             or topics, over HTTP or WebSocket), consumers (claim + delete, or long-poll), \
             observers (list), mixes; a table, JSON and an SVG plot over time",
    after_long_help = AFTER_HELP
)]
pub(crate) struct Args {
    /// Base URL of the server (http only; a path prefix is kept).
    #[arg(long, default_value = "http://127.0.0.1:8888")]
    pub(crate) url: String,
    /// What the workers do (see SCENARIOS in --help).
    #[arg(long, short = 's', value_enum, default_value_t = Scenario::Post)]
    pub(crate) scenario: Scenario,
    /// Number of concurrent workers, each with its own keep-alive connection.
    #[arg(long, short = 'c', default_value_t = 64)]
    pub(crate) connections: usize,
    /// Measured run time in seconds (after the warmup).
    #[arg(long, short = 'd', default_value_t = 10.0, conflicts_with = "requests")]
    pub(crate) duration: f64,
    /// Count exactly N work items instead of running for --duration.
    #[arg(long, short = 'n', value_name = "N")]
    pub(crate) requests: Option<u64>,
    /// Seconds of load before measuring starts; nothing done then is counted.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) warmup: f64,
    /// Number of queues; worker i uses queue {queue-prefix}-{i % queues}.
    #[arg(long, default_value_t = 1)]
    pub(crate) queues: usize,
    /// Prefix of the queue names.
    #[arg(long, default_value = "bench")]
    pub(crate) queue_prefix: String,
    /// Messages posted into each queue before the run (in batches of 10).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub(crate) prefill: u64,
    /// Messages per POST of a producer.
    #[arg(long, short = 'b', default_value_t = 1)]
    pub(crate) batch: usize,
    /// Approximate size in bytes of each message body {"data": "xxx...", "seq": n}.
    #[arg(long, default_value_t = 100, value_name = "BYTES")]
    pub(crate) message_size: usize,
    /// The limit of each claim.
    #[arg(long, default_value_t = 10)]
    pub(crate) claim_limit: u32,
    /// The limit (page size) of each listing.
    #[arg(long, default_value_t = 10)]
    pub(crate) list_limit: u32,
    /// Proportions of producers, consumers and observers for --scenario mixed (and of
    /// producers and long-poll consumers for --scenario longpoll).
    #[arg(long, default_value = "4:4:2", value_name = "P:C:O", value_parser = parse_mix)]
    pub(crate) mix: [u32; 3],
    /// Long-poll wait in seconds of --scenario longpoll's consumers (the server's
    /// [transport] max_wait bounds it).
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub(crate) wait: u32,
    /// --scenario topic: subscribe URL to every topic before the run (repeatable).
    #[arg(long = "subscriber", value_name = "URL")]
    pub(crate) subscribers: Vec<String>,
    /// --scenario ws: WebSocket URL (default ws://HOST:PORT/PATH of --url, i.e. the upgrade
    /// on the HTTP port).
    #[arg(long, value_name = "URL")]
    pub(crate) ws_url: Option<String>,
    /// X-Project-ID of every request.
    #[arg(long, default_value = "bench")]
    pub(crate) project: String,
    /// Keystone token sent as X-Auth-Token with every request (then --project must be the
    /// token's project id). Read from the environment variable ZAQAR_BENCH_TOKEN when unset,
    /// so it need not appear in the process list.
    #[arg(long, value_name = "TOKEN")]
    pub(crate) token: Option<String>,
    /// Also write the results as JSON to FILE (shape in --help).
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
    /// Per-request timeout in seconds (a timeout counts as an error and reconnects).
    #[arg(long, default_value_t = 30.0)]
    pub(crate) timeout: f64,
    /// Runtime worker threads (0: one per CPU).
    #[arg(long, default_value_t = 0)]
    pub(crate) threads: usize,
    /// Delete the benchmark queues before creating and prefilling them.
    #[arg(long)]
    pub(crate) reset: bool,
    /// Delete the benchmark queues after the run.
    #[arg(long)]
    pub(crate) cleanup: bool,
    /// Fail (exit 1) if more than this percentage of the counted requests errored.
    #[arg(long, default_value_t = 1.0, value_name = "PCT")]
    pub(crate) max_error_pct: f64,
    /// No progress lines on stderr.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
    /// Length in seconds of one point of the timeline (throughput, latency percentiles and
    /// RSS over time; see TIMELINE in --help).
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub(crate) interval: f64,
    /// Sample the resident memory (VmRSS from /proc/PID/status) of process PID once per
    /// --interval during the measured window, e.g. the server's; repeatable.
    #[arg(long = "rss-pid", value_name = "PID")]
    pub(crate) rss_pids: Vec<u32>,
    /// Write an SVG plot of the timeline to FILE: throughput per operation, latency
    /// percentiles and (with --rss-pid) resident memory over time.
    #[arg(long, value_name = "FILE")]
    pub(crate) svg: Option<PathBuf>,
    /// With --rss-pid: exit 1 unless every sampled process's memory is flat (see MEMORY in
    /// --help).
    #[arg(long, requires = "rss_pids")]
    pub(crate) require_flat_memory: bool,
}

impl Args {
    /// The names of the benchmark queues (or topics): {queue-prefix}-{i} for each of --queues.
    pub(crate) fn queue_names(&self) -> Vec<String> {
        (0..self.queues)
            .map(|i| format!("{}-{i}", self.queue_prefix))
            .collect()
    }
}

/// What the workers do (see SCENARIOS in --help).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Scenario {
    Post,
    Claim,
    List,
    Mixed,
    Longpoll,
    Topic,
    Ws,
}

impl Scenario {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Post => "post",
            Scenario::Claim => "claim",
            Scenario::List => "list",
            Scenario::Mixed => "mixed",
            Scenario::Longpoll => "longpoll",
            Scenario::Topic => "topic",
            Scenario::Ws => "ws",
        }
    }

    pub(crate) fn ops(self) -> &'static [Op] {
        match self {
            Scenario::Post => &[Op::Post],
            Scenario::Claim => &[Op::Claim, Op::Delete],
            Scenario::List => &[Op::List],
            Scenario::Mixed => &[Op::Post, Op::Claim, Op::Delete, Op::List],
            Scenario::Longpoll => &[Op::Post, Op::Poll],
            Scenario::Topic | Scenario::Ws => &[Op::Post],
        }
    }

    /// The collection the workers' sources live in.
    pub(crate) fn collection(self) -> &'static str {
        match self {
            Scenario::Topic => "topics",
            _ => "queues",
        }
    }
}

/// Parses --mix P:C:O: three non-negative proportions, not all zero.
fn parse_mix(s: &str) -> Result<[u32; 3], String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 3 {
        return Err("expected P:C:O, e.g. 4:4:2".into());
    }
    let mut mix = [0u32; 3];
    for (m, p) in mix.iter_mut().zip(&parts) {
        *m = p
            .trim()
            .parse()
            .map_err(|_| format!("{p:?} is not a non-negative integer"))?;
    }
    if mix.iter().all(|&m| m == 0) {
        return Err("at least one proportion must be positive".into());
    }
    Ok(mix)
}

/// Checks what clap cannot: ranges, combinations of options, readable --rss-pid processes
/// and valid queue names. An error here is exit status 2.
pub(crate) fn check_args(a: &Args) -> Result<(), String> {
    if a.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    if a.queues == 0 {
        return Err("--queues must be at least 1".into());
    }
    if a.batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    if a.requests.is_none() && !(a.duration.is_finite() && a.duration > 0.0) {
        return Err("--duration must be a positive number of seconds".into());
    }
    if a.scenario == Scenario::Longpoll && a.mix[0] == 0 && a.mix[1] == 0 {
        return Err("--scenario longpoll needs producers or consumers in --mix P:C:O".into());
    }
    if !a.subscribers.is_empty() && a.scenario != Scenario::Topic {
        return Err("--subscriber is for --scenario topic".into());
    }
    if a.requests == Some(0) {
        return Err("--requests must be at least 1".into());
    }
    if !(a.warmup.is_finite() && a.warmup >= 0.0) {
        return Err("--warmup must be zero or more seconds".into());
    }
    if !(a.timeout.is_finite() && a.timeout > 0.0) {
        return Err("--timeout must be a positive number of seconds".into());
    }
    if !(a.interval.is_finite() && a.interval >= 0.01) {
        return Err("--interval must be at least 0.01 seconds".into());
    }
    for &pid in &a.rss_pids {
        if read_rss_kib(pid).is_none() {
            return Err(format!(
                "--rss-pid {pid}: cannot read VmRSS from /proc/{pid}/status"
            ));
        }
    }
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let longest = format!("{}-{}", a.queue_prefix, a.queues - 1);
    if !name_ok(&longest) {
        return Err(format!(
            "--queue-prefix {:?}: queue names such as {longest:?} must be 1 to 64 of a-z A-Z 0-9 - _",
            a.queue_prefix
        ));
    }
    Ok(())
}
