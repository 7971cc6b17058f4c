//! One function per command: build the request, send it, shape the answer for printing.

use reqwest::Method;
use serde_json::{json, Map, Value};

use super::bulk;
use super::client::{usage, Body, Client, Result};
use super::output::Output;
use super::{
    ClaimCmd, Command, FlavorCmd, ListOpts, MessageCmd, PoolCmd, QueueCmd, SubscriptionCmd,
    TopicCmd,
};

/// Every byte but `A-Za-z0-9-._~` is percent-encoded in a path segment.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one path segment (a queue, topic, pool or flavor name).
pub fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// Parses a JSON argument.
pub fn parse_json(what: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| usage(format!("{what} is not valid JSON: {e}")))
}

fn parse_object(what: &str, text: &str) -> Result<Map<String, Value>> {
    match parse_json(what, text)? {
        Value::Object(o) => Ok(o),
        _ => Err(usage(format!("{what} must be a JSON object"))),
    }
}

/// A queue or a topic: the two share most of their API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Queue,
    Topic,
}

impl Kind {
    fn collection(self) -> &'static str {
        match self {
            Kind::Queue => "queues",
            Kind::Topic => "topics",
        }
    }

    fn path(self, name: &str) -> String {
        format!("/v2/{}/{}", self.collection(), seg(name))
    }
}

pub async fn dispatch(c: &Client, command: Command) -> Result<Output> {
    match command {
        Command::Queue(cmd) => queue(c, cmd).await,
        Command::Message(cmd) => message(c, cmd).await,
        Command::Claim(cmd) => claim(c, cmd).await,
        Command::Subscription(cmd) => subscription(c, cmd).await,
        Command::Topic(cmd) => topic(c, cmd).await,
        Command::Pool(cmd) => pool(c, cmd).await,
        Command::Flavor(cmd) => flavor(c, cmd).await,
        Command::Ping => {
            c.get("/v2/ping", &[]).await?;
            Ok(Output::show([("Pingable", json!(true))]))
        }
        Command::Health => Ok(Output::Raw(c.get("/v2/health", &[]).await?.body)),
        Command::Homedoc => Ok(Output::Raw(c.get("/v2/", &[]).await?.body)),
        Command::Completion { .. } => Ok(Output::Nothing),
    }
}

// ----- queues and topics ------------------------------------------------------------------

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

async fn list(c: &Client, kind: Kind, o: ListOpts) -> Result<Output> {
    let mut q = Vec::new();
    if let Some(l) = o.limit {
        q.push(("limit", l.to_string()));
    }
    if let Some(m) = o.marker {
        q.push(("marker", m));
    }
    if o.detailed {
        q.push(("detailed", "true".into()));
    }
    if o.with_count && kind == Kind::Queue {
        q.push(("with_count", "true".into()));
    }
    if let Some(n) = o.name {
        q.push(("name", n));
    }
    let r = c.get(&format!("/v2/{}", kind.collection()), &q).await?;
    let items = r
        .body
        .get(kind.collection())
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
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
    if let Some(n) = r.body.get("count") {
        extra.push(("Count", n.clone()));
    }
    if let Some(next) = next_marker(&r.body).filter(|_| rows.len() >= page(o.limit)) {
        extra.push(("Next marker", json!(next)));
    }
    Ok(Output::List {
        columns,
        rows,
        extra,
    })
}

/// The page size of a listing: `limit`, or the server's default of 10.
fn page(limit: Option<u32>) -> usize {
    limit.unwrap_or(10) as usize
}

/// The `marker` of a listing's `next` link, when the page was not empty.
fn next_marker(body: &Value) -> Option<String> {
    let href = body
        .get("links")?
        .as_array()?
        .iter()
        .find(|l| l.get("rel").and_then(Value::as_str) == Some("next"))?
        .get("href")?
        .as_str()?;
    let query = href.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "marker")
        .map(|(_, v)| v.into_owned())
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

