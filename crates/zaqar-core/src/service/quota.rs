//! Per-project limits: the number of queues, the messages a queue may hold and the bytes of
//! messages a project stores (403 when exceeded), and a request rate (a token bucket; 429 with
//! `Retry-After` when exceeded); 0 means unlimited.
//!
//! Where a project's limits come from, first match per field:
//! 1. its entry in the management store (`/v2/quotas/{project}`, when pooling gives the server
//!    one), read through a per-node cache of `[quotas] limits_cache_seconds`, so a change made
//!    through another node applies here within that time (at once on the node that made it);
//! 2. its entry in `[quotas] overrides_file` (a JSON object `{"<project>": {"max_queues": N,
//!    "max_messages_per_queue": M, "max_bytes": B, "requests_per_second": R, "burst": X}}`,
//!    where a missing key is 0, unlimited, as the file has always read);
//! 3. the global `[quotas]` values.
//!
//! A project's topics (the internal project `<project>\u{1}topics`) share its limits.
//!
//! Checks and how far concurrent requests may overshoot:
//! - depth: the queue's count is read before the post, so concurrent posts may overshoot by at
//!   most one batch each;
//! - bytes: the project's stored bytes (`QueueStore::project_bytes`, queues and topics) are
//!   read when this node has no figure younger than `[quotas] bytes_cache_seconds`, or when the
//!   figure it has would refuse the post (a refusal is always decided on a fresh read). Posts
//!   accepted here are added to the figure before they are stored, so posts through one node do
//!   not overshoot it; posts through other nodes within the cache time, and posts in flight
//!   while the figure is read, may (by at most what they carry).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::validate::{limit, parse_object};
use super::Service;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::management::{ManagementStore, ProjectQuota};

/// A project's limits (0 = unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default)]
    pub max_queues: u64,
    #[serde(default)]
    pub max_messages_per_queue: u64,
    #[serde(default)]
    pub max_bytes: u64,
    #[serde(default)]
    pub requests_per_second: f64,
    #[serde(default)]
    pub burst: f64,
}

impl Limits {
    /// These limits with the fields `entry` sets replaced.
    fn with(mut self, entry: &ProjectQuota) -> Limits {
        if let Some(v) = entry.max_queues {
            self.max_queues = v;
        }
        if let Some(v) = entry.max_messages_per_queue {
            self.max_messages_per_queue = v;
        }
        if let Some(v) = entry.max_bytes {
            self.max_bytes = v;
        }
        if let Some(v) = entry.requests_per_second {
            self.requests_per_second = v;
        }
        if let Some(v) = entry.burst {
            self.burst = v;
        }
        self
    }

    /// Whether the project may hold one more queue, given how many it has.
    pub fn check_new_queue(&self, project: &str, existing: u64) -> Result<()> {
        let max = self.max_queues;
        if max > 0 && existing >= max {
            return Err(Error::Forbidden(format!(
                "Quota exceeded: project {project} may have at most {max} queues."
            )));
        }
        Ok(())
    }

    /// Whether a queue holding `held` messages may take `adding` more.
    pub fn check_queue_depth(&self, queue: &str, held: u64, adding: u64) -> Result<()> {
        let max = self.max_messages_per_queue;
        if max > 0 && held.saturating_add(adding) > max {
            return Err(Error::Forbidden(format!(
                "Quota exceeded: queue {queue} holds {held} messages and may hold at most {max}; \
                 consume or delete messages before posting more."
            )));
        }
        Ok(())
    }

    pub fn limits_depth(&self) -> bool {
        self.max_messages_per_queue > 0
    }

    pub fn limits_queues(&self) -> bool {
        self.max_queues > 0
    }

    pub fn limits_bytes(&self) -> bool {
        self.max_bytes > 0
    }
}

fn bytes_refused(project: &str, stored: u64, max: u64, adding: u64) -> Error {
    Error::Forbidden(format!(
        "Quota exceeded: project {project} stores {stored} bytes of messages and may store at \
         most {max}; these messages would add {adding} bytes. Delete or consume messages (or \
         let them expire) before posting more, or ask an operator to raise the project's \
         max_bytes."
    ))
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Millis,
}

/// A project's stored bytes as last read, plus what this node accepted since.
#[derive(Debug)]
struct Usage {
    bytes: u64,
    read_at: Millis,
}

/// Per-node caches stay below this many projects (stale entries are dropped first).
const CACHE_MAX: usize = 100_000;

/// The management store's entries, read through a per-project cache.
struct Managed {
    store: Arc<dyn ManagementStore>,
    ttl: Millis,
    /// project → (its entry, or none; when it was read).
    cache: Mutex<HashMap<String, (Option<ProjectQuota>, Millis)>>,
}

