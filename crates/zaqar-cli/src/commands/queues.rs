//! Queue and topic commands (`zaqar queue ...`, `zaqar topic ...`): the two share most of
//! their API, so each command is written once for a [`Kind`].

use reqwest::Method;
use serde_json::{json, Map, Value};

use super::messages::list_messages;
use super::{next_marker, page, parse_object, shares, Kind};
use crate::bulk;
use crate::client::{Body, Client, Result};
use crate::output::Output;
use crate::{ListOpts, MessageListOpts, QueueCmd, TopicCmd};

async fn create(c: &Client, kind: Kind, name: &str, metadata: Option<String>) -> Result<Output> {
    let body = match metadata {
        Some(m) => Some(Body::Json(Value::Object(parse_object("--metadata", &m)?))),
        None => None,
    };
    let r = c.send(Method::PUT, &kind.path(name), &[], body).await?;
    Ok(Output::show([
        ("Name", json!(name)),
        ("Created", json!(r.status.as_u16() == 201)),
    ]))
}

/// One page of a queue or topic listing: its items, the server's count (with `with_count`)
/// and the marker of the next page when the page was full.
async fn list_page(
    c: &Client,
    kind: Kind,
    o: &ListOpts,
    marker: Option<String>,
) -> Result<(Vec<Value>, Option<Value>, Option<String>)> {
    let mut q = Vec::new();
    if let Some(l) = o.limit {
        q.push(("limit", l.to_string()));
    }
    if let Some(m) = marker {
        q.push(("marker", m));
    }
    if o.detailed {
        q.push(("detailed", "true".into()));
    }
    if o.with_count && kind == Kind::Queue {
        q.push(("with_count", "true".into()));
    }
    if let Some(n) = &o.name {
        q.push(("name", n.clone()));
    }
    let r = c.get(&format!("/v2/{}", kind.collection()), &q).await?;
    let items = r
        .body
        .get(kind.collection())
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let next = next_marker(&r.body).filter(|_| items.len() >= page(o.limit));
    Ok((items, r.body.get("count").cloned(), next))
}

async fn list(c: &Client, kind: Kind, o: ListOpts) -> Result<Output> {
    let (mut items, count, mut next) = list_page(c, kind, &o, o.marker.clone()).await?;
    if o.all {
        while let Some(marker) = next.take() {
            let (more, _, after) = list_page(c, kind, &o, Some(marker)).await?;
            items.extend(more);
            next = after;
        }
    }
    let (columns, rows): (Vec<&str>, Vec<Vec<Value>>) = if o.detailed {
        let rows = items
            .iter()
            .map(|i| vec![i["name"].clone(), i["metadata"].clone()])
            .collect();
        (vec!["Name", "Metadata"], rows)
    } else {
        (
            vec!["Name"],
            items.iter().map(|i| vec![i["name"].clone()]).collect(),
        )
    };
    let mut extra = Vec::new();
    if let Some(n) = count {
        extra.push(("Count", n));
    }
    if let Some(next) = next {
        extra.push(("Next marker", json!(next)));
    }
    Ok(Output::List {
        columns,
        rows,
        extra,
    })
}

async fn show(c: &Client, kind: Kind, name: &str) -> Result<Output> {
    let r = c.get(&kind.path(name), &[]).await?;
    Ok(Output::show([("Name", json!(name)), ("Metadata", r.body)]))
}

/// Replaces the metadata with `new`: a JSON-patch that adds or replaces every key of `new`
/// and removes the other non-reserved keys.
pub fn metadata_patch(current: &Map<String, Value>, new: &Map<String, Value>) -> Value {
    let pointer = |k: &str| format!("/metadata/{}", k.replace('~', "~0").replace('/', "~1"));
    let mut ops = Vec::new();
    for (k, v) in new {
        let op = if current.contains_key(k) {
            "replace"
        } else {
            "add"
        };
        ops.push(json!({"op": op, "path": pointer(k), "value": v}));
    }
    for k in current.keys() {
        if !new.contains_key(k) && !k.starts_with('_') {
            ops.push(json!({"op": "remove", "path": pointer(k)}));
        }
    }
    Value::Array(ops)
}

