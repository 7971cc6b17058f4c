//! Push latency: WebSocket connections subscribe to a queue; messages are posted over HTTP one
//! at a time; reports the time from sending each POST to each subscriber receiving the
//! notification frame.
//!
//! Usage: `cargo run --release --example ws_push -- [HTTP_URL] [WS_URL] [SUBSCRIBERS] [MESSAGES]`
//! (defaults: http://127.0.0.1:8888 ws://127.0.0.1:9000 10 200).

// A measurement program: its figures are its output on standard output.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let http_url = args
        .get(1)
        .cloned()
        .unwrap_or("http://127.0.0.1:8888".into());
    let ws_url = args.get(2).cloned().unwrap_or("ws://127.0.0.1:9000".into());
    let subscribers: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(10);
    let messages: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(200);
    let queue = format!("push-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let headers =
        json!({"Client-ID": uuid::Uuid::new_v4().to_string(), "X-Project-ID": "push-bench"});

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, u64, Instant)>();
    for i in 0..subscribers {
        let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .expect("connect");
        let req = json!({"action": "subscription_create", "headers": headers,
                         "body": {"queue_name": queue, "ttl": 3600}});
        ws.send(Message::text(req.to_string())).await.unwrap();
        let reply = ws.next().await.unwrap().unwrap();
        let reply: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
        assert_eq!(reply["headers"]["status"], 201, "{reply}");
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m {
                    let v: Value = serde_json::from_str(&t).unwrap_or_default();
                    if let Some(seq) = v["body"]["seq"].as_u64() {
                        let _ = tx.send((i, seq, Instant::now()));
                    }
                }
            }
        });
    }
    let http = reqwest::Client::new();
    let mut lat = Vec::with_capacity(subscribers * messages);
    for seq in 0..messages as u64 {
        let sent = Instant::now();
        let r = http
            .post(format!("{http_url}/v2/queues/{queue}/messages"))
            .header("Client-ID", uuid::Uuid::new_v4().to_string())
            .header("X-Project-ID", "push-bench")
            .json(&json!({"messages": [{"body": {"seq": seq}}]}))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status().as_u16(), 201);
        let mut got = 0;
        while got < subscribers {
            let (_, s, at) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("notification within 10 s")
                .unwrap();
            if s == seq {
                lat.push(at.duration_since(sent).as_secs_f64() * 1000.0);
                got += 1;
            }
        }
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{subscribers} WebSocket subscribers x {messages} messages: POST -> frame latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99),
        lat.last().unwrap()
    );
}
