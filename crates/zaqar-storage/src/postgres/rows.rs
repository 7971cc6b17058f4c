//! Message ids and rows of the PostgreSQL store: the signed (marker, suffix) key of an id, and
//! messages and queues read from result rows.

use std::collections::HashSet;

use serde_json::value::RawValue;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row};

use zaqar_core::error::Result;
use zaqar_core::model::{Message, MessageClaim, Metadata, QueueInfo};
use zaqar_core::store::MessageId;

use super::errors::corrupt;

/// The id of a row's (marker, suffix) key (see [`MessageId`]; the columns are signed).
pub(super) fn message_id(marker: i64, suffix: i64) -> String {
    MessageId::new(marker as u64, suffix as u64).text()
}

/// The (marker, suffix) key of an id, as the signed columns hold it.
pub(super) fn parse_message_id(id: &str) -> Option<(i64, i64)> {
    MessageId::parse(id).map(|i| (i.marker as i64, i.suffix as i64))
}

/// The distinct (marker, suffix) pairs of well-formed ids, in first-seen order, with the id as
/// given (for error messages).
pub(super) fn parse_ids(ids: &[String]) -> Vec<(i64, i64, &str)> {
    let mut seen = HashSet::new();
    ids.iter()
        .filter_map(|id| parse_message_id(id).map(|(m, s)| (m, s, id.as_str())))
        .filter(|(m, s, _)| seen.insert((*m, *s)))
        .collect()
}

pub(super) fn get<'r, T>(row: &'r PgRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(col).map_err(corrupt)
}

/// A message from a row holding the columns of `messages` (`m.*`).
pub(super) fn message_from(row: &PgRow) -> Result<Message> {
    let marker: i64 = get(row, "marker")?;
    let suffix: i64 = get(row, "suffix")?;
    let body: String = get(row, "body")?;
    let claim_id: Option<String> = get(row, "claim_id")?;
    let claim_expires: i64 = get(row, "claim_expires")?;
    let claim_count: i32 = get(row, "claim_count")?;
    Ok(Message {
        id: message_id(marker, suffix),
        marker: marker as u64,
        body: RawValue::from_string(body).map_err(corrupt)?,
        ttl: get(row, "ttl")?,
        created: get(row, "created")?,
        expires: get(row, "expires")?,
        client_id: get(row, "client_id")?,
        claim: claim_id.map(|id| MessageClaim {
            id,
            expires: claim_expires,
        }),
        claim_count: claim_count.max(0) as u32,
        delay_expires: get(row, "delay_expires")?,
        checksum: get(row, "checksum")?,
        encrypted: get(row, "encrypted")?,
        moved_from: get(row, "moved_from")?,
    })
}

pub(super) fn messages_from(rows: &[PgRow]) -> Result<Vec<Message>> {
    rows.iter().map(message_from).collect()
}

pub(super) fn queue_from(row: &PgRow) -> Result<QueueInfo> {
    let metadata: String = get(row, "metadata")?;
    let version: i64 = get(row, "version")?;
    Ok(QueueInfo {
        name: get(row, "name")?,
        metadata: serde_json::from_str::<Metadata>(&metadata).map_err(corrupt)?,
        version: version as u64,
        created: get(row, "created")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let id = message_id(42, -1);
        assert_eq!(id, "000000000000002affffffffffffffff");
        assert_eq!(parse_message_id(&id), Some((42, -1)));
        assert_eq!(
            parse_message_id(&id.to_uppercase()),
            Some((42, -1)),
            "hex digits of either case"
        );
    }

    #[test]
    fn parsed_ids_are_distinct_and_ordered() {
        let a = message_id(1, 7);
        let b = message_id(2, 9);
        let ids = vec![b.clone(), "bogus".into(), a.clone(), b.clone()];
        let keys = parse_ids(&ids);
        assert_eq!(keys, vec![(2, 9, b.as_str()), (1, 7, a.as_str())]);
    }
}
