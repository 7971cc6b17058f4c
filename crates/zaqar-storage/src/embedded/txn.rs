//! Transaction-level helpers of the embedded store: record conversion and the table edits that
//! several operations share (append, purge, selection of free messages, moves to the outbox).

use redb::{ReadableTable, WriteTransaction};
use serde_json::value::RawValue;

use zaqar_core::clock::Millis;
use zaqar_core::error::Result;
use zaqar_core::model::{Message, MessageClaim, Metadata, QueueInfo};

use super::records::{
    decode, encode, encode_into, message_id, ClaimRecord, MovedMessage, MsgRecord, OutboxRecord,
    QueueRecord, BODIES, CLAIMS, COUNTERS, MSGS, OUTBOX, QUEUES,
};
use super::{bytes, se, successor};

pub(super) fn to_message(marker: u64, rec: MsgRecord, body: &[u8]) -> Result<Message> {
    let text = String::from_utf8(body.to_vec()).map_err(se)?;
    let body = RawValue::from_string(text).map_err(se)?;
    Ok(Message {
        id: message_id(marker, rec.suffix),
        marker,
        body,
        ttl: rec.ttl,
        created: rec.created,
        expires: rec.expires,
        client_id: rec.client_id,
        claim: rec.claim.map(|(id, expires)| MessageClaim { id, expires }),
        claim_count: rec.claim_count,
        delay_expires: rec.delay_expires,
        checksum: rec.checksum,
        encrypted: rec.encrypted,
        moved_from: rec.moved_from,
    })
}

pub(super) fn read_body(
    bodies: &impl ReadableTable<(&'static str, &'static str, u64), &'static [u8]>,
    p: &str,
    n: &str,
    marker: u64,
) -> Result<Vec<u8>> {
    Ok(bodies
        .get((p, n, marker))
        .map_err(se)?
        .map(|g| g.value().to_vec())
        .unwrap_or_else(|| b"null".to_vec()))
}

pub(super) fn queue_info(name: &str, rec: &QueueRecord) -> Result<QueueInfo> {
    let metadata: Metadata = serde_json::from_str(&rec.metadata).map_err(se)?;
    Ok(QueueInfo {
        name: name.to_string(),
        metadata,
        version: rec.version,
        created: rec.created,
    })
}

/// Removes every message, body and claim of a queue inside `txn`.
pub(super) fn purge_in(txn: &WriteTransaction, p: &str, n: &str) -> Result<()> {
    bytes::clear(txn, p, n)?;
    let mut msgs = txn.open_table(MSGS).map_err(se)?;
    msgs.retain_in((p, n, 0u64)..=(p, n, u64::MAX), |_, _| false)
        .map_err(se)?;
    let mut bodies = txn.open_table(BODIES).map_err(se)?;
    bodies
        .retain_in((p, n, 0u64)..=(p, n, u64::MAX), |_, _| false)
        .map_err(se)?;
    let mut claims = txn.open_table(CLAIMS).map_err(se)?;
    let succ = successor(n);
    claims
        .retain_in((p, n, "")..(p, succ.as_str(), ""), |_, _| false)
        .map_err(se)?;
    Ok(())
}

