//! Subscription commands (`zaqar subscription ...`), on a queue or, with `--topic`, a topic.

use reqwest::Method;
use serde_json::{json, Map, Value};

use super::{parse_object, seg, Kind};
use crate::client::{usage, Body, Client, Result};
use crate::output::Output;
use crate::SubscriptionCmd;

fn subscription_fields(s: &Value) -> Vec<(&'static str, Value)> {
    let f = |key: &str| s.get(key).cloned().unwrap_or(Value::Null);
    vec![
        ("ID", f("id")),
        ("Source", f("source")),
        ("Subscriber", f("subscriber")),
        ("TTL", f("ttl")),
        ("Age", f("age")),
        ("Confirmed", f("confirmed")),
        ("Options", f("options")),
    ]
}

pub(super) async fn subscription(c: &Client, cmd: SubscriptionCmd) -> Result<Output> {
    let base = |queue: &str, topic: bool| {
        let kind = if topic { Kind::Topic } else { Kind::Queue };
        format!("{}/subscriptions", kind.path(queue))
    };
    match cmd {
        SubscriptionCmd::Create {
            queue,
            subscriber,
            ttl,
            options,
            topic,
        } => {
            let mut body = json!({"subscriber": subscriber, "ttl": ttl});
            if let Some(o) = options {
                body["options"] = Value::Object(parse_object("--options", &o)?);
            }
            let r = c
                .send(
                    Method::POST,
                    &base(&queue, topic),
                    &[],
                    Some(Body::Json(body)),
                )
                .await?;
            Ok(Output::show([(
                "ID",
                r.body
                    .get("subscription_id")
                    .cloned()
                    .unwrap_or(Value::Null),
            )]))
        }
        SubscriptionCmd::List {
            queue,
            limit,
            marker,
            topic,
        } => {
            let mut q = Vec::new();
            if let Some(l) = limit {
                q.push(("limit", l.to_string()));
            }
            if let Some(m) = marker {
                q.push(("marker", m));
            }
            let r = c.get(&base(&queue, topic), &q).await?;
            let items = r
                .body
                .get("subscriptions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let columns = subscription_fields(&Value::Null)
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            let rows = items
                .iter()
                .map(|s| subscription_fields(s).into_iter().map(|(_, v)| v).collect())
                .collect();
            Ok(Output::list(columns, rows))
        }
        SubscriptionCmd::Show { queue, id, topic } => {
            let r = c
                .get(&format!("{}/{}", base(&queue, topic), seg(&id)), &[])
                .await?;
            Ok(Output::show(subscription_fields(&r.body)))
        }
        SubscriptionCmd::Update {
            queue,
            id,
            subscriber,
            ttl,
            options,
            topic,
        } => {
            let mut body = Map::new();
            if let Some(s) = subscriber {
                body.insert("subscriber".into(), json!(s));
            }
            if let Some(t) = ttl {
                body.insert("ttl".into(), json!(t));
            }
            if let Some(o) = options {
                body.insert(
                    "options".into(),
                    Value::Object(parse_object("--options", &o)?),
                );
            }
            if body.is_empty() {
                return Err(usage("give at least one of --subscriber, --ttl, --options"));
            }
            let path = format!("{}/{}", base(&queue, topic), seg(&id));
            c.send(
                Method::PATCH,
                &path,
                &[],
                Some(Body::Json(Value::Object(body))),
            )
            .await?;
            let r = c.get(&path, &[]).await?;
            Ok(Output::show(subscription_fields(&r.body)))
        }
        SubscriptionCmd::Delete { queue, id, topic } => {
            c.send(
                Method::DELETE,
                &format!("{}/{}", base(&queue, topic), seg(&id)),
                &[],
                None,
            )
            .await?;
            Ok(Output::Nothing)
        }
        SubscriptionCmd::Confirm {
            queue,
            id,
            unconfirm,
            topic,
        } => {
            c.send(
                Method::PUT,
                &format!("{}/{}/confirm", base(&queue, topic), seg(&id)),
                &[],
                Some(Body::Json(json!({ "confirmed": !unconfirm }))),
            )
            .await?;
            Ok(Output::Nothing)
        }
    }
}