async fn queue(c: &Client, cmd: QueueCmd) -> Result<Output> {
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
        } => {
            let mut body = Map::new();
            if !paths.is_empty() {
                body.insert("paths".into(), json!(paths));
            }
            if !methods.is_empty() {
                body.insert("methods".into(), json!(methods));
            }
            let expires = match (ttl_seconds, expires) {
                (Some(t), _) => Some(
                    (chrono::Utc::now() + chrono::Duration::seconds(t))
                        .format("%Y-%m-%dT%H:%M:%S")
                        .to_string(),
                ),
                (None, e) => e,
            };
            if let Some(e) = expires {
                body.insert("expires".into(), json!(e));
            }
            let r = c
                .send(
                    Method::POST,
                    &format!("{}/share", k.path(&name)),
                    &[],
                    Some(Body::Json(Value::Object(body))),
                )
                .await?;
            let f = |key: &str| r.body.get(key).cloned().unwrap_or(Value::Null);
            Ok(Output::show([
                ("Paths", f("paths")),
                ("Methods", f("methods")),
                ("Expires", f("expires")),
                ("Project", f("project")),
                ("Signature", f("signature")),
            ]))
        }
    }
}

async fn topic(c: &Client, cmd: TopicCmd) -> Result<Output> {
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
        } => list_messages(c, k, &name, limit, marker, echo, false, false).await,
    }
}

// ----- messages -----------------------------------------------------------------------------

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

// One argument per option of `message list`, passed straight from the command line.
#[allow(clippy::too_many_arguments)]
async fn list_messages(
    c: &Client,
    kind: Kind,
    queue: &str,
    limit: Option<u32>,
    marker: Option<String>,
    echo: bool,
    include_claimed: bool,
    include_delayed: bool,
) -> Result<Output> {
    let mut q = Vec::new();
    if let Some(l) = limit {
        q.push(("limit", l.to_string()));
    }
    if let Some(m) = marker {
        q.push(("marker", m));
    }
    for (flag, name) in [
        (echo, "echo"),
        (include_claimed, "include_claimed"),
        (include_delayed, "include_delayed"),
    ] {
        if flag {
            q.push((name, "true".into()));
        }
    }
    let r = c.get(&format!("{}/messages", kind.path(queue)), &q).await?;
    let rows = message_rows(r.body.get("messages"));
    let mut extra = Vec::new();
    // Zaqar links a next page after every non-empty page; shown only after a full one.
    if let Some(next) = next_marker(&r.body).filter(|_| rows.len() >= page(limit)) {
        extra.push(("Next marker", json!(next)));
    }
    Ok(Output::List {
        columns: MESSAGE_COLUMNS.to_vec(),
        rows,
        extra,
    })
}

async fn message(c: &Client, cmd: MessageCmd) -> Result<Output> {
    let k = Kind::Queue;
    match cmd {
        MessageCmd::Post { queue, input } => bulk::post(c, k, &queue, input).await,
        MessageCmd::List {
            queue,
            limit,
            marker,
            echo,
            include_claimed,
            include_delayed,
        } => {
            list_messages(
                c,
                k,
                &queue,
                limit,
                marker,
                echo,
                include_claimed,
                include_delayed,
            )
            .await
        }
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

// ----- claims -------------------------------------------------------------------------------

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

async fn claim(c: &Client, cmd: ClaimCmd) -> Result<Output> {
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

// ----- subscriptions ------------------------------------------------------------------------

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

async fn subscription(c: &Client, cmd: SubscriptionCmd) -> Result<Output> {
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

// ----- pools and flavors --------------------------------------------------------------------

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

async fn pool(c: &Client, cmd: PoolCmd) -> Result<Output> {
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

async fn flavor(c: &Client, cmd: FlavorCmd) -> Result<Output> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
        let m = json!({"id": "1", "href": "/v2/queues/q/messages/1?claim_id=abc"});
        assert_eq!(claim_of(&m), json!("abc"));
        assert_eq!(claim_of(&json!({"id": "1"})), Value::Null);
        let body = json!({"links": [{"rel": "next", "href": "/v2/queues?marker=q3&limit=2"}]});
        assert_eq!(next_marker(&body).as_deref(), Some("q3"));
        let cur = json!({"a": 1, "b": 2, "_default_message_ttl": 3600});
        let new = json!({"a": 5, "c": 3});
        let p = metadata_patch(cur.as_object().unwrap(), new.as_object().unwrap());
        assert_eq!(
            p,
            json!([
                {"op": "replace", "path": "/metadata/a", "value": 5},
                {"op": "add", "path": "/metadata/c", "value": 3},
                {"op": "remove", "path": "/metadata/b"}
            ])
        );
    }
}
