//! Load tool for the WebSocket transport (and the HTTP equivalent, for comparison).
//!
//! ```text
//! ws_load idle URL CONNECTIONS [HOLD_SECS] [SERVER_PID]
//!     Opens CONNECTIONS idle WebSocket connections (answering the server's pings), holds them
//!     HOLD_SECS (default 10), then checks each still answers `ping_node`. With SERVER_PID, it
//!     reports the server's resident memory before, with the connections open, and per
//!     connection.
//! ws_load post URL CONNECTIONS SECS [WINDOW] [MESSAGES_PER_REQUEST] [BODY_BYTES]
//!     `message_post` over CONNECTIONS WebSocket connections for SECS seconds, keeping WINDOW
//!     requests outstanding per connection (default 1). Reports requests and messages per second.
//! ws_load http-post URL CONNECTIONS SECS [MESSAGES_PER_REQUEST] [BODY_BYTES]
//!     The same over HTTP/1.1 keep-alive connections (one request at a time per connection).
//! ```
//! `scripts/ws_bench.sh` builds the server and this tool in release mode, raises `ulimit -n` and
//! runs the measurements. Only loopback addresses should be given.

// A measurement program: its figures are its output on standard output.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

const PROJECT: &str = "ws-load";

fn usage() -> ! {
    eprintln!(
        "usage:\n  ws_load idle URL CONNECTIONS [HOLD_SECS] [SERVER_PID]\n  \
         ws_load post URL CONNECTIONS SECS [WINDOW] [MESSAGES_PER_REQUEST] [BODY_BYTES]\n  \
         ws_load http-post URL CONNECTIONS SECS [MESSAGES_PER_REQUEST] [BODY_BYTES]"
    );
    std::process::exit(2)
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: Option<T>) -> T {
    match args.get(i) {
        Some(v) => v.parse().unwrap_or_else(|_| usage()),
        None => default.unwrap_or_else(|| usage()),
    }
}

fn client_id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn request(action: &str, client: &str, body: Value) -> String {
    json!({"action": action, "headers": {"Client-ID": client, "X-Project-ID": PROJECT}, "body": body})
        .to_string()
}

/// The status of a response, without building the rest of it.
fn status_of(msg: &Message) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Headers {
        status: u64,
    }
    #[derive(serde::Deserialize)]
    struct Response {
        headers: Headers,
    }
    let Message::Text(t) = msg else { return None };
    serde_json::from_str::<Response>(t)
        .ok()
        .map(|r| r.headers.status)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("idle") => idle(&args).await,
        Some("post") => post(&args).await,
        Some("http-post") => http_post(&args).await,
        _ => usage(),
    }
}

async fn idle(args: &[String]) {
    let url: String = arg(args, 2, None);
    let n: usize = arg(args, 3, None);
    let hold: u64 = arg(args, 4, Some(10));
    let pid: Option<u32> = args.get(5).and_then(|p| p.parse().ok());
    let before = pid.and_then(rss_kib);
    let (stop_tx, stop_rx) = watch::channel(false);
    let handshakes = Arc::new(Semaphore::new(256));
    let connected = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let (url, handshakes, connected, failed) = (
            url.clone(),
            handshakes.clone(),
            connected.clone(),
            failed.clone(),
        );
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let permit = handshakes.acquire_owned().await.unwrap();
            let ws = tokio_tungstenite::connect_async(&url).await;
            drop(permit);
            let Ok((mut ws, _)) = ws else {
                failed.fetch_add(1, Ordering::Relaxed);
                return false;
            };
            connected.fetch_add(1, Ordering::Relaxed);
            // Idle: read only to answer the server's pings.
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    frame = ws.next() => match frame {
                        Some(Ok(_)) => {}
                        _ => return false,
                    },
                }
            }
            // Still alive?
            let ping = request("ping_node", &client_id(), json!({}));
            if ws.send(Message::text(ping)).await.is_err() {
                return false;
            }
            while let Some(Ok(msg)) = ws.next().await {
                if let Some(s) = status_of(&msg) {
                    let _ = ws.close(None).await;
                    return s == 204;
                }
            }
            false
        }));
    }
    while connected.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < n as u64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let setup = start.elapsed();
    println!(
        "idle: {} connected, {} failed, in {:.1}s",
        connected.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        setup.as_secs_f64()
    );
    // Let the server settle, then measure while holding.
    tokio::time::sleep(Duration::from_secs(hold.min(2))).await;
    let during = pid.and_then(rss_kib);
    tokio::time::sleep(Duration::from_secs(hold.saturating_sub(2))).await;
    let during_end = pid.and_then(rss_kib);
    let _ = stop_tx.send(true);
    let mut alive = 0;
    for t in tasks {
        if t.await.unwrap_or(false) {
            alive += 1;
        }
    }
    println!("idle: {alive} of {n} connections answered ping_node after holding {hold}s");
    if let (Some(b), Some(d), Some(e)) = (before, during, during_end) {
        let peak = d.max(e);
        let extra = peak.saturating_sub(b);
        println!(
            "server RSS: {:.1} MiB before, {:.1} MiB with {} connections open \
             (+{:.1} MiB, {:.1} KiB per connection)",
            b as f64 / 1024.0,
            peak as f64 / 1024.0,
            n,
            extra as f64 / 1024.0,
            extra as f64 / n.max(1) as f64
        );
    }
}

