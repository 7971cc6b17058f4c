//! Two real `zaqar-server` processes sharing one PostgreSQL schema (`ZAQAR_TEST_POSTGRES_URL`):
//! consumers on both nodes never receive the same message under one live claim, and a
//! long-poll on one node returns as soon as the other node posts. Skipped (with a notice)
//! without the variable, unless `ZAQAR_TEST_REQUIRE_BACKENDS=1`.

use zaqar_testkit::postgres_support;
use zaqar_testkit::webhook_support;

use std::collections::HashSet;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use postgres_support::{backend, Schemas};

const CLIENT: &str = "3381af92-2b9e-11e3-b191-71861300734c";
const PROJECT: &str = "multi-node";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Node {
    child: Child,
    base: String,
}

impl Drop for Node {
    /// Never leave a server behind, even when an assertion fails.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// The child is reaped by `Node::drop`, which clippy cannot see through the struct.
#[allow(clippy::zombie_processes)]
async fn start(url: &str, schema: &str) -> Node {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_zaqar-server"))
        .args(["--port", &port.to_string()])
        .args(["--set", "drivers.message_store=postgresql"])
        .arg("--set")
        .arg(format!("drivers:message_store:postgresql.uri={url}"))
        .arg("--set")
        .arg(format!("drivers:message_store:postgresql.schema={schema}"))
        .args(["--set", "drivers:transport:websocket.port=0"])
        .env("ZAQAR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn zaqar-server");
    let mut node = Node {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let addr = format!("127.0.0.1:{port}");
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            return node;
        }
        if let Ok(Some(status)) = node.child.try_wait() {
            panic!("zaqar-server exited at start-up: {status}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("zaqar-server did not start");
}

/// One HTTP/1.1 request with the test's Client-ID and project (hyper directly, so the test
/// needs no TLS set-up of an HTTP client library). Returns the status and the JSON body (null
/// when empty).
async fn call(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    use http_body_util::{BodyExt, Full};
    let uri: hyper::Uri = url.parse().unwrap();
    let authority = uri.authority().unwrap().to_string();
    let stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let request = hyper::Request::builder()
        .method(method)
        .uri(uri.path_and_query().unwrap().as_str())
        .header("Host", &authority)
        .header("Client-ID", CLIENT)
        .header("X-Project-ID", PROJECT)
        .header("Content-Type", "application/json")
        .body(Full::new(bytes::Bytes::from(payload)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, json)
}

async fn post(base: &str, queue: &str, messages: Value) {
    let (status, body) = call(
        "POST",
        &format!("{base}/v2/queues/{queue}/messages"),
        Some(json!({ "messages": messages })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

/// Claims until the queue is empty, deleting each claimed message with its claim; returns the
/// ids received.
async fn consume(base: String, queue: &'static str) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let (status, v) = call(
            "POST",
            &format!("{base}/v2/queues/{queue}/claims?limit=5"),
            Some(json!({"ttl": 300, "grace": 60})),
        )
        .await;
        if status == 204 {
            return got;
        }
        assert_eq!(status, 201, "{v}");
        for m in v["messages"].as_array().unwrap() {
            let href = m["href"].as_str().unwrap();
            let id = href.split('?').next().unwrap().rsplit('/').next().unwrap();
            got.push(id.to_string());
            let (status, body) = call("DELETE", &format!("{base}{href}"), None).await;
            assert_eq!(status, 204, "delete with the claim id: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_database() {
    let Some(url) = backend() else { return };
    let schemas = Schemas::new(url.clone());
    let schema = schemas.fresh();
    let a = start(&url, &schema).await;
    let b = start(&url, &schema).await;

    // Consumers on both nodes never receive the same message.
    for i in 0..30 {
        let batch: Vec<Value> = (0..10)
            .map(|j| json!({"body": {"n": i * 10 + j}, "ttl": 600}))
            .collect();
        let node = if i % 2 == 0 { &a.base } else { &b.base };
        post(node, "work", json!(batch)).await;
    }
    let mut tasks = Vec::new();
    for i in 0..8 {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        tasks.push(tokio::spawn(consume(base, "work")));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for id in t.await.unwrap() {
            assert!(seen.insert(id), "two consumers received the same message");
        }
    }
    assert_eq!(seen.len(), 300, "every message was received once");

    // A long-poll on A returns promptly when B posts.
    let poll = {
        let base = a.base.clone();
        tokio::spawn(async move {
            call(
                "GET",
                &format!("{base}/v2/queues/lp/messages?wait=10&echo=true"),
                None,
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    let posted = Instant::now();
    post(&b.base, "lp", json!([{"body": "wake up", "ttl": 600}])).await;
    let (status, body) = poll.await.unwrap();
    let latency = posted.elapsed();
    eprintln!("long-poll on A returned {latency:?} after the post on B");
    assert_eq!(status, 200, "the waiting GET returns the message");
    assert_eq!(body["messages"][0]["body"], "wake up");
    assert!(
        latency < Duration::from_secs(3),
        "woken {latency:?} after the post on the other node (wait was 10 s)"
    );
    drop(a);
    drop(b);
}

/// Webhook notifications posted through two nodes sharing one schema reach each subscriber
/// exactly once (the outbox rows are leased with FOR UPDATE SKIP LOCKED by both nodes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_through_two_nodes_arrive_once_per_subscriber() {
    let Some(url) = backend() else { return };
    let schemas = Schemas::new(url.clone());
    let schema = schemas.fresh();
    let a = start(&url, &schema).await;
    let b = start(&url, &schema).await;
    webhook_support::each_notification_arrives_once_per_subscriber(&a.base, &b.base, PROJECT).await;
}