#[derive(Default)]
pub struct Quotas {
    global: Limits,
    overrides: HashMap<String, Limits>,
    buckets: Mutex<HashMap<String, Bucket>>,
    managed: Option<Managed>,
    usage: Mutex<HashMap<String, Usage>>,
    usage_ttl: Millis,
}

impl std::fmt::Debug for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotas")
            .field("global", &self.global)
            .field("overrides", &self.overrides.len())
            .field("managed", &self.managed.is_some())
            .finish()
    }
}

/// The project whose limits apply to a stored project (topics share their project's).
pub fn owner(stored: &str) -> &str {
    super::subscriptions::split_project(stored).0
}

impl Quotas {
    pub fn new(
        global: Limits,
        overrides_file: Option<&Path>,
    ) -> std::result::Result<Quotas, String> {
        let overrides = match overrides_file {
            None => HashMap::new(),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read quota overrides {}: {e}", p.display()))?;
                serde_json::from_str(&text)
                    .map_err(|e| format!("quota overrides {}: {e}", p.display()))?
            }
        };
        Ok(Quotas {
            global,
            overrides,
            ..Default::default()
        })
    }

    /// Reads per-project entries from `store` (cached for `ttl_ms` per project).
    pub fn with_management(mut self, store: Arc<dyn ManagementStore>, ttl_ms: Millis) -> Quotas {
        self.managed = Some(Managed {
            store,
            ttl: ttl_ms,
            cache: Mutex::new(HashMap::new()),
        });
        self
    }

    /// Keeps a project's stored-bytes figure for `ttl_ms` (0: read it for every post).
    pub fn with_bytes_cache(mut self, ttl_ms: Millis) -> Quotas {
        self.usage_ttl = ttl_ms;
        self
    }

    /// The management store holding per-project entries, if the server has one.
    pub fn management(&self) -> Option<&Arc<dyn ManagementStore>> {
        self.managed.as_ref().map(|m| &m.store)
    }

    /// The limits from the overrides file, else the global ones.
    pub fn base_limits(&self, project: &str) -> Limits {
        self.overrides.get(project).copied().unwrap_or(self.global)
    }

    /// The limits of `project` (a stored project id: topics resolve to their project).
    pub async fn limits(&self, project: &str, now: Millis) -> Limits {
        let project = owner(project);
        let base = self.base_limits(project);
        match self.managed_entry(project, now).await {
            Some(entry) => base.with(&entry),
            None => base,
        }
    }

    /// The project's management-store entry, through the cache. When the store fails, the last
    /// entry read is used (or none) for another cache time: limits never make requests fail.
    async fn managed_entry(&self, project: &str, now: Millis) -> Option<ProjectQuota> {
        let m = self.managed.as_ref()?;
        let cached = m.cache.lock().unwrap().get(project).copied();
        if let Some((entry, at)) = cached {
            if now - at < m.ttl && now >= at {
                return entry;
            }
        }
        match m.store.get_quota(project).await {
            Ok(entry) => {
                self.remember(project, entry, now);
                entry
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read per-project limits; using the last known");
                // Kept for another cache time: an unreachable store costs one slow read per
                // project and period, not one per request.
                let entry = cached.and_then(|(entry, _)| entry);
                self.remember(project, entry, now);
                entry
            }
        }
    }

    /// Caches a project's management-store entry as read (or just written) at `now`.
    pub fn remember(&self, project: &str, entry: Option<ProjectQuota>, now: Millis) {
        let Some(m) = &self.managed else { return };
        let mut cache = m.cache.lock().unwrap();
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (_, at)| now - *at < m.ttl);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(project.to_string(), (entry, now));
    }

    /// Takes `adding` bytes from the project's allowance on this node's figure, if the figure
    /// is fresh and has room. `false`: read the stored bytes and call [`Self::reserve_bytes`].
    pub fn try_reserve_bytes(&self, project: &str, max: u64, adding: u64, now: Millis) -> bool {
        let mut usage = self.usage.lock().unwrap();
        match usage.get_mut(project) {
            Some(u)
                if now - u.read_at < self.usage_ttl
                    && now >= u.read_at
                    && u.bytes.saturating_add(adding) <= max =>
            {
                u.bytes += adding;
                true
            }
            _ => false,
        }
    }

    /// Records `stored` (just read) as the project's figure and takes `adding` bytes from it,
    /// or refuses with 403 when they do not fit.
    pub fn reserve_bytes(
        &self,
        project: &str,
        stored: u64,
        max: u64,
        adding: u64,
        now: Millis,
    ) -> Result<()> {
        let fits = stored.saturating_add(adding) <= max;
        let mut usage = self.usage.lock().unwrap();
        if usage.len() >= CACHE_MAX {
            let ttl = self.usage_ttl;
            usage.retain(|_, u| now - u.read_at < ttl);
            if usage.len() >= CACHE_MAX {
                usage.clear();
            }
        }
        usage.insert(
            project.to_string(),
            Usage {
                bytes: if fits { stored + adding } else { stored },
                read_at: now,
            },
        );
        if fits {
            Ok(())
        } else {
            Err(bytes_refused(project, stored, max, adding))
        }
    }

    /// Gives back bytes reserved for a post that failed.
    pub fn release_bytes(&self, project: &str, bytes: u64) {
        if let Some(u) = self.usage.lock().unwrap().get_mut(project) {
            u.bytes = u.bytes.saturating_sub(bytes);
        }
    }

    /// Takes one request token from the project's bucket.
    pub fn admit(&self, project: &str, l: &Limits, now: Millis) -> Result<()> {
        if l.requests_per_second <= 0.0 {
            return Ok(());
        }
        let capacity = if l.burst > 0.0 {
            l.burst
        } else {
            (l.requests_per_second * 2.0).max(1.0)
        };
        let mut buckets = self.buckets.lock().unwrap();
        if buckets.len() > CACHE_MAX {
            // Buckets that have refilled carry no state worth keeping.
            buckets.retain(|_, b| {
                b.tokens + (now - b.at) as f64 / 1000.0 * l.requests_per_second < capacity
            });
        }
        let b = buckets.entry(project.to_string()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let elapsed = (now - b.at).max(0) as f64 / 1000.0;
        b.tokens = (b.tokens + elapsed * l.requests_per_second).min(capacity);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - b.tokens) / l.requests_per_second).ceil().max(1.0) as u64;
            Err(Error::TooManyRequests {
                description: format!(
                    "Rate limit exceeded: project {project} may make {} requests per second.",
                    l.requests_per_second
                ),
                retry_after_secs: wait,
            })
        }
    }
}

