//! Claim commands (`zaqar claim ...`), and the claim request that `message drain` uses too.

use reqwest::Method;
use serde_json::{json, Value};

use super::messages::{claim_of, message_row, MESSAGE_COLUMNS};
use super::{seg, Kind};
use crate::client::{Body, Client, Result};
use crate::output::Output;
use crate::ClaimCmd;

/// Claims up to `limit` messages; `None` when there was nothing to claim.
pub async fn create_claim(
    c: &Client,
    queue: &str,
    ttl: i64,
    grace: i64,
    limit: u32,
) -> Result<Option<(String, Vec<Value>)>> {
    let r = c
        .send(
            Method::POST,
            &format!("{}/claims", Kind::Queue.path(queue)),
            &[("limit", limit.to_string())],
            Some(Body::Json(json!({"ttl": ttl, "grace": grace}))),
        )
        .await?;
    if r.status.as_u16() == 204 {
        return Ok(None);
    }
    let messages = r
        .body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let from_location = r
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .and_then(|l| l.split('?').next())
        .and_then(|l| l.rsplit('/').next())
        .map(str::to_string);
    let id = from_location
        .or_else(|| {
            messages
                .first()
                .and_then(|m| claim_of(m).as_str().map(str::to_string))
        })
        .unwrap_or_default();
    Ok(Some((id, messages)))
}

pub(super) async fn claim(c: &Client, cmd: ClaimCmd) -> Result<Output> {
    let claims = |queue: &str| format!("{}/claims", Kind::Queue.path(queue));
    match cmd {
        ClaimCmd::Create {
            queue,
            ttl,
            grace,
            limit,
        } => {
            let rows = match create_claim(c, &queue, ttl, grace, limit).await? {
                None => Vec::new(),
                Some((_, messages)) => messages.iter().map(message_row).collect(),
            };
            Ok(Output::list(MESSAGE_COLUMNS.to_vec(), rows))
        }
        ClaimCmd::Query { queue, claim_id } => {
            let r = c
                .get(&format!("{}/{}", claims(&queue), seg(&claim_id)), &[])
                .await?;
            let f = |key: &str| r.body.get(key).cloned().unwrap_or(Value::Null);
            Ok(Output::show([
                ("ID", json!(claim_id)),
                ("TTL", f("ttl")),
                ("Age", f("age")),
                ("Href", f("href")),
                ("Messages", f("messages")),
            ]))
        }
        ClaimCmd::Renew {
            queue,
            claim_id,
            ttl,
            grace,
        } => {
            let path = format!("{}/{}", claims(&queue), seg(&claim_id));
            c.send(
                Method::PATCH,
                &path,
                &[],
                Some(Body::Json(json!({"ttl": ttl, "grace": grace}))),
            )
            .await?;
            let r = c.get(&path, &[]).await?;
            Ok(Output::show([
                ("ID", json!(claim_id)),
                ("TTL", r.body.get("ttl").cloned().unwrap_or(Value::Null)),
                ("Age", r.body.get("age").cloned().unwrap_or(Value::Null)),
            ]))
        }
        ClaimCmd::Release { queue, claim_id } => {
            c.send(
                Method::DELETE,
                &format!("{}/{}", claims(&queue), seg(&claim_id)),
                &[],
                None,
            )
            .await?;
            Ok(Output::Nothing)
        }
    }
}