fn post_body(messages: usize, body_bytes: usize) -> Value {
    let payload = "x".repeat(body_bytes);
    let ms: Vec<Value> = (0..messages)
        .map(|_| json!({"ttl": 300, "body": {"payload": payload}}))
        .collect();
    json!(ms)
}

fn report(kind: &str, conns: usize, requests: u64, errors: u64, messages: u64, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{kind}: {conns} connections, {requests} requests ({errors} errors) in {secs:.1}s: \
         {:.0} requests/s, {:.0} messages/s",
        requests as f64 / secs,
        messages as f64 / secs
    );
}

async fn post(args: &[String]) {
    let url: String = arg(args, 2, None);
    let conns: usize = arg(args, 3, None);
    let secs: u64 = arg(args, 4, None);
    let window: usize = arg(args, 5, Some(1));
    let per_request: usize = arg(args, 6, Some(1));
    let body_bytes: usize = arg(args, 7, Some(100));
    let messages = post_body(per_request, body_bytes);
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for i in 0..conns {
        let (url, ok, errors) = (url.clone(), ok.clone(), errors.clone());
        let text = request(
            "message_post",
            &client_id(),
            json!({"queue_name": format!("ws-load-{}", i % 16), "messages": messages}),
        );
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(&url)
                .await
                .expect("connect");
            let mut outstanding = 0;
            for _ in 0..window {
                ws.send(Message::text(text.clone())).await.expect("send");
                outstanding += 1;
            }
            while outstanding > 0 {
                let Some(Ok(msg)) = ws.next().await else {
                    errors.fetch_add(outstanding, Ordering::Relaxed);
                    return;
                };
                let Some(status) = status_of(&msg) else {
                    continue;
                };
                outstanding -= 1;
                if status == 201 {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                if Instant::now() < deadline {
                    ws.send(Message::text(text.clone())).await.expect("send");
                    outstanding += 1;
                }
            }
            let _ = ws.close(None).await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed();
    let requests = ok.load(Ordering::Relaxed);
    report(
        &format!(
            "websocket post (window {window}, {per_request} msg/request, {body_bytes} B bodies)"
        ),
        conns,
        requests,
        errors.load(Ordering::Relaxed),
        requests * per_request as u64,
        elapsed,
    );
}

async fn http_post(args: &[String]) {
    let url: String = arg(args, 2, None);
    let conns: usize = arg(args, 3, None);
    let secs: u64 = arg(args, 4, None);
    let per_request: usize = arg(args, 5, Some(1));
    let body_bytes: usize = arg(args, 6, Some(100));
    let authority = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let body = Bytes::from(json!({ "messages": post_body(per_request, body_bytes) }).to_string());
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for i in 0..conns {
        let (authority, body, ok, errors) =
            (authority.clone(), body.clone(), ok.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&authority)
                .await
                .expect("connect");
            let _ = stream.set_nodelay(true);
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .expect("handshake");
            tokio::spawn(conn);
            let client = client_id();
            let path = format!("/v2/queues/ws-load-http-{}/messages", i % 16);
            while Instant::now() < deadline {
                let req = hyper::Request::post(&path)
                    .header("host", &authority)
                    .header("content-type", "application/json")
                    .header("client-id", &client)
                    .header("x-project-id", PROJECT)
                    .body(Full::new(body.clone()))
                    .unwrap();
                match sender.send_request(req).await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let _ = resp.into_body().collect().await;
                        if status == 201 {
                            ok.fetch_add(1, Ordering::Relaxed);
                        } else {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed();
    let requests = ok.load(Ordering::Relaxed);
    report(
        &format!("http post ({per_request} msg/request, {body_bytes} B bodies)"),
        conns,
        requests,
        errors.load(Ordering::Relaxed),
        requests * per_request as u64,
        elapsed,
    );
}
