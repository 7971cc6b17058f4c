//! One function per command: build the request, send it, shape the answer for printing.
//! This module holds what the commands share (path segments, JSON arguments, listing pages)
//! and dispatches to one module per group of commands.

mod claims;
mod messages;
mod pools;
mod queues;
mod shares;
mod subscriptions;

pub use claims::create_claim;
pub use messages::{claim_of, message_row, MESSAGE_COLUMNS};
pub use queues::metadata_patch;

use serde_json::{json, Map, Value};

use super::client::{usage, Client, Result};
use super::output::Output;
use super::Command;

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
        Command::Queue(cmd) => queues::queue(c, cmd).await,
        Command::Message(cmd) => messages::message(c, cmd).await,
        Command::Claim(cmd) => claims::claim(c, cmd).await,
        Command::Subscription(cmd) => subscriptions::subscription(c, cmd).await,
        Command::Topic(cmd) => queues::topic(c, cmd).await,
        Command::Pool(cmd) => pools::pool(c, cmd).await,
        Command::Flavor(cmd) => pools::flavor(c, cmd).await,
        Command::Ping => {
            c.get("/v2/ping", &[]).await?;
            Ok(Output::show([("Pingable", json!(true))]))
        }
        Command::Health => Ok(Output::Raw(c.get("/v2/health", &[]).await?.body)),
        Command::Homedoc => Ok(Output::Raw(c.get("/v2/", &[]).await?.body)),
        Command::Completion { .. } => Ok(Output::Nothing),
    }
}

// ----- listing pages -----------------------------------------------------------------------

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
