//! Replies and records of the Redis store: reading script replies, message ids, and the
//! MessagePack record of a stored message.

use redis::Value;
use serde_json::value::RawValue;

use zaqar_core::error::{Error, Result};
use zaqar_core::model::{Message, MessageClaim};
use zaqar_core::store::MessageId;

pub(super) fn field(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Okay => Some("OK".into()),
        _ => None,
    }
}

pub(super) fn int(v: &Value) -> i64 {
    field(v).and_then(|s| s.parse().ok()).unwrap_or(0)
}

pub(super) fn array(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        Value::Nil => Ok(Vec::new()),
        other => Err(Error::Internal(format!(
            "unexpected reply from Redis: {other:?}"
        ))),
    }
}

pub(super) fn bad_reply(what: &str) -> Error {
    Error::Internal(format!("unexpected reply from Redis ({what})"))
}

/// The id of a stored message: its marker and the suffix its record keeps as hex text
/// (see [`MessageId`]).
pub(super) fn message_id(marker: u64, suffix: &str) -> Result<String> {
    let suffix = MessageId::parse_suffix(suffix).ok_or_else(|| bad_reply("message suffix"))?;
    Ok(MessageId::new(marker, suffix).text())
}

/// The marker of an id and its suffix as records keep it.
pub(super) fn parse_message_id(id: &str) -> Option<(u64, String)> {
    MessageId::parse(id).map(|i| (i.marker, MessageId::suffix_hex(i.suffix)))
}

/// A stored message: a MessagePack array (written by the driver on post, read and rewritten
/// by the scripts with `cmsgpack`). Absent values are `""` / `0` so the array has no holes:
/// suffix, ttl, created, expires, client id, claim id, claim expiry, claim count, delay expiry,
/// checksum, encrypted (0/1), moved from, body (JSON text).
pub(super) type Record = (
    String,
    i64,
    i64,
    i64,
    String,
    String,
    i64,
    i64,
    i64,
    String,
    i64,
    String,
    String,
);

pub(super) fn encode_record(r: &Record) -> Result<Vec<u8>> {
    rmp_serde::to_vec(r).map_err(|e| Error::Internal(format!("cannot encode a message: {e}")))
}

pub(super) fn to_message(marker: &Value, raw: &Value) -> Result<Message> {
    let marker: u64 = field(marker)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad_reply("marker"))?;
    let Value::BulkString(raw) = raw else {
        return Err(bad_reply("message record"));
    };
    let (suffix, ttl, created, expires, client_id, cid, cexp, cc, delay, checksum, enc, mf, body): Record =
        rmp_serde::from_slice(raw)
            .map_err(|e| Error::Internal(format!("corrupt message record: {e}")))?;
    let body = RawValue::from_string(body).map_err(|e| Error::Internal(e.to_string()))?;
    let some = |s: String| (!s.is_empty()).then_some(s);
    Ok(Message {
        id: message_id(marker, &suffix)?,
        marker,
        body,
        ttl,
        created,
        expires,
        client_id,
        claim: some(cid).map(|id| MessageClaim { id, expires: cexp }),
        claim_count: cc.clamp(0, u32::MAX as i64) as u32,
        delay_expires: delay,
        checksum: some(checksum),
        encrypted: enc == 1,
        moved_from: some(mf),
    })
}

/// Messages as the scripts return them: marker, record, marker, record, ...
pub(super) fn to_messages(v: Value) -> Result<Vec<Message>> {
    let flat = array(v)?;
    if flat.len() % 2 != 0 {
        return Err(bad_reply("message list"));
    }
    flat.chunks(2).map(|p| to_message(&p[0], &p[1])).collect()
}
