//! Fault test: a private `redis-server` (appendonly yes, appendfsync always) is killed and
//! restarted while producers and consumers load a `zaqar-server`. Meanwhile requests fail with
//! 503 within the configured timeout (never hang), the server recovers by itself when Redis is
//! back, and nothing acknowledged is lost. Runs with the other Redis tests (gated by
//! `ZAQAR_TEST_REDIS_URL`; it never touches that Redis, only its own on a spare port).

use zaqar_testkit::redis_support;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use redis_support::{backend, free_port, req, start_server, CLIENT, STANDALONE};

const PROJECT: &str = "fault";
/// `operation_timeout_ms` of the server under test.
const OP_TIMEOUT_MS: u64 = 1000;

struct PrivateRedis {
    child: Child,
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// The child is reaped by `PrivateRedis::drop`.
#[allow(clippy::zombie_processes)]
fn start_redis(port: u16, dir: &std::path::Path) -> PrivateRedis {
    // The guard owns the child before anything below can panic.
    let redis = PrivateRedis {
        child: Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server"),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
            if let Ok(mut c) = client.get_connection() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return redis;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("private redis-server did not start");
}

#[derive(Default)]
struct Ledger {
    acked: HashMap<String, u64>,
    deleted: HashSet<String>,
    /// Deletions sent; one answered 503 may still have been carried out.
    delete_sent: HashSet<String>,
    statuses: HashMap<u16, u64>,
    transport_errors: u64,
    max_latency: Duration,
    acked_after_restart: u64,
}

impl Ledger {
    fn record(&mut self, status: Option<u16>, latency: Duration) {
        match status {
            Some(s) => *self.statuses.entry(s).or_default() += 1,
            None => self.transport_errors += 1,
        }
        self.max_latency = self.max_latency.max(latency);
    }
}

async fn producer(
    base: String,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    restarted: Arc<AtomicBool>,
    start_seq: u64,
) {
    let http = reqwest::Client::new();
    let mut seq = start_seq;
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let r = req(
            &http,
            Method::POST,
            format!("{base}/v2/queues/q/messages"),
            PROJECT,
            CLIENT,
        )
        .json(&json!({"messages": [{"body": {"seq": seq}, "ttl": 3600}]}))
        .send()
        .await;
        let status = r.as_ref().ok().map(|r| r.status().as_u16());
        ledger.lock().unwrap().record(status, t.elapsed());
        if status == Some(201) {
            let v: Value = r.unwrap().json().await.unwrap();
            let href = v["resources"][0].as_str().unwrap();
            let id = href.rsplit('/').next().unwrap().to_string();
            let mut l = ledger.lock().unwrap();
            l.acked.insert(id, seq);
            if restarted.load(Ordering::Relaxed) {
                l.acked_after_restart += 1;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        seq += 1;
    }
}

async fn consumer(base: String, ledger: Arc<Mutex<Ledger>>, stop: Arc<AtomicBool>) {
    let http = reqwest::Client::new();
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let r = req(
            &http,
            Method::POST,
            format!("{base}/v2/queues/q/claims?limit=5"),
            PROJECT,
            CLIENT,
        )
        .json(&json!({"ttl": 60, "grace": 60}))
        .send()
        .await;
        let status = r.as_ref().ok().map(|r| r.status().as_u16());
        ledger.lock().unwrap().record(status, t.elapsed());
        if status != Some(201) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let v: Value = r.unwrap().json().await.unwrap();
        for m in v["messages"].as_array().unwrap() {
            let href = m["href"].as_str().unwrap();
            ledger
                .lock()
                .unwrap()
                .delete_sent
                .insert(m["id"].as_str().unwrap().to_string());
            let t = Instant::now();
            let d = req(
                &http,
                Method::DELETE,
                format!("{base}{href}"),
                PROJECT,
                CLIENT,
            )
            .send()
            .await;
            let status = d.as_ref().ok().map(|r| r.status().as_u16());
            let mut l = ledger.lock().unwrap();
            l.record(status, t.elapsed());
            if status == Some(204) {
                l.deleted.insert(m["id"].as_str().unwrap().to_string());
            }
        }
    }
}

/// The producers and consumers running against the server, and what they recorded.
struct Load {
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    /// Set once Redis is back, so that the producers count what is acknowledged after it.
    restarted: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Four producers and two consumers on queue `q` of the server at `base`.
    fn start(base: &str) -> Load {
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let restarted = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for p in 0..4u64 {
            tasks.push(tokio::spawn(producer(
                base.to_string(),
                ledger.clone(),
                stop.clone(),
                restarted.clone(),
                p * 1_000_000,
            )));
        }
        for _ in 0..2 {
            tasks.push(tokio::spawn(consumer(
                base.to_string(),
                ledger.clone(),
                stop.clone(),
            )));
        }
        Load {
            ledger,
            stop,
            restarted,
            tasks,
        }
    }

    fn acked(&self) -> usize {
        self.ledger.lock().unwrap().acked.len()
    }

    /// How many requests have been answered 503 so far.
    fn unavailable(&self) -> u64 {
        self.ledger
            .lock()
            .unwrap()
            .statuses
            .get(&503)
            .copied()
            .unwrap_or(0)
    }

    /// Stops the load, waits for every task and returns the ledger.
    async fn finish(self) -> Ledger {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        std::mem::take(&mut *self.ledger.lock().unwrap())
    }
}

/// Every request was answered with an expected status within a bounded time, and the load
/// went on after the restart without help.
fn assert_answered_in_time_and_recovered(l: &Ledger) {
    assert_eq!(
        l.transport_errors, 0,
        "requests must be answered, not dropped"
    );
    for s in l.statuses.keys() {
        assert!(
            [201, 204, 503].contains(s),
            "unexpected status {s}: {:?}",
            l.statuses
        );
    }
    // Bounded: one storage call is bounded by the operation timeout; a request makes a few.
    assert!(
        l.max_latency < Duration::from_millis(OP_TIMEOUT_MS * 4),
        "a request hung for {:?}",
        l.max_latency
    );
    assert!(
        l.acked_after_restart > 20,
        "the server did not recover by itself"
    );
}

/// The ids among `ids` that the server at `base` still has, asked for 20 at a time.
async fn present_messages(base: &str, ids: &[&String]) -> HashSet<String> {
    let http = reqwest::Client::new();
    let mut present = HashSet::new();
    for chunk in ids.chunks(20) {
        let joined = chunk
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let r = req(
            &http,
            Method::GET,
            format!("{base}/v2/queues/q/messages?ids={joined}"),
            PROJECT,
            CLIENT,
        )
        .send()
        .await
        .unwrap();
        if r.status() == 404 {
            continue; // none of this chunk is there
        }
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        for m in v["messages"].as_array().unwrap() {
            present.insert(m["id"].as_str().unwrap().to_string());
        }
    }
    present
}

/// Every acknowledged message is still there unless its deletion was acknowledged.
async fn assert_nothing_acknowledged_was_lost(base: &str, l: &Ledger) {
    let ids: Vec<&String> = l.acked.keys().collect();
    let present = present_messages(base, &ids).await;
    let lost: Vec<_> = l
        .acked
        .keys()
        .filter(|id| !present.contains(*id) && !l.delete_sent.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages lost (of {}): {:?}",
        lost.len(),
        l.acked.len(),
        &lost[..lost.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_under_load_gives_503s_then_recovers_without_loss() {
    if backend(STANDALONE).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut redis = start_redis(port, dir.path());
    let url = format!("redis://127.0.0.1:{port}");
    let mut server = start_server(
        env!("CARGO_BIN_EXE_zaqar-server"),
        &url,
        "zqfault",
        &[
            &format!("drivers:message_store:redis.operation_timeout_ms={OP_TIMEOUT_MS}"),
            "drivers:message_store:redis.connect_timeout_ms=300",
        ],
    )
    .await;
    let load = Load::start(&server.base);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = load.acked();
    assert!(before > 20, "too little load before the fault: {before}");
    // Redis stops answering (the process is frozen, connections stay open): requests must
    // fail with 503 after the operation timeout instead of hanging, and succeed again after.
    let pid = redis.child.id().to_string();
    let frozen_before = load.unavailable();
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    let frozen = load.unavailable() - frozen_before;
    assert!(frozen > 0, "no 503 while Redis was frozen");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Kill Redis hard (nothing acknowledged may depend on a clean shutdown), keep it down for a
    // while, then start it again on the same port and data directory.
    drop(redis);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let during = load.unavailable();
    redis = start_redis(port, dir.path());
    load.restarted.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let l = load.finish().await;
    assert!(server.alive(), "zaqar-server died");
    eprintln!(
        "statuses {:?}, transport errors {}, acked {} ({} after the restart), deleted {}, \
         slowest request {:?}",
        l.statuses,
        l.transport_errors,
        l.acked.len(),
        l.acked_after_restart,
        l.deleted.len(),
        l.max_latency
    );
    assert!(during > 0, "no 503 while Redis was down");
    assert_answered_in_time_and_recovered(&l);
    assert_nothing_acknowledged_was_lost(&server.base, &l).await;
    drop(redis);
}
