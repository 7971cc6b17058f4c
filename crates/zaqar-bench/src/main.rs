//! `zaqar-bench`: a load generator for the Zaqar v2 HTTP API.
//!
//! Like OpenStack's `zaqar-bench`, it drives a server with producers (message posts),
//! consumers (claim, then delete each claimed message) and observers (message listings),
//! over HTTP/1.1 keep-alive connections, one per worker task, and reports throughput and
//! latency percentiles per operation. Run `zaqar-bench --help` for the options, the JSON
//! report shape and the exit codes.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::net::TcpStream;

// ----- command line ---------------------------------------------------------------------

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
struct Args {
    /// Base URL of the server (http only; a path prefix is kept).
    #[arg(long, default_value = "http://127.0.0.1:8888")]
    url: String,
    /// What the workers do (see SCENARIOS in --help).
    #[arg(long, short = 's', value_enum, default_value_t = Scenario::Post)]
    scenario: Scenario,
    /// Number of concurrent workers, each with its own keep-alive connection.
    #[arg(long, short = 'c', default_value_t = 64)]
    connections: usize,
    /// Measured run time in seconds (after the warmup).
    #[arg(long, short = 'd', default_value_t = 10.0, conflicts_with = "requests")]
    duration: f64,
    /// Count exactly N work items instead of running for --duration.
    #[arg(long, short = 'n', value_name = "N")]
    requests: Option<u64>,
    /// Seconds of load before measuring starts; nothing done then is counted.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Number of queues; worker i uses queue {queue-prefix}-{i % queues}.
    #[arg(long, default_value_t = 1)]
    queues: usize,
    /// Prefix of the queue names.
    #[arg(long, default_value = "bench")]
    queue_prefix: String,
    /// Messages posted into each queue before the run (in batches of 10).
    #[arg(long, default_value_t = 0, value_name = "N")]
    prefill: u64,
    /// Messages per POST of a producer.
    #[arg(long, short = 'b', default_value_t = 1)]
    batch: usize,
    /// Approximate size in bytes of each message body {"data": "xxx...", "seq": n}.
    #[arg(long, default_value_t = 100, value_name = "BYTES")]
    message_size: usize,
    /// The limit of each claim.
    #[arg(long, default_value_t = 10)]
    claim_limit: u32,
    /// The limit (page size) of each listing.
    #[arg(long, default_value_t = 10)]
    list_limit: u32,
    /// Proportions of producers, consumers and observers for --scenario mixed (and of
    /// producers and long-poll consumers for --scenario longpoll).
    #[arg(long, default_value = "4:4:2", value_name = "P:C:O", value_parser = parse_mix)]
    mix: [u32; 3],
    /// Long-poll wait in seconds of --scenario longpoll's consumers (the server's
    /// [transport] max_wait bounds it).
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    wait: u32,
    /// --scenario topic: subscribe URL to every topic before the run (repeatable).
    #[arg(long = "subscriber", value_name = "URL")]
    subscribers: Vec<String>,
    /// --scenario ws: WebSocket URL (default ws://HOST:PORT/PATH of --url, i.e. the upgrade
    /// on the HTTP port).
    #[arg(long, value_name = "URL")]
    ws_url: Option<String>,
    /// X-Project-ID of every request.
    #[arg(long, default_value = "bench")]
    project: String,
    /// Keystone token sent as X-Auth-Token with every request (then --project must be the
    /// token's project id). Read from the environment variable ZAQAR_BENCH_TOKEN when unset,
    /// so it need not appear in the process list.
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Also write the results as JSON to FILE (shape in --help).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Per-request timeout in seconds (a timeout counts as an error and reconnects).
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Runtime worker threads (0: one per CPU).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Delete the benchmark queues before creating and prefilling them.
    #[arg(long)]
    reset: bool,
    /// Delete the benchmark queues after the run.
    #[arg(long)]
    cleanup: bool,
    /// Fail (exit 1) if more than this percentage of the counted requests errored.
    #[arg(long, default_value_t = 1.0, value_name = "PCT")]
    max_error_pct: f64,
    /// No progress lines on stderr.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Length in seconds of one point of the timeline (throughput, latency percentiles and
    /// RSS over time; see TIMELINE in --help).
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    interval: f64,
    /// Sample the resident memory (VmRSS from /proc/PID/status) of process PID once per
    /// --interval during the measured window, e.g. the server's; repeatable.
    #[arg(long = "rss-pid", value_name = "PID")]
    rss_pids: Vec<u32>,
    /// Write an SVG plot of the timeline to FILE: throughput per operation, latency
    /// percentiles and (with --rss-pid) resident memory over time.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// With --rss-pid: exit 1 unless every sampled process's memory is flat (see MEMORY in
    /// --help).
    #[arg(long, requires = "rss_pids")]
    require_flat_memory: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Post,
    Claim,
    List,
    Mixed,
    Longpoll,
    Topic,
    Ws,
}

impl Scenario {
    fn name(self) -> &'static str {
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

    fn ops(self) -> &'static [Op] {
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
    fn collection(self) -> &'static str {
        match self {
            Scenario::Topic => "topics",
            _ => "queues",
        }
    }
}

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

// ----- operations and statistics --------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Post = 0,
    Claim = 1,
    Delete = 2,
    List = 3,
    Poll = 4,
}

/// Number of operation kinds (the length of every per-operation array).
const NOPS: usize = 5;

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Post => "post",
            Op::Claim => "claim",
            Op::Delete => "delete",
            Op::List => "list",
            Op::Poll => "poll",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Producer,
    Consumer,
    Observer,
    /// A consumer that long-polls listings (`?wait=`) instead of claiming.
    Poller,
    /// A producer over a WebSocket connection (`message_post`).
    WsProducer,
}

/// A log-linear latency histogram of microseconds: exact below 256 µs, then 256 buckets per
/// power of two (relative error under 0.4%), up to 2^37 µs.
#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
    sum: u128,
}

const SUB_BITS: u32 = 8;
const SUB: usize = 1 << SUB_BITS;
const MAX_MSB: u32 = 36;
const BUCKETS: usize = (MAX_MSB - SUB_BITS + 2) as usize * SUB;

impl Histogram {
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

