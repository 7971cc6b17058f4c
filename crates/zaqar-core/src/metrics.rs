//! Process-wide Prometheus metrics: the registry and the recording functions every layer
//! calls (the transports, the service layer, the stores, the notifier).
//!
//! Metrics are process-wide (one registry per process, [`get`]), so any layer can record an
//! event with a plain function call and no plumbing: the HTTP middleware records requests, the
//! WebSocket transport its connections and requests, the service layer the message operations
//! that succeeded, the notification code its deliveries. Recording is a few atomic operations
//! (plus a read-locked map lookup for labelled families); nothing here blocks on I/O.
//!
//! Cardinality is bounded by construction: HTTP labels are route *templates* (never paths), the
//! WebSocket action label is one of the validated action names, and per-queue depth gauges are
//! limited to the `[admin] queue_depth_top` deepest queues among at most [`MAX_TRACKED`]
//! recently used ones (sampled every `[admin] queue_depth_interval` seconds).
//!
//! The admin listener of the server crate serves them (`GET /metrics`) and runs the depth
//! sampler that feeds the per-queue gauges through [`DepthSample`].

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Most queues whose depth is sampled: the most recently used ones.
pub const MAX_TRACKED: usize = 1000;
/// A tracked queue found empty and unused for this long stops being tracked.
pub const FORGET_AFTER: Duration = Duration::from_secs(600);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WsLabels {
    action: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    project: String,
    queue: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProjectLabels {
    project: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    /// Exposition names of every registered metric (counters with their `_total` suffix).
    names: Vec<String>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily,
    http_in_flight: Gauge,
    ws_connections: Gauge,
    ws_requests: Family<WsLabels, Counter>,
    messages_posted: Counter,
    messages_claimed: Counter,
    messages_deleted: Counter,
    messages_expired: Counter,
    messages_dead_lettered: Counter,
    claims_created: Counter,
    backend_errors: Family<OperationLabels, Counter>,
    notifications_delivered: Family<KindLabels, Counter>,
    notifications_failed: Family<KindLabels, Counter>,
    longpoll_queues: Gauge,
    backend_up: Gauge,
    queue_messages: Family<QueueLabels, Gauge>,
    project_messages: Family<ProjectLabels, Gauge>,
    tracked_queues: Gauge,
    tracked_messages: Gauge,
    depth_sample_duration: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Recently used queues: project → queue → last use.
    active: Mutex<HashMap<String, HashMap<String, Instant>>>,
    /// Held while the depth gauges are replaced, and while they are encoded, so that a scrape
    /// never sees a half-written set.
    depth_lock: Mutex<()>,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The metrics of this process.
pub fn get() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::default(),
            names: Vec::new(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            http_in_flight: Gauge::default(),
            ws_connections: Gauge::default(),
            ws_requests: Family::default(),
            messages_posted: Counter::default(),
            messages_claimed: Counter::default(),
            messages_deleted: Counter::default(),
            messages_expired: Counter::default(),
            messages_dead_lettered: Counter::default(),
            claims_created: Counter::default(),
            backend_errors: Family::default(),
            notifications_delivered: Family::default(),
            notifications_failed: Family::default(),
            longpoll_queues: Gauge::default(),
            backend_up: Gauge::default(),
            queue_messages: Family::default(),
            project_messages: Family::default(),
            tracked_queues: Gauge::default(),
            tracked_messages: Gauge::default(),
            depth_sample_duration: Gauge::default(),
            active: Mutex::new(HashMap::new()),
            depth_lock: Mutex::new(()),
        };
        let (registry, names) = m.register();
        Metrics {
            registry,
            names,
            ..m
        }
    }

    /// Registers every metric with its name and help text, in exposition order, and returns
    /// the registry with the exposition names.
    fn register(&self) -> (Registry, Vec<String>) {
        let mut r = Registry::default();
        let mut names = Vec::new();
        // One row per metric: the registry takes each metric by its own type, so the table is
        // a macro invocation rather than an array of one element type.
        macro_rules! table {
            ($($name:literal, $help:literal => $metric:expr;)*) => {
                $(reg(&mut r, &mut names, $name, $help, $metric);)*
            };
        }
        table! {
            "zaqar_build_info", "Version of this server (value 1)" => build_info();
            "zaqar_start_time_seconds", "Start time of the process, seconds since the Unix epoch"
                => start_time();
            "zaqar_http_requests", "HTTP requests answered, by method, route template and status"
                => self.http_requests.clone();
            "zaqar_http_request_duration_seconds",
                "Time to answer HTTP requests (long-poll waits included), by method and route template"
                => self.http_duration.clone();
            "zaqar_http_requests_in_flight", "HTTP requests being processed"
                => self.http_in_flight.clone();
            "zaqar_websocket_connections", "Open WebSocket connections"
                => self.ws_connections.clone();
            "zaqar_websocket_requests", "WebSocket requests answered, by action and status"
                => self.ws_requests.clone();
            "zaqar_messages_posted", "Messages stored by successful posts"
                => self.messages_posted.clone();
            "zaqar_messages_claimed", "Messages handed out by successful claims"
                => self.messages_claimed.clone();
            "zaqar_claims_created", "Claims created (claim requests that got at least one message)"
                => self.claims_created.clone();
            "zaqar_messages_deleted",
                "Messages deleted by successful requests (single, bulk by id, pop)"
                => self.messages_deleted.clone();
            "zaqar_messages_expired",
                "Expired messages removed by the store's sweep (reported by drivers that count them)"
                => self.messages_expired.clone();
            "zaqar_messages_dead_lettered",
                "Messages moved to a dead-letter queue (reported by drivers that count them)"
                => self.messages_dead_lettered.clone();
            "zaqar_backend_errors",
                "Requests that failed with 503 (storage or a service it depends on unavailable), by operation"
                => self.backend_errors.clone();
            "zaqar_notifications_delivered",
                "Notifications delivered to subscribers, by subscriber kind"
                => self.notifications_delivered.clone();
            "zaqar_notifications_failed",
                "Notification deliveries that failed (after retries), by subscriber kind"
                => self.notifications_failed.clone();
            "zaqar_longpoll_waiting_queues",
                "Queues with at least one long-polling request waiting"
                => self.longpoll_queues.clone();
            "zaqar_backend_up", "Whether the store answered its last ping (1) or not (0)"
                => self.backend_up.clone();
            "zaqar_queue_messages",
                "Messages in the deepest recently used queues ([admin] queue_depth_top), by state \
                 (free, claimed, delayed)"
                => self.queue_messages.clone();
            "zaqar_project_messages",
                "Messages in the recently used queues of the projects with the most of them"
                => self.project_messages.clone();
            "zaqar_depth_tracked_queues", "Recently used queues whose depth is sampled"
                => self.tracked_queues.clone();
            "zaqar_depth_tracked_messages",
                "Messages in all the recently used queues whose depth is sampled"
                => self.tracked_messages.clone();
            "zaqar_depth_sample_duration_seconds", "Time the last depth sample took"
                => self.depth_sample_duration.clone();
        }
        (r, names)
    }

    /// The names of every metric as they appear in the exposition (counters end in `_total`),
    /// whether or not they have samples yet.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The metrics in the Prometheus text format (0.0.4).
    pub fn encode(&self) -> String {
        let _depth = lock(&self.depth_lock);
        let mut out = String::new();
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    fn touch(&self, project: &str, queue: &str) {
        let now = Instant::now();
        let mut active = lock(&self.active);
        if let Some(t) = active.get_mut(project).and_then(|qs| qs.get_mut(queue)) {
            *t = now;
            return;
        }
        active
            .entry(project.to_string())
            .or_default()
            .insert(queue.to_string(), now);
        let n: usize = active.values().map(HashMap::len).sum();
        if n > MAX_TRACKED {
            evict_oldest(&mut active, n - MAX_TRACKED * 9 / 10);
        }
    }
}

/// The `zaqar_build_info` gauge: this build's version as a label, value 1.
fn build_info() -> Family<BuildLabels, Gauge> {
    let build = Family::<BuildLabels, Gauge>::default();
    build
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
        })
        .set(1);
    build
}

