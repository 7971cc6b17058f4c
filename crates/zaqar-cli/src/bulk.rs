//! Posting many messages (`--count`, a large file, standard input) and draining a queue, with a
//! progress bar on standard error when it is a terminal.

use std::io::{IsTerminal, Read};
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{json, Value};

use super::client::{usage, Body, Client, Result};
use super::commands::{create_claim, parse_json, seg, Kind};
use super::output::Output;
use super::PostInput;

fn progress(total: Option<u64>, enabled: bool) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    match total {
        Some(n) => {
            let pb = ProgressBar::new(n);
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:40.cyan/blue} {pos}/{len} messages  {per_sec}  eta {eta}",
            ) {
                pb.set_style(style);
            }
            pb
        }
        None => {
            let pb = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {pos} messages  {per_sec}") {
                pb.set_style(style);
            }
            pb
        }
    }
}

/// A message object from a value: an object with a `body` is a message; anything else is a
/// body. `ttl` and `delay` fill in what the message does not set.
pub fn to_message(v: Value, ttl: Option<i64>, delay: Option<i64>) -> Value {
    let mut m = match v {
        Value::Object(o) if o.contains_key("body") => Value::Object(o),
        other => json!({ "body": other }),
    };
    if let (Some(t), None) = (ttl, m.get("ttl")) {
        m["ttl"] = json!(t);
    }
    if let (Some(d), None) = (delay, m.get("delay")) {
        m["delay"] = json!(d);
    }
    m
}

/// The messages of a JSON document (`[...]`, `{"messages": [...]}` or one message) or, when the
/// text is not one JSON document, of JSON lines.
pub fn parse_messages(text: &str) -> Result<Vec<Value>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(Value::Object(mut o)) if o.contains_key("messages") => match o.remove("messages") {
            Some(Value::Array(items)) => Ok(items),
            _ => Err(usage("\"messages\" must be a list")),
        },
        Ok(other) => Ok(vec![other]),
        Err(_) => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map_err(|e| usage(format!("line {}: not valid JSON: {e}", i + 1)))
            })
            .collect(),
    }
}

async fn post_batch(c: &Client, path: &str, batch: Vec<Value>) -> Result<Vec<Value>> {
    let r = c
        .send(
            Method::POST,
            path,
            &[],
            Some(Body::Json(json!({ "messages": batch }))),
        )
        .await?;
    Ok(r.body
        .get("resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

fn id_of(resource: &Value) -> Value {
    resource
        .as_str()
        .and_then(|r| r.rsplit('/').next())
        .map(|id| json!(id))
        .unwrap_or(Value::Null)
}

/// Warns when messages ask for a delay that the server will ignore: the API delays messages
/// only in a delayed queue (one whose `_default_message_delay` is not 0).
async fn warn_if_not_delayed(c: &Client, kind: Kind, name: &str) {
    let path = format!("/v2/{}/{}", collection(kind), seg(name));
    let Ok(r) = c.get(&path, &[]).await else {
        return;
    };
    let default_delay = r
        .body
        .get("_default_message_delay")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if default_delay == 0 {
        eprintln!(
            "zaqar: warning: {name} is not a delayed queue (_default_message_delay is 0): the \
             server ignores the delay of its messages; set _default_message_delay on it to \
             delay them"
        );
    }
}

/// Whether any message sets a delay.
fn any_delay(messages: &[Value]) -> bool {
    messages
        .iter()
        .any(|m| m.get("delay").is_some_and(|d| d.as_i64() != Some(0)))
}

/// `message post` / `topic post`.
pub async fn post(c: &Client, kind: Kind, name: &str, input: PostInput) -> Result<Output> {
    let path = format!("/v2/{}/{}/messages", collection(kind), seg(name));
    let (ttl, delay) = (input.ttl, input.delay);
    if delay.is_some_and(|d| d != 0) {
        warn_if_not_delayed(c, kind, name).await;
    }
    // One request, ids printed: --messages, or a single --body.
    if let Some(text) = &input.messages {
        let messages: Vec<Value> = parse_messages(text)?
            .into_iter()
            .map(|m| to_message(m, ttl, delay))
            .collect();
        if messages.is_empty() {
            return Err(usage("--messages holds no message"));
        }
        if delay.is_none() && any_delay(&messages) {
            warn_if_not_delayed(c, kind, name).await;
        }
        let ids = post_batch(c, &path, messages).await?;
        return Ok(Output::list(
            vec!["ID"],
            ids.iter().map(|r| vec![id_of(r)]).collect(),
        ));
    }
    if input.file.is_none() && input.count.is_none() {
        if let Some(body) = &input.body {
            // --body is the body, even when it is an object with a "body" key of its own.
            let m = to_message(json!({ "body": parse_json("--body", body)? }), ttl, delay);
            let ids = post_batch(c, &path, vec![m]).await?;
            return Ok(Output::list(
                vec!["ID"],
                ids.iter().map(|r| vec![id_of(r)]).collect(),
            ));
        }
    }
    let batch = input.batch.max(1);
    let parallel = input.parallel.max(1);
    let batches: Box<dyn Iterator<Item = Vec<Value>> + Send> = match (&input.file, input.count) {
        (Some(file), _) => {
            let text = if file.as_os_str() == "-" {
                read_stdin()?
            } else {
                std::fs::read_to_string(file)
                    .map_err(|e| usage(format!("cannot read {}: {e}", file.display())))?
            };
            let messages: Vec<Value> = parse_messages(&text)?
                .into_iter()
                .map(|m| to_message(m, ttl, delay))
                .collect();
            let chunks: Vec<Vec<Value>> = messages.chunks(batch).map(<[Value]>::to_vec).collect();
            Box::new(chunks.into_iter())
        }
        (None, Some(count)) => {
            let body = match &input.body {
                Some(b) => Some(parse_json("--body", b)?),
                None => None,
            };
            let batch = batch as u64;
            Box::new((0..count.div_ceil(batch)).map(move |i| {
                (i * batch..((i + 1) * batch).min(count))
                    .map(|n| {
                        let b = body.clone().unwrap_or_else(|| json!({ "n": n }));
                        to_message(json!({ "body": b }), ttl, delay)
                    })
                    .collect()
            }))
        }
        (None, None) => {
            if std::io::stdin().is_terminal() {
                return Err(usage(
                    "give --messages, --body, --count or --file (or pipe messages to stdin)",
                ));
            }
            let messages: Vec<Value> = parse_messages(&read_stdin()?)?
                .into_iter()
                .map(|m| to_message(m, ttl, delay))
                .collect();
            let chunks: Vec<Vec<Value>> = messages.chunks(batch).map(<[Value]>::to_vec).collect();
            Box::new(chunks.into_iter())
        }
    };
    let total = match (&input.file, input.count) {
        (None, Some(n)) => Some(n),
        _ => None,
    };
    let pb = progress(total, !input.no_progress);
    let started = Instant::now();
    let mut posted = 0u64;
    let mut results = stream::iter(batches)
        .map(|b| post_batch(c, &path, b))
        .buffer_unordered(parallel);
    while let Some(r) = results.next().await {
        match r {
            Ok(ids) => {
                posted += ids.len() as u64;
                pb.inc(ids.len() as u64);
            }
            Err(e) => {
                pb.abandon();
                eprintln!("zaqar: {posted} messages were posted before this error");
                return Err(e);
            }
        }
    }
    pb.finish_and_clear();
    Ok(summary("Posted", posted, started))
}

fn summary(what: &'static str, n: u64, started: Instant) -> Output {
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 { n as f64 / secs } else { 0.0 };
    Output::show([
        (what, json!(n)),
        ("Seconds", json!((secs * 1000.0).round() / 1000.0)),
        ("Messages per second", json!(rate.round())),
    ])
}

fn collection(kind: Kind) -> &'static str {
    match kind {
        Kind::Queue => "queues",
        Kind::Topic => "topics",
    }
}

fn read_stdin() -> Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| usage(format!("cannot read standard input: {e}")))?;
    Ok(s)
}

