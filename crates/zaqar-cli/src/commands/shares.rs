//! Pre-signed URLs of a queue (`zaqar queue signed-url`, alias `share`): `POST .../share`
//! with the paths, methods and expiry the URL is good for.

use reqwest::Method;
use serde_json::{json, Map, Value};

use super::Kind;
use crate::client::{Body, Client, Result};
use crate::output::Output;

/// Asks the server to sign a URL of queue `name`; the expiry is `ttl_seconds` from now when
/// given, else `expires` as the user wrote it, else the server's default.
pub(super) async fn signed_url(
    c: &Client,
    name: &str,
    paths: Vec<String>,
    methods: Vec<String>,
    ttl_seconds: Option<i64>,
    expires: Option<String>,
) -> Result<Output> {
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
            &format!("{}/share", Kind::Queue.path(name)),
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