/// The `zaqar_start_time_seconds` gauge, set to now.
fn start_time() -> Gauge {
    let start: Gauge = Gauge::default();
    start.set(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    );
    start
}

/// Registers `metric` and records its exposition name.
fn reg<M: prometheus_client::registry::Metric>(
    r: &mut Registry,
    names: &mut Vec<String>,
    name: &str,
    help: &str,
    metric: M,
) {
    use prometheus_client::metrics::MetricType;
    names.push(match metric.metric_type() {
        MetricType::Counter => format!("{name}_total"),
        _ => name.to_string(),
    });
    r.register(name, help, metric);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Drops the `k` least recently used queues.
fn evict_oldest(active: &mut HashMap<String, HashMap<String, Instant>>, k: usize) {
    let mut all: Vec<(Instant, String, String)> = active
        .iter()
        .flat_map(|(p, qs)| qs.iter().map(|(q, t)| (*t, p.clone(), q.clone())))
        .collect();
    all.sort_unstable();
    for (_, p, q) in all.into_iter().take(k) {
        if let Some(qs) = active.get_mut(&p) {
            qs.remove(&q);
            if qs.is_empty() {
                active.remove(&p);
            }
        }
    }
}

// ----- recording (called by the transports, the service and the notifier) -----------------

/// One HTTP request answered (`route` is the route template, e.g. `/v2/queues/{queue}`).
pub fn http_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let m = get();
    m.http_requests
        .get_or_create(&HttpLabels {
            method: method.to_string(),
            route: route.to_string(),
            status,
        })
        .inc();
    m.http_duration
        .get_or_create(&RouteLabels {
            method: method.to_string(),
            route: route.to_string(),
        })
        .observe(elapsed.as_secs_f64());
}