// ----- the /v2/quotas administration --------------------------------------------------------

/// A project's limits as `/v2/quotas` shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaView {
    pub project: String,
    /// The management-store entry (no field set when there is none).
    pub entry: ProjectQuota,
    /// The limits in force: the entry over the overrides file or the global values.
    pub effective: Limits,
    /// What the project uses now (shown for one project, not in listings).
    pub usage: Option<ProjectUsage>,
}

/// A project's use of what its limits cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectUsage {
    pub queues: u64,
    pub topics: u64,
    /// Stored message bytes of its queues and topics (as the byte quota counts them).
    pub bytes: u64,
}

const QUOTA_KEYS: [&str; 5] = [
    "max_queues",
    "max_messages_per_queue",
    "max_bytes",
    "requests_per_second",
    "burst",
];
const MAX_RATE: f64 = 10_000_000.0;
const MAX_BURST: f64 = 100_000_000.0;
const MAX_QUOTAS_PER_PAGE: i64 = 100;

fn count_field(body: &Map<String, Value>, key: &str) -> Result<Option<u64>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n <= i64::MAX as u64 => Ok(Some(n)),
            _ => Err(Error::invalid(format!(
                "The value of \"{key}\" must be an integer from 0 to {} (0: unlimited), or null \
                 to leave it to the overrides file or [quotas].",
                i64::MAX
            ))),
        },
    }
}

fn rate_field(body: &Map<String, Value>, key: &str, max: f64) -> Result<Option<f64>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() && (0.0..=max).contains(&x) && !v.is_boolean() => Ok(Some(x)),
            _ => Err(Error::invalid(format!(
                "The value of \"{key}\" must be a number from 0 to {max} (0: unlimited), or null \
                 to leave it to the overrides file or [quotas]."
            ))),
        },
    }
}

/// Parses a `PUT /v2/quotas/{project}` body.
pub fn parse_quota(body: &[u8]) -> Result<ProjectQuota> {
    let body = parse_object(body)?;
    if let Some(k) = body.keys().find(|k| !QUOTA_KEYS.contains(&k.as_str())) {
        return Err(Error::invalid(format!(
            "Additional properties are not allowed ('{k}' was unexpected); the limits are {}.",
            QUOTA_KEYS.join(", ")
        )));
    }
    Ok(ProjectQuota {
        max_queues: count_field(&body, "max_queues")?,
        max_messages_per_queue: count_field(&body, "max_messages_per_queue")?,
        max_bytes: count_field(&body, "max_bytes")?,
        requests_per_second: rate_field(&body, "requests_per_second", MAX_RATE)?,
        burst: rate_field(&body, "burst", MAX_BURST)?,
    })
}

