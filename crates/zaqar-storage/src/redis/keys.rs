//! Key layout of the Redis store (see `docs/redis.md`).
//!
//! Every key of one queue carries the same hash tag, `{<project>/<queue>}` with both parts
//! percent-encoded, so a queue lives in one hash slot: its Lua scripts run on one shard of a
//! Redis Cluster while different queues spread over the shards. Per-project index keys carry
//! their own tag (`{i:<project>}`), global keys the tag `{g}`.
//!
//! Encoding keeps bytes `A-Z a-z 0-9 . _ -` and writes every other byte as `%XX`, so the tag can
//! never contain `{`, `}` or `/` from user input (a project id may contain any character), and
//! `(project, queue)` pairs map to distinct tags.

use zaqar_core::model::QueueRef;

/// Percent-encodes everything but `A-Za-z0-9._-`.
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reverses [`enc`]; `None` for malformed input.
pub(crate) fn dec(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Key names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// `prefix` may be anything; braces and other special bytes are encoded (a `{` in the
    /// prefix would otherwise become the hash tag).
    pub(super) fn new(prefix: &str) -> Keys {
        let cleaned: String = prefix.split(':').map(enc).collect::<Vec<_>>().join(":");
        Keys { prefix: cleaned }
    }

    /// The queue record (hash); every per-queue script gets it as `KEYS[1]` and derives the
    /// queue's other keys by replacing the final `q`.
    pub(super) fn queue(&self, q: QueueRef<'_>) -> String {
        format!("{}:{{{}/{}}}:q", self.prefix, enc(q.project), enc(q.name))
    }

    /// The hash tag of a queue without its braces: `<project>/<queue>`, both encoded. Members
    /// of the global notification indexes.
    pub(super) fn tag(&self, q: QueueRef<'_>) -> String {
        format!("{}/{}", enc(q.project), enc(q.name))
    }

    /// The queue record key of a [`tag`](Self::tag).
    pub(super) fn queue_of_tag(&self, tag: &str) -> String {
        format!("{}:{{{tag}}}:q", self.prefix)
    }

    /// Sorted set of the tags of sources that have (or recently had) subscriptions, scored by
    /// the time a subscription was last created there (the sweep walks it; see `docs/redis.md`).
    pub(super) fn notify_sources(&self) -> String {
        format!("{}:{{g}}:nsrc", self.prefix)
    }

    /// Sorted set of the tags of sources with pending notification batches, scored by the time
    /// the source entered it (the delivery workers' lease scan walks it).
    pub(super) fn notify_pending(&self) -> String {
        format!("{}:{{g}}:npend", self.prefix)
    }

    /// Sorted set (all scores 0) of a project's queue names, in byte order.
    pub(super) fn project_index(&self, project: &str) -> String {
        format!("{}:{{i:{}}}:queues", self.prefix, enc(project))
    }

    /// Set of projects that have (or had) queues, for the background sweep.
    pub(super) fn projects(&self) -> String {
        format!("{}:{{g}}:projects", self.prefix)
    }

    /// Lock that lets one node at a time run the background sweep.
    pub(super) fn sweep_lock(&self) -> String {
        format!("{}:{{g}}:sweep", self.prefix)
    }

    /// Pub/sub channel of queue events (long-poll wake-ups between nodes).
    pub(super) fn channel(&self) -> String {
        format!("{}:events", self.prefix)
    }

    /// The event payload for a queue: `<node> <project>/<queue>` (both encoded).
    pub(super) fn event(&self, node: &str, q: QueueRef<'_>) -> String {
        format!("{node} {}/{}", enc(q.project), enc(q.name))
    }
}

/// Parses an event payload into (node, project, queue).
pub(crate) fn parse_event(payload: &str) -> Option<(&str, String, String)> {
    let (node, rest) = payload.split_once(' ')?;
    let (p, q) = rest.split_once('/')?;
    Some((node, dec(p)?, dec(q)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_stay_intact_for_any_project() {
        let k = Keys::new("zq");
        let key = k.queue(QueueRef::new("a{b}/c%d", "q-1"));
        assert_eq!(key, "zq:{a%7Bb%7D%2Fc%25d/q-1}:q");
        // The tag is the text between the first '{' and the next '}'.
        let open = key.find('{').unwrap();
        let close = key[open..].find('}').unwrap() + open;
        assert_eq!(&key[open + 1..close], "a%7Bb%7D%2Fc%25d/q-1");
        assert_eq!(dec("a%7Bb%7D%2Fc%25d").unwrap(), "a{b}/c%d");
        let weird = Keys::new("x{y}:z");
        assert!(weird
            .queue(QueueRef::new("p", "q"))
            .starts_with("x%7By%7D:z:{p/q}"));
    }

    #[test]
    fn events_round_trip() {
        let k = Keys::new("zq");
        let e = k.event("node1", QueueRef::new("p r/o j", "q"));
        assert_eq!(
            parse_event(&e),
            Some(("node1", "p r/o j".to_string(), "q".to_string()))
        );
        assert_eq!(parse_event("garbage"), None);
    }
}
