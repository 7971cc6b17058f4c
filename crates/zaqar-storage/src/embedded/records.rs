//! On-disk layout of the embedded store: table definitions and record encodings.
//!
//! Tables (keys are tuples, so one queue's entries are contiguous and ordered):
//! - `queues`   (project, queue)          → [`QueueRecord`]
//! - `counters` (project, queue)          → last marker handed out
//! - `messages` (project, queue, marker)  → [`MsgRecord`] (small, rewritten by claims)
//! - `bodies`   (project, queue, marker)  → the message body as JSON text (written once)
//! - `claims`   (project, queue, claim)   → [`ClaimRecord`]
//! - `subscriptions` (project, source, id) → [`SubRecord`]; `subscriber_uris` for uniqueness
//! - `notifications` seq                  → [`NotifyRecord`] (the durable notification outbox)
//! - `outbox`   transfer id               → [`OutboxRecord`] (moves to another queue, pending)
//! - `transfers_done` transfer id         → time applied (idempotence of replayed moves)
//! - `queue_bytes` (project, queue)       → body bytes of the queue's message records
//! - `queue_bytes_by_expiry` (project, queue, second) → the same bytes by expiry second
//! - `meta`     name                      → store-wide facts (`bytes_accounting`)
//!
//! Records are postcard-encoded behind a one-byte format version.

use redb::TableDefinition;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use zaqar_core::clock::Millis;
use zaqar_core::error::Result;

use super::shard::storage_error;
use zaqar_core::store::MessageId;

pub(crate) const QUEUES: TableDefinition<'static, (&str, &str), &[u8]> =
    TableDefinition::new("queues");
pub(crate) const COUNTERS: TableDefinition<'static, (&str, &str), u64> =
    TableDefinition::new("counters");
pub(crate) const MSGS: TableDefinition<'static, (&str, &str, u64), &[u8]> =
    TableDefinition::new("messages");
pub(crate) const BODIES: TableDefinition<'static, (&str, &str, u64), &[u8]> =
    TableDefinition::new("bodies");
pub(crate) const CLAIMS: TableDefinition<'static, (&str, &str, &str), &[u8]> =
    TableDefinition::new("claims");
/// Subscriptions: (project, source, id) → [`SubRecord`].
pub(crate) const SUBS: TableDefinition<'static, (&str, &str, &str), &[u8]> =
    TableDefinition::new("subscriptions");
/// Subscriber URIs, for uniqueness: (project, source, subscriber) → id.
pub(crate) const SUB_URIS: TableDefinition<'static, (&str, &str, &str), &str> =
    TableDefinition::new("subscriber_uris");
/// Pending notification batches, in posting order: seq → [`NotifyRecord`].
pub(crate) const NOTIFY: TableDefinition<'static, u64, &[u8]> =
    TableDefinition::new("notifications");

/// Messages on their way to another queue (dead-lettering, redrive), keyed by transfer id.
pub(crate) const OUTBOX: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("outbox");
/// Transfers already applied in this shard (transfer id → when), so a replayed transfer is not
/// applied twice.
pub(crate) const XFER_DONE: TableDefinition<'static, &str, i64> =
    TableDefinition::new("transfers_done");

/// Body bytes of every message record of a queue (expired-but-unswept ones included), updated
/// in the transaction that adds or removes the record.
pub(crate) const QBYTES: TableDefinition<'static, (&str, &str), u64> =
    TableDefinition::new("queue_bytes");
/// The same bytes by expiry second (`storage::expiry_second`): what has expired but is still
/// stored is the sum over the seconds already past, so the unexpired bytes of a queue are read
/// without visiting its messages. Rows that reach zero are removed.
pub(crate) const QBYTES_BY_EXPIRY: TableDefinition<'static, (&str, &str, u64), u64> =
    TableDefinition::new("queue_bytes_by_expiry");
/// Store-wide facts. `bytes_accounting` = 1 once the two tables above cover every message (a
/// store created before byte accounting is counted once, when it is first opened).
pub(crate) const META: TableDefinition<'static, &str, u64> = TableDefinition::new("meta");

const FORMAT: u8 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct QueueRecord {
    pub created: Millis,
    pub version: u64,
    /// JSON object text.
    pub metadata: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MsgRecord {
    /// Random half of the message id (the other half is the marker).
    pub suffix: u64,
    pub ttl: i64,
    pub created: Millis,
    pub expires: Millis,
    pub client_id: String,
    /// Latest claim id and its expiry (a stale claim is kept for display by pop).
    pub claim: Option<(String, Millis)>,
    pub claim_count: u32,
    pub delay_expires: Millis,
    pub checksum: Option<String>,
    pub encrypted: bool,
    pub moved_from: Option<String>,
}

impl MsgRecord {
    pub(super) fn active_claim(&self, now: Millis) -> Option<&str> {
        match &self.claim {
            Some((id, exp)) if *exp > now => Some(id.as_str()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ClaimRecord {
    pub ttl: i64,
    pub updated: Millis,
    pub expires: Millis,
    pub markers: Vec<u64>,
}

/// A message leaving its queue: everything but its position, which the target assigns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MovedMessage {
    pub rec: MsgRecord,
    pub body: Vec<u8>,
}

/// A pending move of messages into `target` (same project).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OutboxRecord {
    pub project: String,
    pub target: String,
    pub messages: Vec<MovedMessage>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SubRecord {
    pub subscriber: String,
    pub ttl: i64,
    pub created: Millis,
    pub expires: Millis,
    /// JSON object text.
    pub options: String,
    pub confirmed: bool,
    pub secret: String,
    pub delivered: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NotifyMsg {
    pub id: String,
    pub body: Vec<u8>,
    pub ttl: i64,
    pub delay: i64,
    pub encrypted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NotifyRecord {
    pub project: String,
    pub source: String,
    pub messages: Vec<NotifyMsg>,
    /// Subscription ids still to be served.
    pub pending: Vec<String>,
    /// Those of them that were not confirmed when the messages were posted.
    pub unconfirmed: Vec<String>,
    pub lease_until: Millis,
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_into(v, &mut out)?;
    Ok(out)
}

/// `encode` into a reused buffer (cleared first).
pub(crate) fn encode_into<T: Serialize>(v: &T, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    out.push(FORMAT);
    postcard::to_io(v, &mut *out).map_err(storage_error)?;
    Ok(())
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&FORMAT, rest)) => postcard::from_bytes(rest).map_err(storage_error),
        _ => Err(storage_error("unknown record format")),
    }
}

/// The id of a message record (see [`MessageId`]).
pub(crate) fn message_id(marker: u64, suffix: u64) -> String {
    MessageId::new(marker, suffix).text()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_reject_unknown_formats() {
        let r = ClaimRecord {
            ttl: 60,
            updated: 1,
            expires: 2,
            markers: vec![1, 2, 3],
        };
        let bytes = encode(&r).unwrap();
        let back: ClaimRecord = decode(&bytes).unwrap();
        assert_eq!(back.markers, vec![1, 2, 3]);
        let mut bad = bytes.clone();
        bad[0] = 99;
        assert!(decode::<ClaimRecord>(&bad).is_err());
    }
}
