//! Long-poll wake-up latency: N clients wait with `GET .../messages?wait=S`, then one message is
//! posted per queue; reports the time from each POST to its waiters' responses.
//!
//! Usage: `cargo run --release --example longpoll -- [URL] [WAITERS] [QUEUES]`
//! (defaults: http://127.0.0.1:8888 1000 1). Raise `ulimit -n` first for many waiters.

// A measurement program: its figures are its output on standard output.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

const PROJECT: &str = "longpoll-bench";

fn client_id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or("http://127.0.0.1:8888".into());
    let waiters: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let queues: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1).max(1);
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(waiters + 16)
        .build()
        .unwrap();
    // Each queue's post time, set just before its POST is sent.
    let posted: Arc<Vec<Mutex<Option<Instant>>>> =
        Arc::new((0..queues).map(|_| Mutex::new(None)).collect());
    let mut tasks = Vec::with_capacity(waiters);
    for i in 0..waiters {
        let http = http.clone();
        let url = format!("{url}/v2/queues/lp-{run}-{}/messages?wait=20", i % queues);
        let posted = posted.clone();
        tasks.push(tokio::spawn(async move {
            let resp = http
                .get(&url)
                .header("Client-ID", client_id())
                .header("X-Project-ID", PROJECT)
                .send()
                .await
                .ok()?;
            let got = resp.bytes().await.ok()?;
            let done = Instant::now();
            if !got.windows(4).any(|w| w == b"body") {
                return None;
            }
            let at = (*posted[i % queues].lock().await)?;
            Some(done.duration_since(at).as_secs_f64() * 1000.0)
        }));
    }
    // Let every waiter reach the server and park.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let poster = client_id();
    for q in 0..queues {
        *posted[q].lock().await = Some(Instant::now());
        let r = http
            .post(format!("{url}/v2/queues/lp-{run}-{q}/messages"))
            .header("Client-ID", &poster)
            .header("X-Project-ID", PROJECT)
            .header("Content-Type", "application/json")
            .body(r#"{"messages": [{"body": {"wake": true}}]}"#)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status().as_u16(), 201);
    }
    let mut lat = Vec::new();
    let mut failed = 0;
    for t in tasks {
        match t.await.ok().flatten() {
            Some(ms) => lat.push(ms),
            None => failed += 1,
        }
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "waiters {waiters} on {queues} queue(s): woken {} (failed {failed}); wake-up latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
}
