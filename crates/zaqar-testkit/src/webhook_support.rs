//! Shared by the multi-node notification tests: a webhook receiver (an axum server on an
//! ephemeral port) recording which subscriber URL got which message, and the exactly-once
//! check over two `zaqar-server` processes sharing one backend.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use serde_json::{json, Value};

pub const CLIENT: &str = "3381af92-2b9e-11e3-b191-71861300734c";

/// Every delivery: (request path, message id).
#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<(String, String)>>>,
}

impl Receiver {
    /// Starts the receiver; returns it and its base URL.
    pub async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let app = axum::Router::new().fallback(record).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (r, url)
    }
}

async fn record(State(r): State<Receiver>, uri: Uri, body: String) -> StatusCode {
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let id = v["message_id"].as_str().unwrap_or("?").to_string();
    r.got.lock().unwrap().push((uri.path().to_string(), id));
    StatusCode::OK
}

fn request(
    http: &reqwest::Client,
    m: reqwest::Method,
    url: String,
    project: &str,
) -> reqwest::RequestBuilder {
    http.request(m, url)
        .header("Client-ID", CLIENT)
        .header("X-Project-ID", project)
        .header("Content-Type", "application/json")
}

/// Two subscribers on a queue (created through node A), 20 posts of 3 messages alternating
/// between the nodes `a` and `b` (both running their delivery workers): every message reaches
/// every subscriber exactly once.
pub async fn each_notification_arrives_once_per_subscriber(a: &str, b: &str, project: &str) {
    let http = reqwest::Client::new();
    let (rx, hook) = Receiver::start().await;
    let paths = ["/one", "/two"];
    for p in paths {
        let r = request(
            &http,
            reqwest::Method::POST,
            format!("{a}/v2/queues/notified/subscriptions"),
            project,
        )
        .json(&json!({"subscriber": format!("{hook}{p}"), "ttl": 3600, "options": {}}))
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    }
    let mut want = HashSet::new();
    for i in 0..20 {
        let node = if i % 2 == 0 { a } else { b };
        let msgs: Vec<Value> = (0..3)
            .map(|j| json!({"body": {"n": i * 3 + j}, "ttl": 600}))
            .collect();
        let r = request(
            &http,
            reqwest::Method::POST,
            format!("{node}/v2/queues/notified/messages"),
            project,
        )
        .json(&json!({ "messages": msgs }))
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        for href in v["resources"].as_array().unwrap() {
            let id = href.as_str().unwrap().rsplit('/').next().unwrap();
            for p in paths {
                want.insert((p.to_string(), id.to_string()));
            }
        }
    }
    assert_eq!(want.len(), 120);
    let deadline = Instant::now() + Duration::from_secs(60);
    while rx.got.lock().unwrap().len() < want.len() {
        assert!(
            Instant::now() < deadline,
            "only {} of {} deliveries arrived",
            rx.got.lock().unwrap().len(),
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both nodes poll the outbox every second: give a duplicate time to show up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = rx.got.lock().unwrap().clone();
    let mut counts: HashMap<&(String, String), usize> = HashMap::new();
    for d in &got {
        *counts.entry(d).or_default() += 1;
    }
    let dups: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "delivered more than once: {dups:?}");
    let got: HashSet<(String, String)> = got.into_iter().collect();
    assert_eq!(got, want, "every message reached every subscriber");
}
