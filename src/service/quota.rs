//! Per-project limits: the number of queues and the messages a queue may hold (403 when
//! exceeded), and a request rate (a token bucket; 429 with `Retry-After` when exceeded). Global
//! values come from `[quotas]`, per-project values from `[quotas] overrides_file` (a JSON object
//! `{"<project>": {"max_queues": N, "max_messages_per_queue": M, "requests_per_second": R,
//! "burst": B}}`); 0 means unlimited. The depth limit is checked against the queue's count
//! before the post, so concurrent posts may overshoot it by at most one batch each.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use serde::Deserialize;

use crate::clock::Millis;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default)]
    pub max_queues: u64,
    #[serde(default)]
    pub max_messages_per_queue: u64,
    #[serde(default)]
    pub requests_per_second: f64,
    #[serde(default)]
    pub burst: f64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Millis,
}

#[derive(Debug, Default)]
pub struct Quotas {
    global: Limits,
    overrides: HashMap<String, Limits>,
    buckets: Mutex<HashMap<String, Bucket>>,
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
            buckets: Mutex::new(HashMap::new()),
        })
    }

    pub fn limits(&self, project: &str) -> Limits {
        self.overrides.get(project).copied().unwrap_or(self.global)
    }

    /// Whether the project may hold one more queue, given how many it has.
    pub fn check_new_queue(&self, project: &str, existing: u64) -> Result<()> {
        let max = self.limits(project).max_queues;
        if max > 0 && existing >= max {
            return Err(Error::Forbidden(format!(
                "Quota exceeded: project {project} may have at most {max} queues."
            )));
        }
        Ok(())
    }

    /// Whether a queue holding `held` messages may take `adding` more.
    pub fn check_queue_depth(
        &self,
        project: &str,
        queue: &str,
        held: u64,
        adding: u64,
    ) -> Result<()> {
        let max = self.limits(project).max_messages_per_queue;
        if max > 0 && held.saturating_add(adding) > max {
            return Err(Error::Forbidden(format!(
                "Quota exceeded: queue {queue} holds {held} messages and may hold at most {max}; \
                 consume or delete messages before posting more."
            )));
        }
        Ok(())
    }

    pub fn limits_depth(&self, project: &str) -> bool {
        self.limits(project).max_messages_per_queue > 0
    }

    pub fn limits_queues(&self, project: &str) -> bool {
        self.limits(project).max_queues > 0
    }

    /// Takes one request token from the project's bucket.
    pub fn admit(&self, project: &str, now: Millis) -> Result<()> {
        let l = self.limits(project);
        if l.requests_per_second <= 0.0 {
            return Ok(());
        }
        let capacity = if l.burst > 0.0 {
            l.burst
        } else {
            (l.requests_per_second * 2.0).max(1.0)
        };
        let mut buckets = self.buckets.lock().unwrap();
        if buckets.len() > 100_000 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket() {
        let q = Quotas::new(
            Limits {
                requests_per_second: 2.0,
                burst: 3.0,
                ..Default::default()
            },
            None,
        )
        .unwrap();
        for _ in 0..3 {
            q.admit("p", 0).unwrap();
        }
        let e = q.admit("p", 0).unwrap_err();
        assert_eq!(e.status(), 429);
        assert!(q.admit("other", 0).is_ok(), "buckets are per project");
        q.admit("p", 500).unwrap(); // half a second refills one token
        assert!(q.admit("p", 500).is_err());
        q.admit("p", 10_000).unwrap();
    }

    #[test]
    fn queue_quota_and_overrides() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, br#"{"big": {"max_queues": 100}, "free": {}}"#).unwrap();
        let q = Quotas::new(
            Limits {
                max_queues: 2,
                ..Default::default()
            },
            Some(f.path()),
        )
        .unwrap();
        assert!(q.check_new_queue("p", 1).is_ok());
        assert_eq!(q.check_new_queue("p", 2).unwrap_err().status(), 403);
        assert!(q.check_new_queue("big", 50).is_ok());
        assert!(q.check_new_queue("free", 5000).is_ok(), "0 = unlimited");
        std::io::Write::write_all(&mut f, b"garbage").unwrap();
        assert!(Quotas::new(Limits::default(), Some(f.path())).is_err());
    }
}
