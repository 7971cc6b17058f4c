//! HTTP body shapes of v2 responses (messages, claims, stats, links), built from domain types.

use serde::Serialize;
use serde_json::value::RawValue;

use zaqar_core::clock::{age_secs, format_iso_z, Millis};
use zaqar_core::model::{Claim, Message, QueueStats};

/// A JSON response body with `Content-Type: application/json`.
pub fn json_body<T: Serialize>(v: &T) -> axum::Json<&T> {
    axum::Json(v)
}

#[derive(Serialize)]
pub struct Link {
    pub rel: &'static str,
    pub href: String,
}

pub fn next_links(href: Option<String>) -> Vec<Link> {
    href.map(|href| vec![Link { rel: "next", href }])
        .unwrap_or_default()
}

/// `base` is the collection item path (`/v2/queues/q` or `/v2/topics/t`).
pub fn message_href(base: &str, id: &str, claim: Option<&str>) -> String {
    match claim {
        Some(c) => format!("{base}/messages/{id}?claim_id={c}"),
        None => format!("{base}/messages/{id}"),
    }
}

/// A message as listed, fetched or claimed.
#[derive(Serialize)]
pub struct MessageView<'a> {
    pub id: &'a str,
    pub href: String,
    pub ttl: i64,
    pub age: i64,
    pub body: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<&'a str>,
}

impl<'a> MessageView<'a> {
    pub fn new(queue: &str, m: &'a Message, now: Millis) -> Self {
        Self::under(&format!("/v2/queues/{queue}"), m, now)
    }

    /// A message of the queue or topic at `base`.
    pub fn under(base: &str, m: &'a Message, now: Millis) -> Self {
        MessageView {
            id: &m.id,
            href: message_href(base, &m.id, m.active_claim(now)),
            ttl: m.ttl,
            age: age_secs(m.created, now),
            body: &m.body,
            checksum: m.checksum.as_deref(),
        }
    }
}

/// The raw storage view used by pop responses (no href).
#[derive(Serialize)]
pub struct PoppedView<'a> {
    pub id: &'a str,
    pub age: i64,
    pub ttl: i64,
    pub claim_count: u32,
    pub claim_id: Option<&'a str>,
    pub body: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<&'a str>,
}

impl<'a> PoppedView<'a> {
    pub fn new(m: &'a Message, now: Millis) -> Self {
        PoppedView {
            id: &m.id,
            age: age_secs(m.created, now),
            ttl: m.ttl,
            claim_count: m.claim_count,
            claim_id: m.claim.as_ref().map(|c| c.id.as_str()),
            body: &m.body,
            checksum: m.checksum.as_deref(),
        }
    }
}

#[derive(Serialize)]
pub struct ClaimView<'a> {
    pub age: i64,
    pub ttl: i64,
    pub href: String,
    pub messages: Vec<MessageView<'a>>,
}

impl<'a> ClaimView<'a> {
    pub fn new(queue: &str, c: &'a Claim, now: Millis) -> Self {
        ClaimView {
            age: age_secs(c.updated, now),
            ttl: c.ttl,
            href: format!("/v2/queues/{queue}/claims/{}", c.id),
            messages: c
                .messages
                .iter()
                .map(|m| MessageView::new(queue, m, now))
                .collect(),
        }
    }
}

#[derive(Serialize)]
pub struct StampView {
    pub id: String,
    pub href: String,
    pub age: i64,
    pub created: String,
}

#[derive(Serialize)]
pub struct StatsCounts {
    pub claimed: u64,
    pub free: u64,
    /// Messages not yet visible because of their delay (only when there are some).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delayed: Option<u64>,
    pub total: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest: Option<StampView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest: Option<StampView>,
}

#[derive(Serialize)]
pub struct StatsView {
    pub messages: StatsCounts,
}

impl StatsView {
    pub fn new(queue: &str, s: &QueueStats, now: Millis) -> Self {
        Self::under(&format!("/v2/queues/{queue}"), s, now)
    }

    pub fn under(base: &str, s: &QueueStats, now: Millis) -> Self {
        let stamp = |st: &zaqar_core::model::MessageStamp| StampView {
            id: st.id.clone(),
            href: message_href(base, &st.id, None),
            age: age_secs(st.created, now),
            created: format_iso_z(st.created),
        };
        StatsView {
            messages: StatsCounts {
                claimed: s.claimed,
                free: s.total - s.claimed,
                delayed: (s.delayed > 0).then_some(s.delayed),
                total: s.total,
                oldest: s.oldest.as_ref().map(stamp),
                newest: s.newest.as_ref().map(stamp),
            },
        }
    }
}