    fn record(&mut self, micros: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        self.counts[Self::index(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
        self.sum += micros as u128;
    }

    fn merge(&mut self, other: &Histogram) {
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
    fn percentile(&self, p: f64) -> Option<u64> {
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

    fn mean(&self) -> Option<f64> {
        (self.total > 0).then(|| self.sum as f64 / self.total as f64)
    }
}

const MAX_SAMPLES: usize = 5;

#[derive(Default)]
struct OpStats {
    /// Counted requests, errors included.
    requests: u64,
    errors: u64,
    /// Messages posted, claimed, deleted or listed by successful requests.
    messages: u64,
    /// Successful requests that found nothing (claim 204, empty listing page).
    empty: u64,
    hist: Histogram,
    samples: Vec<(String, u64)>,
    other_errors: u64,
}

impl OpStats {
    fn success(&mut self, start: Instant, end: Instant, messages: u64) {
        self.requests += 1;
        self.messages += messages;
        self.hist
            .record(end.saturating_duration_since(start).as_micros() as u64);
    }

    fn error(&mut self, text: String) {
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

    fn merge(&mut self, other: OpStats) {
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

#[derive(Default)]
struct WorkerStats {
    ops: [OpStats; NOPS],
    /// Completion time of the last counted request (for --requests runs).
    last_end: Option<Instant>,
}

// ----- timeline -------------------------------------------------------------------------

/// What completed during one --interval of the run.
#[derive(Default)]
struct Slot {
    requests: [u64; NOPS],
    messages: [u64; NOPS],
    errors: u64,
    /// Latencies of the successes of every operation.
    hist: Histogram,
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
struct Timeline {
    origin: Instant,
    interval: Duration,
    slots: Mutex<Vec<Slot>>,
}

impl Timeline {
    fn index(&self, at: Instant) -> usize {
        let since = at.saturating_duration_since(self.origin).as_secs_f64();
        (since / self.interval.as_secs_f64()) as usize
    }

    fn flush(&self, index: usize, slot: &Slot) {
        let mut slots = self.slots.lock().expect("not poisoned");
        if slots.len() <= index {
            slots.resize_with(index + 1, Slot::default);
        }
        slots[index].merge(slot);
    }
}

/// Resident memory samples of the --rss-pid processes: (seconds into the measured window,
/// VmRSS in KiB per process, None if unreadable).
type RssSamples = Vec<(f64, Vec<Option<u64>>)>;

/// VmRSS of `pid` in KiB, from /proc/PID/status.
fn read_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The trend of one process's memory (see MEMORY in --help).
#[derive(Debug, PartialEq)]
struct MemoryTrend {
    samples: usize,
    first: u64,
    max: u64,
    last: u64,
    /// Least-squares slope over the second half of the samples.
    slope_kib_per_min: f64,
    /// The slope times the length of the second half.
    second_half_growth_kib: f64,
    flat: bool,
}

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

// ----- HTTP client ----------------------------------------------------------------------

/// Where and how to talk to the server; shared by every connection.
struct Target {
    addr: SocketAddr,
    host: HeaderValue,
    /// Path prefix of --url, without a trailing slash (usually empty).
    base: String,
    project: HeaderValue,
    /// X-Auth-Token of every request.
    token: Option<HeaderValue>,
    timeout: Duration,
}

impl Target {
    fn uri(&self, path: &str) -> Uri {
        let full = if self.base.is_empty() || !path.starts_with('/') {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        Uri::try_from(full).unwrap_or_else(|_| Uri::from_static("/"))
    }
}

static CLIENT_ID: HeaderName = HeaderName::from_static("client-id");
static PROJECT_ID: HeaderName = HeaderName::from_static("x-project-id");
static AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-token");

/// What came of one request: when it was sent and finished, and the status and body or an
/// error text.
struct Outcome {
    start: Instant,
    end: Instant,
    result: Result<(StatusCode, Bytes), String>,
}

/// One keep-alive HTTP/1.1 connection with its own Client-ID; reconnects when broken.
struct Conn {
    target: Arc<Target>,
    sender: Option<SendRequest<Full<Bytes>>>,
    client_id: HeaderValue,
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        let c = cause.to_string();
        if !s.contains(&c) {
            let _ = write!(s, ": {c}");
        }
        src = cause.source();
    }
    s
}

impl Conn {
    fn new(target: Arc<Target>) -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        Conn {
            target,
            sender: None,
            client_id: HeaderValue::from_str(&id).expect("a UUID is a valid header value"),
        }
    }

    async fn connect(&mut self) -> Result<(), String> {
        let connect = async {
            let stream = TcpStream::connect(self.target.addr)
                .await
                .map_err(|e| format!("connect: {}", error_chain(&e)))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {}", error_chain(&e)))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok::<_, String>(sender)
        };
        match tokio::time::timeout(self.target.timeout, connect).await {
            Ok(Ok(sender)) => {
                self.sender = Some(sender);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err("connect: timed out".into()),
        }
    }

    /// A connection ready to take a request: the kept-alive one, or a new one if the server
    /// closed it meanwhile.
    async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        for _ in 0..2 {
            if self.sender.is_none() {
                self.connect().await?;
            }
            let sender = self.sender.as_mut().expect("connected");
            let ready = tokio::time::timeout(self.target.timeout, sender.ready()).await;
            match ready {
                Ok(Ok(())) => return Ok(self.sender.as_mut().expect("connected")),
                Ok(Err(_)) => self.sender = None,
                Err(_) => {
                    self.sender = None;
                    return Err("connection: timed out waiting to send".into());
                }
            }
        }
        Err("connection: closed by the server twice in a row".into())
    }

    async fn call(&mut self, method: Method, uri: Uri, body: Bytes) -> Outcome {
        let t0 = Instant::now();
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        h.insert(HOST, self.target.host.clone());
        h.insert(CLIENT_ID.clone(), self.client_id.clone());
        h.insert(PROJECT_ID.clone(), self.target.project.clone());
        if let Some(token) = &self.target.token {
            h.insert(AUTH_TOKEN.clone(), token.clone());
        }
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let timeout = self.target.timeout;
        let sender = match self.ready().await {
            Ok(s) => s,
            Err(e) => {
                let end = Instant::now();
                // Do not spin on a server that refuses connections.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Outcome {
                    start: t0,
                    end,
                    result: Err(e),
                };
            }
        };
        let start = Instant::now();
        let exchange = async {
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| format!("request: {}", error_chain(&e)))?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("response body: {}", error_chain(&e)))?
                .to_bytes();
            Ok((status, body))
        };
        let result = match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(format!("timed out after {:.1} s", timeout.as_secs_f64())),
        };
        let end = Instant::now();
        if result.is_err() {
            self.sender = None;
        }
        Outcome { start, end, result }
    }
}

/// The error text of an unexpected status: code and the start of the body.
fn status_error(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut snippet: String = text.chars().take(160).collect();
    if snippet.len() < text.len() {
        snippet.push('…');
    }
    if snippet.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {snippet}")
    }
}

/// A WebSocket connection to the server (tokio-tungstenite, no TLS).
type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// One WebSocket connection of a `ws` worker: one request at a time; reconnects when broken.
struct WsConn {
    url: Arc<str>,
    stream: Option<WsStream>,
    timeout: Duration,
}

/// The status in a WebSocket response envelope: `{"headers": {"status": N}, ...}`.
fn ws_status(text: &str) -> Option<StatusCode> {
    #[derive(Deserialize)]
    struct Headers {
        status: u16,
    }
    #[derive(Deserialize)]
    struct Envelope {
        headers: Headers,
    }
    let env: Envelope = serde_json::from_str(text).ok()?;
    StatusCode::from_u16(env.headers.status).ok()
}

impl WsConn {
    /// Sends one request frame and waits for the next response frame (control frames are
    /// answered by the library and skipped).
    async fn call(&mut self, text: String) -> Outcome {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let t0 = Instant::now();
        if self.stream.is_none() {
            let connect = tokio_tungstenite::connect_async(&*self.url);
            let err = match tokio::time::timeout(self.timeout, connect).await {
                Ok(Ok((ws, _))) => {
                    self.stream = Some(ws);
                    None
                }
                Ok(Err(e)) => Some(format!("websocket connect: {}", error_chain(&e))),
                Err(_) => Some("websocket connect: timed out".to_string()),
            };
            if let Some(e) = err {
                let end = Instant::now();
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Outcome {
                    start: t0,
                    end,
                    result: Err(e),
                };
            }
        }
        let ws = self.stream.as_mut().expect("connected");
        let start = Instant::now();
        let exchange = async {
            ws.send(Message::text(text))
                .await
                .map_err(|e| format!("websocket send: {}", error_chain(&e)))?;
            loop {
                let frame = match ws.next().await {
                    Some(Ok(Message::Text(t))) => Bytes::copy_from_slice(t.as_bytes()),
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Close(_))) | None => {
                        return Err("websocket closed by the server".to_string())
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(format!("websocket: {}", error_chain(&e))),
                };
                let status = std::str::from_utf8(&frame)
                    .ok()
                    .and_then(ws_status)
                    .ok_or_else(|| "websocket: a frame without headers.status".to_string())?;
                return Ok((status, frame));
            }
        };
        let result = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "timed out after {:.1} s",
                self.timeout.as_secs_f64()
            )),
        };
        let end = Instant::now();
        if result.is_err() {
            self.stream = None;
        }
        Outcome { start, end, result }
    }
}