/// `message drain`: claim, delete what was claimed, repeat until nothing can be claimed.
pub async fn drain(
    c: &Client,
    queue: &str,
    batch: u32,
    max: Option<u64>,
    ttl: i64,
    show_progress: bool,
) -> Result<Output> {
    let stats = c
        .get(&format!("/v2/queues/{}/stats", seg(queue)), &[])
        .await?;
    let free = stats.body.pointer("/messages/free").and_then(Value::as_u64);
    let pb = progress(free.map(|f| max.map_or(f, |m| m.min(f))), show_progress);
    let started = Instant::now();
    let mut drained = 0u64;
    let batch = batch.max(1);
    let path = format!("/v2/queues/{}/messages", seg(queue));
    loop {
        let want = match max {
            Some(m) if drained >= m => break,
            Some(m) => (m - drained).min(u64::from(batch)) as u32,
            None => batch,
        };
        let Some((claim_id, messages)) = create_claim(c, queue, ttl, 60, want).await? else {
            break;
        };
        let ids: Vec<String> = messages
            .iter()
            .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        if ids.is_empty() {
            break;
        }
        let q = [("ids", ids.join(",")), ("claim_ids", claim_id)];
        if let Err(e) = c.send(Method::DELETE, &path, &q, None).await {
            pb.abandon();
            eprintln!("zaqar: {drained} messages were drained before this error");
            return Err(e);
        }
        drained += ids.len() as u64;
        pb.inc(ids.len() as u64);
    }
    pb.finish_and_clear();
    Ok(summary("Drained", drained, started))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_sources() {
        assert_eq!(
            parse_messages(r#"{"messages": [{"body": 1}]}"#).unwrap(),
            vec![json!({"body": 1})]
        );
        assert_eq!(parse_messages("[1, 2]").unwrap().len(), 2);
        let lines = "{\"body\": {\"a\": 1}, \"ttl\": 90}\n\n\"text\"\n{\"x\": 2}\n";
        let m: Vec<Value> = parse_messages(lines)
            .unwrap()
            .into_iter()
            .map(|v| to_message(v, Some(60), None))
            .collect();
        assert_eq!(
            m,
            vec![
                json!({"body": {"a": 1}, "ttl": 90}),
                json!({"body": "text", "ttl": 60}),
                json!({"body": {"x": 2}, "ttl": 60}),
            ]
        );
        assert!(parse_messages("{\"a\": 1}\nnot json\n").is_err());
    }
}
