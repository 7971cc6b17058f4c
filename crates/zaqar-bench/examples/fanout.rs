//! Topic fan-out to webhook subscribers, measured end to end against a running server.
//!
//! 1. A webhook receiver on loopback (in this process) records every notification.
//! 2. `SUBSCRIBERS` webhook subscriptions on one topic point at it; `MESSAGES` messages are
//!    posted to the topic one at a time (each carries its send time); reports notifications
//!    delivered per second and the latency from sending the POST to the webhook receiving it.
//! 3. Producer throughput: `CONNECTIONS` producers post single messages for `SECS` seconds to
//!    a queue without subscribers, then to a queue with `SUBSCRIBERS` webhook subscribers
//!    (alternating, twice each); reports both rates and their ratio.
//!
//! Usage: `cargo run --release --example fanout -- [HTTP_URL] [SUBSCRIBERS] [MESSAGES]
//! [CONNECTIONS] [SECS]` (defaults: http://127.0.0.1:8888 100 200 64 10).

// A measurement program: its figures are its output on standard output.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Microseconds since the process started (sent in bodies, compared on receipt).
fn now_us(origin: Instant) -> u64 {
    origin.elapsed().as_micros() as u64
}

struct Receiver {
    url: String,
    delivered: Arc<AtomicU64>,
    latencies: Arc<std::sync::Mutex<Vec<f64>>>,
}

async fn receiver(origin: Instant) -> Receiver {
    let delivered = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (d, l) = (delivered.clone(), latencies.clone());
    let app = axum::Router::new().route(
        "/hook/{n}",
        axum::routing::post(move |body: axum::body::Bytes| {
            let (d, l) = (d.clone(), l.clone());
            async move {
                d.fetch_add(1, Ordering::Relaxed);
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    if let Some(sent) = v["body"]["sent_us"].as_u64() {
                        let ms = (now_us(origin).saturating_sub(sent)) as f64 / 1000.0;
                        l.lock().unwrap().push(ms);
                    }
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver {
        url: format!("http://{addr}/hook"),
        delivered,
        latencies,
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
    project: String,
}

impl Api {
    fn req(&self, m: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(m, format!("{}{path}", self.base))
            .header("Client-ID", uuid::Uuid::new_v4().to_string())
            .header("X-Project-ID", &self.project)
    }

    async fn subscribe(&self, source: &str, hook: &str, n: usize) {
        for i in 0..n {
            let r = self
                .req(
                    reqwest::Method::POST,
                    &format!("/v2/{source}/subscriptions"),
                )
                .json(&json!({"subscriber": format!("{hook}/{i}"), "ttl": 3600}))
                .send()
                .await
                .expect("subscribe");
            assert_eq!(r.status().as_u16(), 201, "subscription {i}");
        }
    }
}

/// Posts single messages with `conns` concurrent producers for `secs`; messages per second.
async fn produce(api: &Arc<Api>, path: &str, conns: usize, secs: f64) -> f64 {
    let stop = Instant::now() + Duration::from_secs_f64(secs);
    let posted = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (api, posted, path) = (api.clone(), posted.clone(), path.to_string());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < stop {
                let r = api
                    .req(reqwest::Method::POST, &path)
                    .json(&json!({"messages": [{"body": {"k": "v"}}]}))
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status().as_u16() == 201) {
                    posted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    posted.load(Ordering::Relaxed) as f64 / secs
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let base = args
        .get(1)
        .cloned()
        .unwrap_or("http://127.0.0.1:8888".into());
    let subscribers: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100);
    let messages: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(200);
    let conns: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(64);
    let secs: f64 = args.get(5).and_then(|a| a.parse().ok()).unwrap_or(10.0);
    let origin = Instant::now();
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let api = Arc::new(Api {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(conns)
            .build()
            .unwrap(),
        base: base.trim_end_matches('/').to_string(),
        project: format!("fanout-{tag}"),
    });
    let rx = receiver(origin).await;

    // 2. Fan-out latency and delivery rate.
    let topic = format!("topic-{tag}");
    api.subscribe(&format!("topics/{topic}"), &rx.url, subscribers)
        .await;
    let expected = (subscribers * messages) as u64;
    let start = Instant::now();
    for seq in 0..messages {
        let r = api
            .req(
                reqwest::Method::POST,
                &format!("/v2/topics/{topic}/messages"),
            )
            .json(&json!({"messages": [{"body": {"seq": seq, "sent_us": now_us(origin)}}]}))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status().as_u16(), 201);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while rx.delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = start.elapsed().as_secs_f64();
    let got = rx.delivered.load(Ordering::Relaxed);
    let mut lat = std::mem::take(&mut *rx.latencies.lock().unwrap());
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "fan-out: 1 topic x {subscribers} webhook subscribers, {messages} messages posted one at a time: \
         {got}/{expected} notifications in {took:.2} s = {:.0} notifications/s; \
         POST -> webhook latency ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}",
        got as f64 / took,
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );

    // 3. Producer throughput without and with subscribers on the queue.
    let plain = format!("/v2/queues/plain-{tag}/messages");
    let subscribed_queue = format!("subscribed-{tag}");
    api.subscribe(&format!("queues/{subscribed_queue}"), &rx.url, subscribers)
        .await;
    let subscribed = format!("/v2/queues/{subscribed_queue}/messages");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        a.push(produce(&api, &plain, conns, secs).await);
        b.push(produce(&api, &subscribed, conns, secs).await);
    }
    let (a, b) = (
        a.iter().sum::<f64>() / a.len() as f64,
        b.iter().sum::<f64>() / b.len() as f64,
    );
    println!(
        "producers ({conns} connections, {secs} s runs, alternating, mean of 2): \
         no subscribers {a:.0} msg/s, {subscribers} webhook subscribers {b:.0} msg/s, ratio {:.2}",
        b / a
    );
}