// ----- message bodies -------------------------------------------------------------------

/// Builds message-post bodies: `{"messages":[{"ttl":3600,"body":{"data":"xxx","seq":n}}]}`,
/// each message body padded to `size` bytes.
struct MessageGen {
    size: usize,
    pad: Arc<str>,
    seq: u64,
}

impl MessageGen {
    fn new(size: usize, pad: Arc<str>) -> Self {
        MessageGen { size, pad, seq: 0 }
    }

    fn body(&mut self, n: usize) -> Bytes {
        let mut s = String::with_capacity(16 + n * (self.size + 48));
        s.push('{');
        self.push_messages(&mut s, n);
        s.push('}');
        Bytes::from(s)
    }

    /// Appends `"messages":[...]` with `n` messages to `s`.
    fn push_messages(&mut self, s: &mut String, n: usize) {
        s.reserve(16 + n * (self.size + 48));
        s.push_str("\"messages\":[");
        for i in 0..n {
            if i > 0 {
                s.push(',');
            }
            let seq = self.seq;
            self.seq += 1;
            let digits = seq.checked_ilog10().unwrap_or(0) as usize + 1;
            // {"data":"","seq":} is 18 bytes.
            let pad = self.size.saturating_sub(18 + digits).min(self.pad.len());
            s.push_str("{\"ttl\":3600,\"body\":{\"data\":\"");
            s.push_str(&self.pad[..pad]);
            let _ = write!(s, "\",\"seq\":{seq}}}}}");
        }
        s.push(']');
    }
}

#[derive(Deserialize)]
struct HrefDoc {
    href: String,
}

#[derive(Deserialize)]
struct ClaimDoc {
    messages: Vec<HrefDoc>,
}

#[derive(Deserialize)]
struct LinkDoc {
    #[serde(default)]
    rel: String,
    href: String,
}

#[derive(Deserialize)]
struct ListDoc {
    #[serde(default)]
    messages: Vec<IgnoredAny>,
    #[serde(default)]
    links: Vec<LinkDoc>,
}

// ----- the run --------------------------------------------------------------------------

/// The clock and counters of the measured run.
struct Run {
    measure_start: Instant,
    timeline: Timeline,
    /// End of the measured window (None with --requests).
    measure_end: Option<Instant>,
    /// --requests: how many work items to count, and how many were handed out.
    limit: Option<u64>,
    tickets: AtomicU64,
    stop: AtomicBool,
    stopped_at: Mutex<Option<Instant>>,
    /// Progress: counted requests and errors so far.
    done: AtomicU64,
    failed: AtomicU64,
}

struct Worker {
    conn: Conn,
    run: Arc<Run>,
    stats: WorkerStats,
    gen: MessageGen,
    batch: usize,
    post_uri: Uri,
    claim_uri: Uri,
    claim_body: Bytes,
    list_uri: Uri,
    list_next: Option<Uri>,
    /// Long polling: the first page's URI, the next one, and the wait to add to "next".
    poll_uri: Uri,
    poll_next: Option<Uri>,
    wait: u32,
    /// WebSocket producers: the connection, and the start of each request envelope (up to
    /// the messages).
    ws: Option<WsConn>,
    ws_prefix: String,
    /// The worker's current timeline slot, merged into the run's when it moves on.
    slot: Option<(usize, Slot)>,
}

impl Worker {
    /// Whether a request of a work item counts: with --requests, if the item holds a
    /// ticket; otherwise if it started and finished inside the measured window.
    fn counts(&self, ticket: bool, o: &Outcome) -> bool {
        match self.run.measure_end {
            None => ticket,
            Some(end) => o.start >= self.run.measure_start && o.end <= end,
        }
    }