async fn set_metadata(c: &Client, kind: Kind, name: &str, metadata: &str) -> Result<Output> {
    let new = parse_object("metadata", metadata)?;
    let current = c.get(&kind.path(name), &[]).await?.body;
    let current = current.as_object().cloned().unwrap_or_default();
    let patch = metadata_patch(&current, &new);
    let r = c
        .send(
            Method::PATCH,
            &kind.path(name),
            &[],
            Some(Body::Patch(patch)),
        )
        .await?;
    Ok(Output::show([("Name", json!(name)), ("Metadata", r.body)]))
}

async fn stats(c: &Client, kind: Kind, name: &str) -> Result<Output> {
    let r = c.get(&format!("{}/stats", kind.path(name)), &[]).await?;
    let m = r.body.get("messages").cloned().unwrap_or(Value::Null);
    let mut fields = vec![
        ("Total", m.get("total").cloned().unwrap_or(json!(0))),
        ("Free", m.get("free").cloned().unwrap_or(Value::Null)),
        ("Claimed", m.get("claimed").cloned().unwrap_or(Value::Null)),
    ];
    if let Some(d) = m.get("delayed") {
        fields.push(("Delayed", d.clone()));
    }
    for (label, key) in [("Oldest", "oldest"), ("Newest", "newest")] {
        if let Some(s) = m.get(key) {
            fields.push((label, s.clone()));
        }
    }
    Ok(Output::show(fields))
}

async fn purge(c: &Client, kind: Kind, name: &str, types: Vec<String>) -> Result<Output> {
    let body = (!types.is_empty()).then(|| Body::Json(json!({ "resource_types": types })));
    c.send(
        Method::POST,
        &format!("{}/purge", kind.path(name)),
        &[],
        body,
    )
    .await?;
    Ok(Output::Nothing)
}

async fn delete(c: &Client, kind: Kind, name: &str) -> Result<Output> {
    c.send(Method::DELETE, &kind.path(name), &[], None).await?;
    Ok(Output::Nothing)
}

pub(super) async fn queue(c: &Client, cmd: QueueCmd) -> Result<Output> {
    let k = Kind::Queue;
    match cmd {
        QueueCmd::Create { name, metadata } => create(c, k, &name, metadata).await,
        QueueCmd::List(o) => list(c, k, o).await,
        QueueCmd::Show { name } => show(c, k, &name).await,
        QueueCmd::SetMetadata { name, metadata } => set_metadata(c, k, &name, &metadata).await,
        QueueCmd::Stats { name } => stats(c, k, &name).await,
        QueueCmd::Purge {
            name,
            resource_types,
        } => purge(c, k, &name, resource_types).await,
        QueueCmd::Delete { name } => delete(c, k, &name).await,
        QueueCmd::SignedUrl {
            name,
            paths,
            methods,
            ttl_seconds,
            expires,
        } => shares::signed_url(c, &name, paths, methods, ttl_seconds, expires).await,
    }
}

pub(super) async fn topic(c: &Client, cmd: TopicCmd) -> Result<Output> {
    let k = Kind::Topic;
    match cmd {
        TopicCmd::Create { name, metadata } => create(c, k, &name, metadata).await,
        TopicCmd::List(o) => list(c, k, o).await,
        TopicCmd::Show { name } => show(c, k, &name).await,
        TopicCmd::SetMetadata { name, metadata } => set_metadata(c, k, &name, &metadata).await,
        TopicCmd::Stats { name } => stats(c, k, &name).await,
        TopicCmd::Purge {
            name,
            resource_types,
        } => purge(c, k, &name, resource_types).await,
        TopicCmd::Delete { name } => delete(c, k, &name).await,
        TopicCmd::Post { name, input } => bulk::post(c, k, &name, input).await,
        TopicCmd::Messages {
            name,
            limit,
            marker,
            echo,
        } => {
            let opts = MessageListOpts {
                limit,
                marker,
                echo,
                ..MessageListOpts::default()
            };
            list_messages(c, k, &name, opts).await
        }
    }
}
