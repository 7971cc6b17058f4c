//! Pool and flavor commands (`zaqar pool ...`, `zaqar flavor ...`), the operator's view of
//! where queues are stored.

use reqwest::Method;
use serde_json::{json, Map, Value};

use super::{parse_object, seg};
use crate::client::{usage, Body, Client, Result};
use crate::output::Output;
use crate::{FlavorCmd, PoolCmd};

fn paging(
    limit: Option<u32>,
    marker: Option<String>,
    detailed: bool,
) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(l) = limit {
        q.push(("limit", l.to_string()));
    }
    if let Some(m) = marker {
        q.push(("marker", m));
    }
    if detailed {
        q.push(("detailed", "true".into()));
    }
    q
}

fn pool_fields(p: &Value) -> Vec<(&'static str, Value)> {
    let f = |key: &str| p.get(key).cloned().unwrap_or(Value::Null);
    vec![
        ("Name", f("name")),
        ("URI", f("uri")),
        ("Weight", f("weight")),
        ("Flavor", f("flavor")),
        ("Options", f("options")),
    ]
}

fn flavor_fields(p: &Value) -> Vec<(&'static str, Value)> {
    let f = |key: &str| p.get(key).cloned().unwrap_or(Value::Null);
    vec![
        ("Name", f("name")),
        ("Pool list", f("pool_list")),
        ("Capabilities", f("capabilities")),
    ]
}

fn as_list(items: &[Value], fields: fn(&Value) -> Vec<(&'static str, Value)>) -> Output {
    let columns = fields(&Value::Null).into_iter().map(|(k, _)| k).collect();
    let rows = items
        .iter()
        .map(|i| fields(i).into_iter().map(|(_, v)| v).collect())
        .collect();
    Output::list(columns, rows)
}

pub(super) async fn pool(c: &Client, cmd: PoolCmd) -> Result<Output> {
    let path = |name: &str| format!("/v2/pools/{}", seg(name));
    match cmd {
        PoolCmd::Create {
            name,
            uri,
            weight,
            flavor,
            options,
        } => {
            let mut body = json!({"uri": uri, "weight": weight});
            if let Some(f) = flavor {
                body["flavor"] = json!(f);
            }
            if let Some(o) = options {
                body["options"] = Value::Object(parse_object("--options", &o)?);
            }
            c.send(Method::PUT, &path(&name), &[], Some(Body::Json(body)))
                .await?;
            let r = c.get(&path(&name), &[("detailed", "true".into())]).await?;
            Ok(Output::show(pool_fields(&r.body)))
        }
        PoolCmd::List {
            limit,
            marker,
            detailed,
        } => {
            let r = c.get("/v2/pools", &paging(limit, marker, detailed)).await?;
            let items = r.body["pools"].as_array().cloned().unwrap_or_default();
            Ok(as_list(&items, pool_fields))
        }
        PoolCmd::Show { name, detailed } => {
            let r = c.get(&path(&name), &paging(None, None, detailed)).await?;
            Ok(Output::show(pool_fields(&r.body)))
        }
        PoolCmd::Update {
            name,
            uri,
            weight,
            flavor,
            options,
        } => {
            let mut body = Map::new();
            if let Some(u) = uri {
                body.insert("uri".into(), json!(u));
            }
            if let Some(w) = weight {
                body.insert("weight".into(), json!(w));
            }
            if let Some(f) = flavor {
                body.insert("flavor".into(), json!(f));
            }
            if let Some(o) = options {
                body.insert(
                    "options".into(),
                    Value::Object(parse_object("--options", &o)?),
                );
            }
            if body.is_empty() {
                return Err(usage(
                    "give at least one of --uri, --weight, --flavor, --options",
                ));
            }
            let r = c
                .send(
                    Method::PATCH,
                    &path(&name),
                    &[],
                    Some(Body::Json(Value::Object(body))),
                )
                .await?;
            Ok(Output::show(pool_fields(&r.body)))
        }
        PoolCmd::Delete { name } => {
            c.send(Method::DELETE, &path(&name), &[], None).await?;
            Ok(Output::Nothing)
        }
    }
}

pub(super) async fn flavor(c: &Client, cmd: FlavorCmd) -> Result<Output> {
    let path = |name: &str| format!("/v2/flavors/{}", seg(name));
    match cmd {
        FlavorCmd::Create { name, pool_list } => {
            c.send(
                Method::PUT,
                &path(&name),
                &[],
                Some(Body::Json(json!({ "pool_list": pool_list }))),
            )
            .await?;
            let r = c.get(&path(&name), &[]).await?;
            Ok(Output::show(flavor_fields(&r.body)))
        }
        FlavorCmd::List {
            limit,
            marker,
            detailed,
        } => {
            let r = c
                .get("/v2/flavors", &paging(limit, marker, detailed))
                .await?;
            let items = r.body["flavors"].as_array().cloned().unwrap_or_default();
            Ok(as_list(&items, flavor_fields))
        }
        FlavorCmd::Show { name } => {
            let r = c.get(&path(&name), &[]).await?;
            Ok(Output::show(flavor_fields(&r.body)))
        }
        FlavorCmd::Update { name, pool_list } => {
            let r = c
                .send(
                    Method::PATCH,
                    &path(&name),
                    &[],
                    Some(Body::Json(json!({ "pool_list": pool_list }))),
                )
                .await?;
            Ok(Output::show(flavor_fields(&r.body)))
        }
        FlavorCmd::Delete { name } => {
            c.send(Method::DELETE, &path(&name), &[], None).await?;
            Ok(Output::Nothing)
        }
    }
}