    /// Counts a finished request of `op` (`messages` moved if it succeeded).
    fn note(&mut self, op: Op, ok: bool, messages: u64, o: &Outcome) {
        self.run.done.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.run.failed.fetch_add(1, Ordering::Relaxed);
        }
        if self.stats.last_end.is_none_or(|t| t < o.end) {
            self.stats.last_end = Some(o.end);
        }
        let index = self.run.timeline.index(o.end);
        if self.slot.as_ref().is_some_and(|(i, _)| *i != index) {
            self.flush_slot();
        }
        let (_, slot) = self.slot.get_or_insert_with(|| (index, Slot::default()));
        slot.requests[op as usize] += 1;
        if ok {
            slot.messages[op as usize] += messages;
            slot.hist.record(
                o.end
                    .saturating_duration_since(o.start)
                    .as_micros()
                    .try_into()
                    .unwrap_or(u64::MAX),
            );
        } else {
            slot.errors += 1;
        }
    }

    fn flush_slot(&mut self) {
        if let Some((index, slot)) = self.slot.take() {
            self.run.timeline.flush(index, &slot);
        }
    }

    async fn post(&mut self, ticket: bool) {
        let body = self.gen.body(self.batch);
        let o = self
            .conn
            .call(Method::POST, self.post_uri.clone(), body)
            .await;
        self.count_post(ticket, o);
    }

    async fn ws_post(&mut self, ticket: bool) {
        let mut text = self.ws_prefix.clone();
        self.gen.push_messages(&mut text, self.batch);
        text.push_str("}}");
        let ws = self
            .ws
            .as_mut()
            .expect("a WebSocket producer has a WebSocket");
        let o = ws.call(text).await;
        self.count_post(ticket, o);
    }

    fn count_post(&mut self, ticket: bool, o: Outcome) {
        if !self.counts(ticket, &o) {
            return;
        }
        let st = &mut self.stats.ops[Op::Post as usize];
        let ok = match &o.result {
            Ok((StatusCode::CREATED, _)) => {
                st.success(o.start, o.end, self.batch as u64);
                true
            }
            Ok((status, body)) => {
                st.error(status_error(*status, body));
                false
            }
            Err(e) => {
                st.error(e.clone());
                false
            }
        };
        self.note(Op::Post, ok, self.batch as u64, &o);
    }

    async fn claim(&mut self, ticket: bool) {
        let o = self
            .conn
            .call(
                Method::POST,
                self.claim_uri.clone(),
                self.claim_body.clone(),
            )
            .await;
        let counted = self.counts(ticket, &o);
        let mut hrefs = Vec::new();
        let outcome: Result<Option<u64>, String> = match &o.result {
            Ok((StatusCode::CREATED, body)) => match serde_json::from_slice::<ClaimDoc>(body) {
                Ok(doc) => {
                    hrefs = doc.messages;
                    Ok(Some(hrefs.len() as u64))
                }
                Err(e) => Err(format!("HTTP 201 with an unreadable claim document: {e}")),
            },
            Ok((StatusCode::NO_CONTENT, _)) => Ok(None),
            Ok((status, body)) => Err(status_error(*status, body)),
            Err(e) => Err(e.clone()),
        };
        if counted {
            let st = &mut self.stats.ops[Op::Claim as usize];
            let claimed = hrefs.len() as u64;
            let ok = match outcome {
                Ok(Some(n)) => {
                    st.success(o.start, o.end, n);
                    if n == 0 {
                        st.empty += 1;
                    }
                    true
                }
                Ok(None) => {
                    st.success(o.start, o.end, 0);
                    st.empty += 1;
                    true
                }
                Err(e) => {
                    st.error(e);
                    false
                }
            };
            self.note(Op::Claim, ok, claimed, &o);
        }
        // Delete what was claimed, even past the end of the window (uncounted then), so
        // that no claimed message is left to come back when its claim expires.
        for m in hrefs {
            let uri = self.conn.target.uri(&m.href);
            let o = self.conn.call(Method::DELETE, uri, Bytes::new()).await;
            if !self.counts(ticket, &o) {
                continue;
            }
            let st = &mut self.stats.ops[Op::Delete as usize];
            let ok = match &o.result {
                Ok((StatusCode::NO_CONTENT, _)) => {
                    st.success(o.start, o.end, 1);
                    true
                }
                Ok((status, body)) => {
                    st.error(status_error(*status, body));
                    false
                }
                Err(e) => {
                    st.error(e.clone());
                    false
                }
            };
            self.note(Op::Delete, ok, 1, &o);
        }
    }

    async fn list(&mut self, ticket: bool) {
        let uri = self
            .list_next
            .clone()
            .unwrap_or_else(|| self.list_uri.clone());
        let o = self.conn.call(Method::GET, uri, Bytes::new()).await;
        let outcome: Result<u64, String> = match &o.result {
            Ok((StatusCode::OK, body)) => match serde_json::from_slice::<ListDoc>(body) {
                Ok(doc) => {
                    let n = doc.messages.len() as u64;
                    // Page on while there are messages; start over after an empty page.
                    self.list_next = if n == 0 {
                        None
                    } else {
                        doc.links
                            .iter()
                            .find(|l| l.rel == "next")
                            .map(|l| self.conn.target.uri(&l.href))
                    };
                    Ok(n)
                }
                Err(e) => {
                    self.list_next = None;
                    Err(format!("HTTP 200 with an unreadable listing: {e}"))
                }
            },
            Ok((StatusCode::NO_CONTENT, _)) => {
                self.list_next = None;
                Ok(0)
            }
            Ok((status, body)) => {
                self.list_next = None;
                Err(status_error(*status, body))
            }
            Err(e) => Err(e.clone()),
        };
        if !self.counts(ticket, &o) {
            return;
        }
        let st = &mut self.stats.ops[Op::List as usize];
        let listed = *outcome.as_ref().unwrap_or(&0);
        let ok = match outcome {
            Ok(n) => {
                st.success(o.start, o.end, n);
                if n == 0 {
                    st.empty += 1;
                }
                true
            }
            Err(e) => {
                st.error(e);
                false
            }
        };
        self.note(Op::List, ok, listed, &o);
    }

    async fn poll(&mut self, ticket: bool) {
        let uri = self
            .poll_next
            .clone()
            .unwrap_or_else(|| self.poll_uri.clone());
        let o = self.conn.call(Method::GET, uri, Bytes::new()).await;
        let outcome: Result<u64, String> = match &o.result {
            Ok((StatusCode::OK, body)) => match serde_json::from_slice::<ListDoc>(body) {
                Ok(doc) => {
                    // Read forward: the next page starts after what this one returned.
                    if let Some(next) = doc.links.iter().find(|l| l.rel == "next") {
                        let href = format!("{}&wait={}", next.href, self.wait);
                        self.poll_next = Some(self.conn.target.uri(&href));
                    }
                    Ok(doc.messages.len() as u64)
                }
                Err(e) => Err(format!("HTTP 200 with an unreadable listing: {e}")),
            },
            // Nothing arrived during the wait: keep the place.
            Ok((StatusCode::NO_CONTENT, _)) => Ok(0),
            Ok((status, body)) => Err(status_error(*status, body)),
            Err(e) => Err(e.clone()),
        };
        if !self.counts(ticket, &o) {
            return;
        }
        let st = &mut self.stats.ops[Op::Poll as usize];
        let got = *outcome.as_ref().unwrap_or(&0);
        let ok = match outcome {
            Ok(n) => {
                st.success(o.start, o.end, n);
                if n == 0 {
                    st.empty += 1;
                }
                true
            }
            Err(e) => {
                st.error(e);
                false
            }
        };
        self.note(Op::Poll, ok, got, &o);
    }

    async fn run(mut self, role: Role) -> WorkerStats {
        loop {
            if self.run.stop.load(Ordering::Relaxed) {
                break;
            }
            let now = Instant::now();
            let ticket = match (self.run.limit, self.run.measure_end) {
                (Some(limit), _) => {
                    if now < self.run.measure_start {
                        false
                    } else if self.run.tickets.fetch_add(1, Ordering::Relaxed) >= limit {
                        break;
                    } else {
                        true
                    }
                }
                (None, Some(end)) => {
                    if now >= end {
                        break;
                    }
                    false
                }
                (None, None) => unreachable!("a run has a duration or a request count"),
            };
            match role {
                Role::Producer => self.post(ticket).await,
                Role::Consumer => self.claim(ticket).await,
                Role::Observer => self.list(ticket).await,
                Role::Poller => self.poll(ticket).await,
                Role::WsProducer => self.ws_post(ticket).await,
            }
        }
        self.flush_slot();
        self.stats
    }
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

