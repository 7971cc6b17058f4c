//! WebSocket body shapes (spec §4.4), built from domain types. They differ from the HTTP ones:
//! no hrefs or links, `claim_id` fields, `id` instead of `href` in stats.

use serde_json::{json, Value};

use zaqar_core::clock::{age_secs, format_iso_z, Millis};
use zaqar_core::model::{Claim, Message, MessageStamp, QueueStats};
use zaqar_core::service::QueueListing;

fn body_of(m: &Message) -> Value {
    // Stored bodies are JSON documents; a corrupt one shows as null rather than failing.
    serde_json::from_str(m.body.get()).unwrap_or(Value::Null)
}

/// `{"id", "claim_id", "ttl", "age", "body"}` (+ `checksum` when the server computes them).
/// `claim_id` is the live claim holding the message, if any.
pub fn message(m: &Message, now: Millis) -> Value {
    let mut v = json!({
        "id": m.id,
        "claim_id": m.active_claim(now),
        "ttl": m.ttl,
        "age": age_secs(m.created, now),
        "body": body_of(m),
    });
    if let Some(c) = &m.checksum {
        v["checksum"] = json!(c);
    }
    v
}

pub fn messages(ms: &[Message], now: Millis) -> Value {
    Value::Array(ms.iter().map(|m| message(m, now)).collect())
}

/// A popped message, as HTTP shows it: the raw view with `claim_count`.
pub fn popped(m: &Message, now: Millis) -> Value {
    let mut v = json!({
        "id": m.id,
        "age": age_secs(m.created, now),
        "ttl": m.ttl,
        "claim_count": m.claim_count,
        "claim_id": m.claim.as_ref().map(|c| c.id.as_str()),
        "body": body_of(m),
    });
    if let Some(c) = &m.checksum {
        v["checksum"] = json!(c);
    }
    v
}

/// `claim_get`: `{"age", "ttl", "messages"}`.
pub fn claim(c: &Claim, now: Millis) -> Value {
    json!({
        "age": age_secs(c.updated, now),
        "ttl": c.ttl,
        "messages": messages(&c.messages, now),
    })
}

/// `queue_list`: `{"queues": [{"name", ["metadata"]}]}`.
pub fn queues(listing: &QueueListing) -> Value {
    let queues = listing
        .queues
        .iter()
        .map(|(name, meta)| {
            let mut q = json!({ "name": name });
            if let Some(m) = meta {
                q["metadata"] = Value::Object(m.clone());
            }
            q
        })
        .collect();
    json!({ "queues": Value::Array(queues) })
}

/// Stats as over HTTP, with `id` instead of `href` in `oldest`/`newest`.
pub fn stats(s: &QueueStats, now: Millis) -> Value {
    let stamp = |st: &MessageStamp| json!({"id": st.id, "age": age_secs(st.created, now), "created": format_iso_z(st.created)});
    let mut counts = json!({
        "claimed": s.claimed,
        "free": s.total.saturating_sub(s.claimed),
        "total": s.total,
    });
    if let Some(o) = &s.oldest {
        counts["oldest"] = stamp(o);
    }
    if let Some(n) = &s.newest {
        counts["newest"] = stamp(n);
    }
    json!({ "messages": counts })
}

/// The body of `queue_get_stats` for a queue that does not exist (with status 404).
pub fn missing_queue_stats() -> Value {
    json!({"messages": {"claimed": 0, "free": 0, "total": 0}})
}
