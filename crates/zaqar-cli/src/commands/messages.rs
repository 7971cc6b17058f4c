//! Message commands (`zaqar message ...`) and the message rows that claims and bulk
//! operations print too.

use reqwest::Method;
use serde_json::{json, Value};

use super::{next_marker, page, seg, Kind};
use crate::bulk;
use crate::client::{Client, Result};
use crate::output::Output;
use crate::{MessageCmd, MessageListOpts};

pub const MESSAGE_COLUMNS: [&str; 5] = ["ID", "Body", "TTL", "Age", "Claim ID"];

/// The claim id in a message's `href` (`...?claim_id=...`).
pub fn claim_of(m: &Value) -> Value {
    m.get("href")
        .and_then(Value::as_str)
        .and_then(|h| h.split_once('?'))
        .and_then(|(_, q)| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "claim_id")
                .map(|(_, v)| json!(v))
        })
        .or_else(|| m.get("claim_id").cloned())
        .unwrap_or(Value::Null)
}

pub fn message_row(m: &Value) -> Vec<Value> {
    vec![
        m["id"].clone(),
        m["body"].clone(),
        m["ttl"].clone(),
        m["age"].clone(),
        claim_of(m),
    ]
}

fn message_rows(items: Option<&Value>) -> Vec<Vec<Value>> {
    items
        .and_then(Value::as_array)
        .map(|a| a.iter().map(message_row).collect())
        .unwrap_or_default()
}

/// One page of a message listing: its rows and the next page's marker when it was full.
async fn message_page(
    c: &Client,
    path: &str,
    o: &MessageListOpts,
    marker: Option<String>,
) -> Result<(Vec<Vec<Value>>, Option<String>)> {
    let mut q = Vec::new();
    if let Some(l) = o.limit {
        q.push(("limit", l.to_string()));
    }
    if let Some(m) = marker {
        q.push(("marker", m));
    }
    for (flag, name) in [
        (o.echo, "echo"),
        (o.include_claimed, "include_claimed"),
        (o.include_delayed, "include_delayed"),
    ] {
        if flag {
            q.push((name, "true".into()));
        }
    }
    let r = c.get(path, &q).await?;
    let rows = message_rows(r.body.get("messages"));
    // Zaqar links a next page after every non-empty page; it counts only after a full one.
    let next = next_marker(&r.body).filter(|_| rows.len() >= page(o.limit));
    Ok((rows, next))
}

pub(super) async fn list_messages(
    c: &Client,
    kind: Kind,
    queue: &str,
    o: MessageListOpts,
) -> Result<Output> {
    let path = format!("{}/messages", kind.path(queue));
    let (mut rows, mut next) = message_page(c, &path, &o, o.marker.clone()).await?;
    if o.all {
        while let Some(marker) = next.take() {
            let (more, after) = message_page(c, &path, &o, Some(marker)).await?;
            rows.extend(more);
            next = after;
        }
    }
    let mut extra = Vec::new();
    if let Some(next) = next {
        extra.push(("Next marker", json!(next)));
    }
    Ok(Output::List {
        columns: MESSAGE_COLUMNS.to_vec(),
        rows,
        extra,
    })
}

pub(super) async fn message(c: &Client, cmd: MessageCmd) -> Result<Output> {
    let k = Kind::Queue;
    match cmd {
        MessageCmd::Post { queue, input } => bulk::post(c, k, &queue, input).await,
        MessageCmd::List { queue, opts } => list_messages(c, k, &queue, opts).await,
        MessageCmd::Get { queue, ids } => {
            let base = format!("{}/messages", k.path(&queue));
            if let [id] = ids.as_slice() {
                let r = c.get(&format!("{base}/{}", seg(id)), &[]).await?;
                let row = message_row(&r.body);
                return Ok(Output::show(MESSAGE_COLUMNS.iter().copied().zip(row)));
            }
            let r = c.get(&base, &[("ids", ids.join(","))]).await?;
            Ok(Output::list(
                MESSAGE_COLUMNS.to_vec(),
                message_rows(r.body.get("messages")),
            ))
        }
        MessageCmd::Delete {
            queue,
            ids,
            claim_id,
        } => {
            let base = format!("{}/messages", k.path(&queue));
            match (ids.as_slice(), claim_id) {
                ([id], claim) => {
                    let q: Vec<(&str, String)> =
                        claim.into_iter().map(|c| ("claim_id", c)).collect();
                    c.send(Method::DELETE, &format!("{base}/{}", seg(id)), &q, None)
                        .await?;
                }
                (_, None) => {
                    c.send(Method::DELETE, &base, &[("ids", ids.join(","))], None)
                        .await?;
                }
                (_, Some(claim)) => {
                    let q = [("ids", ids.join(",")), ("claim_ids", claim)];
                    c.send(Method::DELETE, &base, &q, None).await?;
                }
            }
            Ok(Output::Nothing)
        }
        MessageCmd::Pop { queue, count } => {
            let r = c
                .send(
                    Method::DELETE,
                    &format!("{}/messages", k.path(&queue)),
                    &[("pop", count.to_string())],
                    None,
                )
                .await?;
            Ok(Output::list(
                MESSAGE_COLUMNS.to_vec(),
                message_rows(r.body.get("messages")),
            ))
        }
        MessageCmd::Drain {
            queue,
            batch,
            max,
            ttl,
            no_progress,
        } => bulk::drain(c, &queue, batch, max, ttl, !no_progress).await,
    }
}