/// Counts an HTTP request in flight until the guard is dropped.
pub fn http_in_flight() -> GaugeGuard {
    GaugeGuard::new(&get().http_in_flight)
}

/// Counts an open WebSocket connection until the guard is dropped.
pub fn websocket_connection() -> GaugeGuard {
    GaugeGuard::new(&get().ws_connections)
}

/// One WebSocket request answered.
pub fn websocket_request(action: &str, status: u16) {
    get()
        .ws_requests
        .get_or_create(&WsLabels {
            action: action.to_string(),
            status,
        })
        .inc();
    if status == 503 {
        backend_error(action);
    }
}

/// A request that failed with 503 (`Error::Unavailable`), by operation (a policy action name
/// such as `messages:create`, or a WebSocket action).
pub fn backend_error(operation: &str) {
    get()
        .backend_errors
        .get_or_create(&OperationLabels {
            operation: operation.to_string(),
        })
        .inc();
}

/// `n` messages were stored in `queue` of `project`.
pub fn messages_posted(project: &str, queue: &str, n: usize) {
    let m = get();
    m.messages_posted.inc_by(n as u64);
    m.touch(project, queue);
}

/// A claim of `n` messages was created in `queue` of `project`.
pub fn messages_claimed(project: &str, queue: &str, n: usize) {
    let m = get();
    m.claims_created.inc();
    m.messages_claimed.inc_by(n as u64);
    m.touch(project, queue);
}

/// `n` messages were deleted (or popped).
pub fn messages_deleted(n: usize) {
    get().messages_deleted.inc_by(n as u64);
}

/// `n` expired messages were removed by a store's sweep.
pub fn messages_expired(n: u64) {
    get().messages_expired.inc_by(n);
}

/// `n` messages were moved to a dead-letter queue.
pub fn messages_dead_lettered(n: u64) {
    get().messages_dead_lettered.inc_by(n);
}

/// A notification was delivered to a subscriber of `kind` (`http`, `https`, `mailto`, ...).
pub fn notification_delivered(kind: &str) {
    get()
        .notifications_delivered
        .get_or_create(&KindLabels {
            kind: kind.to_string(),
        })
        .inc();
}

/// A notification could not be delivered to a subscriber of `kind` (retries exhausted).
pub fn notification_failed(kind: &str) {
    get()
        .notifications_failed
        .get_or_create(&KindLabels {
            kind: kind.to_string(),
        })
        .inc();
}

/// Increments a gauge now and decrements it when dropped.
pub struct GaugeGuard(Gauge);