/// A project id named in a path: the rules of `X-Project-ID`, and no control characters (the
/// internal projects of topics cannot be named).
fn check_project(project: &str) -> Result<()> {
    super::validate::project_id(Some(project))?;
    if project.chars().any(char::is_control) {
        return Err(Error::bad_request(
            "Invalid project identification",
            "A project id may not contain control characters.",
        ));
    }
    Ok(())
}

impl Service {
    /// The limits of a stored project (topics resolve to their project).
    pub(crate) async fn project_limits(&self, project: &str) -> Limits {
        self.options.quotas.limits(project, self.clock.now()).await
    }

    /// Reserves `adding` bytes of the project's byte quota for a post (403 when they do not
    /// fit); give them back with `release_bytes` if the post fails.
    pub(crate) async fn reserve_bytes(&self, project: &str, max: u64, adding: u64) -> Result<()> {
        let owner = owner(project);
        let quotas = &self.options.quotas;
        if quotas.try_reserve_bytes(owner, max, adding, self.clock.now()) {
            return Ok(());
        }
        let topics = super::subscriptions::topic_project(owner);
        let (queues, topics) = tokio::try_join!(
            self.store.project_bytes(owner),
            self.store.project_bytes(&topics)
        )?;
        quotas.reserve_bytes(
            owner,
            queues.saturating_add(topics),
            max,
            adding,
            self.clock.now(),
        )
    }

    fn quota_store(&self) -> Result<&Arc<dyn ManagementStore>> {
        self.options.quotas.management().ok_or_else(|| {
            Error::not_found(
                "Per-project limits are kept in the management store, which this server does \
                 not have (it needs [DEFAULT] pooling = true). Set them in [quotas] \
                 overrides_file instead.",
            )
        })
    }

    fn quota_view(&self, project: &str, entry: Option<ProjectQuota>) -> QuotaView {
        let entry = entry.unwrap_or_default();
        QuotaView {
            project: project.to_string(),
            effective: self.options.quotas.base_limits(project).with(&entry),
            entry,
            usage: None,
        }
    }

    async fn project_usage(&self, project: &str) -> Result<ProjectUsage> {
        let topics = super::subscriptions::topic_project(project);
        let (queues, topic_count, queue_bytes, topic_bytes) = tokio::try_join!(
            self.store.count_queues(project),
            self.store.count_queues(&topics),
            self.store.project_bytes(project),
            self.store.project_bytes(&topics)
        )?;
        Ok(ProjectUsage {
            queues,
            topics: topic_count,
            bytes: queue_bytes.saturating_add(topic_bytes),
        })
    }

    /// `GET /v2/quotas`: projects with an entry in the management store, in byte order.
    pub async fn list_quotas(
        &self,
        marker: Option<&str>,
        lim: Option<i64>,
    ) -> Result<Vec<QuotaView>> {
        let store = self.quota_store()?;
        let lim = limit(lim, 10, MAX_QUOTAS_PER_PAGE)?;
        Ok(store
            .list_quotas(marker, lim)
            .await?
            .into_iter()
            .map(|(p, q)| self.quota_view(&p, Some(q)))
            .collect())
    }

    /// `GET /v2/quotas/{project}`: the entry (if any), the limits in force and the usage.
    pub async fn get_quota(&self, project: &str) -> Result<QuotaView> {
        let store = self.quota_store()?;
        check_project(project)?;
        let entry = store.get_quota(project).await?;
        self.options
            .quotas
            .remember(project, entry, self.clock.now());
        let mut view = self.quota_view(project, entry);
        view.usage = Some(self.project_usage(project).await?);
        Ok(view)
    }

    /// `PUT /v2/quotas/{project}`: replaces the project's entry; fields left out (or null) are
    /// not set by it. In force at once on this node, within the cache time on the others.
    pub async fn put_quota(&self, project: &str, body: &[u8]) -> Result<QuotaView> {
        let store = self.quota_store()?;
        check_project(project)?;
        let entry = parse_quota(body)?;
        store.put_quota(project, &entry).await?;
        self.options
            .quotas
            .remember(project, Some(entry), self.clock.now());
        Ok(self.quota_view(project, Some(entry)))
    }