// ----- setup ----------------------------------------------------------------------------

async fn resolve(url: &str, project: &str, timeout: Duration) -> Result<Target, String> {
    let uri: Uri = url.parse().map_err(|e| format!("--url {url:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => return Err(format!("--url {url:?}: scheme {other} is not supported")),
        None => return Err(format!("--url {url:?}: expected http://HOST[:PORT][/PATH]")),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("--url {url:?}: no host"))?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(80);
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {host}: no address"))?;
    let host_header = authority.as_str().rsplit('@').next().unwrap_or(host);
    Ok(Target {
        addr,
        host: HeaderValue::from_str(host_header).map_err(|e| format!("--url: {e}"))?,
        base: uri.path().trim_end_matches('/').to_string(),
        project: HeaderValue::from_str(project).map_err(|e| format!("--project: {e}"))?,
        token: None,
        timeout,
    })
}

/// One setup request that must succeed with one of `ok`.
async fn setup_call(
    conn: &mut Conn,
    method: Method,
    path: &str,
    body: Bytes,
    ok: &[StatusCode],
) -> Result<(), String> {
    let what = format!("{method} {path}");
    let uri = conn.target.uri(path);
    match conn.call(method, uri, body).await.result {
        Ok((status, _)) if ok.contains(&status) => Ok(()),
        Ok((status, body)) => Err(format!("{what}: {}", status_error(status, &body))),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

/// Posts `per_queue` messages into each queue, in batches of 10, over up to 16 connections.
async fn prefill(
    target: &Arc<Target>,
    collection: &str,
    queues: &[String],
    per_queue: u64,
    size: usize,
    pad: &Arc<str>,
    conns: usize,
) -> Result<(), String> {
    const BATCH: u64 = 10;
    let batches = per_queue.div_ceil(BATCH);
    let total = batches * queues.len() as u64;
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let uris: Arc<Vec<Uri>> = Arc::new(
        queues
            .iter()
            .map(|q| target.uri(&format!("/v2/{collection}/{q}/messages")))
            .collect(),
    );
    let workers = (conns.min(16) as u64).min(total).max(1);
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (target, next, failed, uris) =
            (target.clone(), next.clone(), failed.clone(), uris.clone());
        let mut gen = MessageGen::new(size, pad.clone());
        handles.push(tokio::spawn(async move {
            let mut conn = Conn::new(target);
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= total || failed.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let q = (k % uris.len() as u64) as usize;
                let b = k / uris.len() as u64;
                let n = if b == batches - 1 {
                    per_queue - BATCH * (batches - 1)
                } else {
                    BATCH
                };
                let body = gen.body(n as usize);
                let o = conn.call(Method::POST, uris[q].clone(), body).await;
                let err = match o.result {
                    Ok((StatusCode::CREATED, _)) => continue,
                    Ok((status, body)) => status_error(status, &body),
                    Err(e) => e,
                };
                failed.store(true, Ordering::Relaxed);
                return Err(format!("prefill POST {}: {err}", uris[q]));
            }
        }));
    }
    for h in handles {
        h.await.map_err(|e| format!("prefill task: {e}"))??;
    }
    Ok(())
}

// ----- report ---------------------------------------------------------------------------

fn ms(micros: Option<u64>) -> Option<f64> {
    micros.map(|v| v as f64 / 1000.0)
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"))
}

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

struct OpReport<'a> {
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

fn table(reports: &[OpReport]) -> String {
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

// ----- timeline report and plot ---------------------------------------------------------

/// One interval of the measured window, as reported.
struct Point {
    /// End of the interval, in seconds from the start of the window.
    t: f64,
    rps: [f64; NOPS],
    mps: [f64; NOPS],
    errors: u64,
    p50: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
}

impl Point {
    fn total_rps(&self) -> f64 {
        self.rps.iter().sum()
    }
}

/// The points of the window (the last one may be shorter than `interval`).
fn timeline_points(slots: &[Slot], interval: f64, elapsed: f64) -> Vec<Point> {
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

fn timeline_json(
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

/// A "nice" upper bound and step for an axis from 0 to `max` with about `ticks` ticks.
fn nice_axis(max: f64, ticks: usize) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / ticks as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    ((max / step).ceil() * step, step)
}

fn fmt_tick(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{}M", round(v / 1_000_000.0, 2))
    } else if v >= 10_000.0 {
        format!("{}k", round(v / 1000.0, 1))
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{}", round(v, 3))
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// One panel of the plot: series of (x, y) points, drawn as lines over a shared x range.
struct Panel<'a> {
    title: &'a str,
    unit: &'a str,
    series: Vec<(String, Vec<(f64, f64)>)>,
}

/// Renders the timeline as a self-contained SVG: throughput per operation, latency
/// percentiles of all successes and, with samples, resident memory per process.
fn render_svg(title: &str, ops: &[Op], points: &[Point], pids: &[u32], rss: &RssSamples) -> String {
    let mut panels = Vec::new();
    let mut throughput: Vec<(String, Vec<(f64, f64)>)> = ops
        .iter()
        .map(|&op| {
            let line = points.iter().map(|p| (p.t, p.rps[op as usize])).collect();
            (format!("{} req/s", op.name()), line)
        })
        .collect();
    if ops.len() > 1 {
        let line = points.iter().map(|p| (p.t, p.total_rps())).collect();
        throughput.push(("total req/s".to_string(), line));
    }
    panels.push(Panel {
        title: "Throughput",
        unit: "requests/s",
        series: throughput,
    });
    let latency = [("p50", 0usize), ("p90", 1), ("p99", 2)]
        .iter()
        .map(|&(name, k)| {
            let line = points
                .iter()
                .filter_map(|p| [p.p50, p.p90, p.p99][k].map(|v| (p.t, v)))
                .collect();
            (name.to_string(), line)
        })
        .collect();
    panels.push(Panel {
        title: "Latency of successful requests (all operations)",
        unit: "ms",
        series: latency,
    });
    if !pids.is_empty() {
        let series = pids
            .iter()
            .enumerate()
            .map(|(k, pid)| {
                let line = rss
                    .iter()
                    .filter_map(|(t, v)| v[k].map(|kib| (*t, kib as f64 / 1024.0)))
                    .collect();
                (format!("pid {pid} RSS"), line)
            })
            .collect();
        panels.push(Panel {
            title: "Resident memory",
            unit: "MiB",
            series,
        });
    }

    let x_max = points
        .iter()
        .map(|p| p.t)
        .chain(rss.iter().map(|s| s.0))
        .fold(0.0f64, f64::max);
    let (x_top, x_step) = nice_axis(x_max, 10);
    let (width, left, right, top, plot_h, gap) = (960.0, 80.0, 170.0, 50.0, 220.0, 70.0);
    let plot_w = width - left - right;
    let height = top + panels.len() as f64 * (plot_h + gap);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" font-size="16" text-anchor="middle">{}</text>"#,
        width / 2.0,
        xml_escape(title)
    );
    for (n, panel) in panels.iter().enumerate() {
        let y0 = top + n as f64 * (plot_h + gap) + 20.0;
        let y_max = panel
            .series
            .iter()
            .flat_map(|(_, line)| line.iter().map(|p| p.1))
            .fold(0.0f64, f64::max);
        let (y_top, y_step) = nice_axis(y_max * 1.05, 5);
        let px = |x: f64| left + x / x_top * plot_w;
        let py = |y: f64| y0 + plot_h - y / y_top * plot_h;
        let _ = writeln!(
            s,
            r#"<text x="{left}" y="{}" font-size="14">{} ({})</text>"#,
            y0 - 8.0,
            xml_escape(panel.title),
            xml_escape(panel.unit)
        );
        // Grid and y labels.
        let mut y = 0.0;
        while y <= y_top + y_step / 2.0 {
            let yy = py(y);
            let _ = writeln!(
                s,
                r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                left + plot_w,
                left - 6.0,
                yy + 4.0,
                fmt_tick(y)
            );
            y += y_step;
        }
        // x labels.
        let mut x = 0.0;
        while x <= x_top + x_step / 2.0 {
            let xx = px(x);
            let _ = writeln!(
                s,
                r##"<line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#999"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                y0 + plot_h,
                y0 + plot_h + 4.0,
                y0 + plot_h + 18.0,
                fmt_tick(x)
            );
            x += x_step;
        }
        let _ = writeln!(
            s,
            r##"<rect x="{left}" y="{y0:.1}" width="{plot_w:.1}" height="{plot_h:.1}" fill="none" stroke="#333"/>"##
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">seconds into the measured window</text>"#,
            left + plot_w / 2.0,
            y0 + plot_h + 34.0
        );
        for (k, (name, line)) in panel.series.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            if !line.is_empty() {
                let pts: Vec<String> = line
                    .iter()
                    .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                    .collect();
                let _ = writeln!(
                    s,
                    r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
                    pts.join(" ")
                );
            }
            let ly = y0 + 14.0 + k as f64 * 18.0;
            let lx = left + plot_w + 12.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                lx + 18.0,
                lx + 24.0,
                ly + 4.0,
                xml_escape(name)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

// ----- main -----------------------------------------------------------------------------

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

fn check_args(a: &Args) -> Result<(), String> {
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

async fn bench(args: Args, threads: usize) -> ExitCode {
    let timeout = Duration::from_secs_f64(args.timeout);
    let token = args
        .token
        .clone()
        .or_else(|| std::env::var("ZAQAR_BENCH_TOKEN").ok())
        .filter(|t| !t.is_empty());
    let target = match resolve(&args.url, &args.project, timeout)
        .await
        .and_then(|mut t| {
            if let Some(token) = token {
                let mut v = HeaderValue::from_str(&token).map_err(|e| format!("--token: {e}"))?;
                v.set_sensitive(true);
                t.token = Some(v);
            }
            Ok(t)
        }) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            eprintln!("zaqar-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let queues: Vec<String> = (0..args.queues)
        .map(|i| format!("{}-{i}", args.queue_prefix))
        .collect();
    let pad: Arc<str> = Arc::from("x".repeat(args.message_size));

    // Reachability, then the queues and their prefill.
    let mut conn = Conn::new(target.clone());
    if let Err(e) = setup_call(
        &mut conn,
        Method::GET,
        "/v2/ping",
        Bytes::new(),
        &[StatusCode::NO_CONTENT, StatusCode::OK],
    )
    .await
    {
        eprintln!("zaqar-bench: cannot reach the server at {}: {e}", args.url);
        return ExitCode::from(2);
    }
    let collection = args.scenario.collection();
    for q in &queues {
        let path = format!("/v2/{collection}/{q}");
        let mut steps = Vec::new();
        if args.reset {
            steps.push((Method::DELETE, vec![StatusCode::NO_CONTENT]));
        }
        steps.push((
            Method::PUT,
            vec![StatusCode::CREATED, StatusCode::NO_CONTENT],
        ));
        for (method, ok) in steps {
            if let Err(e) = setup_call(&mut conn, method, &path, Bytes::new(), &ok).await {
                eprintln!("zaqar-bench: setup failed: {e}");
                return ExitCode::from(2);
            }
        }
        for url in &args.subscribers {
            let body = json!({"subscriber": url, "ttl": 3600, "options": {}}).to_string();
            let path = format!("{path}/subscriptions");
            let ok = [StatusCode::CREATED, StatusCode::CONFLICT];
            if let Err(e) = setup_call(&mut conn, Method::POST, &path, body.into(), &ok).await {
                eprintln!("zaqar-bench: setup failed: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if args.prefill > 0 {
        let t = Instant::now();
        let total = args.prefill * queues.len() as u64;
        if !args.quiet {
            eprintln!(
                "prefilling {} messages into each of {} queue(s)...",
                args.prefill,
                queues.len()
            );
        }
        if let Err(e) = prefill(
            &target,
            collection,
            &queues,
            args.prefill,
            args.message_size,
            &pad,
            args.connections,
        )
        .await
        {
            eprintln!("zaqar-bench: {e}");
            return ExitCode::from(2);
        }
        if !args.quiet {
            let s = t.elapsed().as_secs_f64();
            eprintln!(
                "prefilled {total} messages in {s:.2} s ({:.0} msg/s)",
                total as f64 / s
            );
        }
    }
    drop(conn);

    // Roles.
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

    // The run.
    let start = Instant::now();
    let measure_start = start + Duration::from_secs_f64(args.warmup);
    let measure_end = match args.requests {
        Some(_) => None,
        None => Some(measure_start + Duration::from_secs_f64(args.duration)),
    };
    let interval = Duration::from_secs_f64(args.interval);
    let run = Arc::new(Run {
        measure_start,
        timeline: Timeline {
            origin: measure_start,
            interval,
            slots: Mutex::new(Vec::new()),
        },
        measure_end,
        limit: args.requests,
        tickets: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        stopped_at: Mutex::new(None),
        done: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    if !args.quiet {
        let what = match (args.requests, args.duration) {
            (Some(r), _) => format!("{r} work items"),
            (None, d) => format!("{d} s"),
        };
        eprintln!(
            "running {} with {n} connection(s) ({} producers, {} consumers, {} observers) \
             on {} queue(s): {}s warmup, then {what}",
            args.scenario.name(),
            counts[0],
            counts[1],
            counts[2],
            queues.len(),
            args.warmup
        );
    }
    let claim_body = Bytes::from_static(b"{\"ttl\":60,\"grace\":60}");
    let mut handles = Vec::with_capacity(n);
    for (i, role) in roles.iter().enumerate() {
        let q = &queues[i % queues.len()];
        let worker = Worker {
            conn: Conn::new(target.clone()),
            run: run.clone(),
            stats: WorkerStats::default(),
            gen: MessageGen::new(args.message_size, pad.clone()),
            batch: args.batch,
            post_uri: target.uri(&format!("/v2/{collection}/{q}/messages")),
            claim_uri: target.uri(&format!("/v2/queues/{q}/claims?limit={}", args.claim_limit)),
            claim_body: claim_body.clone(),
            list_uri: target.uri(&format!(
                "/v2/queues/{q}/messages?echo=true&limit={}",
                args.list_limit
            )),
            list_next: None,
            poll_uri: target.uri(&format!(
                "/v2/queues/{q}/messages?limit={}&wait={}",
                args.claim_limit, args.wait
            )),
            poll_next: None,
            wait: args.wait,
            ws: (*role == Role::WsProducer).then(|| WsConn {
                url: ws_url.clone(),
                stream: None,
                timeout,
            }),
            ws_prefix: format!(
                "{{\"action\":\"message_post\",\"headers\":{{\"Client-ID\":{},\"X-Project-ID\":{}}},\"body\":{{\"queue_name\":{},",
                json!(uuid::Uuid::new_v4().to_string()),
                json!(args.project),
                json!(q)
            ),
            slot: None,
        };
        handles.push(tokio::spawn(worker.run(*role)));
    }
    // Resident memory of the --rss-pid processes, sampled once per interval.
    let rss: Arc<Mutex<RssSamples>> = Arc::default();
    let rss_task = (!args.rss_pids.is_empty()).then(|| {
        let (rss, pids) = (rss.clone(), args.rss_pids.clone());
        tokio::spawn(async move {
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
        })
    });
    {
        let run = run.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: stopping after the requests in flight");
                *run.stopped_at.lock().expect("not poisoned") = Some(Instant::now());
                run.stop.store(true, Ordering::Relaxed);
            }
        });
    }
    let progress = (!args.quiet).then(|| {
        let run = run.clone();
        let rss_pids = args.rss_pids.clone();
        tokio::spawn(async move {
            // One line per second of the measured window (none during the warmup).
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
        })
    });

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
    if let Some(p) = progress {
        p.abort();
    }
    if let Some(t) = rss_task {
        t.abort();
    }
    let stopped_at = *run.stopped_at.lock().expect("not poisoned");
    let window_end = match measure_end {
        Some(end) => stopped_at.map_or(end, |s| s.min(end)),
        None => total.last_end.unwrap_or(measure_start),
    };
    let elapsed = window_end
        .saturating_duration_since(measure_start)
        .as_secs_f64();

    // Report.
    let reports: Vec<OpReport> = args
        .scenario
        .ops()
        .iter()
        .map(|&op| OpReport::new(op, &total.ops[op as usize], elapsed))
        .collect();
    let requests: u64 = reports.iter().map(|r| r.st.requests).sum();
    let errors: u64 = reports.iter().map(|r| r.st.errors).sum();
    let error_pct = if requests > 0 {
        errors as f64 * 100.0 / requests as f64
    } else {
        0.0
    };
    let points = {
        let slots = run.timeline.slots.lock().expect("not poisoned");
        timeline_points(&slots, args.interval, elapsed)
    };
    let rss_samples = std::mem::take(&mut *rss.lock().expect("not poisoned"));
    let trends: Vec<(u32, Option<MemoryTrend>)> = args
        .rss_pids
        .iter()
        .enumerate()
        .map(|(k, &pid)| {
            let series: Vec<(f64, u64)> = rss_samples
                .iter()
                .filter_map(|(t, v)| v[k].map(|kib| (*t, kib)))
                .collect();
            (pid, memory_trend(&series))
        })
        .collect();
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

    println!(
        "zaqar-bench: scenario {} against {}: {n} connections ({} producers, {} consumers, \
         {} observers), {} queue(s), batch {}, message size {} B, measured {elapsed:.2} s",
        args.scenario.name(),
        args.url,
        counts[0],
        counts[1],
        counts[2],
        queues.len(),
        args.batch,
        args.message_size
    );
    print!("{}", table(&reports));
    let mut summary = format!(
        "SUMMARY {}: {:.0} req/s",
        args.scenario.name(),
        if elapsed > 0.0 {
            requests as f64 / elapsed
        } else {
            0.0
        }
    );
    for r in &reports {
        let _ = write!(
            summary,
            " | {} {:.0} req/s {:.0} msg/s p50 {} p99 {} ms",
            r.op.name(),
            r.rps,
            r.mps,
            fmt_ms(r.p50),
            fmt_ms(r.p99)
        );
    }
    let _ = write!(
        summary,
        " | errors {errors}/{requests} ({error_pct:.2}%) | {}",
        if failure.is_some() { "FAIL" } else { "OK" }
    );
    println!("{summary}");
    for (pid, trend) in &trends {
        match trend {
            Some(t) => println!(
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
            None => println!("MEMORY pid {pid}: no sample could be read"),
        }
    }
    if let Some(path) = &args.svg {
        let svg = render_svg(
            &format!(
                "zaqar-bench {} against {} ({n} connections)",
                args.scenario.name(),
                args.url
            ),
            args.scenario.ops(),
            &points,
            &args.rss_pids,
            &rss_samples,
        );
        if let Err(e) = std::fs::write(path, svg) {
            eprintln!("zaqar-bench: cannot write {}: {e}", path.display());
        }
    }

    if let Some(path) = &args.json {
        let ops: Map<String, Value> = reports
            .iter()
            .map(|r| (r.op.name().to_string(), r.json()))
            .collect();
        let doc = json!({
            "tool": "zaqar-bench",
            "version": env!("CARGO_PKG_VERSION"),
            "scenario": args.scenario.name(),
            "passed": failure.is_none(),
            "failure": failure,
            "settings": {
                "url": args.url,
                "project": args.project,
                "connections": n,
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
                "ws_url": (args.scenario == Scenario::Ws).then(|| ws_url.to_string()),
                "threads": threads,
                "timeout_s": args.timeout,
                "max_error_pct": args.max_error_pct,
            },
            "workers": {"producers": counts[0], "consumers": counts[1], "observers": counts[2]},
            "elapsed_s": round(elapsed, 4),
            "operations": ops,
            "totals": {
                "requests": requests,
                "errors": errors,
                "error_pct": round(error_pct, 4),
                "rps": round(if elapsed > 0.0 { requests as f64 / elapsed } else { 0.0 }, 2),
            },
            "timeline": timeline_json(
                args.scenario.ops(),
                args.interval,
                &points,
                &args.rss_pids,
                &rss_samples,
            ),
            "memory": trends
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
                .collect::<Map<String, Value>>(),
        });
        let text = serde_json::to_string_pretty(&doc).expect("JSON values serialize");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("zaqar-bench: cannot write {}: {e}", path.display());
        }
    }

    if args.cleanup {
        let mut conn = Conn::new(target.clone());
        for q in &queues {
            let path = format!("/v2/{collection}/{q}");
            if let Err(e) = setup_call(
                &mut conn,
                Method::DELETE,
                &path,
                Bytes::new(),
                &[StatusCode::NO_CONTENT],
            )
            .await
            {
                eprintln!("zaqar-bench: cleanup: {e}");
            }
        }
    }

    match failure {
        Some(why) => {
            eprintln!("zaqar-bench: FAIL: {why}");
            ExitCode::from(1)
        }
        None => ExitCode::SUCCESS,
    }
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

    #[test]
    fn message_size() {
        let mut g = MessageGen::new(100, Arc::from("x".repeat(100)));
        let body = g.body(2);
        let doc: Value = serde_json::from_slice(&body).unwrap();
        for m in doc["messages"].as_array().unwrap() {
            assert_eq!(serde_json::to_string(&m["body"]).unwrap().len(), 100);
            assert_eq!(m["ttl"], 3600);
        }
    }

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

    #[test]
    fn timeline_and_svg() {
        let mut slot = Slot::default();
        slot.requests[Op::Post as usize] = 100;
        slot.messages[Op::Post as usize] = 1000;
        for v in 1..=100 {
            slot.hist.record(v * 10);
        }
        let points = timeline_points(&[slot], 1.0, 1.5);
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].rps[Op::Post as usize], 100.0);
        assert_eq!(points[1].t, 1.5);
        assert_eq!(points[1].p50, None);
        let rss: RssSamples = vec![(0.0, vec![Some(1024)]), (1.0, vec![Some(2048)])];
        let svg = render_svg("a <b>", &[Op::Post], &points, &[7], &rss);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &lt;b&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 1 + 3 + 1);
        let doc = timeline_json(&[Op::Post], 1.0, &points, &[7], &rss);
        assert_eq!(doc["points"][0]["ops"]["post"]["mps"], 1000.0);
        assert_eq!(doc["points"][0]["rss_kib"]["7"], 2048);
    }

    #[test]
    fn nice_axes() {
        assert_eq!(nice_axis(9.3, 5), (10.0, 2.0));
        assert_eq!(nice_axis(0.0, 5), (1.0, 0.2));
        assert_eq!(nice_axis(42_000.0, 5), (50_000.0, 10_000.0));
    }

    #[test]
    fn mix_split() {
        assert_eq!(split(64, [4, 4, 2]), [26, 25, 13]);
        assert_eq!(split(10, [4, 4, 2]), [4, 4, 2]);
        assert_eq!(split(3, [10, 1, 1]), [1, 1, 1]);
        assert_eq!(split(5, [1, 0, 0]), [5, 0, 0]);
    }
}
