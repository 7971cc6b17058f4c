//! Kill -9 the real server binary while producers post and consumers claim and delete, restart
//! it on the same data directory, and check that every acknowledged message is still there
//! unless its deletion was acknowledged too.
//!
//! `ZAQAR_CRASH_ROUNDS` sets the number of kills (default 12); the whole test is bounded by
//! `ZAQAR_CRASH_DEADLINE_SECS` (default 180). The counts are printed as a `crash-recovery:`
//! line (run with `--nocapture` to see it): acknowledged, recovered, lost (must be 0).

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

const CLIENT: &str = "3381af92-2b9e-11e3-b191-71861300734c";
const PROJECT: &str = "crash";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    /// Never leave a server behind, even when an assertion fails.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(dir: &std::path::Path, port: u16) -> Server {
    start_with(dir, port, &[]).await
}

// The child is reaped by `Server::drop`, which clippy cannot see through the struct.
#[allow(clippy::zombie_processes)]
async fn start_with(dir: &std::path::Path, port: u16, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zaqar-server"))
        .args(["--port", &port.to_string(), "--data-dir"])
        .arg(dir)
        // An ephemeral WebSocket port: servers of parallel tests must not share 9000.
        .args(["--set", "drivers:transport:websocket.port=0"])
        .args(extra)
        .env("ZAQAR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn zaqar-server");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..1200 {
        if http.get(format!("{base}/")).send().await.is_ok() {
            return Server { child, base };
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("zaqar-server exited during start-up: {status}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not start within 30 s");
}

#[derive(Default)]
struct Ledger {
    /// id → body sequence number, for every 201.
    acked: HashMap<String, u64>,
    /// ids whose deletion was acknowledged with 204.
    deleted: HashSet<String>,
    /// ids whose deletion was sent; a kill may land after the delete committed but before the
    /// 204 reached us, so such a message may legitimately be gone.
    delete_sent: HashSet<String>,
}

fn req(http: &reqwest::Client, m: reqwest::Method, url: String) -> reqwest::RequestBuilder {
    http.request(m, url)
        .header("Client-ID", CLIENT)
        .header("X-Project-ID", PROJECT)
        .header("Content-Type", "application/json")
}

async fn producer(base: String, ledger: Arc<Mutex<Ledger>>, start_seq: u64) {
    let http = reqwest::Client::new();
    let mut seq = start_seq;
    loop {
        let body = json!({"messages": [{"body": {"seq": seq}, "ttl": 3600}]});
        let r = req(
            &http,
            reqwest::Method::POST,
            format!("{base}/v2/queues/q/messages"),
        )
        .json(&body)
        .send()
        .await;
        let Ok(r) = r else { return };
        if r.status() != 201 {
            return;
        }
        let Ok(v) = r.json::<Value>().await else {
            return;
        };
        let href = v["resources"][0].as_str().unwrap().to_string();
        let id = href.rsplit('/').next().unwrap().to_string();
        ledger.lock().unwrap().acked.insert(id, seq);
        seq += 1;
    }
}

async fn consumer(base: String, ledger: Arc<Mutex<Ledger>>) {
    let http = reqwest::Client::new();
    loop {
        let r = req(
            &http,
            reqwest::Method::POST,
            format!("{base}/v2/queues/q/claims?limit=5"),
        )
        .json(&json!({"ttl": 60, "grace": 60}))
        .send()
        .await;
        let Ok(r) = r else { return };
        if r.status() == 204 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let Ok(v) = r.json::<Value>().await else {
            return;
        };
        let Some(msgs) = v["messages"].as_array() else {
            return;
        };
        for m in msgs {
            let href = m["href"].as_str().unwrap();
            ledger
                .lock()
                .unwrap()
                .delete_sent
                .insert(m["id"].as_str().unwrap().to_string());
            let Ok(d) = req(&http, reqwest::Method::DELETE, format!("{base}{href}"))
                .send()
                .await
            else {
                return;
            };
            if d.status() == 204 {
                ledger
                    .lock()
                    .unwrap()
                    .deleted
                    .insert(m["id"].as_str().unwrap().to_string());
            }
        }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9() {
    let deadline = Duration::from_secs(env_u64("ZAQAR_CRASH_DEADLINE_SECS", 180));
    tokio::time::timeout(deadline, kill_9_rounds())
        .await
        .unwrap_or_else(|_| panic!("the crash test took longer than {deadline:?}"));
}

async fn kill_9_rounds() {
    let rounds = env_u64("ZAQAR_CRASH_ROUNDS", 12).max(1);
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let http = reqwest::Client::new();
    for round in 0..rounds {
        let port = free_port();
        let server = start(dir.path(), port).await;
        let mut tasks = Vec::new();
        for p in 0..4u64 {
            tasks.push(tokio::spawn(producer(
                server.base.clone(),
                ledger.clone(),
                round * 1_000_000 + p * 100_000,
            )));
        }
        for _ in 0..2 {
            tasks.push(tokio::spawn(consumer(server.base.clone(), ledger.clone())));
        }
        // Let the round produce something whatever the machine's speed (the acknowledged
        // count is the signal), then kill at a different point of the load each round.
        let before = ledger.lock().unwrap().acked.len();
        while ledger.lock().unwrap().acked.len() < before + 8 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(70 * (round % 6))).await;
        drop(server); // SIGKILL, mid-load
        for t in tasks {
            let _ = t.await;
        }
    }
    // Restart once more and account for every acknowledged message.
    let server = start(dir.path(), free_port()).await;
    let (acked, deleted, delete_sent) = {
        let l = ledger.lock().unwrap();
        (l.acked.clone(), l.deleted.clone(), l.delete_sent.clone())
    };
    assert!(
        acked.len() > 50,
        "the load produced too little to be meaningful: {}",
        acked.len()
    );
    let mut present = HashSet::new();
    let ids: Vec<&String> = acked.keys().collect();
    for chunk in ids.chunks(20) {
        let joined = chunk
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let r = req(
            &http,
            reqwest::Method::GET,
            format!("{}/v2/queues/q/messages?ids={joined}", server.base),
        )
        .send()
        .await
        .unwrap();
        if r.status() == 200 {
            let v: Value = r.json().await.unwrap();
            for m in v["messages"].as_array().unwrap() {
                let id = m["id"].as_str().unwrap().to_string();
                assert_eq!(
                    m["body"]["seq"].as_u64(),
                    acked.get(&id).copied(),
                    "body intact"
                );
                present.insert(id);
            }
        } else {
            assert_eq!(r.status(), 404);
        }
    }
    let lost: Vec<_> = acked
        .keys()
        .filter(|id| !present.contains(*id) && !delete_sent.contains(*id))
        .collect();
    let unconfirmed = delete_sent.difference(&deleted).count();
    // Recovered: every acknowledged message accounted for after the restarts, present or
    // gone by a deletion that was at least sent.
    let recovered = acked.len() - lost.len();
    let came_back = deleted.iter().filter(|id| present.contains(*id)).count();
    eprintln!(
        "crash-recovery: {rounds} kill -9 rounds in {:.1} s: acknowledged {}, recovered {} \
         (present {}, deleted {}, +{} deletes in flight at a kill), lost {}, deleted but back {}",
        started.elapsed().as_secs_f64(),
        acked.len(),
        recovered,
        present.len(),
        deleted.len(),
        unconfirmed,
        lost.len(),
        came_back
    );
    assert!(lost.is_empty(), "acknowledged messages lost: {lost:?}");
    for id in &deleted {
        assert!(
            !present.contains(id),
            "an acknowledged delete came back: {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_and_delayed_messages_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let key = [
        "--set",
        "transport.message_encryption_key=crash-test-passphrase",
    ];
    let http = reqwest::Client::new();
    let server = start_with(dir.path(), free_port(), &key).await;
    let base = server.base.clone();
    for (q, meta) in [
        ("enc", json!({"_enable_encrypt_messages": true})),
        ("late", json!({"_default_message_delay": 600})),
    ] {
        let r = req(&http, reqwest::Method::PUT, format!("{base}/v2/queues/{q}"))
            .json(&meta)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let mut ids = Vec::new();
    for q in ["enc", "late"] {
        let r = req(
            &http,
            reqwest::Method::POST,
            format!("{base}/v2/queues/{q}/messages"),
        )
        .json(&json!({"messages": [{"body": {"secret": q, "n": [1, 2, 3]}, "ttl": 3600}]}))
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        let href = v["resources"][0].as_str().unwrap().to_string();
        ids.push((q, href));
    }
    drop(server); // kill -9
    let server = start_with(dir.path(), free_port(), &key).await;
    for (q, href) in &ids {
        let r = req(
            &http,
            reqwest::Method::GET,
            format!("{}{href}", server.base),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 200, "{q}");
        let m: Value = r.json().await.unwrap();
        assert_eq!(m["body"], json!({"secret": q, "n": [1, 2, 3]}), "{q}");
    }
    // The delayed message is still delayed after the restart.
    let r = req(
        &http,
        reqwest::Method::POST,
        format!("{}/v2/queues/late/claims", server.base),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
}