    /// `DELETE /v2/quotas/{project}`: the project falls back to the overrides file or
    /// `[quotas]`.
    pub async fn delete_quota(&self, project: &str) -> Result<()> {
        let store = self.quota_store()?;
        check_project(project)?;
        store.delete_quota(project).await?;
        self.options
            .quotas
            .remember(project, None, self.clock.now());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket() {
        let l = Limits {
            requests_per_second: 2.0,
            burst: 3.0,
            ..Default::default()
        };
        let q = Quotas::new(l, None).unwrap();
        for _ in 0..3 {
            q.admit("p", &l, 0).unwrap();
        }
        let e = q.admit("p", &l, 0).unwrap_err();
        assert_eq!(e.status(), 429);
        assert!(q.admit("other", &l, 0).is_ok(), "buckets are per project");
        q.admit("p", &l, 500).unwrap(); // half a second refills one token
        assert!(q.admit("p", &l, 500).is_err());
        q.admit("p", &l, 10_000).unwrap();
    }

    #[tokio::test]
    async fn queue_quota_and_overrides() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(
            &mut f,
            br#"{"big": {"max_queues": 100, "max_bytes": 7}, "free": {}}"#,
        )
        .unwrap();
        let q = Quotas::new(
            Limits {
                max_queues: 2,
                max_bytes: 1000,
                ..Default::default()
            },
            Some(f.path()),
        )
        .unwrap();
        let p = q.limits("p", 0).await;
        assert!(p.check_new_queue("p", 1).is_ok());
        assert_eq!(p.check_new_queue("p", 2).unwrap_err().status(), 403);
        assert_eq!(p.max_bytes, 1000);
        let big = q.limits("big", 0).await;
        assert!(big.check_new_queue("big", 50).is_ok());
        assert_eq!(big.max_bytes, 7);
        let free = q.limits("free", 0).await;
        assert!(free.check_new_queue("free", 5000).is_ok(), "0 = unlimited");
        assert!(!free.limits_bytes());
        assert_eq!(
            q.limits("big\u{1}topics", 0).await,
            big,
            "topics share their project's limits"
        );
        std::io::Write::write_all(&mut f, b"garbage").unwrap();
        assert!(Quotas::new(Limits::default(), Some(f.path())).is_err());
        let mut unknown = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut unknown, br#"{"p": {"max_byte": 1}}"#).unwrap();
        assert!(Quotas::new(Limits::default(), Some(unknown.path())).is_err());
    }

    #[test]
    fn byte_reservations() {
        let q = Quotas::new(Limits::default(), None)
            .unwrap()
            .with_bytes_cache(1000);
        assert!(!q.try_reserve_bytes("p", 100, 10, 0), "nothing read yet");
        q.reserve_bytes("p", 50, 100, 10, 0).unwrap();
        assert!(q.try_reserve_bytes("p", 100, 40, 10), "60 + 40 fits");
        assert!(!q.try_reserve_bytes("p", 100, 1, 10), "full: read again");
        let e = q.reserve_bytes("p", 100, 100, 1, 10).unwrap_err();
        assert_eq!(e.status(), 403);
        assert!(e.description().contains("stores 100 bytes"), "{e}");
        q.release_bytes("p", 30);
        assert!(q.try_reserve_bytes("p", 100, 30, 20));
        assert!(
            !q.try_reserve_bytes("p", 100, 0, 1010),
            "stale after the cache time"
        );
        let uncached = Quotas::new(Limits::default(), None).unwrap();
        uncached.reserve_bytes("p", 0, 100, 1, 0).unwrap();
        assert!(
            !uncached.try_reserve_bytes("p", 100, 1, 0),
            "0: read every time"
        );
    }

    #[test]
    fn quota_bodies() {
        let q = parse_quota(br#"{"max_bytes": 10, "burst": 2.5, "max_queues": null}"#).unwrap();
        assert_eq!(q.max_bytes, Some(10));
        assert_eq!(q.burst, Some(2.5));
        assert_eq!(q.max_queues, None);
        for bad in [
            &br#"{"max_bytes": -1}"#[..],
            br#"{"max_bytes": 1.5}"#,
            br#"{"max_bytes": "10"}"#,
            br#"{"requests_per_second": -0.5}"#,
            br#"{"burst": true}"#,
            br#"{"max_byte": 1}"#,
            br#"{"max_queues": 9223372036854775808}"#,
        ] {
            let e = parse_quota(bad).unwrap_err();
            assert_eq!(e.status(), 400, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_quota(b"[1]").unwrap_err().status(), 400);
        assert_eq!(parse_quota(b"{").unwrap_err().status(), 400);
        assert!(check_project("a\u{1}topics").is_err());
        assert!(check_project("").is_err());
        assert!(check_project("p-1").is_ok());
    }
}