impl GaugeGuard {
    fn new(g: &Gauge) -> GaugeGuard {
        g.inc();
        GaugeGuard(g.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

// ----- queue depth gauges (fed by the server's sampler) ------------------------------------

/// Depth of one queue, as sampled.
#[derive(Debug, Clone)]
pub struct Depth {
    pub project: String,
    pub queue: String,
    pub total: u64,
    pub claimed: u64,
    pub delayed: u64,
}

/// A recently used queue, with when it was last used.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub project: String,
    pub queue: String,
    pub last_used: Instant,
}

/// Whether the store answered its last ping.
pub fn set_backend_up(up: bool) {
    get().backend_up.set(i64::from(up));
}

/// Queues with at least one long-polling request waiting.
pub fn set_longpoll_queues(n: usize) {
    get().longpoll_queues.set(n as i64);
}

/// The recently used queues whose depth is sampled.
pub fn tracked_queues() -> Vec<Tracked> {
    lock(&get().active)
        .iter()
        .flat_map(|(p, qs)| {
            qs.iter().map(|(q, t)| Tracked {
                project: p.clone(),
                queue: q.clone(),
                last_used: *t,
            })
        })
        .collect()
}

/// Stops tracking queues found empty and unused, unless they were used again since `last_used`.
pub fn forget_queues(queues: Vec<Tracked>) {
    let mut active = lock(&get().active);
    for t in queues {
        if let Some(qs) = active.get_mut(&t.project) {
            if qs.get(&t.queue) == Some(&t.last_used) {
                qs.remove(&t.queue);
            }
            if qs.is_empty() {
                active.remove(&t.project);
            }
        }
    }
}

/// Publishes a depth sample: keeps the `top` deepest queues as gauges (and the `top` projects
/// with the most messages), and how long the sample took.
pub fn publish_depths(mut depths: Vec<Depth>, top: usize, took: Duration) {
    let m = get();
    let mut projects: HashMap<&str, u64> = HashMap::new();
    for d in &depths {
        *projects.entry(d.project.as_str()).or_default() += d.total;
    }
    let mut projects: Vec<(String, u64)> = projects
        .into_iter()
        .map(|(p, n)| (p.to_string(), n))
        .collect();
    projects.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    projects.truncate(top);
    let all: u64 = depths.iter().map(|d| d.total).sum();
    let tracked = depths.len();
    depths.sort_unstable_by(|a, b| {
        b.total
            .cmp(&a.total)
            .then_with(|| (&a.project, &a.queue).cmp(&(&b.project, &b.queue)))
    });
    depths.truncate(top);
    let _guard = lock(&m.depth_lock);
    m.tracked_queues.set(tracked as i64);
    m.tracked_messages.set(all as i64);
    m.queue_messages.clear();
    for d in depths.into_iter().filter(|d| d.total > 0) {
        let free = d.total.saturating_sub(d.claimed + d.delayed);
        for (state, n) in [
            ("free", free),
            ("claimed", d.claimed),
            ("delayed", d.delayed),
        ] {
            m.queue_messages
                .get_or_create(&QueueLabels {
                    project: d.project.clone(),
                    queue: d.queue.clone(),
                    state,
                })
                .set(n as i64);
        }
    }
    m.project_messages.clear();
    for (project, n) in projects.into_iter().filter(|(_, n)| *n > 0) {
        m.project_messages
            .get_or_create(&ProjectLabels { project })
            .set(n as i64);
    }
    m.depth_sample_duration.set(took.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_is_bounded_and_keeps_the_recent_queues() {
        let m = get();
        for i in 0..(MAX_TRACKED + 50) {
            m.touch("metrics-unit", &format!("q{i}"));
        }
        let active = lock(&m.active);
        let n: usize = active.values().map(HashMap::len).sum();
        assert!(n <= MAX_TRACKED, "{n}");
        let qs = &active["metrics-unit"];
        assert!(qs.contains_key(&format!("q{}", MAX_TRACKED + 49)));
        assert!(!qs.contains_key("q0"));
    }

    #[test]
    fn depth_gauges_keep_only_the_top_queues() {
        let d = |p: &str, q: &str, total| Depth {
            project: p.into(),
            queue: q.into(),
            total,
            claimed: 1,
            delayed: 0,
        };
        publish_depths(
            vec![
                d("pa", "a", 5),
                d("pa", "b", 50),
                d("pb", "c", 7),
                d("pb", "d", 0),
            ],
            2,
            Duration::ZERO,
        );
        let text = get().encode();
        assert!(
            text.contains(r#"zaqar_queue_messages{project="pa",queue="b",state="free"} 49"#),
            "{text}"
        );
        assert!(text.contains(r#"zaqar_queue_messages{project="pb",queue="c",state="claimed"} 1"#));
        assert!(!text.contains(r#"queue="a""#));
        assert!(text.contains(r#"zaqar_project_messages{project="pa"} 55"#));
    }
}