/// Appends messages at the tail of a queue inside `txn`, creating the queue (without metadata)
/// if needed; assigns markers and id suffixes. Returns the new ids in order.
pub(super) fn append_in<B: AsRef<[u8]>>(
    txn: &WriteTransaction,
    p: &str,
    n: &str,
    now: Millis,
    items: impl IntoIterator<Item = (MsgRecord, B)>,
) -> Result<Vec<String>> {
    let key = (p, n);
    let mut queues = txn.open_table(QUEUES).map_err(se)?;
    if queues.get(key).map_err(se)?.is_none() {
        let rec = QueueRecord {
            created: now,
            version: 1,
            metadata: "{}".into(),
        };
        queues.insert(key, encode(&rec)?.as_slice()).map_err(se)?;
    }
    let mut counters = txn.open_table(COUNTERS).map_err(se)?;
    let last = counters
        .get(key)
        .map_err(se)?
        .map(|g| g.value())
        .unwrap_or(0);
    let mut mt = txn.open_table(MSGS).map_err(se)?;
    let mut bt = txn.open_table(BODIES).map_err(se)?;
    let items = items.into_iter();
    let mut ids = Vec::with_capacity(items.size_hint().0);
    let mut delta = bytes::Delta::default();
    // One encoding buffer for the whole batch.
    let mut buf = Vec::with_capacity(128);
    for (mut rec, body) in items {
        let marker = last + 1 + ids.len() as u64;
        rec.suffix = rand::random();
        let mkey = (p, n, marker);
        encode_into(&rec, &mut buf)?;
        mt.insert(mkey, buf.as_slice()).map_err(se)?;
        bt.insert(mkey, body.as_ref()).map_err(se)?;
        delta.add(rec.expires, body.as_ref().len());
        ids.push(message_id(marker, rec.suffix));
    }
    counters.insert(key, last + ids.len() as u64).map_err(se)?;
    delta.apply(txn, p, n)?;
    Ok(ids)
}

/// Up to `limit` of the oldest messages of a queue that are unexpired, unclaimed and not
/// delayed (what claims and pops take), with their markers.
pub(super) fn select_free(
    msgs: &impl ReadableTable<(&'static str, &'static str, u64), &'static [u8]>,
    p: &str,
    n: &str,
    now: Millis,
    limit: usize,
) -> Result<Vec<(u64, MsgRecord)>> {
    let mut picked = Vec::new();
    if limit == 0 {
        return Ok(picked);
    }
    for e in msgs.range((p, n, 0u64)..=(p, n, u64::MAX)).map_err(se)? {
        let (k, v) = e.map_err(se)?;
        let rec: MsgRecord = decode(v.value())?;
        if rec.expires <= now || rec.active_claim(now).is_some() || rec.delay_expires > now {
            continue;
        }
        picked.push((k.value().2, rec));
        if picked.len() >= limit {
            break;
        }
    }
    Ok(picked)
}

/// Takes a message out of its queue into a transfer, inside `txn`; `stored_expires` is the
/// expiry it was stored with (`rec` may carry a new one), for the byte accounting in `delta`.
pub(super) fn take_for_move(
    txn: &WriteTransaction,
    p: &str,
    n: &str,
    marker: u64,
    stored_expires: Millis,
    rec: MsgRecord,
    delta: &mut bytes::Delta,
) -> Result<MovedMessage> {
    let key = (p, n, marker);
    let body = txn
        .open_table(BODIES)
        .map_err(se)?
        .remove(key)
        .map_err(se)?
        .map(|g| g.value().to_vec());
    if let Some(b) = &body {
        delta.remove(stored_expires, b.len());
    }
    let body = body.unwrap_or_else(|| b"null".to_vec());
    txn.open_table(MSGS).map_err(se)?.remove(key).map_err(se)?;
    Ok(MovedMessage { rec, body })
}

/// Records pending transfers in the shard's outbox, inside `txn`.
pub(super) fn queue_transfers(
    txn: &WriteTransaction,
    transfers: Vec<OutboxRecord>,
) -> Result<usize> {
    let mut outbox = txn.open_table(OUTBOX).map_err(se)?;
    let count = transfers.len();
    for t in transfers {
        let id = uuid::Uuid::new_v4().simple().to_string();
        outbox
            .insert(id.as_str(), encode(&t)?.as_slice())
            .map_err(se)?;
    }
    Ok(count)
}

pub(super) fn claim_is_live(
    claims: &impl ReadableTable<(&'static str, &'static str, &'static str), &'static [u8]>,
    p: &str,
    n: &str,
    cid: &str,
    now: Millis,
) -> Result<bool> {
    match claims.get((p, n, cid)).map_err(se)? {
        Some(g) => Ok(decode::<ClaimRecord>(g.value())?.expires > now),
        None => Ok(false),
    }
}
